//! Warehouses: Redshift in production, PostgreSQL in development and tests.
//!
//! Both speak PostgreSQL's wire protocol, so the exactly-once transaction (in
//! `loader::checkpoint`) is written once against a [`tokio_postgres::Transaction`]; a
//! [`Warehouse`] supplies what differs: how files are copied in, how many slices there are,
//! and the DDL dialect.
//!
//! OWNER: issue 5.

pub(crate) mod json_row;
pub mod postgres;
pub mod redshift;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

pub use self::postgres::PostgresWarehouse;
pub use self::redshift::RedshiftWarehouse;

use crate::config::{redact_url, Config};
pub use crate::error::RejectedRow;
use crate::error::{Error, Result};
use crate::schema::{Dialect, TableSchema};
use crate::stage::Stage;

pub use crate::schema::{KINESIS_LOADS, LOAD_REJECTS};

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
    /// How many rows COPY may reject before it fails (MAXERROR).
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

    /// The statement a load runs first in its transaction, to serialize loads on
    /// `kinesis_loads`.
    fn lock_sql(&self) -> &'static str;

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
pub enum AnyWarehouse {
    /// Amazon Redshift.
    Redshift(RedshiftWarehouse),
    /// PostgreSQL.
    Postgres(PostgresWarehouse),
}

impl AnyWarehouse {
    /// Builds the warehouse of `config`; an error without `REDTRACK_WAREHOUSE_URL`.
    pub async fn from_config(config: &Config) -> Result<AnyWarehouse> {
        let url = config.warehouse_url.clone().ok_or_else(|| {
            Error::Config(
                "the loader needs REDTRACK_WAREHOUSE_URL (postgres://user:pass@host:port/db)"
                    .into(),
            )
        })?;
        let conn = Connector::new(&url)?;
        Ok(match config.dialect() {
            Dialect::Redshift => AnyWarehouse::Redshift(RedshiftWarehouse::new(conn, config)),
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

    fn lock_sql(&self) -> &'static str {
        match self {
            AnyWarehouse::Redshift(w) => w.lock_sql(),
            AnyWarehouse::Postgres(w) => w.lock_sql(),
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

/// Opens connections to one URL, with TLS when the URL does not disable it.
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    redacted: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.redacted)
            .finish()
    }
}

impl Connector {
    /// Parses a `postgres://` URL (or a key=value connection string).
    pub fn new(url: &str) -> Result<Connector> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Warehouse {
            message: format!(
                "REDTRACK_WAREHOUSE_URL `{}` is not a valid connection URL",
                redact_url(url)
            ),
            source: Some(e),
        })?;
        Ok(Connector {
            config,
            redacted: redact_url(url),
        })
    }

    /// A new connection; its I/O runs on a spawned task until the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let fail = |e| Error::Warehouse {
            message: format!("connecting to {}", self.redacted),
            source: Some(e),
        };
        if self.config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            let (client, conn) = self
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("warehouse connection ended: {e}");
                }
            });
            Ok(client)
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()?);
            let (client, conn) = self.config.connect(tls).await.map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("warehouse connection ended: {e}");
                }
            });
            Ok(client)
        }
    }
}

/// rustls with the system's root certificates (Redshift's are signed by Amazon's public CAs).
fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A [`Error::Warehouse`] saying what was being done, with the server's message and detail.
/// Column `idx` of a result row as `T`. A value the server sent that `T` cannot hold (another
/// type, or NULL where none was expected) is an error naming `what`, never a panic.
pub(crate) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
    what: &str,
) -> Result<T> {
    row.try_get(idx).map_err(|e| db_error(what, e))
}

pub(crate) fn db_error(what: &str, e: tokio_postgres::Error) -> Error {
    let message = match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{what}: {}", db.message());
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            m
        }
        None => format!("{what}: {e}"),
    };
    Error::Warehouse {
        message,
        source: Some(e),
    }
}

/// Table and column names, which cannot be bound parameters, are quoted as in the DDL.
pub use crate::schema::quote_ident;

/// `'text'`: a SQL string literal, for the few places where a bound parameter is impossible
/// (COPY's source and credentials). Refuses backslashes and control characters, whose meaning
/// differs between servers.
pub fn quote_literal(what: &str, text: &str) -> Result<String> {
    if text.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(Error::Config(format!(
            "the {what} may not contain backslashes or control characters"
        )));
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// `CREATE TABLE IF NOT EXISTS kinesis_loads`: the original gem's columns, wider so Kinesis'
/// 128-character stream names and 129-digit sequence numbers fit.
pub fn kinesis_loads_ddl(dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE ALL\nSORTKEY (stream_name, shard_id)",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {KINESIS_LOADS} (\n    \
         stream_name VARCHAR(256) NOT NULL,\n    \
         shard_id VARCHAR(256) NOT NULL,\n    \
         table_name VARCHAR(256) NOT NULL,\n    \
         starting_sequence_number VARCHAR(256) NOT NULL,\n    \
         ending_sequence_number VARCHAR(256) NOT NULL,\n    \
         load_timestamp TIMESTAMP NOT NULL,\n    \
         PRIMARY KEY (stream_name, shard_id, starting_sequence_number)\n){tail}"
    )
}

/// `CREATE TABLE IF NOT EXISTS redtrack_load_rejects`: rows rejected under MAXERROR, kept.
pub fn load_rejects_ddl(dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE EVEN",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {LOAD_REJECTS} (\n    \
         load_id VARCHAR(64) NOT NULL,\n    \
         table_name VARCHAR(256) NOT NULL,\n    \
         file_name VARCHAR(1024) NOT NULL,\n    \
         line_number BIGINT NOT NULL,\n    \
         column_name VARCHAR(256) NOT NULL,\n    \
         raw_value VARCHAR(4096) NOT NULL,\n    \
         reason VARCHAR(1024) NOT NULL,\n    \
         rejected_at TIMESTAMP NOT NULL\n){tail}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_literal("x", "it's").unwrap(), "'it''s'");
        assert!(quote_literal("x", "a\\b").is_err());
        assert!(quote_literal("x", "a\nb").is_err());
    }

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

    #[test]
    fn ddl_keeps_the_original_columns() {
        for d in [Dialect::Redshift, Dialect::Postgres] {
            let ddl = kinesis_loads_ddl(d);
            for col in [
                "stream_name",
                "shard_id",
                "table_name",
                "starting_sequence_number",
                "ending_sequence_number",
                "load_timestamp",
            ] {
                assert!(ddl.contains(col), "{col} missing from {ddl}");
            }
        }
        assert!(kinesis_loads_ddl(Dialect::Redshift).contains("SORTKEY"));
        assert!(!kinesis_loads_ddl(Dialect::Postgres).contains("SORTKEY"));
    }
}
