//! The AWS SDK configuration shared by the Kinesis and S3 clients.

use crate::config::Config;

/// The SDK configuration: the one given to the builder, else loaded by `aws-config` from the
/// standard environment (region, credentials, profiles, `AWS_ENDPOINT_URL_*`).
pub(crate) async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
    match &config.sdk_config {
        Some(sdk) => sdk.clone(),
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    }
}
