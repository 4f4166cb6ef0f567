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

    /// `CREATE TABLE IF NOT EXISTS` for this table in the given dialect, without a trailing `;`.
    ///
    /// Columns come in field order, non-`Option` fields are `NOT NULL`. In the Redshift dialect a
    /// column's `ENCODE` comes before its `NOT NULL`, and the table attributes follow the column
    /// list in the order Redshift's grammar requires: `DISTSTYLE`, `DISTKEY`, `SORTKEY`. The
    /// PostgreSQL dialect drops every Redshift-only attribute and maps Redshift-only types
    /// (`SUPER` to `JSONB`). Identifiers are quoted only where they must be (see [`quote_ident`]).
    ///
    /// ```
    /// use redtrack_runtime::schema::{Column, Dialect, SortKey, SqlType, TableSchema};
    /// static SCHEMA: TableSchema = TableSchema {
    ///     name: "events",
    ///     columns: &[Column { name: "user", sql_type: SqlType::Integer, nullable: false, encode: None }],
    ///     sortkey: SortKey::Compound(&["user"]),
    ///     distkey: None,
    ///     diststyle: None,
    /// };
    /// assert_eq!(
    ///     SCHEMA.create_table_sql(Dialect::Redshift),
    ///     "CREATE TABLE IF NOT EXISTS events (\n    \"user\" INTEGER NOT NULL\n)\nCOMPOUND SORTKEY (\"user\")"
    /// );
    /// assert_eq!(
    ///     SCHEMA.create_table_sql(Dialect::Postgres),
    ///     "CREATE TABLE IF NOT EXISTS events (\n    \"user\" INTEGER NOT NULL\n)"
    /// );
    /// ```
    pub fn create_table_sql(&self, dialect: Dialect) -> String {
        let mut sql = String::with_capacity(64 + 48 * self.columns.len());
        sql.push_str("CREATE TABLE IF NOT EXISTS ");
        sql.push_str(&quote_ident(self.name));
        sql.push_str(" (\n");
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(",\n");
            }
            sql.push_str("    ");
            sql.push_str(&quote_ident(column.name));
            sql.push(' ');
            sql.push_str(&column.sql_type.sql(dialect));
            if let (Dialect::Redshift, Some(encoding)) = (dialect, column.encode) {
                sql.push_str(" ENCODE ");
                sql.push_str(&encoding.to_ascii_uppercase());
            }
            if !column.nullable {
                sql.push_str(" NOT NULL");
            }
        }
        sql.push_str("\n)");
        if dialect == Dialect::Redshift {
            let diststyle = match (self.diststyle, self.distkey) {
                (Some(style), _) => Some(style),
                (None, Some(_)) => Some(DistStyle::Key),
                (None, None) => None,
            };
            if let Some(style) = diststyle {
                sql.push_str("\nDISTSTYLE ");
                sql.push_str(style.sql());
            }
            if let Some(key) = self.distkey {
                sql.push_str("\nDISTKEY (");
                sql.push_str(&quote_ident(key));
                sql.push(')');
            }
            let (kind, keys) = match self.sortkey {
                SortKey::None => ("", &[][..]),
                SortKey::Compound(keys) => ("COMPOUND", keys),
                SortKey::Interleaved(keys) => ("INTERLEAVED", keys),
            };
            if !keys.is_empty() {
                sql.push('\n');
                sql.push_str(kind);
                sql.push_str(" SORTKEY (");
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&quote_ident(key));
                }
                sql.push(')');
            }
        }
        sql
    }

    /// The table's name quoted where it must be, ready to put into a statement.
    pub fn quoted_name(&self) -> std::borrow::Cow<'static, str> {
        quote_ident(self.name)
    }
}

impl SqlType {
    /// The type as written in DDL for `dialect`, e.g. `VARCHAR(32)`, `DOUBLE PRECISION`;
    /// `SUPER` becomes `JSONB` in the PostgreSQL dialect.
    pub fn sql(&self, dialect: Dialect) -> String {
        match *self {
            SqlType::SmallInt => "SMALLINT".into(),
            SqlType::Integer => "INTEGER".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            SqlType::Real => "REAL".into(),
            SqlType::Double => "DOUBLE PRECISION".into(),
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::Char { len } => format!("CHAR({len})"),
            SqlType::Varchar { len } => format!("VARCHAR({len})"),
            SqlType::Date => "DATE".into(),
            SqlType::Timestamp => "TIMESTAMP".into(),
            SqlType::TimestampTz => "TIMESTAMPTZ".into(),
            SqlType::Time => "TIME".into(),
            SqlType::Super => match dialect {
                Dialect::Redshift => "SUPER".into(),
                Dialect::Postgres => "JSONB".into(),
            },
        }
    }
}

impl std::fmt::Display for SqlType {
    /// The Redshift spelling, as in [`SqlType::sql`] with [`Dialect::Redshift`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql(Dialect::Redshift))
    }
}

impl DistStyle {
    /// The keyword after `DISTSTYLE`.
    pub fn sql(&self) -> &'static str {
        match self {
            DistStyle::Auto => "AUTO",
            DistStyle::Even => "EVEN",
            DistStyle::Key => "KEY",
            DistStyle::All => "ALL",
        }
    }
}

/// `name` as an SQL identifier: unchanged when it is a plain lowercase identifier
/// (`[a-z_][a-z0-9_]*`) that is not a reserved word of Redshift or PostgreSQL, else in double
/// quotes (with any `"` doubled). Redshift folds unquoted identifiers to lowercase, so names from
/// the derive are always lowercase already.
///
/// ```
/// use redtrack_runtime::schema::quote_ident;
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
    fn quoting() {
        assert_eq!(quote_ident("a_1"), "a_1");
        assert_eq!(quote_ident("Order"), "\"Order\"");
        assert_eq!(quote_ident("order"), "\"order\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident("a$b"), "\"a$b\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
