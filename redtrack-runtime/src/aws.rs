//! The AWS SDK configuration, loaded once and shared by the Kinesis client, the S3 client and
//! COPY's credentials, and how SDK errors become redtrack errors (by their codes, keeping the SDK
//! error as the source).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};

use crate::config::{config_error, AwsNeeds, Config, Needs};
use crate::error::{code, Result, Source};
use crate::retry::is_retryable_code;
use crate::text::error_chain;

/// Cached temporary credentials are renewed once they have less than this left: a COPY that
/// carries them must not outlive them.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// One AWS SDK configuration, loaded at most once (on first use) and shared by the parts of one
/// loader or client. Cheap to clone; clones share the configuration.
#[derive(Clone, Default)]
pub(crate) struct Aws(Arc<tokio::sync::OnceCell<SdkConfig>>);

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("loaded", &self.0.initialized())
            .finish()
    }
}

impl Aws {
    /// The configuration: `config`'s own ([`crate::ConfigBuilder::with_sdk_config`]), else the
    /// one `aws-config` loads from the standard environment (region, credentials, profiles,
    /// `AWS_ENDPOINT_URL_*`), its credentials provider wrapped in a cache.
    pub(crate) async fn sdk(&self, config: &Config) -> &SdkConfig {
        self.0
            .get_or_init(|| async {
                let sdk = match &config.sdk_config {
                    Some(sdk) => sdk.clone(),
                    None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
                };
                match sdk.credentials_provider() {
                    Some(provider) => sdk
                        .to_builder()
                        .credentials_provider(SharedCredentialsProvider::new(
                            CachedCredentials::new(provider),
                        ))
                        .build(),
                    None => sdk,
                }
            })
            .await
    }
}

/// How long resolving the AWS credentials may take before a part that needs them refuses to
/// start (the default chain ends with the EC2 instance metadata service, which, off EC2, only
/// times out).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

impl Aws {
    /// What the SDK configuration lacks for `needs`, one line per problem naming the variable
    /// to set. Resolves the credentials (once: they are cached), within
    /// [`CREDENTIALS_TIMEOUT`], so that a missing region or missing credentials are said now,
    /// not after the SDK's retries of the first call.
    pub(crate) async fn problems(&self, config: &Config, needs: AwsNeeds) -> Vec<String> {
        let mut problems = Vec::new();
        if !needs.region && !needs.credentials {
            return problems;
        }
        let sdk = self.sdk(config).await;
        if needs.region && sdk.region().is_none() {
            problems.push(
                "AWS_REGION is not set (nor a region in the AWS profile): the region of the \
                 Kinesis streams and the S3 bucket, e.g. AWS_REGION=us-east-1"
                    .to_owned(),
            );
        }
        if needs.credentials {
            const SET: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \
                 (or run where an IAM role provides them)";
            let resolved = match sdk.credentials_provider() {
                Some(provider) => {
                    tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await
                }
                None => Ok(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded(
                        "no credentials provider",
                    ),
                )),
            };
            match resolved {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => problems.push(format!(
                    "no AWS credentials were found (environment, profile, web identity, \
                     container, instance metadata): {SET}"
                )),
                Err(_) => problems.push(format!(
                    "no AWS credentials were found within {} s (the instance metadata service \
                     did not answer): {SET}",
                    CREDENTIALS_TIMEOUT.as_secs()
                )),
            }
        }
        problems
    }
}

/// Fails with one [`crate::Error::Config`] listing everything `config` lacks for `needs`, its
/// AWS settings included, before any call to a service.
pub(crate) async fn check(config: &Config, needs: Needs, aws: &Aws) -> Result<()> {
    let mut problems = config.problems(needs);
    problems.extend(aws.problems(config, config.aws_needs(needs)).await);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(config_error(problems))
    }
}

/// A credentials provider that asks the one it wraps only when it has no credentials yet or
/// they are about to expire. The SDK clients cache credentials themselves; COPY asks the
/// provider directly, once per load, and would otherwise resolve them (an STS or IMDS call)
/// every time.
struct CachedCredentials {
    inner: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    fn new(inner: SharedCredentialsProvider) -> CachedCredentials {
        CachedCredentials {
            inner,
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

impl fmt::Debug for CachedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials' own Debug redacts the secret; print nothing of them anyway.
        f.debug_struct("CachedCredentials").finish_non_exhaustive()
    }
}

impl ProvideCredentials for CachedCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let mut cached = self.cached.lock().await;
            if let Some(c) = cached.as_ref() {
                let fresh = c
                    .expiry()
                    .is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE_EXPIRY);
                if fresh {
                    return Ok(c.clone());
                }
            }
            let c = self.inner.provide_credentials().await?;
            *cached = Some(c.clone());
            Ok(c)
        })
    }
}

/// An SDK error as redtrack reports it.
pub(crate) struct SdkFailure {
    /// The service's error code, or redtrack's for a failure without one ([`code`]).
    pub(crate) code: String,
    /// The service's message, or the error with its causes.
    pub(crate) message: String,
    /// Whether trying again may succeed, from the code (or the HTTP status), never from text.
    pub(crate) retryable: bool,
    /// The SDK error itself.
    pub(crate) source: Source,
}

/// Classifies an SDK error of any AWS service by its code: throttling, internal failures and
/// unavailability (and any 5xx or 429 answer without a code) are retryable; timeouts and
/// dispatch failures are too, though ambiguous (the call may have taken effect).
pub(crate) fn sdk_failure<E>(e: SdkError<E, HttpResponse>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (code, message, retryable) = match &e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let fallback = if status == 413 {
                code::REQUEST_TOO_LARGE
            } else {
                code::UNKNOWN
            };
            let code = s.err().code().unwrap_or(fallback).to_owned();
            let retryable = is_retryable_code(&code) || status == 429 || status >= 500;
            let message = s.err().message().unwrap_or("no message").to_owned();
            (code, message, retryable)
        }
        SdkError::TimeoutError(_) => (code::TIMEOUT.to_owned(), error_chain(&e), true),
        SdkError::DispatchFailure(d) => (
            code::DISPATCH_FAILURE.to_owned(),
            error_chain(&e),
            !d.is_user(),
        ),
        // An answer that is no AWS error document: the HTTP status tells. 413 (the request
        // is too large) cannot succeed as it is; anything else may.
        SdkError::ResponseError(r) if r.raw().status().as_u16() == 413 => (
            code::REQUEST_TOO_LARGE.to_owned(),
            format!(
                "the endpoint refused the request as too large (HTTP 413): {}",
                error_chain(&e)
            ),
            false,
        ),
        SdkError::ResponseError(_) => (code::RESPONSE_ERROR.to_owned(), error_chain(&e), true),
        SdkError::ConstructionFailure(_) => (
            code::CONSTRUCTION_FAILURE.to_owned(),
            error_chain(&e),
            false,
        ),
        _ => (code::UNKNOWN.to_owned(), error_chain(&e), false),
    };
    SdkFailure {
        code,
        message,
        retryable,
        source: Arc::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A provider that counts its calls and hands out credentials expiring `ttl` from now.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        ttl: Option<Duration>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let expiry = self.ttl.map(|ttl| SystemTime::now() + ttl);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKID", "secret", None, expiry, "test",
            )))
        }
    }

    async fn calls_after_two_asks(ttl: Option<Duration>) -> u32 {
        let calls = Arc::new(AtomicU32::new(0));
        let cached = CachedCredentials::new(SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            ttl,
        }));
        for _ in 0..2 {
            let c = cached.provide_credentials().await.unwrap();
            assert_eq!(c.access_key_id(), "AKID");
        }
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn credentials_are_asked_for_once_until_they_near_expiry() {
        assert_eq!(calls_after_two_asks(None).await, 1, "static credentials");
        assert_eq!(
            calls_after_two_asks(Some(Duration::from_secs(3600))).await,
            1,
            "an hour left"
        );
        assert_eq!(
            calls_after_two_asks(Some(Duration::from_secs(60))).await,
            2,
            "a minute left is too little for a COPY"
        );
    }
}
