//! The one transaction of a load: LOCK the event table; checkpoints unchanged?; no overlap?;
//! the record identities (`dedupe`); COPY; INSERT the ranges and the rejects; COMMIT. Any
//! failure rolls everything back (the transaction is dropped), so a range is recorded exactly
//! when its rows are loaded.
//!
//! The lock is the event table's, so loads (and re-drives) of one table take turns and loads of
//! different tables run side by side. With it held no other load of the table can commit, so
//! what the loads of all tables share is read on a connection of its own: the transaction only
//! *writes* `kinesis_loads` and `redtrack_load_rejects` (plain INSERTs), and reads nothing but
//! the table's own `redtrack_ids_<table>`. Two loads of different tables therefore never form a
//! read/write conflict (Redshift's error 1023 under SERIALIZABLE, page `c_serial_isolation`),
//! nor make readers of `kinesis_loads` wait.

use std::collections::HashMap;

use super::checkpoint::{
    read_checkpoints, timestamp_text, CaughtUp, Checkpoint, RangeMark, ShardRange, CAUGHT_UP_SQL,
    INSERT_RANGE_SQL, OVERLAP_SQL,
};
use super::dedupe::{self, DedupeCommit};
use super::rejects::{keep_rejects, REJECTED};
use crate::error::{Error, RejectedRow, Result};
use crate::hooks::{pause_at, Phase};
use crate::retry::Backoff;
use crate::schema::{TableSchema, KINESIS_LOADS};
use crate::stage::Stage;
use crate::warehouse::{column, db_error, CopyOutcome, CopyRequest, Warehouse};

/// The current time as a `TIMESTAMP` literal's text, UTC.
pub(crate) fn now_text() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// How many times a statement on the side connection is tried when the warehouse answers with
/// a transient error.
const SIDE_ATTEMPTS: u32 = 5;

/// Runs `statement` (one statement in autocommit, built anew by each call) until it succeeds,
/// fails with an error that is not transient, or `attempts` are used up, waiting out a
/// [`Backoff`] between tries: a transient answer of the warehouse (Redshift's 1023 under
/// SERIALIZABLE among them, see [`Error::is_retryable`]) is tried again. `what` names it in
/// the debug log of each retry.
pub(crate) async fn retry_transient<T, F, Fut>(
    attempts: u32,
    what: &str,
    mut statement: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(attempts);
    loop {
        match (statement().await, backoff.next_delay()) {
            (Err(e), Some(delay)) if e.is_retryable() => {
                tracing::debug!(error = %e, "retrying {what}");
                tokio::time::sleep(delay).await;
            }
            (done, _) => return done,
        }
    }
}

/// A transaction holding the lock on event table `table` (`warehouse`'s LOCK statement): the
/// loads, re-drives and markings of quiet shards of one table take turns on it.
pub(crate) async fn begin_locked<'c, W: Warehouse>(
    client: &'c mut tokio_postgres::Client,
    warehouse: &W,
    table: &TableSchema,
) -> Result<tokio_postgres::Transaction<'c>> {
    let txn = client
        .transaction()
        .await
        .map_err(|e| db_error("BEGIN", e))?;
    txn.batch_execute(&warehouse.lock_sql(table))
        .await
        .map_err(|e| db_error(&format!("locking {}", table.name), e))?;
    Ok(txn)
}

/// What the commit transaction needs.
pub(crate) struct Commit<'a> {
    pub(crate) stream: &'a str,
    pub(crate) table: &'a str,
    /// The checkpoints as they were when reading began.
    pub(crate) expected: &'a HashMap<String, Checkpoint>,
    /// The ranges read, one per shard that had records.
    pub(crate) ranges: &'a [ShardRange],
    /// What each range's row records beyond it, by shard.
    pub(crate) marks: &'a HashMap<String, RangeMark>,
    /// Quiet shards to mark as caught up at their checkpoints.
    pub(crate) caught_up: &'a [CaughtUp],
    /// Records rejected before staging (see `validate`).
    pub(crate) staging_rejects: Vec<RejectedRow>,
    /// The COPY, with `max_errors` the load's whole budget of rejects.
    pub(crate) copy: CopyRequest,
    /// The dedupe step's part of the transaction.
    pub(crate) dedupe: DedupeCommit<'a>,
}

/// Runs the transaction of `commit` with `warehouse`'s COPY of files in `stage`; the outcome of
/// the COPY, with the staging rejects among its rejected rows.
///
/// Fails with [`Error::LoadConflict`] (nothing loaded, retryable) if another loader moved a
/// checkpoint of these shards since this load read them, or recorded an overlapping range; with
/// [`Error::LoadRejected`] if the rejects exceed MAXERROR.
pub(crate) async fn commit_load<W: Warehouse, S: Stage>(
    client: &mut tokio_postgres::Client,
    warehouse: &W,
    stage: &S,
    mut commit: Commit<'_>,
) -> Result<CopyOutcome> {
    let txn = begin_locked(client, warehouse, commit.copy.table).await?;

    // Another loader may have loaded these shards since this one read its checkpoints; under
    // the table's lock every load of it that will ever commit before this one has committed.
    let side = warehouse.connect().await?;
    let now = read_checkpoints(&side, commit.stream).await?;
    for range in commit.ranges {
        let before = commit
            .expected
            .get(&range.shard_id)
            .map(|c| &c.sequence_number);
        let after = now.get(&range.shard_id).map(|c| &c.sequence_number);
        let same = before == after;
        if !same {
            return Err(Error::LoadConflict {
                table: commit.table.to_owned(),
                message: format!(
                    "shard `{}` of `{}` was loaded up to {} by another loader (this load read from {})",
                    range.shard_id,
                    commit.stream,
                    after.map_or("nothing", |s| s.as_str()),
                    before.map_or("the trim horizon", |s| s.as_str()),
                ),
            });
        }
        const OVERLAP: &str = "checking kinesis_loads for overlapping ranges";
        let first = range.first.trim_start_matches('0');
        let last = range.last.trim_start_matches('0');
        let overlap = side
            .query(
                OVERLAP_SQL,
                &[&commit.stream, &range.shard_id.as_str(), &first, &last],
            )
            .await
            .map_err(|e| db_error(OVERLAP, e))?;
        if let Some(row) = overlap.first() {
            let (s, e): (String, String) = (column(row, 0, OVERLAP)?, column(row, 1, OVERLAP)?);
            return Err(Error::LoadConflict {
                table: commit.table.to_owned(),
                message: format!(
                    "range {}..={} of shard `{}` overlaps the recorded range {s}..={e}",
                    range.first, range.last, range.shard_id
                ),
            });
        }
    }

    // Quiet shards, caught up at checkpoints no load of this table can move while the lock is
    // held: a fact whether or not this load commits.
    mark_in(&side, commit.stream, &now, commit.caught_up).await?;
    drop(side);

    // The identities of this load: none loaded by a loader that committed meanwhile; kept
    // with the rows, the old ones forgotten.
    dedupe::record(&txn, commit.dedupe).await?;

    // `with_max_errors(n)` is the load's budget, up to n records rejected in all: those
    // rejected before COPY use part of it, COPY may reject the rest, one more fails the load;
    // the total is counted again after COPY (Redshift may report more than MAXERROR).
    let budget = commit.copy.max_errors;
    let staging_rejects = commit.staging_rejects.len() as u64;
    if staging_rejects > budget {
        let first = commit.staging_rejects.swap_remove(0);
        return Err(first.into_error(commit.table, staging_rejects, budget));
    }
    commit.copy.max_errors = budget - staging_rejects;
    let mut outcome = if commit.copy.lines() > 0 {
        match warehouse.copy(&txn, &commit.copy, stage).await {
            Ok(outcome) => outcome,
            Err(Error::LoadRejected {
                table,
                rejected,
                first,
                ..
            }) => {
                return Err(Error::LoadRejected {
                    table,
                    rejected: rejected + staging_rejects,
                    max_errors: budget,
                    first,
                })
            }
            Err(e) => return Err(e),
        }
    } else {
        CopyOutcome::default()
    };
    let mut rejected = commit.staging_rejects;
    rejected.append(&mut outcome.rejected);
    outcome.rejected = rejected;
    let total = outcome.rejected.len() as u64;
    if total > budget {
        let first = outcome.rejected.swap_remove(0);
        return Err(first.into_error(commit.table, total, budget));
    }

    let ts = now_text();
    keep_rejects(
        &txn,
        &commit.copy.load_id,
        commit.table,
        &outcome.rejected,
        &ts,
        REJECTED,
    )
    .await?;
    for range in commit.ranges {
        let mark = commit
            .marks
            .get(&range.shard_id)
            .cloned()
            .unwrap_or_default();
        let caught_up_at = mark.caught_up_at.map(timestamp_text);
        let next = mark.next.as_ref().map(|n| n.as_str());
        txn.execute(
            INSERT_RANGE_SQL,
            &[
                &commit.stream,
                &range.shard_id,
                &commit.table,
                &range.first.as_str(),
                &range.last.as_str(),
                &ts,
                &caught_up_at,
                &next,
            ],
        )
        .await
        .map_err(|e| db_error(&format!("recording the loaded range in {KINESIS_LOADS}"), e))?;
    }
    pause_at(Phase::Commit).await;
    txn.commit().await.map_err(|e| db_error("COMMIT", e))?;
    pause_at(Phase::Committed).await;
    Ok(outcome)
}

/// Marks quiet shards as caught up at their checkpoints, under the lock of event table `table`
/// (a load that read no record has nothing else to commit).
pub(crate) async fn mark_caught_up<W: Warehouse>(
    client: &mut tokio_postgres::Client,
    warehouse: &W,
    table: &TableSchema,
    stream: &str,
    expected: &HashMap<String, Checkpoint>,
    caught_up: &[CaughtUp],
) -> Result<()> {
    let txn = begin_locked(client, warehouse, table).await?;
    let side = warehouse.connect().await?;
    let now = read_checkpoints(&side, stream).await?;
    // Only what this load saw: a shard another loader moved since is left to its rows.
    let unchanged: Vec<CaughtUp> = caught_up
        .iter()
        .filter(|c| {
            expected.get(&c.shard_id).map(|e| &e.sequence_number)
                == now.get(&c.shard_id).map(|n| &n.sequence_number)
        })
        .cloned()
        .collect();
    mark_in(&side, stream, &now, &unchanged).await?;
    txn.commit().await.map_err(|e| db_error("COMMIT", e))
}

/// Sets `caught_up_at` on the checkpoint row of each of `caught_up` whose checkpoint is still
/// `now`'s (read under the table's lock), each an UPDATE of its own in autocommit on `side`, the
/// connection beside the locked transaction. An UPDATE reads `kinesis_loads` as it writes it, so
/// two of them for different tables at once may meet a serialization conflict (Redshift's 1023);
/// each is tried again then, up to [`SIDE_ATTEMPTS`] times.
async fn mark_in(
    side: &tokio_postgres::Client,
    stream: &str,
    now: &HashMap<String, Checkpoint>,
    caught_up: &[CaughtUp],
) -> Result<()> {
    for c in caught_up {
        if now.get(&c.shard_id).map(|n| &n.sequence_number) != Some(&c.checkpoint) {
            continue;
        }
        let at = timestamp_text(c.at);
        let checkpoint = now
            .get(&c.shard_id)
            .map_or(c.checkpoint.as_str(), |n| n.sequence_number.as_str());
        let what = format!("the mark of quiet shard {} of {stream}", c.shard_id);
        retry_transient(SIDE_ATTEMPTS, &what, || async {
            side.execute(
                CAUGHT_UP_SQL,
                &[&stream, &c.shard_id.as_str(), &checkpoint, &at.as_str()],
            )
            .await
            .map_err(|e| db_error(&format!("marking a quiet shard in {KINESIS_LOADS}"), e))
        })
        .await?;
    }
    Ok(())
}
