//! The PostgreSQL dialect's DDL runs on a real PostgreSQL server, and every value the encoder
//! writes is accepted there with the same meaning (decimals as strings, BC dates, timestamps with
//! microseconds, `+00` offsets, SUPER as jsonb). Needs `scripts/services up`.

use crate::{common, seed};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use redtrack::{Dialect, RedTrackEvent};
use rust_decimal::Decimal;
use seed::TestAllTypes;
use std::str::FromStr;

/// Loads `json` into `table` through PostgreSQL's own JSON-to-row conversion.
async fn insert_json(pg: &tokio_postgres::Client, table: &str, json: &str) {
    let sql = format!(
        "INSERT INTO {table} SELECT * FROM json_populate_record(NULL::{table}, $1::text::json)"
    );
    pg.execute(&sql, &[&json])
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL rejected {json}: {e:?}"));
}

#[tokio::test]
async fn seed_tables_and_values_load_into_postgres() {
    let env = common::TestEnv::new().await;
    let pg = env.pg().await;
    pg.batch_execute(&seed::TestEvent::create_table_sql_for(Dialect::Postgres))
        .await
        .unwrap();
    pg.batch_execute(&TestAllTypes::create_table_sql_for(Dialect::Postgres))
        .await
        .unwrap();
    // Idempotent.
    pg.batch_execute(&TestAllTypes::create_table_sql_for(Dialect::Postgres))
        .await
        .unwrap();

    let row = TestAllTypes {
        test_smallint: Some(-32768),
        test_integer: i32::MAX,
        test_bigint: Some(i64::MIN),
        test_decimal: Decimal::from_str("-999999.99").ok(),
        test_real: Some(1.25e-3),
        test_double: Some(-0.1),
        test_bool: Some(false),
        test_char: Some("abc".into()),
        test_varchar: format!("{}\u{e9}\u{20ac}", "q\"\\\n".repeat(7)),
        test_date: NaiveDate::from_ymd_opt(-4712, 1, 1),
        test_timestamp: NaiveDate::from_ymd_opt(2024, 2, 29)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 58, 123)),
    };
    insert_json(&pg, "test_all_types", &row.to_json().unwrap()).await;

    let got = pg
        .query_one(
            "SELECT test_smallint, test_integer, test_bigint, test_decimal::text, test_real, \
             test_double, test_bool, test_char::text, test_varchar, test_date::text, test_timestamp \
             FROM test_all_types",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(got.get::<_, Option<i16>>(0), row.test_smallint);
    assert_eq!(got.get::<_, i32>(1), row.test_integer);
    assert_eq!(got.get::<_, Option<i64>>(2), row.test_bigint);
    assert_eq!(
        got.get::<_, Option<String>>(3).as_deref(),
        Some("-999999.99")
    );
    assert_eq!(got.get::<_, Option<f32>>(4), row.test_real);
    assert_eq!(got.get::<_, Option<f64>>(5), row.test_double);
    assert_eq!(got.get::<_, Option<bool>>(6), row.test_bool);
    assert_eq!(got.get::<_, Option<String>>(7).as_deref(), Some("abc"));
    // Truncated to 32 bytes: 28 bytes of the repeated text, then "é" (2 bytes); "€" is cut.
    let stored: String = got.get(8);
    assert_eq!(stored.len(), 30);
    assert_eq!(stored, format!("{}\u{e9}", "q\"\\\n".repeat(7)));
    assert_eq!(
        got.get::<_, Option<String>>(9).as_deref(),
        Some("4713-01-01 BC")
    );
    assert_eq!(got.get::<_, Option<NaiveDateTime>>(10), row.test_timestamp);
}

#[derive(RedTrackEvent)]
#[redtrack(table = "typed_extras", sortkey = "at")]
struct Extras {
    at: DateTime<Utc>,
    time: NaiveTime,
    doc: Option<serde_json::Value>,
    #[redtrack(rename = "user")]
    user_name: String,
    #[redtrack(type = "decimal(38,10)")]
    big: Decimal,
}

#[tokio::test]
async fn timestamptz_time_super_and_quoted_names_load_into_postgres() {
    let env = common::TestEnv::new().await;
    let pg = env.pg().await;
    pg.batch_execute(&Extras::create_table_sql_for(Dialect::Postgres))
        .await
        .unwrap();
    let doc = serde_json::json!({"a": [1, "two", null], "b": {"c": true}});
    let row = Extras {
        at: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::microseconds(10),
        time: NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
        doc: Some(doc.clone()),
        user_name: "root".into(),
        big: Decimal::from_str("1234567890123456.0123456789").unwrap(),
    };
    insert_json(&pg, "typed_extras", &row.to_json().unwrap()).await;
    let got = pg
        .query_one(
            "SELECT at, time, doc::text, \"user\", big::text FROM typed_extras",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(got.get::<_, DateTime<Utc>>(0), row.at);
    assert_eq!(got.get::<_, NaiveTime>(1), row.time);
    let stored: serde_json::Value = serde_json::from_str(&got.get::<_, String>(2)).unwrap();
    assert_eq!(stored, doc);
    assert_eq!(got.get::<_, String>(3), "root");
    assert_eq!(got.get::<_, String>(4), "1234567890123456.0123456789");
}
