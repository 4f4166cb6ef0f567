//! Steps taken out of order: what the warehouse lacks because `setup` or `migrate --apply` was
//! not run (yet), told as [`Error::Missing`] naming the step. The one place that maps the
//! warehouse's answers to those: [`missing_step`] classifies an error by its SQLSTATE (every
//! warehouse error goes through it, in `db_error`), and [`check_table`] asks before a load, since
//! Redshift's `COPY ... JSON 'auto'` does not fail on a missing column: it drops the field's
//! values (page `copy-parameters-data-format`). Extend both here.

use tokio_postgres::error::SqlState;

use super::connector::db_error;
use crate::error::{Error, Missing, Result};
use crate::schema::TableSchema;

/// PostgreSQL's identifier length (NAMEDATALEN - 1), in bytes.
const POSTGRES_MAX_IDENTIFIER_BYTES: usize = 63;

/// The names of a table's columns in the connection's current schema; empty if the table does
/// not exist (`$1` the table's name).
const COLUMN_NAMES_SQL: &str = "SELECT CAST(column_name AS VARCHAR(128)) \
     FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1";

/// What is missing, if `e` says that a step was not taken: an undefined table (SQLSTATE 42P01,
/// `relation "t" does not exist`) or column (42703, `column "c" of relation "t" does not
/// exist`). The names come from the message's quoted parts; the kind only from the SQLSTATE.
pub(crate) fn missing_step(e: &tokio_postgres::Error) -> Option<Missing> {
    let db = e.as_db_error()?;
    let quoted = quoted_names(db.message());
    let unqualified = |name: &str| name.rsplit('.').next().unwrap_or(name).to_owned();
    if *db.code() == SqlState::UNDEFINED_TABLE {
        let table = db
            .table()
            .map(str::to_owned)
            .or_else(|| quoted.first().map(|t| unqualified(t)))?;
        return Some(Missing::Table { table });
    }
    if *db.code() == SqlState::UNDEFINED_COLUMN {
        let column = quoted.first()?.clone();
        let table = db
            .table()
            .map(str::to_owned)
            .or_else(|| quoted.get(1).map(|t| unqualified(t)))
            .unwrap_or_default();
        return Some(Missing::Columns {
            table,
            columns: vec![column],
        });
    }
    None
}

/// The `"..."` parts of a server message, in order.
fn quoted_names(message: &str) -> Vec<String> {
    message
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Fails with [`Error::Missing`] if `table` does not exist in the warehouse (`setup` was not
/// run) or lacks columns its struct has (`migrate --apply` was not run).
pub(crate) async fn check_table(
    client: &tokio_postgres::Client,
    table: &TableSchema,
) -> Result<()> {
    let what = format!("reading the columns of `{}`", table.name);
    let rows = client
        .query(COLUMN_NAMES_SQL, &[&table.name])
        .await
        .map_err(|e| db_error(&what, e))?;
    let mut present = Vec::with_capacity(rows.len());
    for row in &rows {
        present.push(super::column::<String>(row, 0, &what)?);
    }
    if present.is_empty() {
        return Err(Error::Missing {
            missing: Missing::Table {
                table: table.name.to_owned(),
            },
            source: None,
        });
    }
    // PostgreSQL cuts identifiers to 63 bytes (Redshift keeps 127), and its warehouse matches
    // the full key to the cut column.
    fn stored(name: &str) -> &str {
        crate::text::truncate_to_bytes(name, POSTGRES_MAX_IDENTIFIER_BYTES)
    }
    let columns: Vec<String> = table
        .columns
        .iter()
        .filter(|c| !present.iter().any(|p| p == c.name || p == stored(c.name)))
        .map(|c| c.name.to_owned())
        .collect();
    if columns.is_empty() {
        Ok(())
    } else {
        Err(Error::Missing {
            missing: Missing::Columns {
                table: table.name.to_owned(),
                columns,
            },
            source: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_quoted_parts() {
        assert_eq!(
            quoted_names(r#"column "coupon" of relation "purchases" does not exist"#),
            ["coupon", "purchases"]
        );
        assert_eq!(
            quoted_names(r#"relation "kinesis_loads" does not exist"#),
            ["kinesis_loads"]
        );
    }

    #[test]
    fn the_messages_name_the_step() {
        let table = Missing::Table {
            table: "purchases".into(),
        };
        assert_eq!(
            table.to_string(),
            "table `purchases` does not exist: run `setup --table purchases` (or \
             `Loader::setup`), which creates it"
        );
        let loads = Missing::Table {
            table: "kinesis_loads".into(),
        };
        assert!(loads.to_string().contains("run `setup`"), "{loads}");
        let column = Missing::Columns {
            table: "purchases".into(),
            columns: vec!["coupon".into()],
        };
        assert!(column
            .to_string()
            .starts_with("column `coupon` of table `purchases` is missing"));
        assert!(column
            .to_string()
            .ends_with("run `migrate --table purchases --apply`"));
    }
}
