//! What a Redshift table is, defined once for redtrack's derive (at compile time) and its runtime:
//!
//! - [`SqlType`]: the column types, parsed from every name and alias Redshift accepts
//!   ([`SqlType::parse`]), read back from the catalog ([`SqlType::from_catalog`]) and rendered
//!   per [`Dialect`] ([`SqlType::sql`]);
//! - [`ident`]: identifiers (folding, the characters Redshift and Kinesis allow, quoting,
//!   reserved words);
//! - [`Encoding`]: the compression encodings and which column types each one supports;
//! - [`TableSchema`], [`Column`], [`SortKey`], [`DistStyle`]: a table, and its DDL;
//! - [`limits`]: Redshift's and Kinesis' limits as named constants, each with its AWS page.
//!
//! This crate has no dependencies. `redtrack-derive` and `redtrack-runtime` depend on it with an
//! exact version (`=0.1.0`), so the type the macro checked is the type the runtime encodes.
//! Applications use it through `redtrack`, which re-exports these items.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod encoding;
pub mod ident;
pub mod limits;
mod sql_type;
mod table;

pub use encoding::Encoding;
pub use ident::{is_reserved_word, quote_ident, RESERVED_WORDS};
pub use sql_type::{ParseTypeError, SqlType};
pub use table::{Column, Dialect, DistStyle, SortKey, TableSchema, KINESIS_LOADS, LOAD_REJECTS};
