//! `COPY table FROM 's3://...' ... FORMAT JSON` (r_COPY), run by the stand-in inside the
//! client's session and transaction:
//!
//! 1. the target's columns are read in the client's session (so a table created earlier in
//!    the same transaction is seen, and privileges are the client's);
//! 2. the files are listed (prefix) or read from the manifest, with the COPY's credentials;
//! 3. PostgreSQL's `COPY ... FROM STDIN` starts in the client's session; the files are fetched
//!    concurrently, decompressed, split into objects and converted on blocking threads, and the
//!    rows stream into PostgreSQL in CopyData messages (nothing holds a whole file);
//! 4. rejected rows are counted against MAXERROR: the load fails once they reach it, and 0 and
//!    1 both fail at the first (copy-parameters-data-load); a failure aborts PostgreSQL's COPY,
//!    so nothing of the load is kept (copy-usage_notes-multiple-files: "atomic and
//!    transactional");
//! 5. every rejected row goes to the load-error log, committed on its own connection so that
//!    it outlives the COPY's rollback (r_STL_LOAD_ERRORS, SYS_LOAD_ERROR_DETAIL);
//! 6. the session's PG_LAST_COPY_COUNT / PG_LAST_COPY_ID are set: the id when loading
//!    starts, the count to the rows loaded, 0 if the load failed (PG_LAST_COPY_COUNT).

pub mod command;
pub mod convert;
pub mod datetime;
pub mod json;
pub mod s3;

use crate::error::SqlError;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pgwire::error::ErrorInfo;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::extendedquery::Flush;
use pgwire::messages::response::NoticeResponse;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::mpsc;

use crate::admin::LoadErrorRow;
use crate::error::{err, err_detail};
use crate::session::{Fail, Session, Shared};
use command::CopyCommand;
use convert::{ColumnRule, Kind, Options};
use datetime::Fallback;
use json::{Framer, Item, RowWriter, MAX_OBJECT};

/// Rows are sent to PostgreSQL in CopyData messages of about this size.
const BATCH_BYTES: usize = 256 * 1024;
/// Files fetched and converted at once.
const MAX_PARALLEL_FILES: usize = 4;

/// A rejected row.
#[derive(Debug, Clone)]
struct Rejected {
    file: usize,
    url: String,
    slice: i32,
    line: u64,
    column: String,
    col_type: String,
    col_length: String,
    position: i32,
    raw_line: String,
    raw_field: String,
    code: i32,
    reason: String,
}

enum Msg {
    Rows(Vec<u8>, u64),
    Reject(Box<Rejected>),
    /// The load can't go on; the row that caused it, if one did.
    Fatal(SqlError, Option<Box<Rejected>>),
}

/// What the conversion threads share.
struct Plan {
    writer: RowWriter,
    gzip: bool,
    ignore_header: u64,
    fallback: PgFallback,
}

/// PostgreSQL's date/time parser on a connection of its own (see `datetime`).
struct PgFallback {
    admin: crate::admin::AdminConfig,
    handle: tokio::runtime::Handle,
    client: Mutex<Option<Option<tokio_postgres::Client>>>,
}

impl PgFallback {
    fn connect(&self) -> Option<tokio_postgres::Client> {
        let cfg = self.admin.clone();
        self.handle.block_on(async move {
            let mut c = tokio_postgres::Config::new();
            c.host(&cfg.host)
                .port(cfg.port)
                .user(&cfg.user)
                .dbname("postgres")
                .application_name("redshift-local dates")
                .options("-c DateStyle=ISO,MDY -c TimeZone=UTC");
            if let Some(p) = &cfg.password {
                c.password(p);
            }
            let (client, conn) = c.connect(tokio_postgres::NoTls).await.ok()?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(client)
        })
    }
}

impl Fallback for PgFallback {
    fn datetime(&self, text: &str, kind: Kind) -> Option<String> {
        let ty = match kind {
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::Timestamptz => "timestamptz",
            Kind::Time => "time",
            Kind::Timetz => "timetz",
            _ => return None,
        };
        let mut guard = self.client.lock().ok()?;
        if guard.is_none() {
            *guard = Some(self.connect());
        }
        let client = guard.as_ref()?.as_ref()?;
        // `$1` typed as text: `CAST($1 AS date)` alone would make it a DATE parameter, which a
        // string can't be bound to, and every value would be refused.
        let sql = format!("SELECT CAST(CAST(CAST($1 AS text) AS {ty}) AS text)");
        let text = text.to_owned();
        self.handle
            .block_on(async move { client.query_one(sql.as_str(), &[&text]).await })
            .ok()
            .and_then(|r| r.get::<_, Option<String>>(0))
    }
}

/// Reads the body chunks an async task receives from S3.
struct ChanReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Cuts `s` to at most `n` bytes on a character boundary.
fn cut(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// raw_line: multibyte characters (and invalid bytes) as '.', at most 1024 bytes
/// (r_STL_LOAD_ERRORS).
fn raw_line(obj: &[u8]) -> String {
    let mut out = String::with_capacity(obj.len().min(1024));
    for chunk in obj.utf8_chunks() {
        for c in chunk.valid().chars() {
            if out.len() >= 1024 {
                return out;
            }
            out.push(if c.is_ascii() { c } else { '.' });
        }
        for _ in chunk.invalid() {
            if out.len() >= 1024 {
                return out;
            }
            out.push('.');
        }
    }
    out
}

fn convert_file(
    index: usize,
    url: String,
    slice: i32,
    plan: Arc<Plan>,
    body: mpsc::Receiver<Result<Bytes, String>>,
    tx: mpsc::Sender<Msg>,
    stop: Arc<AtomicBool>,
) {
    let reader = ChanReader {
        rx: body,
        cur: Bytes::new(),
    };
    let mut reader: Box<dyn Read> = if plan.gzip {
        Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(256 * 1024, reader),
        ))
    } else {
        Box::new(reader)
    };
    let mut framer = Framer::new(plan.ignore_header);
    let mut out = Vec::with_capacity(BATCH_BYTES + 64 * 1024);
    let mut rows = 0u64;
    let reject = |line: u64,
                  column: Option<usize>,
                  obj: &[u8],
                  raw_field: String,
                  e: convert::FieldError| {
        let rule = column.and_then(|c| plan.writer.columns.get(c));
        Box::new(Rejected {
            file: index,
            url: url.clone(),
            slice,
            line,
            column: rule.map(|r| r.name.clone()).unwrap_or_default(),
            col_type: rule.map(|r| r.label.clone()).unwrap_or_default(),
            col_length: rule.map(|r| r.length_label.clone()).unwrap_or_default(),
            position: e.position,
            raw_line: raw_line(obj),
            raw_field: cut(&raw_field, 1024),
            code: e.code,
            reason: cut(&e.reason, 512),
        })
    };
    let fe = |code: i32, reason: String| convert::FieldError {
        code,
        reason,
        position: 0,
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let n = match framer.fill(&mut reader) {
            Ok(n) => n,
            Err(e) => {
                let what = if plan.gzip { "gzip" } else { "read" };
                let _ = tx.blocking_send(Msg::Fatal(
                    err_detail(
                        "XX000",
                        format!("{what} error in {url}: {e}"),
                        "The file is not valid GZIP data, or its download failed (copy-parameters-file-compression).",
                    ),
                    None,
                ));
                return;
            }
        };
        let eof = n == 0;
        while let Some(item) = framer.next_item(eof) {
            let msg = match item {
                Item::Object(obj, line) if obj.len() > MAX_OBJECT => Some(too_big(reject(
                    line,
                    None,
                    obj,
                    String::new(),
                    fe(1204, too_big_reason(obj.len())),
                ))),
                Item::Object(obj, line) => {
                    match plan.writer.object(obj, &plan.fallback, &mut out) {
                        Ok(()) => {
                            rows += 1;
                            None
                        }
                        Err(e) if e.fatal => {
                            let r = reject(line, e.column, obj, e.raw_field, e.error);
                            Some(Msg::Fatal(load_failed_info(&r), Some(r)))
                        }
                        Err(e) => Some(Msg::Reject(reject(
                            line,
                            e.column,
                            obj,
                            e.raw_field,
                            e.error,
                        ))),
                    }
                }
                Item::Array(obj, line) => Some(Msg::Reject(reject(
                    line,
                    None,
                    obj,
                    String::new(),
                    fe(
                        1224,
                        "Invalid JSON: JSON 'auto' loads objects; an array needs a JSONPaths file"
                            .into(),
                    ),
                ))),
                Item::Junk(j, line) => Some(Msg::Reject(reject(
                    line,
                    None,
                    j,
                    String::new(),
                    fe(
                        1224,
                        "Malformed JSON: characters other than white space between JSON objects"
                            .into(),
                    ),
                ))),
                Item::Unterminated(obj, line) => Some(Msg::Reject(reject(
                    line,
                    None,
                    obj,
                    String::new(),
                    fe(
                        1224,
                        "Malformed JSON: the object is not closed before the end of the file"
                            .into(),
                    ),
                ))),
            };
            if let Some(m) = msg {
                let fatal = matches!(m, Msg::Fatal(..));
                if tx.blocking_send(m).is_err() || fatal {
                    return;
                }
            }
            if out.len() >= BATCH_BYTES {
                let data = std::mem::replace(&mut out, Vec::with_capacity(BATCH_BYTES + 64 * 1024));
                if tx.blocking_send(Msg::Rows(data, rows)).is_err() {
                    return;
                }
                rows = 0;
            }
        }
        if framer.open_value_len() > MAX_OBJECT {
            let len = framer.open_value_len();
            let r = reject(0, None, b"", String::new(), fe(1204, too_big_reason(len)));
            let _ = tx.blocking_send(too_big(r));
            return;
        }
        if eof {
            break;
        }
    }
    if !out.is_empty() || rows > 0 {
        let _ = tx.blocking_send(Msg::Rows(out, rows));
    }
}

fn too_big_reason(len: usize) -> String {
    format!("JSON object of {len} bytes exceeds the 4 MB maximum (copy-parameters-data-format)")
}

/// A JSON object over 4 MB fails the COPY (copy-parameters-data-format).
fn too_big(r: Box<Rejected>) -> Msg {
    Msg::Fatal(load_failed_info(&r), Some(r))
}

fn load_failed_info(r: &Rejected) -> SqlError {
    err(
        "XX000",
        format!(
            "Load failed: {} (code {}, {} line {})",
            r.reason, r.code, r.url, r.line
        ),
    )
}

/// Runs a COPY in `session`; the INFO notices to send on success.
pub async fn run(
    session: &mut Session,
    shared: &Shared,
    cmd: &CopyCommand,
) -> Result<Vec<NoticeResponse>, Fail> {
    // 1. the table, its columns, and who and where we are
    let info = session
        .internal(
            "SELECT c.oid::integer, a.attname::text, a.atttypid::integer, a.atttypmod, a.attnotnull, \
             a.attidentity::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
             WHERE c.oid = CAST($1 AS regclass) ORDER BY a.attnum",
            &[Some(cmd.table.clone())],
        )
        .await?;
    let who = session
        .internal(
            "SELECT pg_catalog.txid_current()::text, pg_catalog.pg_backend_pid()::text, \
             pg_catalog.current_database()::text, \
             (SELECT oid::integer FROM pg_catalog.pg_roles WHERE rolname = session_user)::text, \
             to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
            &[],
        )
        .await?;
    let who = who.rows.into_iter().next().unwrap_or_default();
    let w = |i: usize| who.get(i).cloned().flatten().unwrap_or_default();
    let (txid, pid, database, userid, starttime) = (w(0), w(1), w(2), w(3), w(4));
    let v = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    let tbl: i32 = info
        .rows
        .first()
        .map(|r| v(r, 0))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // 2. the columns loaded, in order (copy-parameters-data-format: a column left out of the
    //    column list gets its DEFAULT; a listed one with no matching key gets NULL)
    let mut rules = Vec::new();
    let mut defaults = Vec::new();
    let names: Vec<String> = match &cmd.columns {
        Some(list) => {
            for c in list {
                if !info.rows.iter().any(|r| v(r, 1) == *c) {
                    return Err(Fail::Local(err(
                        "42703",
                        format!(
                            "column \"{c}\" of relation \"{}\" does not exist",
                            cmd.table_name
                        ),
                    )));
                }
            }
            list.clone()
        }
        None => info
            .rows
            .iter()
            .filter(|r| {
                let identity = v(r, 5);
                // IDENTITY columns are generated unless EXPLICIT_IDS (copy-parameters-data-conversion)
                identity.is_empty() || cmd.explicit_ids
            })
            .map(|r| v(r, 1))
            .collect(),
    };
    for name in &names {
        let Some(r) = info.rows.iter().find(|r| v(r, 1) == *name) else {
            continue;
        };
        let mut rule = ColumnRule::new(
            name,
            v(r, 2).parse().unwrap_or(0),
            v(r, 3).parse().unwrap_or(-1),
            v(r, 4) == "t",
        );
        let default = v(r, 6);
        if rule.notnull && !default.is_empty() {
            defaults.push((rules.len(), default));
        }
        rule.notnull = v(r, 4) == "t";
        rules.push(rule);
    }
    // a NULL field of a NOT NULL column with a DEFAULT loads the default (r_ALTER_TABLE DEFAULT)
    for (i, expr) in defaults {
        let r = session
            .internal(&format!("SELECT CAST(({expr}) AS text)"), &[])
            .await?;
        rules[i].default = r.rows.first().and_then(|r| r.first().cloned().flatten());
    }
    // 3. the files
    let client = shared.s3.client(&cmd.auth, cmd.region.as_deref());
    let files = s3::files(&client, &cmd.source, cmd.manifest)
        .await
        .map_err(Fail::Local)?;
    // 4. PostgreSQL's COPY, in the client's session and transaction
    let column_list = names
        .iter()
        .map(|n| crate::sql::cursor::quote_ident(n))
        .collect::<Vec<_>>()
        .join(", ");
    if !cmd.noload {
        session
            .start_copy_in(&format!("COPY {} ({column_list}) FROM STDIN", cmd.table))
            .await?;
    }
    let query_id = shared.next_query_id();
    session.last_copy_id = query_id;
    session.last_copy_count = 0;

    let opts = Options {
        truncate_columns: cmd.truncate_columns,
        empty_as_null: cmd.empty_as_null,
        blanks_as_null: cmd.blanks_as_null,
        trim_blanks: cmd.trim_blanks,
        round_dec: cmd.round_dec,
        date_format: cmd.date_format,
        time_format: cmd.time_format,
    };
    let plan = Arc::new(Plan {
        writer: RowWriter::new(rules, cmd.ignorecase, cmd.accept_inv_chars, opts),
        gzip: cmd.gzip,
        ignore_header: cmd.ignore_header,
        fallback: PgFallback {
            admin: shared.admin.config().clone(),
            handle: tokio::runtime::Handle::current(),
            client: Mutex::new(None),
        },
    });
    let slices = shared.settings.slices.max(1) as usize;
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let stop = Arc::new(AtomicBool::new(false));
    let permits = Arc::new(tokio::sync::Semaphore::new(
        MAX_PARALLEL_FILES.min(files.len().max(1)),
    ));
    let mut tasks = Vec::with_capacity(files.len());
    for (i, f) in files.iter().cloned().enumerate() {
        let (tx, stop, plan, client, permits) = (
            tx.clone(),
            stop.clone(),
            plan.clone(),
            client.clone(),
            permits.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let got = client
                .get_object()
                .bucket(&f.bucket)
                .key(&f.key)
                .send()
                .await;
            let mut body = match got {
                Ok(o) => o.body,
                Err(e) => {
                    let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                    if missing && !f.mandatory {
                        // an optional manifest entry that isn't there is skipped
                        return;
                    }
                    let _ = tx
                        .send(Msg::Fatal(
                            s3::s3_error(&e, &format!("S3 key being read : {}", f.url)),
                            None,
                        ))
                        .await;
                    return;
                }
            };
            let (btx, brx) = mpsc::channel::<Result<Bytes, String>>(8);
            let conv = {
                let (tx, stop, plan) = (tx.clone(), stop.clone(), plan.clone());
                let url = f.url.clone();
                tokio::task::spawn_blocking(move || {
                    convert_file(i, url, (i % slices) as i32, plan, brx, tx, stop)
                })
            };
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match body.try_next().await {
                    Ok(Some(chunk)) => {
                        if btx.send(Ok(chunk)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = btx.send(Err(format!("downloading {}: {e}", f.url))).await;
                        break;
                    }
                }
            }
            drop(btx);
            let _ = conv.await;
        }));
    }
    drop(tx);

    // 5. rows into PostgreSQL, rejects counted against MAXERROR
    let threshold = cmd.max_error.max(1) as usize;
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut loaded: u64 = 0;
    let mut failure: Option<SqlError> = None;
    let mut unflushed = 0usize;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Rows(data, rows) => {
                loaded += rows;
                if !cmd.noload && !data.is_empty() {
                    unflushed += data.len();
                    session
                        .backend
                        .feed(PgWireFrontendMessage::CopyData(CopyData::new(Bytes::from(
                            data,
                        ))))
                        .await?;
                    if unflushed >= 4 * BATCH_BYTES {
                        session.backend.flush().await?;
                        unflushed = 0;
                    }
                }
            }
            Msg::Reject(r) => {
                rejected.push(*r);
                if rejected.len() >= threshold {
                    failure = Some(load_failed(cmd, shared, session, &rejected, query_id, &pid));
                    break;
                }
            }
            Msg::Fatal(e, r) => {
                let has_row = r.is_some();
                if let Some(r) = r {
                    rejected.push(*r);
                }
                failure = Some(if has_row {
                    load_failed(cmd, shared, session, &rejected, query_id, &pid)
                } else {
                    e
                });
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for t in tasks {
        let _ = t.await;
    }
    // 6. finish PostgreSQL's COPY
    let mut outcome: Result<u64, SqlError> = match failure {
        Some(e) => Err(e),
        None => Ok(loaded),
    };
    if !cmd.noload {
        let end = match &outcome {
            Ok(_) => PgWireFrontendMessage::CopyDone(CopyDone::new()),
            Err(_) => PgWireFrontendMessage::CopyFail(CopyFail::new(
                "redshift-local: the load failed".into(),
            )),
        };
        session.backend.feed(end).await?;
        session
            .backend
            .feed(PgWireFrontendMessage::Flush(Flush::new()))
            .await?;
        session.backend.flush().await?;
        loop {
            match session.backend.recv().await? {
                PgWireBackendMessage::CommandComplete(c) => {
                    if let Ok(n) = &mut outcome {
                        *n = c
                            .tag
                            .rsplit(' ')
                            .next()
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(*n);
                    }
                    break;
                }
                PgWireBackendMessage::ErrorResponse(e) => {
                    if outcome.is_ok() {
                        let info: pgwire::error::ErrorInfo = e.into();
                        outcome = Err(err_detail(
                            "XX000",
                            format!("Load into table '{}' failed: PostgreSQL refused a converted row", cmd.table_name),
                            format!(
                                "redshift-local converted a value PostgreSQL could not store ({}: {}); this is a \
                                 gap in the stand-in, please report it with the data",
                                info.code, info.message
                            ),
                        ));
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    // 7. the load-error log, whatever happened
    rejected.sort_by_key(|r| (r.file, r.line));
    let rows: Vec<LoadErrorRow> = rejected
        .iter()
        .map(|r| LoadErrorRow {
            userid: userid.parse().unwrap_or(0),
            slice: r.slice,
            tbl,
            starttime: starttime.clone(),
            session: pid.parse().unwrap_or(0),
            query: query_id,
            transaction_id: txid.parse().unwrap_or(0),
            database_name: cut(&database, 64),
            filename: cut(&r.url, 256),
            line_number: r.line as i64,
            colname: cut(&r.column, 127),
            col_type: cut(&r.col_type, 10),
            col_length: cut(&r.col_length, 10),
            position: r.position,
            raw_line: r.raw_line.clone(),
            raw_field_value: r.raw_field.clone(),
            err_code: r.code,
            err_reason: r.reason.clone(),
        })
        .collect();
    if let Err(e) = shared.admin.log_load_errors(&rows).await {
        // the rejected rows must not vanish: the COPY fails instead
        tracing::error!("writing {} load errors to the log: {e}", rows.len());
        session.last_copy_count = 0;
        return Err(Fail::Local(err_detail(
            "XX000",
            format!(
                "Load into table '{}' failed: redshift-local could not record its load errors",
                cmd.table_name
            ),
            e.to_string(),
        )));
    }
    match outcome {
        Ok(n) => {
            session.last_copy_count = i64::try_from(n).unwrap_or(i64::MAX);
            let mut notices = vec![info_notice(format!(
                "Load into table '{}' completed, {n} record(s) loaded successfully.",
                cmd.table_name
            ))];
            if !rejected.is_empty() {
                notices.push(info_notice(format!(
                    "Load into table '{}' completed, {} record(s) could not be loaded.  Check '{}' system table for details.",
                    cmd.table_name,
                    rejected.len(),
                    session.mode.load_errors_table()
                )));
            }
            Ok(notices)
        }
        Err(e) => {
            session.last_copy_count = 0;
            Err(if cmd.noload {
                Fail::Local(e)
            } else {
                Fail::Db(e)
            })
        }
    }
}

fn info_notice(message: String) -> NoticeResponse {
    ErrorInfo::new("INFO".into(), "00000".into(), message).into()
}

/// Redshift's error for a load that failed on rejected rows: the message points to the error
/// table, the DETAIL block describes the first error.
fn load_failed(
    cmd: &CopyCommand,
    _shared: &Shared,
    session: &Session,
    rejected: &[Rejected],
    query_id: i64,
    pid: &str,
) -> SqlError {
    let first = rejected.iter().min_by_key(|r| (r.file, r.line));
    let detail = match first {
        Some(r) => format!(
            "\n  -----------------------------------------------\n  error:  {}\n  code:      {}\n  context:   {}\n  query:     {query_id}\n  location:  redshift-local json\n  process:   {pid}\n  -----------------------------------------------\n",
            r.reason,
            r.code,
            if r.column.is_empty() { r.url.clone() } else { format!("{}={}", r.column, r.raw_field) }
        ),
        None => String::new(),
    };
    err_detail(
        "XX000",
        format!(
            "Load into table '{}' failed.  Check '{}' system table for details.",
            cmd.table_name,
            session.mode.load_errors_table()
        ),
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// r_STL_LOAD_ERRORS / SYS_LOAD_ERROR_DETAIL: file names are character(256), cut at 256
    /// bytes (on a character boundary here); raw_line shows multibyte characters as '.'.
    #[test]
    fn error_columns_are_cut_to_their_widths() {
        let url = format!("s3://bucket/{}é{}", "k".repeat(243), "z".repeat(20));
        let c = cut(&url, 256);
        assert_eq!(c.len(), 255, "the 2-byte 'é' would pass byte 256");
        assert!(url.starts_with(&c));
        assert_eq!(cut("short", 256), "short");
        assert_eq!(raw_line("{\"a\": \"ünï\"}".as_bytes()), "{\"a\": \".n.\"}");
        assert_eq!(raw_line(b"a\xffb"), "a.b");
        assert_eq!(raw_line("x".repeat(2000).as_bytes()).len(), 1024);
    }
}
