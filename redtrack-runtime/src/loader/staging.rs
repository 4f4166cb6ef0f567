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

use super::dedupe::{plain_record_id, user_record_id, Dedupe};
use crate::broker::aggregate::{deaggregate, is_aggregated};
use crate::broker::StoredRecord;
use crate::error::{Error, RejectedRow, Result};
use crate::json_scan::surely_json;
use crate::text::truncate_string;
use crate::threads::cpu_threads;

/// Records of one shard, in sequence order, on their way to the stager.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// The shard's index in the load's shard list.
    pub(crate) shard: usize,
    /// The records.
    pub(crate) records: Vec<StoredRecord>,
}

/// Where the records come from, for their rejects, and how to read them.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The stream.
    pub(crate) stream: String,
    /// The load's shards, by [`Chunk::shard`].
    pub(crate) shard_ids: Vec<String>,
    /// Whether a record may be the original gem's `{"data": "<json>"}` envelope (see
    /// [`event_json`]).
    pub(crate) envelopes: bool,
}

/// A finished local gzip file.
#[derive(Debug)]
pub(crate) struct LocalFile {
    pub(crate) path: PathBuf,
    pub(crate) lines: u64,
}

/// What the stager wrote.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) files: Vec<LocalFile>,
    /// Records that were not JSON objects (or corrupt aggregates), kept with their reasons.
    pub(crate) rejects: Vec<RejectedRow>,
    /// Event lines written.
    pub(crate) lines: u64,
    /// Uncompressed bytes written.
    pub(crate) bytes: u64,
    /// The dedupe filter every user record went through, with what it kept for the commit.
    pub(crate) dedupe: Dedupe,
}

/// Lines are gathered per file into blocks of about this many bytes before they are
/// compressed (one call into the compressor per block, not per line).
const BLOCK: usize = 128 * 1024;

/// Blocks waiting for each compressor (bounds the stager's memory).
const BLOCKS_IN_FLIGHT: usize = 2;

/// How many threads compress at once: one per core (up to 4), never more than files.
pub(crate) fn compressors(n_files: usize) -> usize {
    cpu_threads().min(n_files.max(1))
}

/// A staged file as the stager fills it.
struct Part {
    /// Lines not yet handed to the compressor.
    block: Vec<u8>,
    lines: u64,
}

/// A block of lines for file `part`, on its way to a compressor.
struct Block {
    part: usize,
    bytes: Vec<u8>,
}

/// Compresses the blocks of the files it owns (file `i` belongs to compressor
/// `i % compressors`), in order, into their gzip files; returns spent blocks through `spent`.
fn compress_files(
    paths: Vec<(usize, PathBuf)>,
    blocks: std::sync::mpsc::Receiver<Block>,
    spent: std::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    let mut gzs = Vec::with_capacity(paths.len());
    for (part, path) in paths {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        gzs.push((
            part,
            path,
            GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::fast()),
        ));
    }
    for mut block in blocks {
        let Some((_, path, gz)) = gzs.iter_mut().find(|(part, _, _)| *part == block.part) else {
            // Never: the stager sends each compressor only blocks of its own files.
            let part = PathBuf::from(part_name(block.part));
            return Err(Error::io(
                part,
                std::io::Error::other("a block for another compressor"),
            ));
        };
        gz.write_all(&block.bytes)
            .map_err(|e| Error::io(&*path, e))?;
        block.bytes.clear();
        let _ = spent.send(block.bytes);
    }
    for (_, path, gz) in gzs {
        let buf = gz.finish().map_err(|e| Error::io(&path, e))?;
        // No fsync: a staged file is read back only by this load (upload or COPY) before it
        // commits; a crash before COMMIT abandons the load, and after it the rows are the
        // warehouse's to keep.
        buf.into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
    }
    Ok(())
}

/// Writes chunks from `rx` into `n_files` gzip files in `dir`, round-robin by event, until the
/// channel closes. Runs on a blocking thread; the files are compressed on
/// [`compressors`]`(n_files)` threads of their own while this one unpacks and checks records.
pub(crate) fn run_stager(
    rx: mpsc::Receiver<Chunk>,
    dir: &Path,
    n_files: usize,
    source: &Source,
    dedupe: Dedupe,
) -> Result<Staged> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let n_files = n_files.max(1);
    let workers = compressors(n_files);
    let paths: Vec<PathBuf> = (0..n_files).map(|i| dir.join(part_name(i))).collect();
    std::thread::scope(|scope| {
        let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, blocks) = std::sync::mpsc::sync_channel::<Block>(BLOCKS_IN_FLIGHT);
            let mine: Vec<(usize, PathBuf)> = paths
                .iter()
                .enumerate()
                .filter(|(i, _)| i % workers == w)
                .map(|(i, p)| (i, p.clone()))
                .collect();
            let spent = spent_tx.clone();
            senders.push(tx);
            handles.push(
                std::thread::Builder::new()
                    .name("redtrack-gzip".into())
                    .spawn_scoped(scope, move || compress_files(mine, blocks, spent))
                    .map_err(|e| Error::io(dir, e))?,
            );
        }
        drop(spent_tx);
        let staged = stage_records(rx, &senders, &spent_rx, dir, n_files, source, dedupe);
        drop(senders);
        let mut compressed = Ok(());
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(Error::io(
                    dir,
                    std::io::Error::other("a gzip thread panicked"),
                ))
            });
            if compressed.is_ok() {
                compressed = r;
            }
        }
        // A compressor's own error says more than the stager's "it hung up".
        compressed?;
        let (mut staged, parts) = staged?;
        staged.files = paths
            .into_iter()
            .zip(parts)
            .map(|(path, lines)| LocalFile { path, lines })
            .collect();
        Ok(staged)
    })
}

/// The stager's own loop: unpacks and checks each record, gathers lines per file, and hands
/// full blocks to the compressors. Returns what it staged and each file's line count.
fn stage_records(
    mut rx: mpsc::Receiver<Chunk>,
    senders: &[std::sync::mpsc::SyncSender<Block>],
    spent: &std::sync::mpsc::Receiver<Vec<u8>>,
    dir: &Path,
    n_files: usize,
    source: &Source,
    dedupe: Dedupe,
) -> Result<(Staged, Vec<u64>)> {
    let Source {
        stream,
        shard_ids,
        envelopes,
    } = source;
    let envelopes = *envelopes;
    let hung_up = || Error::io(dir, std::io::Error::other("a gzip thread stopped"));
    let mut parts: Vec<Part> = (0..n_files)
        .map(|_| Part {
            block: Vec::with_capacity(BLOCK + 4096),
            lines: 0,
        })
        .collect();
    let mut staged = Staged {
        files: Vec::new(),
        rejects: Vec::new(),
        lines: 0,
        bytes: 0,
        dedupe,
    };
    let mut next = 0usize;
    let mut write_line = |parts: &mut Vec<Part>, line: &[u8]| -> Result<()> {
        let i = next;
        next = (next + 1) % n_files;
        let part = &mut parts[i];
        part.block.extend_from_slice(line);
        part.block.push(b'\n');
        part.lines += 1;
        if part.block.len() >= BLOCK {
            let fresh = spent
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BLOCK + 4096));
            let bytes = std::mem::replace(&mut part.block, fresh);
            senders[i % senders.len()]
                .send(Block { part: i, bytes })
                .map_err(|_| hung_up())?;
        }
        Ok(())
    };
    while let Some(chunk) = rx.blocking_recv() {
        let shard = shard_ids
            .get(chunk.shard)
            .map(String::as_str)
            .unwrap_or("?");
        for record in chunk.records {
            let arrival = record
                .approximate_arrival_timestamp
                .map(|t| t.timestamp_millis());
            if !is_aggregated(&record.data) {
                // A twin of a record already loaded (its writer's retry) is dropped.
                let id = plain_record_id(&record.partition_key);
                if !staged.dedupe.admit(chunk.shard, id, arrival) {
                    continue;
                }
                // The common case, without de-aggregation's allocations.
                match event_json(&record.data, envelopes) {
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
                if !staged
                    .dedupe
                    .admit(chunk.shard, user_record_id(&user), arrival)
                {
                    continue;
                }
                match event_json(&user.data, envelopes) {
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
    let mut lines = Vec::with_capacity(n_files);
    for (i, part) in parts.into_iter().enumerate() {
        if !part.block.is_empty() {
            senders[i % senders.len()]
                .send(Block {
                    part: i,
                    bytes: part.block,
                })
                .map_err(|_| hung_up())?;
        }
        lines.push(part.lines);
    }
    Ok((staged, lines))
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
        value: truncate_string(String::from_utf8_lossy(data).into_owned(), 1024),
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

/// The event's JSON object as one line: with `envelopes`, unwrapped from `{"data": "<json>"}`
/// if it is such an envelope whose string holds a JSON object, else the record itself; an error
/// (the reason) unless it is a JSON object.
///
/// redtrack's writer puts every column's key in every record, so a record with the single key
/// `data` is an envelope unless the table's only column is `data`: for such a table the caller
/// passes `envelopes = false` and records are taken as they are (a value that is the text of a
/// JSON object stays that text).
pub(crate) fn event_json(
    data: &[u8],
    envelopes: bool,
) -> std::result::Result<Cow<'_, [u8]>, String> {
    let trimmed = data.trim_ascii();
    if trimmed.first() != Some(&b'{') {
        return Err(match std::str::from_utf8(trimmed) {
            Ok(_) => "not a JSON object".to_owned(),
            Err(_) => "not UTF-8 text".to_owned(),
        });
    }
    if envelopes && trimmed[1..].trim_ascii_start().starts_with(b"\"data\"") {
        if let Ok(env) = serde_json::from_slice::<Envelope<'_>>(trimmed) {
            let inner = env.data.trim();
            if inner.starts_with('{') && is_json(inner.as_bytes()) {
                return Ok(Cow::Owned(one_line(inner.as_bytes()).into_owned()));
            }
        }
    }
    if !surely_json(trimmed) {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(trimmed) {
            return Err(format!("not valid JSON: {e}"));
        }
    }
    Ok(one_line(trimmed))
}

fn is_json(b: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
}

/// Valid JSON holds raw line breaks only as whitespace between tokens, so dropping them keeps
/// the meaning and makes the object one line.
fn one_line(b: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'\n', b'\r', b).is_some() {
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
pub(crate) fn staging_failed(dir: &Path, e: tokio::task::JoinError) -> Error {
    Error::stage(
        dir.display().to_string(),
        format!("writing staged files: {e}"),
        false,
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn no_dedupe(shards: usize) -> Dedupe {
        Dedupe::new(
            Default::default(),
            shards,
            std::time::Duration::from_secs(600),
        )
    }

    fn line(s: &str) -> String {
        String::from_utf8(event_json(s.as_bytes(), true).unwrap().into_owned()).unwrap()
    }

    #[test]
    fn plain_and_envelope() {
        assert_eq!(line(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(line(r#" {"data":"{\"a\":1}"} "#), r#"{"a":1}"#);
        // A `data` key that does not hold a JSON object is an ordinary column.
        assert_eq!(line(r#"{"data":"hello"}"#), r#"{"data":"hello"}"#);
        assert_eq!(line(r#"{"data":"{}","b":2}"#), r#"{"data":"{}","b":2}"#);
        assert_eq!(line("{\"a\":\n1}"), r#"{"a":1}"#);
        // A table whose only column is `data` takes records as they are.
        let own = event_json(br#"{"data":"{\"a\":1}"}"#, false).unwrap();
        assert_eq!(&own[..], br#"{"data":"{\"a\":1}"}"#);
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        assert!(event_json(b"[1]", true).is_err());
        assert!(event_json(b"{\"a\":", true).is_err());
        assert!(event_json(b"", true).is_err());
        assert!(event_json(b"\xff\xfe", true).is_err());
    }

    /// A staging directory that cannot be made is an error naming it.
    #[test]
    fn an_unwritable_staging_dir_is_named() {
        let file = std::env::temp_dir().join(format!("redtrack-file-{}", rand::random::<u64>()));
        std::fs::write(&file, b"not a directory").unwrap();
        let dir = file.join("load-1");
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let source = Source {
            stream: "s".into(),
            shard_ids: Vec::new(),
            envelopes: true,
        };
        let e = run_stager(rx, &dir, 1, &source, no_dedupe(0)).unwrap_err();
        assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn stages_round_robin_files() {
        let dir = std::env::temp_dir().join(format!("redtrack-stager-{}", rand::random::<u64>()));
        let (tx, rx) = mpsc::channel(4);
        let rec = |seq: &str, data: &'static str| StoredRecord {
            sequence_number: seq.into(),
            partition_key: "k".into(),
            data: Bytes::from_static(data.as_bytes()),
            approximate_arrival_timestamp: None,
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
        let source = Source {
            stream: "s".into(),
            shard_ids: vec!["shard-0".into()],
            envelopes: true,
        };
        let staged = run_stager(rx, &dir, 2, &source, no_dedupe(1)).unwrap();
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
