//! The [`RedTrackEvent`] trait, implemented by `#[derive(RedTrackEvent)]`.

use crate::encode::EncodeError;
use crate::schema::{Dialect, TableSchema};

/// An event struct that maps to one Redshift table and one Kinesis stream.
///
/// Implement it with `#[derive(RedTrackEvent)]`; the derive checks the schema against Redshift's
/// rules at compile time and generates an encoder that writes one JSON object per event. The
/// derive also emits inherent items of the same names, so `MyEvent::TABLE_NAME` works without
/// importing this trait.
pub trait RedTrackEvent: Send + Sync {
    /// The table's name as Redshift stores it (lowercase).
    const TABLE_NAME: &'static str;

    /// The table's schema: columns in field order, keys and table attributes.
    fn schema() -> &'static TableSchema;

    /// The Redshift `CREATE TABLE IF NOT EXISTS` statement for this table.
    fn create_table_sql() -> String {
        Self::schema().create_table_sql(Dialect::Redshift)
    }

    /// `CREATE TABLE IF NOT EXISTS` for this table in `dialect`: [`Dialect::Postgres`] drops the
    /// Redshift table attributes and maps Redshift-only types (SUPER to JSONB).
    fn create_table_sql_for(dialect: Dialect) -> String {
        Self::schema().create_table_sql(dialect)
    }

    /// Appends this event as one JSON object (no trailing newline) to `buf`.
    ///
    /// On error nothing is appended: `buf` is left as it was.
    fn encode_json(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// The same JSON object as [`RedTrackEvent::encode_json`], as a `String`.
    fn to_json(&self) -> Result<String, EncodeError> {
        let mut buf = Vec::with_capacity(128);
        self.encode_json(&mut buf)?;
        // The encoder only ever writes UTF-8.
        String::from_utf8(buf).map_err(|e| EncodeError::invalid_utf8(Self::TABLE_NAME, e))
    }

    /// The Kinesis partition key from the `#[redtrack(partition_key)]` field, if the struct has one.
    /// `None` means a random key (spreading events evenly over the shards).
    fn partition_key(&self) -> Option<String> {
        None
    }
}
