//! What the commands print: text for people, JSON lines for scripts (`--json`), and the spinner
//! on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::json;

use super::Failure;
use crate::error::Error;
use crate::loader::{FollowReport, KeptReject, LoadReport, ShardStatus};
use crate::schema::TableSchema;

/// Writes `text` to `out` and flushes it.
pub(super) fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            Failure::from(Error::Io {
                path: "standard output".into(),
                source: e,
            })
        })
}

/// How `setup` reports a table or stream.
pub(super) fn said(existed: bool) -> &'static str {
    if existed {
        "already there"
    } else {
        "created"
    }
}

/// A spinner on a terminal (none for JSON output or when stderr is not a terminal).
pub(super) fn progress(table: &str, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        tracing::info!(table, "loading");
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!("loading {table}"));
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// One load's summary line.
pub(super) fn load_summary(schema: &TableSchema, r: &LoadReport, json: bool) -> String {
    if json {
        return json!({
            "table": schema.name,
            "records": r.records,
            "rejected": r.rejected,
            "kinesis_records": r.kinesis_records,
            "bytes": r.bytes,
            "load_id": r.load_id,
            "manifest": r.manifest_url,
            "more": r.more,
            "elapsed_ms": u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
            "ranges": r.ranges.iter().map(|g| json!({"shard_id": g.shard_id, "first": g.first,
                "last": g.last, "records": g.records})).collect::<Vec<_>>(),
        })
        .to_string();
    }
    let mut line = format!(
        "{}: {} events loaded from {} shards in {:.1} s",
        schema.name,
        r.records,
        r.ranges.len(),
        r.elapsed.as_secs_f64()
    );
    if r.rejected > 0 {
        line.push_str(&format!(
            "; {} rejected (see `errors --table {}`)",
            r.rejected, schema.name
        ));
    }
    if r.more {
        line.push_str("; more waiting (a per-load limit was reached)");
    }
    line
}

/// A continuous loader's summary line, when it stopped.
pub(super) fn follow_summary(schema: &TableSchema, report: &FollowReport, json: bool) -> String {
    if json {
        json!({"table": schema.name, "loads": report.loads,
            "records": report.records, "rejected": report.rejected,
            "retried": report.retried})
        .to_string()
    } else {
        format!(
            "{}: stopped after {} loads: {} events loaded, {} rejected, {} retried",
            schema.name, report.loads, report.records, report.rejected, report.retried
        )
    }
}

/// One row of `status`: the table, a shard, and its lag in milliseconds if known.
pub(super) type StatusRow = (&'static str, ShardStatus, Option<i64>);

/// The `status` table (or its JSON).
pub(super) fn status(rows: &[StatusRow], json: bool) -> String {
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(table, s, lag)| {
                json!({
                    "table": table,
                    "shard_id": s.shard.shard_id,
                    "open": !s.shard.is_closed(),
                    "done": s.done,
                    "last_sequence_number": s.checkpoint.as_ref().map(|c| &c.sequence_number),
                    "last_load": s.checkpoint.as_ref().map(|c| &c.load_timestamp),
                    "millis_behind_latest": lag,
                })
            })
            .collect();
        return format!("{}\n", serde_json::Value::from(list));
    }
    let mut text = format!(
        "{:<24} {:<24} {:<7} {:<28} {:<12} {}\n",
        "TABLE", "SHARD", "STATE", "LAST LOAD (UTC)", "LAG", "LAST SEQUENCE NUMBER"
    );
    for (table, s, lag) in rows {
        let state = match (s.shard.is_closed(), s.done) {
            (false, _) => "open",
            (true, true) => "done",
            (true, false) => "closed",
        };
        let (last_load, seq) = match &s.checkpoint {
            Some(c) => (c.load_timestamp.as_str(), c.sequence_number.as_str()),
            None => ("never", "-"),
        };
        let lag = lag.map_or("unknown".to_owned(), |ms| format!("{ms} ms"));
        text.push_str(&format!(
            "{table:<24} {:<24} {state:<7} {last_load:<28} {lag:<12} {seq}\n",
            s.shard.shard_id
        ));
    }
    text
}

/// The `errors` list (or its JSON).
pub(super) fn rejects(schema: &TableSchema, rejects: &[KeptReject], json: bool) -> String {
    if json {
        let list: Vec<_> = rejects
            .iter()
            .map(|r| {
                json!({"load_id": r.load_id, "rejected_at": r.rejected_at,
                    "file": r.row.file, "line": r.row.line, "column": r.row.column,
                    "value": r.row.value, "reason": r.row.reason})
            })
            .collect();
        return format!("{}\n", serde_json::Value::from(list));
    }
    if rejects.is_empty() {
        return format!("{}: no rejected rows\n", schema.name);
    }
    let mut text = String::new();
    for r in rejects {
        let column = if r.row.column.is_empty() {
            "(row)"
        } else {
            r.row.column.as_str()
        };
        text.push_str(&format!(
            "{} load {}: column {column}: {}\n    value: {}\n    at {} line {}\n",
            r.rejected_at, r.load_id, r.row.reason, r.row.value, r.row.file, r.row.line
        ));
    }
    text
}
