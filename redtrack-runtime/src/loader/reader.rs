//! Reading: every shard from its checkpoint, several at once, within the load's budget of
//! records, bytes and time, handing chunks of records to the stager.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use chrono::NaiveDateTime;

use crate::broker::{Broker, SequenceNumber, ShardInfo, ShardReader, StartingPosition};
use crate::error::Result;
use crate::hooks::{pause_at, Phase};
use crate::loader::checkpoint::{Position, ShardRange};
use crate::loader::retention::may_have_lost;
use crate::loader::staging::Chunk;
use crate::loader::DataLoss;

/// Empty batches in a row, while the shard claims to be behind, before the reader gives up for
/// this load.
const MAX_EMPTY_BATCHES: u32 = 5;

/// What is left of a load's limits, shared by the shard readers.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) deadline: Instant,
    /// Set once a limit was hit: more records may be waiting.
    pub(crate) exhausted: bool,
    /// Counts the records taken, for progress displays ([`crate::Loader::records_read`]).
    pub(crate) progress: Arc<std::sync::atomic::AtomicU64>,
}

impl Budget {
    /// How many of `records` (by count and bytes) fit; takes them from the budget.
    fn take(&mut self, records: &[crate::broker::StoredRecord]) -> usize {
        let mut n = 0;
        for r in records {
            let size = r.data.len() as u64;
            if self.records == 0 || (self.bytes < size && n > 0) {
                self.exhausted = true;
                break;
            }
            self.records -= 1;
            self.bytes = self.bytes.saturating_sub(size);
            n += 1;
        }
        if self.bytes == 0 {
            self.exhausted = true;
        }
        self.progress
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        n
    }

    /// Whether the load must stop reading: a limit was reached. Then more may be waiting
    /// (`exhausted`), also when the limit was reached exactly, with no record refused.
    fn done(&mut self) -> bool {
        if Instant::now() >= self.deadline || self.records == 0 || self.bytes == 0 {
            self.exhausted = true;
        }
        self.exhausted
    }
}

/// One shard to read in this load.
#[derive(Debug, Clone)]
pub(crate) struct ShardPlan {
    /// The shard's index in the load (for [`Chunk::shard`]).
    pub(crate) index: usize,
    pub(crate) shard: ShardInfo,
    /// Where its loads reached, if it was ever loaded.
    pub(crate) position: Option<Position>,
}

impl ShardPlan {
    /// The last loaded sequence number, if any.
    pub(crate) fn checkpoint(&self) -> Option<&SequenceNumber> {
        self.position.as_ref().map(|p| &p.sequence_number)
    }
}

/// What reading one shard found.
#[derive(Debug, Default)]
pub(crate) struct ShardRead {
    /// The shard's index in the load ([`ShardPlan::index`]).
    pub(crate) index: usize,
    pub(crate) range: Option<ShardRange>,
    pub(crate) loss: Option<DataLoss>,
    pub(crate) calls: u64,
    /// The shard is closed and this load read it to its end.
    pub(crate) reached_end: bool,
    /// When the call that found the shard's tip (or its end) began, UTC: no record after the
    /// last one read existed before then. `None` if the load stopped short of the tip.
    pub(crate) caught_up_at: Option<NaiveDateTime>,
    /// The record right after the last one read, when a limit left it for the next load.
    pub(crate) next: Option<SequenceNumber>,
}

/// Whether a shard has nothing left to load: closed, and loaded up to its last record.
pub(crate) fn shard_done(shard: &ShardInfo, checkpoint: Option<&SequenceNumber>) -> bool {
    match (&shard.ending_sequence_number, checkpoint) {
        (Some(end), Some(cp)) => cp >= end,
        _ => false,
    }
}

/// Reads one shard from its checkpoint until caught up, closed, or out of budget, by its
/// reader's [`ReadPolicy`](crate::broker::ReadPolicy).
pub(crate) async fn read_shard<B: Broker>(
    broker: &B,
    stream: &str,
    plan: ShardPlan,
    budget: Arc<Mutex<Budget>>,
    tx: mpsc::Sender<Chunk>,
    accept_data_loss: bool,
) -> Result<ShardRead> {
    let shard_id = plan.shard.shard_id.as_str();
    let mut out = ShardRead {
        index: plan.index,
        ..ShardRead::default()
    };
    let mut from = match plan.checkpoint() {
        Some(cp) => StartingPosition::AfterSequenceNumber(cp.clone()),
        None => StartingPosition::TrimHorizon,
    };
    // Read from the trim horizon after a gap: the first record read must be the one the probe
    // found (else it too expired unread meanwhile).
    let mut expected_first = None;

    // Records after the checkpoint gone? Then only loaded ones may have expired, or unread
    // ones too: the data-loss rule (`retention`) decides.
    if let Some(position) = &plan.position {
        let mut probe = broker
            .read_shard(stream, shard_id, StartingPosition::TrimHorizon)
            .await?;
        let batch = probe.next_batch(1).await?;
        out.calls += 1;
        if let Some(first) = batch.records.first() {
            if first.sequence_number > position.sequence_number {
                // Everything still in the shard lies after the checkpoint.
                from = StartingPosition::TrimHorizon;
                expected_first = Some(first.sequence_number.clone());
                let retention = broker.stream_info(stream).await?.retention;
                let now = chrono::Utc::now().naive_utc();
                if may_have_lost(position, &first.sequence_number, retention, now) {
                    let loss = DataLoss {
                        stream: stream.to_owned(),
                        shard_id: shard_id.to_owned(),
                        after: position.sequence_number.clone(),
                        first_available: first.sequence_number.clone(),
                    };
                    report_loss(&loss, accept_data_loss)?;
                    out.loss = Some(loss);
                    expected_first = None;
                } else {
                    tracing::debug!(
                        stream,
                        shard = shard_id,
                        checkpoint = %position.sequence_number,
                        first_available = %first.sequence_number,
                        "only loaded records expired from the shard; reading from its trim horizon"
                    );
                }
            }
        }
    }

    let mut reader = broker.read_shard(stream, shard_id, from).await?;
    let policy = reader.read_policy();
    let mut empty = 0u32;
    let mut paused = false;
    loop {
        let limit = {
            let mut b = budget.lock().unwrap_or_else(|p| p.into_inner());
            if b.done() {
                break;
            }
            usize::try_from(b.records)
                .unwrap_or(usize::MAX)
                .min(policy.records_per_call)
        };
        let started = Instant::now();
        let call_started_at = chrono::Utc::now().naive_utc();
        let batch = reader.next_batch(limit).await?;
        out.calls += 1;
        if let Some(first) = batch.records.first() {
            let expected = expected_first.take();
            if expected.is_some_and(|e| first.sequence_number > e) {
                // The probe's record expired unread between the probe and this read.
                let loss = DataLoss {
                    stream: stream.to_owned(),
                    shard_id: shard_id.to_owned(),
                    after: plan.checkpoint().cloned().unwrap_or_default(),
                    first_available: first.sequence_number.clone(),
                };
                report_loss(&loss, accept_data_loss)?;
                out.loss = Some(loss);
            }
        }
        if batch.records.is_empty() {
            if batch.shard_end {
                out.reached_end = true;
                out.caught_up_at = Some(call_started_at);
                break;
            }
            if batch.millis_behind_latest.unwrap_or(0) <= 0 {
                out.caught_up_at = Some(call_started_at);
                break;
            }
            empty += 1;
            if empty >= MAX_EMPTY_BATCHES {
                break;
            }
        } else {
            empty = 0;
            // Caught up with the tip as it was (a short batch, not behind): stop, so a load
            // ends while writers go on. (Emulators report 0 ms behind even when they are not,
            // so a full batch always reads on.)
            let caught_up =
                batch.records.len() < limit && batch.millis_behind_latest.unwrap_or(0) <= 0;
            let mut records = batch.records;
            let n = {
                let mut b = budget.lock().unwrap_or_else(|p| p.into_inner());
                b.take(&records)
            };
            let cut = n < records.len();
            if let Some(next) = records.get(n) {
                out.next = Some(next.sequence_number.clone());
            }
            records.truncate(n);
            if let (Some(first), Some(last)) = (records.first(), records.last()) {
                let range = out.range.get_or_insert_with(|| ShardRange {
                    shard_id: shard_id.to_owned(),
                    first: first.sequence_number.clone(),
                    last: SequenceNumber::default(),
                    records: 0,
                });
                range.last = last.sequence_number.clone();
                range.records += records.len() as u64;
                if tx
                    .send(Chunk {
                        shard: plan.index,
                        records,
                    })
                    .await
                    .is_err()
                {
                    // The stager stopped (and reports why).
                    break;
                }
                if !paused {
                    paused = true;
                    pause_at(Phase::Read).await;
                }
            }
            if cut {
                break;
            }
            if caught_up && !batch.shard_end {
                out.caught_up_at = Some(call_started_at);
                break;
            }
        }
        if batch.shard_end {
            out.reached_end = true;
            out.caught_up_at = Some(call_started_at);
            break;
        }
        let spent = started.elapsed();
        if spent < policy.min_call_interval {
            tokio::time::sleep(policy.min_call_interval - spent).await;
        }
    }
    // A closed shard read to its end is recorded as loaded up to its ending sequence number
    // (no record lies beyond the last one read), so later loads skip it.
    if out.reached_end {
        if let Some(end) = &plan.shard.ending_sequence_number {
            match &mut out.range {
                Some(range) => range.last = end.clone(),
                None => {
                    let at_end = plan.checkpoint().is_some_and(|cp| cp >= end);
                    if !at_end {
                        out.range = Some(ShardRange {
                            shard_id: shard_id.to_owned(),
                            first: end.clone(),
                            last: end.clone(),
                            records: 0,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Logs a loss loudly; the error unless the loader accepts losses.
fn report_loss(loss: &DataLoss, accept_data_loss: bool) -> Result<()> {
    tracing::error!(
        stream = %loss.stream,
        shard = %loss.shard_id,
        after = %loss.after,
        first_available = %loss.first_available,
        "DATA LOSS: records were trimmed from the shard before they were loaded"
    );
    if accept_data_loss {
        Ok(())
    } else {
        Err(loss.clone().into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::StoredRecord;
    use bytes::Bytes;
    use std::time::Duration;

    fn recs(n: usize, size: usize) -> Vec<StoredRecord> {
        (0..n)
            .map(|i| StoredRecord {
                sequence_number: (i as u64).into(),
                partition_key: "k".into(),
                data: Bytes::from(vec![b'x'; size]),
                approximate_arrival_timestamp: None,
            })
            .collect()
    }

    #[test]
    fn budget_cuts_batches() {
        let mut b = Budget {
            records: 5,
            bytes: u64::MAX,
            deadline: Instant::now() + Duration::from_secs(60),
            exhausted: false,
            progress: Default::default(),
        };
        assert_eq!(b.take(&recs(3, 10)), 3);
        assert_eq!(b.take(&recs(3, 10)), 2);
        assert!(b.done());
        let mut b = Budget {
            records: 100,
            bytes: 25,
            deadline: Instant::now() + Duration::from_secs(60),
            exhausted: false,
            progress: Default::default(),
        };
        assert_eq!(b.take(&recs(5, 10)), 2);
        assert!(b.exhausted);
        // One record always fits, however large, so a load makes progress.
        let mut b = Budget {
            records: 100,
            bytes: 5,
            deadline: Instant::now() + Duration::from_secs(60),
            exhausted: false,
            progress: Default::default(),
        };
        assert_eq!(b.take(&recs(2, 10)), 1);
    }

    #[test]
    fn closed_and_loaded_shards_are_done() {
        let mut s = ShardInfo {
            shard_id: "s".into(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            starting_sequence_number: "1".into(),
            ending_sequence_number: Some("100".into()),
        };
        assert!(shard_done(&s, Some(&"100".into())));
        assert!(!shard_done(&s, Some(&"99".into())));
        assert!(!shard_done(&s, None));
        s.ending_sequence_number = None;
        assert!(!shard_done(&s, Some(&"100".into())));
    }
}
