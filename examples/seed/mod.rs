//! The seed example's two tables, as in the original redtrack's example application.
//!
//! A plain module with public structs and no `main`: other examples and tests include it with
//! `#[path = "../examples/seed/mod.rs"] mod seed;` (or `mod seed;` from `examples/`).
#![allow(dead_code)]

use redtrack::RedTrackEvent;

/// One tracked event: `test_events`.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "test_events", sortkey = "timestamp")]
pub struct TestEvent {
    /// The client's IP address; NOT NULL.
    #[redtrack(type = "varchar(32)")]
    pub client_ip: String,
    /// Seconds since the epoch; INTEGER NOT NULL.
    pub timestamp: i32,
    /// Free text; nullable.
    #[redtrack(type = "varchar(128)")]
    pub message: Option<String>,
}

/// A row with one column of each common type: `test_all_types`.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "test_all_types", sortkey = "test_timestamp")]
pub struct TestAllTypes {
    /// SMALLINT.
    pub test_smallint: Option<i16>,
    /// INTEGER NOT NULL.
    pub test_integer: i32,
    /// BIGINT.
    pub test_bigint: Option<i64>,
    /// DECIMAL(8,2).
    #[redtrack(type = "decimal(8,2)")]
    pub test_decimal: Option<rust_decimal::Decimal>,
    /// REAL.
    pub test_real: Option<f32>,
    /// DOUBLE PRECISION.
    pub test_double: Option<f64>,
    /// BOOLEAN.
    pub test_bool: Option<bool>,
    /// CHAR(32).
    #[redtrack(type = "char(32)")]
    pub test_char: Option<String>,
    /// VARCHAR(32) NOT NULL.
    #[redtrack(type = "varchar(32)")]
    pub test_varchar: String,
    /// DATE.
    pub test_date: Option<chrono::NaiveDate>,
    /// TIMESTAMP.
    pub test_timestamp: Option<chrono::NaiveDateTime>,
}
