//! A table as data: what the derive emits into user crates and what DDL, the encoder and the
//! loader read. Page: `r_CREATE_TABLE_NEW`.
//!
//! [`TableSchema`] and [`Column`] are built by generated code (as `static`s), so their fields are
//! public and they are not `#[non_exhaustive]`.

use crate::ident::quote_ident;
use crate::{Encoding, SqlType};

/// The loader's bookkeeping table of loaded sequence ranges (the original Ruby gem's name); an
/// event table may not take this name.
pub const KINESIS_LOADS: &str = "kinesis_loads";

/// The loader's table of rows rejected under MAXERROR.
pub const LOAD_REJECTS: &str = "redtrack_load_rejects";

/// A column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column name, lowercase, as Redshift stores it and as the JSON key.
    pub name: &'static str,
    /// The column's type.
    pub sql_type: SqlType,
    /// `true` for `Option<T>` fields; everything else is NOT NULL.
    pub nullable: bool,
    /// The compression encoding (`ENCODE ...`), if one was given: the lowercase name of an
    /// [`Encoding`] (see [`Column::encoding`]), which the derive checked against the column type.
    pub encode: Option<&'static str>,
}

impl Column {
    /// The column's compression encoding, if it has one Redshift knows.
    pub fn encoding(&self) -> Option<Encoding> {
        self.encode.and_then(Encoding::parse)
    }
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
    /// use redtrack_schema::{Column, Dialect, SortKey, SqlType, TableSchema};
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
            if dialect == Dialect::Redshift {
                if let Some(encode) = column.encode {
                    sql.push_str(" ENCODE ");
                    sql.push_str(&encode.to_ascii_uppercase());
                }
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

impl DistStyle {
    /// The style named `name` (`auto`, `even`, `key` or `all`; case and surrounding spaces do
    /// not matter).
    pub fn parse(name: &str) -> Option<DistStyle> {
        match name.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(DistStyle::Auto),
            "even" => Some(DistStyle::Even),
            "key" => Some(DistStyle::Key),
            "all" => Some(DistStyle::All),
            _ => None,
        }
    }

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
