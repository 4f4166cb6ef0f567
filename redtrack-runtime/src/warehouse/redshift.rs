//! Amazon Redshift as the warehouse: `COPY ... FROM '<manifest>' ... FORMAT AS JSON 'auto' GZIP
//! MANIFEST`, slices from `stv_slices`, rows from `pg_last_copy_count()`, and rejected rows from
//! `sys_load_error_detail` (with the raw line read back from the staged file).

use aws_sdk_s3::config::ProvideCredentials;

use super::masked::{mask, MaskGuard};
use super::{
    column, db_error, quote_ident, Connector, CopyOutcome, CopyRequest, RejectedRow, Warehouse,
};
use crate::aws::Aws;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hooks::{pause_at, Phase};
use crate::schema::limits::MAX_MAXERROR;
use crate::schema::{Dialect, TableSchema};
use crate::stage::{GzipLines, Stage};
use crate::text::truncate_string;

/// Takes the lock that makes loads of one table take turns: Redshift has one, exclusive, lock
/// (page `r_LOCK`), taken on the event table itself, so loads of other tables and readers of
/// `kinesis_loads` never wait for it.
pub(crate) fn lock_sql(table: &TableSchema) -> String {
    format!("LOCK {}", quote_ident(table.name))
}

/// How many slices: one staged file per slice (or a multiple) keeps every slice busy.
pub(crate) const SLICES_SQL: &str = "SELECT COUNT(*) FROM stv_slices";

/// Rows loaded by the last COPY of this session.
pub(crate) const LAST_COPY_COUNT_SQL: &str = "SELECT pg_last_copy_count()";

/// The load errors of one load's files (`$1` is the load folder's URL followed by `%`).
pub(crate) const LOAD_ERRORS_SQL: &str = "SELECT TRIM(file_name), line_number, TRIM(column_name), \
     TRIM(error_message) FROM sys_load_error_detail WHERE file_name LIKE $1 \
     ORDER BY file_name, line_number LIMIT 1001";

/// How COPY authenticates to S3.
#[derive(Clone)]
enum Auth {
    /// `IAM_ROLE '<arn>'`.
    Role(String),
    /// The AWS credentials of the loader's environment: the SDK configuration the loader's
    /// other parts share (loaded from `config` on first use), whose provider caches them.
    Credentials { aws: Aws, config: Box<Config> },
}

/// Amazon Redshift, provisioned or Serverless.
#[derive(Clone)]
pub struct RedshiftWarehouse {
    connector: Connector,
    auth: Auth,
    /// The files of a load where `stv_slices` does not exist (Serverless).
    serverless_files: usize,
}

impl std::fmt::Debug for RedshiftWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Auth::Role(arn) => arn.as_str(),
            Auth::Credentials { .. } => "<credentials>",
        };
        f.debug_struct("RedshiftWarehouse")
            .field("connector", &self.connector)
            .field("auth", &auth)
            .field("serverless_files", &self.serverless_files)
            .finish()
    }
}

/// `'text'`: a SQL string literal, for the few places where a bound parameter is impossible
/// (COPY's source and credentials). Refuses backslashes and control characters, whose meaning
/// differs between servers.
pub(crate) fn quote_literal(what: &str, text: &str) -> Result<String> {
    if text.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(Error::Config(format!(
            "the {what} may not contain backslashes or control characters"
        )));
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// The MAXERROR that lets COPY reject up to `allowed` rows and fail on one more: Redshift fails
/// a load once its errors *reach* MAXERROR, and 0 and 1 both stop at the first error (page
/// `copy-parameters-data-load`, MAXERROR), so `allowed + 1`, at most Redshift's 100,000 (which
/// allows 99,999).
pub(crate) fn maxerror_for(allowed: u64) -> u64 {
    allowed.saturating_add(1).min(MAX_MAXERROR)
}

/// The `COPY` statement of a load, with `authorization` (`IAM_ROLE '...'` or the credentials)
/// already rendered; COPY may reject up to `allowed` rows ([`maxerror_for`]).
pub(crate) fn copy_sql(req: &CopyRequest, authorization: &str, allowed: u64) -> Result<String> {
    Ok(format!(
        "COPY {} FROM {} {authorization} FORMAT AS JSON 'auto' GZIP MANIFEST TIMEFORMAT 'auto' DATEFORMAT 'auto' MAXERROR {}",
        quote_ident(req.table.name),
        quote_literal("manifest URL", &req.manifest_url)?,
        maxerror_for(allowed)
    ))
}

/// `IAM_ROLE '<arn>'`.
pub(crate) fn iam_role_clause(arn: &str) -> Result<String> {
    Ok(format!("IAM_ROLE {}", quote_literal("IAM role ARN", arn)?))
}

/// `ACCESS_KEY_ID '...' SECRET_ACCESS_KEY '...' [SESSION_TOKEN '...']`.
pub(crate) fn credentials_clause(key: &str, secret: &str, token: Option<&str>) -> Result<String> {
    let mut s = format!(
        "ACCESS_KEY_ID {} SECRET_ACCESS_KEY {}",
        quote_literal("access key id", key)?,
        quote_literal("secret access key", secret)?
    );
    if let Some(t) = token {
        s.push_str(&format!(
            " SESSION_TOKEN {}",
            quote_literal("session token", t)?
        ));
    }
    Ok(s)
}

impl RedshiftWarehouse {
    /// A Redshift warehouse reached through `connector`; COPY uses `config`'s IAM role, or else
    /// its AWS credentials.
    pub fn new(connector: Connector, config: &Config) -> RedshiftWarehouse {
        RedshiftWarehouse::with_aws(connector, config, &Aws::default())
    }

    /// A Redshift warehouse whose COPY credentials come from the SDK configuration `aws`
    /// shares with the other parts of a loader.
    pub(crate) fn with_aws(connector: Connector, config: &Config, aws: &Aws) -> RedshiftWarehouse {
        let auth = match &config.copy_iam_role {
            Some(arn) => Auth::Role(arn.clone()),
            None => Auth::Credentials {
                aws: aws.clone(),
                config: Box::new(config.clone()),
            },
        };
        RedshiftWarehouse {
            connector,
            auth,
            serverless_files: config.loader.serverless_files(),
        }
    }

    /// COPY's authorization clause. With credentials, the clause holds placeholders of the
    /// access key, the secret and the session token, and the guards that swap them back on the
    /// wire (keep them until the COPY was sent): the statement's text, which tokio-postgres logs,
    /// never holds a secret.
    async fn authorization(&self) -> Result<(String, Vec<MaskGuard>)> {
        match &self.auth {
            Auth::Role(arn) => Ok((iam_role_clause(arn)?, Vec::new())),
            Auth::Credentials { aws, config } => {
                let sdk = aws.sdk(config).await;
                let provider = sdk.credentials_provider().ok_or_else(|| {
                    Error::Config(
                        "COPY needs REDTRACK_COPY_IAM_ROLE or AWS credentials, and neither is set"
                            .into(),
                    )
                })?;
                let creds = provider.provide_credentials().await.map_err(|e| {
                    Error::Config(format!(
                        "COPY needs AWS credentials to read the stage, and none could be loaded \
                         ({}): set REDTRACK_COPY_IAM_ROLE (recommended), or AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
                        crate::text::error_chain(&e)
                    ))
                })?;
                let mut guards = Vec::new();
                let mut masked = |what: &str, value: &str| -> Result<String> {
                    let literal = quote_literal(what, value)?;
                    let guard = mask(&literal[1..literal.len() - 1]);
                    let placeholder = guard.placeholder().to_owned();
                    guards.push(guard);
                    Ok(placeholder)
                };
                let key = masked("access key id", creds.access_key_id())?;
                let secret = masked("secret access key", creds.secret_access_key())?;
                let token = creds
                    .session_token()
                    .map(|t| masked("session token", t))
                    .transpose()?;
                Ok((credentials_clause(&key, &secret, token.as_deref())?, guards))
            }
        }
    }

    /// The rows of `sys_load_error_detail` for this load's files, each with its raw line read
    /// back from the stage.
    async fn load_errors<S: Stage>(
        &self,
        client: &tokio_postgres::Transaction<'_>,
        req: &CopyRequest,
        stage: &S,
    ) -> Result<Vec<RejectedRow>> {
        let pattern = format!("{}%", stage.url(&req.folder));
        let rows = client
            .query(LOAD_ERRORS_SQL, &[&pattern])
            .await
            .map_err(|e| db_error("reading sys_load_error_detail", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            const WHAT: &str = "reading sys_load_error_detail";
            let text = |i| column::<Option<String>>(&row, i, WHAT).map(Option::unwrap_or_default);
            let file = text(0)?;
            let line = column::<Option<i64>>(&row, 1, WHAT)?.unwrap_or(0);
            let mut reject = RejectedRow::new(
                file,
                u64::try_from(line).unwrap_or(0),
                text(2)?,
                String::new(),
                text(3)?,
            );
            if let Some(f) = req.files.iter().find(|f| f.url == reject.file) {
                match read_line(stage, &f.key, reject.line).await {
                    Ok(line) => {
                        reject.value = field_value(
                            String::from_utf8_lossy(&line).into_owned(),
                            &reject.column,
                        );
                        // The whole staged line, so the row can be loaded again later.
                        reject.raw = Some(bytes::Bytes::from(line));
                    }
                    // The reject stands; say why its raw line is missing.
                    Err(e) => reject
                        .reason
                        .push_str(&format!(" (its raw line could not be read back: {e})")),
                }
            }
            out.push(reject);
        }
        Ok(out)
    }
}

/// Whether `e` says a system table does not exist for this user (undefined table, or no
/// permission to read it): how Redshift Serverless answers for an STL/STV table.
fn no_system_table(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code()
        .is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INSUFFICIENT_PRIVILEGE)
}

/// Line `n` (1-based) of the gzip'd staged file `key`; empty if the file has fewer lines.
async fn read_line<S: Stage>(stage: &S, key: &str, n: u64) -> Result<Vec<u8>> {
    let mut lines = GzipLines::open(stage, key).await?;
    let mut i = 0;
    while let Some(line) = lines.next_line().await? {
        i += 1;
        if i == n {
            return Ok(line.to_vec());
        }
    }
    Ok(Vec::new())
}

/// The raw value of a rejected row, as `stl_load_errors.raw_field_value` would give it (which
/// `sys_load_error_detail`, the view both provisioned and Serverless have, lacks): the value of
/// `column`'s key in the staged JSON `line` (a string without its quotes, anything else as JSON
/// text, a missing key empty), else the whole line; at most 1024 bytes.
fn field_value(line: String, column: &str) -> String {
    let field = (!column.is_empty())
        .then(|| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line).ok())
        .flatten()
        .map(|object| match object.get(column) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        });
    truncate_string(field.unwrap_or(line), 1024)
}

impl Warehouse for RedshiftWarehouse {
    fn dialect(&self) -> Dialect {
        Dialect::Redshift
    }

    async fn connect(&self) -> Result<tokio_postgres::Client> {
        self.connector.connect().await
    }

    /// The slice count of a provisioned cluster (`stv_slices`, page `r_STV_SLICES`). Redshift
    /// Serverless has no STL/STV tables (page `c_intro_system_views`): where `stv_slices` is
    /// missing or not readable, the configured file count stands in for it
    /// (`ConfigBuilder::with_serverless_files`).
    async fn slices(&self, client: &tokio_postgres::Client) -> Result<usize> {
        const WHAT: &str = "counting slices (stv_slices)";
        let row = match client.query_one(SLICES_SQL, &[]).await {
            Ok(row) => row,
            Err(e) if no_system_table(&e) => {
                tracing::debug!(
                    files = self.serverless_files,
                    "no stv_slices (Redshift Serverless): staging the configured number of files"
                );
                return Ok(self.serverless_files);
            }
            Err(e) => return Err(db_error(WHAT, e)),
        };
        let n: i64 = column(&row, 0, WHAT)?;
        Ok(usize::try_from(n).unwrap_or(1).max(1))
    }

    /// `LOCK <table>`: Redshift's lock is exclusive (page `r_LOCK`), so it is taken on the event
    /// table, which only loads write: readers of that table wait for a load's COPY, loads of
    /// other tables and readers of the bookkeeping do not.
    fn lock_sql(&self, table: &TableSchema) -> String {
        lock_sql(table)
    }

    /// Redshift's COPY reads only from S3: an `s3://` stage.
    fn check_stage<S: Stage>(&self, stage: &S) -> Result<()> {
        if stage.url("").starts_with("s3://") {
            Ok(())
        } else {
            Err(Error::Config(
                "the Redshift warehouse needs an S3 stage (REDTRACK_STAGE=s3://bucket/prefix)"
                    .into(),
            ))
        }
    }

    async fn copy<'a, S: Stage>(
        &'a self,
        txn: &'a tokio_postgres::Transaction<'a>,
        req: &'a CopyRequest,
        stage: &'a S,
    ) -> Result<CopyOutcome> {
        self.check_stage(stage)?;
        let (authorization, masks) = self.authorization().await?;
        let sql = copy_sql(req, &authorization, req.max_errors)?;
        pause_at(Phase::Copy).await;
        let copied = txn.batch_execute(&sql).await;
        drop(masks);
        if let Err(e) = copied {
            // The transaction is aborted: read the errors on a fresh connection.
            let mut detail = Vec::new();
            if let Ok(mut other) = self.connect().await {
                if let Ok(t) = other.transaction().await {
                    detail = self.load_errors(&t, req, stage).await.unwrap_or_default();
                }
            }
            let rejected = detail.len() as u64;
            return Err(match detail.into_iter().next() {
                Some(first) => first.into_error(req.table.name, rejected, req.max_errors),
                None => db_error(&format!("COPY into {}", req.table.name), e),
            });
        }
        let row = txn
            .query_one(LAST_COPY_COUNT_SQL, &[])
            .await
            .map_err(|e| db_error("pg_last_copy_count()", e))?;
        let loaded = u64::try_from(column::<i64>(&row, 0, "pg_last_copy_count()")?).unwrap_or(0);
        let rejected = if loaded < req.lines() {
            self.load_errors(txn, req, stage).await?
        } else {
            Vec::new()
        };
        Ok(CopyOutcome { loaded, rejected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, SortKey, SqlType, TableSchema};

    static T: TableSchema = TableSchema {
        name: "test_events",
        columns: &[Column {
            name: "a",
            sql_type: SqlType::Integer,
            nullable: false,
            encode: None,
        }],
        sortkey: SortKey::None,
        distkey: None,
        diststyle: None,
    };

    #[test]
    fn a_rejects_value_is_its_columns_field() {
        let line = r#"{"a":"soon","b":12,"c":{"x":[1]}}"#.to_owned();
        assert_eq!(field_value(line.clone(), "a"), "soon");
        assert_eq!(field_value(line.clone(), "b"), "12");
        assert_eq!(field_value(line.clone(), "c"), r#"{"x":[1]}"#);
        assert_eq!(field_value(line.clone(), "d"), "");
        assert_eq!(field_value(line.clone(), ""), line);
        assert_eq!(field_value("not json".into(), "a"), "not json");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_literal("x", "it's").unwrap(), "'it''s'");
        assert!(quote_literal("x", "a\\b").is_err());
        assert!(quote_literal("x", "a\nb").is_err());
    }

    #[test]
    fn copy_statement() {
        let req = CopyRequest {
            table: &T,
            load_id: "x".into(),
            folder: "redtrack/c/d/test_events/20261124/load-x".into(),
            manifest_url: "s3://b/redtrack/c/d/test_events/20261124/load-x/manifest.json".into(),
            files: vec![],
            max_errors: 7,
        };
        let role = iam_role_clause("arn:aws:iam::123456789012:role/r").unwrap();
        assert_eq!(
            copy_sql(&req, &role, 7).unwrap(),
            "COPY test_events FROM 's3://b/redtrack/c/d/test_events/20261124/load-x/manifest.json' \
             IAM_ROLE 'arn:aws:iam::123456789012:role/r' FORMAT AS JSON 'auto' GZIP MANIFEST \
             TIMEFORMAT 'auto' DATEFORMAT 'auto' MAXERROR 8"
        );
        let creds = credentials_clause("AK", "S'x", Some("T")).unwrap();
        assert_eq!(
            creds,
            "ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'S''x' SESSION_TOKEN 'T'"
        );
        assert!(copy_sql(&req, &creds, 1_000_000)
            .unwrap()
            .ends_with("MAXERROR 100000"));
    }

    /// MAXERROR n fails once n rows are rejected; 0 and 1 both stop at the first
    /// (copy-parameters-data-load): allowing n rejects takes MAXERROR n + 1.
    #[test]
    fn maxerror_allows_the_rejects_asked_for() {
        assert_eq!(maxerror_for(0), 1);
        assert_eq!(maxerror_for(1), 2);
        assert_eq!(maxerror_for(99_999), 100_000);
        assert_eq!(maxerror_for(u64::MAX), 100_000);
    }
}
