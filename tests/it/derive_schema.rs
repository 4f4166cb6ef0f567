//! The derive's schema and DDL: the seed tables, every attribute, both dialects.

use crate::seed;

use redtrack::{Column, Dialect, DistStyle, RedTrackEvent, SortKey, SqlType, TableSchema};
use seed::{TestAllTypes, TestEvent};

#[test]
fn seed_test_events_ddl() {
    assert_eq!(TestEvent::TABLE_NAME, "test_events");
    assert_eq!(
        TestEvent::create_table_sql(),
        "CREATE TABLE IF NOT EXISTS test_events (\n    \
         client_ip VARCHAR(32) NOT NULL,\n    \
         \"timestamp\" INTEGER NOT NULL,\n    \
         message VARCHAR(128)\n\
         )\n\
         COMPOUND SORTKEY (\"timestamp\")"
    );
}

#[test]
fn seed_test_all_types_ddl() {
    assert_eq!(TestAllTypes::TABLE_NAME, "test_all_types");
    assert_eq!(
        TestAllTypes::create_table_sql(),
        "CREATE TABLE IF NOT EXISTS test_all_types (\n    \
         test_smallint SMALLINT,\n    \
         test_integer INTEGER NOT NULL,\n    \
         test_bigint BIGINT,\n    \
         test_decimal DECIMAL(8,2),\n    \
         test_real REAL,\n    \
         test_double DOUBLE PRECISION,\n    \
         test_bool BOOLEAN,\n    \
         test_char CHAR(32),\n    \
         test_varchar VARCHAR(32) NOT NULL,\n    \
         test_date DATE,\n    \
         test_timestamp TIMESTAMP\n\
         )\n\
         COMPOUND SORTKEY (test_timestamp)"
    );
}

#[test]
fn seed_schema_as_data() {
    let schema: &'static TableSchema = TestEvent::schema();
    assert_eq!(schema.name, "test_events");
    assert_eq!(
        schema.columns,
        &[
            Column {
                name: "client_ip",
                sql_type: SqlType::Varchar { len: 32 },
                nullable: false,
                encode: None
            },
            Column {
                name: "timestamp",
                sql_type: SqlType::Integer,
                nullable: false,
                encode: None
            },
            Column {
                name: "message",
                sql_type: SqlType::Varchar { len: 128 },
                nullable: true,
                encode: None
            },
        ]
    );
    assert_eq!(schema.sortkey, SortKey::Compound(&["timestamp"]));
    assert_eq!(schema.distkey, None);
    assert_eq!(schema.diststyle, None);
    // The trait's items agree with the inherent ones.
    assert!(std::ptr::eq(<TestEvent as RedTrackEvent>::schema(), schema));
    assert_eq!(
        <TestEvent as RedTrackEvent>::create_table_sql(),
        TestEvent::create_table_sql()
    );
    assert_eq!(
        <TestAllTypes as RedTrackEvent>::TABLE_NAME,
        "test_all_types"
    );
}

#[test]
fn postgres_dialect_drops_redshift_attributes() {
    assert_eq!(
        TestEvent::create_table_sql_for(Dialect::Postgres),
        "CREATE TABLE IF NOT EXISTS test_events (\n    \
         client_ip VARCHAR(32) NOT NULL,\n    \
         \"timestamp\" INTEGER NOT NULL,\n    \
         message VARCHAR(128)\n\
         )"
    );
    assert_eq!(
        <TestEvent as RedTrackEvent>::create_table_sql_for(Dialect::Redshift),
        TestEvent::create_table_sql()
    );
}

/// Inference from the Rust type for every supported type.
#[derive(RedTrackEvent)]
#[allow(dead_code)]
struct Inferred<'a> {
    a: i8,
    b: u8,
    c: i16,
    d: u16,
    e: i32,
    f: u32,
    g: i64,
    h: f32,
    i: f64,
    j: bool,
    k: String,
    l: &'a str,
    m: Box<str>,
    n: std::borrow::Cow<'a, str>,
    o: chrono::NaiveDate,
    p: chrono::NaiveDateTime,
    q: chrono::DateTime<chrono::Utc>,
    r: chrono::NaiveTime,
    s: rust_decimal::Decimal,
    t: serde_json::Value,
    u: Option<i64>,
    v: std::option::Option<String>,
}

#[test]
fn types_are_inferred_from_rust_types() {
    assert_eq!(Inferred::TABLE_NAME, "inferred");
    let types: Vec<(&str, SqlType, bool)> = Inferred::schema()
        .columns
        .iter()
        .map(|c| (c.name, c.sql_type, c.nullable))
        .collect();
    use SqlType::*;
    assert_eq!(
        types,
        vec![
            ("a", SmallInt, false),
            ("b", SmallInt, false),
            ("c", SmallInt, false),
            ("d", Integer, false),
            ("e", Integer, false),
            ("f", BigInt, false),
            ("g", BigInt, false),
            ("h", Real, false),
            ("i", Double, false),
            ("j", Boolean, false),
            ("k", Varchar { len: 256 }, false),
            ("l", Varchar { len: 256 }, false),
            ("m", Varchar { len: 256 }, false),
            ("n", Varchar { len: 256 }, false),
            ("o", Date, false),
            ("p", Timestamp, false),
            ("q", TimestampTz, false),
            ("r", Time, false),
            (
                "s",
                Decimal {
                    precision: 18,
                    scale: 0
                },
                false
            ),
            ("t", Super, false),
            ("u", BigInt, true),
            ("v", Varchar { len: 256 }, true),
        ]
    );
}

/// Type names and aliases, case and spacing as users write them.
#[derive(RedTrackEvent)]
#[redtrack(table = "aliases")]
#[allow(dead_code)]
struct Aliases {
    #[redtrack(type = "int2")]
    a: i16,
    #[redtrack(type = "INT")]
    b: i32,
    #[redtrack(type = "int4")]
    c: i32,
    #[redtrack(type = "int8")]
    d: i64,
    #[redtrack(type = "Numeric( 10 , 3 )")]
    e: rust_decimal::Decimal,
    #[redtrack(type = "decimal(5)")]
    f: i32,
    #[redtrack(type = "float4")]
    g: f32,
    #[redtrack(type = "float")]
    h: f64,
    #[redtrack(type = "float8")]
    i: f32,
    #[redtrack(type = "bool")]
    j: bool,
    #[redtrack(type = "character varying(12)")]
    k: String,
    #[redtrack(type = "nvarchar")]
    l: String,
    #[redtrack(type = "text")]
    m: String,
    #[redtrack(type = "character(3)")]
    n: String,
    #[redtrack(type = "char")]
    o: String,
    #[redtrack(type = "bpchar")]
    p: String,
    #[redtrack(type = "varchar(max)")]
    q: String,
    #[redtrack(type = "timestamp without time zone")]
    r: chrono::NaiveDateTime,
    #[redtrack(type = "timestamp with time zone")]
    s: chrono::DateTime<chrono::FixedOffset>,
    #[redtrack(type = "timestamptz")]
    t: chrono::NaiveDateTime,
    #[redtrack(type = "timestamp")]
    u: chrono::DateTime<chrono::Utc>,
    #[redtrack(type = "time without time zone")]
    v: chrono::NaiveTime,
    #[redtrack(type = "double precision")]
    w: f64,
    #[redtrack(type = "bigint")]
    x: u32,
    #[redtrack(type = "decimal(20,0)")]
    y: u64,
}

#[test]
fn type_names_and_aliases() {
    let ddl: Vec<String> = Aliases::schema()
        .columns
        .iter()
        .map(|c| c.sql_type.sql(Dialect::Redshift))
        .collect();
    assert_eq!(
        ddl,
        [
            "SMALLINT",
            "INTEGER",
            "INTEGER",
            "BIGINT",
            "DECIMAL(10,3)",
            "DECIMAL(5,0)",
            "REAL",
            "DOUBLE PRECISION",
            "DOUBLE PRECISION",
            "BOOLEAN",
            "VARCHAR(12)",
            "VARCHAR(256)",
            "VARCHAR(256)",
            "CHAR(3)",
            "CHAR(1)",
            "CHAR(256)",
            "VARCHAR(65535)",
            "TIMESTAMP",
            "TIMESTAMPTZ",
            "TIMESTAMPTZ",
            "TIMESTAMP",
            "TIME",
            "DOUBLE PRECISION",
            "BIGINT",
            "DECIMAL(20,0)",
        ]
    );
}

/// Every container attribute and field attribute at once.
#[derive(RedTrackEvent)]
#[redtrack(
    table = "Page_Views",
    distkey = "user_id",
    interleaved_sortkey = "viewed_at, USER_ID"
)]
#[allow(dead_code)]
struct PageView {
    #[redtrack(encode = "AZ64", partition_key)]
    user_id: i64,
    #[redtrack(encode = "az64")]
    viewed_at: chrono::DateTime<chrono::Utc>,
    #[redtrack(rename = "Order", type = "varchar(16)", encode = "zstd")]
    order_id: String,
    #[redtrack(skip)]
    cache: Vec<u8>,
    r#type: Option<String>,
    doc: Option<serde_json::Value>,
}

#[test]
fn every_attribute() {
    assert_eq!(PageView::TABLE_NAME, "page_views");
    assert_eq!(
        PageView::create_table_sql(),
        "CREATE TABLE IF NOT EXISTS page_views (\n    \
         user_id BIGINT ENCODE AZ64 NOT NULL,\n    \
         viewed_at TIMESTAMPTZ ENCODE AZ64 NOT NULL,\n    \
         \"order\" VARCHAR(16) ENCODE ZSTD NOT NULL,\n    \
         type VARCHAR(256),\n    \
         doc SUPER\n\
         )\n\
         DISTSTYLE KEY\n\
         DISTKEY (user_id)\n\
         INTERLEAVED SORTKEY (viewed_at, user_id)"
    );
    assert_eq!(
        PageView::create_table_sql_for(Dialect::Postgres),
        "CREATE TABLE IF NOT EXISTS page_views (\n    \
         user_id BIGINT NOT NULL,\n    \
         viewed_at TIMESTAMPTZ NOT NULL,\n    \
         \"order\" VARCHAR(16) NOT NULL,\n    \
         type VARCHAR(256),\n    \
         doc JSONB\n\
         )"
    );
    let schema = PageView::schema();
    assert_eq!(schema.distkey, Some("user_id"));
    assert_eq!(schema.diststyle, None);
    assert_eq!(
        schema.sortkey,
        SortKey::Interleaved(&["viewed_at", "user_id"])
    );
    assert_eq!(schema.column("order").map(|c| c.encode), Some(Some("zstd")));
    assert!(schema.column("cache").is_none());
}

#[test]
fn partition_key_comes_from_the_marked_field() {
    let view = PageView {
        user_id: 42,
        viewed_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        order_id: "o-1".into(),
        cache: vec![1, 2, 3],
        r#type: None,
        doc: None,
    };
    assert_eq!(view.partition_key(), Some("42".to_owned()));
    // The default without a partition_key field is a random key.
    let event = TestEvent {
        client_ip: "1.2.3.4".into(),
        timestamp: 1,
        message: None,
    };
    assert_eq!(event.partition_key(), None);
}

#[derive(RedTrackEvent)]
#[redtrack(table = "keyed")]
struct Keyed {
    #[redtrack(partition_key, skip)]
    session: Option<String>,
    n: i32,
}

#[test]
fn partition_key_from_a_skipped_optional_field() {
    let mut k = Keyed {
        session: Some("é".repeat(300)),
        n: 1,
    };
    assert_eq!(k.partition_key().map(|s| s.chars().count()), Some(256));
    k.session = Some(String::new());
    assert_eq!(k.partition_key(), None, "an empty key means a random one");
    k.session = None;
    assert_eq!(k.partition_key(), None);
    assert_eq!(k.to_json().unwrap(), r#"{"n":1}"#);
}

#[derive(RedTrackEvent)]
#[redtrack(table = "dist_all", diststyle = "ALL", sortkey = "b,a")]
#[allow(dead_code)]
struct DistAll {
    a: i32,
    b: i32,
}

#[test]
fn diststyle_and_compound_sortkey_order() {
    assert_eq!(DistAll::schema().diststyle, Some(DistStyle::All));
    assert_eq!(
        DistAll::create_table_sql(),
        "CREATE TABLE IF NOT EXISTS dist_all (\n    a INTEGER NOT NULL,\n    b INTEGER NOT NULL\n)\nDISTSTYLE ALL\nCOMPOUND SORTKEY (b, a)"
    );
}

/// The generated code uses absolute paths only: user items named like std's do not interfere.
mod shadowing {
    #![allow(dead_code)]
    struct Result;
    struct Option;
    struct Vec;
    struct String;
    mod redtrack {}

    #[derive(::redtrack::RedTrackEvent)]
    #[redtrack(crate = "::redtrack")]
    pub struct Shadowed {
        pub a: i32,
        pub b: ::std::option::Option<::std::string::String>,
    }
}

#[test]
fn generated_code_uses_absolute_paths() {
    let s = shadowing::Shadowed { a: 1, b: None };
    assert_eq!(s.to_json().unwrap(), r#"{"a":1,"b":null}"#);
}

/// `crate = "..."` reaches redtrack through another path, as a re-exporting crate would.
mod reexport {
    pub use redtrack as tracking;
}

#[derive(RedTrackEvent)]
#[redtrack(
    crate = "crate::derive_schema::reexport::tracking",
    table = "via_reexport"
)]
struct ViaReexport {
    a: bool,
}

#[test]
fn crate_attribute() {
    assert_eq!(ViaReexport::TABLE_NAME, "via_reexport");
    assert_eq!(ViaReexport { a: true }.to_json().unwrap(), r#"{"a":true}"#);
}
