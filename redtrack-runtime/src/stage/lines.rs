//! Reading a staged file back line by line: the one gzip line reader of the runtime, used by the
//! PostgreSQL warehouse (which streams every staged line into COPY) and the Redshift warehouse
//! (which reads a rejected row's raw line back).
//!
//! It streams: one block of the object is read and decompressed at a time, never the whole
//! object. Every gzip member is read (a file may be several members, as `cat a.gz b.gz` makes).
//! Errors are surfaced, never dropped: a failed read is retryable, bytes that are not gzip are
//! not.

use std::io::Write;

use flate2::write::MultiGzDecoder;
use tokio::io::AsyncReadExt;

use super::{Stage, StagedReader};
use crate::error::{Error, Result};

/// How many bytes of the object are read at once.
const READ_BLOCK: usize = 64 * 1024;

/// The lines of one staged gzip file, in order.
pub(crate) struct GzipLines {
    reader: StagedReader,
    /// The object's URL, for errors.
    location: String,
    decoder: MultiGzDecoder<Vec<u8>>,
    raw: Vec<u8>,
    /// Decompressed bytes not yet handed out, from `start`.
    carry: Vec<u8>,
    start: usize,
    /// The object was read to its end.
    done: bool,
}

impl GzipLines {
    /// Opens `key` of `stage`.
    pub(crate) async fn open<S: Stage>(stage: &S, key: &str) -> Result<GzipLines> {
        let reader = stage.open(key).await?;
        Ok(GzipLines {
            reader,
            location: stage.url(key),
            decoder: MultiGzDecoder::new(Vec::with_capacity(READ_BLOCK * 4)),
            raw: vec![0; READ_BLOCK],
            carry: Vec::new(),
            start: 0,
            done: false,
        })
    }

    /// The next line, without its newline (a last line without one counts too); `None` at the
    /// end of the file.
    pub(crate) async fn next_line(&mut self) -> Result<Option<&[u8]>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.carry[self.start..]) {
                let line = self.start..self.start + pos;
                self.start += pos + 1;
                return Ok(Some(&self.carry[line]));
            }
            if self.done {
                if self.start < self.carry.len() {
                    let line = self.start..self.carry.len();
                    self.start = self.carry.len();
                    return Ok(Some(&self.carry[line]));
                }
                return Ok(None);
            }
            self.carry.drain(..self.start);
            self.start = 0;
            self.fill().await?;
        }
    }

    /// Reads and decompresses the next block into `carry`.
    async fn fill(&mut self) -> Result<()> {
        let n = self.reader.read(&mut self.raw).await.map_err(|e| {
            Error::stage(&self.location, format!("reading: {e}"), true).with_source(e)
        })?;
        let location = &self.location;
        let bad_gzip = |e: std::io::Error| {
            Error::stage(location, format!("not valid gzip: {e}"), false).with_source(e)
        };
        if n == 0 {
            self.decoder.try_finish().map_err(bad_gzip)?;
            self.done = true;
        } else {
            self.decoder.write_all(&self.raw[..n]).map_err(bad_gzip)?;
        }
        let plain = self.decoder.get_mut();
        self.carry.extend_from_slice(plain);
        plain.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::DirStage;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(text).unwrap();
        gz.finish().unwrap()
    }

    async fn all_lines(stage: &DirStage, key: &str) -> Result<Vec<String>> {
        let mut lines = GzipLines::open(stage, key).await?;
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await? {
            out.push(String::from_utf8_lossy(line).into_owned());
        }
        Ok(out)
    }

    #[tokio::test]
    async fn streams_every_member_and_surfaces_bad_gzip() {
        let root = std::env::temp_dir().join(format!("redtrack-lines-{}", rand::random::<u64>()));
        let stage = DirStage::new(root.clone()).unwrap();
        // Two members, a line longer than a read block, an empty line, no final newline.
        let long = "x".repeat(3 * READ_BLOCK);
        let mut bytes = gzip(format!("a\n{long}\n").as_bytes());
        bytes.extend(gzip(b"\nb\nlast"));
        stage.put_bytes("f.gz", bytes.into()).await.unwrap();
        let lines = all_lines(&stage, "f.gz").await.unwrap();
        assert_eq!(lines, ["a", long.as_str(), "", "b", "last"]);

        stage
            .put_bytes("bad.gz", bytes::Bytes::from_static(b"not gzip at all"))
            .await
            .unwrap();
        let e = all_lines(&stage, "bad.gz").await.unwrap_err();
        assert!(e.to_string().contains("not valid gzip"), "{e}");
        assert!(!e.is_retryable());
        let e = all_lines(&stage, "missing.gz").await.unwrap_err();
        assert!(e.to_string().contains("missing.gz"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
