//! What the stand-in installs in every database it serves: Redshift's system views and
//! functions in `pg_catalog` (so they resolve unqualified, like Redshift's), and its own
//! bookkeeping in the schema `redshift_local`.
//!
//! - `redshift_local.tables` / `redshift_local.columns`: the DISTSTYLE, sort key, encodings and
//!   informational constraints of tables created through the stand-in, keyed by OID and
//!   attribute number (rows of dropped tables are never shown: the views join `pg_attribute`).
//! - `pg_table_def` (r_PG_TABLE_DEF) and `svv_redshift_columns` (r_SVV_REDSHIFT_COLUMNS).
//! - `stv_slices` (r_STV_SLICES), `stl_load_errors` (r_STL_LOAD_ERRORS) and
//!   `sys_load_error_detail` (SYS_LOAD_ERROR_DETAIL). The load-error rows live in the central
//!   database `redshift_local`, written on a connection of their own so that they survive the
//!   COPY's rollback, and are read through dblink so that they are visible at once, whatever the
//!   reader's snapshot (c_serial_isolation: "STL and STV are not locked in a transaction").
//! - `pg_last_copy_count()` (PG_LAST_COPY_COUNT) and `pg_last_copy_id()` (PG_LAST_COPY_ID),
//!   which read the session's values the stand-in sets.
//!
//! Serverless mode hides the STL/STV names at the statement level (see `classify`), since one
//! PostgreSQL database is served in both modes at once.

/// Bumped whenever the SQL below changes, so that databases are reinstalled.
pub const CATALOG_VERSION: u32 = 4;

/// The central database that keeps the load-error log.
pub const LOG_DATABASE: &str = "redshift_local";

/// The names of the provisioned-only (STL/STV) relations the stand-in defines.
pub const PROVISIONED_ONLY: &[&str] = &["stv_slices", "stl_load_errors"];

/// The log table in [`LOG_DATABASE`].
pub const LOG_SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS load_errors (
    seq bigserial PRIMARY KEY,
    userid integer NOT NULL,
    slice integer NOT NULL,
    tbl integer NOT NULL,
    starttime timestamp NOT NULL,
    session integer NOT NULL,
    query bigint NOT NULL,
    transaction_id bigint NOT NULL,
    database_name text NOT NULL,
    filename text NOT NULL,
    line_number bigint NOT NULL,
    colname text NOT NULL,
    type text NOT NULL,
    col_length text NOT NULL,
    position integer NOT NULL,
    raw_line text NOT NULL,
    raw_field_value text NOT NULL,
    err_code integer NOT NULL,
    err_reason text NOT NULL,
    is_partial integer NOT NULL,
    start_offset bigint NOT NULL
);
-- STL views keep seven days of log history (cm_chap_system-tables).
DELETE FROM load_errors WHERE starttime < now() AT TIME ZONE 'UTC' - interval '7 days';
";

/// The columns of the log, in order, as dblink returns them.
const LOG_COLUMNS: &str = "userid integer, slice integer, tbl integer, starttime timestamp, \
    session integer, query bigint, transaction_id bigint, database_name text, filename text, \
    line_number bigint, colname text, type text, col_length text, \"position\" integer, \
    raw_line text, raw_field_value text, err_code integer, err_reason text, is_partial integer, \
    start_offset bigint";

/// The marker stored on the schema `redshift_local`; a different one means reinstall. It names
/// how the log database is signed in to (no password, or a fingerprint of the password, never
/// the password), so that a catalog installed before PostgreSQL checked passwords, or with
/// another password, is installed again instead of failing at its first `stl_load_errors` read.
pub fn marker(backend_port: u16, admin: &str, password: Option<&str>) -> String {
    let auth = match password {
        None => "none".to_owned(),
        Some(p) => {
            use md5::Digest;
            let digest = md5::Md5::digest(format!("redshift-local mapping {admin} {p}"));
            let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            format!("password:{hex}")
        }
    };
    format!(
        "redshift-local catalog v{CATALOG_VERSION} port={backend_port} admin={admin} auth={auth}"
    )
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The install script for one database, run by the admin (a superuser) in one transaction.
/// `password` is put in a user mapping (readable by superusers only), never in a definition.
pub fn install_sql(backend_port: u16, admin: &str, password: Option<&str>) -> String {
    let mapping = match password {
        Some(p) => format!("OPTIONS (user {}, password {})", lit(admin), lit(p)),
        None => format!("OPTIONS (user {})", lit(admin)),
    };
    format!(
        r#"
SELECT pg_advisory_xact_lock(7274190);
SET LOCAL allow_system_table_mods = on;
SET LOCAL client_min_messages = warning;
DROP VIEW IF EXISTS pg_catalog.pg_table_def, pg_catalog.svv_redshift_columns,
    pg_catalog.stv_slices, pg_catalog.stl_load_errors, pg_catalog.sys_load_error_detail;
DROP FUNCTION IF EXISTS pg_catalog.pg_last_copy_count(), pg_catalog.pg_last_copy_id();
CREATE SCHEMA IF NOT EXISTS redshift_local;
GRANT USAGE ON SCHEMA redshift_local TO PUBLIC;
-- "By default, all users have CREATE and USAGE privileges on the PUBLIC schema of a database"
-- (r_Schemas_and_tables); PostgreSQL 15 grants PUBLIC only USAGE.
GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC;
DROP FUNCTION IF EXISTS redshift_local.load_errors();
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA redshift_local;
DROP SERVER IF EXISTS redshift_local_log CASCADE;
CREATE SERVER redshift_local_log FOREIGN DATA WRAPPER dblink_fdw
    OPTIONS (host '127.0.0.1', port {port}, dbname {logdb});
CREATE USER MAPPING FOR {admin_ident} SERVER redshift_local_log {mapping};

CREATE TABLE IF NOT EXISTS redshift_local.tables (
    relid oid PRIMARY KEY,
    diststyle text NOT NULL,
    sortkey_style text NOT NULL,
    backup boolean NOT NULL,
    encode_auto boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS redshift_local.columns (
    attrelid oid NOT NULL,
    attnum smallint NOT NULL,
    encoding text NOT NULL,
    distkey boolean NOT NULL,
    sortkey integer NOT NULL,
    keyed boolean NOT NULL,
    PRIMARY KEY (attrelid, attnum)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON redshift_local.tables, redshift_local.columns TO PUBLIC;

-- Redshift's name for a column type: PostgreSQL's, with SUPER standing in for jsonb.
CREATE OR REPLACE FUNCTION redshift_local.type_name(typ oid, typmod integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE typ WHEN 'jsonb'::regtype THEN 'super'
                    WHEN 'bytea'::regtype THEN 'varbyte'
                    ELSE pg_catalog.format_type(typ, typmod) END
$$;

-- The encoding Redshift assigns a column given no ENCODE (c_Compression_encodings; r_ALTER_TABLE
-- ADD COLUMN; ingest-super: SUPER defaults to ZSTD). 'none' is RAW, as PG_TABLE_DEF shows it.
CREATE OR REPLACE FUNCTION redshift_local.default_encoding(typ oid, in_sortkey boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN in_sortkey THEN 'none'
        WHEN typ IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype,
                     'date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype,
                     'time'::regtype, 'timetz'::regtype) THEN 'az64'
        WHEN typ IN ('bpchar'::regtype, 'varchar'::regtype, 'text'::regtype, 'bytea'::regtype) THEN 'lzo'
        WHEN typ = 'jsonb'::regtype THEN 'zstd'
        ELSE 'none' END
$$;

CREATE OR REPLACE FUNCTION redshift_local.version() RETURNS varchar
LANGUAGE sql STABLE AS $$
    SELECT CAST(COALESCE(NULLIF(current_setting('redshift_local.version', true), ''),
        'PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 (Red Hat 3.4.2-6.fc3), Redshift 1.0.0') AS varchar)
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA redshift_local TO PUBLIC;

CREATE FUNCTION redshift_local.load_errors() RETURNS TABLE ({log_columns})
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, redshift_local AS $fn$
DECLARE
    who record;
BEGIN
    SELECT oid::integer AS id, rolsuper INTO who FROM pg_roles WHERE rolname = session_user;
    RETURN QUERY SELECT * FROM redshift_local.dblink('redshift_local_log',
        'SELECT userid, slice, tbl, starttime, session, query, transaction_id, database_name, '
        || 'filename, line_number, colname, type, col_length, position, raw_line, '
        || 'raw_field_value, err_code, err_reason, is_partial, start_offset FROM load_errors'
        || CASE WHEN who.rolsuper THEN '' ELSE ' WHERE userid = ' || who.id END
        || ' ORDER BY seq') AS t({log_columns});
END
$fn$;
REVOKE ALL ON FUNCTION redshift_local.load_errors() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION redshift_local.load_errors() TO PUBLIC;

CREATE VIEW pg_catalog.pg_table_def AS
SELECT n.nspname AS schemaname, c.relname AS tablename, a.attname AS "column",
       redshift_local.type_name(a.atttypid, a.atttypmod) AS type,
       CAST(COALESCE(rc.encoding, redshift_local.default_encoding(a.atttypid, false)) AS character(32)) AS encoding,
       COALESCE(rc.distkey, false) AS distkey,
       COALESCE(rc.sortkey, 0) AS sortkey,
       a.attnotnull AS "notnull"
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN redshift_local.columns rc ON rc.attrelid = c.oid AND rc.attnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND pg_catalog.pg_table_is_visible(c.oid)
  AND n.nspname <> 'redshift_local';

CREATE VIEW pg_catalog.svv_redshift_columns AS
SELECT CAST(current_database() AS varchar(128)) AS database_name,
       CAST(n.nspname AS varchar(128)) AS schema_name,
       CAST(c.relname AS varchar(128)) AS table_name,
       CAST(a.attname AS varchar(128)) AS column_name,
       CAST(a.attnum AS integer) AS ordinal_position,
       CAST(redshift_local.type_name(a.atttypid, a.atttypmod) AS varchar(32)) AS data_type,
       CAST(pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS varchar(4000)) AS column_default,
       CAST(CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS varchar(3)) AS is_nullable,
       CAST(COALESCE(rc.encoding, redshift_local.default_encoding(a.atttypid, false)) AS varchar(128)) AS encoding,
       COALESCE(rc.distkey, false) AS distkey,
       COALESCE(rc.sortkey, 0) AS sortkey,
       CAST(NULL AS varchar(128)) AS column_acl,
       CAST(pg_catalog.col_description(c.oid, a.attnum) AS varchar(256)) AS remarks
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
LEFT JOIN redshift_local.columns rc ON rc.attrelid = c.oid AND rc.attnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'v')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'redshift_local', 'pg_toast')
  AND (pg_catalog.has_table_privilege(c.oid, 'SELECT')
       OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'));

CREATE VIEW pg_catalog.stv_slices AS
SELECT CAST(s / 2 AS integer) AS node, CAST(s AS integer) AS slice,
       CAST(s % 2 AS integer) AS localslice, CAST('D' AS character(1)) AS type
FROM pg_catalog.generate_series(0,
     CAST(COALESCE(NULLIF(current_setting('redshift_local.slices', true), ''), '2') AS integer) - 1) AS s;

CREATE VIEW pg_catalog.stl_load_errors AS
SELECT userid, slice, tbl, starttime, session, CAST(query AS integer) AS query,
       CAST(filename AS character(256)) AS filename, line_number,
       CAST(colname AS character(127)) AS colname, CAST(type AS character(10)) AS type,
       CAST(col_length AS character(10)) AS col_length, "position",
       CAST(raw_line AS character(1024)) AS raw_line,
       CAST(raw_field_value AS character(1024)) AS raw_field_value, err_code,
       CAST(err_reason AS character(100)) AS err_reason, is_partial, start_offset
FROM redshift_local.load_errors();

CREATE VIEW pg_catalog.sys_load_error_detail AS
SELECT userid AS user_id, query AS query_id, transaction_id, session AS session_id,
       CAST(database_name AS character(64)) AS database_name, tbl AS table_id,
       starttime AS start_time, CAST(filename AS character(256)) AS file_name, line_number,
       CAST(colname AS character(127)) AS column_name, CAST(type AS character(10)) AS column_type,
       CAST(col_length AS character(10)) AS column_length, "position", err_code AS error_code,
       CAST(err_reason AS character(512)) AS error_message
FROM redshift_local.load_errors();

CREATE FUNCTION pg_catalog.pg_last_copy_count() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CAST(COALESCE(NULLIF(current_setting('redshift_local.last_copy_count', true), ''), '0') AS bigint)
$$;
CREATE FUNCTION pg_catalog.pg_last_copy_id() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT CAST(COALESCE(NULLIF(current_setting('redshift_local.last_copy_id', true), ''), '-1') AS integer)
$$;

GRANT SELECT ON pg_catalog.pg_table_def, pg_catalog.svv_redshift_columns, pg_catalog.stv_slices,
    pg_catalog.stl_load_errors, pg_catalog.sys_load_error_detail TO PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_last_copy_count(), pg_catalog.pg_last_copy_id() TO PUBLIC;
COMMENT ON SCHEMA redshift_local IS {marker};
"#,
        port = lit(&backend_port.to_string()),
        logdb = lit(LOG_DATABASE),
        admin_ident = ident(admin),
        mapping = mapping,
        log_columns = LOG_COLUMNS,
        marker = lit(&marker(backend_port, admin, password)),
    )
}
