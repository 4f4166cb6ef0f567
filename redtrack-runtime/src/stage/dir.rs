//! A stage in a local directory (`REDTRACK_STAGE=file:<dir>`), for the PostgreSQL warehouse.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Stage, StagedReader};
use crate::error::{Error, Result};

/// Staged files in a local directory.
#[derive(Debug, Clone)]
pub struct DirStage {
    root: PathBuf,
}

impl DirStage {
    /// A stage rooted at `root` (created when the first file is put).
    pub fn new(root: PathBuf) -> Result<DirStage> {
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io(&root, e))?
                .join(root)
        };
        Ok(DirStage { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key.trim_start_matches('/'))
    }

    fn err(&self, key: &str, e: std::io::Error) -> Error {
        Error::stage(self.path(key).display().to_string(), e.to_string(), false).with_source(e)
    }

    async fn parent_dir(&self, key: &str) -> Result<PathBuf> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| self.err(key, e))?;
        }
        Ok(path)
    }
}

impl Stage for DirStage {
    fn url(&self, key: &str) -> String {
        format!("file://{}", self.path(key).display())
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        let dest = self.parent_dir(key).await?;
        // A rename is atomic on one file system; across file systems, copy then rename.
        if tokio::fs::rename(path, &dest).await.is_err() {
            let tmp = dest.with_extension("partial");
            tokio::fs::copy(path, &tmp)
                .await
                .map_err(|e| self.err(key, e))?;
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| self.err(key, e))?;
        }
        Ok(())
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let dest = self.parent_dir(key).await?;
        let tmp = dest.with_extension("partial");
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(|e| self.err(key, e))?;
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(|e| self.err(key, e))
    }

    async fn open(&self, key: &str) -> Result<StagedReader> {
        let file = tokio::fs::File::open(self.path(key))
            .await
            .map_err(|e| self.err(key, e))?;
        Ok(Box::pin(tokio::io::BufReader::with_capacity(1 << 16, file)))
    }

    /// `.redtrack-tmp` under the stage's root: on the stage's own file system, so putting a
    /// file is a rename.
    fn preferred_local_dir(&self) -> Option<PathBuf> {
        Some(self.root.join(".redtrack-tmp"))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut todo = vec![self.path(prefix)];
        while let Some(dir) = todo.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err(prefix, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| self.err(prefix, e))?
            {
                let path = entry.path();
                if entry
                    .file_type()
                    .await
                    .map_err(|e| self.err(prefix, e))?
                    .is_dir()
                {
                    todo.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    keys.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn put_open_list() {
        let root =
            std::env::temp_dir().join(format!("redtrack-dirstage-{}", rand::random::<u64>()));
        let stage = DirStage::new(root.clone()).unwrap();
        stage
            .put_bytes("a/b/m.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let local = root.join("local.tmp");
        std::fs::write(&local, b"hello").unwrap();
        stage.put_file("a/b/part-0.gz", &local).await.unwrap();
        assert_eq!(
            stage.list("a").await.unwrap(),
            vec!["a/b/m.json", "a/b/part-0.gz"]
        );
        let mut s = String::new();
        stage
            .open("a/b/part-0.gz")
            .await
            .unwrap()
            .read_to_string(&mut s)
            .await
            .unwrap();
        assert_eq!(s, "hello");
        assert!(stage.url("a/b/m.json").starts_with("file:///"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
