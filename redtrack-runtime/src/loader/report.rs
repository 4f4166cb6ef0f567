//! What the loader reports: one load ([`LoadReport`]), a continuous loader ([`FollowReport`]),
//! a shard's state ([`ShardStatus`]), a kept reject ([`KeptReject`]) and a loss to the stream's
//! retention ([`DataLoss`]).

use std::time::Duration;

use super::checkpoint::{Checkpoint, ShardRange};
use crate::broker::{Backlog, SequenceNumber, ShardInfo};
use crate::error::{Error, RejectedRow};

/// Records trimmed from a shard before they were loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLoss {
    /// The stream.
    pub stream: String,
    /// The shard.
    pub shard_id: String,
    /// The last sequence number loaded (the checkpoint).
    pub after: SequenceNumber,
    /// The oldest sequence number still in the shard; records between were lost.
    pub first_available: SequenceNumber,
}

impl DataLoss {
    /// The [`Error::DataLoss`] describing this loss.
    pub(crate) fn into_error(self) -> Error {
        Error::DataLoss {
            stream: self.stream,
            shard_id: self.shard_id,
            after: self.after,
            first_available: self.first_available,
        }
    }
}

/// What one load pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Events loaded into the table.
    pub records: u64,
    /// Events rejected (at most MAXERROR), kept in `redtrack_load_rejects`.
    pub rejected: u64,
    /// The rejected rows with their reasons.
    pub rejects: Vec<RejectedRow>,
    /// Kinesis records read (a KPL aggregate counts once).
    pub kinesis_records: u64,
    /// Events dropped because they were twins of events already loaded (the same record
    /// identity, stored again by a writer's retry; see `redtrack::identity`).
    pub twins: u64,
    /// Uncompressed bytes of event JSON staged.
    pub bytes: u64,
    /// The range loaded from each shard that had records (and from each closed shard whose
    /// end this load reached, with 0 records).
    pub ranges: Vec<ShardRange>,
    /// How many shards this load read: every shard of the stream but the closed ones already
    /// loaded to their end.
    pub shards: usize,
    /// Shards that lost records to the stream's retention (only with
    /// `ConfigBuilder::with_accept_data_loss`; otherwise the load fails instead).
    pub data_loss: Vec<DataLoss>,
    /// The load's id (its folder in the stage is `.../load-<id>/`); `None` if nothing was read.
    pub load_id: Option<String>,
    /// The manifest's URL; `None` if nothing was read.
    pub manifest_url: Option<String>,
    /// A limit (records, bytes or time) stopped the load: more may be waiting.
    pub more: bool,
    /// How long the load took.
    pub elapsed: Duration,
    /// How long reading and staging took (they overlap: the stager writes while readers read).
    pub read_elapsed: Duration,
    /// How long uploading the staged files and the manifest took.
    pub upload_elapsed: Duration,
    /// How long the transaction (LOCK, checks, COPY, bookkeeping, COMMIT) took.
    pub commit_elapsed: Duration,
}

/// What a re-drive of kept rejects did ([`crate::Loader::redrive`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedriveReport {
    /// Rejected records loaded into the table, each once (their rows are now `redriven`).
    pub redriven: u64,
    /// Kept rejects that still do not fit the table, with the reason they fail today; they stay
    /// `rejected`, for a later re-drive.
    pub still_rejected: Vec<RejectedRow>,
    /// The id of each batch that loaded rows (in the `redrive_id` of those rows, and the name
    /// of its folder in the stage).
    pub redrive_ids: Vec<String>,
    /// How long the re-drive took.
    pub elapsed: Duration,
}

/// What a continuous loader did until it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowReport {
    /// Load passes that committed or found nothing.
    pub loads: u64,
    /// Events loaded over all passes.
    pub records: u64,
    /// Events rejected over all passes.
    pub rejected: u64,
    /// Twins dropped over all passes.
    pub twins: u64,
    /// Passes that failed with a retryable error (conflicts with other loaders, lost
    /// connections) and were tried again.
    pub retried: u64,
}

/// A shard of a stream and how far it was loaded, for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStatus {
    /// The shard as ListShards reports it.
    pub shard: ShardInfo,
    /// Its checkpoint, if it was ever loaded.
    pub checkpoint: Option<Checkpoint>,
    /// Closed and loaded to its end: nothing left.
    pub done: bool,
    /// What waits to be loaded after the checkpoint (from the trim horizon without one).
    pub backlog: Backlog,
}

/// A row kept in `redtrack_load_rejects`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeptReject {
    /// The load that rejected it.
    pub load_id: String,
    /// The row (its source, when the loader rejected it before COPY; not its raw record,
    /// which stays in the table).
    pub row: RejectedRow,
    /// When (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
    pub rejected_at: String,
    /// `rejected` (waiting to be re-driven), `load_failed` (the first bad record of a load
    /// that failed, which the next load reads again) or `redriven`.
    pub status: String,
}
