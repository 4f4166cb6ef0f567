//! The development broker: a directory of append-only files (`REDTRACK_BROKER=file:<dir>`).
//!
//! Layout, per stream:
//!
//! ```text
//! <dir>/<stream>/shards.json             the shards: ids, parents, hash key ranges, open or closed
//! <dir>/<stream>/<shard id>.log          one record per line: {"k":"<key>","t":<ms>,"d":"<text>"}
//!                                        (or "b":"<base64>" for bytes that are not one line of UTF-8;
//!                                        "t": when it was appended, ms since the Unix epoch)
//! <dir>/<stream>/<shard id>.closed       written when the shard is split: its final length
//! <dir>/<stream>/.lock                   taken while creating or splitting the stream
//! ```
//!
//! A record's sequence number is the byte offset just past its line, so sequence numbers grow
//! within a shard, need no counter, and "after sequence number N" is "from byte N".
//!
//! Several writer processes may append at once: a writer takes an exclusive advisory lock
//! (`flock`) on the shard file, checks that the shard is still open, and appends all of its lines
//! for that shard with one `write` to a file opened with `O_APPEND`; a failed write is cut back so
//! no torn line remains, and a torn line left by a writer killed mid-write is cut off by the next
//! writer, under the lock, before it appends. Readers take no lock: they only hand out lines that end in a newline, so
//! a write in progress is simply not seen yet. Files are never renamed or truncated under a
//! reader (the original gem renamed the file out from under its writers, losing their events).
//! Partition keys map to shards by the MD5 of the key, as in Kinesis.

mod line;
mod shard_file;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;

use super::{
    hash_key, Backlog, Broker, PutOutcome, PutRecord, ReadBatch, ReadPolicy, SequenceNumber,
    ShardInfo, ShardMap, ShardReader, StartingPosition, StreamInfo, MAX_RECORDS_PER_GET,
    MAX_RECORD_BYTES,
};
use crate::error::{code, Error, Result};
use line::parse_line;
use shard_file::{
    append, close_shard, closed_length, lock_stream, read_map, touch, write_map, ShardMeta,
    SHARDS_FILE,
};

/// Streams as directories of shard files. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FileBroker {
    dir: PathBuf,
    /// Shard maps by stream, reloaded when a writer finds a shard closed under it.
    maps: Arc<Mutex<HashMap<String, Arc<Vec<ShardMeta>>>>>,
}

impl FileBroker {
    /// A broker keeping its streams under `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<FileBroker> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| io_error("Open", &dir.display().to_string(), &dir, e))?;
        Ok(FileBroker {
            dir,
            maps: Arc::default(),
        })
    }

    /// The directory the streams live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn stream_dir(&self, stream: &str) -> Result<PathBuf> {
        if stream.is_empty()
            || stream.contains(['/', '\\', '\0'])
            || stream == "."
            || stream == ".."
        {
            return Err(Error::broker(
                "Open",
                stream,
                "ValidationException",
                "a stream name for the file broker may not be empty or hold `/`",
                false,
            ));
        }
        Ok(self.dir.join(stream))
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(FileBroker) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| {
                Error::io(
                    &self.dir,
                    std::io::Error::other(format!("file broker task: {e}")),
                )
            })?
    }

    fn map(&self, stream: &str, reload: bool) -> Result<Arc<Vec<ShardMeta>>> {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        if !reload {
            if let Some(m) = maps.get(stream) {
                return Ok(m.clone());
            }
        }
        let m = Arc::new(read_map(&self.stream_dir(stream)?, stream)?);
        maps.insert(stream.to_owned(), m.clone());
        Ok(m)
    }

    fn put_blocking(&self, stream: &str, records: &[PutRecord]) -> Result<Vec<PutOutcome>> {
        let dir = self.stream_dir(stream)?;
        let mut outcomes: Vec<Option<PutOutcome>> = vec![None; records.len()];
        let hashes: Vec<u128> = records.iter().map(|r| hash_key(&r.partition_key)).collect();
        let mut todo: Vec<usize> = (0..records.len()).collect();
        let mut reload = false;
        for _ in 0..100 {
            if todo.is_empty() {
                break;
            }
            let map = self.map(stream, reload)?;
            reload = false;
            let mut by_shard: HashMap<&str, Vec<usize>> = HashMap::new();
            for &i in &todo {
                let shard = map
                    .iter()
                    .filter(|s| !s.closed)
                    .find(|s| {
                        s.range()
                            .is_some_and(|(a, b)| a <= hashes[i] && hashes[i] <= b)
                    })
                    .ok_or_else(|| {
                        io_error(
                            "PutRecords",
                            stream,
                            &dir,
                            std::io::Error::other("no open shard covers the partition key's hash"),
                        )
                    })?;
                by_shard.entry(&shard.shard_id).or_default().push(i);
            }
            let mut again = Vec::new();
            for (shard_id, idx) in by_shard {
                match append(&dir, shard_id, records, &idx)
                    .map_err(|e| io_error("PutRecords", stream, &dir, e))?
                {
                    Some(seqs) => {
                        for (i, seq) in idx.into_iter().zip(seqs) {
                            outcomes[i] = Some(PutOutcome::Stored {
                                shard_id: shard_id.to_owned(),
                                sequence_number: seq.into(),
                            });
                        }
                    }
                    // Closed under us by a split: route these again with a fresh map.
                    None => {
                        again.extend(idx);
                        reload = true;
                    }
                }
            }
            todo = again;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| PutOutcome::Failed {
                    code: "InternalFailure".into(),
                    message: "the shard map kept changing".into(),
                })
            })
            .collect())
    }

    fn create_blocking(&self, stream: &str, shards: u32) -> Result<()> {
        let dir = self.stream_dir(stream)?;
        fs::create_dir_all(&dir).map_err(|e| io_error("CreateStream", stream, &dir, e))?;
        let _lock = lock_stream(&dir).map_err(|e| io_error("CreateStream", stream, &dir, e))?;
        if dir.join(SHARDS_FILE).exists() {
            return Ok(());
        }
        let n = u128::from(shards.max(1));
        let width = u128::MAX / n;
        let metas: Vec<ShardMeta> = (0..n)
            .map(|i| ShardMeta {
                shard_id: shard_id(i as usize),
                parent_shard_id: None,
                starting_hash_key: (i * width).to_string(),
                ending_hash_key: if i + 1 == n {
                    u128::MAX.to_string()
                } else {
                    ((i + 1) * width - 1).to_string()
                },
                closed: false,
            })
            .collect();
        for m in &metas {
            touch(&dir.join(format!("{}.log", m.shard_id)))
                .map_err(|e| io_error("CreateStream", stream, &dir, e))?;
        }
        write_map(&dir, &metas).map_err(|e| io_error("CreateStream", stream, &dir, e))
    }

    fn split_blocking(&self, stream: &str) -> Result<usize> {
        let dir = self.stream_dir(stream)?;
        let _lock = lock_stream(&dir).map_err(|e| io_error("SplitShard", stream, &dir, e))?;
        let mut metas = read_map(&dir, stream)?;
        let open: Vec<usize> = (0..metas.len()).filter(|&i| !metas[i].closed).collect();
        let mut split = Vec::new();
        for i in open {
            let Some((start, end)) = metas[i].range() else {
                continue;
            };
            if end <= start {
                continue;
            }
            let mid = start + (end - start) / 2 + 1;
            for (a, b) in [(start, mid - 1), (mid, end)] {
                let child = ShardMeta {
                    shard_id: shard_id(metas.len()),
                    parent_shard_id: Some(metas[i].shard_id.clone()),
                    starting_hash_key: a.to_string(),
                    ending_hash_key: b.to_string(),
                    closed: false,
                };
                touch(&dir.join(format!("{}.log", child.shard_id)))
                    .map_err(|e| io_error("SplitShard", stream, &dir, e))?;
                metas.push(child);
            }
            metas[i].closed = true;
            split.push(metas[i].shard_id.clone());
        }
        // New writers route to the children from here on ...
        write_map(&dir, &metas).map_err(|e| io_error("SplitShard", stream, &dir, e))?;
        // ... and writers holding the old map find each parent closed under its lock.
        for parent in &split {
            close_shard(&dir, parent).map_err(|e| io_error("SplitShard", stream, &dir, e))?;
        }
        self.maps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.to_owned(), Arc::new(metas));
        Ok(split.len())
    }

    fn list_blocking(&self, stream: &str) -> Result<Vec<ShardInfo>> {
        let dir = self.stream_dir(stream)?;
        read_map(&dir, stream)?
            .into_iter()
            .map(|m| {
                let ending = closed_length(&dir, &m.shard_id)
                    .map_err(|e| io_error("ListShards", stream, &dir, e))?;
                Ok(ShardInfo {
                    parent_shard_id: m.parent_shard_id,
                    adjacent_parent_shard_id: None,
                    starting_sequence_number: "0".into(),
                    ending_sequence_number: ending.map(SequenceNumber::from),
                    shard_id: m.shard_id,
                })
            })
            .collect()
    }
}

impl Broker for FileBroker {
    type Reader = FileReader;

    /// Reads are local CPU work: one shard per core (up to 4).
    fn max_parallel_reads(&self) -> Option<usize> {
        Some(crate::threads::cpu_threads())
    }

    async fn create_stream(&self, stream: &str, shards: u32) -> Result<()> {
        let stream = stream.to_owned();
        self.blocking(move |b| b.create_blocking(&stream, shards))
            .await
    }

    async fn split_shards(&self, stream: &str) -> Result<usize> {
        let stream = stream.to_owned();
        self.blocking(move |b| b.split_blocking(&stream)).await
    }

    async fn put_records(&self, stream: &str, records: &[PutRecord]) -> Result<Vec<PutOutcome>> {
        let stream = stream.to_owned();
        let records = records.to_vec();
        self.blocking(move |b| b.put_blocking(&stream, &records))
            .await
    }

    async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>> {
        let stream = stream.to_owned();
        self.blocking(move |b| b.list_blocking(&stream)).await
    }

    /// Files are kept until deleted (no retention); records of up to 1 MiB, as a Kinesis
    /// stream's default, so what fails in production fails in development too.
    async fn stream_info(&self, _stream: &str) -> Result<StreamInfo> {
        Ok(StreamInfo::new(None, MAX_RECORD_BYTES, false))
    }

    /// The open shards of `shards.json`, whose hash key ranges route records as in Kinesis.
    async fn shard_map(&self, stream: &str) -> Result<Option<ShardMap>> {
        let stream = stream.to_owned();
        self.blocking(move |b| {
            let map = b.map(&stream, true)?;
            Ok(Some(ShardMap::new(
                map.iter()
                    .filter(|s| !s.closed)
                    .filter_map(|s| s.range().map(|(a, z)| (a, z, s.shard_id.clone()))),
            )))
        })
        .await
    }

    /// Exact and without parsing records: the whole lines of the shard's file after the
    /// position, their bytes, and the write time of the first (lines written by older versions
    /// have none).
    async fn backlog(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<Backlog> {
        let dir = self.stream_dir(stream)?;
        let pos = offset(stream, &from)?;
        let (log, shard) = (dir.join(format!("{shard_id}.log")), shard_id.to_owned());
        let counted = log.clone();
        tokio::task::spawn_blocking(move || count_lines(&counted, pos))
            .await
            .map_err(|e| {
                Error::io(
                    &log,
                    std::io::Error::other(format!("file broker task: {e}")),
                )
            })?
            .map_err(|e| io_error("GetRecords", stream, &log, e))
            .map(|mut b| {
                tracing::trace!(shard = %shard, records = b.records, "file broker backlog");
                b.complete = true;
                b
            })
    }

    /// A file broker's sequence number is a byte offset in the shard's file: a checkpoint that
    /// is not a number was written by a Kinesis loader; one beyond the end of the file means the
    /// directory was replaced or emptied since (new records would never be read).
    async fn check_checkpoint(
        &self,
        stream: &str,
        shard: &ShardInfo,
        checkpoint: &SequenceNumber,
    ) -> Result<()> {
        let Ok(offset) = checkpoint.parse::<u64>() else {
            return Err(super::foreign_checkpoint(
                stream,
                &shard.shard_id,
                checkpoint,
                "Kinesis",
                &format!("the file broker ({})", self.dir.display()),
                "REDTRACK_BROKER=kinesis",
            ));
        };
        let log = self
            .stream_dir(stream)?
            .join(format!("{}.log", shard.shard_id));
        let len = tokio::fs::metadata(&log)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if offset > len {
            return Err(Error::Config(format!(
                "the checkpoint of shard `{}` of stream `{stream}` in kinesis_loads (byte \
                 {offset}) lies beyond the end of its file {} ({len} bytes): the file broker's \
                 directory was replaced or emptied since that load, and its new records would \
                 never be read. Point REDTRACK_BROKER at the directory that was loaded; or, to \
                 load this directory's stream from its start, delete the old checkpoints first: \
                 DELETE FROM kinesis_loads WHERE stream_name = '{stream}'",
                shard.shard_id,
                log.display()
            )));
        }
        Ok(())
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<FileReader> {
        let dir = self.stream_dir(stream)?;
        let pos = offset(stream, &from)?;
        let log = dir.join(format!("{shard_id}.log"));
        let exists = tokio::fs::try_exists(&log).await.unwrap_or(false);
        if !exists {
            return Err(Error::broker(
                "GetShardIterator",
                stream,
                "ResourceNotFoundException",
                format!("shard {shard_id} does not exist ({})", log.display()),
                false,
            ));
        }
        Ok(FileReader {
            stream: stream.to_owned(),
            dir,
            shard_id: shard_id.to_owned(),
            pos,
        })
    }
}

/// Reads one shard file forward from a byte offset.
#[derive(Debug)]
pub struct FileReader {
    stream: String,
    dir: PathBuf,
    shard_id: String,
    /// The offset of the next unread line (= the sequence number of the last line read).
    pos: u64,
}

impl FileReader {
    fn read_blocking(
        dir: &Path,
        shard_id: &str,
        mut pos: u64,
        limit: usize,
    ) -> std::io::Result<(ReadBatch, u64)> {
        // The final length first: once it is known, every line up to it is already written.
        let closed_at = closed_length(dir, shard_id)?;
        let mut file = File::open(dir.join(format!("{shard_id}.log")))?;
        file.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        let mut records = Vec::with_capacity(limit.min(MAX_RECORDS_PER_GET));
        // The records' bytes share large blocks (one allocation per block, not per record).
        let mut data = BytesMut::new();
        let mut long_line = Vec::new();
        while records.len() < limit {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break; // the end
            }
            let (record, n) = match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    let end = pos + i as u64 + 1;
                    (parse_line(&buf[..i], end, &mut data), i + 1)
                }
                None => {
                    // A line longer than the buffer, or one still being written.
                    long_line.clear();
                    let n = reader.read_until(b'\n', &mut long_line)?;
                    if n == 0 || long_line.last() != Some(&b'\n') {
                        break;
                    }
                    let end = pos + n as u64;
                    let record = parse_line(&long_line[..n - 1], end, &mut data);
                    pos = end;
                    records.push(record.map_err(|e| bad_line(shard_id, end - n as u64, e))?);
                    continue;
                }
            };
            records.push(record.map_err(|e| bad_line(shard_id, pos, e))?);
            reader.consume(n);
            pos += n as u64;
        }
        let shard_end = records.len() < limit && closed_at.is_some_and(|c| pos >= c);
        Ok((
            ReadBatch {
                records,
                millis_behind_latest: None,
                shard_end,
            },
            pos,
        ))
    }
}

/// Records asked for at once: smaller batches than Kinesis allows keep fewer records in flight
/// between the readers and the stager, at no cost in speed (the file broker has no call limits).
const RECORDS_PER_CALL: usize = 1_000;

/// How many bytes of a shard file are read at once (what a batch reads past its last line is
/// read again by the next one, so not much more than that).
const READ_BUFFER: usize = 64 * 1024;

fn bad_line(shard_id: &str, pos: u64, e: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{shard_id}.log at byte {pos}: {e}"),
    )
}

impl ShardReader for FileReader {
    fn read_policy(&self) -> ReadPolicy {
        ReadPolicy::new(RECORDS_PER_CALL, std::time::Duration::ZERO)
    }

    async fn next_batch(&mut self, limit: usize) -> Result<ReadBatch> {
        let (dir, shard_id, pos) = (self.dir.clone(), self.shard_id.clone(), self.pos);
        let limit = limit.max(1);
        let (batch, pos) = tokio::task::spawn_blocking(move || {
            FileReader::read_blocking(&dir, &shard_id, pos, limit)
        })
        .await
        .map_err(|e| {
            Error::io(
                &self.dir,
                std::io::Error::other(format!("file broker task: {e}")),
            )
        })?
        .map_err(|e| io_error("GetRecords", &self.stream, &self.dir, e))?;
        self.pos = pos;
        Ok(batch)
    }
}

/// The byte offset a read from `from` starts at.
fn offset(stream: &str, from: &StartingPosition) -> Result<u64> {
    match from {
        StartingPosition::TrimHorizon => Ok(0),
        StartingPosition::AfterSequenceNumber(s) => s.parse::<u64>().map_err(|_| {
            Error::broker(
                "GetShardIterator",
                stream,
                "InvalidArgumentException",
                format!("`{s}` is not a sequence number of the file broker"),
                false,
            )
        }),
    }
}

/// The whole lines of `log` from byte `pos`: how many, their bytes, and the write time of the
/// first.
fn count_lines(log: &Path, pos: u64) -> std::io::Result<Backlog> {
    let mut file = File::open(log)?;
    file.seek(SeekFrom::Start(pos))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut backlog = Backlog::default();
    let mut first = Vec::new();
    if reader.read_until(b'\n', &mut first)? == 0 || first.last() != Some(&b'\n') {
        return Ok(backlog);
    }
    backlog.records = 1;
    backlog.oldest_arrival = line::written_ms(&first)
        .map(|(ms, _)| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    // `at`: the file offset of the buffer's start; `end`: just past the last whole line (bytes
    // after it are a line still being written).
    let mut at = pos + first.len() as u64;
    let mut end = at;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            backlog.bytes = end - pos;
            return Ok(backlog);
        }
        for nl in memchr::memchr_iter(b'\n', buf) {
            backlog.records += 1;
            end = at + nl as u64 + 1;
        }
        let n = buf.len();
        at += n as u64;
        reader.consume(n);
    }
}

fn shard_id(n: usize) -> String {
    format!("shardId-{n:012}")
}

/// The [`Error::Broker`] of a failed file operation of the broker under `path`.
fn io_error(operation: &'static str, stream: &str, path: &Path, e: std::io::Error) -> Error {
    let retryable = matches!(
        e.kind(),
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
    );
    Error::broker(
        operation,
        stream,
        code::IO,
        format!("{}: {e}", path.display()),
        retryable,
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::StoredRecord;
    use bytes::Bytes;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn rec(k: &str, d: &[u8]) -> PutRecord {
        PutRecord {
            partition_key: k.into(),
            data: Bytes::copy_from_slice(d),
        }
    }

    async fn read_all(b: &FileBroker, stream: &str, shard: &str) -> (Vec<StoredRecord>, bool) {
        let mut r = b
            .read_shard(stream, shard, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        let mut out = Vec::new();
        loop {
            let batch = r.next_batch(3).await.unwrap();
            let n = batch.records.len();
            out.extend(batch.records);
            if batch.shard_end || n == 0 {
                return (out, batch.shard_end);
            }
        }
    }

    #[tokio::test]
    async fn long_lines_and_a_line_being_written() {
        let tmp = std::env::temp_dir().join(format!("redtrack-file-{}", rand::random::<u64>()));
        let b = FileBroker::new(&tmp).unwrap();
        let s = "c.d.long";
        b.create_stream(s, 1).await.unwrap();
        let big = format!("{{\"x\":\"{}\"}}", "y".repeat(READ_BUFFER + 1000));
        let records = vec![
            rec("a", big.as_bytes()),
            rec("b", b"{}"),
            rec("c", &big.as_bytes()[..10]),
        ];
        b.put_records(s, &records).await.unwrap();
        let shard = b.list_shards(s).await.unwrap()[0].shard_id.clone();
        let log = tmp.join(s).join(format!("{shard}.log"));
        let len = fs::metadata(&log).unwrap().len();
        // A writer's line not finished yet.
        OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"{\"k\":\"d\",\"d\":\"{}")
            .unwrap();
        let (got, _) = read_all(&b, s, &shard).await;
        assert_eq!(got.len(), 3);
        for (g, r) in got.iter().zip(&records) {
            assert_eq!(g.data, r.data);
        }
        assert_eq!(got[2].sequence_number, len.to_string());
        let _ = fs::remove_dir_all(&tmp);
    }

    /// A writer killed in the middle of its write leaves a line without its newline; the next
    /// writer (or a split) cuts it off instead of gluing its own line to it.
    #[tokio::test]
    async fn a_torn_line_of_a_dead_writer_is_cut_before_the_next_write() {
        let tmp = std::env::temp_dir().join(format!("redtrack-file-{}", rand::random::<u64>()));
        let b = FileBroker::new(&tmp).unwrap();
        let s = "c.d.torn";
        b.create_stream(s, 1).await.unwrap();
        let shard = b.list_shards(s).await.unwrap()[0].shard_id.clone();
        let log = tmp.join(s).join(format!("{shard}.log"));
        let torn = |bytes: &[u8]| {
            OpenOptions::new()
                .append(true)
                .open(&log)
                .unwrap()
                .write_all(bytes)
                .unwrap()
        };
        // Torn before any whole line; then after one; then longer than a read-back block.
        torn(b"{\"k\":\"a\",\"d\":\"{\\\"half");
        b.put_records(s, &[rec("k", b"{\"n\":1}")]).await.unwrap();
        torn(b"{\"k\":\"b\",\"d\":\"");
        b.put_records(s, &[rec("k", b"{\"n\":2}"), rec("k", b"{\"n\":3}")])
            .await
            .unwrap();
        torn(&[b'x'; 200_000]);
        assert_eq!(b.split_shards(s).await.unwrap(), 1);
        let (got, end) = read_all(&b, s, &shard).await;
        let data: Vec<&[u8]> = got.iter().map(|r| &r.data[..]).collect();
        assert_eq!(data, [&b"{\"n\":1}"[..], b"{\"n\":2}", b"{\"n\":3}"]);
        assert!(end, "the closed shard ends after its last whole line");
        let _ = fs::remove_dir_all(&tmp);
    }

    #[tokio::test]
    async fn writes_reads_splits_and_resumes() {
        let tmp = std::env::temp_dir().join(format!("redtrack-file-{}", rand::random::<u64>()));
        let b = FileBroker::new(&tmp).unwrap();
        let s = "c.d.t";
        assert!(b.put_records(s, &[rec("k", b"x")]).await.is_err());
        b.create_stream(s, 2).await.unwrap();
        b.create_stream(s, 2).await.unwrap(); // idempotent
        let shards = b.list_shards(s).await.unwrap();
        assert_eq!(shards.len(), 2);
        assert!(shards.iter().all(|s| !s.is_closed()));

        let records: Vec<_> = (0..20)
            .map(|i| rec(&format!("key{i}"), format!("{{\"n\":{i}}}").as_bytes()))
            .chain([
                rec("bin", &[0xF3, b'\n', 0]),
                rec("tab\t\"k\"", b"line\nbreak"),
            ])
            .collect();
        let out = b.put_records(s, &records).await.unwrap();
        assert!(out.iter().all(|o| matches!(o, PutOutcome::Stored { .. })));

        let mut seen = Vec::new();
        for sh in &shards {
            let (recs, end) = read_all(&b, s, &sh.shard_id).await;
            assert!(!end);
            for w in recs.windows(2) {
                assert!(
                    w[0].sequence_number.parse::<u64>().unwrap()
                        < w[1].sequence_number.parse::<u64>().unwrap()
                );
            }
            seen.extend(recs);
        }
        assert_eq!(seen.len(), records.len());
        for r in &records {
            assert!(seen
                .iter()
                .any(|s| s.partition_key == r.partition_key && s.data == r.data));
        }

        // Resume after a sequence number.
        let first = &shards[0].shard_id;
        let (recs, _) = read_all(&b, s, first).await;
        let mut r = b
            .read_shard(
                s,
                first,
                StartingPosition::AfterSequenceNumber(recs[0].sequence_number.clone()),
            )
            .await
            .unwrap();
        let batch = r.next_batch(100).await.unwrap();
        assert_eq!(batch.records, recs[1..]);

        assert_eq!(b.split_shards(s).await.unwrap(), 2);
        let after = b.list_shards(s).await.unwrap();
        assert_eq!(after.len(), 6);
        assert_eq!(after.iter().filter(|s| s.is_closed()).count(), 2);
        b.put_records(s, &records).await.unwrap();
        let (recs2, end) = read_all(&b, s, first).await;
        assert!(end, "a drained closed shard reports shard_end");
        assert_eq!(recs2.len(), recs.len(), "nothing lands in a closed shard");
        let mut total = 0;
        for sh in after.iter().filter(|s| !s.is_closed()) {
            assert!(sh.parent_shard_id.is_some());
            total += read_all(&b, s, &sh.shard_id).await.0.len();
        }
        assert_eq!(total, records.len());
        let _ = fs::remove_dir_all(&tmp);
    }
}
