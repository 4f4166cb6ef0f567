//! Schema evolution: compare an event struct's [`TableSchema`] with the columns the warehouse has,
//! and plan the statements that bring the table up to date, or refuse with a reason.
//!
//! What is planned: `ADD COLUMN` for a new nullable field, and widening a `VARCHAR`. What is
//! refused, with what to do instead: a changed type, a narrowed column, a column that became
//! NOT NULL (or a new NOT NULL field, which existing rows cannot satisfy), a NOT NULL column the
//! struct no longer has (COPY would load NULL into it and fail), a column that lost NOT NULL
//! (Redshift cannot drop a NOT NULL constraint), and a VARCHAR that Redshift cannot widen in
//! place: one encoded BYTEDICT, RUNLENGTH, TEXT255 or TEXT32K, or one with a DEFAULT
//! (`https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html`, ALTER COLUMN ... TYPE).
//!
//! On Redshift the columns are read from `svv_redshift_columns` (type, nullability, encoding,
//! default, distribution and sort key; `r_SVV_REDSHIFT_COLUMNS`), since `information_schema`
//! carries no encoding; on PostgreSQL from `information_schema.columns`
//! ([`read_columns_for`]). [`MigrationPlan::apply`] runs every `ADD COLUMN` in one transaction
//! and each `ALTER COLUMN ... TYPE` on its own (Redshift refuses it inside a transaction block),
//! and a failure names exactly what was applied and what was not.
//!
//! ```
//! use redtrack_runtime::migrate::{plan, WarehouseColumn};
//! use redtrack_runtime::schema::{Column, Dialect, SortKey, SqlType, TableSchema};
//! static SCHEMA: TableSchema = TableSchema {
//!     name: "events",
//!     columns: &[
//!         Column { name: "id", sql_type: SqlType::Integer, nullable: false, encode: None },
//!         Column { name: "note", sql_type: SqlType::Varchar { len: 64 }, nullable: true, encode: None },
//!     ],
//!     sortkey: SortKey::None,
//!     distkey: None,
//!     diststyle: None,
//! };
//! let existing = [WarehouseColumn::new("id", "integer", false)];
//! let plan = plan(&SCHEMA, &existing);
//! assert!(plan.refusals.is_empty());
//! assert_eq!(plan.statements(Dialect::Redshift), ["ALTER TABLE events ADD COLUMN note VARCHAR(64)"]);
//! ```

use std::fmt;

use crate::error::{Error, Result};
use crate::schema::{quote_ident, Column, Dialect, SqlType, TableSchema};
use crate::warehouse::{column, db_error, statement_error};

/// Encodings whose VARCHAR columns Redshift cannot widen with `ALTER COLUMN ... TYPE`
/// (`r_ALTER_TABLE`).
const NOT_WIDENABLE_ENCODINGS: &[&str] = &["bytedict", "runlength", "text255", "text32k"];

/// A column as the warehouse's catalog describes it (`information_schema.columns`, or
/// Redshift's `svv_redshift_columns`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarehouseColumn {
    /// The column name.
    pub name: String,
    /// `data_type` as the warehouse spells it (e.g. `character varying`).
    pub data_type: String,
    /// `character_maximum_length`, for character types.
    pub char_len: Option<i32>,
    /// `numeric_precision`, for numeric types.
    pub precision: Option<i32>,
    /// `numeric_scale`, for numeric types.
    pub scale: Option<i32>,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Its compression encoding, lowercase (`lzo`, `text32k`, `none` for RAW), where the
    /// catalog says (Redshift).
    pub encoding: Option<String>,
    /// Its DEFAULT expression, if it has one (read on Redshift).
    pub default: Option<String>,
    /// Whether it is the table's distribution key (Redshift).
    pub distkey: bool,
    /// Its place in the sort key (0: not in it; negative for an interleaved one), Redshift.
    pub sortkey: i32,
}

impl WarehouseColumn {
    /// A column of a type without length or precision (e.g. `integer`).
    pub fn new(name: &str, data_type: &str, nullable: bool) -> WarehouseColumn {
        WarehouseColumn {
            name: name.to_owned(),
            data_type: data_type.to_owned(),
            char_len: None,
            precision: None,
            scale: None,
            nullable,
            encoding: None,
            default: None,
            distkey: false,
            sortkey: 0,
        }
    }

    /// This column with its encoding as the catalog names it (`text32k`, ...).
    pub fn with_encoding(mut self, encoding: &str) -> WarehouseColumn {
        self.encoding = Some(encoding.trim().to_ascii_lowercase());
        self
    }

    /// This column with a DEFAULT expression.
    pub fn with_default(mut self, default: &str) -> WarehouseColumn {
        self.default = Some(default.to_owned());
        self
    }

    /// Why Redshift cannot widen this VARCHAR in place, if it cannot (`r_ALTER_TABLE`).
    fn widen_blocker(&self) -> Option<String> {
        if let Some(enc) = self
            .encoding
            .as_deref()
            .filter(|e| NOT_WIDENABLE_ENCODINGS.contains(e))
        {
            return Some(format!("it is encoded {}", enc.to_ascii_uppercase()));
        }
        self.default
            .as_ref()
            .map(|d| format!("it has a DEFAULT ({d})"))
    }

    /// The column's type as a [`SqlType`], if redtrack knows it
    /// ([`SqlType::from_catalog`], the one reading of catalog type names).
    pub fn sql_type(&self) -> Option<SqlType> {
        SqlType::from_catalog(&self.data_type, self.char_len, self.precision, self.scale)
    }

    fn type_text(&self) -> String {
        match self.sql_type() {
            Some(t) => t.to_string(),
            None => self.data_type.clone(),
        }
    }
}

/// A change that brings the table up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// `ALTER TABLE ... ADD COLUMN` for a new nullable field.
    AddColumn(Column),
    /// `ALTER TABLE ... ALTER COLUMN ... TYPE VARCHAR(n)` to a longer length.
    WidenVarchar {
        /// The column.
        column: &'static str,
        /// Its length now.
        from: u32,
        /// The struct's length.
        to: u32,
    },
}

/// A difference that redtrack will not apply, with why and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The column.
    pub column: String,
    /// Why it is refused and what to do instead.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column `{}`: {}", self.column, self.reason)
    }
}

/// The differences between a struct's schema and the warehouse's table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationPlan {
    /// The table.
    pub table: &'static TableSchema,
    /// The table does not exist: it will be created.
    pub create: bool,
    /// Changes to apply, in field order.
    pub changes: Vec<Change>,
    /// Differences that are refused; with any, nothing is applied.
    pub refusals: Vec<Refusal>,
    /// Harmless differences worth knowing (e.g. a nullable column the struct no longer has).
    pub notes: Vec<String>,
}

impl MigrationPlan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.create && self.changes.is_empty() && self.refusals.is_empty()
    }

    /// The statements of the plan, one per element, without trailing `;`. Each runs on its own
    /// (Redshift runs `ALTER COLUMN ... TYPE` only outside a transaction block).
    pub fn statements(&self, dialect: Dialect) -> Vec<String> {
        if self.create {
            return vec![self.table.create_table_sql(dialect)];
        }
        let table = self.table.quoted_name();
        self.changes
            .iter()
            .map(|change| match change {
                Change::AddColumn(c) => {
                    let mut sql = format!(
                        "ALTER TABLE {table} ADD COLUMN {} {}",
                        quote_ident(c.name),
                        c.sql_type.sql(dialect)
                    );
                    if let (Dialect::Redshift, Some(enc)) = (dialect, c.encode) {
                        sql.push_str(" ENCODE ");
                        sql.push_str(&enc.to_ascii_uppercase());
                    }
                    sql
                }
                Change::WidenVarchar { column, to, .. } => format!(
                    "ALTER TABLE {table} ALTER COLUMN {} TYPE VARCHAR({to})",
                    quote_ident(column)
                ),
            })
            .collect()
    }
}

/// What [`MigrationPlan::apply`] ran.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Applied {
    /// The statements that took effect, in order.
    pub statements: Vec<String>,
}

impl MigrationPlan {
    /// Runs the plan on `client` in `dialect`: a missing table is created; every `ADD COLUMN`
    /// runs in one transaction (all or none); then each `ALTER COLUMN ... TYPE` on its own,
    /// outside a transaction block, as Redshift requires (`r_ALTER_TABLE`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the plan has refusals (nothing is run); [`Error::Warehouse`] when a
    /// statement fails, saying which statements were applied before it (they stay applied),
    /// which one failed, and which were not run.
    pub async fn apply(
        &self,
        client: &mut tokio_postgres::Client,
        dialect: Dialect,
    ) -> Result<Applied> {
        if !self.refusals.is_empty() {
            return Err(Error::Config(format!(
                "the migration of `{}` has refusals; nothing was applied",
                self.table.name
            )));
        }
        let statements = self.statements(dialect);
        // A new table is one statement; ADD COLUMNs go together, ALTER COLUMN ... TYPEs alone.
        let (mut together, mut alone): (Vec<&String>, Vec<&String>) = (Vec::new(), Vec::new());
        if self.create {
            together.extend(&statements);
        } else {
            for (change, sql) in self.changes.iter().zip(&statements) {
                match change {
                    Change::AddColumn(_) => together.push(sql),
                    Change::WidenVarchar { .. } => alone.push(sql),
                }
            }
        }
        let mut applied = Applied::default();
        let failed = |applied: &Applied, sql: &str, rest: &[&String], e| {
            let done = if applied.statements.is_empty() {
                "nothing".to_owned()
            } else {
                applied.statements.join("; ")
            };
            let not_run: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
            statement_error(
                &format!(
                    "migrating `{}`: applied: {done}; failed: `{sql}`; not run: {}",
                    self.table.name,
                    if not_run.is_empty() {
                        "nothing".to_owned()
                    } else {
                        not_run.join("; ")
                    }
                ),
                e,
            )
        };
        if !together.is_empty() {
            let all: Vec<&String> = together.iter().chain(&alone).copied().collect();
            let txn = client
                .transaction()
                .await
                .map_err(|e| failed(&applied, together[0], &all, e))?;
            for (i, sql) in together.iter().enumerate() {
                if let Err(e) = txn.batch_execute(sql).await {
                    // The transaction rolls back: none of its statements took effect.
                    return Err(failed(&applied, sql, &all[i + 1..], e));
                }
            }
            let first = together[0];
            txn.commit()
                .await
                .map_err(|e| failed(&applied, first, &all, e))?;
            applied
                .statements
                .extend(together.iter().map(|s| (*s).clone()));
        }
        for (i, sql) in alone.iter().enumerate() {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| failed(&applied, sql, &alone[i + 1..], e))?;
            applied.statements.push((*sql).clone());
        }
        Ok(applied)
    }
}

/// Compares `schema` with the warehouse's columns of its table (`existing`, empty when the table
/// does not exist).
pub fn plan(schema: &'static TableSchema, existing: &[WarehouseColumn]) -> MigrationPlan {
    let mut plan = MigrationPlan {
        table: schema,
        create: existing.is_empty(),
        changes: Vec::new(),
        refusals: Vec::new(),
        notes: Vec::new(),
    };
    if plan.create {
        return plan;
    }
    let refuse = |plan: &mut MigrationPlan, column: &str, reason: String| {
        plan.refusals.push(Refusal {
            column: column.to_owned(),
            reason,
        })
    };
    for column in schema.columns {
        let Some(have) = existing.iter().find(|w| w.name == column.name) else {
            if column.nullable {
                plan.changes.push(Change::AddColumn(*column));
            } else {
                refuse(
                    &mut plan,
                    column.name,
                    format!(
                        "is a new NOT NULL column ({}), which the rows already in `{}` cannot \
                         satisfy; make the field an Option<_>, or add the column by hand with a \
                         DEFAULT and run migrate again",
                        column.sql_type, schema.name
                    ),
                );
            };
            continue;
        };
        match (have.sql_type(), column.sql_type) {
            (Some(SqlType::Varchar { len: from }), SqlType::Varchar { len: to }) if from < to => {
                match have.widen_blocker() {
                    None => plan.changes.push(Change::WidenVarchar {
                        column: column.name,
                        from,
                        to,
                    }),
                    Some(why) => refuse(
                        &mut plan,
                        column.name,
                        format!(
                            "the struct widens VARCHAR({from}) to VARCHAR({to}), but Redshift \
                             cannot alter the type of this column: {why} (r_ALTER_TABLE allows \
                             ALTER COLUMN ... TYPE only for VARCHAR columns that are not encoded \
                             BYTEDICT, RUNLENGTH, TEXT255 or TEXT32K and have no DEFAULT); \
                             either keep VARCHAR({from}) in the struct (the encoder truncates to \
                             it), or deep-copy the table: CREATE TABLE {table}_new with the \
                             struct's DDL (`ddl --table {table}`, renamed), INSERT INTO \
                             {table}_new SELECT * FROM {table}, then DROP TABLE {table} and ALTER \
                             TABLE {table}_new RENAME TO {table}, with loads stopped \
                             (https://docs.aws.amazon.com/redshift/latest/dg/performing-a-deep-copy.html)",
                            table = schema.name
                        ),
                    ),
                }
            }
            (Some(SqlType::Varchar { len: from }), SqlType::Varchar { len: to }) if from > to => {
                refuse(
                    &mut plan,
                    column.name,
                    format!(
                        "the struct narrows VARCHAR({from}) to VARCHAR({to}); Redshift cannot \
                         narrow a column and its rows may be longer; keep the length at {from} \
                         (the encoder truncates to the declared length) or deep-copy the table"
                    ),
                );
            }
            (Some(t), wanted) if t == wanted => {}
            (_, wanted) => refuse(
                &mut plan,
                column.name,
                format!(
                    "the table has type {} but the struct declares {wanted}; a type change \
                     needs a new column (add a field with another name) or a deep copy of the table",
                    have.type_text()
                ),
            ),
        }
        match (have.nullable, column.nullable) {
            (true, false) => refuse(
                &mut plan,
                column.name,
                "became NOT NULL; rows already in the table may hold NULL and Redshift cannot \
                 add NOT NULL to an existing column; make the field an Option<_>"
                    .to_owned(),
            ),
            (false, true) => refuse(
                &mut plan,
                column.name,
                "is NOT NULL in the table but an Option<_> in the struct, so a None would fail \
                 COPY; Redshift cannot drop NOT NULL: make the field non-optional, or deep-copy \
                 the table into one with a nullable column"
                    .to_owned(),
            ),
            _ => {}
        }
    }
    for have in existing {
        if schema.column(&have.name).is_some() {
            continue;
        }
        if have.nullable {
            plan.notes.push(format!(
                "column `{}` ({}) is in the table but not in the struct: loads will put NULL in it",
                have.name,
                have.type_text()
            ));
        } else {
            refuse(
                &mut plan,
                &have.name,
                format!(
                    "is a NOT NULL column of `{}` that the struct no longer has, so every COPY \
                     would fail on it; add the field back, or drop the column (ALTER TABLE {} \
                     DROP COLUMN {}) if its data is no longer needed",
                    schema.name,
                    schema.quoted_name(),
                    quote_ident(&have.name)
                ),
            );
        }
    }
    plan
}

/// A table's columns (`$1`) in Redshift's catalog, as VARCHAR and INTEGER values.
pub(crate) const REDSHIFT_COLUMNS_SQL: &str = "SELECT CAST(column_name AS VARCHAR(128)), \
     CAST(data_type AS VARCHAR(128)), CAST(is_nullable AS VARCHAR(3)), \
     CAST(TRIM(encoding) AS VARCHAR(128)), CAST(column_default AS VARCHAR(4000)), \
     CAST(CASE WHEN distkey THEN 'true' ELSE 'false' END AS VARCHAR(5)), \
     CAST(sortkey AS INTEGER) FROM svv_redshift_columns \
     WHERE schema_name = current_schema() AND table_name = $1 ORDER BY ordinal_position";

/// The columns of `table` in the connection's current schema as `dialect`'s catalog describes
/// them, in order; empty if the table does not exist. On Redshift from `svv_redshift_columns`
/// (with encodings, defaults and keys, `r_SVV_REDSHIFT_COLUMNS`), on PostgreSQL from
/// `information_schema.columns` ([`read_columns`]). Values cross as VARCHAR or INTEGER.
pub async fn read_columns_for(
    client: &tokio_postgres::Client,
    table: &str,
    dialect: Dialect,
) -> Result<Vec<WarehouseColumn>> {
    if dialect == Dialect::Postgres {
        return read_columns(client, table).await;
    }
    let what = format!("reading the columns of `{table}` from svv_redshift_columns");
    let rows = client
        .query(REDSHIFT_COLUMNS_SQL, &[&table])
        .await
        .map_err(|e| db_error(&what, e))?;
    rows.iter()
        .map(|r| {
            let mut c = WarehouseColumn::new(
                &column::<String>(r, 0, &what)?,
                &column::<String>(r, 1, &what)?,
                column::<String>(r, 2, &what)?.eq_ignore_ascii_case("YES"),
            );
            c.encoding =
                column::<Option<String>>(r, 3, &what)?.map(|e| e.trim().to_ascii_lowercase());
            c.default = column(r, 4, &what)?;
            c.distkey = column::<String>(r, 5, &what)? == "true";
            c.sortkey = column(r, 6, &what)?;
            Ok(c)
        })
        .collect()
}

/// The columns of `table` in the connection's current schema, from
/// `information_schema.columns` (no encodings: on Redshift use [`read_columns_for`]), in
/// order; empty if the table does not exist.
pub async fn read_columns(
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<Vec<WarehouseColumn>> {
    const SQL: &str = "SELECT CAST(column_name AS VARCHAR(128)), CAST(data_type AS VARCHAR(128)), \
         CAST(character_maximum_length AS INTEGER), CAST(numeric_precision AS INTEGER), \
         CAST(numeric_scale AS INTEGER), CAST(is_nullable AS VARCHAR(3)) \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
    let what = format!("reading the columns of `{table}`");
    let rows = client
        .query(SQL, &[&table])
        .await
        .map_err(|e| db_error(&what, e))?;
    rows.iter()
        .map(|r| {
            let mut c = WarehouseColumn::new(
                &column::<String>(r, 0, &what)?,
                &column::<String>(r, 1, &what)?,
                column::<String>(r, 5, &what)?.eq_ignore_ascii_case("YES"),
            );
            c.char_len = column(r, 2, &what)?;
            c.precision = column(r, 3, &what)?;
            c.scale = column(r, 4, &what)?;
            Ok(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SortKey;

    static SCHEMA: TableSchema = TableSchema {
        name: "events",
        columns: &[
            Column {
                name: "id",
                sql_type: SqlType::BigInt,
                nullable: false,
                encode: None,
            },
            Column {
                name: "message",
                sql_type: SqlType::Varchar { len: 128 },
                nullable: true,
                encode: Some("zstd"),
            },
        ],
        sortkey: SortKey::None,
        distkey: None,
        diststyle: None,
    };

    fn varchar(name: &str, len: i32, nullable: bool) -> WarehouseColumn {
        WarehouseColumn {
            char_len: Some(len),
            ..WarehouseColumn::new(name, "character varying", nullable)
        }
    }

    #[test]
    fn a_missing_table_is_created() {
        let p = plan(&SCHEMA, &[]);
        assert!(p.create);
        assert_eq!(
            p.statements(Dialect::Redshift),
            [SCHEMA.create_table_sql(Dialect::Redshift)]
        );
    }

    #[test]
    fn same_columns_mean_nothing_to_do() {
        let p = plan(
            &SCHEMA,
            &[
                WarehouseColumn::new("id", "bigint", false),
                varchar("message", 128, true),
            ],
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_new_nullable_field_is_added_with_its_encoding() {
        let p = plan(&SCHEMA, &[WarehouseColumn::new("id", "bigint", false)]);
        assert!(p.refusals.is_empty());
        assert_eq!(
            p.statements(Dialect::Redshift),
            ["ALTER TABLE events ADD COLUMN message VARCHAR(128) ENCODE ZSTD"]
        );
        assert_eq!(
            p.statements(Dialect::Postgres),
            ["ALTER TABLE events ADD COLUMN message VARCHAR(128)"]
        );
    }

    #[test]
    fn a_varchar_is_widened_but_never_narrowed() {
        let p = plan(
            &SCHEMA,
            &[
                WarehouseColumn::new("id", "bigint", false),
                varchar("message", 32, true),
            ],
        );
        assert_eq!(
            p.statements(Dialect::Redshift),
            ["ALTER TABLE events ALTER COLUMN message TYPE VARCHAR(128)"]
        );
        let p = plan(
            &SCHEMA,
            &[
                WarehouseColumn::new("id", "bigint", false),
                varchar("message", 256, true),
            ],
        );
        assert_eq!(p.refusals.len(), 1);
        assert!(p.refusals[0]
            .reason
            .contains("narrows VARCHAR(256) to VARCHAR(128)"));
    }

    /// r_ALTER_TABLE: no ALTER COLUMN ... TYPE for BYTEDICT, RUNLENGTH, TEXT255 or TEXT32K
    /// columns, nor for columns with a DEFAULT: refused, with the deep copy to do instead.
    #[test]
    fn a_varchar_redshift_cannot_widen_is_refused_with_a_deep_copy() {
        for (have, why) in [
            (
                varchar("message", 32, true).with_encoding("TEXT32K "),
                "encoded TEXT32K",
            ),
            (
                varchar("message", 32, true).with_encoding("bytedict"),
                "encoded BYTEDICT",
            ),
            (
                varchar("message", 32, true).with_default("'x'"),
                "has a DEFAULT",
            ),
        ] {
            let p = plan(
                &SCHEMA,
                &[WarehouseColumn::new("id", "bigint", false), have],
            );
            assert!(p.changes.is_empty(), "{p:?}");
            assert_eq!(p.refusals.len(), 1, "{p:?}");
            assert!(p.refusals[0].reason.contains(why), "{}", p.refusals[0]);
            assert!(
                p.refusals[0].reason.contains("deep-copy"),
                "{}",
                p.refusals[0]
            );
        }
        let lzo = varchar("message", 32, true).with_encoding("lzo");
        let p = plan(&SCHEMA, &[WarehouseColumn::new("id", "bigint", false), lzo]);
        assert_eq!(p.changes.len(), 1, "{p:?}");
    }

    #[test]
    fn type_changes_and_nullability_changes_are_refused_with_the_column() {
        let p = plan(
            &SCHEMA,
            &[
                WarehouseColumn::new("id", "integer", true),
                varchar("message", 128, false),
            ],
        );
        let text: Vec<String> = p.refusals.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0]
            .starts_with("column `id`: the table has type INTEGER but the struct declares BIGINT"));
        assert!(text[1].starts_with("column `id`: became NOT NULL"));
        assert!(text[2].starts_with("column `message`: is NOT NULL in the table"));
    }

    #[test]
    fn a_dropped_not_null_column_is_refused_and_a_nullable_one_noted() {
        let p = plan(
            &SCHEMA,
            &[
                WarehouseColumn::new("id", "bigint", false),
                varchar("message", 128, true),
                WarehouseColumn::new("old_flag", "boolean", true),
                WarehouseColumn::new("old_count", "integer", false),
            ],
        );
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].contains("`old_flag` (BOOLEAN)"));
        assert_eq!(p.refusals.len(), 1);
        assert_eq!(p.refusals[0].column, "old_count");
        assert!(p.refusals[0].reason.contains("DROP COLUMN old_count"));
    }

    #[test]
    fn a_new_not_null_field_is_refused() {
        let p = plan(&SCHEMA, &[varchar("message", 128, true)]);
        assert_eq!(p.refusals.len(), 1);
        assert_eq!(p.refusals[0].column, "id");
        assert!(p.refusals[0]
            .reason
            .contains("new NOT NULL column (BIGINT)"));
    }
}
