//! Properties of the encoder over arbitrary values: truncation never exceeds the byte limit nor
//! splits a character, the output always parses as JSON and gives back what was put in, and
//! the loader's check of each record (before COPY) takes every event the encoder writes.

use crate::seed;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use proptest::prelude::*;
use rust_decimal::Decimal;
use seed::{TestAllTypes, TestEvent};
use std::str::FromStr;

/// Any text without NUL (which the encoder rejects by policy).
fn text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\0', ""))
}

/// Text biased to multibyte characters and JSON escapes, and long enough to be truncated.
fn tricky_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('\u{1f}'),
            Just('é'),
            Just('€'),
            Just('𝄞'),
            any::<char>().prop_filter("no NUL", |c| *c != '\0'),
        ],
        0..200,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn date() -> impl Strategy<Value = NaiveDate> {
    // 4713 BC .. 9999 AD: BC dates have their own format, so keep them in.
    (-4712i32..=9999, 1u32..=366).prop_map(|(y, d)| {
        NaiveDate::from_yo_opt(y, d)
            .or_else(|| NaiveDate::from_yo_opt(y, 365))
            .unwrap_or(NaiveDate::MIN)
    })
}

fn timestamp() -> impl Strategy<Value = NaiveDateTime> {
    (1i32..=9999, 1u32..=365, 0u32..86_400, 0u32..1_000_000_000).prop_map(|(y, d, s, n)| {
        NaiveDate::from_yo_opt(y, d)
            .and_then(|date| date.and_hms_nano_opt(s / 3600, s / 60 % 60, s % 60, n))
            .unwrap_or_default()
    })
}

fn all_types() -> impl Strategy<Value = TestAllTypes> {
    (
        (
            any::<Option<i16>>(),
            any::<i32>(),
            any::<Option<i64>>(),
            proptest::option::of((-99_999_999i64..=99_999_999, 0u32..=2)),
            proptest::option::of(any::<f32>().prop_filter("finite", |f| f.is_finite())),
            proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        ),
        (
            any::<Option<bool>>(),
            proptest::option::of("[ -~]{0,40}"),
            tricky_text(),
            proptest::option::of(date()),
            proptest::option::of(timestamp()),
        ),
    )
        .prop_map(
            |((smallint, integer, bigint, decimal, real, double), (b, ch, varchar, d, ts))| {
                TestAllTypes {
                    test_smallint: smallint,
                    test_integer: integer,
                    test_bigint: bigint,
                    // Scale 2 or less, at most 8 digits: fits DECIMAL(8,2).
                    test_decimal: decimal.map(|(m, s)| Decimal::new(m / 10i64.pow(2 - s), s)),
                    test_real: real,
                    test_double: double,
                    test_bool: b,
                    test_char: ch,
                    test_varchar: varchar,
                    test_date: d,
                    test_timestamp: ts,
                }
            },
        )
}

/// The longest prefix of `s` that fits `limit` bytes without splitting a character.
fn expected_prefix(s: &str, limit: usize) -> &str {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > limit {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}

fn parse_date(s: &str) -> NaiveDate {
    match s.strip_suffix(" BC") {
        Some(bc) => {
            let parts: Vec<i32> = bc.split('-').map(|p| p.parse().unwrap()).collect();
            NaiveDate::from_ymd_opt(1 - parts[0], parts[1] as u32, parts[2] as u32).unwrap()
        }
        None => NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap(),
    }
}

/// The raw text of the value of `key` in a flat JSON object.
fn number_text<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let len = json[start..].find([',', '}']).unwrap();
    &json[start..start + len]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn varchar_truncation_respects_bytes_and_characters(s in prop_oneof![text(), tricky_text()]) {
        let event = TestEvent { client_ip: s.clone(), timestamp: 0, message: Some(s.clone()) };
        let json: serde_json::Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
        let ip = json["client_ip"].as_str().unwrap();
        let message = json["message"].as_str().unwrap();
        prop_assert!(ip.len() <= 32);
        prop_assert!(message.len() <= 128);
        // A prefix of the input, as long as possible: nothing split, nothing dropped needlessly.
        prop_assert_eq!(ip, expected_prefix(&s, 32));
        prop_assert_eq!(message, expected_prefix(&s, 128));
        // What the encoder writes, the loader's check of each record takes.
        let encoded = event.to_json().unwrap();
        prop_assert_eq!(
            redtrack::__test::loader_check(TestEvent::schema(), encoded.as_bytes()),
            Ok(encoded.into_bytes())
        );
    }

    #[test]
    fn output_parses_and_gives_back_the_values(row in all_types()) {
        let mut buf = Vec::new();
        row.encode_json(&mut buf).unwrap();
        // What the encoder writes, the loader's check of each record takes.
        prop_assert_eq!(
            redtrack::__test::loader_check(TestAllTypes::schema(), &buf),
            Ok(buf.clone())
        );
        let json: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let o = json.as_object().unwrap();
        let keys: Vec<&str> = o.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = TestAllTypes::schema().columns.iter().map(|c| c.name).collect();
        expected.sort_unstable();
        prop_assert_eq!(keys, expected);

        prop_assert_eq!(o["test_smallint"].as_i64(), row.test_smallint.map(i64::from));
        prop_assert_eq!(o["test_integer"].as_i64(), Some(i64::from(row.test_integer)));
        prop_assert_eq!(o["test_bigint"].as_i64(), row.test_bigint);
        prop_assert_eq!(
            o["test_decimal"].as_str().map(|s| Decimal::from_str(s).unwrap()),
            row.test_decimal
        );
        // serde_json's default float parser is not correctly rounded: read the numbers' text.
        let out = std::str::from_utf8(&buf).unwrap();
        prop_assert_eq!(number_text(out, "test_real").parse::<f32>().ok(), row.test_real);
        prop_assert_eq!(number_text(out, "test_double").parse::<f64>().ok(), row.test_double);
        prop_assert_eq!(o["test_bool"].as_bool(), row.test_bool);
        prop_assert_eq!(
            o["test_char"].as_str(),
            row.test_char.as_deref().map(|s| expected_prefix(s, 32))
        );
        prop_assert_eq!(o["test_varchar"].as_str(), Some(expected_prefix(&row.test_varchar, 32)));
        prop_assert_eq!(o["test_date"].as_str().map(parse_date), row.test_date);
        // Microsecond precision: nanoseconds are truncated.
        prop_assert_eq!(
            o["test_timestamp"].as_str().map(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()),
            row.test_timestamp.map(|t| t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap())
        );
    }

    #[test]
    fn errors_leave_the_buffer_unchanged(prefix in text(), pos in 0usize..20) {
        let mut varchar = "v".repeat(20);
        varchar.insert(pos, '\0');
        let row = TestAllTypes {
            test_smallint: None, test_integer: 1, test_bigint: None, test_decimal: None,
            test_real: None, test_double: None, test_bool: None, test_char: None,
            test_varchar: varchar, test_date: None, test_timestamp: None,
        };
        let mut buf = prefix.clone().into_bytes();
        let err = row.encode_json(&mut buf).unwrap_err();
        prop_assert_eq!(err.column, "test_varchar");
        prop_assert_eq!(buf, prefix.into_bytes());
    }
}
