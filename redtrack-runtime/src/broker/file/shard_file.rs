//! A stream's files on disk: the shard map (`shards.json`, written atomically), the shard logs
//! (appended under an exclusive `flock`, a torn tail cut back), the `.closed` markers and the
//! stream's lock.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use super::io_error;
use super::line::encode_line;
use crate::broker::PutRecord;
use crate::error::{Error, Result};

/// The shard map's file name.
pub(super) const SHARDS_FILE: &str = "shards.json";

/// The stream's lock file, taken while creating or splitting the stream.
const LOCK_FILE: &str = ".lock";

/// One shard in `shards.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct ShardMeta {
    pub(super) shard_id: String,
    pub(super) parent_shard_id: Option<String>,
    /// Decimal, as Kinesis writes hash keys.
    pub(super) starting_hash_key: String,
    pub(super) ending_hash_key: String,
    pub(super) closed: bool,
}

impl ShardMeta {
    /// The shard's hash key range, inclusive.
    pub(super) fn range(&self) -> Option<(u128, u128)> {
        Some((
            self.starting_hash_key.parse().ok()?,
            self.ending_hash_key.parse().ok()?,
        ))
    }
}

/// Appends `records[idx]` to the shard, under its lock, in one write. `None` if the shard was
/// closed (split) under us; else each record's sequence number.
pub(super) fn append(
    dir: &Path,
    shard_id: &str,
    records: &[PutRecord],
    idx: &[usize],
) -> std::io::Result<Option<Vec<u64>>> {
    let mut buf = Vec::with_capacity(idx.iter().map(|&i| records[i].data.len() + 80).sum());
    let mut ends = Vec::with_capacity(idx.len());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    for &i in idx {
        encode_line(&records[i], now_ms, &mut buf);
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
pub(super) fn close_shard(dir: &Path, shard_id: &str) -> std::io::Result<()> {
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
pub(super) fn closed_length(dir: &Path, shard_id: &str) -> std::io::Result<Option<u64>> {
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

pub(super) fn read_map(dir: &Path, stream: &str) -> Result<Vec<ShardMeta>> {
    let path = dir.join(SHARDS_FILE);
    let text = fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::broker(
                "ListShards",
                stream,
                "ResourceNotFoundException",
                format!(
                    "the stream does not exist: run `setup` (or \
                     `Client::create_stream::<E>(shards)`), which creates it (there is no {})",
                    path.display()
                ),
                false,
            )
        } else {
            io_error("ListShards", stream, &path, e)
        }
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        io_error(
            "ListShards",
            stream,
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

pub(super) fn write_map(dir: &Path, metas: &[ShardMeta]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(metas).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(SHARDS_FILE), &json)
}

/// Writes a file by renaming a temporary one over it, so readers see all of it or none.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

pub(super) fn touch(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
}

/// Takes the stream's lock (held until the file is dropped).
pub(super) fn lock_stream(dir: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(LOCK_FILE))?;
    flock(&f, FlockOperation::LockExclusive)?;
    Ok(f)
}
