//! The SQL the PostgreSQL warehouse runs: each column read out of a staged JSON line with COPY
//! JSON 'auto''s meaning, the bulk `INSERT ... SELECT`, and the row-by-row PL/pgSQL function
//! that finds the bad rows.

use super::{MAX_RAW, STAGED};
use crate::schema::{quote_ident, Column, Dialect, SqlType, TableSchema};

/// Column `c` of the JSON object `doc` (an SQL `json` expression: unlike `jsonb` it keeps each
/// value's text) as an SQL expression of the column's type, with COPY JSON 'auto''s meaning: the
/// key is the column's full name (which PostgreSQL would cut to 63 bytes as an identifier), a
/// missing key or a JSON null is NULL. Text goes through the base type's input function, so
/// `-0.0` keeps its sign, and CHAR/VARCHAR stay text so that assigning them checks their length.
pub(super) fn json_column(c: &Column, doc: &str) -> String {
    // Column names come from the derive: `'` is doubled; standard_conforming_strings is on.
    let key = format!("'{}'", c.name.replace('\'', "''"));
    let base = match c.sql_type {
        SqlType::Super => return format!("NULLIF(CAST({doc} -> {key} AS JSONB), 'null'::jsonb)"),
        SqlType::Char { .. } | SqlType::Varchar { .. } => return format!("({doc} ->> {key})"),
        SqlType::Decimal { .. } => "NUMERIC".to_owned(),
        other => other.sql(Dialect::Postgres),
    };
    format!("CAST({doc} ->> {key} AS {base})")
}

/// `INSERT INTO t (cols) SELECT <each column of doc> [FROM <from>]`.
pub(super) fn insert_select(table: &TableSchema, from: Option<&str>, doc: &str) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| quote_ident(c.name).into_owned())
        .collect();
    let values: Vec<String> = table.columns.iter().map(|c| json_column(c, doc)).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) SELECT {}",
        quote_ident(table.name),
        cols.join(", "),
        values.join(", ")
    );
    if let Some(from) = from {
        sql.push_str(" FROM ");
        sql.push_str(from);
    }
    sql
}

/// The temporary function that inserts the staged rows one by one, returning the rejects
/// (stopping after `max_rejects + 1` of them) with the column at fault where it can tell:
/// PostgreSQL's own (a NOT NULL violation), else the first column whose value does not convert
/// to the column's type.
pub(super) fn row_by_row_function(table: &TableSchema) -> String {
    let insert = insert_select(table, None, "v_doc");
    let mut probes = String::new();
    let mut declares = String::new();
    for (i, c) in table.columns.iter().enumerate() {
        let key = format!("'{}'", c.name.replace('\'', "''"));
        declares.push_str(&format!(
            "    v_probe_{i} {};\n",
            c.sql_type.sql(Dialect::Postgres)
        ));
        probes.push_str(&format!(
            r#"                IF o_column = '' THEN
                    BEGIN
                        v_probe_{i} := {value};
                    EXCEPTION WHEN OTHERS THEN
                        o_column := {key};
                        o_value := COALESCE(left(v_doc ->> {key}, {MAX_RAW}), 'NULL');
                    END;
                END IF;
"#,
            value = json_column(c, "v_doc"),
        ));
    }
    format!(
        r#"CREATE OR REPLACE FUNCTION pg_temp.redtrack_insert_rows(max_rejects bigint)
RETURNS TABLE (o_file integer, o_line bigint, o_column text, o_value text, o_reason text, o_doc text)
LANGUAGE plpgsql AS $redtrack$
DECLARE
    rec record;
    v_doc json;
    v_n bigint := 0;
    v_col text;
{declares}BEGIN
    FOR rec IN SELECT s.file_no, s.line_no, s.doc FROM {STAGED} s ORDER BY s.file_no, s.line_no LOOP
        BEGIN
            v_doc := rec.doc::json;
            IF json_typeof(v_doc) <> 'object' THEN
                RAISE EXCEPTION 'not a JSON object';
            END IF;
            {insert};
        EXCEPTION WHEN OTHERS THEN
            o_file := rec.file_no;
            o_line := rec.line_no;
            o_reason := SQLERRM;
            o_column := '';
            o_value := left(rec.doc, {MAX_RAW});
            o_doc := rec.doc;
            GET STACKED DIAGNOSTICS v_col = COLUMN_NAME;
            IF v_col IS NOT NULL AND v_col <> '' THEN
                o_column := v_col;
                o_value := COALESCE(left(v_doc ->> v_col, {MAX_RAW}), 'NULL');
            ELSIF v_doc IS NOT NULL AND json_typeof(v_doc) = 'object' THEN
{probes}            END IF;
            RETURN NEXT;
            v_n := v_n + 1;
            IF v_n > max_rejects THEN
                RETURN;
            END IF;
        END;
        v_doc := NULL;
    END LOOP;
END
$redtrack$"#
    )
}
