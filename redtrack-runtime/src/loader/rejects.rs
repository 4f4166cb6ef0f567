//! `redtrack_load_rejects`: the records a load could not load, kept with where they came from
//! (stream, shard, sequence number), the column, the raw value and the reason, and the whole raw
//! record, escaped, so they can be loaded again once the table is fixed (see `redrive`).
//!
//! A record's raw bytes are kept as text: UTF-8 characters as they are, every other byte and
//! every control character as `\xNN`, and a backslash doubled where it would otherwise read as
//! the start of such an escape ([`escape_raw`], [`unescape_raw`]). The first 65,535 bytes of
//! that text go in the reject's row (`raw_record`, Redshift's longest VARCHAR); the rest, for
//! large records, in rows of [`LOAD_REJECT_PARTS`].
//!
//! Each reject has a `status`: `rejected` (kept under `max_errors`, waiting to be re-driven),
//! `load_failed` (the first bad record of a load that failed: shown by `errors`, never
//! re-driven, since the next load reads it again) or `redriven` (loaded by a re-drive, with its
//! `redriven_at` and `redrive_id`).

use crate::error::{RejectedRow, Result};
use crate::schema::{Dialect, LOAD_REJECTS};
use crate::text::truncate_string;
use crate::warehouse::db_error;

/// The table holding the rest of the raw records longer than one `raw_record` value.
pub(crate) const LOAD_REJECT_PARTS: &str = "redtrack_load_reject_parts";

/// The longest `raw_record` text in one row, in bytes (Redshift's VARCHAR(65535)).
pub(crate) const RAW_PART_BYTES: usize = 65_535;

/// The status of a reject waiting to be re-driven.
pub(crate) const REJECTED: &str = "rejected";
/// The status of the kept first record of a failed load.
pub(crate) const LOAD_FAILED: &str = "load_failed";
/// The status of a re-driven reject.
pub(crate) const REDRIVEN: &str = "redriven";

/// The columns redtrack added to `redtrack_load_rejects` after its first version (all
/// nullable: older rows have none of them, and are never re-driven).
pub(crate) const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("reject_id", "VARCHAR(96)"),
    ("stream_name", "VARCHAR(256)"),
    ("shard_id", "VARCHAR(256)"),
    ("sequence_number", "VARCHAR(256)"),
    ("sub_sequence_number", "BIGINT"),
    ("raw_record", "VARCHAR(65535)"),
    ("raw_parts", "INTEGER"),
    ("status", "VARCHAR(16)"),
    ("redriven_at", "TIMESTAMP"),
    ("redrive_id", "VARCHAR(96)"),
];

/// `CREATE TABLE IF NOT EXISTS redtrack_load_rejects`.
pub(crate) fn load_rejects_ddl(dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE EVEN",
        Dialect::Postgres => "",
    };
    let added: String = ADDED_COLUMNS
        .iter()
        .map(|(name, sql_type)| format!(",\n    {name} {sql_type}"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {LOAD_REJECTS} (\n    \
         load_id VARCHAR(64) NOT NULL,\n    \
         table_name VARCHAR(256) NOT NULL,\n    \
         file_name VARCHAR(1024) NOT NULL,\n    \
         line_number BIGINT NOT NULL,\n    \
         column_name VARCHAR(256) NOT NULL,\n    \
         raw_value VARCHAR(4096) NOT NULL,\n    \
         reason VARCHAR(1024) NOT NULL,\n    \
         rejected_at TIMESTAMP NOT NULL{added}\n){tail}"
    )
}

/// `CREATE TABLE IF NOT EXISTS redtrack_load_reject_parts`: part `n` (1, 2, ...) of a reject's
/// escaped raw record, after the part in its row.
pub(crate) fn load_reject_parts_ddl(dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE EVEN",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {LOAD_REJECT_PARTS} (\n    \
         reject_id VARCHAR(96) NOT NULL,\n    \
         part INTEGER NOT NULL,\n    \
         raw_record VARCHAR(65535) NOT NULL\n){tail}"
    )
}

/// Keeps one rejected row.
pub(crate) const INSERT_REJECT_SQL: &str = "INSERT INTO redtrack_load_rejects (load_id, \
     table_name, file_name, line_number, column_name, raw_value, reason, rejected_at, \
     reject_id, stream_name, shard_id, sequence_number, sub_sequence_number, raw_record, \
     raw_parts, status) VALUES ($1, $2, $3, CAST(CAST($4 AS VARCHAR(20)) AS BIGINT), $5, $6, \
     $7, CAST(CAST($8 AS VARCHAR(32)) AS TIMESTAMP), $9, $10, $11, $12, \
     CAST(CAST($13 AS VARCHAR(20)) AS BIGINT), $14, CAST(CAST($15 AS VARCHAR(11)) AS INTEGER), \
     $16)";

/// Keeps one more part of a reject's raw record.
pub(crate) const INSERT_PART_SQL: &str = "INSERT INTO redtrack_load_reject_parts (reject_id, \
     part, raw_record) VALUES ($1, CAST(CAST($2 AS VARCHAR(11)) AS INTEGER), $3)";

/// The most recent rejects of a table (`$1`), newest first, at most `limit` rows, with where
/// each came from and its status.
pub(crate) fn recent_rejects_sql(limit: u32) -> String {
    format!(
        "SELECT load_id, file_name, line_number, column_name, raw_value, reason, \
         CAST(rejected_at AS VARCHAR(32)), stream_name, shard_id, sequence_number, \
         sub_sequence_number, status FROM redtrack_load_rejects WHERE table_name = $1 \
         ORDER BY rejected_at DESC, file_name, line_number LIMIT {limit}"
    )
}

/// The error of a statement on `redtrack_load_rejects` (`what` it was doing), saying to run
/// `setup` when the table lacks redtrack's newer columns (an older redtrack made it).
pub(crate) fn rejects_error(what: &str, e: tokio_postgres::Error) -> crate::error::Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN) {
        crate::error::Error::warehouse(format!(
            "{what}: {LOAD_REJECTS} lacks redtrack's newer columns (an older redtrack made it); \
             run setup once (`redtrack setup` or `Loader::setup`), which adds them and keeps \
             every row"
        ))
        .with_source(e)
    } else {
        db_error(what, e)
    }
}

/// `bytes` as text: UTF-8 characters as they are, except control characters; every byte that
/// starts no UTF-8 character, and every control character, as `\xNN` (two uppercase hex
/// digits); a backslash doubled when what follows it would otherwise read as an escape (a
/// backslash, an `x`, or an escaped byte). [`unescape_raw`] gives the bytes back.
pub(crate) fn escape_raw(bytes: &[u8]) -> String {
    enum Token {
        Char(char),
        Byte(u8),
    }
    let mut tokens = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_control() {
                tokens.push(Token::Byte(c as u8));
            } else {
                tokens.push(Token::Char(c));
            }
        }
        tokens.extend(chunk.invalid().iter().map(|&b| Token::Byte(b)));
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Byte(b) => out.push_str(&format!("\\x{b:02X}")),
            Token::Char('\\') => {
                let escape_follows = matches!(
                    tokens.get(i + 1),
                    Some(Token::Byte(_) | Token::Char('\\' | 'x'))
                );
                out.push_str(if escape_follows { "\\\\" } else { "\\" });
            }
            Token::Char(c) => out.push(*c),
        }
    }
    out
}

/// The bytes [`escape_raw`] turned into `text`.
pub(crate) fn unescape_raw(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if b.get(i + 1) == Some(&b'x') {
                let hex = b
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// `text` cut into pieces of at most [`RAW_PART_BYTES`], on character boundaries.
pub(crate) fn raw_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        if rest.len() <= RAW_PART_BYTES {
            parts.push(rest);
            return parts;
        }
        let mut cut = RAW_PART_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
}

/// Keeps rejected rows of load `load_id` in `redtrack_load_rejects` with `status`, stamped `ts`;
/// their raw records whole (in parts when long). Reject `n` of the load is `<load_id>-<n>`.
pub(crate) async fn keep_rejects<C: tokio_postgres::GenericClient>(
    client: &C,
    load_id: &str,
    table: &str,
    rows: &[RejectedRow],
    ts: &str,
    status: &str,
) -> Result<()> {
    let what = || format!("keeping a rejected row in {LOAD_REJECTS}");
    let failed = |e| rejects_error(&what(), e);
    for (n, r) in rows.iter().enumerate() {
        let reject_id = format!("{load_id}-{n}");
        let line = r.line.to_string();
        let raw = r.raw.as_deref().map(escape_raw);
        let parts = raw.as_deref().map(raw_parts).unwrap_or_default();
        let source = r.source.as_ref();
        // NULL for a plain record, the user record's index for a KPL aggregate.
        let sub = source
            .filter(|s| s.aggregated)
            .map(|s| s.sub_sequence_number.to_string());
        let n_parts = raw.as_ref().map(|_| parts.len().to_string());
        client
            .execute(
                INSERT_REJECT_SQL,
                &[
                    &load_id,
                    &table,
                    &truncate_string(r.file.clone(), 1024),
                    &line,
                    &truncate_string(r.column.clone(), 256),
                    &truncate_string(r.value.replace('\0', "\\x00"), 1024),
                    &truncate_string(r.reason.clone(), 1024),
                    &ts,
                    &reject_id,
                    &source.map(|s| s.stream.as_str()),
                    &source.map(|s| s.shard_id.as_str()),
                    &source.map(|s| s.sequence_number.as_str()),
                    &sub,
                    &parts.first().copied(),
                    &n_parts,
                    &status,
                ],
            )
            .await
            .map_err(failed)?;
        for (i, part) in parts.iter().enumerate().skip(1) {
            client
                .execute(
                    INSERT_PART_SQL,
                    &[&reject_id.as_str(), &i.to_string().as_str(), part],
                )
                .await
                .map_err(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_escape_readably_and_come_back() {
        assert_eq!(
            escape_raw(b"{\"name\":\"Montr\xe9al\"}"),
            r#"{"name":"Montr\xE9al"}"#
        );
        assert_eq!(escape_raw("é\n\0".as_bytes()), r"é\x0A\x00");
        assert_eq!(
            escape_raw(br#"{"data":"{\"a\":1}"}"#),
            r#"{"data":"{\"a\":1}"}"#
        );
        assert_eq!(escape_raw(br"\x41"), r"\\x41");
        assert_eq!(escape_raw(b"\\\xff"), r"\\\xFF");
        assert_eq!(escape_raw(br"a\"), r"a\");
        let samples: &[&[u8]] = &[
            b"",
            br"\",
            br"\\",
            br"\\\x",
            b"\\\x00\\",
            br#"\"\\"#,
            b"\xe9\xff\xfe\\x\\\\xE9",
            "é😀\u{7f}".as_bytes(),
        ];
        for s in samples {
            assert_eq!(unescape_raw(&escape_raw(s)), *s, "{s:?}");
        }
        for _ in 0..20_000 {
            let n = rand::random_range(0..24);
            let bytes: Vec<u8> = (0..n)
                .map(|_| match rand::random_range(0..6) {
                    0 => b'\\',
                    1 => b'x',
                    2 => rand::random_range(b'0'..=b'F'),
                    3 => rand::random::<u8>(),
                    _ => rand::random_range(b' '..=b'~'),
                })
                .collect();
            assert_eq!(unescape_raw(&escape_raw(&bytes)), bytes, "{bytes:?}");
        }
    }

    #[test]
    fn long_raw_records_split_on_character_boundaries() {
        // 131,070 bytes of two-byte characters: parts of 65,534 bytes, 65,534 and 2.
        let text = "é".repeat(RAW_PART_BYTES);
        let parts = raw_parts(&text);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [65_534, 65_534, 2]
        );
        assert!(parts.iter().all(|p| p.len() <= RAW_PART_BYTES));
        assert_eq!(parts.concat(), text);
        assert_eq!(raw_parts(""), [""]);
    }
}
