//! The batcher: one task per client that coalesces records from every writer into PutRecords
//! calls, sends them, retries the records that failed, and answers each writer.
//!
//! A record waits in its stream's queue until the queue holds a full call (500 records or the
//! stream's call size), or it has lingered for the configured time, or a flush asks for it, or
//! the stream is idle (no call under way) and as many records wait as the stream's last calls
//! answered. The last rule makes the batcher self-clocking: an idle client with one writer adds
//! no latency, and writers that write again once answered are gathered into one call instead
//! of the first of them leaving alone. At most [`MAX_IN_FLIGHT_CALLS`] calls (each with its own
//! retries) are under way at once; records beyond that wait in the queue, and the client's
//! bounded buffer pushes back on writers.
//!
//! # What the batcher knows of each stream
//!
//! Before a stream's first call the batcher asks the broker for the stream's settings
//! ([`Broker::stream_info`]: its largest record, whether Kinesis places its records itself)
//! and, when aggregating, its open shards by hash key range ([`Broker::shard_map`]); it asks
//! again every [`STREAM_TTL`], after this client split the stream, and as soon as a PutRecords
//! answer shows a record stored in another shard than the map says (someone resharded): calls
//! then wait for the new map. A record larger than the stream takes fails at once
//! ([`Error::RecordTooLarge`]); no call is built over 500 records or the stream's call size (10
//! MiB, page `API_PutRecords`, or less where the endpoint refused a call as too large).
//!
//! # Aggregation within one shard
//!
//! With aggregation on, user records are packed into KPL aggregates **per shard**: each
//! aggregate holds only records whose partition key hashes into one shard's range and is sent
//! with the first one's key, so it lands in that shard, and a KCL consumer, which de-aggregates
//! with the storing shard's range and drops an aggregate at its first outsider, keeps all of
//! them. On a stream with service-managed record distribution (partition keys are ignored),
//! or when the shard map cannot be read, records go plain (page
//! `service-managed-pk-kpl-aggregation`).
//!
//! # Refusals retrying cannot fix
//!
//! A whole call refused for its content (too large, `ValidationException`,
//! `InvalidArgumentException`, `SerializationException`) is split in two and each half sent on
//! its own, down to the one record concerned, which fails at once with an error saying why; the
//! other records are stored. Throttling and transient failures are retried with backoff, only
//! for the records that failed.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::broker::aggregate::{Aggregator, DEFAULT_AGGREGATE_MAX_BYTES};
use crate::broker::{
    Broker, PutOutcome, PutRecord, ShardMap, StreamInfo, MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT,
};
use crate::error::{code, Error, Result, Source};
use crate::identity::{RecordId, TAG_KEY};
use crate::retry::{is_retryable_code, Backoff};

/// At most this many PutRecords calls (with their retries) are under way at once per client.
pub(crate) const MAX_IN_FLIGHT_CALLS: usize = 16;

/// How long a stream's settings and shard map are used before they are asked again.
pub(crate) const STREAM_TTL: Duration = Duration::from_secs(60);

/// How long asking for a stream's settings may take; then the defaults are used.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The smallest call size the batcher shrinks a stream's calls to after refusals.
const MIN_CALL_BYTES: usize = 64 * 1024;

/// The largest record each stream takes, as the batcher learned it, shared with the client so
/// that `write` refuses an event too large for its stream before queuing it.
pub(crate) type RecordLimits = std::sync::RwLock<HashMap<Arc<str>, usize>>;

/// One accepted record waiting for its acknowledgement.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) stream: Arc<str>,
    /// The event's table (for errors).
    pub(crate) table: &'static str,
    pub(crate) record: PutRecord,
    /// The record's identity, for the KPL tag of its user record when it is aggregated (its
    /// partition key is the user's; see `client::identity`).
    pub(crate) id_tag: Option<RecordId>,
    /// Its size as a Kinesis record sent on its own: with the KPL framing its tag needs, if it
    /// has one.
    pub(crate) wire_bytes: usize,
    pub(crate) reply: oneshot::Sender<Result<()>>,
    /// Its slot in the client's bounded buffer, freed when the record is answered.
    pub(crate) permit: OwnedSemaphorePermit,
}

impl Pending {
    fn size(&self) -> usize {
        self.record.data.len() + self.record.partition_key.len()
    }

    /// The record's tags inside an aggregate (its identity, if it has one there), written
    /// into `text`.
    fn tags<'a>(&self, text: &'a mut String) -> Option<[(&'static str, Option<&'a str>); 1]> {
        let id = self.id_tag?;
        *text = id.to_text();
        Some([(TAG_KEY, Some(text.as_str()))])
    }

    fn into_parts(self) -> (PutRecord, Waiter) {
        let waiter = Waiter {
            reply: self.reply,
            _permit: self.permit,
        };
        (self.record, waiter)
    }

    /// Answers the writer with [`Error::RecordTooLarge`]: the stream takes records of at most
    /// `limit` bytes.
    fn refuse_too_large(self, limit: usize, counters: &Counters) {
        counters.events_failed.fetch_add(1, Ordering::Relaxed);
        let error = Error::RecordTooLarge {
            table: self.table,
            stream: self.stream.to_string(),
            bytes: self.wire_bytes,
            limit,
        };
        let _ = self.reply.send(Err(error));
    }
}

/// What writers send the batcher.
#[derive(Debug)]
pub(crate) enum Command {
    /// A record to send.
    Record(Pending),
    /// Answer once every record sent before this command was answered.
    Flush(oneshot::Sender<()>),
    /// The stream's shards changed (this client split it): its shard map is stale.
    Resharded(Arc<str>),
}

/// Counters of what the batcher did, shared with the client (see `Client::stats`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) records_sent: AtomicU64,
    pub(crate) events_sent: AtomicU64,
    pub(crate) events_acked: AtomicU64,
    pub(crate) events_failed: AtomicU64,
    pub(crate) records_retried: AtomicU64,
}

/// The batcher's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) linger: Duration,
    pub(crate) max_attempts: u32,
    /// How long one PutRecords call may take before it counts as failed (and ambiguous).
    pub(crate) attempt_timeout: Duration,
    pub(crate) aggregate: bool,
    pub(crate) counters: Arc<Counters>,
    pub(crate) limits: Arc<RecordLimits>,
}

/// A writer's record inside a call: who to answer.
#[derive(Debug)]
struct Waiter {
    reply: oneshot::Sender<Result<()>>,
    _permit: OwnedSemaphorePermit,
}

/// One Kinesis record of a call and the writers it answers (one, or many when aggregated).
#[derive(Debug)]
struct Unit {
    record: PutRecord,
    waiters: Vec<Waiter>,
    /// The shard an aggregate was built for (its user records all hash into it).
    shard: Option<String>,
}

impl Unit {
    /// A record sent on its own, answering its one writer: as it is, or, if its identity is a
    /// tag (it was to be aggregated, and goes alone), in a KPL aggregate of its own.
    fn plain(p: Pending) -> Unit {
        let id_tag = p.id_tag;
        let (mut record, waiter) = p.into_parts();
        if let Some(id) = id_tag {
            let text = id.to_text();
            let mut one = Aggregator::new(usize::MAX);
            one.try_push_with_tags(
                &record.partition_key,
                &record.data,
                &[(TAG_KEY, Some(text.as_str()))],
            );
            if let Some(framed) = one.finish() {
                record = framed;
            }
        }
        Unit {
            record,
            waiters: vec![waiter],
            shard: None,
        }
    }

    fn size(&self) -> usize {
        self.record.data.len() + self.record.partition_key.len()
    }

    fn answer(self, result: impl Fn() -> Result<()>) {
        for w in self.waiters {
            // A writer that stopped waiting (cancelled) no longer cares.
            let _ = w.reply.send(result());
        }
    }
}

#[derive(Debug)]
struct Queue {
    /// (record number, record), in arrival order.
    items: std::collections::VecDeque<(u64, Pending)>,
    bytes: usize,
    /// When the oldest waiting record arrived.
    since: Instant,
}

/// What the batcher knows of one stream.
#[derive(Debug)]
struct StreamState {
    info: StreamInfo,
    /// Where partition keys go, when aggregating on a stream whose records partition keys
    /// place; `None`: records go plain.
    map: Option<ShardMap>,
    /// The largest call to build, in bytes: [`MAX_BYTES_PER_PUT`], or less where the endpoint
    /// refused calls as too large.
    max_call_bytes: usize,
    /// When the settings were last asked for.
    asked: Instant,
    /// Answered at least once: calls may go.
    known: bool,
    /// The map is known wrong: calls wait for the lookup under way.
    stale: bool,
    /// A lookup is under way.
    looking: bool,
}

impl StreamState {
    fn new() -> StreamState {
        StreamState {
            info: StreamInfo::KINESIS_DEFAULT,
            map: None,
            max_call_bytes: MAX_BYTES_PER_PUT,
            asked: Instant::now(),
            known: false,
            stale: false,
            looking: false,
        }
    }

    /// Whether calls may go now.
    fn ready(&self) -> bool {
        self.known && !self.stale
    }
}

/// A stream's settings (and shard map) as the broker answered.
struct Looked {
    stream: Arc<str>,
    info: Result<StreamInfo>,
    map: Option<Result<Option<ShardMap>>>,
}

/// Asks the broker for `stream`'s settings and, when aggregating on a stream placed by
/// partition key, its shard map; within [`LOOKUP_TIMEOUT`].
async fn look_up<B: Broker>(broker: Arc<B>, stream: Arc<str>, aggregate: bool) -> Looked {
    let timed_out = |operation: &'static str| {
        Error::broker(
            operation,
            stream.to_string(),
            code::TIMEOUT,
            format!("no answer within {LOOKUP_TIMEOUT:?}"),
            true,
        )
    };
    let info = tokio::time::timeout(LOOKUP_TIMEOUT, broker.stream_info(&stream))
        .await
        .unwrap_or_else(|_| Err(timed_out("DescribeStreamSummary")));
    let placed_by_key = info
        .as_ref()
        .map_or(true, |i| !i.service_managed_distribution);
    let map = if aggregate && placed_by_key {
        Some(
            tokio::time::timeout(LOOKUP_TIMEOUT, broker.shard_map(&stream))
                .await
                .unwrap_or_else(|_| Err(timed_out("ListShards"))),
        )
    } else {
        None
    };
    Looked { stream, info, map }
}

/// A call's outcome, for the batcher's bookkeeping.
struct CallDone {
    /// The call's smallest record number.
    tag: u64,
    stream: Arc<str>,
    /// Events it answered.
    events: usize,
    /// A record landed in another shard than the map said: the map is stale.
    misplaced: bool,
    /// The size of the smallest call the endpoint refused as too large.
    refused_bytes: Option<usize>,
}

/// Runs until every client handle is gone and every record is answered.
pub(crate) async fn run<B: Broker + 'static>(
    broker: Arc<B>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    s: Settings,
) {
    let mut queues: HashMap<Arc<str>, Queue> = HashMap::new();
    let mut states: HashMap<Arc<str>, StreamState> = HashMap::new();
    let mut inflight = FuturesUnordered::new();
    let mut lookups = FuturesUnordered::new();
    // The smallest record number of each call under way, with multiplicity.
    let mut inflight_min: BTreeMap<u64, usize> = BTreeMap::new();
    // Calls under way per stream.
    let mut busy: HashMap<Arc<str>, usize> = HashMap::new();
    // Events answered per stream since its last call went out: the writers likely to come back.
    let mut answered: HashMap<Arc<str>, usize> = HashMap::new();
    let mut flushes: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut received: u64 = 0;
    let mut open = true;
    loop {
        // Ask for the settings of new streams, and again for those due.
        for (stream, st) in states.iter_mut() {
            if !st.looking && (!st.known || st.stale || st.asked.elapsed() >= STREAM_TTL) {
                st.looking = true;
                st.asked = Instant::now();
                lookups.push(look_up(broker.clone(), stream.clone(), s.aggregate));
            }
        }

        // Send what is ready: full calls, lingered records, or everything when flushing/closing.
        let now = Instant::now();
        let force = !flushes.is_empty() || !open;
        for (stream, q) in queues.iter_mut() {
            let Some(st) = states.get(stream).filter(|st| st.ready()) else {
                continue;
            };
            while inflight.len() < MAX_IN_FLIGHT_CALLS
                && !q.items.is_empty()
                && (force
                    || q.is_full(s.aggregate, st.max_call_bytes)
                    || now >= q.since + s.linger
                    || (!busy.contains_key(stream)
                        && q.items.len() >= answered.get(stream).copied().unwrap_or(0)))
            {
                answered.remove(stream);
                let (min, units) = q.take_call(st, s.aggregate, &s.counters, now);
                if units.is_empty() {
                    continue; // every record taken was refused as too large, and answered
                }
                *inflight_min.entry(min).or_default() += 1;
                *busy.entry(stream.clone()).or_default() += 1;
                inflight.push(send_call(
                    broker.clone(),
                    stream.clone(),
                    units,
                    (s.max_attempts, s.attempt_timeout),
                    min,
                    s.counters.clone(),
                    st.info.max_record_bytes,
                ));
            }
        }
        queues.retain(|_, q| !q.items.is_empty());

        // Answer flushes whose records are all answered.
        if !flushes.is_empty() {
            let oldest_queued = queues.values().filter_map(|q| q.items.front().map(|i| i.0));
            let oldest = inflight_min
                .keys()
                .next()
                .copied()
                .into_iter()
                .chain(oldest_queued)
                .min();
            let mut i = 0;
            while i < flushes.len() {
                if oldest.is_none_or(|o| o > flushes[i].0) {
                    let (_, done) = flushes.swap_remove(i);
                    let _ = done.send(());
                } else {
                    i += 1;
                }
            }
        }

        if !open && queues.is_empty() && inflight.is_empty() {
            return;
        }
        // Queues waiting for their stream's settings wake up with the lookup, not the clock.
        let deadline = queues
            .iter()
            .filter(|(stream, _)| states.get(*stream).is_some_and(StreamState::ready))
            .map(|(_, q)| q.since + s.linger)
            .min();
        let due = states
            .values()
            .filter(|st| !st.looking)
            .map(|st| st.asked + STREAM_TTL)
            .min();
        tokio::select! {
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let CallDone { tag, stream, events, misplaced, refused_bytes } = done;
                *answered.entry(stream.clone()).or_default() += events;
                if let Some(n) = busy.get_mut(&stream) {
                    *n -= 1;
                    if *n == 0 {
                        busy.remove(&stream);
                    }
                }
                if let Some(n) = inflight_min.get_mut(&tag) {
                    *n -= 1;
                    if *n == 0 {
                        inflight_min.remove(&tag);
                    }
                }
                if let Some(st) = states.get_mut(&stream) {
                    if misplaced && s.aggregate {
                        tracing::info!(stream = %stream, "a record landed in another shard than the shard map says: reading the map again");
                        st.stale = true;
                    }
                    if let Some(bytes) = refused_bytes {
                        st.max_call_bytes = st.max_call_bytes.min((bytes / 2).max(MIN_CALL_BYTES));
                    }
                }
            }
            Some(looked) = lookups.next(), if !lookups.is_empty() => {
                let st = states.entry(looked.stream.clone()).or_insert_with(StreamState::new);
                st.looking = false;
                st.known = true;
                match looked.info {
                    Ok(info) => st.info = info,
                    Err(e) => tracing::warn!(stream = %looked.stream, error = %e, "could not read the stream's settings; assuming Kinesis' defaults (records of up to 1 MiB)"),
                }
                st.map = match looked.map {
                    Some(Ok(map)) => map.filter(|m| !m.is_empty()),
                    Some(Err(e)) => {
                        tracing::warn!(stream = %looked.stream, error = %e, "could not read the shard map; sending plain records, not aggregates");
                        None
                    }
                    None => None,
                };
                // The map is as fresh as the lookup: unless a call misplaced a record since.
                st.stale = false;
                s.limits
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(looked.stream.clone(), st.info.max_record_bytes);
            }
            cmd = rx.recv(), if open => match cmd {
                Some(Command::Record(p)) => {
                    received += 1;
                    states.entry(p.stream.clone()).or_insert_with(StreamState::new);
                    let q = queues.entry(p.stream.clone()).or_insert_with(|| Queue {
                        items: Default::default(),
                        bytes: 0,
                        since: Instant::now(),
                    });
                    if q.items.is_empty() {
                        q.since = Instant::now();
                    }
                    q.bytes += p.size();
                    q.items.push_back((received, p));
                }
                Some(Command::Flush(done)) => flushes.push((received, done)),
                Some(Command::Resharded(stream)) => {
                    if let Some(st) = states.get_mut(&stream) {
                        st.stale = true;
                    }
                }
                None => open = false,
            },
            _ = sleep_until(deadline), if deadline.is_some() && inflight.len() < MAX_IN_FLIGHT_CALLS => {}
            _ = sleep_until(due), if due.is_some() => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// An aggregate being filled for one shard, and the writers it answers.
struct Open {
    shard: String,
    agg: Aggregator,
    waiters: Vec<Waiter>,
}

impl Open {
    fn finish(mut self) -> Option<Unit> {
        let record = self.agg.finish()?;
        Some(Unit {
            record,
            waiters: self.waiters,
            shard: Some(self.shard),
        })
    }
}

impl Queue {
    fn is_full(&self, aggregate: bool, max_call_bytes: usize) -> bool {
        if aggregate {
            self.bytes >= max_call_bytes * 9 / 10
        } else {
            self.items.len() >= MAX_RECORDS_PER_PUT || self.bytes >= max_call_bytes
        }
    }

    /// Takes the oldest record out of the queue.
    fn pop(&mut self) -> Option<Pending> {
        let (_, p) = self.items.pop_front()?;
        self.bytes -= p.size();
        Some(p)
    }

    /// Takes the records of one call from the front, within `st`'s limits (records larger
    /// than the stream takes are answered at once); returns the smallest record number in it.
    /// With `aggregate` and a shard map, user records are packed into aggregates per shard.
    fn take_call(
        &mut self,
        st: &StreamState,
        aggregate: bool,
        counters: &Counters,
        now: Instant,
    ) -> (u64, Vec<Unit>) {
        let min = self.items.front().map_or(0, |i| i.0);
        let max_record = st.info.max_record_bytes;
        let max_call = st.max_call_bytes.min(MAX_BYTES_PER_PUT);
        let mut units: Vec<Unit> = Vec::new();
        let mut bytes = 0;
        match st.map.as_ref().filter(|_| aggregate) {
            Some(map) => {
                let agg_max = DEFAULT_AGGREGATE_MAX_BYTES.min(max_record);
                let mut open: Vec<Open> = Vec::new();
                // Bytes of the open aggregates, as they stand.
                let open_bytes = |open: &[Open]| open.iter().map(|o| o.agg.size()).sum::<usize>();
                let mut tag_text = String::new();
                while let Some((_, p)) = self.items.front() {
                    if p.wire_bytes > max_record {
                        if let Some(p) = self.pop() {
                            p.refuse_too_large(max_record, counters);
                        }
                        continue;
                    }
                    let (key, data) = (&p.record.partition_key, &p.record.data);
                    // A record whose identity is a tag carries it in the aggregate (it was
                    // checked at write time with its framing, so it is never sent plain).
                    let tags = p.tags(&mut tag_text);
                    let tags: &[(&str, Option<&str>)] = tags.as_ref().map_or(&[], |t| &t[..]);
                    let shard = map.shard_of_key(key).filter(|_| {
                        Aggregator::single_size_with_tags(key, data, tags) <= max_record
                    });
                    let Some(shard) = shard else {
                        // Too large for an aggregate's framing, or no shard known for its
                        // key (the map is changing): a plain record, which goes where its
                        // key says.
                        let room = p.wire_bytes;
                        let records = units.len() + open.len();
                        if records > 0
                            && (records >= MAX_RECORDS_PER_PUT
                                || bytes + open_bytes(&open) + room > max_call)
                        {
                            break;
                        }
                        let Some(p) = self.pop() else { break };
                        bytes += room;
                        units.push(Unit::plain(p));
                        continue;
                    };
                    let at = open.iter().position(|o| o.shard == shard);
                    let cost = match at {
                        Some(i) if open[i].agg.size_with_tags(key, data, tags) <= agg_max => {
                            open[i].agg.size_with_tags(key, data, tags) - open[i].agg.size()
                        }
                        // A new aggregate for the shard (its first record always fits one).
                        _ => Aggregator::single_size_with_tags(key, data, tags),
                    };
                    let records =
                        units.len()
                            + open.len()
                            + usize::from(at.is_none_or(|i| {
                                open[i].agg.size_with_tags(key, data, tags) > agg_max
                            }));
                    if (units.len() + open.len()) > 0
                        && (records > MAX_RECORDS_PER_PUT
                            || bytes + open_bytes(&open) + cost > max_call)
                    {
                        break;
                    }
                    let shard = shard.to_owned();
                    let fits =
                        at.filter(|&i| open[i].agg.size_with_tags(key, data, tags) <= agg_max);
                    let tags: Vec<(&str, Option<String>)> = tags
                        .iter()
                        .map(|(k, v)| (*k, v.map(str::to_owned)))
                        .collect();
                    let Some(p) = self.pop() else { break };
                    let i = match (fits, at) {
                        (Some(i), _) => i,
                        (None, Some(i)) => {
                            // This shard's aggregate is full: it goes, a new one starts.
                            let full = open.swap_remove(i);
                            if let Some(unit) = full.finish() {
                                bytes += unit.size();
                                units.push(unit);
                            }
                            open.push(Open {
                                shard,
                                agg: Aggregator::new(agg_max),
                                waiters: Vec::new(),
                            });
                            open.len() - 1
                        }
                        (None, None) => {
                            open.push(Open {
                                shard,
                                agg: Aggregator::new(agg_max),
                                waiters: Vec::new(),
                            });
                            open.len() - 1
                        }
                    };
                    let (record, waiter) = p.into_parts();
                    let tags: Vec<(&str, Option<&str>)> =
                        tags.iter().map(|(k, v)| (*k, v.as_deref())).collect();
                    open[i]
                        .agg
                        .try_push_with_tags(&record.partition_key, &record.data, &tags);
                    open[i].waiters.push(waiter);
                }
                units.extend(open.into_iter().filter_map(Open::finish));
            }
            None => {
                while let Some((_, p)) = self.items.front() {
                    let size = p.wire_bytes;
                    if size > max_record {
                        if let Some(p) = self.pop() {
                            p.refuse_too_large(max_record, counters);
                        }
                        continue;
                    }
                    if units.len() >= MAX_RECORDS_PER_PUT
                        || (!units.is_empty() && bytes + size > max_call)
                    {
                        break;
                    }
                    let Some(p) = self.pop() else { break };
                    bytes += size;
                    units.push(Unit::plain(p));
                }
            }
        }
        // The rest has waited as long as the records just taken.
        if self.items.is_empty() {
            self.since = now;
        }
        (min, units)
    }
}

/// The codes of a whole call refused for what it holds: retrying it as it is cannot succeed,
/// but its records may go in smaller calls, or all but the one at fault.
fn refused_for_content(code: &str) -> bool {
    matches!(
        code,
        code::REQUEST_TOO_LARGE
            | "ValidationException"
            | "InvalidArgumentException"
            | "SerializationException"
    )
}

/// Sends one call's records, retrying only the ones that failed, splitting a call refused for
/// its content, and answers every writer.
async fn send_call<B: Broker>(
    broker: Arc<B>,
    stream: Arc<str>,
    units: Vec<Unit>,
    (max_attempts, attempt_timeout): (u32, Duration),
    tag: u64,
    counters: Arc<Counters>,
    max_record: usize,
) -> CallDone {
    let total: u64 = units.iter().map(|u| u.waiters.len() as u64).sum();
    counters.events_sent.fetch_add(total, Ordering::Relaxed);
    let mut done = CallDone {
        tag,
        stream: stream.clone(),
        events: usize::try_from(total).unwrap_or(usize::MAX),
        misplaced: false,
        refused_bytes: None,
    };
    let call = Call {
        broker: &*broker,
        stream: &stream,
        max_attempts,
        attempt_timeout,
        counters: &counters,
        max_record,
    };
    call.send(units, &mut done).await;
    done
}

/// What sending a call (or a part of one) needs.
struct Call<'a, B> {
    broker: &'a B,
    stream: &'a str,
    max_attempts: u32,
    /// How long one attempt may take before it is given up (and its records sent again).
    attempt_timeout: Duration,
    counters: &'a Counters,
    max_record: usize,
}

impl<B: Broker> Call<'_, B> {
    /// Sends `units`, retrying the records that failed; a call refused for its content is
    /// split in halves, each sent on its own, down to the one record concerned.
    fn send<'a>(
        &'a self,
        mut units: Vec<Unit>,
        done: &'a mut CallDone,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
    where
        B: Broker,
    {
        Box::pin(async move {
            let counters = self.counters;
            let stream = self.stream;
            let mut backoff = Backoff::new(self.max_attempts);
            let events = |units: &[Unit]| units.iter().map(|u| u.waiters.len() as u64).sum::<u64>();
            loop {
                let records: Vec<PutRecord> = units.iter().map(|u| u.record.clone()).collect();
                let call_bytes: usize = units.iter().map(Unit::size).sum();
                counters.calls.fetch_add(1, Ordering::Relaxed);
                counters
                    .records_sent
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                let started = Instant::now();
                // A call that takes too long is abandoned and its records sent again: what
                // bounds the writer's retry span (`Config::write_retry_span`), whatever the
                // broker's own timeouts.
                let timeout = self.attempt_timeout;
                let result =
                    tokio::time::timeout(timeout, self.broker.put_records(stream, &records))
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::broker(
                        "PutRecords",
                        stream,
                        code::TIMEOUT,
                        format!("no answer within {timeout:?} (the records may have been stored)"),
                        true,
                    ))
                        });
                tracing::trace!(
                    stream = %stream,
                    records = records.len(),
                    elapsed = ?started.elapsed(),
                    "PutRecords"
                );
                let failure = match result {
                    Ok(outcomes) => {
                        let mut retry = Vec::new();
                        let mut last = None;
                        for (unit, outcome) in units.into_iter().zip(outcomes) {
                            match outcome {
                                PutOutcome::Stored { shard_id, .. } => {
                                    if unit.shard.as_ref().is_some_and(|s| *s != shard_id) {
                                        done.misplaced = true;
                                    }
                                    counters
                                        .events_acked
                                        .fetch_add(unit.waiters.len() as u64, Ordering::Relaxed);
                                    unit.answer(|| Ok(()))
                                }
                                PutOutcome::Failed { code, message }
                                    if is_retryable_code(&code) =>
                                {
                                    last = Some((code, message));
                                    retry.push(unit);
                                }
                                PutOutcome::Failed { code, message } => {
                                    counters
                                        .events_failed
                                        .fetch_add(unit.waiters.len() as u64, Ordering::Relaxed);
                                    let f = Failure::refused(stream, code, message, false);
                                    unit.answer(|| Err(f.error(1)));
                                }
                            }
                        }
                        units = retry;
                        match last {
                            None => return,
                            Some((code, message)) => Failure::refused(stream, code, message, true),
                        }
                    }
                    Err(e) => Failure::from_error(stream, e),
                };
                if !failure.retryable && refused_for_content(&failure.code) {
                    if failure.code == code::REQUEST_TOO_LARGE {
                        done.refused_bytes =
                            Some(done.refused_bytes.map_or(call_bytes, |b| b.min(call_bytes)));
                    }
                    if units.len() > 1 {
                        tracing::debug!(
                            stream = %stream,
                            records = units.len(),
                            code = %failure.code,
                            "PutRecords refused for its content: sending each half on its own"
                        );
                        let second = units.split_off(units.len() / 2);
                        self.send(units, done).await;
                        self.send(second, done).await;
                        return;
                    }
                    // The one record concerned: final, with why.
                    let size = call_bytes;
                    let failure = Failure {
                        message: format!(
                            "{}; retrying cannot help: Kinesis refuses this record as it is ({size} \
                             bytes with its partition key; the stream takes records of at most \
                             {} bytes)",
                            failure.message, self.max_record
                        ),
                        ..failure
                    };
                    counters
                        .events_failed
                        .fetch_add(events(&units), Ordering::Relaxed);
                    for unit in units {
                        unit.answer(|| Err(failure.error(1)));
                    }
                    return;
                }
                // Only a retryable failure uses up an attempt's delay (the count goes into the error).
                let delay = if failure.retryable {
                    backoff.next_delay()
                } else {
                    None
                };
                match delay {
                    Some(delay) => {
                        tracing::debug!(
                            stream = %stream,
                            records = units.len(),
                            code = %failure.code,
                            attempt = backoff.attempts(),
                            "PutRecords: retrying failed records in {delay:?}"
                        );
                        counters
                            .records_retried
                            .fetch_add(units.len() as u64, Ordering::Relaxed);
                        tokio::time::sleep(delay).await;
                    }
                    _ => {
                        let attempts = backoff.attempts();
                        tracing::warn!(
                            stream = %stream,
                            records = units.len(),
                            code = %failure.code,
                            attempts,
                            "PutRecords: records failed; their writers get the error"
                        );
                        counters
                            .events_failed
                            .fetch_add(events(&units), Ordering::Relaxed);
                        for unit in units {
                            unit.answer(|| Err(failure.error(attempts)));
                        }
                        return;
                    }
                }
            }
        })
    }
}

/// A failure to hand to many writers: each gets its own [`Error::Broker`], sharing the cause.
#[derive(Debug)]
struct Failure {
    stream: String,
    code: String,
    message: String,
    retryable: bool,
    source: Option<Source>,
}

impl Failure {
    /// A record Kinesis refused with `code` (no cause beyond the code and message).
    fn refused(stream: &str, code: String, message: String, retryable: bool) -> Failure {
        Failure {
            stream: stream.to_owned(),
            code,
            message,
            retryable,
            source: None,
        }
    }

    /// A whole call that failed with `e`.
    fn from_error(stream: &str, e: Error) -> Failure {
        let retryable = e.is_retryable();
        match e {
            Error::Broker {
                code,
                message,
                source,
                ..
            } => Failure {
                stream: stream.to_owned(),
                code,
                message,
                retryable,
                source,
            },
            other => Failure {
                stream: stream.to_owned(),
                code: other.code().unwrap_or(code::UNKNOWN).to_owned(),
                message: other.to_string(),
                retryable,
                source: Some(Arc::new(other)),
            },
        }
    }

    fn error(&self, attempts: u32) -> Error {
        Error::Broker {
            operation: "PutRecords",
            stream: self.stream.clone(),
            code: self.code.clone(),
            message: if attempts > 1 {
                format!("{} (after {attempts} attempts)", self.message)
            } else {
                self.message.clone()
            },
            retryable: self.retryable,
            source: self.source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::aggregate::{deaggregate, is_aggregated};
    use crate::broker::{hash_key, MAX_RECORD_BYTES};
    use bytes::Bytes;
    use tokio::sync::Semaphore;

    fn queue(records: &[(&str, usize)]) -> Queue {
        let permits = Arc::new(Semaphore::new(records.len()));
        let mut q = Queue {
            items: Default::default(),
            bytes: 0,
            since: Instant::now(),
        };
        for (n, &(key, len)) in records.iter().enumerate() {
            let (reply, _) = oneshot::channel();
            let p = Pending {
                stream: Arc::from("s"),
                table: "t",
                record: PutRecord {
                    partition_key: key.to_owned(),
                    data: Bytes::from(vec![b'x'; len]),
                },
                id_tag: None,
                wire_bytes: key.len() + len,
                reply,
                permit: permits
                    .clone()
                    .try_acquire_owned()
                    .expect("a permit per record"),
            };
            q.bytes += p.size();
            q.items.push_back((n as u64, p));
        }
        q
    }

    /// A known stream of `shards` shards splitting the hash key space evenly, records up to
    /// 1 MiB.
    fn stream(shards: u128) -> StreamState {
        let width = u128::MAX / shards;
        let map = ShardMap::new((0..shards).map(|i| {
            let end = if i + 1 == shards {
                u128::MAX
            } else {
                (i + 1) * width - 1
            };
            (i * width, end, format!("shard-{i}"))
        }));
        StreamState {
            map: Some(map),
            known: true,
            ..StreamState::new()
        }
    }

    /// The user records a call carries, in order, as (partition key, data length).
    fn carried(units: &[Unit]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for u in units {
            let r = &u.record;
            if is_aggregated(&r.data) {
                for user in deaggregate(&r.partition_key, &r.data).expect("a valid aggregate") {
                    out.push((user.partition_key, user.data.len()));
                }
            } else {
                out.push((r.partition_key.clone(), r.data.len()));
            }
        }
        out
    }

    #[test]
    fn a_record_that_fits_only_without_framing_goes_plain_among_aggregates() {
        // 1 MiB minus the key and 10 bytes: fits Kinesis plain, not inside an aggregate.
        let near = MAX_RECORD_BYTES - 10 - 1;
        assert!(Aggregator::single_size("k", &vec![0; near]) > MAX_RECORD_BYTES);
        let mut q = queue(&[("a", 100), ("k", near), ("b", 200), ("c", 300)]);
        let (_, units) = q.take_call(&stream(1), true, &Counters::default(), Instant::now());
        let mut got = carried(&units);
        got.sort();
        assert_eq!(
            got,
            [("a", 100), ("b", 200), ("c", 300), ("k", near)].map(|(k, n)| (k.to_owned(), n))
        );
        assert_eq!(units.len(), 2, "one aggregate and the plain record");
        assert!(units.iter().any(|u| !is_aggregated(&u.record.data)));
        for u in &units {
            assert!(u.record.data.len() + u.record.partition_key.len() <= MAX_RECORD_BYTES);
        }
        assert!(q.items.is_empty() && q.bytes == 0);
    }

    #[test]
    fn an_aggregated_call_stays_within_the_call_limit_with_large_records() {
        // Records of 900 KiB: each is an aggregate of its own; ten would exceed 10 MiB.
        let big = 900 * 1024;
        let mut q = queue(&[("k", big); 14]);
        let mut calls = Vec::new();
        while !q.items.is_empty() {
            let (_, units) = q.take_call(&stream(1), true, &Counters::default(), Instant::now());
            assert!(!units.is_empty(), "every call takes something");
            let bytes: usize = units.iter().map(Unit::size).sum();
            assert!(bytes <= MAX_BYTES_PER_PUT, "{bytes} bytes in one call");
            calls.push(carried(&units).len());
        }
        assert_eq!(
            calls.iter().sum::<usize>(),
            14,
            "every record once: {calls:?}"
        );
    }

    /// Every user record of an aggregate hashes into the shard the aggregate was built for
    /// (and is sent with a key of that shard), over many random keys and shard counts.
    #[test]
    fn aggregates_hold_records_of_one_shard() {
        for shards in [1, 2, 3, 8] {
            let st = stream(shards);
            let map = st.map.clone().unwrap();
            let keys: Vec<String> = (0..3000).map(|i| format!("key-{i}-{shards}")).collect();
            let records: Vec<(&str, usize)> = keys
                .iter()
                .map(|k| (k.as_str(), rand::random_range(10..2000)))
                .collect();
            let mut q = queue(&records);
            let mut seen = 0;
            while !q.items.is_empty() {
                let (_, units) = q.take_call(&st, true, &Counters::default(), Instant::now());
                let bytes: usize = units.iter().map(Unit::size).sum();
                assert!(bytes <= MAX_BYTES_PER_PUT && units.len() <= MAX_RECORDS_PER_PUT);
                for u in &units {
                    let shard = u.shard.as_deref().expect("an aggregate");
                    assert_eq!(map.shard_of_key(&u.record.partition_key), Some(shard));
                    let (start, end) = map.range_of(shard).unwrap();
                    for user in deaggregate(&u.record.partition_key, &u.record.data).unwrap() {
                        let h = hash_key(&user.partition_key);
                        assert!(
                            start <= h && h <= end,
                            "{} outside {shard}",
                            user.partition_key
                        );
                        seen += 1;
                    }
                }
            }
            assert_eq!(seen, 3000);
        }
    }

    /// An event whose identity is a tag keeps it in whatever its record becomes: a user record
    /// of its shard's aggregate, or, with no shard map (records then go alone), a KPL record of
    /// its own; its partition key stays the user's either way.
    #[test]
    fn identity_tags_ride_along_aggregated_or_alone() {
        let ids = crate::identity::RecordIds::new();
        let tagged = |q: &mut Queue| {
            let mut expected = Vec::new();
            for (_, p) in q.items.iter_mut() {
                let id = ids.next_id();
                p.id_tag = Some(id);
                p.wire_bytes = Aggregator::single_size_with_tags(
                    &p.record.partition_key,
                    &p.record.data,
                    &[(TAG_KEY, Some(&id.to_text()))],
                );
                expected.push((p.record.partition_key.clone(), id.to_text()));
            }
            expected
        };
        let tags_of = |units: &[Unit]| {
            let mut out = Vec::new();
            for u in units {
                assert!(is_aggregated(&u.record.data), "a tagged record goes framed");
                for user in deaggregate(&u.record.partition_key, &u.record.data).unwrap() {
                    let [(k, Some(v))] = &user.tags[..] else {
                        panic!("{:?}", user.tags)
                    };
                    assert_eq!(k, TAG_KEY);
                    out.push((user.partition_key, v.clone()));
                }
            }
            out.sort();
            out
        };
        for st in [stream(2), StreamState::new()] {
            let mut q = queue(&[("user-1", 100), ("user-2", 200), ("user-1", 50)]);
            let mut expected = tagged(&mut q);
            expected.sort();
            let (_, units) = q.take_call(&st, true, &Counters::default(), Instant::now());
            assert_eq!(tags_of(&units), expected);
            if st.map.is_none() {
                assert_eq!(units.len(), 3, "alone, each in a record of its own");
                for u in &units {
                    assert_eq!(u.size(), {
                        let users = deaggregate(&u.record.partition_key, &u.record.data).unwrap();
                        Aggregator::single_size_with_tags(
                            &users[0].partition_key,
                            &users[0].data,
                            &[(TAG_KEY, users[0].tags[0].1.as_deref())],
                        )
                    });
                }
            }
        }
    }

    /// A record larger than the stream takes is answered at once, never sent; the stream's own
    /// limit decides, and the others go.
    #[test]
    fn records_over_the_streams_limit_are_refused_at_once() {
        let counters = Counters::default();
        for aggregate in [false, true] {
            let mut st = stream(2);
            st.info.max_record_bytes = 2 * 1024 * 1024;
            let mut q = queue(&[("a", 1500 * 1024), ("b", 3 * 1024 * 1024), ("c", 10)]);
            let (_, units) = q.take_call(&st, aggregate, &counters, Instant::now());
            let mut got: Vec<_> = carried(&units).into_iter().map(|(k, _)| k).collect();
            got.sort();
            assert_eq!(got, ["a", "c"]);
        }
        assert_eq!(counters.events_failed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_smaller_call_size_is_kept() {
        let mut st = stream(1);
        st.max_call_bytes = 3 * 1024 * 1024;
        for aggregate in [false, true] {
            let mut q = queue(&[("k", 900 * 1024); 8]);
            let (_, units) = q.take_call(&st, aggregate, &Counters::default(), Instant::now());
            let bytes: usize = units.iter().map(Unit::size).sum();
            assert!(bytes <= st.max_call_bytes, "{bytes}");
            assert_eq!(units.len(), 3);
        }
    }
}
