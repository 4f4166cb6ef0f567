//! `kinesis_loads`: where each shard's last load ended, and the one transaction that copies a
//! load and records its ranges, exactly once.
//!
//! Sequence numbers are decimal strings of up to 129 digits, stored as text and compared
//! numerically: leading zeros stripped, then by (length, text). Every value is a bound
//! parameter; Redshift lacks `NUMERIC(129)`, so the comparison is spelled out in SQL. Values
//! cross the wire as text (timestamps cast to VARCHAR), the one encoding both servers share.

use std::collections::HashMap;

use crate::broker::SequenceNumber;
use crate::error::{Error, Result};
use crate::hooks::{pause_at, Phase};
use crate::stage::Stage;
use crate::text::truncate_string;
use crate::warehouse::{
    column, db_error, CopyOutcome, CopyRequest, RejectedRow, Warehouse, KINESIS_LOADS, LOAD_REJECTS,
};

/// The latest checkpoint (largest ending sequence number) of every shard of a stream (`$1`).
pub const CHECKPOINTS_SQL: &str = "SELECT shard_id, ending_sequence_number, \
     CAST(load_timestamp AS VARCHAR(32)) \
     FROM (SELECT shard_id, ending_sequence_number, load_timestamp, ROW_NUMBER() OVER \
     (PARTITION BY shard_id ORDER BY LENGTH(LTRIM(ending_sequence_number, '0')) DESC, \
     LTRIM(ending_sequence_number, '0') DESC) AS rn FROM kinesis_loads WHERE stream_name = $1) \
     AS latest WHERE rn = 1 ORDER BY shard_id";

/// A recorded range of shard `$2` of stream `$1` that overlaps `[$3, $4]` (numerically).
pub const OVERLAP_SQL: &str = "SELECT starting_sequence_number, ending_sequence_number \
     FROM kinesis_loads WHERE stream_name = $1 AND shard_id = $2 \
     AND (LENGTH(LTRIM(starting_sequence_number, '0')) < LENGTH(CAST($4 AS VARCHAR(256))) \
     OR (LENGTH(LTRIM(starting_sequence_number, '0')) = LENGTH(CAST($4 AS VARCHAR(256))) \
     AND LTRIM(starting_sequence_number, '0') <= CAST($4 AS VARCHAR(256)))) \
     AND (LENGTH(LTRIM(ending_sequence_number, '0')) > LENGTH(CAST($3 AS VARCHAR(256))) \
     OR (LENGTH(LTRIM(ending_sequence_number, '0')) = LENGTH(CAST($3 AS VARCHAR(256))) \
     AND LTRIM(ending_sequence_number, '0') >= CAST($3 AS VARCHAR(256)))) LIMIT 1";

/// Records one loaded range.
pub const INSERT_RANGE_SQL: &str = "INSERT INTO kinesis_loads (stream_name, shard_id, \
     table_name, starting_sequence_number, ending_sequence_number, load_timestamp) \
     VALUES ($1, $2, $3, $4, $5, CAST(CAST($6 AS VARCHAR(32)) AS TIMESTAMP))";

/// Keeps one rejected row.
pub const INSERT_REJECT_SQL: &str = "INSERT INTO redtrack_load_rejects (load_id, table_name, \
     file_name, line_number, column_name, raw_value, reason, rejected_at) VALUES ($1, $2, $3, \
     CAST(CAST($4 AS VARCHAR(20)) AS BIGINT), $5, $6, $7, CAST(CAST($8 AS VARCHAR(32)) AS TIMESTAMP))";

/// The most recent loaded ranges of a stream (`$1`), newest first, at most `limit` rows (an
/// integer, so it is written into the statement).
pub fn recent_loads_sql(limit: u32) -> String {
    format!(
        "SELECT shard_id, starting_sequence_number, ending_sequence_number, \
         CAST(load_timestamp AS VARCHAR(32)) FROM kinesis_loads WHERE stream_name = $1 \
         ORDER BY load_timestamp DESC LIMIT {limit}"
    )
}

/// The most recent rejects of a table (`$1`), newest first, at most `limit` rows.
pub fn recent_rejects_sql(limit: u32) -> String {
    format!(
        "SELECT load_id, file_name, line_number, column_name, raw_value, reason, \
         CAST(rejected_at AS VARCHAR(32)) FROM redtrack_load_rejects WHERE table_name = $1 \
         ORDER BY rejected_at DESC, file_name, line_number LIMIT {limit}"
    )
}

/// Where a shard's loads have reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The shard.
    pub shard_id: String,
    /// The last sequence number loaded.
    pub sequence_number: SequenceNumber,
    /// When that load committed (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
    pub load_timestamp: String,
}

/// One row of `kinesis_loads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRange {
    /// The shard.
    pub shard_id: String,
    /// The first sequence number loaded.
    pub starting_sequence_number: SequenceNumber,
    /// The last sequence number loaded.
    pub ending_sequence_number: SequenceNumber,
    /// When the load committed.
    pub load_timestamp: String,
}

/// A range of one shard read by this load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRange {
    /// The shard.
    pub shard_id: String,
    /// The first sequence number read.
    pub first: SequenceNumber,
    /// The last sequence number read.
    pub last: SequenceNumber,
    /// How many Kinesis records (aggregates count once).
    pub records: u64,
}

/// The current time as a `TIMESTAMP` literal's text, UTC.
pub(crate) fn now_text() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// The latest checkpoint of every shard of `stream`.
pub async fn read_checkpoints<C: tokio_postgres::GenericClient>(
    client: &C,
    stream: &str,
) -> Result<HashMap<String, Checkpoint>> {
    const WHAT: &str = "reading the checkpoints in kinesis_loads";
    let rows = client
        .query(CHECKPOINTS_SQL, &[&stream])
        .await
        .map_err(|e| db_error(WHAT, e))?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let shard_id: String = column(&row, 0, WHAT)?;
        let sequence_number: String = column(&row, 1, WHAT)?;
        let sequence_number = SequenceNumber::from(sequence_number);
        out.insert(
            shard_id.clone(),
            Checkpoint {
                shard_id,
                sequence_number,
                load_timestamp: column::<Option<String>>(&row, 2, WHAT)?.unwrap_or_default(),
            },
        );
    }
    Ok(out)
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
}

/// The one transaction: LOCK; checkpoints unchanged?; no overlap?; COPY; INSERT the ranges and
/// the rejects; COMMIT. Any failure rolls everything back (the transaction is dropped).
/// Keeps rejected rows of load `load_id` in `redtrack_load_rejects`, stamped `ts`.
pub(crate) async fn keep_rejects<C: tokio_postgres::GenericClient>(
    client: &C,
    load_id: &str,
    table: &str,
    rows: &[RejectedRow],
    ts: &str,
) -> Result<()> {
    for r in rows {
        let line = r.line.to_string();
        client
            .execute(
                INSERT_REJECT_SQL,
                &[
                    &load_id,
                    &table,
                    &r.file,
                    &line,
                    &r.column,
                    &r.value,
                    &truncate_string(r.reason.clone(), 1024),
                    &ts,
                ],
            )
            .await
            .map_err(|e| db_error(&format!("keeping a rejected row in {LOAD_REJECTS}"), e))?;
    }
    Ok(())
}

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

    // MAXERROR is the load's budget: rejects found while staging use part of it.
    let staging_rejects = commit.staging_rejects.len() as u64;
    if staging_rejects > commit.copy.max_errors {
        let first = commit.staging_rejects.swap_remove(0);
        return Err(first.into_error(commit.table, staging_rejects, commit.copy.max_errors));
    }
    commit.copy.max_errors -= staging_rejects;
    let mut outcome = if commit.copy.lines() > 0 {
        warehouse.copy(&txn, &commit.copy, stage).await?
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
