//! The `#[derive(RedTrackEvent)]` macro. Use it through the `redtrack` crate.
//!
//! Three stages, each its own module, as in serde_derive: `ast` parses the struct and its
//! `#[redtrack(...)]` attributes, `check` validates them against Redshift's rules (collecting
//! every error, each spanned at the offending tokens) and builds the table model, and `expand`
//! generates the trait impl, inherent items of the same names, the schema and the encoder. When
//! validation fails, a stub impl is still emitted so users see the real errors, not a cascade.
//!
//! What a Redshift type, an identifier, an encoding or a limit is comes from `redtrack-schema`,
//! the crate the runtime renders and loads with, so the macro checks exactly what the runtime
//! does.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod sql_type;
mod symbol;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `redtrack::RedTrackEvent` for a struct with named fields: the struct *is* the table's
/// schema, checked against Redshift's rules when it compiles, and gets an encoder that writes one
/// JSON object per event.
///
/// ```
/// use redtrack::RedTrackEvent;
///
/// #[derive(RedTrackEvent)]
/// #[redtrack(table = "purchases", sortkey = "bought_at", distkey = "customer_id")]
/// pub struct Purchase {
///     pub customer_id: i64,                          // BIGINT NOT NULL
///     #[redtrack(type = "varchar(64)", partition_key)]
///     pub order_id: String,                          // VARCHAR(64) NOT NULL, the Kinesis key
///     #[redtrack(type = "decimal(12,2)", encode = "az64")]
///     pub amount: rust_decimal::Decimal,             // DECIMAL(12,2) ENCODE AZ64 NOT NULL
///     pub coupon: Option<String>,                    // VARCHAR(256), nullable
///     pub bought_at: chrono::NaiveDateTime,          // TIMESTAMP NOT NULL
///     #[redtrack(rename = "extra")]
///     pub details: Option<serde_json::Value>,        // SUPER, column `extra`
///     #[redtrack(skip)]
///     pub cached: bool,                              // not a column
/// }
///
/// assert_eq!(Purchase::TABLE_NAME, "purchases");
/// let ddl = Purchase::create_table_sql();
/// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS purchases ("), "{ddl}");
/// assert!(ddl.contains("amount DECIMAL(12,2) ENCODE AZ64 NOT NULL"), "{ddl}");
/// let event = Purchase {
///     customer_id: 7,
///     order_id: "o-1".into(),
///     amount: "19.90".parse().unwrap(),
///     coupon: None,
///     bought_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_opt(12, 0, 0).unwrap(),
///     details: None,
///     cached: false,
/// };
/// assert_eq!(
///     event.to_json().unwrap(),
///     r#"{"customer_id":7,"order_id":"o-1","amount":"19.90","coupon":null,"bought_at":"2026-11-30 12:00:00","extra":null}"#
/// );
/// assert_eq!(event.partition_key().as_deref(), Some("o-1"));
/// ```
///
/// # Types
///
/// Without `type = "..."` the Rust type decides; with it, the compiler checks that the Rust type
/// fits (a trait bound per SQL type, so a mismatch is an error at the field's type, saying what
/// fits). `Option<T>` makes a column nullable; anything else is NOT NULL.
///
/// | Rust type | inferred | also fits | the encoder |
/// |---|---|---|---|
/// | `i16` | SMALLINT | INTEGER, BIGINT, DECIMAL | |
/// | `i32` | INTEGER | BIGINT, DECIMAL | |
/// | `i64` | BIGINT | DECIMAL | |
/// | `i8`, `u8` / `u16` / `u32` | SMALLINT / INTEGER / BIGINT | wider integers, DECIMAL | |
/// | `u64` | (declare `decimal(20,0)`) | DECIMAL | |
/// | `f32` | REAL | DOUBLE PRECISION | NaN and ±infinity are an error |
/// | `f64` | DOUBLE PRECISION | | NaN and ±infinity are an error |
/// | `bool` | BOOLEAN | | |
/// | `String`, `&str`, `Cow<str>`, `Box<str>`, `Arc<str>` | VARCHAR(256) | `varchar(n)` (n ≤ 65535 or `max`), `char(n)` (n ≤ 4096), `text` | cut to n **bytes** on a character boundary; CHAR must be ASCII |
/// | `rust_decimal::Decimal` | DECIMAL(18,0) | `decimal(p,s)` (p ≤ 38, s ≤ p) | sent as a string; too many digits is an error |
/// | `chrono::NaiveDate` | DATE | | `YYYY-MM-DD` |
/// | `chrono::NaiveDateTime` | TIMESTAMP | TIMESTAMPTZ (as UTC) | `YYYY-MM-DD HH:MM:SS[.ffffff]` |
/// | `chrono::DateTime<Tz>` | TIMESTAMPTZ | TIMESTAMP | converted to UTC |
/// | `chrono::NaiveTime` | TIME | | `HH:MM:SS[.ffffff]` |
/// | `serde_json::Value` | SUPER | | a bare `null` in a NOT NULL column is an error |
///
/// Type names in `type = "..."` (case-insensitive): `varchar(n)`, `character varying(n)`,
/// `char(n)`, `character(n)`, `text`, `smallint`/`int2`, `integer`/`int`/`int4`,
/// `bigint`/`int8`, `decimal(p,s)`/`numeric(p,s)`, `real`/`float4`,
/// `double precision`/`float8`/`float`, `boolean`/`bool`, `date`, `timestamp`, `timestamptz`,
/// `time`, `super`. A type of your own fits a column once it implements that column type's
/// trait (`redtrack::encode::value::TextValue`, `BigIntValue`, ...).
///
/// # Attributes
///
/// On the struct (`#[redtrack(...)]`): `table = "name"` (default: the struct's name in
/// snake_case; ASCII letters, digits and `_` only, as it is part of the Kinesis stream name),
/// `sortkey = "a, b"` or `interleaved_sortkey = "a, b"`, `distkey = "column"`,
/// `diststyle = "auto" | "even" | "key" | "all"`, `crate = "path"` (where `redtrack` is, if
/// renamed).
///
/// On a field: `type = "<redshift type>"`, `rename = "column"`, `skip`,
/// `encode = "<compression encoding>"` (one that supports the column's type, as AWS's table
/// `c_Compression_encodings` lists), `partition_key` (the field's value is the record's Kinesis
/// partition key; default: random).
///
/// Names are folded to lowercase, must be 1..=127 bytes and unique after folding; reserved words
/// are quoted in the DDL. Every violation is a compile error at the offending tokens, with what
/// to do, all of them at once.
///
/// # What it generates
///
/// The `RedTrackEvent` impl and inherent items of the same names, usable without the trait in
/// scope: `TABLE_NAME`, `schema()`, `create_table_sql()` (Redshift), `create_table_sql_for(dialect)`,
/// `encode_json(&mut buf)`, `to_json()`, `partition_key()`.
#[proc_macro_derive(RedTrackEvent, attributes(redtrack))]
pub fn derive_redtrack_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
