//! PostgreSQL as the warehouse (development, tests, small deployments).
//!
//! It gives the staged files the meaning Redshift's `COPY ... FORMAT AS JSON 'auto'` gives them:
//! first-level keys matched to the (lowercase) column names, a missing key loads NULL, extra
//! keys are ignored. The files are streamed from the stage through `COPY ... FROM STDIN` into a
//! temporary table of raw lines, then `INSERT ... SELECT` of each column's key. If
//! that fails, the rows are inserted one by one so each bad row is rejected with its reason
//! (MAXERROR), the rest loaded.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use tokio::io::AsyncReadExt;

use super::json_row::push_copy_row;
use super::{
    column, db_error, quote_ident, Connector, CopyOutcome, CopyRequest, RejectedRow, Warehouse,
};
use crate::error::{Error, Result};
use crate::hooks::{pause_at, Phase};
use crate::json_scan;
use crate::schema::{Column, Dialect, SqlType, TableSchema};
use crate::stage::Stage;
use crate::text::truncate_string;

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

/// Column `c` of the JSON object `doc` (an SQL `json` expression: unlike `jsonb` it keeps each
/// value's text) as an SQL expression of the column's type, with COPY JSON 'auto''s meaning: the
/// key is the column's full name (which PostgreSQL would cut to 63 bytes as an identifier), a
/// missing key or a JSON null is NULL. Text goes through the base type's input function, so
/// `-0.0` keeps its sign, and CHAR/VARCHAR stay text so that assigning them checks their length.
fn json_column(c: &Column, doc: &str) -> String {
    // Column names come from the derive: `'` is doubled; standard_conforming_strings is on.
    let key = format!("'{}'", c.name.replace('\'', "''"));
    let base = match c.sql_type {
        SqlType::Super => return format!("NULLIF(CAST({doc} -> {key} AS JSONB), 'null'::jsonb)"),
        SqlType::Char { .. } | SqlType::Varchar { .. } => return format!("({doc} ->> {key})"),
        SqlType::Decimal { .. } => "NUMERIC".to_owned(),
        other => other.sql(Dialect::Postgres),
    };
    format!("CAST({doc} ->> {key} AS {base})")
}

/// `INSERT INTO t (cols) SELECT <each column of doc> [FROM <from>]`.
fn insert_select(table: &TableSchema, from: Option<&str>, doc: &str) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| quote_ident(c.name).into_owned())
        .collect();
    let values: Vec<String> = table.columns.iter().map(|c| json_column(c, doc)).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) SELECT {}",
        quote_ident(table.name),
        cols.join(", "),
        values.join(", ")
    );
    if let Some(from) = from {
        sql.push_str(" FROM ");
        sql.push_str(from);
    }
    sql
}

/// The temporary function that inserts the staged rows one by one, returning the rejects
/// (stopping after `max_rejects + 1` of them) with the column at fault where it can tell:
/// PostgreSQL's own (a NOT NULL violation), else the first column whose value does not convert
/// to the column's type.
fn row_by_row_function(table: &TableSchema) -> String {
    let insert = insert_select(table, None, "v_doc");
    let mut probes = String::new();
    let mut declares = String::new();
    for (i, c) in table.columns.iter().enumerate() {
        let key = format!("'{}'", c.name.replace('\'', "''"));
        declares.push_str(&format!(
            "    v_probe_{i} {};\n",
            c.sql_type.sql(Dialect::Postgres)
        ));
        probes.push_str(&format!(
            r#"                IF o_column = '' THEN
                    BEGIN
                        v_probe_{i} := {value};
                    EXCEPTION WHEN OTHERS THEN
                        o_column := {key};
                        o_value := COALESCE(left(v_doc ->> {key}, {MAX_RAW}), 'NULL');
                    END;
                END IF;
"#,
            value = json_column(c, "v_doc"),
        ));
    }
    format!(
        r#"CREATE OR REPLACE FUNCTION pg_temp.redtrack_insert_rows(max_rejects bigint)
RETURNS TABLE (o_file integer, o_line bigint, o_column text, o_value text, o_reason text)
LANGUAGE plpgsql AS $redtrack$
DECLARE
    rec record;
    v_doc json;
    v_n bigint := 0;
    v_col text;
{declares}BEGIN
    FOR rec IN SELECT s.file_no, s.line_no, s.doc FROM {STAGED} s ORDER BY s.file_no, s.line_no LOOP
        BEGIN
            v_doc := rec.doc::json;
            IF json_typeof(v_doc) <> 'object' THEN
                RAISE EXCEPTION 'not a JSON object';
            END IF;
            {insert};
        EXCEPTION WHEN OTHERS THEN
            o_file := rec.file_no;
            o_line := rec.line_no;
            o_reason := SQLERRM;
            o_column := '';
            o_value := left(rec.doc, {MAX_RAW});
            GET STACKED DIAGNOSTICS v_col = COLUMN_NAME;
            IF v_col IS NOT NULL AND v_col <> '' THEN
                o_column := v_col;
                o_value := COALESCE(left(v_doc ->> v_col, {MAX_RAW}), 'NULL');
            ELSIF v_doc IS NOT NULL AND json_typeof(v_doc) = 'object' THEN
{probes}            END IF;
            RETURN NEXT;
            v_n := v_n + 1;
            IF v_n > max_rejects THEN
                RETURN;
            END IF;
        END;
        v_doc := NULL;
    END LOOP;
END
$redtrack$"#
    )
}

/// Appends one staged line as a CSV row `file \x02 line \x02 \x01doc\x01`. Valid JSON never
/// holds a raw control character, so neither the delimiter nor the quote can occur in `doc`.
fn push_row(out: &mut BytesMut, file_no: usize, line_no: u64, doc: &[u8]) {
    let mut num = itoa_buf();
    out.put_slice(fmt_num(&mut num, file_no as u64));
    out.put_u8(0x02);
    out.put_slice(fmt_num(&mut num, line_no));
    out.put_slice(b"\x02\x01");
    out.put_slice(doc);
    out.put_slice(b"\x01\n");
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_num(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// How staged lines go into COPY.
#[derive(Clone, Copy)]
enum RowFormat<'a> {
    /// Straight into the table: each line's keys matched to these columns.
    Direct(&'a [crate::schema::Column]),
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

impl PostgresWarehouse {
    /// Streams every staged file of `req` into `copy`, each line as `format` says.
    async fn stream_files<S: Stage>(
        &self,
        txn: &tokio_postgres::Transaction<'_>,
        req: &CopyRequest,
        stage: &S,
        copy: &str,
        format: RowFormat<'_>,
    ) -> Result<Streamed> {
        let refused = |what: &str, e: tokio_postgres::Error| match (format, e.as_db_error()) {
            (RowFormat::Direct(_), Some(db)) => Ok(Streamed::Refused(db.message().to_owned())),
            _ => Err(db_error(what, e)),
        };
        let sink = match txn.copy_in::<_, Bytes>(copy).await {
            Ok(sink) => sink,
            Err(e) => return refused("starting COPY FROM STDIN", e),
        };
        futures::pin_mut!(sink);
        let mut out = BytesMut::with_capacity(COPY_CHUNK * 2);
        let mut sent_any = false;
        let mut cells = Vec::new();
        for (file_no, file) in req.files.iter().enumerate() {
            let mut reader = stage.open(&file.key).await?;
            let mut gz = flate2::write::MultiGzDecoder::new(Vec::with_capacity(COPY_CHUNK * 4));
            let mut raw = vec![0u8; 64 * 1024];
            let mut carry: Vec<u8> = Vec::new();
            let mut line_no = 0u64;
            loop {
                let n = reader.read(&mut raw).await.map_err(|e| Error::Stage {
                    location: file.url.clone(),
                    message: format!("reading: {e}"),
                    retryable: true,
                })?;
                let bad_gzip = |e: std::io::Error| Error::Stage {
                    location: file.url.clone(),
                    message: format!("not valid gzip: {e}"),
                    retryable: false,
                };
                if n == 0 {
                    gz.try_finish().map_err(bad_gzip)?;
                } else {
                    gz.write_all(&raw[..n]).map_err(bad_gzip)?;
                }
                let plain = gz.get_mut();
                carry.extend_from_slice(plain);
                plain.clear();
                if n == 0 && !carry.is_empty() && carry.last() != Some(&b'\n') {
                    carry.push(b'\n');
                }
                let mut start = 0;
                while let Some(pos) = memchr(&carry[start..]) {
                    let line = &carry[start..start + pos];
                    start += pos + 1;
                    if line.is_empty() {
                        continue;
                    }
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
                carry.drain(..start);
                if out.len() >= COPY_CHUNK || (n == 0 && !out.is_empty()) {
                    if let Err(e) = sink.send(out.split().freeze()).await {
                        return refused("COPY FROM STDIN", e);
                    }
                    if !sent_any {
                        sent_any = true;
                        pause_at(Phase::Copy).await;
                    }
                }
                if n == 0 {
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
}

/// The quick way to [`push_copy_row`] for the usual line: a flat JSON object whose keys and
/// string values are printable ASCII without escapes, and whose other values are numbers,
/// `true`, `false` or `null`, with no SUPER column among the keys that match. Such values go
/// into a COPY text row as they stand (nothing in them needs COPY escaping). `None`, with
/// nothing appended, for any other line, which `push_copy_row` then reads.
fn push_flat_row(
    out: &mut BytesMut,
    columns: &[crate::schema::Column],
    line: &[u8],
    cells: &mut Vec<Option<(usize, usize)>>,
) -> Option<()> {
    use json_scan::{literal_end, number_end, plain_string_end, skip_ws};
    let ws = |i: usize| skip_ws(line, i);
    // A string without escapes starting at `i`: its body's span.
    let plain_string = |i: usize| plain_string_end(line, i).map(|end| (i + 1, end));
    cells.clear();
    cells.resize(columns.len(), None);
    let mut next_column = 0;
    let mut i = ws(0);
    (line.get(i) == Some(&b'{')).then_some(())?;
    i = ws(i + 1);
    if line.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key = plain_string(i)?;
            i = ws(key.1 + 1);
            (line.get(i) == Some(&b':')).then_some(())?;
            i = ws(i + 1);
            let value = match *line.get(i)? {
                b'"' => {
                    let body = plain_string(i)?;
                    i = body.1 + 1;
                    Some(body)
                }
                b'n' => {
                    i = literal_end(line, i)?;
                    None
                }
                b't' | b'f' => {
                    let end = literal_end(line, i)?;
                    let span = (i, end);
                    i = end;
                    Some(span)
                }
                b'-' | b'0'..=b'9' => {
                    let end = number_end(line, i)?;
                    let span = (i, end);
                    i = end;
                    Some(span)
                }
                _ => return None,
            };
            let name = &line[key.0..key.1];
            // Keys usually come in column order (redtrack's encoder writes them so): try the
            // column after the last one matched first.
            let matched = match columns.get(next_column) {
                Some(c) if c.name.as_bytes() == name => Some(next_column),
                _ => columns.iter().position(|c| c.name.as_bytes() == name),
            };
            if let Some(c) = matched {
                next_column = c + 1;
                if columns[c].sql_type == crate::schema::SqlType::Super {
                    return None;
                }
                // A later duplicate key wins, as in jsonb.
                cells[c] = value;
            }
            i = ws(i);
            match *line.get(i)? {
                b',' => i = ws(i + 1),
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (ws(i) == line.len()).then_some(())?;
    for (n, cell) in cells.iter().enumerate() {
        if n > 0 {
            out.put_u8(b'\t');
        }
        match cell {
            None => out.put_slice(b"\\N"),
            Some((a, b)) => out.put_slice(&line[*a..*b]),
        }
    }
    out.put_u8(b'\n');
    Some(())
}

fn memchr(hay: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', hay)
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

    /// Conflicts with itself and with writes, so loads still serialize, but lets readers (status
    /// displays, other loaders' checkpoint reads) read `kinesis_loads` during a load.
    fn lock_sql(&self) -> &'static str {
        "LOCK TABLE kinesis_loads IN SHARE ROW EXCLUSIVE MODE"
    }

    async fn copy<'a, S: Stage>(
        &'a self,
        txn: &'a tokio_postgres::Transaction<'a>,
        req: &'a CopyRequest,
        stage: &'a S,
    ) -> Result<CopyOutcome> {
        let table = req.table;

        // The fast path: the staged lines straight into the table.
        txn.batch_execute("SAVEPOINT redtrack_direct")
            .await
            .map_err(|e| db_error("SAVEPOINT", e))?;
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
        match self
            .stream_files(txn, req, stage, &direct, RowFormat::Direct(table.columns))
            .await?
        {
            Streamed::Done(rows) => {
                txn.batch_execute("RELEASE SAVEPOINT redtrack_direct")
                    .await
                    .map_err(|e| db_error("RELEASE SAVEPOINT", e))?;
                return Ok(CopyOutcome {
                    loaded: rows,
                    rejected: Vec::new(),
                });
            }
            Streamed::Refused(why) => {
                tracing::info!(
                    table = table.name,
                    "COPY refused a row ({why}); finding the bad rows"
                );
                txn.batch_execute("ROLLBACK TO SAVEPOINT redtrack_direct")
                    .await
                    .map_err(|e| db_error("ROLLBACK TO SAVEPOINT", e))?;
            }
        }

        // The careful path: raw lines into a temporary table, then through jsonb.
        txn.batch_execute(&format!(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {STAGED} (file_no integer NOT NULL, line_no bigint NOT NULL, doc text NOT NULL) ON COMMIT DROP"
        ))
        .await
        .map_err(|e| db_error("creating the temporary staging table", e))?;
        let copy = format!(
            "COPY {STAGED} (file_no, line_no, doc) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
        );
        let staged = match self
            .stream_files(txn, req, stage, &copy, RowFormat::Raw)
            .await?
        {
            Streamed::Done(rows) => rows,
            Streamed::Refused(why) => {
                return Err(Error::Warehouse {
                    message: format!("COPY into {STAGED}: {why}"),
                    source: None,
                })
            }
        };

        // The fast path: every row at once.
        txn.batch_execute("SAVEPOINT redtrack_bulk")
            .await
            .map_err(|e| db_error("SAVEPOINT", e))?;
        let bulk = insert_select(
            table,
            Some(&format!(
                "{STAGED} AS s CROSS JOIN LATERAL (SELECT s.doc::json AS d) AS j"
            )),
            "j.d",
        );
        match txn.execute(bulk.as_str(), &[]).await {
            Ok(n) => {
                txn.batch_execute("RELEASE SAVEPOINT redtrack_bulk")
                    .await
                    .map_err(|e| db_error("RELEASE SAVEPOINT", e))?;
                return Ok(CopyOutcome {
                    loaded: n,
                    rejected: Vec::new(),
                });
            }
            Err(e) => {
                tracing::info!(
                    table = table.name,
                    "bulk insert failed ({}); inserting row by row to find the bad rows",
                    e.as_db_error().map(|d| d.message()).unwrap_or("?")
                );
                txn.batch_execute("ROLLBACK TO SAVEPOINT redtrack_bulk")
                    .await
                    .map_err(|e| db_error("ROLLBACK TO SAVEPOINT", e))?;
            }
        }

        // The slow path: row by row, each bad row rejected with its reason.
        txn.batch_execute(&row_by_row_function(table))
            .await
            .map_err(|e| db_error("creating the row-by-row load function", e))?;
        let max = i64::try_from(req.max_errors).unwrap_or(i64::MAX - 1);
        let rows = txn
            .query(
                "SELECT o_file, o_line, o_column, o_value, o_reason FROM pg_temp.redtrack_insert_rows($1)",
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
            rejected.push(RejectedRow {
                file,
                line: u64::try_from(line).unwrap_or(0),
                column: text(2)?,
                value: truncate_string(text(3)?, MAX_RAW),
                reason: text(4)?,
            });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_rows_as_push_copy_row_writes_them() {
        use crate::schema::{Column, SqlType};
        let col = |name, sql_type| Column {
            name,
            sql_type,
            nullable: true,
            encode: None,
        };
        let columns = [
            col("a", SqlType::Integer),
            col("b", SqlType::Varchar { len: 10 }),
            col("c", SqlType::Boolean),
            col("s", SqlType::Super),
        ];
        let check = |line: &str| -> bool {
            let mut fast = BytesMut::new();
            let mut cells = Vec::new();
            let quick = push_flat_row(&mut fast, &columns, line.as_bytes(), &mut cells);
            if quick.is_none() {
                assert!(fast.is_empty(), "{line:?}");
                return false;
            }
            let mut slow = BytesMut::new();
            assert!(
                push_copy_row(&mut slow, &columns, line.as_bytes()),
                "{line:?}"
            );
            assert_eq!(fast, slow, "{line:?}");
            true
        };
        for line in [
            r#"{"a":1,"b":"x y","c":true}"#,
            r#" { "b" : "" , "a" : -1.5e+3 , "zz" : 7 , "c" : false } "#,
            r#"{"a":null,"b":"q","a":2}"#,
            r#"{}"#,
            r#"{"A":1,"b":"~!"}"#,
        ] {
            assert!(check(line), "{line}");
        }
        for line in [
            r#"{"s":1}"#,
            r#"{"b":"x\"y"}"#,
            r#"{"b":"é"}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{}}"#,
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"[1]"#,
            r#"{"a":tru}"#,
            "{\"b\":\"\t\"}",
            r#"{"a\"":1}"#,
        ] {
            assert!(!check(line), "{line}");
        }
        let tokens: &[&str] = &[
            "{", "}", "[", "]", ",", ":", " ", "\"", "\"a\"", "\"b\"", "\"s\"", "\\", "1", "0",
            "-", ".", "e", "+", "true", "null", "false", "x", "\t", "é", "\"v\"",
        ];
        let mut quick = 0;
        for _ in 0..200_000 {
            let n = rand::random_range(1..14);
            let line: String = (0..n)
                .map(|_| tokens[rand::random_range(0..tokens.len())])
                .collect();
            quick += usize::from(check(&line));
        }
        assert!(quick > 10, "the soup should hold some flat rows ({quick})");
        let keys = ["\"a\"", "\"b\"", "\"c\"", "\"zz\"", "\"A\""];
        let values = [
            "1", "-2.5", "0e1", "\"x\"", "\"\"", "null", "true", "false", "\"1 2\"",
        ];
        for _ in 0..20_000 {
            let n = rand::random_range(0..6);
            let pairs: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "{}:{}",
                        keys[rand::random_range(0..keys.len())],
                        values[rand::random_range(0..values.len())]
                    )
                })
                .collect();
            let line = format!("{{{}}}", pairs.join(","));
            assert!(check(&line), "{line}");
        }
    }

    #[test]
    fn csv_rows() {
        let mut out = BytesMut::new();
        push_row(&mut out, 3, 120, br#"{"a":"x,y\"z"}"#);
        assert_eq!(&out[..], b"3\x02120\x02\x01{\"a\":\"x,y\\\"z\"}\x01\n");
    }
}
