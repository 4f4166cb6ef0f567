//! The loader's check of each record against its table's columns (issue 11: a record another
//! producer wrote never blocks a table), against the baseline every staged record paid before,
//! a JSON parse into `IgnoredAny` (no column matched, no value checked), in the same run, for
//! both seed tables' events as the encoder writes them.
//!
//! `cargo bench --bench validate -- --noplot`

#[path = "../examples/seed/mod.rs"]
mod seed;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rust_decimal::Decimal;
use seed::{TestAllTypes, TestEvent};
use std::hint::black_box;
use std::str::FromStr;

fn records() -> Vec<(&'static str, &'static redtrack::TableSchema, Vec<u8>)> {
    let event = TestEvent {
        client_ip: "203.0.113.42".into(),
        timestamp: 1_700_000_000,
        message: Some("GET /products/1234?ref=home \"Mozilla/5.0\" 200 in 12 ms".into()),
    };
    let row = TestAllTypes {
        test_smallint: Some(-1234),
        test_integer: 1_700_000_000,
        test_bigint: Some(9_007_199_254_740_993),
        test_decimal: Decimal::from_str("123456.78").ok(),
        test_real: Some(3.25),
        test_double: Some(1234.5678901234567),
        test_bool: Some(true),
        test_char: Some("US".into()),
        test_varchar: "checkout-button".into(),
        test_date: NaiveDate::from_ymd_opt(2024, 5, 17),
        test_timestamp: NaiveDate::from_ymd_opt(2024, 5, 17)
            .and_then(|d| d.and_hms_micro_opt(13, 45, 7, 123_456)),
    };
    vec![
        (
            "test_events",
            TestEvent::schema(),
            event.to_json().unwrap().into_bytes(),
        ),
        (
            "test_all_types",
            TestAllTypes::schema(),
            row.to_json().unwrap().into_bytes(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    for (name, table, record) in records() {
        let check = redtrack::__test::LoaderCheck::new(table);
        assert!(check.check(&record).is_ok());
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(record.len() as u64));
        group.bench_function("loader check", |b| {
            b.iter(|| check.check(black_box(&record)).map(|line| line.len()))
        });
        group.bench_function("serde_json IgnoredAny", |b| {
            b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&record)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
