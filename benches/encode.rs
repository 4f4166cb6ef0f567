//! The generated encoder against a `serde_json::to_writer` of an equivalent
//! `#[derive(Serialize)]` struct (the baseline), for both seed tables, in the same run.
//!
//! `cargo bench --bench encode -- --noplot`

#[path = "../examples/seed/mod.rs"]
mod seed;

use chrono::{NaiveDate, NaiveDateTime};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rust_decimal::Decimal;
use seed::{TestAllTypes, TestEvent};
use serde::{Serialize, Serializer};
use std::hint::black_box;
use std::str::FromStr;

/// The baseline for `test_events`: the same keys and values.
#[derive(Serialize)]
struct SerdeTestEvent {
    client_ip: String,
    timestamp: i32,
    message: Option<String>,
}

/// The baseline for `test_all_types`: decimals as strings, dates and timestamps in Redshift's
/// format, as the generated encoder writes them.
#[derive(Serialize)]
struct SerdeTestAllTypes {
    test_smallint: Option<i16>,
    test_integer: i32,
    test_bigint: Option<i64>,
    #[serde(serialize_with = "display")]
    test_decimal: Option<Decimal>,
    test_real: Option<f32>,
    test_double: Option<f64>,
    test_bool: Option<bool>,
    test_char: Option<String>,
    test_varchar: String,
    #[serde(serialize_with = "date")]
    test_date: Option<NaiveDate>,
    #[serde(serialize_with = "timestamp")]
    test_timestamp: Option<NaiveDateTime>,
}

fn display<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(d) => s.collect_str(d),
        None => s.serialize_none(),
    }
}

fn date<S: Serializer>(v: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(d) => s.collect_str(&d.format("%Y-%m-%d")),
        None => s.serialize_none(),
    }
}

fn timestamp<S: Serializer>(v: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.collect_str(&t.format("%Y-%m-%d %H:%M:%S%.6f")),
        None => s.serialize_none(),
    }
}

fn events() -> (TestEvent, SerdeTestEvent) {
    let ours = TestEvent {
        client_ip: "203.0.113.42".into(),
        timestamp: 1_700_000_000,
        message: Some("GET /products/1234?ref=home \"Mozilla/5.0\" 200 in 12 ms".into()),
    };
    let theirs = SerdeTestEvent {
        client_ip: ours.client_ip.clone(),
        timestamp: ours.timestamp,
        message: ours.message.clone(),
    };
    (ours, theirs)
}

fn all_types() -> (TestAllTypes, SerdeTestAllTypes) {
    let ours = TestAllTypes {
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
    let theirs = SerdeTestAllTypes {
        test_smallint: ours.test_smallint,
        test_integer: ours.test_integer,
        test_bigint: ours.test_bigint,
        test_decimal: ours.test_decimal,
        test_real: ours.test_real,
        test_double: ours.test_double,
        test_bool: ours.test_bool,
        test_char: ours.test_char.clone(),
        test_varchar: ours.test_varchar.clone(),
        test_date: ours.test_date,
        test_timestamp: ours.test_timestamp,
    };
    (ours, theirs)
}

fn bench(c: &mut Criterion) {
    let (event, serde_event) = events();
    let (row, serde_row) = all_types();
    // Same output, byte for byte: the comparison is fair.
    assert_eq!(
        event.to_json().unwrap(),
        serde_json::to_string(&serde_event).unwrap()
    );
    assert_eq!(
        row.to_json().unwrap(),
        serde_json::to_string(&serde_row).unwrap()
    );

    let mut group = c.benchmark_group("test_events");
    group.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(1024);
    group.bench_function("redtrack", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&event).encode_json(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&serde_event)).unwrap();
            black_box(buf.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("test_all_types");
    group.throughput(Throughput::Elements(1));
    group.bench_function("redtrack", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&row).encode_json(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&serde_row)).unwrap();
            black_box(buf.len())
        })
    });
    group.finish();

    // A fresh buffer per event, as a caller without reuse would do.
    let mut group = c.benchmark_group("test_events_fresh_buffer");
    group.bench_function("redtrack", |b| {
        b.iter_batched(
            Vec::new,
            |mut buf| {
                black_box(&event).encode_json(&mut buf).unwrap();
                buf
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("serde_json", |b| {
        b.iter_batched(
            Vec::new,
            |mut buf| {
                serde_json::to_writer(&mut buf, black_box(&serde_event)).unwrap();
                buf
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
