//! Table schemas as data: what the derive emits and what DDL, the encoder and the loader read.
//!
//! OWNER: issue 2 (derive + schema + encoding). The types below are the contract between the
//! derive's output and the runtime; extend them, do not rename.

/// A Redshift column type, as parsed at compile time from `#[redtrack(type = "...")]` or inferred
/// from the field's Rust type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// SMALLINT / INT2: the i16 range.
    SmallInt,
    /// INTEGER / INT / INT4: the i32 range.
    Integer,
    /// BIGINT / INT8: the i64 range.
    BigInt,
    /// DECIMAL(p, s) / NUMERIC(p, s): precision 1..=38, scale <= precision.
    Decimal {
        /// Total number of digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// REAL / FLOAT4.
    Real,
    /// DOUBLE PRECISION / FLOAT8 / FLOAT.
    Double,
    /// BOOLEAN / BOOL.
    Boolean,
    /// CHAR(n): `n` bytes of single-byte characters, 1..=4096.
    Char {
        /// Length in bytes.
        len: u16,
    },
    /// VARCHAR(n) / CHARACTER VARYING(n): `n` bytes of UTF-8, 1..=65535.
    Varchar {
        /// Length in bytes.
        len: u32,
    },
    /// DATE.
    Date,
    /// TIMESTAMP (without time zone; redtrack sends UTC).
    Timestamp,
    /// TIMESTAMPTZ.
    TimestampTz,
    /// TIME (without time zone).
    Time,
    /// SUPER (semi-structured; JSON).
    Super,
}

/// A column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column name, lowercase, as Redshift stores it and as the JSON key.
    pub name: &'static str,
    /// The column's type.
    pub sql_type: SqlType,
    /// `true` for `Option<T>` fields; everything else is NOT NULL.
    pub nullable: bool,
    /// The compression encoding (`ENCODE ...`), if one was given.
    pub encode: Option<&'static str>,
}

/// The table's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// No sort key.
    None,
    /// `COMPOUND SORTKEY (a, b)` (Redshift's default kind).
    Compound(&'static [&'static str]),
    /// `INTERLEAVED SORTKEY (a, b)`.
    Interleaved(&'static [&'static str]),
}

/// Redshift's `DISTSTYLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistStyle {
    /// `DISTSTYLE AUTO`.
    Auto,
    /// `DISTSTYLE EVEN`.
    Even,
    /// `DISTSTYLE KEY` (requires a distkey).
    Key,
    /// `DISTSTYLE ALL`.
    All,
}

/// The SQL dialect a statement is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Amazon Redshift (the default).
    #[default]
    Redshift,
    /// PostgreSQL, for development and tests: no Redshift table attributes, Redshift-only types
    /// mapped (SUPER to jsonb).
    Postgres,
}

/// A table: its name, columns in field order, and its Redshift table attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSchema {
    /// The table name, lowercase.
    pub name: &'static str,
    /// Columns in field order.
    pub columns: &'static [Column],
    /// The sort key.
    pub sortkey: SortKey,
    /// The distribution key column, if any.
    pub distkey: Option<&'static str>,
    /// The distribution style, if given.
    pub diststyle: Option<DistStyle>,
}

impl TableSchema {
    /// The column named `name`, if there is one.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `CREATE TABLE IF NOT EXISTS` for this table in the given dialect.
    pub fn create_table_sql(&self, dialect: Dialect) -> String {
        let _ = dialect;
        todo!("issue 2: render DDL")
    }
}
