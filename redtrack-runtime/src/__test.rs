//! Items redtrack's own tests and checks reach into (the crash tests' pause hook, the checkpoint
//! queries, the statements the SQL lint parses). Not public API: no stability promises, hidden
//! from the docs.

#[cfg(feature = "test-hooks")]
pub use crate::hooks::{Phase, PAUSE_ENV, PAUSE_MARKER};
pub use crate::loader::checkpoint::{read_checkpoints, OVERLAP_SQL};

/// How many record identities the warehouse remembers for `stream` of `table` (the dedupe
/// table's rows, decoded).
pub async fn remembered_record_ids(
    client: &tokio_postgres::Client,
    table: &str,
    stream: &str,
) -> crate::Result<usize> {
    Ok(dedupe::remembered(client, table, stream).await?.ids.len())
}

/// Whether the loader's check of each record before COPY takes `record` as a row of `table`
/// (with the struct's column types): the line it stages, or the reason it rejects it.
pub fn loader_check(table: &'static TableSchema, record: &[u8]) -> Result<Vec<u8>, String> {
    LoaderCheck::new(table)
        .check(record)
        .map(|line| line.to_vec())
}

/// The loader's check of each record against one table's columns, built once (for benchmarks).
#[derive(Debug)]
pub struct LoaderCheck(crate::loader::RecordRules);

impl LoaderCheck {
    /// The check of `table`'s records (with the struct's column types).
    pub fn new(table: &'static TableSchema) -> LoaderCheck {
        LoaderCheck(crate::loader::RecordRules::new(table, &[]))
    }

    /// The line the loader stages for `record`, or the reason it rejects it.
    pub fn check<'a>(&self, record: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, String> {
        self.0
            .check(record)
            .map_err(|bad| match bad.column.as_str() {
                "" => bad.reason,
                column => format!("column {column}: {}", bad.reason),
            })
    }
}

/// `postgres://user:secret@host/db` with the password replaced by `***` (for the tests' own
/// messages).
pub fn redact_url(url: &str) -> String {
    crate::config::redact_url(url)
}

/// Registers `secret` for the warehouse connections' swap (see `warehouse::masked`): statements
/// carry the guard's placeholder, the server gets the secret.
pub fn mask_secret(secret: &str) -> crate::warehouse::masked::MaskGuard {
    crate::warehouse::masked::mask(secret)
}

use crate::loader::{checkpoint, dedupe, redrive, rejects};
use crate::schema::{Dialect, TableSchema, KINESIS_LOADS, LOAD_REJECTS};
use crate::warehouse::{redshift, CopyRequest};

/// Every statement the loader sends to Redshift for `table`, for SQL linters: bound parameters
/// (`$1`, `$2`, ...) appear as sample literals, as the server sees them after binding.
pub fn redshift_statements(table: &'static TableSchema) -> Vec<String> {
    let req = CopyRequest {
        table,
        load_id: "033535-4f720c9b".into(),
        folder: format!(
            "redtrack/cluster/db/{}/20261124/load-033535-4f720c9b",
            table.name
        ),
        manifest_url: format!(
            "s3://bucket/prefix/redtrack/cluster/db/{}/20261124/load-033535-4f720c9b/manifest.json",
            table.name
        ),
        files: Vec::new(),
        max_errors: 10,
    };
    let mut out = vec![
        checkpoint::kinesis_loads_ddl(Dialect::Redshift),
        rejects::load_rejects_ddl(Dialect::Redshift),
        redshift::SLICES_SQL.to_owned(),
        checkpoint::CHECKPOINTS_SQL.to_owned(),
        redshift::lock_sql(table),
        checkpoint::OVERLAP_SQL.to_owned(),
        checkpoint::INSERT_RANGE_SQL.to_owned(),
        rejects::INSERT_REJECT_SQL.to_owned(),
        checkpoint::recent_loads_sql(20),
        checkpoint::CAUGHT_UP_SQL.to_owned(),
        checkpoint::EXISTING_COLUMNS_SQL.to_owned(),
        rejects::load_reject_parts_ddl(Dialect::Redshift),
        rejects::INSERT_PART_SQL.to_owned(),
        rejects::recent_rejects_sql(20),
        format!("{}{}", redrive::CANDIDATES_SQL, redrive::BATCH),
        redrive::PARTS_SQL.to_owned(),
        redrive::count_rejected_sql(3),
        redrive::mark_redriven_sql(3),
        redshift::LAST_COPY_COUNT_SQL.to_owned(),
        crate::migrate::REDSHIFT_COLUMNS_SQL.to_owned(),
        redshift::LOAD_ERRORS_SQL.to_owned(),
        dedupe::dedupe_ddl(table.name, Dialect::Redshift),
        dedupe::remembered_sql(table.name),
        dedupe::load_ids_sql(table.name),
        dedupe::ids_of_load_sql(table.name),
        dedupe::insert_sql(table.name, 2),
        dedupe::prune_sql(table.name, 2),
    ];
    // What `setup` adds to the tables of the Ruby gem or an older redtrack.
    for (table, columns) in [
        (KINESIS_LOADS, checkpoint::ADDED_COLUMNS),
        (LOAD_REJECTS, rejects::ADDED_COLUMNS),
    ] {
        for (name, sql_type) in columns {
            out.push(format!("ALTER TABLE {table} ADD COLUMN {name} {sql_type}"));
        }
    }
    for auth in [
        redshift::iam_role_clause("arn:aws:iam::123456789012:role/redtrack-copy"),
        redshift::credentials_clause("AKIAEXAMPLE", "secret", None),
        redshift::credentials_clause("ASIAEXAMPLE", "secret", Some("token")),
    ]
    .into_iter()
    .flatten()
    {
        out.extend(redshift::copy_sql(&req, &auth, req.max_errors));
    }
    out.into_iter().map(|s| bind_samples(&s)).collect()
}

/// `$n` replaced by a sample string literal.
fn bind_samples(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push_str("'49590338271490256608559692538361571095921575989136588898'");
        } else {
            out.push(c);
        }
    }
    out
}
