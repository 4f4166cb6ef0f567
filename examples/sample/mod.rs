//! Sample events for the seed tables, deterministic per index so a reader can check what was
//! loaded. A plain module: examples include it with `mod sample;` next to `mod seed;`.
#![allow(dead_code)]

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use crate::seed::{TestAllTypes, TestEvent};

/// The `i`-th sample of `test_events`: every third has no message, and some messages are
/// multibyte text longer than VARCHAR(128) bytes, which the encoder truncates on a character
/// boundary.
pub fn test_event(i: u32) -> TestEvent {
    let message = match i % 3 {
        0 => None,
        1 => Some(format!("hello #{i}")),
        _ => Some(format!("événement {i} ").repeat(12)),
    };
    TestEvent {
        client_ip: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        timestamp: 1_700_000_000 + i32::try_from(i % 1_000_000).unwrap_or(0),
        message,
    }
}

/// The `i`-th sample of `test_all_types`: every type, with NULLs in a rotating column.
pub fn all_types(i: u32) -> TestAllTypes {
    let n = i64::from(i);
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    let date = base + chrono::Duration::days(n % 3650);
    let at: NaiveDateTime = date
        .and_hms_micro_opt(i % 24, i % 60, (i * 7) % 60, (i * 7919) % 1_000_000)
        .unwrap_or_default();
    let null = |k: u32| i % 11 == k;
    TestAllTypes {
        test_smallint: (!null(0)).then(|| i16::try_from(n % 30_000).unwrap_or(0) - 15_000),
        test_integer: i32::try_from(n).unwrap_or(i32::MAX),
        test_bigint: (!null(1)).then(|| n * 1_000_000_007),
        test_decimal: (!null(2)).then(|| Decimal::new(n % 10_000_000 - 5_000_000, 2)),
        test_real: (!null(3)).then(|| (n % 1000) as f32 / 8.0),
        test_double: (!null(4)).then(|| n as f64 / 3.0),
        test_bool: (!null(5)).then_some(i % 2 == 0),
        test_char: (!null(6)).then(|| format!("c{:05}", i % 100_000)),
        test_varchar: format!("v{i}"),
        test_date: (!null(7)).then_some(date),
        test_timestamp: (!null(8)).then_some(at),
    }
}
