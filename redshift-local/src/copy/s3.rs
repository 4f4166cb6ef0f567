//! Reading COPY's sources from S3 with the AWS SDK, so requests are SigV4-signed and an S3
//! endpoint that checks signatures (s3s-fs) refuses wrong keys as S3 does.
//!
//! - `IAM_ROLE`: the stand-in's own credentials (from the standard AWS environment), standing in
//!   for the role the cluster assumes (copy-parameters-authorization).
//! - `ACCESS_KEY_ID`/`SECRET_ACCESS_KEY` (and `SESSION_TOKEN`): exactly those keys.
//! - A manifest (copy-parameters-data-source-s3, loading-data-files-using-manifest): an
//!   uncompressed JSON object `{"entries": [{"url": "s3://...", "mandatory": bool}]}`; a
//!   missing mandatory file fails the COPY, a missing optional one is skipped, a file listed
//!   twice is loaded twice.
//! - Without MANIFEST: every object whose key starts with the given prefix.

use crate::error::SqlError;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;

use super::command::Auth;
use crate::error::{err, err_detail};

/// The stand-in's S3 configuration.
#[derive(Clone)]
pub struct S3 {
    base: aws_config::SdkConfig,
    path_style: bool,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("endpoint", &self.base.endpoint_url())
            .field("region", &self.base.region())
            .finish()
    }
}

/// One file to load.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its URL, `s3://bucket/key`.
    pub url: String,
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// A missing file fails the COPY.
    pub mandatory: bool,
}

impl S3 {
    /// Loads the standard AWS configuration (region, credentials, `AWS_ENDPOINT_URL_S3`).
    pub async fn from_env() -> S3 {
        let base = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let path_style = base.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        S3 { base, path_style }
    }

    /// A client for one COPY's authorization and REGION.
    pub fn client(&self, auth: &Auth, region: Option<&str>) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.base).force_path_style(self.path_style);
        if let Auth::Keys { id, secret, token } = auth {
            b = b.credentials_provider(Credentials::new(
                id.clone(),
                secret.clone(),
                token.clone(),
                None,
                "redshift-local COPY",
            ));
        }
        if let Some(r) = region {
            b = b.region(aws_sdk_s3::config::Region::new(r.to_owned()));
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

/// Splits `s3://bucket/key`.
pub fn split_url(url: &str) -> Result<(String, String), SqlError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| err("22023", format!("'{url}' is not an s3:// URL")))?;
    match rest.split_once('/') {
        Some((b, k)) if !b.is_empty() => Ok((b.to_owned(), k.to_owned())),
        _ => Ok((rest.to_owned(), String::new())),
    }
}

/// Redshift's shape of an S3 failure: `S3ServiceException:<message>,Status <n>,Error <code>,
/// Rid <request id>`, with the failing object as context.
pub fn s3_error<E>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    context: &str,
) -> SqlError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let (code, message, rid) = match e {
        SdkError::ServiceError(se) => (
            se.err().code().unwrap_or("Unknown").to_owned(),
            se.err().message().unwrap_or("").to_owned(),
            se.err().meta().request_id().unwrap_or("").to_owned(),
        ),
        other => ("ConnectionError".to_owned(), chain(other), String::new()),
    };
    let text =
        format!("S3ServiceException:{message},Status {status},Error {code},Rid {rid},CanRetry 1");
    err_detail(
        "XX000",
        text.clone(),
        format!(
            "\n  -----------------------------------------------\n  error:  {text}\n  code:      8001\n  context:   {context}\n  location:  redshift-local s3\n  -----------------------------------------------\n"
        ),
    )
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// The files a COPY reads.
pub async fn files(
    client: &aws_sdk_s3::Client,
    source: &str,
    manifest: bool,
) -> Result<Vec<SourceFile>, SqlError> {
    let (bucket, key) = split_url(source)?;
    if manifest {
        let out = client
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| s3_error(&e, &format!("Problem reading manifest file - {source}")))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| err("XX000", format!("reading manifest {source}: {e}")))?
            .into_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            err_detail(
                "XX000",
                "Manifest file is not in correct json format",
                format!("{source}: {e} (copy-parameters-data-source-s3: the manifest is uncompressed JSON)"),
            )
        })?;
        let Some(entries) = doc.get("entries").and_then(|e| e.as_array()) else {
            return Err(err_detail(
                "XX000",
                "Manifest file is not in correct json format",
                format!("{source}: no \"entries\" array"),
            ));
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let Some(url) = e.get("url").and_then(|u| u.as_str()) else {
                return Err(err_detail(
                    "XX000",
                    "Manifest file is not in correct json format",
                    format!("{source}: an entry has no \"url\""),
                ));
            };
            let (b, k) = split_url(url)?;
            let mandatory = e
                .get("mandatory")
                .and_then(|m| m.as_bool())
                .unwrap_or(false);
            out.push(SourceFile {
                url: url.to_owned(),
                bucket: b,
                key: k,
                mandatory,
            });
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let mut req = client.list_objects_v2().bucket(&bucket).prefix(&key);
        if let Some(t) = token.take() {
            req = req.continuation_token(t);
        }
        let page = req
            .send()
            .await
            .map_err(|e| s3_error(&e, &format!("Listing bucket={bucket} prefix={key}")))?;
        for o in page.contents() {
            let Some(k) = o.key() else { continue };
            // folder placeholders hold no data
            if k.ends_with('/') && o.size().unwrap_or(0) == 0 {
                continue;
            }
            out.push(SourceFile {
                url: format!("s3://{bucket}/{k}"),
                bucket: bucket.clone(),
                key: k.to_owned(),
                mandatory: true,
            });
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    if out.is_empty() {
        return Err(err_detail(
            "XX000",
            format!("The specified S3 prefix '{key}' does not exist"),
            format!(
                "\n  -----------------------------------------------\n  error:  The specified S3 prefix '{key}' does not exist\n  code:      8001\n  context:   {source}\n  location:  redshift-local s3\n  -----------------------------------------------\n"
            ),
        ));
    }
    Ok(out)
}
