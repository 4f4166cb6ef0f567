//! `kinesis_loads`: where each shard's last load ended. Its table, its statements and the types
//! of its rows (the transaction that writes it is in `commit.rs`).
//!
//! Sequence numbers are decimal strings of up to 129 digits, stored as text and compared
//! numerically: leading zeros stripped, then by (length, text). Every value is a bound
//! parameter; Redshift lacks `NUMERIC(129)`, so the comparison is spelled out in SQL. Values
//! cross the wire as text (timestamps cast to VARCHAR), the one encoding both servers share.

use std::collections::HashMap;

use crate::broker::SequenceNumber;
use crate::error::Result;
use crate::schema::{Dialect, KINESIS_LOADS};
use crate::warehouse::{column, db_error};

/// `CREATE TABLE IF NOT EXISTS kinesis_loads`: the original gem's columns, wider so Kinesis'
/// 128-character stream names and 129-digit sequence numbers fit.
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
         PRIMARY KEY (stream_name, shard_id, starting_sequence_number)\n){tail}"
    )
}

/// The latest checkpoint (largest ending sequence number) of every shard of a stream (`$1`).
pub(crate) const CHECKPOINTS_SQL: &str = "SELECT shard_id, ending_sequence_number, \
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
pub(crate) const INSERT_RANGE_SQL: &str = "INSERT INTO kinesis_loads (stream_name, shard_id, \
     table_name, starting_sequence_number, ending_sequence_number, load_timestamp) \
     VALUES ($1, $2, $3, $4, $5, CAST(CAST($6 AS VARCHAR(32)) AS TIMESTAMP))";

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
