//! The development broker: a directory of append-only files (`REDTRACK_BROKER=file:<dir>`).
//!
//! Layout, per stream:
//!
//! ```text
//! <dir>/<stream>/shards.json             the shards: ids, parents, hash key ranges, open or closed
//! <dir>/<stream>/<shard id>.log          one record per line: {"k":"<partition key>","d":"<text>"}
//!                                        (or "b":"<base64>" for bytes that are not one line of UTF-8)
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

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use super::{
    Broker, PutOutcome, PutRecord, ReadBatch, ReadPolicy, SequenceNumber, ShardInfo, ShardReader,
    StartingPosition, StoredRecord, MAX_RECORDS_PER_GET,
};
use crate::error::{Error, Result};
use crate::json_scan;

const SHARDS_FILE: &str = "shards.json";
const LOCK_FILE: &str = ".lock";

/// One shard in `shards.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct ShardMeta {
    shard_id: String,
    parent_shard_id: Option<String>,
    /// Decimal, as Kinesis writes hash keys.
    starting_hash_key: String,
    ending_hash_key: String,
    closed: bool,
}

impl ShardMeta {
    fn range(&self) -> Option<(u128, u128)> {
        Some((
            self.starting_hash_key.parse().ok()?,
            self.ending_hash_key.parse().ok()?,
        ))
    }
}

/// One line of a shard file.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(rename = "k", borrow)]
    key: std::borrow::Cow<'a, str>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none", borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

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
        fs::create_dir_all(&dir).map_err(|e| io_error("Open", &dir.display().to_string(), e))?;
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
            return Err(Error::Broker {
                operation: "Open",
                stream: stream.to_owned(),
                code: "ValidationException".into(),
                message: "a stream name for the file broker may not be empty or hold `/`".into(),
                retryable: false,
            });
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
            .map_err(|e| Error::Io(std::io::Error::other(format!("file broker task: {e}"))))?
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
                            std::io::Error::other("no open shard covers the partition key's hash"),
                        )
                    })?;
                by_shard.entry(&shard.shard_id).or_default().push(i);
            }
            let mut again = Vec::new();
            for (shard_id, idx) in by_shard {
                match append(&dir, shard_id, records, &idx)
                    .map_err(|e| io_error("PutRecords", stream, e))?
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
        fs::create_dir_all(&dir).map_err(|e| io_error("CreateStream", stream, e))?;
        let _lock = lock_stream(&dir).map_err(|e| io_error("CreateStream", stream, e))?;
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
                .map_err(|e| io_error("CreateStream", stream, e))?;
        }
        write_map(&dir, &metas).map_err(|e| io_error("CreateStream", stream, e))
    }

    fn split_blocking(&self, stream: &str) -> Result<usize> {
        let dir = self.stream_dir(stream)?;
        let _lock = lock_stream(&dir).map_err(|e| io_error("SplitShard", stream, e))?;
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
                    .map_err(|e| io_error("SplitShard", stream, e))?;
                metas.push(child);
            }
            metas[i].closed = true;
            split.push(metas[i].shard_id.clone());
        }
        // New writers route to the children from here on ...
        write_map(&dir, &metas).map_err(|e| io_error("SplitShard", stream, e))?;
        // ... and writers holding the old map find each parent closed under its lock.
        for parent in &split {
            close_shard(&dir, parent).map_err(|e| io_error("SplitShard", stream, e))?;
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
                    .map_err(|e| io_error("ListShards", stream, e))?;
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

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<FileReader> {
        let dir = self.stream_dir(stream)?;
        let pos = match &from {
            StartingPosition::TrimHorizon => 0,
            StartingPosition::AfterSequenceNumber(s) => {
                s.parse::<u64>().map_err(|_| Error::Broker {
                    operation: "GetShardIterator",
                    stream: stream.to_owned(),
                    code: "InvalidArgumentException".into(),
                    message: format!("`{s}` is not a sequence number of the file broker"),
                    retryable: false,
                })?
            }
        };
        let log = dir.join(format!("{shard_id}.log"));
        let exists = tokio::fs::try_exists(&log).await.unwrap_or(false);
        if !exists {
            return Err(Error::Broker {
                operation: "GetShardIterator",
                stream: stream.to_owned(),
                code: "ResourceNotFoundException".into(),
                message: format!("shard {shard_id} does not exist ({})", log.display()),
                retryable: false,
            });
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

/// How many bytes of record data share one allocation.
const DATA_BLOCK: usize = 256 * 1024;

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
        .map_err(|e| Error::Io(std::io::Error::other(format!("file broker task: {e}"))))?
        .map_err(|e| io_error("GetRecords", &self.stream, e))?;
        self.pos = pos;
        Ok(batch)
    }
}

/// One shard file line as a record whose sequence number is `seq`; its data is appended to
/// `data` and split off from it.
fn parse_line(
    line: &[u8],
    seq: u64,
    data: &mut BytesMut,
) -> std::result::Result<StoredRecord, String> {
    if let Some((key, text)) = split_plain_line(line) {
        if data.capacity() - data.len() < text.len() {
            data.reserve(DATA_BLOCK.max(text.len()));
        }
        // Written by `encode_line` in its usual shape: unescaped (and checked) in one pass
        // without building a JSON tree; anything unusual goes to the JSON parser below.
        if unescape_into(text, data) {
            return Ok(StoredRecord {
                sequence_number: seq.into(),
                partition_key: key.to_owned(),
                data: data.split().freeze(),
            });
        }
    }
    let l: Line<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let data = match (l.text, l.base64) {
        (Some(t), None) => Bytes::copy_from_slice(t.as_bytes()),
        (None, Some(b)) => Bytes::from(
            aws_smithy_types::base64::decode(b).map_err(|e| format!("bad base64: {e}"))?,
        ),
        _ => return Err("a line needs exactly one of `d` and `b`".into()),
    };
    Ok(StoredRecord {
        sequence_number: seq.into(),
        partition_key: l.key.into_owned(),
        data,
    })
}

/// The key and the still escaped text of a line shaped `{"k":"<key>","d":"<text>"}` whose
/// key is printable ASCII (DEL included) without escapes; `None` for any other line.
fn split_plain_line(line: &[u8]) -> Option<(&str, &[u8])> {
    const HEAD: &[u8] = b"{\"k\":";
    const MID: &[u8] = b",\"d\":\"";
    const TAIL: &[u8] = b"\"}";
    let rest = line.strip_prefix(HEAD)?;
    let key_end = json_scan::plain_string_end(rest, 0)?;
    let key = &rest[1..key_end];
    let text = rest[key_end + 1..].strip_prefix(MID)?.strip_suffix(TAIL)?;
    // Printable ASCII (checked by the scanner) is UTF-8.
    let key = std::str::from_utf8(key).ok()?;
    Some((key, text))
}

/// Appends the JSON string body `text` unescaped to `out`, if it is printable ASCII (or UTF-8)
/// whose only escapes are `\"` and `\\` and which holds no unescaped `"`; `false` (and `out`
/// as it was) otherwise.
fn unescape_into(text: &[u8], out: &mut BytesMut) -> bool {
    let at = out.len();
    out.resize(at + text.len(), 0);
    let dst = &mut out[at..];
    // One pass, copying as it checks: bit 0 of `bad` marks a control character or a bare
    // quote, bit 7 a byte that is not ASCII.
    let mut bad = 0u8;
    let (mut i, mut j) = (0, 0);
    while i < text.len() {
        // Eight plain bytes at a time while there are.
        if let Some(word) = text.get(i..i + 8) {
            if !json_scan::has_special_byte(u64::from_le_bytes(word.try_into().unwrap_or_default()))
            {
                dst[j..j + 8].copy_from_slice(word);
                i += 8;
                j += 8;
                continue;
            }
        }
        let c = text[i];
        if c == b'\\' {
            match text.get(i + 1) {
                Some(&e @ (b'"' | b'\\')) => {
                    dst[j] = e;
                    j += 1;
                    i += 2;
                    continue;
                }
                _ => {
                    bad |= 1;
                    break;
                }
            }
        }
        bad |= u8::from(c < 0x20 || c == b'"') | (c & 0x80);
        dst[j] = c;
        j += 1;
        i += 1;
    }
    let ok = bad & 1 == 0 && (bad == 0 || std::str::from_utf8(text).is_ok());
    out.truncate(if ok { at + j } else { at });
    ok
}

fn encode_line(r: &PutRecord, out: &mut Vec<u8>) {
    let text = std::str::from_utf8(&r.data)
        .ok()
        .filter(|t| !t.contains(['\n', '\r']));
    let line = Line {
        key: r.partition_key.as_str().into(),
        text: text.map(Into::into),
        base64: match text {
            Some(_) => None,
            None => Some(aws_smithy_types::base64::encode(&r.data)),
        },
    };
    // Serializing strings into a Vec cannot fail; JSON escapes keep the line on one line.
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// Appends `records[idx]` to the shard, under its lock, in one write. `None` if the shard was
/// closed (split) under us; else each record's sequence number.
fn append(
    dir: &Path,
    shard_id: &str,
    records: &[PutRecord],
    idx: &[usize],
) -> std::io::Result<Option<Vec<u64>>> {
    let mut buf = Vec::with_capacity(idx.iter().map(|&i| records[i].data.len() + 64).sum());
    let mut ends = Vec::with_capacity(idx.len());
    for &i in idx {
        encode_line(&records[i], &mut buf);
        ends.push(buf.len() as u64);
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(dir.join(format!("{shard_id}.log")))?;
    flock(&file, FlockOperation::LockExclusive)?;
    if closed_length(dir, shard_id)?.is_some() {
        return Ok(None); // the lock goes with the file
    }
    let start = cut_torn_tail(&file, shard_id)?;
    if let Err(e) = file.write_all(&buf) {
        // Cut a torn tail back so the next line starts on a line of its own.
        let _ = file.set_len(start);
        return Err(e);
    }
    Ok(Some(ends.into_iter().map(|e| start + e).collect()))
}

/// Under the shard's lock: if the file does not end in a newline, a writer died in the middle of
/// its write (SIGKILL, power loss); cuts the file back to its last whole line, which no reader
/// has handed out, so the next line does not start glued to the torn one. Returns the length.
fn cut_torn_tail(file: &File, shard_id: &str) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut last = [0u8; 1];
    if len == 0 || (file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n') {
        return Ok(len);
    }
    // Back from the end, a block at a time, to the last newline.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    let keep = loop {
        let from = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - from) as usize];
        file.read_exact_at(chunk, from)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break from + i as u64 + 1;
        }
        if from == 0 {
            break 0;
        }
        end = from;
    };
    tracing::warn!(
        shard = shard_id,
        bytes = len - keep,
        "file broker: cut a torn line left by a writer that died mid-write"
    );
    file.set_len(keep)?;
    Ok(keep)
}

/// Marks the shard closed at its current length, under its lock, so no writer appends after.
fn close_shard(dir: &Path, shard_id: &str) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(dir.join(format!("{shard_id}.log")))?;
    flock(&file, FlockOperation::LockExclusive)?;
    let len = cut_torn_tail(&file, shard_id)?;
    write_atomic(
        &dir.join(format!("{shard_id}.closed")),
        len.to_string().as_bytes(),
    )
}

/// The final length of a closed shard, or `None` while it is open.
fn closed_length(dir: &Path, shard_id: &str) -> std::io::Result<Option<u64>> {
    match fs::read_to_string(dir.join(format!("{shard_id}.closed"))) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{shard_id}.closed holds `{s}`, not a length"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_map(dir: &Path, stream: &str) -> Result<Vec<ShardMeta>> {
    let path = dir.join(SHARDS_FILE);
    let text = fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Broker {
                operation: "ListShards",
                stream: stream.to_owned(),
                code: "ResourceNotFoundException".into(),
                message: format!(
                    "no stream at {}; create it first (client.create_stream)",
                    dir.display()
                ),
                retryable: false,
            }
        } else {
            io_error("ListShards", stream, e)
        }
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        io_error(
            "ListShards",
            stream,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            ),
        )
    })
}

fn write_map(dir: &Path, metas: &[ShardMeta]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(metas).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(SHARDS_FILE), &json)
}

/// Writes a file by renaming a temporary one over it, so readers see all of it or none.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

fn touch(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
}

/// Takes the stream's lock (held until the file is dropped).
fn lock_stream(dir: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(LOCK_FILE))?;
    flock(&f, FlockOperation::LockExclusive)?;
    Ok(f)
}

fn shard_id(n: usize) -> String {
    format!("shardId-{n:012}")
}

/// The 128-bit hash key of a partition key, as Kinesis computes it (MD5, big-endian).
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

fn io_error(operation: &'static str, stream: &str, e: std::io::Error) -> Error {
    Error::Broker {
        operation,
        stream: stream.to_owned(),
        code: "io".into(),
        message: e.to_string(),
        retryable: matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn fast_line_parser_agrees_with_json() {
        let datas: Vec<&[u8]> = vec![
            b"{\"a\":1}",
            b"{\"q\":\"say \\\"hi\\\" \\\\ there\"}",
            b"{\"t\":\"tab\there\"}",
            b"{\"u\":\"\\u00e9 \xc3\xa9 \xe2\x82\xac\"}",
            b"\"",
            b"\\",
            b"",
            b"/ \x7f",
            &[0xF3, b'\n', 0],
            b"\xff\xfe",
            b"line\rbreak",
            b"{\"long\":\"abcdefghijklmnop\\\"qrstuvwxyz0123456789\\\\ABCDEFGH\\\"\"}",
            b"abcdefghijklmno\xc3\xa9pqrstuvwxyz",
            b"abcdefghijklmno\tpqrstuvwxyz",
        ];
        let keys = ["k", "tab\t\"k\"", "\u{e9}t\u{e9}", "a\\b", "\u{1}"];
        for data in datas {
            for key in keys {
                let r = rec(key, data);
                let mut line = Vec::new();
                encode_line(&r, &mut line);
                let line = &line[..line.len() - 1];
                let mut buf = BytesMut::new();
                let got = parse_line(line, 7, &mut buf).unwrap();
                assert_eq!(got.data, r.data, "data of {line:?}");
                assert_eq!(got.partition_key, r.partition_key, "key of {line:?}");
                assert_eq!(got.sequence_number, "7");
            }
        }
        // Lines the fast path refuses still fail (or parse) as JSON says.
        let mut buf = BytesMut::new();
        assert!(parse_line(b"{\"k\":\"a\",\"d\":\"x\"y\"}", 1, &mut buf).is_err());
        assert!(parse_line(b"{\"k\":\"a\",\"d\":\"\xff\"}", 1, &mut buf).is_err());
        assert!(parse_line(b"{\"k\":\"a\",\"d\":\"x\\\"}", 1, &mut buf).is_err());
        let r = parse_line(b"{\"d\":\"x\\/y\",\"k\":\"a\"}", 1, &mut buf).unwrap();
        assert_eq!(&r.data[..], b"x/y");
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
