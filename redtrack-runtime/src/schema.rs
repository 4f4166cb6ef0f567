//! Table schemas as data: what the derive emits and what DDL, the encoder and the loader read.
//!
//! Everything here is defined once, in the `redtrack-schema` crate, which the derive uses at
//! compile time and this runtime re-exports: the column types ([`SqlType`], parsed and rendered),
//! identifiers ([`ident`]), compression encodings ([`Encoding`]), tables ([`TableSchema`],
//! [`Column`], [`SortKey`], [`DistStyle`]) and Redshift's and Kinesis' limits ([`limits`]).

pub use redtrack_schema::{
    ident, is_reserved_word, limits, quote_ident, Column, Dialect, DistStyle, Encoding,
    ParseTypeError, SortKey, SqlType, TableSchema, KINESIS_LOADS, LOAD_REJECTS,
};
