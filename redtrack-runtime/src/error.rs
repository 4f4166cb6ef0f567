//! The one error type of redtrack's runtime, with classification methods.
//!
//! Shared by every module, and a leaf: it names the types its variants carry and nothing else of
//! the crate. Add variants (each documented), never rename one. Errors keep their causes: the
//! AWS SDK's and tokio-postgres' errors stay reachable through [`std::error::Error::source`].

use std::sync::Arc;

use crate::encode::EncodeError;
use crate::sequence::SequenceNumber;

/// A `Result` with redtrack's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cause of an error (an AWS SDK error, a tokio-postgres error, ...), shared so that one
/// failure can be handed to every writer it concerns.
pub type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The codes of [`Error::Broker`] for failures that Kinesis did not answer with a code of its
/// own. Every other code is Kinesis' (see its API reference's "Errors" sections).
pub mod code {
    /// The call did not finish in time (it may have taken effect).
    pub const TIMEOUT: &str = "Timeout";
    /// The request could not be sent, or its connection failed (it may have taken effect).
    pub const DISPATCH_FAILURE: &str = "DispatchFailure";
    /// The response could not be read.
    pub const RESPONSE_ERROR: &str = "ResponseError";
    /// The request could not be built.
    pub const CONSTRUCTION_FAILURE: &str = "ConstructionFailure";
    /// The answer does not fit the request (a PutRecords answer with too few results).
    pub const INVALID_RESPONSE: &str = "InvalidResponse";
    /// A shard's hash key range is not a pair of 128-bit numbers.
    pub const INVALID_HASH_KEY: &str = "InvalidHashKey";
    /// A local file of the file broker could not be read or written.
    pub const IO: &str = "io";
    /// The endpoint refused the request as too large (HTTP 413) without a code of its own.
    pub const REQUEST_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// A failure without a code.
    pub const UNKNOWN: &str = "Unknown";
}

/// Everything that can go wrong in redtrack's runtime.
///
/// The variants with fields are `#[non_exhaustive]` (match them with `..`); build the errors of a
/// broker, stage or warehouse of your own with [`Error::broker`], [`Error::stage`] and
/// [`Error::warehouse`].
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
    #[non_exhaustive]
    Broker {
        /// The API call, e.g. `PutRecords`.
        operation: &'static str,
        /// The stream name.
        stream: String,
        /// The Kinesis error code (e.g. `ProvisionedThroughputExceededException`), or one of
        /// redtrack's ([`code`]) for a failure Kinesis did not answer.
        code: String,
        /// The error message (with the number of attempts when the call was retried).
        message: String,
        /// Whether trying again may succeed, from the code.
        retryable: bool,
        /// The underlying error (the AWS SDK's, or the file broker's I/O error), if any.
        #[source]
        source: Option<Source>,
    },

    /// `Client::try_write` found the client's in-flight buffer full (`write` would have waited).
    #[error(
        "the write buffer of {capacity} records is full; slow down or use `write`, which waits"
    )]
    #[non_exhaustive]
    BufferFull {
        /// The buffer's capacity (`ConfigBuilder::with_max_buffered_records`).
        capacity: usize,
    },

    /// An encoded event does not fit in one record of its stream (the stream's maximum record
    /// size, data and partition key: 1 MiB unless the stream was configured for large records,
    /// page `large-records`). Nothing was sent.
    #[error(
        "an event of `{table}` is {bytes} bytes with its partition key; stream `{stream}` takes \
         records of at most {limit} bytes (its maximum record size; Kinesis allows up to 10 MiB \
         on a stream configured for large records)"
    )]
    #[non_exhaustive]
    RecordTooLarge {
        /// The event's table.
        table: &'static str,
        /// The stream.
        stream: String,
        /// The record's size in bytes: encoded event plus partition key.
        bytes: usize,
        /// The limit, in bytes.
        limit: usize,
    },

    /// An event's `#[redtrack(partition_key)]` value is not a valid Kinesis partition key.
    #[error("the partition key of an event of `{table}` is invalid: {message}")]
    #[non_exhaustive]
    InvalidPartitionKey {
        /// The event's table.
        table: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// The client was closed (`Client::close`), or its batcher task is gone.
    #[error("the redtrack client is closed")]
    ClientClosed,

    /// A stored record could not be decoded (e.g. a KPL aggregate with a wrong digest).
    #[error("corrupt record: {0}")]
    CorruptRecord(String),

    /// The stage (S3 or a directory) failed.
    #[error("stage {location}: {message}")]
    #[non_exhaustive]
    Stage {
        /// The URL or path involved.
        location: String,
        /// What went wrong.
        message: String,
        /// Whether trying again may succeed, from the error code (or HTTP status).
        retryable: bool,
        /// The underlying error (the AWS SDK's, or a local I/O error), if any.
        #[source]
        source: Option<Source>,
    },

    /// The warehouse (Redshift or PostgreSQL) failed.
    #[error("warehouse: {message}")]
    #[non_exhaustive]
    Warehouse {
        /// What went wrong, with the statement's purpose.
        message: String,
        /// The driver's error (a `tokio_postgres::Error`), or what else failed, if any.
        #[source]
        source: Option<Source>,
    },

    /// A step that comes first was not taken: the warehouse lacks a table or a column the
    /// operation needs. The message names it and the step that makes it (`setup`, `migrate
    /// --apply`); nothing was changed.
    #[error("{missing}")]
    #[non_exhaustive]
    Missing {
        /// What is missing, with the step to take.
        missing: Missing,
        /// The warehouse's error, when it was the warehouse that said so.
        #[source]
        source: Option<Source>,
    },

    /// A local file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    #[non_exhaustive]
    Io {
        /// The file or directory (or what was written to, e.g. standard output).
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// Another loader changed the checkpoints of the shards being loaded (or recorded an
    /// overlapping range) while this load was reading: nothing was copied; load again.
    #[error("load conflict on `{table}`: {message}; nothing was loaded, run the load again")]
    #[non_exhaustive]
    LoadConflict {
        /// The table being loaded.
        table: String,
        /// Which shard changed and how.
        message: String,
    },

    /// Records after a shard's checkpoint were trimmed (older than the stream's retention)
    /// before any load read them: the record after the checkpoint is known and gone, or no load
    /// found the shard caught up within the retention, so records may have come and gone
    /// unread. Only already-loaded records expiring is no loss. Nothing was loaded; see
    /// `ConfigBuilder::with_accept_data_loss` to go on.
    #[error(
        "DATA LOSS on stream `{stream}` shard `{shard_id}`: records after sequence number \
         {after}, before {first_available} (the oldest one still in the shard), were trimmed \
         before any load read them (the shard was not read within the stream's retention); \
         nothing was loaded: raise the stream's retention or load more often, and to go on past \
         the loss set ConfigBuilder::with_accept_data_loss(true) for one load"
    )]
    #[non_exhaustive]
    DataLoss {
        /// The stream.
        stream: String,
        /// The shard that lost records.
        shard_id: String,
        /// The last loaded sequence number (the checkpoint).
        after: SequenceNumber,
        /// The oldest sequence number still in the shard.
        first_available: SequenceNumber,
    },

    /// A load found more records it cannot load (rejected before COPY, or by COPY) than
    /// `max_errors` allows; nothing was loaded. The message names the first one (its shard and
    /// sequence number when known) and what to do.
    #[error("{}", load_rejected_message(table, *rejected, *max_errors, first))]
    #[non_exhaustive]
    LoadRejected {
        /// The table.
        table: String,
        /// How many rows were rejected (at least; the warehouse may stop counting early).
        rejected: u64,
        /// The `max_errors` in force.
        max_errors: u64,
        /// The first rejected row: where it came from, its column, raw value and the reason.
        first: Box<RejectedRow>,
    },
}

/// The message of [`Error::LoadRejected`].
fn load_rejected_message(
    table: &str,
    rejected: u64,
    max_errors: u64,
    first: &RejectedRow,
) -> String {
    let records = if rejected == 1 { "record" } else { "records" };
    let place = match &first.source {
        Some(s) => {
            let mut place = format!(
                "stream `{}` shard `{}` sequence number {}",
                s.stream, s.shard_id, s.sequence_number
            );
            if s.aggregated {
                place.push_str(&format!(
                    " (user record {} of a KPL aggregate)",
                    s.sub_sequence_number
                ));
            }
            place
        }
        None => format!("file {} line {}", first.file, first.line),
    };
    let column = if first.column.is_empty() {
        String::new()
    } else {
        format!(", column `{}`, value `{}`", first.column, first.value)
    };
    format!(
        "the load of `{table}` found {rejected} {records} it cannot load, more than max_errors \
         ({max_errors}) allows, so nothing was loaded. First: {place}{column}: {reason}. To load \
         the rest and keep such records in redtrack_load_rejects, raise max_errors \
         (`load --max-errors N`, or ConfigBuilder::with_max_errors); once the table or the producer is fixed (e.g. \
         `migrate --table {table} --apply`), load again, and `redrive --table {table}` loads the \
         kept ones",
        reason = first.reason
    )
}

impl Error {
    /// An [`Error::Broker`]: `operation` (e.g. `PutRecords`) on `stream` failed with `code`
    /// (Kinesis' error code, or one of [`code`]). For a broker of your own.
    pub fn broker(
        operation: &'static str,
        stream: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
        retryable: bool,
    ) -> Error {
        Error::Broker {
            operation,
            stream: stream.into(),
            code: code.into(),
            message: message.into(),
            retryable,
            source: None,
        }
    }

    /// An [`Error::Stage`] about `location` (a URL or path). For a stage of your own.
    pub fn stage(
        location: impl Into<String>,
        message: impl Into<String>,
        retryable: bool,
    ) -> Error {
        Error::Stage {
            location: location.into(),
            message: message.into(),
            retryable,
            source: None,
        }
    }

    /// An [`Error::Warehouse`] saying what failed. For a warehouse of your own.
    pub fn warehouse(message: impl Into<String>) -> Error {
        Error::Warehouse {
            message: message.into(),
            source: None,
        }
    }

    /// This error with `cause` as its source (for [`Error::Broker`], [`Error::Stage`] and
    /// [`Error::Warehouse`]; other errors are returned as they are).
    #[must_use]
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        match &mut self {
            Error::Broker { source, .. }
            | Error::Stage { source, .. }
            | Error::Warehouse { source, .. } => *source = Some(Arc::new(cause)),
            _ => {}
        }
        self
    }

    /// An [`Error::Io`] about `path`.
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The error code of a broker failure: Kinesis' code (e.g. `ResourceNotFoundException`,
    /// `ProvisionedThroughputExceededException`) when Kinesis sent one, else redtrack's name for
    /// what happened ([`code`]); `None` for other errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Broker { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the same operation may succeed if tried again: throttling, timeouts and
    /// unavailability (by the service's error code), a transient warehouse failure
    /// ([`is_transient_warehouse_error`]), a conflict with another loader.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Broker { retryable, .. } | Error::Stage { retryable, .. } => *retryable,
            Error::Warehouse {
                source: Some(source),
                ..
            } => source
                .downcast_ref::<tokio_postgres::Error>()
                .is_some_and(is_transient_warehouse_error),
            Error::LoadConflict { .. } => true,
            _ => false,
        }
    }
}

/// Whether a warehouse error is transient, as Redshift (and PostgreSQL) send them:
///
/// - Redshift's serialization conflict, error **1023**: SQLSTATE `XX000` with the message
///   `1023` and a DETAIL `Serializable isolation violation on table ...`, never PostgreSQL's
///   `40001` (`https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html`; AWS's
///   first fix is to retry); `40001` itself too;
/// - a deadlock between concurrent write transactions (`40P01`,
///   `https://docs.aws.amazon.com/redshift/latest/dg/c_write_readwrite.html`);
/// - the connection lost, or the server shutting down, restarting or not yet accepting
///   connections, as during a cluster reboot, a maintenance window or a resize
///   (`08000`, `08003`, `08006`, `57P01`, `57P02`, `57P03`;
///   `https://docs.aws.amazon.com/redshift/latest/mgmt/working-with-clusters.html`).
pub fn is_transient_warehouse_error(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    let Some(code) = e.code() else {
        // An I/O failure of the connection, not an answer of the server.
        return e.as_db_error().is_none()
            && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    };
    if *code == SqlState::INTERNAL_ERROR {
        // Redshift's own error codes travel in the message of an XX000.
        return e
            .as_db_error()
            .is_some_and(|db| db.message().trim() == "1023");
    }
    [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::CONNECTION_EXCEPTION,
        SqlState::CONNECTION_DOES_NOT_EXIST,
        SqlState::CONNECTION_FAILURE,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ]
    .contains(code)
}

/// Something of the warehouse a step creates, missing because the step was not taken (yet):
/// [`Error::Missing`]. Its `Display` names the step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// A table: an event table, `kinesis_loads` or `redtrack_load_rejects`. `setup` (or
    /// `Loader::setup`) creates them.
    Table {
        /// The table's name.
        table: String,
    },
    /// The table of the record identities loaded into an event table (`redtrack_ids_<table>`):
    /// a deployment upgraded without running `setup` again. `setup` creates it.
    Identities {
        /// The event table.
        table: String,
        /// The table of its identities.
        identities: String,
    },
    /// Columns of an event table: its struct has fields that were deployed before the table
    /// was migrated. `migrate --apply` adds them.
    Columns {
        /// The table's name.
        table: String,
        /// The missing columns, in the struct's order.
        columns: Vec<String>,
    },
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Table { table }
                if table == crate::schema::KINESIS_LOADS
                    || table == crate::schema::LOAD_REJECTS =>
            {
                write!(
                    f,
                    "table `{table}` does not exist: run `setup` (or `Loader::setup`), which \
                     creates it"
                )
            }
            Missing::Table { table } => write!(
                f,
                "table `{table}` does not exist: run `setup --table {table}` (or \
                 `Loader::setup`), which creates it"
            ),
            Missing::Identities { table, identities } => write!(
                f,
                "table `{identities}`, the record identities loaded into `{table}`, does not \
                 exist: run `setup --table {table}` (or `Loader::setup`) once after upgrading \
                 redtrack, which creates it"
            ),
            Missing::Columns { table, columns } => {
                let names: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
                let (noun, verb) = if columns.len() == 1 {
                    ("column", "is")
                } else {
                    ("columns", "are")
                };
                write!(
                    f,
                    "{noun} {} of table `{table}` {verb} missing (the struct has fields the \
                     table lacks): run `migrate --table {table} --apply`",
                    names.join(", ")
                )
            }
        }
    }
}

/// A row the warehouse (or the loader's check of each record, before it) rejected, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedRow {
    /// The staged file's URL (or, for a record rejected before staging,
    /// `<stream>/<shard>/<sequence number>`).
    pub file: String,
    /// The line in that file, 1-based (0 when not from a file).
    pub line: u64,
    /// The column at fault, if known (else empty).
    pub column: String,
    /// The raw value, or the raw record when no column is at fault, escaped (bytes that are not
    /// UTF-8 text or are control characters as `\xNN`), truncated to 1024 bytes.
    pub value: String,
    /// The reason.
    pub reason: String,
    /// Where the record came from, when the loader rejected it before COPY.
    pub source: Option<RecordSource>,
    /// The whole record as the loader read it (the user record, for a KPL aggregate; the
    /// staged line, for a row COPY rejected), kept so it can be loaded again once the table is
    /// fixed.
    pub raw: Option<bytes::Bytes>,
}

/// Where a record came from: its stream, shard and sequence number, and its place in a KPL
/// aggregate (KCL's sub-sequence number; 0 for a plain record).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordSource {
    /// The stream.
    pub stream: String,
    /// The shard.
    pub shard_id: String,
    /// The Kinesis record's sequence number.
    pub sequence_number: SequenceNumber,
    /// The user record's index in its KPL aggregate (0 for a plain record).
    pub sub_sequence_number: u64,
    /// Whether the Kinesis record is a KPL aggregate.
    pub aggregated: bool,
}

impl RecordSource {
    /// The source of record `sequence_number` of `shard_id` of `stream`; with
    /// `sub_sequence_number` `Some(k)`, of its user record `k` (a KPL aggregate).
    pub fn new(
        stream: impl Into<String>,
        shard_id: impl Into<String>,
        sequence_number: SequenceNumber,
        sub_sequence_number: Option<u64>,
    ) -> RecordSource {
        RecordSource {
            stream: stream.into(),
            shard_id: shard_id.into(),
            sequence_number,
            sub_sequence_number: sub_sequence_number.unwrap_or(0),
            aggregated: sub_sequence_number.is_some(),
        }
    }
}

impl RejectedRow {
    /// A row rejected in `file` at `line` (0: not from a file), at `column` (empty: the row as
    /// a whole), holding `value`, for `reason`; no source or raw record yet.
    pub fn new(
        file: impl Into<String>,
        line: u64,
        column: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> RejectedRow {
        RejectedRow {
            file: file.into(),
            line,
            column: column.into(),
            value: value.into(),
            reason: reason.into(),
            source: None,
            raw: None,
        }
    }

    /// The [`Error::LoadRejected`] for a load whose first reject is `self`.
    pub(crate) fn into_error(self, table: &str, rejected: u64, max_errors: u64) -> Error {
        Error::LoadRejected {
            table: table.to_owned(),
            rejected,
            max_errors,
            first: Box::new(self),
        }
    }
}
