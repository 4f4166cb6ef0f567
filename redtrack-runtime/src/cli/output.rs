//! What the commands print: text for people, JSON lines for scripts (`--json`); the spinner on
//! a terminal, and the log writer that keeps log lines off the spinner's line.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

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

/// Whether log lines and the spinner may use colour and cursor movement: stderr is a terminal
/// and `NO_COLOR` is not set (<https://no-color.org>).
pub(super) fn stderr_is_a_terminal() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The spinner on screen, if any: [`LogWriter`] clears it around each log line.
static SPINNER: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// A spinner on stderr, shown while it lives; log lines are written around it.
pub(super) struct Spinner(indicatif::ProgressBar);

impl Spinner {
    /// A spinner saying `message`, on a terminal (none for JSON output, or when stderr is not
    /// a terminal: then only the log says what goes on).
    pub(super) fn start(message: String, json: bool) -> Option<Spinner> {
        if json || !stderr_is_a_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(Spinner::register(bar))
    }

    fn register(bar: indicatif::ProgressBar) -> Spinner {
        *SPINNER.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        Spinner(bar)
    }

    /// Changes what it says.
    pub(super) fn set_message(&self, message: String) {
        self.0.set_message(message);
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        *SPINNER.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.0.finish_and_clear();
    }
}

/// The log's writer: each log line goes to stderr in one write, with the spinner (if one is
/// on screen) cleared before it and drawn again after, so they never share a line.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log event's bytes, written when it is dropped.
pub(super) struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        write_log(&self.0, &mut std::io::stderr());
    }
}

/// Writes `line` to `sink`, around the spinner if one is on screen.
fn write_log(line: &[u8], sink: &mut dyn Write) {
    if line.is_empty() {
        return;
    }
    let spinner = SPINNER.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // A log line that cannot be written has nowhere else to go.
    let mut write = || {
        let _ = sink.write_all(line).and_then(|()| sink.flush());
    };
    match spinner {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The number of shards of a load that had records.
fn shards_with_records(r: &LoadReport) -> usize {
    r.ranges.iter().filter(|g| g.records > 0).count()
}

/// One load's summary line.
pub(super) fn load_summary(schema: &TableSchema, r: &LoadReport, json: bool) -> String {
    if json {
        return json!({
            "table": schema.name,
            "records": r.records,
            "rejected": r.rejected,
            "twins": r.twins,
            "kinesis_records": r.kinesis_records,
            "bytes": r.bytes,
            "shards": r.shards,
            "shards_with_records": shards_with_records(r),
            "load_id": r.load_id,
            "manifest": r.manifest_url,
            "more": r.more,
            "elapsed_ms": u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
            "ranges": r.ranges.iter().map(|g| json!({"shard_id": g.shard_id, "first": g.first,
                "last": g.last, "records": g.records})).collect::<Vec<_>>(),
            "data_loss": r.data_loss.iter().map(|l| json!({"shard_id": l.shard_id,
                "after": l.after, "first_available": l.first_available})).collect::<Vec<_>>(),
        })
        .to_string();
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut line = format!(
        "{}: {} events loaded from {} of {} shard{} in {:.1} s",
        schema.name,
        r.records,
        shards_with_records(r),
        r.shards,
        plural(r.shards),
        r.elapsed.as_secs_f64()
    );
    if r.rejected > 0 {
        line.push_str(&format!(
            "; {} rejected (see `errors --table {}`)",
            r.rejected, schema.name
        ));
    }
    if r.twins > 0 {
        line.push_str(&format!(
            "; {} twin{} dropped (sent again by writers, already loaded)",
            r.twins,
            plural(usize::try_from(r.twins).unwrap_or(2))
        ));
    }
    for l in &r.data_loss {
        line.push_str(&format!(
            "; DATA LOSS in shard {}: records after {} up to {} were trimmed unloaded",
            l.shard_id, l.after, l.first_available
        ));
    }
    if r.more {
        line.push_str("; more waiting (a per-load limit was reached)");
    }
    line
}

/// The summary line of a continuous loader's pass that failed and will be tried again.
pub(super) fn retry_summary(schema: &TableSchema, e: &Error, json: bool) -> String {
    let error = crate::text::error_chain(e);
    if json {
        json!({"table": schema.name, "error": error, "retrying": true}).to_string()
    } else {
        format!("{}: load failed, trying again: {error}", schema.name)
    }
}

/// A continuous loader's summary line, when it stopped.
pub(super) fn follow_summary(schema: &TableSchema, report: &FollowReport, json: bool) -> String {
    if json {
        json!({"table": schema.name, "stopped": true, "loads": report.loads,
            "records": report.records, "rejected": report.rejected,
            "twins": report.twins, "retried": report.retried})
        .to_string()
    } else {
        format!(
            "{}: stopped after {} loads: {} events loaded, {} rejected, {} retried",
            schema.name, report.loads, report.records, report.rejected, report.retried
        )
    }
}

/// One row of `status`: the table and a shard.
pub(super) type StatusRow = (&'static str, ShardStatus);

/// `n` bytes for people: `512 B`, `1.5 KiB`, `3.0 MiB`, `2.1 GiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An age for people: `45 s`, `12 min`, `3.5 h`, `2.0 d`.
fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} d", s as f64 / 86400.0),
    }
}

/// The `status` table (or its JSON): per shard its state, last load, and what waits to be
/// loaded (records, bytes, how old the oldest is; Kinesis' MillisBehindLatest where known).
pub(super) fn status(rows: &[StatusRow], json: bool, now: SystemTime) -> String {
    let age_ms = |s: &ShardStatus| {
        s.backlog
            .oldest_age(now)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(table, s)| {
                json!({
                    "table": table,
                    "shard_id": s.shard.shard_id,
                    "open": !s.shard.is_closed(),
                    "done": s.done,
                    "last_sequence_number": s.checkpoint.as_ref().map(|c| &c.sequence_number),
                    "last_load": s.checkpoint.as_ref().map(|c| &c.load_timestamp),
                    "unloaded_records": s.backlog.records,
                    "unloaded_bytes": s.backlog.bytes,
                    "unloaded_counted_all": s.backlog.complete,
                    "oldest_unloaded_age_ms": age_ms(s),
                    "millis_behind_latest": s.backlog.millis_behind_latest,
                })
            })
            .collect();
        return format!("{}\n", serde_json::Value::from(list));
    }
    let mut text = format!(
        "{:<24} {:<24} {:<7} {:<28} {:>10} {:>10} {:>8}  {}\n",
        "TABLE",
        "SHARD",
        "STATE",
        "LAST LOAD (UTC)",
        "UNLOADED",
        "BYTES",
        "OLDEST",
        "LAST SEQUENCE NUMBER"
    );
    for (table, s) in rows {
        let state = match (s.shard.is_closed(), s.done) {
            (false, _) => "open",
            (true, true) => "done",
            (true, false) => "closed",
        };
        let (last_load, seq) = match &s.checkpoint {
            Some(c) => (c.load_timestamp.as_str(), c.sequence_number.as_str()),
            None => ("never", "-"),
        };
        let b = &s.backlog;
        let records = format!("{}{}", b.records, if b.complete { "" } else { "+" });
        let oldest = match s.backlog.oldest_age(now) {
            Some(age) => human_age(age),
            None if b.records == 0 => "-".to_owned(),
            None => match b.millis_behind_latest {
                Some(ms) if ms > 0 => human_age(Duration::from_millis(ms.unsigned_abs())),
                _ => "?".to_owned(),
            },
        };
        text.push_str(&format!(
            "{table:<24} {:<24} {state:<7} {last_load:<28} {records:>10} {:>10} {oldest:>8}  {seq}\n",
            s.shard.shard_id,
            human_bytes(b.bytes)
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
                    "value": r.row.value, "reason": r.row.reason, "status": r.status})
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
            "(the whole row)"
        } else {
            r.row.column.as_str()
        };
        // A record rejected before staging has no line: its "file" is
        // `<stream>/<shard>/<sequence number>/<sub-sequence number>`.
        let line = match r.row.line {
            0 => String::new(),
            n => format!(" line {n}"),
        };
        text.push_str(&format!(
            "{} load {}: column {column}: {}\n    value: {}\n    at {}{line}\n    {}\n",
            r.rejected_at,
            r.load_id,
            r.row.reason,
            r.row.value,
            r.row.file,
            reject_status(&r.status, schema.name)
        ));
    }
    text
}

/// What a kept reject's status means for the user, with the step to take.
fn reject_status(status: &str, table: &str) -> String {
    match status {
        "rejected" => format!("kept: `redrive --table {table}` loads it once the table fits it"),
        "load_failed" => {
            "its load failed and loaded nothing: the next load reads it again".to_owned()
        }
        "redriven" => "re-driven: loaded into the table".to_owned(),
        other => format!("status: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A terminal that records what is drawn on it, and log lines, in order.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn push(&self, s: String) {
            self.0.lock().unwrap().push(s);
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("up {n}"));
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("down {n}"));
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(format!("draw {s}\n"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(format!("draw {s}"));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("clear".into());
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Write for Screen {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.push(format!("log {}", String::from_utf8_lossy(b)));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A log line written while the spinner is on screen starts on a cleared line, and the
    /// spinner comes back after it: the two never share a line.
    #[test]
    fn log_lines_never_share_the_spinners_line() {
        let screen = Screen::default();
        let bar = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        bar.set_style(indicatif::ProgressStyle::with_template("{msg}").unwrap());
        bar.set_message("loading test_events");
        let spinner = Spinner::register(bar.clone());
        bar.tick();
        write_log(
            b"2026-11-30T15:00:00Z  INFO load committed\n",
            &mut screen.clone(),
        );
        bar.tick();
        drop(spinner);
        let events = screen.0.lock().unwrap().clone();
        let log = events
            .iter()
            .position(|e| e.starts_with("log "))
            .expect("the log line was written");
        let drawn_before = events[..log]
            .iter()
            .rposition(|e| e.starts_with("draw loading"))
            .expect("the spinner was drawn before the log line");
        assert!(
            events[drawn_before..log].iter().any(|e| e == "clear"),
            "the spinner's line was not cleared before the log line: {events:?}"
        );
        assert!(
            events[log..].iter().any(|e| e.starts_with("draw loading")),
            "the spinner comes back after the log line: {events:?}"
        );
        write_log(b"after\n", &mut screen.clone());
        assert_eq!(
            screen.0.lock().unwrap().last().map(String::as_str),
            Some("log after\n"),
            "with no spinner, a log line is written as it is"
        );
    }

    #[test]
    fn sizes_and_ages_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_age(Duration::from_secs(45)), "45 s");
        assert_eq!(human_age(Duration::from_secs(720)), "12 min");
        assert_eq!(human_age(Duration::from_secs(3 * 86400)), "3.0 d");
    }
}
