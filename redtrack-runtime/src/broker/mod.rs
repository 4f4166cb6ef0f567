//! Brokers carry encoded events from writers to the loader: Amazon Kinesis in production, a
//! directory of files in development. Both hand out sequence numbers, so the loader's
//! exactly-once bookkeeping works the same on either.
//!
//! The [`Broker`] trait is an extension point: the client writes through any broker
//! ([`crate::Client::with_broker`]), the loader reads through any ([`crate::Loader::with_broker`])
//! with [`Broker::list_shards`], [`Broker::read_shard`] and the [`ShardReader`] it returns.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::aws::Aws;
use crate::config::{BrokerKind, Config};
use crate::error::Result;

pub mod aggregate;
pub mod file;
pub mod kinesis;

pub use crate::sequence::{cmp_sequence_numbers, SequenceNumber};

pub use file::{FileBroker, FileReader};
pub use kinesis::{KinesisBroker, KinesisReader};

pub use crate::schema::limits::{
    DEFAULT_RETENTION, MAX_BYTES_PER_PUT, MAX_PARTITION_KEY_UTF16_UNITS, MAX_RECORDS_PER_GET,
    MAX_RECORDS_PER_PUT, MAX_RECORD_BYTES, MAX_RECORD_BYTES_LARGE,
};

/// What a stream is configured with, as its writers and its loader must respect it (Kinesis:
/// `DescribeStreamSummary`, page `API_DescribeStreamSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamInfo {
    /// How long the stream keeps a record after it was written (`RetentionPeriodHours`);
    /// `None`: until the stream is deleted. The loader's data-loss rule rests on it: a record
    /// is never trimmed sooner.
    pub retention: Option<Duration>,
    /// The largest record the stream takes, data plus partition key, in bytes
    /// (`MaxRecordSizeInKiB`; 1 MiB unless the stream was configured for large records, page
    /// `large-records`).
    pub max_record_bytes: usize,
    /// Kinesis places the stream's records itself (service-managed record distribution,
    /// `RecordDistributionStrategy` `AUTO`): partition keys do not choose the shard, so no KPL
    /// aggregate can be kept within one shard and writers send plain records (page
    /// `service-managed-pk-kpl-aggregation`).
    pub service_managed_distribution: bool,
}

impl StreamInfo {
    /// A Kinesis stream as created by default: 24 hours of retention, records up to 1 MiB,
    /// partition keys choose the shard.
    pub const KINESIS_DEFAULT: StreamInfo = StreamInfo {
        retention: Some(DEFAULT_RETENTION),
        max_record_bytes: MAX_RECORD_BYTES,
        service_managed_distribution: false,
    };

    /// A stream keeping records for `retention` (`None`: forever), taking records of up to
    /// `max_record_bytes`, its records placed by partition key unless
    /// `service_managed_distribution`. For a broker of your own.
    pub fn new(
        retention: Option<Duration>,
        max_record_bytes: usize,
        service_managed_distribution: bool,
    ) -> StreamInfo {
        StreamInfo {
            retention,
            max_record_bytes,
            service_managed_distribution,
        }
    }
}

impl Default for StreamInfo {
    fn default() -> StreamInfo {
        StreamInfo::KINESIS_DEFAULT
    }
}

/// The 128-bit hash key of a partition key, as Kinesis computes it: the MD5 digest of the key's
/// UTF-8 bytes, read as a big-endian number (page `key-concepts`, "Partition key").
pub fn hash_key(partition_key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// The open shards of a stream by hash key range: which shard Kinesis puts a partition key in,
/// as a producer must know to keep each KPL aggregate within one shard (a KCL consumer drops an
/// aggregate holding a user record whose hash lies outside the shard that stores it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardMap {
    /// `(starting hash key, ending hash key, shard id)`, inclusive, by starting hash key.
    ranges: Vec<(u128, u128, String)>,
}

impl ShardMap {
    /// The map of these open shards, each `(starting hash key, ending hash key, shard id)` with
    /// its range inclusive, as ListShards reports them.
    pub fn new(ranges: impl IntoIterator<Item = (u128, u128, String)>) -> ShardMap {
        let mut ranges: Vec<_> = ranges.into_iter().collect();
        ranges.sort_by_key(|r| r.0);
        ShardMap { ranges }
    }

    /// The shard whose range holds `hash`, if any.
    pub fn shard_of_hash(&self, hash: u128) -> Option<&str> {
        let i = self.ranges.partition_point(|r| r.0 <= hash);
        let (start, end, shard) = self.ranges.get(i.checked_sub(1)?)?;
        (*start <= hash && hash <= *end).then_some(shard.as_str())
    }

    /// The shard a record with `partition_key` goes to, if the map covers its hash.
    pub fn shard_of_key(&self, partition_key: &str) -> Option<&str> {
        self.shard_of_hash(hash_key(partition_key))
    }

    /// How many open shards.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the map holds no shard.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The hash key range of `shard_id`, if it is in the map.
    pub fn range_of(&self, shard_id: &str) -> Option<(u128, u128)> {
        self.ranges
            .iter()
            .find(|r| r.2 == shard_id)
            .map(|r| (r.0, r.1))
    }
}

/// One record to put into a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecord {
    /// The partition key (1..=256 characters): decides the shard.
    pub partition_key: String,
    /// The record's bytes (one event's JSON, or a KPL aggregate).
    pub data: Bytes,
}

/// What happened to one record of a PutRecords call, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// Stored.
    Stored {
        /// The shard that took it.
        shard_id: String,
        /// Its sequence number.
        sequence_number: SequenceNumber,
    },
    /// Not stored.
    Failed {
        /// The error code, e.g. `ProvisionedThroughputExceededException`.
        code: String,
        /// The error message.
        message: String,
    },
}

/// A shard as ListShards reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard id.
    pub shard_id: String,
    /// The parent shard (after a split or merge).
    pub parent_shard_id: Option<String>,
    /// The other parent (after a merge).
    pub adjacent_parent_shard_id: Option<String>,
    /// The first sequence number of the shard.
    pub starting_sequence_number: SequenceNumber,
    /// The last sequence number of a closed shard; `None` while the shard is open.
    pub ending_sequence_number: Option<SequenceNumber>,
}

impl ShardInfo {
    /// Whether the shard is closed (split or merged away): it takes no more records.
    pub fn is_closed(&self) -> bool {
        self.ending_sequence_number.is_some()
    }
}

/// Where a shard read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartingPosition {
    /// The oldest record still in the stream.
    TrimHorizon,
    /// Just after this sequence number (the last one loaded).
    AfterSequenceNumber(SequenceNumber),
}

/// A record read from a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its sequence number.
    pub sequence_number: SequenceNumber,
    /// The partition key it was written with.
    pub partition_key: String,
    /// The record's bytes, as written (may be a KPL aggregate: see `broker::aggregate`).
    pub data: Bytes,
    /// When the broker stored it (Kinesis' `ApproximateArrivalTimestamp`; the file broker's
    /// clock when it appended the line), if the broker says. The loader drops the twins a
    /// writer's retries stored within a window of this time (`ConfigBuilder::with_dedupe_window`);
    /// a record without it is still compared with the ids the loader knows, but not remembered
    /// for later loads.
    pub approximate_arrival_timestamp: Option<chrono::DateTime<chrono::Utc>>,
}

/// One GetRecords-sized batch from a shard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadBatch {
    /// The records, in sequence order.
    pub records: Vec<StoredRecord>,
    /// How far behind the tip of the shard this batch is (Kinesis' MillisBehindLatest).
    pub millis_behind_latest: Option<i64>,
    /// The shard is closed and every record of it has been read.
    pub shard_end: bool,
}

/// What a shard holds after a position (a checkpoint): what a load from there would read. For
/// status displays; see [`Broker::backlog`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backlog {
    /// Records after the position (a KPL aggregate counts once); with `complete` false, at
    /// least this many.
    pub records: u64,
    /// Their bytes as the broker stores them.
    pub bytes: u64,
    /// Whether every record was counted: counting stops at [`BACKLOG_LIMIT`] records where
    /// counting means reading them (Kinesis).
    pub complete: bool,
    /// When the oldest of them reached the broker, if the broker says (Kinesis'
    /// ApproximateArrivalTimestamp; the file broker's write time).
    pub oldest_arrival: Option<std::time::SystemTime>,
    /// Kinesis' MillisBehindLatest from the position, if the broker gives one.
    pub millis_behind_latest: Option<i64>,
}

impl Backlog {
    /// How long the oldest unloaded record has waited, at `now`; `None` if unknown or if there
    /// is none.
    pub fn oldest_age(&self, now: std::time::SystemTime) -> Option<Duration> {
        self.oldest_arrival
            .filter(|_| self.records > 0)
            .map(|t| now.duration_since(t).unwrap_or_default())
    }
}

/// How many records [`Broker::backlog`] reads at most to count them (where counting means
/// reading, as on Kinesis): 10 GetRecords calls of 10,000.
pub const BACKLOG_LIMIT: u64 = 100_000;

/// Counts what `reader` has left by reading it, by its [`ReadPolicy`], up to [`BACKLOG_LIMIT`]
/// records; `first_arrival` gives the arrival time of the first record of the last batch, if
/// the reader knows it.
pub(crate) async fn count_backlog<R: ShardReader>(
    reader: &mut R,
    mut first_arrival: impl FnMut(&mut R) -> Option<std::time::SystemTime>,
) -> Result<Backlog> {
    const MAX_EMPTY: u32 = 5;
    let policy = reader.read_policy();
    let mut backlog = Backlog::default();
    let mut first = true;
    let mut empty = 0;
    loop {
        let started = std::time::Instant::now();
        let batch = reader.next_batch(policy.records_per_call).await?;
        if first {
            backlog.millis_behind_latest = batch.millis_behind_latest;
            first = false;
        }
        if backlog.oldest_arrival.is_none() && !batch.records.is_empty() {
            backlog.oldest_arrival = first_arrival(reader);
        }
        backlog.records += batch.records.len() as u64;
        backlog.bytes += batch
            .records
            .iter()
            .map(|r| r.data.len() as u64)
            .sum::<u64>();
        let caught_up = batch.records.is_empty()
            && (batch.millis_behind_latest.unwrap_or(0) <= 0 || {
                empty += 1;
                empty >= MAX_EMPTY
            });
        if batch.shard_end || caught_up {
            backlog.complete = true;
            return Ok(backlog);
        }
        if backlog.records >= BACKLOG_LIMIT {
            return Ok(backlog);
        }
        let spent = started.elapsed();
        if spent < policy.min_call_interval {
            tokio::time::sleep(policy.min_call_interval - spent).await;
        }
    }
}

/// How a shard is best read: how many records to ask for at once and how long to leave between
/// two calls. The loader reads every shard by its reader's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadPolicy {
    /// The `limit` to pass to [`ShardReader::next_batch`] when the load's budget allows more.
    pub records_per_call: usize,
    /// The least time between the starts of two calls on one shard.
    pub min_call_interval: Duration,
}

impl ReadPolicy {
    /// Kinesis' limits: 10,000 records per GetRecords call, 5 calls per second per shard
    /// (pages `API_GetRecords`, `service-sizes-and-limits`).
    pub const KINESIS: ReadPolicy = ReadPolicy {
        records_per_call: MAX_RECORDS_PER_GET,
        min_call_interval: crate::schema::limits::MIN_GET_RECORDS_INTERVAL,
    };

    /// A policy of `records_per_call` records per call (at least 1), at most one call per
    /// `min_call_interval`.
    pub fn new(records_per_call: usize, min_call_interval: Duration) -> ReadPolicy {
        ReadPolicy {
            records_per_call: records_per_call.max(1),
            min_call_interval,
        }
    }
}

/// Reads one shard forward from a starting position.
pub trait ShardReader: Send {
    /// The next batch of at most `limit` records. An empty batch without `shard_end` means the
    /// reader has caught up with the shard's tip for now.
    fn next_batch(&mut self, limit: usize) -> impl Future<Output = Result<ReadBatch>> + Send;

    /// How this shard is best read. Default: [`ReadPolicy::KINESIS`], the safe choice for a
    /// reader over Kinesis (a wrapper around a Kinesis reader inherits it without a word).
    fn read_policy(&self) -> ReadPolicy {
        ReadPolicy::KINESIS
    }
}

/// A broker: streams of shards of records.
pub trait Broker: Send + Sync {
    /// The reader of one shard.
    type Reader: ShardReader;

    /// Creates the stream with `shards` shards unless it exists; waits until it is ACTIVE.
    fn create_stream(&self, stream: &str, shards: u32) -> impl Future<Output = Result<()>> + Send;

    /// Splits every open shard in two at the middle of its hash range; returns how many were split.
    fn split_shards(&self, stream: &str) -> impl Future<Output = Result<usize>> + Send;

    /// One PutRecords call (at most 500 records, 10 MiB). A failure of the whole call is `Err`;
    /// per-record failures are [`PutOutcome::Failed`] in the same order as `records`.
    fn put_records(
        &self,
        stream: &str,
        records: &[PutRecord],
    ) -> impl Future<Output = Result<Vec<PutOutcome>>> + Send;

    /// Every shard of the stream, closed parents still in retention included.
    fn list_shards(&self, stream: &str) -> impl Future<Output = Result<Vec<ShardInfo>>> + Send;

    /// The stream's retention, record size limit and record distribution. Default:
    /// [`StreamInfo::KINESIS_DEFAULT`] (what a Kinesis stream has unless configured otherwise).
    fn stream_info(&self, stream: &str) -> impl Future<Output = Result<StreamInfo>> + Send {
        let _ = stream;
        async { Ok(StreamInfo::KINESIS_DEFAULT) }
    }

    /// The stream's open shards by hash key range, for writers that keep each KPL aggregate
    /// within one shard. Default: `None` (not known), and aggregating writers send plain
    /// records.
    fn shard_map(&self, stream: &str) -> impl Future<Output = Result<Option<ShardMap>>> + Send {
        let _ = stream;
        async { Ok(None) }
    }

    /// A reader of `shard_id` from `from`.
    fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// Refuses `checkpoint`, the last loaded sequence number of `shard` in `kinesis_loads`, if
    /// it cannot be one of this broker's: the table was loaded from another broker before (the
    /// checkpoints of Kinesis and of the file broker mean nothing to each other), or the
    /// broker's data was replaced since. The error says what to do. Default: accepts any.
    fn check_checkpoint(
        &self,
        stream: &str,
        shard: &ShardInfo,
        checkpoint: &SequenceNumber,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (stream, shard, checkpoint);
        async { Ok(()) }
    }

    /// What `shard_id` holds after `from`: how many records and bytes, since when (for status
    /// displays). Default: reads them with [`Broker::read_shard`], up to [`BACKLOG_LIMIT`].
    fn backlog(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> impl Future<Output = Result<Backlog>> + Send {
        async move {
            let mut reader = self.read_shard(stream, shard_id, from).await?;
            count_backlog(&mut reader, |_| None).await
        }
    }

    /// How many shards are worth reading at once, at most. `None` (the default): reads wait on
    /// the network, so the loader's `read_concurrency` alone decides; a broker whose reads are
    /// local CPU work says about the number of cores, since more only holds more records in
    /// flight.
    fn max_parallel_reads(&self) -> Option<usize> {
        None
    }
}

/// The broker chosen by the configuration: Kinesis, or the file broker for development.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyBroker {
    /// Amazon Kinesis Data Streams.
    Kinesis(KinesisBroker),
    /// A directory of append-only files.
    File(FileBroker),
}

impl AnyBroker {
    /// The broker named by [`Config::broker`] (`REDTRACK_BROKER`).
    pub async fn from_config(config: &Config) -> Result<AnyBroker> {
        AnyBroker::with_aws(config, &Aws::default()).await
    }

    /// The broker of `config`, on the SDK configuration `aws` shares with the other parts of a
    /// loader.
    pub(crate) async fn with_aws(config: &Config, aws: &Aws) -> Result<AnyBroker> {
        Ok(match config.broker() {
            BrokerKind::Kinesis => AnyBroker::Kinesis(KinesisBroker::with_aws(config, aws).await?),
            BrokerKind::File(dir) => AnyBroker::File(FileBroker::new(dir.clone())?),
        })
    }
}

/// The shard reader of an [`AnyBroker`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyReader {
    /// Reads a Kinesis shard.
    Kinesis(KinesisReader),
    /// Reads a file broker shard.
    File(FileReader),
}

impl ShardReader for AnyReader {
    async fn next_batch(&mut self, limit: usize) -> Result<ReadBatch> {
        match self {
            AnyReader::Kinesis(r) => r.next_batch(limit).await,
            AnyReader::File(r) => r.next_batch(limit).await,
        }
    }

    fn read_policy(&self) -> ReadPolicy {
        match self {
            AnyReader::Kinesis(r) => r.read_policy(),
            AnyReader::File(r) => r.read_policy(),
        }
    }
}

impl Broker for AnyBroker {
    type Reader = AnyReader;

    async fn create_stream(&self, stream: &str, shards: u32) -> Result<()> {
        match self {
            AnyBroker::Kinesis(b) => b.create_stream(stream, shards).await,
            AnyBroker::File(b) => b.create_stream(stream, shards).await,
        }
    }

    async fn split_shards(&self, stream: &str) -> Result<usize> {
        match self {
            AnyBroker::Kinesis(b) => b.split_shards(stream).await,
            AnyBroker::File(b) => b.split_shards(stream).await,
        }
    }

    async fn put_records(&self, stream: &str, records: &[PutRecord]) -> Result<Vec<PutOutcome>> {
        match self {
            AnyBroker::Kinesis(b) => b.put_records(stream, records).await,
            AnyBroker::File(b) => b.put_records(stream, records).await,
        }
    }

    async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>> {
        match self {
            AnyBroker::Kinesis(b) => b.list_shards(stream).await,
            AnyBroker::File(b) => b.list_shards(stream).await,
        }
    }

    async fn stream_info(&self, stream: &str) -> Result<StreamInfo> {
        match self {
            AnyBroker::Kinesis(b) => b.stream_info(stream).await,
            AnyBroker::File(b) => b.stream_info(stream).await,
        }
    }

    async fn shard_map(&self, stream: &str) -> Result<Option<ShardMap>> {
        match self {
            AnyBroker::Kinesis(b) => b.shard_map(stream).await,
            AnyBroker::File(b) => b.shard_map(stream).await,
        }
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<AnyReader> {
        Ok(match self {
            AnyBroker::Kinesis(b) => {
                AnyReader::Kinesis(b.read_shard(stream, shard_id, from).await?)
            }
            AnyBroker::File(b) => AnyReader::File(b.read_shard(stream, shard_id, from).await?),
        })
    }

    fn max_parallel_reads(&self) -> Option<usize> {
        match self {
            AnyBroker::Kinesis(b) => b.max_parallel_reads(),
            AnyBroker::File(b) => b.max_parallel_reads(),
        }
    }

    async fn backlog(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<Backlog> {
        match self {
            AnyBroker::Kinesis(b) => b.backlog(stream, shard_id, from).await,
            AnyBroker::File(b) => b.backlog(stream, shard_id, from).await,
        }
    }

    async fn check_checkpoint(
        &self,
        stream: &str,
        shard: &ShardInfo,
        checkpoint: &SequenceNumber,
    ) -> Result<()> {
        match self {
            AnyBroker::Kinesis(b) => b.check_checkpoint(stream, shard, checkpoint).await,
            AnyBroker::File(b) => b.check_checkpoint(stream, shard, checkpoint).await,
        }
    }
}

/// The [`crate::Error::Config`] of a checkpoint of the other broker: what it is and what to do.
pub(crate) fn foreign_checkpoint(
    stream: &str,
    shard_id: &str,
    checkpoint: &SequenceNumber,
    written_by: &str,
    this_broker: &str,
    go_back: &str,
) -> crate::error::Error {
    crate::error::Error::Config(format!(
        "the checkpoint of shard `{shard_id}` of stream `{stream}` in kinesis_loads (sequence \
         number {checkpoint}) was written by a loader reading {written_by}, and this loader \
         reads {this_broker}: the checkpoints belong to the other broker. Set {go_back} to go \
         on where they are; or, to load this broker's stream from its start instead, delete \
         the old checkpoints first: DELETE FROM kinesis_loads WHERE stream_name = '{stream}'"
    ))
}
