//! `redtrack_load_rejects`: the rows a load rejected (under MAXERROR, or the first of a failed
//! load), kept with their file, line, column, raw value and reason.

use crate::error::{RejectedRow, Result};
use crate::schema::{Dialect, LOAD_REJECTS};
use crate::text::truncate_string;
use crate::warehouse::db_error;

/// `CREATE TABLE IF NOT EXISTS redtrack_load_rejects`: rows rejected under MAXERROR, kept.
pub(crate) fn load_rejects_ddl(dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE EVEN",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {LOAD_REJECTS} (\n    \
         load_id VARCHAR(64) NOT NULL,\n    \
         table_name VARCHAR(256) NOT NULL,\n    \
         file_name VARCHAR(1024) NOT NULL,\n    \
         line_number BIGINT NOT NULL,\n    \
         column_name VARCHAR(256) NOT NULL,\n    \
         raw_value VARCHAR(4096) NOT NULL,\n    \
         reason VARCHAR(1024) NOT NULL,\n    \
         rejected_at TIMESTAMP NOT NULL\n){tail}"
    )
}

/// Keeps one rejected row.
pub(crate) const INSERT_REJECT_SQL: &str = "INSERT INTO redtrack_load_rejects (load_id, table_name, \
     file_name, line_number, column_name, raw_value, reason, rejected_at) VALUES ($1, $2, $3, \
     CAST(CAST($4 AS VARCHAR(20)) AS BIGINT), $5, $6, $7, CAST(CAST($8 AS VARCHAR(32)) AS TIMESTAMP))";

/// The most recent rejects of a table (`$1`), newest first, at most `limit` rows.
pub(crate) fn recent_rejects_sql(limit: u32) -> String {
    format!(
        "SELECT load_id, file_name, line_number, column_name, raw_value, reason, \
         CAST(rejected_at AS VARCHAR(32)) FROM redtrack_load_rejects WHERE table_name = $1 \
         ORDER BY rejected_at DESC, file_name, line_number LIMIT {limit}"
    )
}

/// Keeps rejected rows of load `load_id` in `redtrack_load_rejects`, stamped `ts`.
pub(crate) async fn keep_rejects<C: tokio_postgres::GenericClient>(
    client: &C,
    load_id: &str,
    table: &str,
    rows: &[RejectedRow],
    ts: &str,
) -> Result<()> {
    for r in rows {
        let line = r.line.to_string();
        client
            .execute(
                INSERT_REJECT_SQL,
                &[
                    &load_id,
                    &table,
                    &r.file,
                    &line,
                    &r.column,
                    &r.value,
                    &truncate_string(r.reason.clone(), 1024),
                    &ts,
                ],
            )
            .await
            .map_err(|e| db_error(&format!("keeping a rejected row in {LOAD_REJECTS}"), e))?;
    }
    Ok(())
}
