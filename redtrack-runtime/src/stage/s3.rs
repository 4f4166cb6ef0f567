//! A stage in Amazon S3 (`REDTRACK_STAGE=s3://bucket/prefix`), what Redshift's COPY reads.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::{join_key, Stage, StagedReader};
use crate::aws::{sdk_failure, Aws};
use crate::config::Config;
use crate::error::{Error, Result};

/// Staged files in an S3 bucket under a prefix.
#[derive(Debug, Clone)]
pub struct S3Stage {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Stage {
    /// A stage in `bucket` under `prefix`, with the SDK configuration of `config`. With an
    /// endpoint override (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, as for an S3 emulator on
    /// loopback) requests are path-style (`http://host:port/bucket/key`); against AWS they are
    /// virtual-hosted, as AWS recommends.
    pub async fn new(config: &Config, bucket: String, prefix: String) -> S3Stage {
        S3Stage::with_aws(config, &Aws::default(), bucket, prefix).await
    }

    /// A stage on the SDK configuration `aws` shares with the other parts of a loader.
    pub(crate) async fn with_aws(
        config: &Config,
        aws: &Aws,
        bucket: String,
        prefix: String,
    ) -> S3Stage {
        let sdk = aws.sdk(config).await;
        let overridden = sdk.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(overridden)
            .build();
        S3Stage {
            client: aws_sdk_s3::Client::from_conf(s3),
            bucket,
            prefix,
        }
    }

    /// Checks that the bucket exists and the credentials may use it (S3 `HeadBucket`).
    ///
    /// # Errors
    ///
    /// [`Error::Stage`] saying to create the bucket when it does not exist, else S3's error.
    pub async fn check(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| self.sdk_err("", "HeadBucket", e))?;
        Ok(())
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client (for tests and tools).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn object_key(&self, key: &str) -> String {
        join_key(&self.prefix, key)
    }

    /// The [`Error::Stage`] of a failed S3 call on `key`: retryable by the error's code (or HTTP
    /// status), never by its text; the SDK error is its source.
    fn sdk_err<E>(&self, key: &str, what: &str, e: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = sdk_failure(e);
        let message = if matches!(failure.code.as_str(), "NoSuchBucket" | "NotFound")
            && (what != "GetObject" || failure.code == "NoSuchBucket")
        {
            format!(
                "{what}: the bucket `{}` does not exist: create it (in the warehouse's region, \
                 e.g. `aws s3 mb s3://{}`), or set REDTRACK_STAGE to a bucket that does ({}: {})",
                self.bucket, self.bucket, failure.code, failure.message
            )
        } else {
            format!("{what}: {}: {}", failure.code, failure.message)
        };
        Error::Stage {
            location: self.url(key),
            message,
            retryable: failure.retryable,
            source: Some(failure.source),
        }
    }
}

impl Stage for S3Stage {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.object_key(key))
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        let body = ByteStream::from_path(path).await.map_err(|e| {
            Error::stage(
                self.url(key),
                format!("reading the local file {}: {e}", path.display()),
                false,
            )
            .with_source(e)
        })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .body(body)
            .send()
            .await
            .map_err(|e| self.sdk_err(key, "PutObject", e))?;
        Ok(())
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.sdk_err(key, "PutObject", e))?;
        Ok(())
    }

    async fn open(&self, key: &str) -> Result<StagedReader> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| self.sdk_err(key, "GetObject", e))?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let full = format!("{}/", self.object_key(prefix));
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.sdk_err(prefix, "ListObjectsV2", e))?;
            for obj in out.contents() {
                if let Some(k) = obj.key() {
                    keys.push(k.strip_prefix(&strip).unwrap_or(k).to_owned());
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}
