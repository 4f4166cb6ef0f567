//! Stages: where the loader puts gzip'd newline-delimited JSON files and a manifest for COPY.
//!
//! Two implementations: [`S3Stage`] (`s3://bucket/prefix`, what Redshift's COPY reads) and
//! [`DirStage`] (`file:<dir>`, for the PostgreSQL warehouse in development). [`AnyStage`] picks
//! one from the [`Config`].
//!
//! Keys are relative to the stage's root (the bucket's prefix or the directory) and use `/`.

mod dir;
mod lines;
mod s3;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use dir::DirStage;
pub(crate) use lines::GzipLines;
pub use s3::S3Stage;

use crate::aws::Aws;
use crate::config::{Config, StageLocation};
use crate::error::{Error, Result};

/// A readable staged object.
pub type StagedReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// A place for staged files: S3 or a local directory.
pub trait Stage: Send + Sync {
    /// The URL of `key` as a warehouse reads it (`s3://bucket/prefix/key` or `file:///dir/key`).
    fn url(&self, key: &str) -> String;

    /// Puts the local file at `path` under `key`, streaming it (the file may be large). The
    /// local file may be moved away.
    fn put_file(&self, key: &str, path: &Path) -> impl Future<Output = Result<()>> + Send;

    /// Puts `bytes` under `key` (small objects: manifests, reject lists).
    fn put_bytes(&self, key: &str, bytes: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Opens `key` for streaming reads.
    fn open(&self, key: &str) -> impl Future<Output = Result<StagedReader>> + Send;

    /// Every key under `prefix` (a folder, without trailing `/`), sorted.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Where a load should write its files before [`Stage::put_file`] takes them, if this stage
    /// prefers a place: a directory stage names a folder on its own file system, so that
    /// `put_file` is a rename. `None` (the default): the configured staging directory, else the
    /// system's temporary directory.
    fn preferred_local_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// The stage the configuration names.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyStage {
    /// An S3 bucket and prefix.
    S3(S3Stage),
    /// A local directory.
    Dir(DirStage),
}

impl AnyStage {
    /// Builds the stage `config` names (`REDTRACK_STAGE`); an error if there is none.
    pub async fn from_config(config: &Config) -> Result<AnyStage> {
        AnyStage::with_aws(config, &Aws::default()).await
    }

    /// The stage of `config`, on the SDK configuration `aws` shares with the other parts of a
    /// loader.
    pub(crate) async fn with_aws(config: &Config, aws: &Aws) -> Result<AnyStage> {
        match config.stage() {
            Some(StageLocation::S3 { bucket, prefix }) => Ok(AnyStage::S3(
                S3Stage::with_aws(config, aws, bucket.clone(), prefix.clone()).await,
            )),
            Some(StageLocation::Dir(dir)) => Ok(AnyStage::Dir(DirStage::new(dir.clone())?)),
            None => Err(Error::Config(
                "the loader needs a stage: set REDTRACK_STAGE to s3://bucket/prefix or file:<dir>"
                    .into(),
            )),
        }
    }
}

impl Stage for AnyStage {
    fn url(&self, key: &str) -> String {
        match self {
            AnyStage::S3(s) => s.url(key),
            AnyStage::Dir(s) => s.url(key),
        }
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        match self {
            AnyStage::S3(s) => s.put_file(key, path).await,
            AnyStage::Dir(s) => s.put_file(key, path).await,
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        match self {
            AnyStage::S3(s) => s.put_bytes(key, bytes).await,
            AnyStage::Dir(s) => s.put_bytes(key, bytes).await,
        }
    }

    async fn open(&self, key: &str) -> Result<StagedReader> {
        match self {
            AnyStage::S3(s) => s.open(key).await,
            AnyStage::Dir(s) => s.open(key).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        match self {
            AnyStage::S3(s) => s.list(prefix).await,
            AnyStage::Dir(s) => s.list(prefix).await,
        }
    }

    fn preferred_local_dir(&self) -> Option<PathBuf> {
        match self {
            AnyStage::S3(s) => s.preferred_local_dir(),
            AnyStage::Dir(s) => s.preferred_local_dir(),
        }
    }
}

/// A COPY manifest: `{"entries":[{"url":...,"mandatory":true}]}` (page
/// `loading-data-files-using-manifest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The files, each mandatory (COPY fails if one is missing rather than loading less).
    entries: Vec<ManifestEntry>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ManifestEntry {
    /// The file's URL.
    url: String,
    /// Always `true`.
    mandatory: bool,
}

impl Manifest {
    /// A manifest of `urls`, every entry mandatory.
    pub(crate) fn new(urls: impl IntoIterator<Item = String>) -> Manifest {
        Manifest {
            entries: urls
                .into_iter()
                .map(|url| ManifestEntry {
                    url,
                    mandatory: true,
                })
                .collect(),
        }
    }

    /// The manifest as JSON bytes.
    pub(crate) fn to_bytes(&self) -> Bytes {
        // Serializing strings and bools cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The folder of one load: `redtrack/<cluster>/<database>/<table>/<yyyymmdd>/load-<id>`.
pub(crate) fn load_folder(
    cluster: &str,
    database: &str,
    table: &str,
    day: &str,
    load_id: &str,
) -> String {
    format!("redtrack/{cluster}/{database}/{table}/{day}/load-{load_id}")
}

fn join_key(prefix: &str, key: &str) -> String {
    let key = key.trim_start_matches('/');
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_has_the_copy_shape() {
        let m = Manifest::new(["s3://b/p/part-0000.json.gz".to_owned()]);
        assert_eq!(
            std::str::from_utf8(&m.to_bytes()).unwrap(),
            r#"{"entries":[{"url":"s3://b/p/part-0000.json.gz","mandatory":true}]}"#
        );
    }

    #[test]
    fn load_folder_layout() {
        assert_eq!(
            load_folder("c", "d", "t", "20261124", "x1"),
            "redtrack/c/d/t/20261124/load-x1"
        );
        assert_eq!(join_key("", "/a/b"), "a/b");
        assert_eq!(join_key("pre/fix", "a"), "pre/fix/a");
    }
}
