//! The batcher: one task per client that coalesces records from every writer into PutRecords
//! calls, sends them, retries the records that failed, and answers each writer.
//!
//! A record waits in its stream's queue until the queue holds a full call (500 records or
//! 10 MiB), or it has lingered for the configured time, or a flush asks for it, or the stream
//! is idle (no call under way) and as many records wait as the stream's last calls answered.
//! The last rule makes the batcher self-clocking: an idle client with one writer adds no
//! latency, and writers that write again once answered are gathered into one call instead of
//! the first of them leaving alone. At most
//! [`MAX_IN_FLIGHT_CALLS`] calls (each with its own retries) are under way at once; records
//! beyond that wait in the queue, and the client's bounded buffer pushes back on writers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::broker::aggregate::{Aggregator, DEFAULT_AGGREGATE_MAX_BYTES};
use crate::broker::{
    Broker, PutOutcome, PutRecord, MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, MAX_RECORD_BYTES,
};
use crate::error::{code, Error, Result, Source};
use crate::identity::{RecordId, TAG_KEY};
use crate::retry::{is_retryable_code, Backoff};

/// At most this many PutRecords calls (with their retries) are under way at once per client.
pub(crate) const MAX_IN_FLIGHT_CALLS: usize = 16;

/// One accepted record waiting for its acknowledgement.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) stream: Arc<str>,
    pub(crate) record: PutRecord,
    /// The record's identity, for the KPL tag of its user record when it is aggregated (its
    /// partition key is the user's; see `client::identity`).
    pub(crate) id_tag: Option<RecordId>,
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
}

/// What writers send the batcher.
#[derive(Debug)]
pub(crate) enum Command {
    /// A record to send.
    Record(Pending),
    /// Answer once every record sent before this command was answered.
    Flush(oneshot::Sender<()>),
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
}

impl Unit {
    /// A record sent as it is, answering its one writer.
    fn plain(p: Pending) -> Unit {
        let (record, waiter) = p.into_parts();
        Unit {
            record,
            waiters: vec![waiter],
        }
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

/// Runs until every client handle is gone and every record is answered.
pub(crate) async fn run<B: Broker + 'static>(
    broker: Arc<B>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    s: Settings,
) {
    let mut queues: HashMap<Arc<str>, Queue> = HashMap::new();
    let mut inflight = FuturesUnordered::new();
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
        // Send what is ready: full calls, lingered records, or everything when flushing/closing.
        let now = Instant::now();
        let force = !flushes.is_empty() || !open;
        for (stream, q) in queues.iter_mut() {
            while inflight.len() < MAX_IN_FLIGHT_CALLS
                && !q.items.is_empty()
                && (force
                    || q.is_full(s.aggregate)
                    || now >= q.since + s.linger
                    || (!busy.contains_key(stream)
                        && q.items.len() >= answered.get(stream).copied().unwrap_or(0)))
            {
                answered.remove(stream);
                let (min, units) = q.take_call(s.aggregate, now);
                *inflight_min.entry(min).or_default() += 1;
                *busy.entry(stream.clone()).or_default() += 1;
                inflight.push(send_call(
                    broker.clone(),
                    stream.clone(),
                    units,
                    (s.max_attempts, s.attempt_timeout),
                    min,
                    s.counters.clone(),
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
        let deadline = queues.values().map(|q| q.since + s.linger).min();
        tokio::select! {
            Some((min, stream, events)) = inflight.next(), if !inflight.is_empty() => {
                *answered.entry(stream.clone()).or_default() += events;
                if let Some(n) = busy.get_mut(&stream) {
                    *n -= 1;
                    if *n == 0 {
                        busy.remove(&stream);
                    }
                }
                if let Some(n) = inflight_min.get_mut(&min) {
                    *n -= 1;
                    if *n == 0 {
                        inflight_min.remove(&min);
                    }
                }
            }
            cmd = rx.recv(), if open => match cmd {
                Some(Command::Record(p)) => {
                    received += 1;
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
                None => open = false,
            },
            _ = sleep_until(deadline), if deadline.is_some() && inflight.len() < MAX_IN_FLIGHT_CALLS => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Queue {
    fn is_full(&self, aggregate: bool) -> bool {
        if aggregate {
            self.bytes >= MAX_BYTES_PER_PUT * 9 / 10
        } else {
            self.items.len() >= MAX_RECORDS_PER_PUT || self.bytes >= MAX_BYTES_PER_PUT
        }
    }

    /// Takes the oldest record out of the queue.
    fn pop(&mut self) -> Option<Pending> {
        let (_, p) = self.items.pop_front()?;
        self.bytes -= p.size();
        Some(p)
    }

    /// Takes the records of one call from the front; returns the smallest record number in it.
    fn take_call(&mut self, aggregate: bool, now: Instant) -> (u64, Vec<Unit>) {
        let min = self.items.front().map_or(0, |i| i.0);
        let mut units: Vec<Unit> = Vec::new();
        let mut bytes = 0;
        if aggregate {
            let mut agg = Aggregator::new(DEFAULT_AGGREGATE_MAX_BYTES);
            let mut waiters = Vec::new();
            let mut tag_text = String::new();
            while let Some((_, p)) = self.items.front() {
                let tags = p.tags(&mut tag_text);
                let tags: &[(&str, Option<&str>)] = tags.as_ref().map_or(&[], |t| &t[..]);
                if agg.is_empty() {
                    // A new aggregate: its first record always goes in, so the call must have
                    // room for the aggregate at its largest. A record that fits Kinesis only
                    // without the aggregate's framing (checked at write time) goes alone, as a
                    // plain record, which the loader reads as well (never one whose identity
                    // is a tag: it was checked with its framing).
                    let single = Aggregator::single_size_with_tags(
                        &p.record.partition_key,
                        &p.record.data,
                        tags,
                    );
                    let plain = single > MAX_RECORD_BYTES;
                    let room = if plain {
                        p.size()
                    } else {
                        single.max(DEFAULT_AGGREGATE_MAX_BYTES)
                    };
                    if !units.is_empty()
                        && (units.len() >= MAX_RECORDS_PER_PUT || bytes + room > MAX_BYTES_PER_PUT)
                    {
                        break;
                    }
                    if plain {
                        let Some(p) = self.pop() else { break };
                        bytes += p.size();
                        units.push(Unit::plain(p));
                        continue;
                    }
                }
                if agg.try_push_with_tags(&p.record.partition_key, &p.record.data, tags) {
                    let Some(p) = self.pop() else { break };
                    waiters.push(p.into_parts().1);
                    continue;
                }
                // This aggregate is full: close it; the next one checks the call's room.
                let Some(record) = agg.finish() else { break };
                bytes += record.data.len() + record.partition_key.len();
                units.push(Unit {
                    record,
                    waiters: std::mem::take(&mut waiters),
                });
            }
            if let Some(record) = agg.finish() {
                units.push(Unit { record, waiters });
            }
        } else {
            while let Some((_, p)) = self.items.front() {
                let size = p.size();
                if units.len() >= MAX_RECORDS_PER_PUT
                    || (!units.is_empty() && bytes + size > MAX_BYTES_PER_PUT)
                {
                    break;
                }
                let Some(p) = self.pop() else { break };
                bytes += size;
                units.push(Unit::plain(p));
            }
        }
        // The rest has waited as long as the records just taken.
        if self.items.is_empty() {
            self.since = now;
        }
        (min, units)
    }
}

/// Sends one call's records, retrying only the ones that failed, and answers every writer.
/// Returns `tag`, the stream and how many events it answered when done.
async fn send_call<B: Broker>(
    broker: Arc<B>,
    stream: Arc<str>,
    mut units: Vec<Unit>,
    (max_attempts, attempt_timeout): (u32, Duration),
    tag: u64,
    counters: Arc<Counters>,
) -> (u64, Arc<str>, usize) {
    let mut backoff = Backoff::new(max_attempts);
    let events = |units: &[Unit]| units.iter().map(|u| u.waiters.len() as u64).sum::<u64>();
    let total = events(&units);
    counters.events_sent.fetch_add(total, Ordering::Relaxed);
    let total = total as usize;
    loop {
        let records: Vec<PutRecord> = units.iter().map(|u| u.record.clone()).collect();
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .records_sent
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        // A call that takes too long is abandoned and its records sent again: what bounds the
        // writer's retry span (`Config::write_retry_span`), whatever the broker's own timeouts.
        let result = tokio::time::timeout(attempt_timeout, broker.put_records(&stream, &records))
            .await
            .unwrap_or_else(|_| {
                Err(Error::broker(
                    "PutRecords",
                    &*stream,
                    code::TIMEOUT,
                    format!(
                        "no answer within {attempt_timeout:?} (the records may have been stored)"
                    ),
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
                        PutOutcome::Stored { .. } => {
                            counters
                                .events_acked
                                .fetch_add(unit.waiters.len() as u64, Ordering::Relaxed);
                            unit.answer(|| Ok(()))
                        }
                        PutOutcome::Failed { code, message } if is_retryable_code(&code) => {
                            last = Some((code, message));
                            retry.push(unit);
                        }
                        PutOutcome::Failed { code, message } => {
                            counters
                                .events_failed
                                .fetch_add(unit.waiters.len() as u64, Ordering::Relaxed);
                            let f = Failure::refused(&stream, code, message, false);
                            unit.answer(|| Err(f.error(1)));
                        }
                    }
                }
                units = retry;
                match last {
                    None => return (tag, stream, total),
                    Some((code, message)) => Failure::refused(&stream, code, message, true),
                }
            }
            Err(e) => Failure::from_error(&stream, e),
        };
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
                return (tag, stream, total);
            }
        }
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
                record: PutRecord {
                    partition_key: key.to_owned(),
                    data: Bytes::from(vec![b'x'; len]),
                },
                id_tag: None,
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
        let (_, units) = q.take_call(true, Instant::now());
        assert_eq!(
            carried(&units),
            [("a", 100), ("k", near), ("b", 200), ("c", 300)].map(|(k, n)| (k.to_owned(), n))
        );
        assert_eq!(units.len(), 3, "aggregate, plain record, aggregate");
        assert!(!is_aggregated(&units[1].record.data));
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
            let (_, units) = q.take_call(true, Instant::now());
            assert!(!units.is_empty(), "every call takes something");
            let bytes: usize = units
                .iter()
                .map(|u| u.record.data.len() + u.record.partition_key.len())
                .sum();
            assert!(bytes <= MAX_BYTES_PER_PUT, "{bytes} bytes in one call");
            calls.push(carried(&units).len());
        }
        assert_eq!(
            calls.iter().sum::<usize>(),
            14,
            "every record once: {calls:?}"
        );
    }
}
