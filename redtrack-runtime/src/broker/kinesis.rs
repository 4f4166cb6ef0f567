//! Amazon Kinesis Data Streams as a [`Broker`]: both the write side (PutRecords, CreateStream,
//! SplitShard) and the read side (ListShards, GetShardIterator, GetRecords).
//!
//! Every call goes through the AWS SDK, configured by `aws-config` from the standard
//! environment, so `AWS_ENDPOINT_URL_KINESIS` points it at an emulator with no code change.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use bytes::Bytes;

use super::{
    count_backlog, Backlog, Broker, PutOutcome, PutRecord, ReadBatch, ReadPolicy, SequenceNumber,
    ShardInfo, ShardMap, ShardReader, StartingPosition, StoredRecord, StreamInfo,
    MAX_RECORDS_PER_GET, MAX_RECORD_BYTES,
};
use crate::aws::{sdk_failure, Aws};
use crate::config::Config;
use crate::error::{code, Error, Result};
use crate::retry::Backoff;
use crate::schema::limits::MAX_SHARDS_PER_LIST;

/// How long [`KinesisBroker::create_stream`] and [`KinesisBroker::split_shards`] wait for the
/// stream to become ACTIVE.
pub const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// How often the stream's status is polled while waiting for ACTIVE.
const ACTIVE_POLL: Duration = Duration::from_millis(100);

/// How long one PutRecords, GetShardIterator or GetRecords attempt may take, unless the SDK
/// configuration sets an operation attempt timeout of its own.
pub(crate) const DATA_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Shards per ListShards page by default (Kinesis allows 1 to 10,000).
pub(crate) const LIST_SHARDS_PAGE: i32 = 1000;

/// How many times one GetRecords (in `next_batch`) or GetShardIterator call is made, at most,
/// when it is throttled or fails transiently (on the client without the SDK's retries).
const DATA_ATTEMPTS: u32 = 10;

/// How many empty GetRecords responses `next_batch` skips while Kinesis says the reader is still
/// behind the tip (an iterator may walk over empty stretches of a shard).
const EMPTY_SKIPS: u32 = 5;

/// Kinesis through the AWS SDK. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KinesisBroker {
    client: aws_sdk_kinesis::Client,
    /// The same client with the SDK's retries off, for the data plane (PutRecords,
    /// GetShardIterator, GetRecords): the batcher retries only the failed records, the reader
    /// retries throttled reads, each with the backoff of `broker::retry`; the SDK's retries
    /// (1 s and more for throttling) would stack their delays on top.
    data_client: aws_sdk_kinesis::Client,
    /// Shards per ListShards page.
    list_page: i32,
}

impl KinesisBroker {
    /// A broker with the SDK configuration from `config` (or the standard AWS environment).
    pub async fn new(config: &Config) -> Result<KinesisBroker> {
        KinesisBroker::with_aws(config, &Aws::default()).await
    }

    /// A broker on the SDK configuration `aws` shares with the other parts of a loader.
    pub(crate) async fn with_aws(config: &Config, aws: &Aws) -> Result<KinesisBroker> {
        let sdk = aws.sdk(config).await;
        Ok(KinesisBroker::from_client(aws_sdk_kinesis::Client::new(
            sdk,
        )))
    }

    /// A broker over an SDK client you built.
    pub fn from_client(client: aws_sdk_kinesis::Client) -> KinesisBroker {
        use aws_sdk_kinesis::config::timeout::TimeoutConfig;
        // A stalled connection must not hold writers forever: a data-plane attempt that takes
        // longer than DATA_ATTEMPT_TIMEOUT fails as a retryable (and ambiguous) timeout.
        let timeouts = client
            .config()
            .timeout_config()
            .map_or_else(TimeoutConfig::builder, TimeoutConfig::to_builder);
        let timeouts = match client
            .config()
            .timeout_config()
            .and_then(TimeoutConfig::operation_attempt_timeout)
        {
            Some(_) => timeouts.build(),
            None => timeouts
                .operation_attempt_timeout(DATA_ATTEMPT_TIMEOUT)
                .build(),
        };
        let data_client = aws_sdk_kinesis::Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
                .timeout_config(timeouts)
                .build(),
        );
        KinesisBroker {
            client,
            data_client,
            list_page: LIST_SHARDS_PAGE,
        }
    }

    /// Asks ListShards for pages of `n` shards (clamped to 1..=10,000; default 1,000).
    /// [`Broker::list_shards`] always returns every page.
    #[must_use]
    pub fn with_list_shards_page(mut self, n: i32) -> KinesisBroker {
        self.list_page = n.clamp(1, MAX_SHARDS_PER_LIST);
        self
    }

    /// The SDK client, for calls the [`Broker`] trait does not cover.
    pub fn sdk_client(&self) -> &aws_sdk_kinesis::Client {
        &self.client
    }

    /// The stream's status, or `None` if it does not exist.
    async fn status(&self, stream: &str) -> Result<Option<StreamStatus>> {
        match self
            .client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .stream_description_summary()
                .map(|s| s.stream_status().clone())),
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(sdk_error("DescribeStreamSummary", stream, e)),
        }
    }

    /// Waits until the stream is ACTIVE (at most [`ACTIVE_TIMEOUT`]).
    pub async fn wait_active(&self, stream: &str) -> Result<()> {
        let deadline = Instant::now() + ACTIVE_TIMEOUT;
        loop {
            match self.status(stream).await? {
                Some(StreamStatus::Active) => return Ok(()),
                Some(StreamStatus::Deleting) => {
                    return Err(broker_error(
                        "DescribeStreamSummary",
                        stream,
                        "ResourceInUseException",
                        "the stream is being deleted; wait and create it again",
                        true,
                    ))
                }
                _ if Instant::now() >= deadline => {
                    return Err(broker_error(
                        "DescribeStreamSummary",
                        stream,
                        code::TIMEOUT,
                        &format!("the stream is not ACTIVE after {ACTIVE_TIMEOUT:?}"),
                        true,
                    ))
                }
                _ => tokio::time::sleep(ACTIVE_POLL).await,
            }
        }
    }

    /// Deletes the stream (for tests and teardown); a missing stream is not an error.
    pub async fn delete_stream(&self, stream: &str) -> Result<()> {
        match self
            .client
            .delete_stream()
            .stream_name(stream)
            .enforce_consumer_deletion(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(sdk_error("DeleteStream", stream, e)),
        }
    }

    async fn iterator(
        &self,
        stream: &str,
        shard_id: &str,
        from: &StartingPosition,
    ) -> Result<Option<String>> {
        let req = self
            .data_client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard_id);
        let req = match from {
            StartingPosition::TrimHorizon => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            StartingPosition::AfterSequenceNumber(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq.as_str()),
        };
        let mut backoff = Backoff::new(DATA_ATTEMPTS);
        loop {
            match req.clone().send().await {
                Ok(out) => return Ok(out.shard_iterator().map(str::to_owned)),
                Err(e) => {
                    let err = sdk_error("GetShardIterator", stream, e);
                    match backoff.next_delay() {
                        Some(d) if err.is_retryable() => tokio::time::sleep(d).await,
                        _ => return Err(err),
                    }
                }
            }
        }
    }
}

impl Broker for KinesisBroker {
    type Reader = KinesisReader;

    async fn create_stream(&self, stream: &str, shards: u32) -> Result<()> {
        let shards = i32::try_from(shards.max(1))
            .map_err(|_| Error::Config(format!("{shards} shards is more than Kinesis allows")))?;
        if self.status(stream).await?.is_none() {
            match self
                .client
                .create_stream()
                .stream_name(stream)
                .shard_count(shards)
                .send()
                .await
            {
                Ok(_) => {}
                // Created by someone else in the meantime: fine, we wait for it below.
                Err(e) if code_of(&e) == Some("ResourceInUseException") => {}
                Err(e) => return Err(sdk_error("CreateStream", stream, e)),
            }
        }
        self.wait_active(stream).await
    }

    async fn split_shards(&self, stream: &str) -> Result<usize> {
        // `wait_active` waits for a stream that does not exist yet (one just created); here it
        // must exist already, so a missing one is said at once, not after ACTIVE_TIMEOUT.
        if self.status(stream).await?.is_none() {
            return Err(broker_error(
                "DescribeStreamSummary",
                stream,
                "ResourceNotFoundException",
                "the stream does not exist: run `setup` (or \
                 `Client::create_stream::<E>(shards)`), which creates it",
                false,
            ));
        }
        self.wait_active(stream).await?;
        let open: Vec<_> = list_shards_raw(&self.client, stream, self.list_page)
            .await?
            .into_iter()
            .filter(|s| {
                s.sequence_number_range()
                    .is_none_or(|r| r.ending_sequence_number().is_none())
            })
            .collect();
        let mut split = 0;
        for shard in open {
            let Some((start, end)) = hash_range(stream, &shard)? else {
                continue;
            };
            if end <= start {
                continue; // a one-key shard cannot be split
            }
            // The child shards take [start, mid - 1] and [mid, end].
            let mid = start + (end - start) / 2 + 1;
            self.client
                .split_shard()
                .stream_name(stream)
                .shard_to_split(shard.shard_id())
                .new_starting_hash_key(mid.to_string())
                .send()
                .await
                .map_err(|e| sdk_error("SplitShard", stream, e))?;
            // Kinesis takes one resharding operation at a time per stream.
            self.wait_active(stream).await?;
            split += 1;
        }
        Ok(split)
    }

    async fn put_records(&self, stream: &str, records: &[PutRecord]) -> Result<Vec<PutOutcome>> {
        let entries = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(r.partition_key.clone())
                    .data(Blob::new(r.data.to_vec()))
                    .build()
                    .map_err(|e| {
                        broker_error(
                            "PutRecords",
                            stream,
                            code::CONSTRUCTION_FAILURE,
                            &e.to_string(),
                            false,
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .data_client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("PutRecords", stream, e))?;
        if out.records().len() != records.len() {
            return Err(broker_error(
                "PutRecords",
                stream,
                code::INVALID_RESPONSE,
                &format!(
                    "{} results for {} records; the outcome of each is unknown",
                    out.records().len(),
                    records.len()
                ),
                true,
            ));
        }
        Ok(out
            .records()
            .iter()
            .map(|r| match (r.error_code(), r.sequence_number()) {
                (None, Some(seq)) => PutOutcome::Stored {
                    shard_id: r.shard_id().unwrap_or_default().to_owned(),
                    sequence_number: seq.into(),
                },
                (failed, _) => PutOutcome::Failed {
                    code: failed.unwrap_or(code::INVALID_RESPONSE).to_owned(),
                    message: r
                        .error_message()
                        .unwrap_or("no sequence number in the response")
                        .to_owned(),
                },
            })
            .collect())
    }

    async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>> {
        Ok(list_shards_raw(&self.client, stream, self.list_page)
            .await?
            .into_iter()
            .map(|s| ShardInfo {
                shard_id: s.shard_id().to_owned(),
                parent_shard_id: s.parent_shard_id().map(str::to_owned),
                adjacent_parent_shard_id: s.adjacent_parent_shard_id().map(str::to_owned),
                starting_sequence_number: s
                    .sequence_number_range()
                    .map(|r| r.starting_sequence_number().into())
                    .unwrap_or_default(),
                ending_sequence_number: s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .map(SequenceNumber::from),
            })
            .collect())
    }

    /// `DescribeStreamSummary`: `RetentionPeriodHours`, `MaxRecordSizeInKiB` (absent: 1 MiB)
    /// and `RecordDistributionStrategy` (`AUTO`: service-managed).
    async fn stream_info(&self, stream: &str) -> Result<StreamInfo> {
        let out = self
            .client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeStreamSummary", stream, e))?;
        let Some(s) = out.stream_description_summary() else {
            return Ok(StreamInfo::KINESIS_DEFAULT);
        };
        let hours = u64::try_from(s.retention_period_hours()).unwrap_or(0);
        let max_record_bytes = s
            .max_record_size_in_kib()
            .and_then(|kib| usize::try_from(kib).ok())
            .filter(|&kib| kib > 0)
            .map_or(MAX_RECORD_BYTES, |kib| kib.saturating_mul(1024));
        let service_managed = s
            .record_distribution_strategy()
            .is_some_and(|d| *d == aws_sdk_kinesis::types::RecordDistributionStrategy::Auto);
        Ok(StreamInfo::new(
            (hours > 0).then(|| Duration::from_secs(hours * 3600)),
            max_record_bytes,
            service_managed,
        ))
    }

    /// The open shards of ListShards (closed parents take no records).
    async fn shard_map(&self, stream: &str) -> Result<Option<ShardMap>> {
        let shards = list_shards_raw(&self.client, stream, self.list_page).await?;
        let mut ranges = Vec::with_capacity(shards.len());
        for shard in shards {
            let open = shard
                .sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none());
            let Some((start, end)) = hash_range(stream, &shard)?.filter(|_| open) else {
                continue;
            };
            ranges.push((start, end, shard.shard_id().to_owned()));
        }
        Ok(Some(ShardMap::new(ranges)))
    }

    /// A checkpoint of at most 20 digits, in a shard whose sequence numbers are longer (Kinesis'
    /// have 56), is a byte offset of the file broker.
    async fn check_checkpoint(
        &self,
        stream: &str,
        shard: &ShardInfo,
        checkpoint: &SequenceNumber,
    ) -> Result<()> {
        let digits = |s: &SequenceNumber| s.as_str().trim_start_matches('0').len();
        if checkpoint.parse::<u64>().is_ok() && digits(&shard.starting_sequence_number) > 20 {
            return Err(super::foreign_checkpoint(
                stream,
                &shard.shard_id,
                checkpoint,
                "the file broker (REDTRACK_BROKER=file:<dir>)",
                "Kinesis",
                "REDTRACK_BROKER=file:<dir> (the directory it used)",
            ));
        }
        Ok(())
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<KinesisReader> {
        let iterator = self.iterator(stream, shard_id, &from).await?;
        Ok(KinesisReader {
            broker: self.clone(),
            stream: stream.to_owned(),
            shard_id: shard_id.to_owned(),
            position: from,
            iterator,
            first_arrival: None,
        })
    }

    /// Counts by GetRecords (at most [`BACKLOG_LIMIT`](super::BACKLOG_LIMIT) records, 5 calls a
    /// second), with the arrival time of the first record and MillisBehindLatest.
    async fn backlog(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> Result<Backlog> {
        let mut reader = self.read_shard(stream, shard_id, from).await?;
        count_backlog(&mut reader, |r| r.first_arrival.take()).await
    }
}

/// A shard's hash key range as numbers (`None` if ListShards gave none).
fn hash_range(stream: &str, shard: &aws_sdk_kinesis::types::Shard) -> Result<Option<(u128, u128)>> {
    let Some(range) = shard.hash_key_range() else {
        return Ok(None);
    };
    let parse = |s: &str| {
        s.parse::<u128>().map_err(|_| {
            broker_error(
                "ListShards",
                stream,
                code::INVALID_HASH_KEY,
                &format!("shard {} has hash key `{s}`", shard.shard_id()),
                false,
            )
        })
    };
    Ok(Some((
        parse(range.starting_hash_key())?,
        parse(range.ending_hash_key())?,
    )))
}

/// Every shard of the stream (ListShards, all pages; closed shards in retention included).
///
/// On the SDK-retrying client and without a loop of its own: ListShards is a control-plane call,
/// whose throttling (`LimitExceededException`) the SDK's standard retries already handle.
async fn list_shards_raw(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    page: i32,
) -> Result<Vec<aws_sdk_kinesis::types::Shard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // With a NextToken, ListShards must not name the stream.
        let req = match &token {
            Some(t) => client.list_shards().next_token(t).max_results(page),
            None => client.list_shards().stream_name(stream).max_results(page),
        };
        let out = req
            .send()
            .await
            .map_err(|e| sdk_error("ListShards", stream, e))?;
        shards.extend(out.shards().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(shards),
        }
    }
}

/// Reads one Kinesis shard forward with GetRecords.
///
/// Throttling (`ProvisionedThroughputExceededException`) is retried with backoff inside
/// [`ShardReader::next_batch`]; an expired iterator is renewed from the last record read.
#[derive(Debug)]
pub struct KinesisReader {
    broker: KinesisBroker,
    stream: String,
    shard_id: String,
    /// Where a renewed iterator starts: after the last record handed out.
    position: StartingPosition,
    /// `None` once the end of a closed shard was reached.
    iterator: Option<String>,
    /// When the first record of the last batch reached Kinesis (ApproximateArrivalTimestamp).
    first_arrival: Option<std::time::SystemTime>,
}

impl ShardReader for KinesisReader {
    fn read_policy(&self) -> ReadPolicy {
        ReadPolicy::KINESIS
    }

    async fn next_batch(&mut self, limit: usize) -> Result<ReadBatch> {
        let limit = i32::try_from(limit.clamp(1, MAX_RECORDS_PER_GET)).unwrap_or(1);
        let mut backoff = Backoff::new(DATA_ATTEMPTS);
        let mut empty_skips = 0;
        loop {
            let Some(iterator) = self.iterator.clone() else {
                return Ok(ReadBatch {
                    records: Vec::new(),
                    millis_behind_latest: Some(0),
                    shard_end: true,
                });
            };
            let out = match self
                .broker
                .data_client
                .get_records()
                .shard_iterator(iterator)
                .limit(limit)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if code_of(&e) == Some("ExpiredIteratorException") => {
                    if backoff.next_delay().is_none() {
                        return Err(sdk_error("GetRecords", &self.stream, e));
                    }
                    // A new iterator from the last record handed out.
                    self.iterator = self
                        .broker
                        .iterator(&self.stream, &self.shard_id, &self.position)
                        .await?;
                    continue;
                }
                Err(e) => {
                    let err = sdk_error("GetRecords", &self.stream, e);
                    match backoff.next_delay() {
                        Some(d) if err.is_retryable() => {
                            tracing::debug!(shard = %self.shard_id, error = %err, "GetRecords retry");
                            tokio::time::sleep(d).await;
                            continue;
                        }
                        _ => return Err(err),
                    }
                }
            };
            self.first_arrival = out
                .records
                .first()
                .and_then(|r| r.approximate_arrival_timestamp())
                .and_then(|t| std::time::SystemTime::try_from(*t).ok());
            let records: Vec<StoredRecord> = out
                .records
                .into_iter()
                .map(|r| StoredRecord {
                    approximate_arrival_timestamp: r
                        .approximate_arrival_timestamp
                        .and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?)),
                    sequence_number: r.sequence_number.into(),
                    partition_key: r.partition_key.unwrap_or_default(),
                    data: Bytes::from(r.data.into_inner()),
                })
                .collect();
            if let Some(last) = records.last() {
                self.position = StartingPosition::AfterSequenceNumber(last.sequence_number.clone());
            }
            self.iterator = out.next_shard_iterator.filter(|s| !s.is_empty());
            let shard_end = self.iterator.is_none();
            let behind = out.millis_behind_latest;
            if records.is_empty()
                && !shard_end
                && behind.unwrap_or(0) > 0
                && empty_skips < EMPTY_SKIPS
            {
                empty_skips += 1;
                continue;
            }
            return Ok(ReadBatch {
                records,
                millis_behind_latest: behind,
                shard_end,
            });
        }
    }
}

/// The error code of an SDK error, if the service sent one.
fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn broker_error(
    operation: &'static str,
    stream: &str,
    code: &str,
    message: &str,
    retryable: bool,
) -> Error {
    Error::broker(operation, stream, code, message, retryable)
}

/// Maps an SDK error to [`Error::Broker`] with the Kinesis error code, whether a retry may
/// succeed (from the code), and the SDK error as its source. Timeouts and dispatch failures are
/// retryable, but ambiguous: the call may have taken effect.
fn sdk_error<E>(operation: &'static str, stream: &str, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = sdk_failure(e);
    let message = if failure.code == "ResourceNotFoundException" {
        format!(
            "the stream does not exist: run `setup` (or `Client::create_stream::<E>(shards)`), \
             which creates it ({})",
            failure.message
        )
    } else {
        failure.message
    };
    Error::Broker {
        operation,
        stream: stream.to_owned(),
        code: failure.code,
        message,
        retryable: failure.retryable,
        source: Some(failure.source),
    }
}
