//! The stand-in's own superuser connections to PostgreSQL: role and database lookups for
//! logins, installing the Redshift catalog into databases, and the load-error log (written on a
//! connection of its own so rows survive the loading transaction's rollback, like Redshift's
//! system log tables).

use std::collections::HashSet;
use std::sync::Mutex as StdMutex;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use crate::catalog;
use crate::error::{Error, Result};

/// Where PostgreSQL is and who the stand-in is there.
#[derive(Clone)]
pub struct AdminConfig {
    /// Host of PostgreSQL.
    pub host: String,
    /// Port of PostgreSQL.
    pub port: u16,
    /// A superuser.
    pub user: String,
    /// Its password, if PostgreSQL asks for one.
    pub password: Option<String>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What a login needs to know about its role and database.
#[derive(Debug, Clone)]
pub struct Login {
    /// The role's stored password, if it is an MD5 hash (`md5...`).
    pub md5: Option<String>,
    /// The role exists and may log in.
    pub can_login: bool,
    /// The database's OID, if it exists.
    pub database_oid: Option<u32>,
    /// The database's `default_transaction_isolation` setting, if it has one.
    pub isolation: Option<String>,
}

/// One row of the load-error log.
#[derive(Debug, Clone)]
pub struct LoadErrorRow {
    /// The loading role's OID.
    pub userid: i32,
    /// The slice (the stand-in counts files round-robin over slices).
    pub slice: i32,
    /// The table's OID.
    pub tbl: i32,
    /// When the COPY started (UTC, `YYYY-MM-DD HH:MM:SS.ffffff`).
    pub starttime: String,
    /// The backend process id of the loading session.
    pub session: i32,
    /// The COPY's query id.
    pub query: i64,
    /// The loading transaction's id.
    pub transaction_id: i64,
    /// The database the COPY ran in.
    pub database_name: String,
    /// The file's S3 URL (cut to 256 bytes).
    pub filename: String,
    /// For JSON, the last line of the object.
    pub line_number: i64,
    /// The column (cut to 127 bytes).
    pub colname: String,
    /// The column's type (cut to 10 bytes).
    pub col_type: String,
    /// The column's length, for types that have one.
    pub col_length: String,
    /// Position of the error in the field.
    pub position: i32,
    /// The raw input (multibyte characters as '.', cut to 1024 bytes).
    pub raw_line: String,
    /// The raw field (cut to 1024 bytes).
    pub raw_field_value: String,
    /// Redshift's load error code (r_Load_Error_Reference).
    pub err_code: i32,
    /// The reason (cut to 512 bytes; STL_LOAD_ERRORS shows the first 100).
    pub err_reason: String,
}

/// The admin side of the stand-in.
pub struct Admin {
    cfg: AdminConfig,
    main: Mutex<Option<Client>>,
    log: Mutex<Option<Client>>,
    installed: StdMutex<HashSet<u32>>,
    /// A secret of this process, from which the backend passwords of IAM users are made.
    iam_secret: String,
}

impl Admin {
    /// An admin for `cfg`; connections open on first use.
    pub fn new(cfg: AdminConfig) -> Admin {
        Admin {
            cfg,
            main: Mutex::new(None),
            log: Mutex::new(None),
            installed: StdMutex::new(HashSet::new()),
            iam_secret: format!("{:032x}", rand::random::<u128>()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AdminConfig {
        &self.cfg
    }

    async fn connect(&self, database: &str) -> Result<Client> {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.cfg.host)
            .port(self.cfg.port)
            .user(&self.cfg.user)
            .dbname(database)
            .application_name("redshift-local admin");
        if let Some(p) = &self.cfg.password {
            c.password(p);
        }
        let (client, conn) = c.connect(NoTls).await.map_err(|e| {
            Error::Admin(format!(
                "connecting to PostgreSQL {}:{} as {} (database {database}): {e}",
                self.cfg.host, self.cfg.port, self.cfg.user
            ))
        })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("admin connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Prepares PostgreSQL at start-up: the log database, and the catalog in `template1` (so
    /// every database created afterwards has it from the start).
    pub async fn prepare(&self) -> Result<()> {
        let main = self.connect("postgres").await?;
        let exists = main
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&catalog::LOG_DATABASE],
            )
            .await?
            .is_some();
        if !exists {
            let r = main
                .batch_execute(&format!("CREATE DATABASE \"{}\"", catalog::LOG_DATABASE))
                .await;
            if let Err(e) = r {
                // another stand-in created it meanwhile
                if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(e.into());
                }
            }
        }
        let log = self.connect(catalog::LOG_DATABASE).await?;
        log.batch_execute(catalog::LOG_SCHEMA_SQL).await?;
        *self.log.lock().await = Some(log);
        *self.main.lock().await = Some(main);
        self.install_into("template1").await?;
        Ok(())
    }

    /// Creates the login role `user` unless it exists (the user of IAM credentials issued with
    /// AutoCreate, GetClusterCredentials; of a Serverless IAM identity).
    pub async fn create_user(&self, user: &str) -> Result<()> {
        let mut guard = self.main.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect("postgres").await?);
        }
        let Some(client) = guard.as_ref() else {
            return Err(Error::Admin("no admin connection".into()));
        };
        let quoted = format!("\"{}\"", user.replace('"', "\"\""));
        let r = client
            .batch_execute(&format!("CREATE ROLE {quoted} LOGIN"))
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The stored MD5 hash the stand-in signs in to PostgreSQL with as `user`, a user of IAM
    /// credentials whose role has no password (one created by AutoCreate, or by Serverless at an
    /// IAM identity's first login, has none: it logs in only with temporary credentials,
    /// `r_CREATE_USER` PASSWORD DISABLE). PostgreSQL checks passwords on TCP, so the role is
    /// given one that no one knows: the MD5 form of a secret of this process, which is all the
    /// stand-in needs to answer PostgreSQL's MD5 challenge.
    pub async fn backend_hash(&self, user: &str) -> Result<String> {
        use md5::{Digest, Md5};
        let secret = format!("{}{user}", self.iam_secret);
        let hash = format!("md5{:x}", Md5::digest(secret.as_bytes()));
        let mut guard = self.main.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect("postgres").await?);
        }
        let Some(client) = guard.as_ref() else {
            return Err(Error::Admin("no admin connection".into()));
        };
        let quoted = format!("\"{}\"", user.replace('"', "\"\""));
        // An MD5-form password is stored as given, whatever password_encryption says.
        client
            .batch_execute(&format!("ALTER ROLE {quoted} PASSWORD '{hash}'"))
            .await?;
        Ok(hash)
    }

    /// Looks up `user` and `database` for a login.
    pub async fn login(&self, user: &str, database: &str) -> Result<Login> {
        const SQL: &str = "SELECT \
            (SELECT rolpassword FROM pg_authid WHERE rolname = $1), \
            COALESCE((SELECT rolcanlogin FROM pg_authid WHERE rolname = $1), false), \
            (SELECT oid FROM pg_database WHERE datname = $2), \
            (SELECT substring(s FROM '^default_transaction_isolation=(.*)$') \
               FROM pg_db_role_setting r JOIN pg_database d ON d.oid = r.setdatabase, \
                    unnest(r.setconfig) AS s \
              WHERE d.datname = $2 AND r.setrole = 0 \
                AND s LIKE 'default_transaction_isolation=%' LIMIT 1)";
        let mut guard = self.main.lock().await;
        let mut last = None;
        let mut row = None;
        for _ in 0..2 {
            if guard.as_ref().is_none_or(Client::is_closed) {
                *guard = Some(self.connect("postgres").await?);
            }
            let Some(client) = guard.as_ref() else {
                continue;
            };
            match client.query_one(SQL, &[&user, &database]).await {
                Ok(r) => {
                    row = Some(r);
                    break;
                }
                Err(e) => {
                    // a lost connection is reopened once
                    *guard = None;
                    last = Some(e);
                }
            }
        }
        let Some(row) = row else {
            return Err(
                last.map_or_else(|| Error::Admin("no admin connection".into()), Error::from)
            );
        };
        let pw: Option<String> = row.get(0);
        Ok(Login {
            md5: pw.filter(|p| p.starts_with("md5") && p.len() == 35),
            can_login: row.get(1),
            database_oid: row.get::<_, Option<u32>>(2),
            isolation: row.get(3),
        })
    }

    /// Makes sure database `oid` (named `database`) has the current catalog.
    pub async fn ensure_installed(&self, oid: u32, database: &str) -> Result<()> {
        if self.installed.lock().is_ok_and(|s| s.contains(&oid)) {
            return Ok(());
        }
        self.install_into(database).await?;
        if let Ok(mut s) = self.installed.lock() {
            s.insert(oid);
        }
        Ok(())
    }

    async fn install_into(&self, database: &str) -> Result<()> {
        let client = self.connect(database).await?;
        let want = catalog::marker(self.cfg.port, &self.cfg.user, self.cfg.password.as_deref());
        let have: Option<String> = client
            .query_one(
                "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace \
                 WHERE nspname = 'redshift_local' UNION ALL SELECT NULL LIMIT 1",
                &[],
            )
            .await?
            .get(0);
        if have.as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        let sql = catalog::install_sql(self.cfg.port, &self.cfg.user, self.cfg.password.as_deref());
        client
            .batch_execute(&format!("BEGIN; {sql} COMMIT;"))
            .await
            .map_err(|e| {
                Error::Admin(format!(
                    "installing the Redshift catalog into database \"{database}\": {}",
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
                ))
            })?;
        tracing::info!(database, "installed the Redshift catalog");
        Ok(())
    }

    /// Appends rows to the load-error log and commits them.
    pub async fn log_load_errors(&self, rows: &[LoadErrorRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut guard = self.log.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect(catalog::LOG_DATABASE).await?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(Error::Admin("no log connection".into()));
        };
        let tx = client.transaction().await?;
        // a thousand rows per statement, as arrays (MAXERROR allows up to 100000 rejects)
        let stmt = tx
            .prepare(
                "INSERT INTO load_errors (userid, slice, tbl, starttime, session, query, \
                 transaction_id, database_name, filename, line_number, colname, type, col_length, \
                 position, raw_line, raw_field_value, err_code, err_reason, is_partial, start_offset) \
                 SELECT u, sl, t, CAST(st AS timestamp), se, q, tx, db, f, l, c, ty, cl, p, rl, rf, ec, er, 0, 0 \
                 FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::int[], $6::bigint[], \
                 $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], \
                 $13::text[], $14::int[], $15::text[], $16::text[], $17::int[], $18::text[]) \
                 AS r(u, sl, t, st, se, q, tx, db, f, l, c, ty, cl, p, rl, rf, ec, er)",
            )
            .await?;
        for chunk in rows.chunks(1000) {
            macro_rules! col {
                ($f:ident) => {
                    chunk.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
                };
            }
            tx.execute(
                &stmt,
                &[
                    &col!(userid),
                    &col!(slice),
                    &col!(tbl),
                    &col!(starttime),
                    &col!(session),
                    &col!(query),
                    &col!(transaction_id),
                    &col!(database_name),
                    &col!(filename),
                    &col!(line_number),
                    &col!(colname),
                    &col!(col_type),
                    &col!(col_length),
                    &col!(position),
                    &col!(raw_line),
                    &col!(raw_field_value),
                    &col!(err_code),
                    &col!(err_reason),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The largest query id in the log, so ids stay increasing across restarts.
    pub async fn max_query_id(&self) -> Result<i64> {
        let guard = self.log.lock().await;
        let Some(client) = guard.as_ref() else {
            return Ok(0);
        };
        let row = client
            .query_one("SELECT COALESCE(MAX(query), 0) FROM load_errors", &[])
            .await?;
        Ok(row.get(0))
    }
}
