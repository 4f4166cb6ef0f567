//! PostgreSQL as the warehouse (development, tests, small deployments).
//!
//! It gives the staged files the meaning Redshift's `COPY ... FORMAT AS JSON 'auto'` gives them:
//! first-level keys matched to the (lowercase) column names, a missing key loads NULL, extra
//! keys are ignored. A COPY tries three paths, each only if the one before refused a row:
//!
//! 1. **direct**: every staged line streamed into `COPY <table> FROM STDIN` as a row of the table
//!    (`rows`);
//! 2. **bulk**: the raw lines into a temporary table, then one `INSERT ... SELECT` of each
//!    column's key (`sql`);
//! 3. **row by row**: a PL/pgSQL function inserts each line on its own, so each bad row is
//!    rejected with its reason and column (MAXERROR) and the rest load.

mod rows;
mod sql;

use bytes::{Bytes, BytesMut};
use futures::SinkExt;

use super::{column, db_error, quote_ident, Connector, CopyOutcome, CopyRequest, Warehouse};
use crate::error::{Error, RejectedRow, Result};
use crate::hooks::{pause_at, Phase};
use crate::schema::{Column, Dialect, TableSchema};
use crate::stage::{GzipLines, Stage};
use crate::text::truncate_string;
use rows::{push_copy_row, push_flat_row, push_row};
use sql::{insert_select, row_by_row_function};

/// The temporary table that holds the raw lines of one load.
const STAGED: &str = "redtrack_staged";

/// How many bytes are sent to COPY at once.
const COPY_CHUNK: usize = 256 * 1024;

/// The most bytes of a raw value kept with a reject.
const MAX_RAW: usize = 1024;

/// PostgreSQL: one slice, COPY FROM STDIN of the staged files.
#[derive(Debug, Clone)]
pub struct PostgresWarehouse {
    connector: Connector,
}

impl PostgresWarehouse {
    /// A PostgreSQL warehouse reached through `connector`.
    pub fn new(connector: Connector) -> PostgresWarehouse {
        PostgresWarehouse { connector }
    }
}

/// How staged lines go into COPY.
#[derive(Clone, Copy)]
enum RowFormat<'a> {
    /// Straight into the table: each line's keys matched to these columns.
    Direct(&'a [Column]),
    /// Into the temporary table of raw lines.
    Raw,
}

/// How streaming the files into COPY ended.
enum Streamed {
    /// Every line was copied: how many.
    Done(u64),
    /// PostgreSQL (or the row encoder) refused a row: why.
    Refused(String),
}

/// Streams every staged file of `req` into `copy`, each line as `format` says.
///
/// Only a refused *row* is [`Streamed::Refused`]: a data exception or an integrity violation
/// (SQLSTATE classes 22 and 23) while the rows stream in. A COPY that cannot start (the table or
/// a column missing, no privilege) or a lost connection is an error, never a rejected row.
async fn stream_files<S: Stage>(
    txn: &tokio_postgres::Transaction<'_>,
    req: &CopyRequest,
    stage: &S,
    copy: &str,
    format: RowFormat<'_>,
) -> Result<Streamed> {
    let refused = |what: &str, e: tokio_postgres::Error| match (format, e.as_db_error()) {
        (RowFormat::Direct(_), Some(db)) if is_row_refusal(db.code()) => {
            Ok(Streamed::Refused(db.message().to_owned()))
        }
        _ => Err(db_error(what, e)),
    };
    let sink = txn
        .copy_in::<_, Bytes>(copy)
        .await
        .map_err(|e| db_error(&format!("starting COPY into {}", req.table.name), e))?;
    futures::pin_mut!(sink);
    let mut out = BytesMut::with_capacity(COPY_CHUNK * 2);
    let mut sent_any = false;
    let mut cells = Vec::new();
    for (file_no, file) in req.files.iter().enumerate() {
        let mut lines = GzipLines::open(stage, &file.key).await?;
        let mut line_no = 0u64;
        loop {
            let line = lines.next_line().await?;
            let end = line.is_none();
            if let Some(line) = line.filter(|l| !l.is_empty()) {
                line_no += 1;
                match format {
                    RowFormat::Raw => push_row(&mut out, file_no, line_no, line),
                    RowFormat::Direct(columns) => {
                        if push_flat_row(&mut out, columns, line, &mut cells).is_none()
                            && !push_copy_row(&mut out, columns, line)
                        {
                            // Dropping the sink aborts the COPY.
                            return Ok(Streamed::Refused(format!(
                                "line {line_no} of {} is not a JSON object",
                                file.url
                            )));
                        }
                    }
                }
            }
            if out.len() >= COPY_CHUNK || (end && !out.is_empty()) {
                if let Err(e) = sink.send(out.split().freeze()).await {
                    return refused("COPY FROM STDIN", e);
                }
                if !sent_any {
                    sent_any = true;
                    pause_at(Phase::Copy).await;
                }
            }
            if end {
                break;
            }
        }
    }
    if !sent_any {
        pause_at(Phase::Copy).await;
    }
    match sink.finish().await {
        Ok(rows) => Ok(Streamed::Done(rows)),
        Err(e) => refused("COPY FROM STDIN", e),
    }
}

/// Whether a COPY failing with `code` refused a row for its values: a data exception (class 22:
/// bad input syntax, a value too long or out of range) or an integrity violation (class 23: NULL
/// in a NOT NULL column, a check).
fn is_row_refusal(code: &tokio_postgres::error::SqlState) -> bool {
    let code = code.code();
    code.starts_with("22") || code.starts_with("23")
}

/// `f` inside a savepoint: kept if it gives `Some`, rolled back if it gives `None`.
async fn within_savepoint<T>(
    txn: &tokio_postgres::Transaction<'_>,
    name: &str,
    f: impl std::future::Future<Output = Result<Option<T>>>,
) -> Result<Option<T>> {
    txn.batch_execute(&format!("SAVEPOINT {name}"))
        .await
        .map_err(|e| db_error("SAVEPOINT", e))?;
    let kept = f.await?;
    let (sql, what) = match kept {
        Some(_) => (format!("RELEASE SAVEPOINT {name}"), "RELEASE SAVEPOINT"),
        None => (
            format!("ROLLBACK TO SAVEPOINT {name}"),
            "ROLLBACK TO SAVEPOINT",
        ),
    };
    txn.batch_execute(&sql)
        .await
        .map_err(|e| db_error(what, e))?;
    Ok(kept)
}

/// Path 1: the staged lines straight into the table. `None` if PostgreSQL refused a row.
async fn copy_direct<S: Stage>(
    txn: &tokio_postgres::Transaction<'_>,
    req: &CopyRequest,
    stage: &S,
) -> Result<Option<u64>> {
    let table = req.table;
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| quote_ident(c.name).into_owned())
        .collect();
    let direct = format!(
        "COPY {} ({}) FROM STDIN",
        quote_ident(table.name),
        cols.join(", ")
    );
    match stream_files(txn, req, stage, &direct, RowFormat::Direct(table.columns)).await? {
        Streamed::Done(rows) => Ok(Some(rows)),
        Streamed::Refused(why) => {
            tracing::info!(
                table = table.name,
                "COPY refused a row ({why}); finding the bad rows"
            );
            Ok(None)
        }
    }
}

/// The raw lines of every staged file into the temporary table; how many.
async fn copy_raw<S: Stage>(
    txn: &tokio_postgres::Transaction<'_>,
    req: &CopyRequest,
    stage: &S,
) -> Result<u64> {
    txn.batch_execute(&format!(
        "CREATE TEMPORARY TABLE IF NOT EXISTS {STAGED} (file_no integer NOT NULL, line_no bigint NOT NULL, doc text NOT NULL) ON COMMIT DROP"
    ))
    .await
    .map_err(|e| db_error("creating the temporary staging table", e))?;
    let copy = format!(
        "COPY {STAGED} (file_no, line_no, doc) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
    );
    match stream_files(txn, req, stage, &copy, RowFormat::Raw).await? {
        Streamed::Done(rows) => Ok(rows),
        Streamed::Refused(why) => Err(Error::Warehouse {
            message: format!("COPY into {STAGED}: {why}"),
            source: None,
        }),
    }
}

/// Path 2: every staged row at once from the temporary table. `None` if a row failed.
async fn insert_bulk(
    txn: &tokio_postgres::Transaction<'_>,
    table: &TableSchema,
) -> Result<Option<u64>> {
    let bulk = insert_select(
        table,
        Some(&format!(
            "{STAGED} AS s CROSS JOIN LATERAL (SELECT s.doc::json AS d) AS j"
        )),
        "j.d",
    );
    match txn.execute(bulk.as_str(), &[]).await {
        Ok(n) => Ok(Some(n)),
        Err(e) => {
            tracing::info!(
                table = table.name,
                "bulk insert failed ({}); inserting row by row to find the bad rows",
                e.as_db_error().map(|d| d.message()).unwrap_or("?")
            );
            Ok(None)
        }
    }
}

/// Path 3: row by row from the temporary table, each bad row rejected with its reason (at most
/// MAXERROR of them, else [`Error::LoadRejected`]).
async fn insert_row_by_row(
    txn: &tokio_postgres::Transaction<'_>,
    req: &CopyRequest,
    staged: u64,
) -> Result<CopyOutcome> {
    let table = req.table;
    txn.batch_execute(&row_by_row_function(table))
        .await
        .map_err(|e| db_error("creating the row-by-row load function", e))?;
    let max = i64::try_from(req.max_errors).unwrap_or(i64::MAX - 1);
    let rows = txn
        .query(
            "SELECT o_file, o_line, o_column, o_value, o_reason, o_doc FROM pg_temp.redtrack_insert_rows($1)",
            &[&max],
        )
        .await
        .map_err(|e| db_error("inserting row by row", e))?;
    let mut rejected = Vec::with_capacity(rows.len());
    for row in rows {
        const WHAT: &str = "reading the rows the row-by-row load rejected";
        let text = |i| column::<Option<String>>(&row, i, WHAT).map(Option::unwrap_or_default);
        let file_no: i32 = column(&row, 0, WHAT)?;
        let line: i64 = column(&row, 1, WHAT)?;
        let file = usize::try_from(file_no)
            .ok()
            .and_then(|i| req.files.get(i))
            .map(|f| f.url.clone())
            .unwrap_or_default();
        let mut row = RejectedRow::new(
            file,
            u64::try_from(line).unwrap_or(0),
            text(2)?,
            truncate_string(text(3)?, MAX_RAW),
            text(4)?,
        );
        // The whole staged line, kept so the row can be loaded again once the table is fixed.
        row.raw = Some(bytes::Bytes::from(text(5)?));
        rejected.push(row);
    }
    let n_rejected = rejected.len() as u64;
    if n_rejected > req.max_errors {
        let first = rejected.swap_remove(0);
        return Err(first.into_error(table.name, n_rejected, req.max_errors));
    }
    Ok(CopyOutcome {
        loaded: staged - n_rejected,
        rejected,
    })
}

impl Warehouse for PostgresWarehouse {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn connect(&self) -> Result<tokio_postgres::Client> {
        self.connector.connect().await
    }

    async fn slices(&self, _client: &tokio_postgres::Client) -> Result<usize> {
        Ok(1)
    }

    /// The event table in SHARE ROW EXCLUSIVE mode: it conflicts with itself and with writes,
    /// so loads of one table take turns, while readers of the table go on.
    fn lock_sql(&self, table: &TableSchema) -> String {
        format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            quote_ident(table.name)
        )
    }

    async fn copy<'a, S: Stage>(
        &'a self,
        txn: &'a tokio_postgres::Transaction<'a>,
        req: &'a CopyRequest,
        stage: &'a S,
    ) -> Result<CopyOutcome> {
        let loaded = |loaded| CopyOutcome {
            loaded,
            rejected: Vec::new(),
        };
        if let Some(rows) =
            within_savepoint(txn, "redtrack_direct", copy_direct(txn, req, stage)).await?
        {
            return Ok(loaded(rows));
        }
        let staged = copy_raw(txn, req, stage).await?;
        if let Some(rows) =
            within_savepoint(txn, "redtrack_bulk", insert_bulk(txn, req.table)).await?
        {
            return Ok(loaded(rows));
        }
        insert_row_by_row(txn, req, staged).await
    }
}
