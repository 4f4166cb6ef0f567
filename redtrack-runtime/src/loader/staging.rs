//! Staging: turns the records read from the shards into gzip'd newline-delimited JSON files,
//! written as a stream on a blocking thread (memory holds one chunk of records, never the load).
//!
//! Each Kinesis record is de-aggregated (KPL), and each user record checked against the table's
//! columns (`validate`: unwrapped from the original gem's `{"data": "<event json>"}` envelope
//! when it is one); a record that cannot be loaded is rejected here, with its stream, shard,
//! sequence number and raw bytes, and never reaches COPY.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::mpsc;

use super::dedupe::{plain_record_id, user_record_id, Dedupe};
use super::rejects::escape_raw;
use super::validate::{Invalid, RecordRules};
use crate::broker::aggregate::{deaggregate, is_aggregated};
use crate::broker::StoredRecord;
use crate::error::{Error, RecordSource, RejectedRow, Result};
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
    /// What a record must be to be staged.
    pub(crate) rules: RecordRules,
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
    /// Records that cannot be loaded (or corrupt aggregates), with their reasons.
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
    mut dedupe: Dedupe,
) -> Result<(Staged, Vec<u64>)> {
    let Source {
        stream,
        shard_ids,
        rules,
    } = source;
    let hung_up = || Error::io(dir, std::io::Error::other("a gzip thread stopped"));
    let mut parts: Vec<Part> = (0..n_files)
        .map(|_| Part {
            block: Vec::with_capacity(BLOCK + 4096),
            lines: 0,
        })
        .collect();
    let mut staged = Staged::default();
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
            // One user record (the record itself, or user record `sub` of a KPL aggregate):
            // staged if it passes the check, else rejected with where it came from.
            let mut stage_one = |data: &bytes::Bytes, sub: Option<u64>| -> Result<()> {
                match rules.check(data) {
                    Ok(line) => {
                        write_line(&mut parts, &line)?;
                        staged.lines += 1;
                        staged.bytes += line.len() as u64 + 1;
                    }
                    Err(invalid) => staged
                        .rejects
                        .push(reject(stream, shard, &record, sub, data, invalid)),
                }
                Ok(())
            };
            if !is_aggregated(&record.data) {
                // The common case, without de-aggregation's allocations. A twin of a record
                // already loaded (its writer's retry) is dropped.
                if dedupe.admit(chunk.shard, plain_record_id(&record.partition_key), arrival) {
                    stage_one(&record.data, None)?;
                }
                continue;
            }
            match deaggregate(&record.partition_key, &record.data) {
                Ok(users) => {
                    for (sub, user) in users.into_iter().enumerate() {
                        if dedupe.admit(chunk.shard, user_record_id(&user), arrival) {
                            stage_one(&user.data, Some(sub as u64))?;
                        }
                    }
                }
                Err(e) => {
                    let invalid = Invalid {
                        column: String::new(),
                        value: String::new(),
                        reason: e.to_string(),
                    };
                    staged.rejects.push(reject(
                        stream,
                        shard,
                        &record,
                        None,
                        &record.data,
                        invalid,
                    ));
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
    staged.dedupe = dedupe;
    Ok((staged, lines))
}

/// The name of staged file `i`.
pub(crate) fn part_name(i: usize) -> String {
    format!("part-{i:05}.json.gz")
}

/// The reject of `data` (the record, or its user record `sub` of a KPL aggregate) of `record`.
fn reject(
    stream: &str,
    shard: &str,
    record: &StoredRecord,
    sub: Option<u64>,
    data: &Bytes,
    invalid: Invalid,
) -> RejectedRow {
    let mut file = format!("{stream}/{shard}/{}", record.sequence_number);
    if let Some(sub) = sub {
        file.push_str(&format!("/{sub}"));
    }
    let value = if invalid.column.is_empty() {
        truncate_string(escape_raw(&data[..data.len().min(1024)]), 1024)
    } else {
        invalid.value
    };
    let mut row = RejectedRow::new(file, 0, invalid.column, value, invalid.reason);
    row.source = Some(RecordSource::new(
        stream,
        shard,
        record.sequence_number.clone(),
        sub,
    ));
    row.raw = Some(data.clone());
    row
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

    static COLUMNS: [crate::schema::Column; 1] = [crate::schema::Column {
        name: "a",
        sql_type: crate::schema::SqlType::Integer,
        nullable: true,
        encode: None,
    }];
    static TABLE: crate::schema::TableSchema = crate::schema::TableSchema {
        name: "t",
        columns: &COLUMNS,
        sortkey: crate::schema::SortKey::None,
        distkey: None,
        diststyle: None,
    };

    fn source(shard_ids: Vec<String>) -> Source {
        Source {
            stream: "s".into(),
            shard_ids,
            rules: RecordRules::new(&TABLE, &[]),
        }
    }

    /// A staging directory that cannot be made is an error naming it.
    #[test]
    fn an_unwritable_staging_dir_is_named() {
        let file = std::env::temp_dir().join(format!("redtrack-file-{}", rand::random::<u64>()));
        std::fs::write(&file, b"not a directory").unwrap();
        let dir = file.join("load-1");
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let e = run_stager(rx, &dir, 1, &source(Vec::new()), Dedupe::default()).unwrap_err();
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
        let staged = run_stager(
            rx,
            &dir,
            2,
            &source(vec!["shard-0".into()]),
            Dedupe::default(),
        )
        .unwrap();
        assert_eq!(staged.lines, 2);
        assert_eq!(staged.files.len(), 2);
        assert_eq!(staged.files[0].lines, 1);
        assert_eq!(staged.rejects.len(), 1);
        let reject = &staged.rejects[0];
        assert_eq!(reject.file, "s/shard-0/2");
        let from = reject.source.as_ref().unwrap();
        assert_eq!(
            (from.shard_id.as_str(), from.sequence_number.as_str()),
            ("shard-0", "2")
        );
        assert_eq!(reject.raw.as_deref(), Some(&b"nope"[..]));
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
