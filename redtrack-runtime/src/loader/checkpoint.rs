//! `kinesis_loads`: where each shard's last load ended. Its table, its statements and the types
//! of its rows (the transaction that writes it is in `commit.rs`).
//!
//! Sequence numbers are decimal strings of up to 129 digits, stored as text and compared
//! numerically: leading zeros stripped, then by (length, text). Every value is a bound
//! parameter; Redshift lacks `NUMERIC(129)`, so the comparison is spelled out in SQL. Values
//! cross the wire as text (timestamps cast to VARCHAR), the one encoding both servers share.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::broker::SequenceNumber;
use crate::error::{Error, Result};
use crate::schema::{Dialect, KINESIS_LOADS};
use crate::warehouse::{column, db_error};

/// The columns redtrack adds to the original gem's `kinesis_loads`, with their types. Both are
/// nullable: the gem's rows (and those of redtrack before them) have neither, and still work.
///
/// - `caught_up_at`: when the load found no record after `ending_sequence_number` (the start of
///   its last GetRecords call): any later record arrived after that moment. NULL when the load
///   stopped before the shard's tip (a limit) or when unknown.
/// - `next_sequence_number`: the record right after `ending_sequence_number`, when the load
///   saw it but a limit kept it for the next load. NULL otherwise.
///
/// The data-loss rule (`loader::retention`) reads both.
pub(crate) const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("caught_up_at", "TIMESTAMP"),
    ("next_sequence_number", "VARCHAR(256)"),
];

/// `CREATE TABLE IF NOT EXISTS kinesis_loads`: the original gem's columns, wider so Kinesis'
/// 128-character stream names and 129-digit sequence numbers fit, and redtrack's
/// [`ADDED_COLUMNS`].
pub(crate) fn kinesis_loads_ddl(dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE ALL\nSORTKEY (stream_name, shard_id)",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {KINESIS_LOADS} (\n    \
         stream_name VARCHAR(256) NOT NULL,\n    \
         shard_id VARCHAR(256) NOT NULL,\n    \
         table_name VARCHAR(256) NOT NULL,\n    \
         starting_sequence_number VARCHAR(256) NOT NULL,\n    \
         ending_sequence_number VARCHAR(256) NOT NULL,\n    \
         load_timestamp TIMESTAMP NOT NULL,\n    \
         caught_up_at TIMESTAMP,\n    \
         next_sequence_number VARCHAR(256),\n    \
         PRIMARY KEY (stream_name, shard_id, starting_sequence_number)\n){tail}"
    )
}

/// The latest checkpoint (largest ending sequence number) of every shard of a stream (`$1`),
/// with when it was last seen caught up and the record after it, if known.
pub(crate) const CHECKPOINTS_SQL: &str = "SELECT shard_id, ending_sequence_number, \
     CAST(load_timestamp AS VARCHAR(32)), CAST(caught_up_at AS VARCHAR(32)), next_sequence_number \
     FROM (SELECT shard_id, ending_sequence_number, load_timestamp, caught_up_at, \
     next_sequence_number, ROW_NUMBER() OVER \
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

/// Records one loaded range (`$7` caught up at, `$8` the next sequence number: either NULL).
pub(crate) const INSERT_RANGE_SQL: &str = "INSERT INTO kinesis_loads (stream_name, shard_id, \
     table_name, starting_sequence_number, ending_sequence_number, load_timestamp, \
     caught_up_at, next_sequence_number) \
     VALUES ($1, $2, $3, $4, $5, CAST(CAST($6 AS VARCHAR(32)) AS TIMESTAMP), \
     CAST(CAST($7 AS VARCHAR(32)) AS TIMESTAMP), $8)";

/// A quiet shard (`$2` of stream `$1`) was seen caught up at `$4` after its checkpoint `$3`:
/// the time goes on the checkpoint's row.
pub(crate) const CAUGHT_UP_SQL: &str = "UPDATE kinesis_loads \
     SET caught_up_at = CAST(CAST($4 AS VARCHAR(32)) AS TIMESTAMP) \
     WHERE stream_name = $1 AND shard_id = $2 AND ending_sequence_number = $3";

/// The columns table `$1` has, to find which of redtrack's added columns an existing table
/// lacks.
pub(crate) const EXISTING_COLUMNS_SQL: &str = "SELECT CAST(column_name AS VARCHAR(128)) \
     FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = CAST($1 AS VARCHAR(128))";

/// The most recent loaded ranges of a stream (`$1`), newest first, at most `limit` rows (an
/// integer, so it is written into the statement).
pub(crate) fn recent_loads_sql(limit: u32) -> String {
    format!(
        "SELECT shard_id, starting_sequence_number, ending_sequence_number, \
         CAST(load_timestamp AS VARCHAR(32)) FROM kinesis_loads WHERE stream_name = $1 \
         ORDER BY load_timestamp DESC LIMIT {limit}"
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

/// Where a shard's loads have reached, with what the data-loss rule needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// The last sequence number loaded.
    pub(crate) sequence_number: SequenceNumber,
    /// When a load last found no record after it (UTC), if known.
    pub(crate) caught_up_at: Option<NaiveDateTime>,
    /// The record right after it, if a load saw it and left it for later.
    pub(crate) next: Option<SequenceNumber>,
}

/// What a load learned about a shard beyond the range it read, for the range's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeMark {
    /// When the load found the shard's tip (UTC), if it did.
    pub(crate) caught_up_at: Option<NaiveDateTime>,
    /// The record after the range, if a limit left it for the next load.
    pub(crate) next: Option<SequenceNumber>,
}

/// A quiet shard this load found caught up at its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaughtUp {
    /// The shard.
    pub(crate) shard_id: String,
    /// Its checkpoint (the row to mark).
    pub(crate) checkpoint: SequenceNumber,
    /// When the load found nothing after it (UTC).
    pub(crate) at: NaiveDateTime,
}

/// `at` as a `TIMESTAMP` literal's text.
pub(crate) fn timestamp_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
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

/// The latest checkpoint of every shard of `stream`.
pub async fn read_checkpoints<C: tokio_postgres::GenericClient>(
    client: &C,
    stream: &str,
) -> Result<HashMap<String, Checkpoint>> {
    Ok(read_positions(client, stream)
        .await?
        .into_iter()
        .map(|(shard, (checkpoint, _))| (shard, checkpoint))
        .collect())
}

/// The latest checkpoint of every shard of `stream`, each with its [`Position`].
pub(crate) async fn read_positions<C: tokio_postgres::GenericClient>(
    client: &C,
    stream: &str,
) -> Result<HashMap<String, (Checkpoint, Position)>> {
    const WHAT: &str = "reading the checkpoints in kinesis_loads";
    let rows = client
        .query(CHECKPOINTS_SQL, &[&stream])
        .await
        .map_err(|e| match e.code() {
            Some(c) if *c == tokio_postgres::error::SqlState::UNDEFINED_COLUMN => {
                Error::warehouse(format!(
                    "{KINESIS_LOADS} lacks redtrack's columns ({}): it was made by the Ruby \
                     gem or an older redtrack; run setup once (`redtrack setup` or \
                     `Loader::setup`), which adds them and keeps every row",
                    ADDED_COLUMNS
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .with_source(e)
            }
            _ => db_error(WHAT, e),
        })?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let shard_id: String = column(&row, 0, WHAT)?;
        let sequence_number = SequenceNumber::from(column::<String>(&row, 1, WHAT)?);
        let caught_up_at = column::<Option<String>>(&row, 3, WHAT)?
            .as_deref()
            .and_then(parse_timestamp);
        let next = column::<Option<String>>(&row, 4, WHAT)?
            .filter(|s| !s.is_empty())
            .map(SequenceNumber::from);
        out.insert(
            shard_id.clone(),
            (
                Checkpoint {
                    shard_id,
                    sequence_number: sequence_number.clone(),
                    load_timestamp: column::<Option<String>>(&row, 2, WHAT)?.unwrap_or_default(),
                },
                Position {
                    sequence_number,
                    caught_up_at,
                    next,
                },
            ),
        );
    }
    Ok(out)
}

/// A `TIMESTAMP` cast to text by either server (`YYYY-MM-DD HH:MM:SS[.ffffff]`).
pub(crate) fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()
}

/// Adds `columns` (name, type) to `table` where it lacks them (a table the Ruby gem or an older
/// redtrack made); its rows stay as they are, with the new columns NULL. Run by `setup`.
pub(crate) async fn add_missing_columns(
    client: &tokio_postgres::Client,
    table: &str,
    columns: &[(&str, &str)],
) -> Result<()> {
    let what = format!("reading the columns of {table}");
    let have: Vec<String> = client
        .query(EXISTING_COLUMNS_SQL, &[&table])
        .await
        .map_err(|e| db_error(&what, e))?
        .iter()
        .map(|r| column::<String>(r, 0, &what))
        .collect::<Result<_>>()?;
    for (name, sql_type) in columns {
        if have.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            continue;
        }
        // One column per statement (Redshift's rule); outside a transaction.
        let sql = format!("ALTER TABLE {table} ADD COLUMN {name} {sql_type}");
        match client.batch_execute(&sql).await {
            Ok(()) => tracing::info!(column = name, "added to {table}"),
            // Another setup added it meanwhile.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_COLUMN) => {}
            Err(e) => return Err(db_error(&format!("adding {name} to {table}"), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_keeps_the_original_columns() {
        for d in [Dialect::Redshift, Dialect::Postgres] {
            let ddl = kinesis_loads_ddl(d);
            for col in [
                "stream_name",
                "shard_id",
                "table_name",
                "starting_sequence_number",
                "ending_sequence_number",
                "load_timestamp",
            ] {
                assert!(ddl.contains(col), "{col} missing from {ddl}");
            }
        }
        assert!(kinesis_loads_ddl(Dialect::Redshift).contains("SORTKEY"));
        assert!(!kinesis_loads_ddl(Dialect::Postgres).contains("SORTKEY"));
    }
}
