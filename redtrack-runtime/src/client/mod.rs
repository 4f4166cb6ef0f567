//! The write path: [`Client::write`] sends an event to the stream of its table.
//!
//! ```no_run
//! # use redtrack_runtime::{Client, Config, RedTrackEvent};
//! # async fn demo<E: RedTrackEvent>(event: E) -> redtrack_runtime::Result<()> {
//! let client = Client::new(Config::from_env()?).await?;
//! client.create_stream::<E>(4).await?;   // once, at deploy time; idempotent
//! client.write(&event).await?;           // returns once Kinesis acknowledged the record
//! client.close().await?;                 // before the process exits
//! # Ok(()) }
//! ```
//!
//! # Batching
//!
//! `write` encodes the event on the caller's task (a bad event fails there, at once) and hands
//! the record to the client's batcher, one task shared by every clone of the client. The batcher
//! coalesces records from all writers into PutRecords calls of at most 500 records and 10 MiB
//! (the request limit of page `API_PutRecords`, or less for an endpoint that refused a call as
//! too large); each writer waits for the one shared round trip that carries its record. A record
//! waits at most the configured linger (default 5 ms) for others to join it, and less when the
//! stream is idle: the first record to an idle stream goes at once, and writers that write again
//! as soon as they are answered are gathered into one call; at most 16 calls are under way at
//! once. From 64 writer tasks against the emulator this gives about 61 records per call, and
//! 0.8 or more of the rate of bare 500-record PutRecords calls (`examples/bench_write.rs`).
//!
//! # The stream's limits
//!
//! Before a stream's first call, and every minute, the batcher reads the stream's settings
//! (DescribeStreamSummary): a record larger than the stream's maximum record size (1 MiB, or up
//! to 10 MiB on a stream configured for large records, page `large-records`) fails with
//! [`Error::RecordTooLarge`] naming the stream and its limit, and is never sent. Writers need
//! `kinesis:DescribeStreamSummary`; without it the batcher assumes Kinesis' defaults.
//!
//! # Failures and delivery
//!
//! Only the records that failed in a PutRecords response are sent again, with exponential
//! backoff and jitter, up to `max_attempts` sends in all. Throttling
//! (`ProvisionedThroughputExceededException`, `KMSThrottlingException`), internal failures and
//! transient network errors are retried; any other error, or running out of attempts, reaches
//! exactly the writers whose records failed, as [`Error::Broker`] with the Kinesis error code.
//! A whole call refused for what it holds (too large, a validation error) is not retried as it
//! is: it is split in halves, each sent on its own, so the records that can be stored are, and
//! the one the refusal concerns fails at once with an error that says why. A call without an
//! answer within `attempt_timeout` (default 30 s) is given up and its records sent again, so a
//! record is sent for at most [`Config::write_retry_span`].
//!
//! When a PutRecords call times out or its connection drops after the request went out, Kinesis
//! may have stored the records, and they are sent again: the stream then holds a *twin*. Every
//! record carries an identity its retries keep ([`crate::identity`]), and the loader drops
//! twins that arrive within its dedupe window, so **each event is loaded once** (see
//! `loader::dedupe`). `ConfigBuilder::build` refuses a writer whose retries could outlast the
//! window. An `Err` from `write` with [`Error::is_retryable`] true (retries exhausted) may still
//! hide a stored record: it is loaded once too.
//!
//! # Partition keys and aggregation
//!
//! A record's partition key is the event's `#[redtrack(partition_key)]` field, else the
//! record's identity (25 characters, random-prefixed, so events spread evenly over the shards;
//! a random 32-hex-digit key with identities off). An event with a `partition_key` field
//! carries its identity in a KPL tag, so it is sent in the KPL format even with aggregation off
//! (one user record per Kinesis record). With
//! `ConfigBuilder::with_aggregation(true)` the batcher packs many events into one Kinesis record
//! in the KPL aggregated format (up to
//! [`DEFAULT_AGGREGATE_MAX_BYTES`](crate::broker::aggregate::DEFAULT_AGGREGATE_MAX_BYTES) each),
//! **per shard**: from the stream's hash key ranges (ListShards), every event in an aggregate
//! hashes into the shard that stores it, as the KPL does, so a KCL consumer of the same stream
//! (which drops an aggregate holding an event of another shard) keeps all of them, and events
//! with the same key stay in one shard. The map is read again after [`Client::split_shards`],
//! every minute, and as soon as a record lands in a shard the map did not expect (another
//! process resharded; the records of that one call may have mixed, as with the KPL). On a
//! stream with service-managed record distribution, where Kinesis ignores partition keys, or
//! when the map cannot be read (`kinesis:ListShards`), records go plain. The loader
//! de-aggregates ([`crate::broker::aggregate::deaggregate`]).
//!
//! # Backpressure
//!
//! At most `max_buffered_records` records (default 50,000) are accepted and not yet answered.
//! When the buffer is full, `write` waits for room and `try_write` fails at once with
//! [`Error::BufferFull`].

mod batcher;
mod identity;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::broker::{AnyBroker, Broker, MAX_PARTITION_KEY_UTF16_UNITS, MAX_RECORD_BYTES_LARGE};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::RedTrackEvent;
use crate::identity::RecordIds;
use batcher::{Command, Counters, Pending, RecordLimits, Settings};
use identity::Outgoing;

/// Writes events to their tables' streams. Cheap to clone; clones share one batcher.
///
/// Dropping the last clone while records are still unanswered logs an error: call
/// [`Client::flush`] or [`Client::close`] before shutting down.
///
/// The broker is the configured one ([`AnyBroker`]), or any [`Broker`] of your own
/// ([`Client::with_broker`]).
pub struct Client<B: Broker + 'static = AnyBroker> {
    inner: Arc<Inner<B>>,
}

impl<B: Broker + 'static> Clone for Client<B> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<B> {
    config: Config,
    broker: Arc<B>,
    tx: mpsc::UnboundedSender<Command>,
    buffer: Arc<Semaphore>,
    capacity: usize,
    closed: AtomicBool,
    counters: Arc<Counters>,
    /// The largest record of each stream, as the batcher learned it.
    limits: Arc<RecordLimits>,
    /// The ids of the records this client writes (all clones together).
    ids: RecordIds,
    /// Stream names by table.
    streams: std::sync::RwLock<std::collections::HashMap<&'static str, Arc<str>>>,
}

/// What a client's batcher has done so far (all clones together); see [`Client::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteStats {
    /// PutRecords calls made, retries included.
    pub calls: u64,
    /// Kinesis records sent in those calls, retries included (an aggregate counts once).
    pub records_sent: u64,
    /// Events handed to PutRecords calls (first attempts only).
    pub events_sent: u64,
    /// Events acknowledged to their writers.
    pub events_acked: u64,
    /// Events whose writers got an error from the broker.
    pub events_failed: u64,
    /// Kinesis records sent again after a failure.
    pub records_retried: u64,
}

impl WriteStats {
    /// The mean number of Kinesis records per PutRecords call.
    pub fn records_per_call(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.records_sent as f64 / self.calls as f64
        }
    }
}

impl<B: Broker + 'static> fmt::Debug for Client<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("unanswered", &self.unanswered())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<B> Drop for Inner<B> {
    fn drop(&mut self) {
        let unanswered = self.capacity - self.buffer.available_permits();
        if unanswered > 0 {
            tracing::error!(
                unanswered,
                "redtrack Client dropped with {unanswered} records not yet acknowledged by the \
                 broker; they are still being sent, but are LOST if the runtime stops first. \
                 Call `client.flush().await` or `client.close().await` before dropping the client."
            );
        }
    }
}

impl Client {
    /// Connects to the configured broker and starts the batcher task (needs a tokio runtime).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming what is missing (for Kinesis: no AWS region or credentials),
    /// before any call to Kinesis, which is not called until the first write; the file broker's
    /// directory cannot be made ([`Error::Broker`] with code `io`).
    pub async fn new(config: Config) -> Result<Client> {
        let aws = crate::aws::Aws::default();
        crate::aws::check(&config, crate::config::Needs::WRITER, &aws).await?;
        let broker = AnyBroker::with_aws(&config, &aws).await?;
        Ok(Client::with_broker(config, broker))
    }
}

impl<B: Broker + 'static> Client<B> {
    /// A client writing through `broker`: a broker of your own, one built by hand, or one
    /// wrapped for tests. Starts the batcher task, so it must be called within a tokio runtime.
    pub fn with_broker(config: Config, broker: B) -> Client<B> {
        let broker = Arc::new(broker);
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let limits = Arc::new(RecordLimits::default());
        let settings = Settings {
            linger: config.linger,
            max_attempts: config.max_attempts,
            attempt_timeout: config.attempt_timeout,
            aggregate: config.aggregate,
            counters: counters.clone(),
            limits: limits.clone(),
        };
        tokio::spawn(batcher::run(broker.clone(), rx, settings));
        let capacity = config.max_buffered_records.max(1);
        Client {
            inner: Arc::new(Inner {
                buffer: Arc::new(Semaphore::new(capacity)),
                capacity,
                config,
                broker,
                tx,
                closed: AtomicBool::new(false),
                counters,
                limits,
                ids: RecordIds::new(),
                streams: Default::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The broker the client writes to (the loader reads through the same type).
    pub fn broker(&self) -> &B {
        &self.inner.broker
    }

    /// The stream of `E`'s table: `<cluster>.<database>.<table>`.
    pub fn stream_name<E: RedTrackEvent>(&self) -> String {
        self.inner.config.stream_name(E::TABLE_NAME)
    }

    /// What the batcher has done so far: calls, records per call, retries, failures.
    pub fn stats(&self) -> WriteStats {
        let c = &self.inner.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        WriteStats {
            calls: get(&c.calls),
            records_sent: get(&c.records_sent),
            events_sent: get(&c.events_sent),
            events_acked: get(&c.events_acked),
            events_failed: get(&c.events_failed),
            records_retried: get(&c.records_retried),
        }
    }

    /// How many accepted records are not yet answered.
    pub fn unanswered(&self) -> usize {
        self.inner.capacity - self.inner.buffer.available_permits()
    }

    /// Creates the stream of `E`'s table with `shards` shards unless it exists, and waits until
    /// it is ACTIVE. Idempotent: an existing stream is left as it is, whatever its shard count.
    pub async fn create_stream<E: RedTrackEvent>(&self, shards: u32) -> Result<()> {
        self.inner
            .broker
            .create_stream(&self.stream_name::<E>(), shards)
            .await
    }

    /// Splits every open shard of `E`'s stream in two at the middle of its hash range, one at a
    /// time, waiting for ACTIVE after each; returns how many shards were split. The client's
    /// own writes then wait for the new shard map (with aggregation on).
    pub async fn split_shards<E: RedTrackEvent>(&self) -> Result<usize> {
        let split = self
            .inner
            .broker
            .split_shards(&self.stream_name::<E>())
            .await;
        let _ = self
            .inner
            .tx
            .send(Command::Resharded(self.stream_of(E::TABLE_NAME)));
        split
    }

    /// Encodes `event` and returns once the broker acknowledged it.
    ///
    /// Fails at once, before anything is sent, if the event does not encode
    /// ([`Error::Encode`]), does not fit in a record ([`Error::RecordTooLarge`]) or has a bad
    /// partition key; waits while the client's buffer is full. See the [module docs](self) for
    /// retries and delivery guarantees.
    pub async fn write<E: RedTrackEvent>(&self, event: &E) -> Result<()> {
        self.enqueue(event).await?.await
    }

    /// Like [`Client::write`], but never waits for room in the buffer: the event is encoded
    /// and the record accepted, or refused with [`Error::BufferFull`] (or an encoding error),
    /// when `try_write` is *called*, not when the returned [`TryWrite`] is awaited; awaiting it
    /// gives the refusal at once, or waits for the broker's acknowledgement.
    ///
    /// ```no_run
    /// # async fn demo<E: redtrack_runtime::RedTrackEvent>(client: redtrack_runtime::Client, event: E) {
    /// match client.try_write(&event).await {
    ///     Ok(()) => {}                                             // stored
    ///     Err(redtrack_runtime::Error::BufferFull { .. }) => {}    // shed load: drop or count it
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// # }
    /// ```
    ///
    /// To learn of a refusal without awaiting anything, use [`Client::try_enqueue`].
    pub fn try_write<E: RedTrackEvent>(&self, event: &E) -> TryWrite {
        TryWrite(self.try_enqueue(event).map_err(Some))
    }

    /// Encodes `event` and hands it to the batcher, waiting for room in the buffer; the returned
    /// [`Ack`] resolves once the broker acknowledged it. Lets one task keep many writes in
    /// flight: `write` is `enqueue(..).await?.await`.
    pub async fn enqueue<E: RedTrackEvent>(&self, event: &E) -> Result<Ack> {
        let (stream, table, record) = self.encode(event)?;
        let permit = self
            .inner
            .buffer
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ClientClosed)?;
        self.send(stream, table, record, permit)
    }

    /// Like [`Client::enqueue`], but fails at once with [`Error::BufferFull`] when the buffer
    /// is full.
    pub fn try_enqueue<E: RedTrackEvent>(&self, event: &E) -> Result<Ack> {
        let (stream, table, record) = self.encode(event)?;
        let permit = match self.inner.buffer.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => {
                return Err(Error::BufferFull {
                    capacity: self.inner.capacity,
                })
            }
            Err(TryAcquireError::Closed) => return Err(Error::ClientClosed),
        };
        self.send(stream, table, record, permit)
    }

    /// Returns once every record accepted before this call was acknowledged or failed (their
    /// writers have their answers). Records that linger are sent at once.
    ///
    /// # Errors
    ///
    /// [`Error::ClientClosed`] if the batcher task is gone (its runtime stopped). The records'
    /// own failures go to their writers, not here.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Flush(done))
            .map_err(|_| Error::ClientClosed)?;
        wait.await.map_err(|_| Error::ClientClosed)
    }

    /// Refuses further writes (on every clone: they get [`Error::ClientClosed`]) and flushes.
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.flush().await
    }

    fn encode<E: RedTrackEvent>(&self, event: &E) -> Result<(Arc<str>, &'static str, Outgoing)> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(Error::ClientClosed);
        }
        let mut buf = Vec::with_capacity(256);
        event.encode_json(&mut buf)?;
        let user_key = match event.partition_key() {
            Some(key) => {
                // Kinesis counts UTF-16 code units: an emoji is two.
                let units = key.encode_utf16().count();
                if units == 0 || units > MAX_PARTITION_KEY_UTF16_UNITS {
                    return Err(Error::InvalidPartitionKey {
                        table: E::TABLE_NAME,
                        message: format!(
                            "it has {units} UTF-16 code units; Kinesis takes 1 to \
                             {MAX_PARTITION_KEY_UTF16_UNITS}"
                        ),
                    });
                }
                Some(key)
            }
            None => None,
        };
        let config = &self.inner.config;
        let ids = config.record_identity.then_some(&self.inner.ids);
        let out = identity::outgoing(buf, user_key, ids, config.aggregate);
        // The stream's own limit once the batcher knows it, else the largest any stream takes
        // (the batcher checks again). With aggregation on, a record too large for the
        // aggregate's framing is sent plain; one whose identity is in a tag must have room for
        // the framing.
        let stream = self.stream_of(E::TABLE_NAME);
        let limit = self
            .inner
            .limits
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&stream)
            .copied()
            .unwrap_or(MAX_RECORD_BYTES_LARGE);
        let bytes = out.bytes;
        if bytes > limit {
            return Err(Error::RecordTooLarge {
                table: E::TABLE_NAME,
                stream: stream.to_string(),
                bytes,
                limit,
            });
        }
        Ok((stream, E::TABLE_NAME, out))
    }

    /// The stream of `table`, built once per table and shared by its records.
    fn stream_of(&self, table: &'static str) -> Arc<str> {
        let cached = self
            .inner
            .streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(table)
            .cloned();
        cached.unwrap_or_else(|| {
            let name: Arc<str> = Arc::from(self.inner.config.stream_name(table));
            self.inner
                .streams
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table, name.clone());
            name
        })
    }

    fn send(
        &self,
        stream: Arc<str>,
        table: &'static str,
        record: Outgoing,
        permit: OwnedSemaphorePermit,
    ) -> Result<Ack> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Record(Pending {
                stream,
                table,
                wire_bytes: record.bytes,
                record: record.record,
                id_tag: record.id_tag,
                reply,
                permit,
            }))
            .map_err(|_| Error::ClientClosed)?;
        Ok(Ack { rx })
    }
}

/// What [`Client::try_write`] returns: a record already accepted (or refused) when `try_write`
/// was called; awaiting it gives the refusal, or the broker's answer.
#[must_use = "the record was accepted or refused when try_write was called; await this for the \
              broker's answer (dropping it does not cancel the write)"]
#[derive(Debug)]
pub struct TryWrite(std::result::Result<Ack, Option<Error>>);

impl Future for TryWrite {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &mut self.0 {
            Ok(ack) => Pin::new(ack).poll(cx),
            Err(refused) => Poll::Ready(Err(refused.take().unwrap_or(Error::ClientClosed))),
        }
    }
}

/// The acknowledgement of one accepted record: resolves to `Ok(())` once the broker stored it,
/// or to the error that kept it out.
#[must_use = "an Ack does nothing unless awaited; dropping it does not cancel the write"]
#[derive(Debug)]
pub struct Ack {
    rx: oneshot::Receiver<Result<()>>,
}

impl Future for Ack {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::ClientClosed)))
    }
}
