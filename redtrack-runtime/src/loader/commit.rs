//! The one transaction of a load: LOCK; checkpoints unchanged?; no overlap?; the record
//! identities (`dedupe`); COPY; INSERT the ranges and the rejects; COMMIT. Any failure rolls everything back (the transaction is
//! dropped), so a range is recorded exactly when its rows are loaded.

use std::collections::HashMap;

use super::checkpoint::{read_checkpoints, Checkpoint, ShardRange, INSERT_RANGE_SQL, OVERLAP_SQL};
use super::dedupe::{self, DedupeCommit};
use super::rejects::keep_rejects;
use crate::error::{Error, RejectedRow, Result};
use crate::hooks::{pause_at, Phase};
use crate::schema::KINESIS_LOADS;
use crate::stage::Stage;
use crate::warehouse::{column, db_error, CopyOutcome, CopyRequest, Warehouse};

/// The current time as a `TIMESTAMP` literal's text, UTC.
pub(crate) fn now_text() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// What the commit transaction needs.
pub(crate) struct Commit<'a> {
    pub(crate) stream: &'a str,
    pub(crate) table: &'a str,
    /// The checkpoints as they were when reading began.
    pub(crate) expected: &'a HashMap<String, Checkpoint>,
    /// The ranges read, one per shard that had records.
    pub(crate) ranges: &'a [ShardRange],
    /// Records rejected while staging (not JSON objects).
    pub(crate) staging_rejects: Vec<RejectedRow>,
    /// The COPY, with MAXERROR the load's whole budget.
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
    let txn = client
        .transaction()
        .await
        .map_err(|e| db_error("BEGIN", e))?;
    txn.batch_execute(warehouse.lock_sql())
        .await
        .map_err(|e| db_error(&format!("locking {KINESIS_LOADS}"), e))?;

    // Another loader may have loaded these shards since this one read its checkpoints.
    let now = read_checkpoints(&txn, commit.stream).await?;
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
        let overlap = txn
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

    // The identities of this load: none loaded by a loader that committed meanwhile; kept
    // with the rows, the old ones forgotten.
    dedupe::record(&txn, commit.dedupe).await?;

    // `with_max_errors(n)` is the load's budget, up to n rows rejected in all: rejects found
    // while staging use part of it, COPY may reject the rest, and one more fails the load.
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
    outcome.rejected.extend(commit.staging_rejects);

    let ts = now_text();
    keep_rejects(
        &txn,
        &commit.copy.load_id,
        commit.table,
        &outcome.rejected,
        &ts,
    )
    .await?;
    for range in commit.ranges {
        txn.execute(
            INSERT_RANGE_SQL,
            &[
                &commit.stream,
                &range.shard_id,
                &commit.table,
                &range.first.as_str(),
                &range.last.as_str(),
                &ts,
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
