//! Staging: turns the records read from the shards into gzip'd newline-delimited JSON files,
//! written as a stream on a blocking thread (memory holds one chunk of records, never the load).
//!
//! Each Kinesis record is de-aggregated (KPL) and each user record unwrapped from the original
//! gem's `{"data": "<event json>"}` envelope when it is one; anything that is not a JSON object
//! is rejected here, with its shard and sequence number, and never reaches COPY.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::broker::aggregate::{deaggregate, is_aggregated};
use crate::broker::StoredRecord;
use crate::error::{Error, Result};
use crate::warehouse::{truncate, RejectedRow};

/// Records of one shard, in sequence order, on their way to the stager.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// The shard's index in the load's shard list.
    pub(crate) shard: usize,
    /// The records.
    pub(crate) records: Vec<StoredRecord>,
}

/// A finished local gzip file.
#[derive(Debug)]
pub(crate) struct LocalFile {
    pub(crate) path: PathBuf,
    pub(crate) lines: u64,
}

/// What the stager wrote.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    pub(crate) files: Vec<LocalFile>,
    /// Records that were not JSON objects (or corrupt aggregates), kept with their reasons.
    pub(crate) rejects: Vec<RejectedRow>,
    /// Event lines written.
    pub(crate) lines: u64,
    /// Uncompressed bytes written.
    pub(crate) bytes: u64,
}

struct Part {
    path: PathBuf,
    gz: GzEncoder<BufWriter<File>>,
    lines: u64,
}

/// Writes chunks from `rx` into `n_files` gzip files in `dir`, round-robin by event, until the
/// channel closes. Runs on a blocking thread.
pub(crate) fn run_stager(
    mut rx: mpsc::Receiver<Chunk>,
    dir: &Path,
    n_files: usize,
    stream: &str,
    shard_ids: &[String],
) -> Result<Staged> {
    std::fs::create_dir_all(dir)?;
    let mut parts = Vec::with_capacity(n_files);
    for i in 0..n_files.max(1) {
        let path = dir.join(part_name(i));
        let file = File::create(&path)?;
        parts.push(Part {
            path,
            gz: GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::fast()),
            lines: 0,
        });
    }
    let mut staged = Staged::default();
    let mut next = 0usize;
    let mut write_line = |parts: &mut Vec<Part>, line: &[u8]| -> Result<()> {
        let len = parts.len();
        let part = &mut parts[next];
        next = (next + 1) % len;
        part.gz.write_all(line)?;
        part.gz.write_all(b"\n")?;
        part.lines += 1;
        Ok(())
    };
    while let Some(chunk) = rx.blocking_recv() {
        let shard = shard_ids
            .get(chunk.shard)
            .map(String::as_str)
            .unwrap_or("?");
        for record in chunk.records {
            if !is_aggregated(&record.data) {
                // The common case, without de-aggregation's allocations.
                match event_json(&record.data) {
                    Ok(line) => {
                        write_line(&mut parts, &line)?;
                        staged.lines += 1;
                        staged.bytes += line.len() as u64 + 1;
                    }
                    Err(reason) => {
                        let data = record.data.clone();
                        staged
                            .rejects
                            .push(reject(stream, shard, &record, &data, reason));
                    }
                }
                continue;
            }
            let users = match deaggregate(&record.partition_key, &record.data) {
                Ok(users) => users,
                Err(e) => {
                    staged.rejects.push(reject(
                        stream,
                        shard,
                        &record,
                        &record.data,
                        e.to_string(),
                    ));
                    continue;
                }
            };
            for user in users {
                match event_json(&user.data) {
                    Ok(line) => {
                        write_line(&mut parts, &line)?;
                        staged.lines += 1;
                        staged.bytes += line.len() as u64 + 1;
                    }
                    Err(reason) => {
                        staged
                            .rejects
                            .push(reject(stream, shard, &record, &user.data, reason));
                    }
                }
            }
        }
    }
    for part in parts {
        let buf = part.gz.finish()?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
        staged.files.push(LocalFile {
            path: part.path,
            lines: part.lines,
        });
    }
    Ok(staged)
}

/// The name of staged file `i`.
pub(crate) fn part_name(i: usize) -> String {
    format!("part-{i:05}.json.gz")
}

fn reject(
    stream: &str,
    shard: &str,
    record: &StoredRecord,
    data: &[u8],
    reason: String,
) -> RejectedRow {
    RejectedRow {
        file: format!("{stream}/{shard}/{}", record.sequence_number),
        line: 0,
        column: String::new(),
        value: truncate(String::from_utf8_lossy(data).into_owned(), 1024),
        reason,
    }
}

/// The original gem's envelope: exactly one key, `data`, holding the event's JSON as a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// The event's JSON object as one line: unwrapped from `{"data": "<json>"}` if it is such an
/// envelope whose string holds a JSON object, else the record itself; an error (the reason)
/// unless it is a JSON object.
///
/// A table whose only column is a string `data` holding JSON objects would be mistaken for the
/// envelope; no seed table is shaped so.
pub(crate) fn event_json(data: &[u8]) -> std::result::Result<Cow<'_, [u8]>, String> {
    let trimmed = data.trim_ascii();
    if trimmed.first() != Some(&b'{') {
        return Err(match std::str::from_utf8(trimmed) {
            Ok(_) => "not a JSON object".to_owned(),
            Err(_) => "not UTF-8 text".to_owned(),
        });
    }
    if trimmed[1..].trim_ascii_start().starts_with(b"\"data\"") {
        if let Ok(env) = serde_json::from_slice::<Envelope<'_>>(trimmed) {
            let inner = env.data.trim();
            if inner.starts_with('{') && is_json(inner.as_bytes()) {
                return Ok(Cow::Owned(one_line(inner.as_bytes()).into_owned()));
            }
        }
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(trimmed) {
        return Err(format!("not valid JSON: {e}"));
    }
    Ok(one_line(trimmed))
}

fn is_json(b: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
}

/// Valid JSON holds raw line breaks only as whitespace between tokens, so dropping them keeps
/// the meaning and makes the object one line.
fn one_line(b: &[u8]) -> Cow<'_, [u8]> {
    if b.iter().any(|&c| c == b'\n' || c == b'\r') {
        Cow::Owned(
            b.iter()
                .copied()
                .filter(|&c| c != b'\n' && c != b'\r')
                .collect(),
        )
    } else {
        Cow::Borrowed(b)
    }
}

/// Maps a stager thread's panic or I/O failure to an error naming the staging directory.
pub(crate) fn staging_failed(dir: &Path, e: impl std::fmt::Display) -> Error {
    Error::Stage {
        location: dir.display().to_string(),
        message: format!("writing staged files: {e}"),
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn line(s: &str) -> String {
        String::from_utf8(event_json(s.as_bytes()).unwrap().into_owned()).unwrap()
    }

    #[test]
    fn plain_and_envelope() {
        assert_eq!(line(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(line(r#" {"data":"{\"a\":1}"} "#), r#"{"a":1}"#);
        // A `data` key that does not hold a JSON object is an ordinary column.
        assert_eq!(line(r#"{"data":"hello"}"#), r#"{"data":"hello"}"#);
        assert_eq!(line(r#"{"data":"{}","b":2}"#), r#"{"data":"{}","b":2}"#);
        assert_eq!(line("{\"a\":\n1}"), r#"{"a":1}"#);
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        assert!(event_json(b"[1]").is_err());
        assert!(event_json(b"{\"a\":").is_err());
        assert!(event_json(b"").is_err());
        assert!(event_json(b"\xff\xfe").is_err());
    }

    #[test]
    fn stages_round_robin_files() {
        let dir = std::env::temp_dir().join(format!("redtrack-stager-{}", rand::random::<u64>()));
        let (tx, rx) = mpsc::channel(4);
        let rec = |seq: &str, data: &'static str| StoredRecord {
            sequence_number: seq.into(),
            partition_key: "k".into(),
            data: Bytes::from_static(data.as_bytes()),
        };
        tx.try_send(Chunk {
            shard: 0,
            records: vec![
                rec("1", r#"{"a":1}"#),
                rec("2", "nope"),
                rec("3", r#"{"a":3}"#),
            ],
        })
        .unwrap();
        drop(tx);
        let staged = run_stager(rx, &dir, 2, "s", &["shard-0".into()]).unwrap();
        assert_eq!(staged.lines, 2);
        assert_eq!(staged.files.len(), 2);
        assert_eq!(staged.files[0].lines, 1);
        assert_eq!(staged.rejects.len(), 1);
        assert_eq!(staged.rejects[0].file, "s/shard-0/2");
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(&staged.files[1].path).unwrap()),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "{\"a\":3}\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
