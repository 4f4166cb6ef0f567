//! The encoder's runtime half: value checks and JSON writing used by the derive's generated code.
//!
//! The derive writes one JSON object per event, the column names as keys (pre-escaped at compile
//! time), and calls into this module for every value. The rules, all checked per value:
//!
//! | column type | Rust types ([`value`]) | written as |
//! |---|---|---|
//! | `SMALLINT`, `INTEGER`, `BIGINT` | integers that fit | JSON number |
//! | `DECIMAL(p,s)` | `rust_decimal::Decimal`, integers | JSON **string**, checked against `p` and `s` |
//! | `REAL`, `DOUBLE PRECISION` | `f32`, `f64` | JSON number; NaN and infinities are an error |
//! | `BOOLEAN` | `bool` | `true` / `false` |
//! | `VARCHAR(n)` | strings | truncated to `n` **bytes** on a char boundary |
//! | `CHAR(n)` | strings | ASCII only; truncated to `n` bytes |
//! | `DATE` | `NaiveDate` | `"YYYY-MM-DD"` (`"YYYY-MM-DD BC"` before year 1) |
//! | `TIMESTAMP` | `NaiveDateTime` (taken as UTC), `DateTime<Tz>` (converted to UTC) | `"YYYY-MM-DD HH:MM:SS[.ffffff]"` |
//! | `TIMESTAMPTZ` | `DateTime<Tz>` of any time zone (converted to UTC), `NaiveDateTime` (UTC) | `"YYYY-MM-DD HH:MM:SS[.ffffff]+00"` |
//! | `TIME` | `NaiveTime` | `"HH:MM:SS[.ffffff]"` |
//! | `SUPER` | `serde_json::Value` | the JSON value |
//!
//! `Option<T>` fields write `null` for `None`. A JSON `null` as the whole value of a NOT NULL
//! `SUPER` column (a `serde_json::Value` field, not an `Option`) is an error
//! ([`EncodeErrorKind::NullInNotNullColumn`]): COPY would load it as NULL and reject the row.
//!
//! **Truncation.** A text value longer than its column's byte length is cut at the last UTF-8
//! character boundary at or before the limit, so multibyte text never fails at COPY. Every
//! truncation emits a `WARN` tracing event (target `redtrack::truncation`, fields `table`,
//! `column`, `bytes`, `limit`) and counts in [`truncations()`].
//!
//! **NUL policy.** A text value (or a string inside a SUPER value) containing U+0000 is
//! **rejected** with [`EncodeErrorKind::NulCharacter`]: neither Redshift's VARCHAR nor PostgreSQL's
//! text and jsonb can store it, and silently dropping it would change the value. Strip it before
//! writing (`s.replace('\0', "")`) if your data can contain it. Only the part of a value that is
//! stored is checked: a NUL beyond a VARCHAR's byte limit is truncated away with the rest.
//!
//! **Time.** Timestamps are written in UTC with microsecond precision (Redshift's); finer
//! nanoseconds are truncated. Dates and timestamps must lie within Redshift's range, 4713 BC
//! (`-4712-01-01` in chrono's proleptic years) to 294276 AD.
//!
//! On error nothing is written: the generated `encode_json` truncates `buf` back to its length
//! before the call.

use std::sync::atomic::{AtomicU64, Ordering};

pub mod value;
pub(crate) mod write;

pub use crate::text::truncate_to_bytes;

/// How many text values have been truncated to their column's byte length in this process.
///
/// ```
/// let before = redtrack_runtime::encode::truncations();
/// // ... encode events ...
/// assert!(redtrack_runtime::encode::truncations() >= before);
/// ```
pub fn truncations() -> u64 {
    TRUNCATIONS.load(Ordering::Relaxed)
}

static TRUNCATIONS: AtomicU64 = AtomicU64::new(0);

/// An event could not be encoded: names the table, the column and what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("table `{table}`, column `{column}`: {kind}")]
#[non_exhaustive]
pub struct EncodeError {
    /// The table.
    pub table: &'static str,
    /// The column (empty when the problem is not one column's).
    pub column: &'static str,
    /// What was wrong.
    pub kind: EncodeErrorKind,
}

/// What was wrong with a value. Every variant carries the offending value (shortened to about 64
/// characters for long text).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeErrorKind {
    /// The encoder produced bytes that are not UTF-8 (a bug in redtrack).
    #[error("the encoder produced invalid UTF-8: {0}")]
    InvalidUtf8(String),

    /// A REAL or DOUBLE PRECISION value is NaN or infinite; JSON has no form for it.
    #[error("{value} has no JSON form (NaN and infinities cannot be loaded); send a finite number or make the field an Option and send None")]
    NotFinite {
        /// The value, e.g. `NaN`, `inf`.
        value: String,
    },

    /// A CHAR value holds a character that is not single-byte ASCII.
    #[error("CHAR holds single-byte (ASCII) characters only, but {value:?} has {found:?} at byte {position}; declare the column VARCHAR to store UTF-8")]
    NotAscii {
        /// The value (shortened).
        value: String,
        /// The first offending character.
        found: char,
        /// Its byte offset in the value.
        position: usize,
    },

    /// A text value contains U+0000 (see the NUL policy in the module docs).
    #[error("{value:?} contains a NUL character (U+0000) at byte {position}, which Redshift cannot store; strip it before writing")]
    NulCharacter {
        /// The value (shortened).
        value: String,
        /// The byte offset of the NUL.
        position: usize,
    },

    /// A decimal value has more digits than the column's precision and scale allow.
    #[error("{value} does not fit DECIMAL({precision},{scale}): {reason}")]
    DecimalOutOfRange {
        /// The value.
        value: String,
        /// The column's precision.
        precision: u8,
        /// The column's scale.
        scale: u8,
        /// Which limit it broke.
        reason: String,
    },

    /// A NOT NULL column got a value that loads as NULL (a JSON `null` as the whole value of a
    /// `SUPER` column whose field is not an `Option`); COPY would reject the row.
    #[error("{value} loads as NULL, but the {sql_type} column is NOT NULL; send a value that is not null, or make the field an Option and send None")]
    NullInNotNullColumn {
        /// The value, e.g. `null`.
        value: String,
        /// The column type, e.g. `SUPER`.
        sql_type: &'static str,
    },

    /// A string inside a SUPER value (a value or a key) is longer than Redshift stores in one
    /// (`https://docs.aws.amazon.com/redshift/latest/dg/limitations-super.html`).
    #[error("a string inside the SUPER value is {bytes} bytes ({value:?}); Redshift stores at most {limit} bytes in one string of a SUPER value (limitations-super); shorten it")]
    SuperStringTooLong {
        /// The string (shortened).
        value: String,
        /// Its length in bytes.
        bytes: usize,
        /// The limit, in bytes.
        limit: usize,
    },

    /// A SUPER value is larger than Redshift stores in one (16 MB, `limitations-super`).
    #[error("the SUPER value is {bytes} bytes as JSON; Redshift stores at most {limit} bytes in one SUPER value (limitations-super)")]
    SuperTooLarge {
        /// Its size in bytes, as JSON.
        bytes: usize,
        /// The limit, in bytes.
        limit: usize,
    },

    /// The event's JSON object is larger than `COPY ... FORMAT AS JSON` reads as one row (4 MB,
    /// `https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-format.html`); the
    /// whole COPY would fail on it, whatever MAXERROR says.
    #[error("the event is {bytes} bytes as JSON; COPY reads JSON objects of at most {limit} bytes (copy-parameters-data-format) and fails the whole load on a larger one")]
    RecordTooLarge {
        /// Its size in bytes.
        bytes: usize,
        /// The limit, in bytes.
        limit: usize,
    },

    /// A date or timestamp lies outside Redshift's range, 4713 BC to 294276 AD.
    #[error("{value} is outside Redshift's range for {sql_type} (4713 BC to 294276 AD)")]
    DateOutOfRange {
        /// The value.
        value: String,
        /// The column type, e.g. `DATE`.
        sql_type: &'static str,
    },
}

impl EncodeError {
    /// An error for `table`, `column` and `kind`.
    pub fn new(table: &'static str, column: &'static str, kind: EncodeErrorKind) -> Self {
        EncodeError {
            table,
            column,
            kind,
        }
    }

    pub(crate) fn invalid_utf8(table: &'static str, e: std::string::FromUtf8Error) -> Self {
        EncodeError::new(table, "", EncodeErrorKind::InvalidUtf8(e.to_string()))
    }
}
