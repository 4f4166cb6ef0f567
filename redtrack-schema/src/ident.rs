//! Identifiers: how Redshift folds them, which characters it (and Kinesis, for the table's part
//! of a stream name) allows, how they are quoted, and the reserved words.
//!
//! Pages: `r_names` (Redshift identifiers), `r_pg_keywords` (reserved words),
//! `API_CreateStream` (Kinesis stream names).

use crate::limits::MAX_IDENTIFIER_BYTES;

/// `name` as Redshift stores an unquoted identifier: ASCII letters folded to lowercase (other
/// characters are kept as they are).
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Whether `c` may appear in a Redshift standard (unquoted) identifier after its first
/// character: an ASCII letter or digit, `_`, `$`, or any multibyte (non-ASCII) character.
pub fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Whether `name` is made of the characters of a Redshift standard identifier: it starts with an
/// ASCII letter, `_` or a multibyte character and goes on with [`is_identifier_char`]s. The
/// length (1 to [`MAX_IDENTIFIER_BYTES`] bytes) is checked by [`fits_identifier_length`].
pub fn is_standard_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii())
        && chars.all(is_identifier_char)
}

/// Whether `name` has 1 to [`MAX_IDENTIFIER_BYTES`] bytes.
pub fn fits_identifier_length(name: &str) -> bool {
    (1..=MAX_IDENTIFIER_BYTES).contains(&name.len())
}

/// Whether `c` may appear in a Kinesis stream name: ASCII letters and digits, `_`, `-` and `.`.
/// A table's name is the last part of its stream's name, `<cluster>.<database>.<table>`.
pub fn is_stream_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `name` as an SQL identifier: unchanged when it is a plain lowercase identifier
/// (`[a-z_][a-z0-9_]*`) that is not a reserved word of Redshift or PostgreSQL, else in double
/// quotes (with any `"` doubled). Redshift folds unquoted identifiers to lowercase, so names from
/// the derive are always lowercase already.
///
/// ```
/// use redtrack_schema::quote_ident;
/// assert_eq!(quote_ident("client_ip"), "client_ip");
/// assert_eq!(quote_ident("timestamp"), "\"timestamp\"");
/// assert_eq!(quote_ident("caf\u{e9}"), "\"caf\u{e9}\"");
/// ```
pub fn quote_ident(name: &str) -> std::borrow::Cow<'_, str> {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain && !is_reserved_word(name) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

/// Whether `word` (compared case-insensitively) is a reserved word in Redshift or PostgreSQL, so
/// that it must be quoted as an identifier.
pub fn is_reserved_word(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    RESERVED_WORDS.binary_search(&lower.as_str()).is_ok()
}

/// Reserved words of Amazon Redshift (its documented list) and of PostgreSQL (reserved and
/// "reserved, can be function or type"), sorted, lowercase.
pub const RESERVED_WORDS: &[&str] = &[
    "aes128",
    "aes256",
    "all",
    "allowoverwrite",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "az64",
    "backup",
    "between",
    "binary",
    "blanksasnull",
    "both",
    "bytedict",
    "bzip2",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "credentials",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "current_user_id",
    "datetime",
    "default",
    "deferrable",
    "deflate",
    "defrag",
    "delta",
    "delta32k",
    "desc",
    "disable",
    "distinct",
    "do",
    "else",
    "emptyasnull",
    "enable",
    "encode",
    "encrypt",
    "encryption",
    "end",
    "except",
    "explicit",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "globaldict256",
    "globaldict64k",
    "grant",
    "group",
    "gzip",
    "having",
    "identity",
    "ignore",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "language",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "lun",
    "luns",
    "lzo",
    "lzop",
    "minus",
    "mostly16",
    "mostly32",
    "mostly8",
    "natural",
    "new",
    "not",
    "notnull",
    "null",
    "nulls",
    "off",
    "offline",
    "offset",
    "oid",
    "old",
    "on",
    "only",
    "open",
    "or",
    "order",
    "outer",
    "overlaps",
    "parallel",
    "partition",
    "percent",
    "permissions",
    "pivot",
    "placing",
    "primary",
    "raw",
    "readratio",
    "recover",
    "references",
    "rejectlog",
    "resort",
    "respect",
    "restore",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "snapshot",
    "some",
    "symmetric",
    "sysdate",
    "system",
    "system_user",
    "table",
    "tablesample",
    "tag",
    "tdes",
    "text255",
    "text32k",
    "then",
    "timestamp",
    "to",
    "top",
    "trailing",
    "true",
    "truncatecolumns",
    "union",
    "unique",
    "unnest",
    "unpivot",
    "user",
    "using",
    "variadic",
    "verbose",
    "wallet",
    "when",
    "where",
    "window",
    "with",
    "without",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_sorted_and_lowercase() {
        assert!(RESERVED_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(RESERVED_WORDS
            .iter()
            .all(|w| w.bytes().all(|b| !b.is_ascii_uppercase())));
    }

    #[test]
    fn identifier_characters() {
        assert!(is_standard_identifier("_a1$"));
        assert!(is_standard_identifier("caf\u{e9}"));
        assert!(!is_standard_identifier("1a"));
        assert!(!is_standard_identifier("my events"));
        assert!(!is_standard_identifier(""));
        assert!(fits_identifier_length(&"a".repeat(127)));
        assert!(!fits_identifier_length(&"a".repeat(128)));
        assert!(!fits_identifier_length(""));
        assert!(is_stream_name_char('.') && !is_stream_name_char('$'));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a_1"), "a_1");
        assert_eq!(quote_ident("Order"), "\"Order\"");
        assert_eq!(quote_ident("order"), "\"order\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident("a$b"), "\"a$b\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
