//! Attribute keys, as named constants.

use std::fmt;
use syn::Path;

/// An attribute key.
#[derive(Copy, Clone)]
pub(crate) struct Symbol(pub(crate) &'static str);

pub(crate) const REDTRACK: Symbol = Symbol("redtrack");

// Container keys.
pub(crate) const TABLE: Symbol = Symbol("table");
pub(crate) const SORTKEY: Symbol = Symbol("sortkey");
pub(crate) const INTERLEAVED_SORTKEY: Symbol = Symbol("interleaved_sortkey");
pub(crate) const DISTKEY: Symbol = Symbol("distkey");
pub(crate) const DISTSTYLE: Symbol = Symbol("diststyle");
pub(crate) const CRATE: Symbol = Symbol("crate");

// Field keys.
pub(crate) const TYPE: Symbol = Symbol("type");
pub(crate) const RENAME: Symbol = Symbol("rename");
pub(crate) const SKIP: Symbol = Symbol("skip");
pub(crate) const ENCODE: Symbol = Symbol("encode");
pub(crate) const PARTITION_KEY: Symbol = Symbol("partition_key");

pub(crate) const CONTAINER_KEYS: &[Symbol] = &[
    TABLE,
    SORTKEY,
    INTERLEAVED_SORTKEY,
    DISTKEY,
    DISTSTYLE,
    CRATE,
];
pub(crate) const FIELD_KEYS: &[Symbol] = &[TYPE, RENAME, SKIP, ENCODE, PARTITION_KEY];

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// `a`, `b`, `c` for an error message.
pub(crate) fn list(keys: &[Symbol]) -> String {
    keys.iter()
        .map(|k| format!("`{}`", k.0))
        .collect::<Vec<_>>()
        .join(", ")
}
