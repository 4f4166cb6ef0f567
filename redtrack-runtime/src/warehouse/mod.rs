//! Warehouses: Redshift in production, PostgreSQL in development and tests.
//!
//! Both speak PostgreSQL's wire protocol, so the exactly-once transaction (in
//! `loader::checkpoint`) is written once against a [`tokio_postgres::Transaction`]; a
//! [`Warehouse`] supplies what differs: how files are copied in, how many slices there are,
//! and the DDL dialect.

mod connector;
pub(crate) mod masked;
mod missing;
pub mod postgres;
pub mod redshift;

use std::future::Future;

pub use self::connector::Connector;
pub(crate) use self::connector::{column, db_error, statement_error};
pub(crate) use self::missing::check_table;
pub use self::postgres::PostgresWarehouse;
pub use self::redshift::RedshiftWarehouse;
pub use crate::error::RejectedRow;
pub use crate::schema::{quote_ident, KINESIS_LOADS, LOAD_REJECTS};

use crate::aws::Aws;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::schema::{Dialect, TableSchema};
use crate::stage::Stage;

/// One staged file of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Its key in the stage.
    pub key: String,
    /// Its URL (as in the manifest).
    pub url: String,
    /// How many lines (events) it holds.
    pub lines: u64,
}

/// What to COPY: the staged files of one load into one table.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// The target table.
    pub table: &'static TableSchema,
    /// The load's id.
    pub load_id: String,
    /// The load's folder in the stage (`redtrack/.../load-<id>`).
    pub folder: String,
    /// The manifest's URL.
    pub manifest_url: String,
    /// The files, in manifest order.
    pub files: Vec<StagedFile>,
    /// How many rows COPY may reject; one more fails it (Redshift's COPY is sent MAXERROR
    /// `max_errors + 1`, since it fails once the errors reach MAXERROR).
    pub max_errors: u64,
}

impl CopyRequest {
    /// How many lines the staged files hold.
    pub fn lines(&self) -> u64 {
        self.files.iter().map(|f| f.lines).sum()
    }
}

/// What COPY did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOutcome {
    /// Rows loaded into the table.
    pub loaded: u64,
    /// Rows rejected (at most MAXERROR of them, else the copy fails).
    pub rejected: Vec<RejectedRow>,
}

/// A warehouse: how to connect, how many slices, how to lock the bookkeeping, how to COPY
/// staged files.
///
/// Connections are tokio-postgres clients (both Redshift and PostgreSQL speak PostgreSQL's wire
/// protocol), so tokio-postgres' types appear in this trait: a major version of tokio-postgres
/// is a major version of redtrack.
pub trait Warehouse: Send + Sync {
    /// The SQL dialect of DDL.
    fn dialect(&self) -> Dialect;

    /// A new connection (TLS unless the URL says `sslmode=disable`).
    fn connect(&self) -> impl Future<Output = Result<tokio_postgres::Client>> + Send;

    /// The number of slices: staged files come in multiples of it.
    fn slices(&self, client: &tokio_postgres::Client)
        -> impl Future<Output = Result<usize>> + Send;

    /// The statement a load of `table` runs first in its transaction: it makes loads of the
    /// same table wait for each other and nothing else (loads of other tables, and readers of
    /// `kinesis_loads` and `redtrack_load_rejects`, go on).
    fn lock_sql(&self, table: &TableSchema) -> String;

    /// Refuses a stage this warehouse's COPY cannot read (with what to set). The default accepts
    /// any stage.
    fn check_stage<S: Stage>(&self, stage: &S) -> Result<()> {
        let _ = stage;
        Ok(())
    }

    /// COPYs the staged files of `req`, which are in `stage`, into its table inside `txn`.
    /// Rejects more than `req.max_errors` fail with [`Error::LoadRejected`] (the caller rolls
    /// back).
    fn copy<'a, S: Stage>(
        &'a self,
        txn: &'a tokio_postgres::Transaction<'a>,
        req: &'a CopyRequest,
        stage: &'a S,
    ) -> impl Future<Output = Result<CopyOutcome>> + Send + 'a;
}

/// The warehouse the configuration names (`REDTRACK_WAREHOUSE_DIALECT`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyWarehouse {
    /// Amazon Redshift.
    Redshift(RedshiftWarehouse),
    /// PostgreSQL.
    Postgres(PostgresWarehouse),
}

impl AnyWarehouse {
    /// Builds the warehouse of `config`; an error without `REDTRACK_WAREHOUSE_URL`.
    pub async fn from_config(config: &Config) -> Result<AnyWarehouse> {
        AnyWarehouse::with_aws(config, &Aws::default())
    }

    /// The warehouse of `config`; its COPY credentials (Redshift without an IAM role) come from
    /// the SDK configuration `aws` shares with the other parts of a loader.
    pub(crate) fn with_aws(config: &Config, aws: &Aws) -> Result<AnyWarehouse> {
        let url = config.warehouse_url.clone().ok_or_else(|| {
            Error::Config(
                "the loader needs REDTRACK_WAREHOUSE_URL (postgres://user:pass@host:port/db)"
                    .into(),
            )
        })?;
        let mut conn = Connector::new(&url)?;
        if let Some(how) = &config.redshift_iam {
            conn = conn.with_iam(how.clone(), config, aws);
        }
        Ok(match config.dialect() {
            Dialect::Redshift => {
                AnyWarehouse::Redshift(RedshiftWarehouse::with_aws(conn, config, aws))
            }
            Dialect::Postgres => AnyWarehouse::Postgres(PostgresWarehouse::new(conn)),
        })
    }
}

impl Warehouse for AnyWarehouse {
    fn dialect(&self) -> Dialect {
        match self {
            AnyWarehouse::Redshift(w) => w.dialect(),
            AnyWarehouse::Postgres(w) => w.dialect(),
        }
    }

    /// A new connection, after checking that the server is of the configured dialect (a
    /// PostgreSQL server with the default `redshift` dialect would otherwise fail later with
    /// a syntax error at `DISTSTYLE` or a missing `stv_slices`).
    async fn connect(&self) -> Result<tokio_postgres::Client> {
        let client = match self {
            AnyWarehouse::Redshift(w) => w.connect().await,
            AnyWarehouse::Postgres(w) => w.connect().await,
        }?;
        const WHAT: &str = "asking the warehouse for its version";
        let row = client
            .query_one("SELECT CAST(version() AS VARCHAR(512))", &[])
            .await
            .map_err(|e| db_error(WHAT, e))?;
        let version: String = column(&row, 0, WHAT)?;
        check_dialect(self.dialect(), &version)?;
        Ok(client)
    }

    async fn slices(&self, client: &tokio_postgres::Client) -> Result<usize> {
        match self {
            AnyWarehouse::Redshift(w) => w.slices(client).await,
            AnyWarehouse::Postgres(w) => w.slices(client).await,
        }
    }

    fn lock_sql(&self, table: &TableSchema) -> String {
        match self {
            AnyWarehouse::Redshift(w) => w.lock_sql(table),
            AnyWarehouse::Postgres(w) => w.lock_sql(table),
        }
    }

    fn check_stage<S: Stage>(&self, stage: &S) -> Result<()> {
        match self {
            AnyWarehouse::Redshift(w) => w.check_stage(stage),
            AnyWarehouse::Postgres(w) => w.check_stage(stage),
        }
    }

    async fn copy<'a, S: Stage>(
        &'a self,
        txn: &'a tokio_postgres::Transaction<'a>,
        req: &'a CopyRequest,
        stage: &'a S,
    ) -> Result<CopyOutcome> {
        match self {
            AnyWarehouse::Redshift(w) => w.copy(txn, req, stage).await,
            AnyWarehouse::Postgres(w) => w.copy(txn, req, stage).await,
        }
    }
}

/// Refuses a server of the other kind than `dialect` says, with what to set.
fn check_dialect(dialect: Dialect, version: &str) -> Result<()> {
    let redshift = version.contains("Redshift");
    match (dialect, redshift) {
        (Dialect::Redshift, false) => Err(Error::Config(format!(
            "REDTRACK_WAREHOUSE_DIALECT is `redshift` (the default) but the warehouse is not \
             Redshift (`{version}`); set REDTRACK_WAREHOUSE_DIALECT=postgres \
             (or ConfigBuilder::dialect(Dialect::Postgres))"
        ))),
        (Dialect::Postgres, true) => Err(Error::Config(format!(
            "REDTRACK_WAREHOUSE_DIALECT is `postgres` but the warehouse is Redshift \
             (`{version}`); set REDTRACK_WAREHOUSE_DIALECT=redshift"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_of_the_other_dialect_is_refused_with_what_to_set() {
        let pg = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu";
        let rs = "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 \
                  20041017 (Red Hat 3.4.2-6.fc3), Redshift 1.0.12103";
        assert!(check_dialect(Dialect::Postgres, pg).is_ok());
        assert!(check_dialect(Dialect::Redshift, rs).is_ok());
        let e = check_dialect(Dialect::Redshift, pg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("set REDTRACK_WAREHOUSE_DIALECT=postgres"), "{e}");
        let e = check_dialect(Dialect::Postgres, rs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("set REDTRACK_WAREHOUSE_DIALECT=redshift"), "{e}");
    }
}
