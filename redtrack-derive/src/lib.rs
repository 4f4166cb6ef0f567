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

/// Derives `redtrack::RedTrackEvent` for a struct with named fields.
///
/// Container attributes (`#[redtrack(...)]` on the struct): `table = "name"` (default: the
/// struct's name in snake_case; ASCII letters, digits and `_` only, as it is part of the Kinesis
/// stream name), `sortkey = "a, b"`, `interleaved_sortkey = "a, b"`,
/// `distkey = "column"`, `diststyle = "auto" | "even" | "key" | "all"`, `crate = "path"`.
///
/// Field attributes: `type = "<redshift type>"`, `rename = "column"`, `skip`,
/// `encode = "<compression encoding>"`, `partition_key`.
#[proc_macro_derive(RedTrackEvent, attributes(redtrack))]
pub fn derive_redtrack_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
