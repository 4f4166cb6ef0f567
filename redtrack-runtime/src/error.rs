//! The one error type of redtrack's runtime, with classification methods.
//!
//! Shared by every module: add variants (each documented), never rename one.

use crate::encode::EncodeError;

/// A `Result` with redtrack's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in redtrack's runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is missing a value or has an invalid one.
    #[error("configuration: {0}")]
    Config(String),

    /// An event could not be encoded (a bad value for its column).
    #[error(transparent)]
    Encode(#[from] EncodeError),

    /// A broker (Kinesis or the file broker) call failed.
    #[error("{operation} on stream `{stream}` failed: {code}: {message}")]
    Broker {
        /// The API call, e.g. `PutRecords`.
        operation: &'static str,
        /// The stream name.
        stream: String,
        /// The Kinesis error code (e.g. `ProvisionedThroughputExceededException`) or `io`.
        code: String,
        /// The error message.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
    },

    /// The stage (S3 or a directory) failed.
    #[error("stage {location}: {message}")]
    Stage {
        /// The URL or path involved.
        location: String,
        /// What went wrong.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
    },

    /// The warehouse (Redshift or PostgreSQL) failed.
    #[error("warehouse: {message}")]
    Warehouse {
        /// What went wrong, with the statement's purpose.
        message: String,
        /// The driver's error, if any.
        #[source]
        source: Option<tokio_postgres::Error>,
    },

    /// A local I/O error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the same operation may succeed if tried again (throttling, timeouts, conflicts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Broker { retryable, .. } | Error::Stage { retryable, .. } => *retryable,
            Error::Warehouse {
                source: Some(e), ..
            } => e.is_closed(),
            _ => false,
        }
    }
}
