//! The encoder: exact JSON for every type, truncation, and the errors, which name the table, the
//! column and the value.

use crate::seed;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use redtrack::{EncodeError, EncodeErrorKind, RedTrackEvent};
use rust_decimal::Decimal;
use seed::{TestAllTypes, TestEvent};
use std::str::FromStr;

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn all_types() -> TestAllTypes {
    TestAllTypes {
        test_smallint: Some(-32768),
        test_integer: 2147483647,
        test_bigint: Some(i64::MIN),
        test_decimal: Some(Decimal::from_str("-123456.78").unwrap()),
        test_real: Some(1.5),
        test_double: Some(0.1),
        test_bool: Some(true),
        test_char: Some("abc".into()),
        test_varchar: "tab\there \"quoted\" \\ é".into(),
        test_date: NaiveDate::from_ymd_opt(2024, 2, 29),
        test_timestamp: Some(ts("2024-02-29 23:59:58.000123")),
    }
}

#[test]
fn seed_event_json() {
    let event = TestEvent {
        client_ip: "127.0.0.1".into(),
        timestamp: 1_700_000_000,
        message: Some("hello".into()),
    };
    assert_eq!(
        event.to_json().unwrap(),
        r#"{"client_ip":"127.0.0.1","timestamp":1700000000,"message":"hello"}"#
    );
    let none = TestEvent {
        message: None,
        ..event
    };
    assert_eq!(
        none.to_json().unwrap(),
        r#"{"client_ip":"127.0.0.1","timestamp":1700000000,"message":null}"#
    );
}

#[test]
fn all_types_json() {
    assert_eq!(
        all_types().to_json().unwrap(),
        concat!(
            r#"{"test_smallint":-32768,"test_integer":2147483647,"test_bigint":-9223372036854775808,"#,
            r#""test_decimal":"-123456.78","test_real":1.5,"test_double":0.1,"test_bool":true,"#,
            r#""test_char":"abc","test_varchar":"tab\there \"quoted\" \\ é","#,
            r#""test_date":"2024-02-29","test_timestamp":"2024-02-29 23:59:58.000123"}"#
        )
    );
}

#[test]
fn encode_json_appends_one_object() {
    let mut buf = b"prefix\n".to_vec();
    let event = TestEvent {
        client_ip: "x".into(),
        timestamp: 0,
        message: None,
    };
    event.encode_json(&mut buf).unwrap();
    <TestEvent as RedTrackEvent>::encode_json(&event, &mut buf).unwrap();
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "prefix\n{\"client_ip\":\"x\",\"timestamp\":0,\"message\":null}{\"client_ip\":\"x\",\"timestamp\":0,\"message\":null}"
    );
}

#[test]
fn all_nulls() {
    let row = TestAllTypes {
        test_smallint: None,
        test_integer: 0,
        test_bigint: None,
        test_decimal: None,
        test_real: None,
        test_double: None,
        test_bool: None,
        test_char: None,
        test_varchar: String::new(),
        test_date: None,
        test_timestamp: None,
    };
    let json: serde_json::Value = serde_json::from_str(&row.to_json().unwrap()).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(object.len(), 11);
    assert_eq!(object["test_integer"], 0);
    assert_eq!(object["test_varchar"], "");
    assert_eq!(object.values().filter(|v| v.is_null()).count(), 9);
}

#[test]
fn varchar_truncates_to_bytes_on_a_char_boundary() {
    let before = redtrack::encode::truncations();
    // 30 ASCII bytes, then "é" (2 bytes) fits exactly; the next "€" (3 bytes) does not.
    let text = format!("{}é€€", "a".repeat(30));
    let event = TestEvent {
        client_ip: text,
        timestamp: 0,
        message: Some("ok".into()),
    };
    let json: serde_json::Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    let stored = json["client_ip"].as_str().unwrap();
    assert_eq!(stored, format!("{}é", "a".repeat(30)));
    assert_eq!(stored.len(), 32);
    assert!(redtrack::encode::truncations() > before);

    // A limit in the middle of a 3-byte character cuts before it.
    let event = TestEvent {
        client_ip: format!("{}€", "a".repeat(30)),
        timestamp: 0,
        message: None,
    };
    let json: serde_json::Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    assert_eq!(json["client_ip"], "a".repeat(30));
}

#[test]
fn truncation_is_a_tracing_event() {
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false),
    );
    tracing::subscriber::with_default(subscriber, || {
        let event = TestEvent {
            client_ip: "x".into(),
            timestamp: 0,
            message: Some("m".repeat(200)),
        };
        event.to_json().unwrap();
    });
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("redtrack::truncation"), "{log}");
    assert!(log.contains("table=\"test_events\""), "{log}");
    assert!(log.contains("column=\"message\""), "{log}");
    assert!(
        log.contains("bytes=200") && log.contains("limit=128"),
        "{log}"
    );
}

fn error_of(row: &TestAllTypes) -> EncodeError {
    let mut buf = b"kept".to_vec();
    let err = row.encode_json(&mut buf).unwrap_err();
    assert_eq!(buf, b"kept", "on error buf is left as it was");
    err
}

#[test]
fn char_rejects_non_ascii_and_truncates() {
    let mut row = all_types();
    row.test_char = Some("caf\u{e9}".into());
    let err = error_of(&row);
    assert_eq!(err.table, "test_all_types");
    assert_eq!(err.column, "test_char");
    assert_eq!(
        err.kind,
        EncodeErrorKind::NotAscii {
            value: "café".into(),
            found: 'é',
            position: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "table `test_all_types`, column `test_char`: CHAR holds single-byte (ASCII) characters only, but \"café\" has 'é' at byte 3; declare the column VARCHAR to store UTF-8"
    );
    // Beyond the 32-byte limit nothing is checked: it is cut.
    row.test_char = Some(format!("{}é", "x".repeat(32)));
    let json: serde_json::Value = serde_json::from_str(&row.to_json().unwrap()).unwrap();
    assert_eq!(json["test_char"], "x".repeat(32));
}

#[test]
fn nan_and_infinities_are_rejected() {
    let mut row = all_types();
    row.test_double = Some(f64::NAN);
    let err = error_of(&row);
    assert_eq!((err.table, err.column), ("test_all_types", "test_double"));
    assert_eq!(
        err.to_string(),
        "table `test_all_types`, column `test_double`: NaN has no JSON form (NaN and infinities cannot be loaded); send a finite number or make the field an Option and send None"
    );
    let mut row = all_types();
    row.test_real = Some(f32::NEG_INFINITY);
    let err = error_of(&row);
    assert_eq!(err.column, "test_real");
    assert_eq!(
        err.kind,
        EncodeErrorKind::NotFinite {
            value: "-inf".into()
        }
    );
}

#[test]
fn decimals_are_strings_checked_against_precision_and_scale() {
    let mut row = all_types();
    for (value, json) in [
        ("999999.99", "\"999999.99\""),
        ("-0.5", "\"-0.5\""),
        ("12.3400", "\"12.3400\""),
        ("0", "\"0\""),
    ] {
        row.test_decimal = Some(Decimal::from_str(value).unwrap());
        let out = row.to_json().unwrap();
        assert!(out.contains(&format!("\"test_decimal\":{json}")), "{out}");
    }
    row.test_decimal = Some(Decimal::from_str("1000000").unwrap());
    let err = error_of(&row);
    assert_eq!(err.column, "test_decimal");
    assert_eq!(
        err.to_string(),
        "table `test_all_types`, column `test_decimal`: 1000000 does not fit DECIMAL(8,2): more than 6 digits before the decimal point"
    );
    row.test_decimal = Some(Decimal::from_str("1.005").unwrap());
    assert_eq!(
        error_of(&row).to_string(),
        "table `test_all_types`, column `test_decimal`: 1.005 does not fit DECIMAL(8,2): more than 2 digits after the decimal point; round it first"
    );
}

#[test]
fn nul_characters_are_rejected() {
    let mut row = all_types();
    row.test_varchar = "a\0b".into();
    let err = error_of(&row);
    assert_eq!(err.column, "test_varchar");
    assert_eq!(
        err.kind,
        EncodeErrorKind::NulCharacter {
            value: "a\0b".into(),
            position: 1
        }
    );
    assert!(err.to_string().contains("NUL"));
}

#[derive(RedTrackEvent)]
#[redtrack(table = "times")]
struct Times {
    date: NaiveDate,
    ts: NaiveDateTime,
    utc: DateTime<Utc>,
    #[redtrack(type = "timestamptz")]
    offset: DateTime<FixedOffset>,
    #[redtrack(type = "timestamp")]
    utc_as_timestamp: DateTime<Utc>,
    time: NaiveTime,
}

#[test]
fn dates_times_and_timestamps() {
    let offset = FixedOffset::east_opt(2 * 3600)
        .unwrap()
        .with_ymd_and_hms(2024, 1, 1, 1, 30, 0)
        .unwrap();
    let t = Times {
        date: NaiveDate::from_ymd_opt(5, 6, 7).unwrap(),
        ts: ts("1999-12-31 23:59:59.123456789"),
        utc: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
        offset,
        utc_as_timestamp: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
        time: NaiveTime::from_hms_micro_opt(0, 0, 1, 5).unwrap(),
    };
    assert_eq!(
        t.to_json().unwrap(),
        concat!(
            r#"{"date":"0005-06-07","ts":"1999-12-31 23:59:59.123456","utc":"2024-05-06 07:08:09+00","#,
            r#""offset":"2023-12-31 23:30:00+00","utc_as_timestamp":"2024-05-06 07:08:09","time":"00:00:01.000005"}"#
        )
    );
}

/// Instants in any time zone, `Local` included, reach Redshift in UTC, in TIMESTAMPTZ and TIMESTAMP.
#[derive(RedTrackEvent)]
#[redtrack(table = "zoned")]
struct Zoned {
    local: DateTime<chrono::Local>,
    #[redtrack(type = "timestamp")]
    offset_as_timestamp: DateTime<FixedOffset>,
    #[redtrack(type = "timestamp")]
    local_as_timestamp: Option<DateTime<chrono::Local>>,
}

#[test]
fn instants_of_any_time_zone_are_sent_in_utc() {
    let utc = ts("2024-03-31 01:30:00.25");
    let local = chrono::Local.from_utc_datetime(&utc);
    let z = Zoned {
        local,
        offset_as_timestamp: FixedOffset::west_opt(5 * 3600)
            .unwrap()
            .from_utc_datetime(&utc),
        local_as_timestamp: Some(local),
    };
    assert_eq!(
        z.to_json().unwrap(),
        concat!(
            r#"{"local":"2024-03-31 01:30:00.250000+00","#,
            r#""offset_as_timestamp":"2024-03-31 01:30:00.250000","#,
            r#""local_as_timestamp":"2024-03-31 01:30:00.250000"}"#
        )
    );
}

#[test]
fn bc_dates_and_the_range_limit() {
    let mut t = Times {
        date: NaiveDate::from_ymd_opt(-4712, 1, 1).unwrap(),
        ts: NaiveDate::from_ymd_opt(0, 3, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap(),
        utc: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        offset: FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .unwrap(),
        utc_as_timestamp: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        time: NaiveTime::MIN,
    };
    let json: serde_json::Value = serde_json::from_str(&t.to_json().unwrap()).unwrap();
    assert_eq!(json["date"], "4713-01-01 BC");
    assert_eq!(json["ts"], "0001-03-01 12:00:00 BC");
    assert_eq!(json["time"], "00:00:00");

    t.date = NaiveDate::from_ymd_opt(-4713, 12, 31).unwrap();
    let err = t.to_json().unwrap_err();
    assert_eq!((err.table, err.column), ("times", "date"));
    assert_eq!(
        err.to_string(),
        "table `times`, column `date`: -4713-12-31 is outside Redshift's range for DATE (4713 BC to 294276 AD)"
    );
}

#[derive(RedTrackEvent)]
#[redtrack(table = "docs")]
struct Doc {
    id: i64,
    body: Option<serde_json::Value>,
}

#[test]
fn super_values() {
    let doc = Doc {
        id: 1,
        body: Some(serde_json::json!({"a": [1, 2.5, "x\ny", null, true], "b": {"c": -3}})),
    };
    let out = doc.to_json().unwrap();
    let back: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(back["body"], doc.body.clone().unwrap());
    assert_eq!(
        out,
        r#"{"id":1,"body":{"a":[1,2.5,"x\ny",null,true],"b":{"c":-3}}}"#
    );
    let bad = Doc {
        id: 2,
        body: Some(serde_json::json!({"k": "nul\0here"})),
    };
    let err = bad.to_json().unwrap_err();
    assert_eq!((err.table, err.column), ("docs", "body"));
    assert!(matches!(err.kind, EncodeErrorKind::NulCharacter { .. }));
}

#[test]
fn errors_convert_into_the_runtime_error() {
    let mut row = all_types();
    row.test_double = Some(f64::INFINITY);
    let err: redtrack::Error = row.to_json().unwrap_err().into();
    assert!(err.to_string().contains("test_double"));
    assert!(!err.is_retryable());
}
