//! New event structs (not the seed ones) covering every Redshift type name and alias, every
//! inferred Rust type, `Option` everywhere and every attribute of DESIGN.md, written with
//! extreme values through the real services (Kinesis, then the file broker), loaded with the
//! `Loader` and read back from PostgreSQL: every value is what was written, after the documented
//! truncation. Bad values fail `write` at once, naming table, column and value, and lose nothing
//! written around them. Only the facade crate `redtrack` is used.

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use redtrack::{BrokerKind, Client, Config, Loader, RedTrackEvent, StageLocation};
use rust_decimal::Decimal;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The tables.

/// Integers, decimals, floats and booleans: inferred and by every name and alias.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(
    table = "E2E_Numbers",
    sortkey = "seq, Small",
    distkey = "big",
    diststyle = "key"
)]
pub struct Numbers {
    pub seq: i32,
    pub small: i16,
    #[redtrack(type = "int2", encode = "delta")]
    pub small_opt: Option<i16>,
    #[redtrack(type = "smallint")]
    pub small_named: Option<i16>,
    #[redtrack(type = "int4")]
    pub int_v: i32,
    #[redtrack(type = "int")]
    pub int_opt: Option<i32>,
    #[redtrack(type = "integer", encode = "mostly16")]
    pub int_named: Option<i32>,
    #[redtrack(encode = "az64")]
    pub big: i64,
    #[redtrack(type = "int8")]
    pub big_opt: Option<i64>,
    #[redtrack(type = "BIGINT")]
    pub big_named: Option<i64>,
    /// Inferred DECIMAL(18,0).
    pub dec_default: Decimal,
    #[redtrack(type = "numeric(38,10)")]
    pub dec_wide: Option<Decimal>,
    #[redtrack(type = "numeric(38,0)")]
    pub dec_38: Option<Decimal>,
    #[redtrack(type = "decimal(5,2)")]
    pub dec_small: Option<Decimal>,
    pub real: f32,
    #[redtrack(type = "float4")]
    pub real_opt: Option<f32>,
    #[redtrack(type = "real")]
    pub real_named: Option<f32>,
    pub dbl: f64,
    #[redtrack(type = "float8")]
    pub dbl_opt: Option<f64>,
    #[redtrack(type = "float")]
    pub dbl_float: Option<f64>,
    #[redtrack(type = "double precision")]
    pub dbl_named: Option<f64>,
    pub flag: bool,
    #[redtrack(type = "bool", encode = "runlength")]
    pub flag_opt: Option<bool>,
    #[redtrack(type = "boolean")]
    pub flag_named: Option<bool>,
}

/// Text: every text type, renames (mixed case, reserved words, raw identifiers), skip, encode,
/// a partition key, an interleaved sort key.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(
    table = "E2E_TextTypes",
    interleaved_sortkey = "seq, USER",
    diststyle = "even"
)]
pub struct Texts {
    pub seq: i32,
    #[redtrack(rename = "user", partition_key)]
    pub user_name: String,
    #[redtrack(rename = "Select", type = "character varying(12)", encode = "lzo")]
    pub sel: Option<String>,
    #[redtrack(rename = "ORDER", type = "char(4)")]
    pub order: Option<String>,
    #[redtrack(type = "text", encode = "zstd")]
    pub body: Option<String>,
    #[redtrack(type = "varchar(max)")]
    pub huge: Option<String>,
    #[redtrack(rename = "MixedCase", type = "varchar(12)")]
    pub mixed: String,
    #[redtrack(type = "character(8)", encode = "bytedict")]
    pub code: String,
    /// A raw identifier and a reserved word.
    pub r#type: Option<String>,
    /// Not a column: no trait needed, nothing written.
    #[redtrack(skip)]
    pub scratch: HashMap<String, Vec<u8>>,
}

/// Dates, times and timestamps, inferred and named.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "e2e_times", sortkey = "d, ts", diststyle = "all")]
pub struct Times {
    #[redtrack(partition_key)]
    pub seq: i64,
    pub d: NaiveDate,
    #[redtrack(type = "date", encode = "az64")]
    pub d_opt: Option<NaiveDate>,
    pub ts: NaiveDateTime,
    #[redtrack(type = "timestamp")]
    pub ts_opt: Option<NaiveDateTime>,
    /// `DateTime<Utc>` in a TIMESTAMP column (written in UTC).
    #[redtrack(type = "timestamp")]
    pub ts_from_utc: Option<DateTime<Utc>>,
    pub tstz: DateTime<Utc>,
    #[redtrack(type = "timestamptz")]
    pub tstz_opt: Option<DateTime<Utc>>,
    /// Non-UTC offsets: stored as the same instant.
    #[redtrack(type = "timestamptz")]
    pub tstz_fixed: Option<DateTime<FixedOffset>>,
    pub t: NaiveTime,
    #[redtrack(type = "time")]
    pub t_opt: Option<NaiveTime>,
}

/// SUPER: inferred and named, nullable and not.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "e2e_supers", diststyle = "auto")]
pub struct Supers {
    pub seq: i32,
    pub doc: Value,
    #[redtrack(type = "super")]
    pub doc_opt: Option<Value>,
}

/// One column per kind of bad value; the good events leave them all `None`.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "e2e_strict")]
pub struct Strict {
    pub seq: i32,
    pub ratio: Option<f64>,
    pub ratio32: Option<f32>,
    #[redtrack(type = "char(6)")]
    pub country: Option<String>,
    #[redtrack(type = "decimal(6,2)")]
    pub amount: Option<Decimal>,
    /// A quoted column name (multibyte, `$`), and an optional partition key.
    #[redtrack(rename = "Naïve$Note", type = "varchar(32)", partition_key)]
    pub note: Option<String>,
    pub day: Option<NaiveDate>,
    pub at: Option<NaiveDateTime>,
    pub doc: Option<Value>,
}

// ---------------------------------------------------------------------------------------------
// Values.

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("a decimal literal")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

fn dt(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32, micro: u32) -> NaiveDateTime {
    date(y, m, d)
        .and_hms_micro_opt(h, mi, s, micro)
        .expect("a valid time")
}

fn utc(naive: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(naive, Utc)
}

fn fixed(offset_secs: i32, local: NaiveDateTime) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(offset_secs)
        .expect("a valid offset")
        .from_local_datetime(&local)
        .single()
        .expect("an unambiguous local time")
}

fn time(h: u32, m: u32, s: u32, micro: u32) -> NaiveTime {
    NaiveTime::from_hms_micro_opt(h, m, s, micro).expect("a valid time")
}

fn numbers() -> Vec<Numbers> {
    let max = Numbers {
        seq: 0,
        small: i16::MAX,
        small_opt: Some(i16::MIN),
        small_named: Some(-1),
        int_v: i32::MAX,
        int_opt: Some(i32::MIN),
        int_named: Some(0),
        big: i64::MAX,
        big_opt: Some(i64::MIN),
        big_named: Some(-9_007_199_254_740_993), // not a double: exact only as an integer
        dec_default: dec("999999999999999999"),
        dec_wide: Some(dec("-999999999999999999.9999999999")),
        dec_38: Some(Decimal::MAX),
        dec_small: Some(dec("-999.99")),
        real: 0.1,
        real_opt: Some(f32::MAX),
        real_named: Some(f32::from_bits(1)), // the smallest subnormal
        dbl: 0.1,
        dbl_opt: Some(f64::from_bits(1)), // 5e-324
        dbl_float: Some(f64::MAX),
        dbl_named: Some(-1e300),
        flag: true,
        flag_opt: Some(false),
        flag_named: Some(true),
    };
    let min = Numbers {
        seq: 1,
        small: i16::MIN,
        small_opt: Some(i16::MAX),
        small_named: Some(0),
        int_v: i32::MIN,
        int_opt: Some(i32::MAX),
        int_named: Some(-1),
        big: i64::MIN,
        big_opt: Some(i64::MAX),
        big_named: Some(9_007_199_254_740_993),
        dec_default: dec("-999999999999999999"),
        dec_wide: Some(dec("1234567890123456789.012345678")),
        dec_38: Some(Decimal::MIN),
        dec_small: Some(dec("0.01")),
        real: -f32::MIN_POSITIVE,
        real_opt: Some(f32::MIN),
        real_named: Some(-0.0),
        dbl: std::f64::consts::PI,
        dbl_opt: Some(f64::MIN_POSITIVE),
        dbl_float: Some(f64::MIN),
        dbl_named: Some(-0.0),
        flag: false,
        flag_opt: Some(true),
        flag_named: Some(false),
    };
    let small = Numbers {
        seq: 2,
        small: 0,
        small_opt: None,
        small_named: None,
        int_v: 0,
        int_opt: None,
        int_named: None,
        big: 0,
        big_opt: None,
        big_named: None,
        dec_default: dec("0"),
        dec_wide: Some(dec("0.0000000001")),
        dec_38: Some(dec("-0")),
        // A trailing zero beyond the value's own digits, and fewer digits than the scale.
        dec_small: Some(dec("1.50")),
        real: 1e-45,
        real_opt: Some(16_777_216.0), // 2^24: the last integer every f32 below holds
        real_named: None,
        dbl: 1e-310, // subnormal
        dbl_opt: Some(0.1 + 0.2),
        dbl_float: Some(123_456_789.125),
        dbl_named: None,
        flag: true,
        flag_opt: None,
        flag_named: None,
    };
    let nulls = Numbers {
        seq: 3,
        dec_wide: None,
        dec_38: None,
        dec_small: Some(dec("2.5")),
        real_opt: None,
        dbl_opt: None,
        dbl_float: None,
        ..small.clone()
    };
    vec![max, min, small, nulls]
}

fn texts() -> Vec<Texts> {
    let specials = "q\"uote\\back\nnew\rret\ttab\u{1}\u{1f}\u{7f}\u{8}\u{c}/<\u{2028}>😀";
    let mut scratch = HashMap::new();
    scratch.insert("ignored".to_owned(), vec![0u8, 1, 2]);
    vec![
        // At the limits, exactly.
        Texts {
            seq: 0,
            user_name: "é".repeat(128), // 256 bytes: VARCHAR(256) exactly
            sel: Some("😀😀😀".into()), // 12 bytes: VARCHAR(12) exactly
            order: Some("abcd".into()), // CHAR(4) exactly
            body: Some("€".repeat(85) + "a"), // 256 bytes
            huge: Some("€".repeat(21_845)), // 65535 bytes
            mixed: "aé€😀ab".into(),    // 12 bytes
            code: "ABCDEFGH".into(),    // CHAR(8) exactly
            r#type: Some(String::new()), // empty, not NULL
            scratch: scratch.clone(),
        },
        // Over the limits: truncated on a char boundary.
        Texts {
            seq: 1,
            user_name: "é".repeat(129),
            sel: Some("x😀😀😀".into()),
            order: Some("abcdef".into()),
            body: Some("a".to_owned() + &"€".repeat(200)),
            huge: Some("a".to_owned() + &"€".repeat(23_000)),
            mixed: "ab€€€€".into(),
            code: "0123456789".into(),
            r#type: Some("é".repeat(200)),
            scratch: HashMap::new(),
        },
        // Characters that need escaping in JSON and in COPY.
        Texts {
            seq: 2,
            user_name: specials.into(),
            sel: Some("\\N".into()), // COPY text's NULL marker, as text
            order: Some("\\.\"'".into()),
            body: Some(specials.repeat(3)),
            huge: Some("\\.\n\\.".into()), // COPY's end-of-data marker on a line of its own
            mixed: "\u{feff}BOM\u{fffd}".into(),
            code: "a b\tc".into(),
            r#type: Some("NULL".into()),
            scratch: HashMap::new(),
        },
        // NULLs, and an empty partition key (a random one is used).
        Texts {
            seq: 3,
            user_name: String::new(),
            sel: None,
            order: None,
            body: None,
            huge: None,
            mixed: String::new(),
            code: "  x ".into(),
            r#type: None,
            scratch,
        },
        // Trailing spaces in CHAR are not significant; in VARCHAR they are.
        Texts {
            seq: 4,
            user_name: "a partition key longer than 256 characters ".repeat(8),
            sel: Some(" padded  ".into()),
            order: Some("a ".into()),
            body: Some("日本語のテキスト".into()),
            huge: Some(String::new()),
            mixed: "Ünïcödé".into(),
            code: "x".into(),
            r#type: Some("select".into()),
            scratch: HashMap::new(),
        },
        // A partition key of emoji: Kinesis counts 256 UTF-16 units, two per emoji (regression:
        // cut at 256 chars, the key failed the whole PutRecords call).
        Texts {
            seq: 5,
            user_name: "😀".repeat(200),
            sel: None,
            order: None,
            body: None,
            huge: None,
            mixed: String::new(),
            code: String::new(),
            r#type: None,
            scratch: HashMap::new(),
        },
    ]
}

fn times() -> Vec<Times> {
    vec![
        // Redshift's earliest instant, 4713 BC.
        Times {
            seq: 0,
            d: date(-4712, 1, 1),
            d_opt: Some(date(0, 12, 31)), // 1 BC
            ts: dt(-4712, 1, 1, 0, 0, 0, 0),
            ts_opt: Some(dt(-1, 2, 28, 23, 59, 59, 999_999)), // 2 BC
            ts_from_utc: Some(utc(dt(-4712, 1, 1, 0, 0, 0, 1))),
            tstz: utc(dt(-4712, 1, 1, 0, 0, 0, 0)),
            tstz_opt: Some(utc(dt(0, 1, 1, 12, 0, 0, 0))),
            // 4713 BC in UTC, written from +05:00.
            tstz_fixed: Some(fixed(5 * 3600, dt(-4712, 1, 1, 5, 0, 0, 0))),
            t: time(0, 0, 0, 0),
            t_opt: Some(time(23, 59, 59, 999_999)),
        },
        // The latest instant chrono holds, 262142 AD (Redshift's range goes on to 294276 AD).
        Times {
            seq: 1,
            d: date(262_142, 12, 31),
            d_opt: Some(date(1, 1, 1)),
            ts: dt(262_142, 12, 31, 23, 59, 59, 999_999),
            ts_opt: Some(dt(9999, 12, 31, 23, 59, 59, 999_999)),
            ts_from_utc: Some(utc(dt(10_000, 1, 1, 0, 0, 0, 0))),
            tstz: utc(dt(262_142, 12, 31, 23, 59, 59, 999_999)),
            tstz_opt: Some(utc(dt(1970, 1, 1, 0, 0, 0, 0))),
            // The last UTC instant, written from -09:30.
            tstz_fixed: Some(fixed(
                -(9 * 3600 + 1800),
                dt(262_142, 12, 31, 14, 29, 59, 999_999),
            )),
            t: time(23, 59, 59, 999_999),
            t_opt: Some(time(12, 0, 0, 1)),
        },
        // Ordinary values with microseconds and offsets that change the date.
        Times {
            seq: 2,
            d: date(2024, 2, 29),
            d_opt: None,
            ts: dt(2024, 2, 29, 12, 34, 56, 123_456),
            ts_opt: None,
            ts_from_utc: None,
            tstz: utc(dt(1999, 12, 31, 23, 59, 59, 1)),
            tstz_opt: None,
            tstz_fixed: Some(fixed(5 * 3600 + 1800, dt(2024, 1, 1, 0, 30, 0, 250_000))),
            t: time(12, 34, 56, 654_321),
            t_opt: None,
        },
        Times {
            seq: 3,
            d: date(1970, 1, 1),
            d_opt: Some(date(2000, 2, 29)),
            ts: dt(1969, 12, 31, 23, 59, 59, 999_999),
            ts_opt: Some(dt(2038, 1, 19, 3, 14, 8, 0)),
            ts_from_utc: Some(utc(dt(2001, 9, 9, 1, 46, 40, 500_000))),
            tstz: utc(dt(2024, 6, 30, 23, 59, 59, 0)),
            tstz_opt: Some(utc(dt(2100, 3, 1, 0, 0, 0, 10))),
            tstz_fixed: Some(fixed(-12 * 3600, dt(2024, 12, 31, 23, 0, 0, 999_999))),
            t: time(0, 0, 0, 1),
            t_opt: Some(time(6, 7, 8, 90_000)),
        },
        Times {
            seq: 4,
            d: date(1, 1, 1),
            d_opt: None,
            ts: dt(1, 1, 1, 0, 0, 0, 0),
            ts_opt: None,
            ts_from_utc: None,
            tstz: utc(dt(1, 1, 1, 0, 0, 0, 0)),
            tstz_opt: None,
            tstz_fixed: Some(fixed(14 * 3600, dt(2024, 1, 1, 0, 0, 0, 0))),
            t: time(1, 2, 3, 0),
            t_opt: None,
        },
    ]
}

fn supers() -> Vec<Supers> {
    vec![
        Supers {
            seq: 0,
            doc: json!({
                "a": [1, 2.5, "x", null, true, false],
                "nested": {"deep": {"deeper": [{}, [], [[[]]], {"k": {"v": [null]}}]}},
                "text": "é😀\n\t\"\\\u{1}/",
                "big": u64::MAX,
                "neg": i64::MIN,
                "float": 1e300,
                "tiny": 5e-324,
                "tenth": 0.1,
                "UPPER": "case kept",
                "": "empty key",
                "key with \"quotes\"": 1,
            }),
            doc_opt: Some(json!([1, [2, [3, [4, [5, {"six": 6}]]]]])),
        },
        Supers {
            seq: 1,
            doc: json!("a JSON string, not an object"),
            doc_opt: Some(json!(-42)),
        },
        Supers {
            seq: 2,
            doc: json!([]),
            doc_opt: Some(json!({})),
        },
        Supers {
            seq: 3,
            doc: json!(true),
            doc_opt: None,
        },
        Supers {
            seq: 4,
            doc: json!(0.5),
            doc_opt: Some(json!("\\N")),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// What the warehouse holds for a written event: the documented truncation, CHAR's padding.

/// The longest prefix of at most `max` bytes that ends on a char boundary (written out here, not
/// taken from redtrack, so the test checks the rule rather than the implementation).
fn cut(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// A CHAR(n) value as `::text` shows it: truncated, trailing spaces insignificant.
fn char_text(s: &str, max: usize) -> String {
    cut(s, max).trim_end_matches(' ').to_owned()
}

fn stored_texts(e: &Texts) -> Texts {
    Texts {
        seq: e.seq,
        user_name: cut(&e.user_name, 256),
        sel: e.sel.as_deref().map(|s| cut(s, 12)),
        order: e.order.as_deref().map(|s| char_text(s, 4)),
        body: e.body.as_deref().map(|s| cut(s, 256)),
        huge: e.huge.as_deref().map(|s| cut(s, 65_535)),
        mixed: cut(&e.mixed, 12),
        code: char_text(&e.code, 8),
        r#type: e.r#type.as_deref().map(|s| cut(s, 256)),
        scratch: HashMap::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The schemas and DDL.

#[test]
fn schemas_follow_the_attributes() {
    use redtrack::{DistStyle, SortKey, SqlType};

    assert_eq!(Numbers::TABLE_NAME, "e2e_numbers");
    let s = Numbers::schema();
    let types: Vec<(&str, SqlType, bool)> = s
        .columns
        .iter()
        .map(|c| (c.name, c.sql_type, c.nullable))
        .collect();
    use SqlType::*;
    assert_eq!(
        types,
        [
            ("seq", Integer, false),
            ("small", SmallInt, false),
            ("small_opt", SmallInt, true),
            ("small_named", SmallInt, true),
            ("int_v", Integer, false),
            ("int_opt", Integer, true),
            ("int_named", Integer, true),
            ("big", BigInt, false),
            ("big_opt", BigInt, true),
            ("big_named", BigInt, true),
            (
                "dec_default",
                Decimal {
                    precision: 18,
                    scale: 0
                },
                false
            ),
            (
                "dec_wide",
                Decimal {
                    precision: 38,
                    scale: 10
                },
                true
            ),
            (
                "dec_38",
                Decimal {
                    precision: 38,
                    scale: 0
                },
                true
            ),
            (
                "dec_small",
                Decimal {
                    precision: 5,
                    scale: 2
                },
                true
            ),
            ("real", Real, false),
            ("real_opt", Real, true),
            ("real_named", Real, true),
            ("dbl", Double, false),
            ("dbl_opt", Double, true),
            ("dbl_float", Double, true),
            ("dbl_named", Double, true),
            ("flag", Boolean, false),
            ("flag_opt", Boolean, true),
            ("flag_named", Boolean, true),
        ]
    );
    assert_eq!(s.sortkey, SortKey::Compound(&["seq", "small"]));
    assert_eq!(s.distkey, Some("big"));
    assert_eq!(s.diststyle, Some(DistStyle::Key));
    assert_eq!(s.column("big").and_then(|c| c.encode), Some("az64"));
    let sql = Numbers::create_table_sql();
    assert!(
        sql.starts_with("CREATE TABLE IF NOT EXISTS e2e_numbers (\n"),
        "{sql}"
    );
    for part in [
        "    small_opt SMALLINT ENCODE DELTA,\n",
        "    int_named INTEGER ENCODE MOSTLY16,\n",
        "    big BIGINT ENCODE AZ64 NOT NULL,\n",
        "    dec_default DECIMAL(18,0) NOT NULL,\n",
        "    dec_wide DECIMAL(38,10),\n",
        "    real REAL NOT NULL,\n",
        "    dbl_float DOUBLE PRECISION,\n",
        "    flag_opt BOOLEAN ENCODE RUNLENGTH,\n",
        "\n)\nDISTSTYLE KEY\nDISTKEY (big)\nCOMPOUND SORTKEY (seq, small)",
    ] {
        assert!(sql.contains(part), "{part:?} not in\n{sql}");
    }

    assert_eq!(Texts::TABLE_NAME, "e2e_texttypes");
    let s = Texts::schema();
    let names: Vec<(&str, SqlType)> = s.columns.iter().map(|c| (c.name, c.sql_type)).collect();
    assert_eq!(
        names,
        [
            ("seq", Integer),
            ("user", Varchar { len: 256 }),
            ("select", Varchar { len: 12 }),
            ("order", Char { len: 4 }),
            ("body", Varchar { len: 256 }),
            ("huge", Varchar { len: 65_535 }),
            ("mixedcase", Varchar { len: 12 }),
            ("code", Char { len: 8 }),
            ("type", Varchar { len: 256 }),
        ]
    );
    assert_eq!(s.sortkey, SortKey::Interleaved(&["seq", "user"]));
    assert_eq!(s.diststyle, Some(DistStyle::Even));
    let sql = Texts::create_table_sql();
    for part in [
        "CREATE TABLE IF NOT EXISTS e2e_texttypes (\n",
        "    \"user\" VARCHAR(256) NOT NULL,\n",
        "    \"select\" VARCHAR(12) ENCODE LZO,\n",
        "    \"order\" CHAR(4),\n",
        "    body VARCHAR(256) ENCODE ZSTD,\n",
        "    code CHAR(8) ENCODE BYTEDICT NOT NULL,\n",
        "    type VARCHAR(256)\n)",
        "\nDISTSTYLE EVEN\nINTERLEAVED SORTKEY (seq, \"user\")",
    ] {
        assert!(sql.contains(part), "{part:?} not in\n{sql}");
    }
    assert!(!sql.contains("scratch"), "{sql}");
    let e = &texts()[0];
    assert_eq!(e.partition_key(), Some(e.user_name.clone()));
    assert_eq!(texts()[3].partition_key(), None, "empty: a random key");
    assert_eq!(texts()[5].partition_key(), Some("😀".repeat(128)));
    let long = &texts()[4];
    assert_eq!(
        long.partition_key(),
        Some(long.user_name.chars().take(256).collect::<String>())
    );

    let s = Times::schema();
    let names: Vec<(&str, SqlType, bool)> = s
        .columns
        .iter()
        .map(|c| (c.name, c.sql_type, c.nullable))
        .collect();
    assert_eq!(
        names,
        [
            ("seq", BigInt, false),
            ("d", Date, false),
            ("d_opt", Date, true),
            ("ts", Timestamp, false),
            ("ts_opt", Timestamp, true),
            ("ts_from_utc", Timestamp, true),
            ("tstz", TimestampTz, false),
            ("tstz_opt", TimestampTz, true),
            ("tstz_fixed", TimestampTz, true),
            ("t", Time, false),
            ("t_opt", Time, true),
        ]
    );
    assert_eq!(s.sortkey, SortKey::Compound(&["d", "ts"]));
    assert_eq!(s.diststyle, Some(DistStyle::All));
    assert_eq!(times()[1].partition_key(), Some("1".to_owned()));

    let s = Supers::schema();
    assert_eq!(s.columns[1].sql_type, Super);
    assert!(!s.columns[1].nullable);
    assert_eq!(s.columns[2].sql_type, Super);
    assert!(s.columns[2].nullable);
    assert_eq!(s.diststyle, Some(DistStyle::Auto));
    assert_eq!(
        Supers::create_table_sql(),
        "CREATE TABLE IF NOT EXISTS e2e_supers (\n    seq INTEGER NOT NULL,\n    \
         doc SUPER NOT NULL,\n    doc_opt SUPER\n)\nDISTSTYLE AUTO"
    );
    assert_eq!(
        Supers::create_table_sql_for(redtrack::Dialect::Postgres),
        "CREATE TABLE IF NOT EXISTS e2e_supers (\n    seq INTEGER NOT NULL,\n    \
         doc JSONB NOT NULL,\n    doc_opt JSONB\n)"
    );
}

/// The JSON lines themselves: decimals as strings, UTC timestamps, BC dates, truncation.
#[test]
fn encoded_json_lines() {
    let n = numbers()[0].to_json().expect("encodes");
    for part in [
        r#""small":32767,"small_opt":-32768,"#,
        r#""big":9223372036854775807,"big_opt":-9223372036854775808,"#,
        r#""dec_default":"999999999999999999","dec_wide":"-999999999999999999.9999999999","#,
        r#""dec_38":"79228162514264337593543950335","#,
        r#""real":0.1,"#,
    ] {
        assert!(n.contains(part), "{part} not in {n}");
    }
    let t = times()[0].to_json().expect("encodes");
    for part in [
        r#""d":"4713-01-01 BC","d_opt":"0001-12-31 BC","#,
        r#""ts":"4713-01-01 00:00:00 BC""#,
        r#""tstz":"4713-01-01 00:00:00+00 BC""#,
        r#""tstz_fixed":"4713-01-01 00:00:00+00 BC""#,
        r#""t":"00:00:00","t_opt":"23:59:59.999999""#,
    ] {
        assert!(t.contains(part), "{part} not in {t}");
    }
    let t = times()[2].to_json().expect("encodes");
    assert!(
        t.contains(r#""tstz_fixed":"2023-12-31 19:00:00.250000+00""#),
        "{t}"
    );
    let x = texts()[1].to_json().expect("encodes");
    assert!(x.contains(r#""select":"x😀😀","#), "{x}");
    assert!(x.contains(r#""order":"abcd","#), "{x}");
    assert!(!x.contains("scratch"), "{x}");
    // Nanoseconds beyond microseconds are cut, as Redshift stores microseconds.
    let mut e = times()[2].clone();
    e.ts = date(2024, 1, 1)
        .and_hms_nano_opt(0, 0, 0, 123_456_789)
        .expect("valid");
    e.t = NaiveTime::from_hms_nano_opt(1, 2, 3, 999).expect("valid");
    let j = e.to_json().expect("encodes");
    assert!(j.contains(r#""ts":"2024-01-01 00:00:00.123456""#), "{j}");
    assert!(j.contains(r#""t":"01:02:03""#), "{j}");
}

// ---------------------------------------------------------------------------------------------
// Through the services.

async fn write_all<E: RedTrackEvent>(client: &Client, events: &[E]) {
    client.create_stream::<E>(2).await.expect("create_stream");
    client
        .create_stream::<E>(2)
        .await
        .expect("create_stream again");
    for e in events {
        client
            .write(e)
            .await
            .unwrap_or_else(|err| panic!("write to {}: {err}", E::TABLE_NAME));
    }
}

async fn load_all<E: RedTrackEvent>(loader: &Loader, n: usize, rejected: u64) {
    loader.setup::<E>().await.expect("setup");
    loader.setup::<E>().await.expect("setup again");
    let report = loader
        .load::<E>()
        .await
        .unwrap_or_else(|e| panic!("load {}: {e}", E::TABLE_NAME));
    assert_eq!(report.records, n as u64, "{}: {report:?}", E::TABLE_NAME);
    assert_eq!(
        report.rejected,
        rejected,
        "{}: {:?}",
        E::TABLE_NAME,
        report.rejects
    );
    let again = loader.load::<E>().await.expect("second load");
    assert_eq!(again.records, 0, "{}: loaded twice", E::TABLE_NAME);
}

async fn check_numbers(pg: &tokio_postgres::Client) {
    let rows = pg
        .query(
            "SELECT seq, small, small_opt, small_named, int_v, int_opt, int_named, big, big_opt, \
             big_named, dec_default::text, dec_wide::text, dec_38::text, dec_small::text, \
             \"real\", real_opt, real_named, dbl, dbl_opt, dbl_float, dbl_named, flag, flag_opt, \
             flag_named FROM e2e_numbers ORDER BY seq",
            &[],
        )
        .await
        .expect("select e2e_numbers");
    let d = |s: Option<String>| s.map(|s| dec(&s));
    let got: Vec<Numbers> = rows
        .iter()
        .map(|r| Numbers {
            seq: r.get(0),
            small: r.get(1),
            small_opt: r.get(2),
            small_named: r.get(3),
            int_v: r.get(4),
            int_opt: r.get(5),
            int_named: r.get(6),
            big: r.get(7),
            big_opt: r.get(8),
            big_named: r.get(9),
            dec_default: dec(&r.get::<_, String>(10)),
            dec_wide: d(r.get(11)),
            dec_38: d(r.get(12)),
            dec_small: d(r.get(13)),
            real: r.get(14),
            real_opt: r.get(15),
            real_named: r.get(16),
            dbl: r.get(17),
            dbl_opt: r.get(18),
            dbl_float: r.get(19),
            dbl_named: r.get(20),
            flag: r.get(21),
            flag_opt: r.get(22),
            flag_named: r.get(23),
        })
        .collect();
    let want = numbers();
    assert_eq!(got, want);
    // Floats bit for bit (PartialEq takes -0.0 for 0.0).
    for (g, w) in got.iter().zip(&want) {
        // Both load paths keep the sign of zero (the careful one reads values as `json` text).
        let bits32 =
            |e: &Numbers| [Some(e.real), e.real_opt, e.real_named].map(|v| v.map(f32::to_bits));
        let bits64 = |e: &Numbers| {
            [Some(e.dbl), e.dbl_opt, e.dbl_float, e.dbl_named].map(|v| v.map(f64::to_bits))
        };
        assert_eq!(bits32(g), bits32(w), "REAL bits of seq {}", w.seq);
        assert_eq!(bits64(g), bits64(w), "DOUBLE bits of seq {}", w.seq);
    }
    // Decimals digit for digit (Decimal's == ignores trailing zeros).
    let text: Vec<Option<String>> = rows.iter().map(|r| r.get(11)).collect();
    assert_eq!(
        text,
        [
            Some("-999999999999999999.9999999999".to_owned()),
            Some("1234567890123456789.0123456780".to_owned()),
            Some("0.0000000001".to_owned()),
            None
        ]
    );
}

async fn check_texts(pg: &tokio_postgres::Client) {
    let rows = pg
        .query(
            "SELECT seq, \"user\", \"select\", \"order\"::text, body, huge, mixedcase, code::text, \
             \"type\" FROM e2e_texttypes ORDER BY seq",
            &[],
        )
        .await
        .expect("select e2e_texttypes");
    let got: Vec<Texts> = rows
        .iter()
        .map(|r| Texts {
            seq: r.get(0),
            user_name: r.get(1),
            sel: r.get(2),
            order: r.get(3),
            body: r.get(4),
            huge: r.get(5),
            mixed: r.get(6),
            code: r.get(7),
            r#type: r.get(8),
            scratch: HashMap::new(),
        })
        .collect();
    let want: Vec<Texts> = texts().iter().map(stored_texts).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    // The truncation cut where the rule says, never inside a char.
    assert_eq!(got[1].user_name, "é".repeat(128));
    assert_eq!(got[1].sel.as_deref(), Some("x😀😀"));
    assert_eq!(got[1].mixed, "ab€€€");
    assert_eq!(got[1].huge.as_ref().map(String::len), Some(1 + 3 * 21_844));
    assert_eq!(got[1].order.as_deref(), Some("abcd"));
    assert_eq!(got[1].code, "01234567");
    // CHAR pads with spaces: the stored value is the padded one.
    let padded: String = pg
        .query_one("SELECT \"order\" FROM e2e_texttypes WHERE seq = 4", &[])
        .await
        .expect("select padded")
        .get(0);
    assert_eq!(padded, "a   ");
}

async fn check_times(pg: &tokio_postgres::Client) {
    let rows = pg
        .query(
            "SELECT seq, d, d_opt, ts, ts_opt, ts_from_utc, tstz, tstz_opt, tstz_fixed, t, t_opt \
             FROM e2e_times ORDER BY seq",
            &[],
        )
        .await
        .expect("select e2e_times");
    let got: Vec<Times> = rows
        .iter()
        .map(|r| Times {
            seq: r.get(0),
            d: r.get(1),
            d_opt: r.get(2),
            ts: r.get(3),
            ts_opt: r.get(4),
            ts_from_utc: r.get::<_, Option<NaiveDateTime>>(5).map(utc),
            tstz: r.get(6),
            tstz_opt: r.get(7),
            tstz_fixed: r.get(8),
            t: r.get(9),
            t_opt: r.get(10),
        })
        .collect();
    let want = times();
    assert_eq!(got, want);
    // The same instant (DateTime's == compares instants; check the UTC wall time too).
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            g.tstz_fixed.map(|t| t.naive_utc()),
            w.tstz_fixed.map(|t| t.naive_utc()),
            "seq {}",
            w.seq
        );
    }
    // In the warehouse's own words, in UTC.
    pg.batch_execute("SET TIME ZONE 'UTC'")
        .await
        .expect("set time zone");
    let shown: Vec<(String, String, String)> = pg
        .query(
            "SELECT d::text, ts::text, tstz_fixed::text FROM e2e_times ORDER BY seq",
            &[],
        )
        .await
        .expect("select text")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        shown[0],
        (
            "4713-01-01 BC".to_owned(),
            "4713-01-01 00:00:00 BC".to_owned(),
            "4713-01-01 00:00:00+00 BC".to_owned()
        )
    );
    assert_eq!(
        shown[1],
        (
            "262142-12-31".to_owned(),
            "262142-12-31 23:59:59.999999".to_owned(),
            "262142-12-31 23:59:59.999999+00".to_owned()
        )
    );
    assert_eq!(shown[2].2, "2023-12-31 19:00:00.25+00");
}

async fn check_supers(pg: &tokio_postgres::Client) {
    let rows = pg
        .query("SELECT seq, doc, doc_opt FROM e2e_supers ORDER BY seq", &[])
        .await
        .expect("select e2e_supers");
    let got: Vec<Supers> = rows
        .iter()
        .map(|r| Supers {
            seq: r.get(0),
            doc: r.get(1),
            doc_opt: r.get(2),
        })
        .collect();
    assert_eq!(got, supers());
    // Navigable as JSON in the warehouse, not a string holding JSON.
    let deep: Option<String> = pg
        .query_one(
            "SELECT doc #>> '{nested,deep,deeper,3,k,v}' FROM e2e_supers WHERE seq = 0",
            &[],
        )
        .await
        .expect("navigate")
        .get(0);
    assert_eq!(deep.as_deref(), Some("[null]"));
}

/// Writes every table's events with `config`, loads them and checks every value.
/// How a round trip is run.
#[derive(Clone, Copy, PartialEq)]
enum LoadPath {
    /// The events alone.
    Plain,
    /// One record per stream that no column takes (`seq` is not a number), put straight into
    /// the broker; the loader (MAXERROR 1) rejects it and must load every other value unchanged
    /// through its careful path.
    WithBadRecord,
}

/// Writes every table's events with `config`, loads them and checks every value.
async fn round_trip(config: Config, pg: &tokio_postgres::Client, path: LoadPath) {
    let client = Client::new(config.clone()).await.expect("client");
    write_all(&client, &numbers()).await;
    write_all(&client, &texts()).await;
    write_all(&client, &times()).await;
    write_all(&client, &supers()).await;
    client.flush().await.expect("flush");

    let mut rejected = 0;
    let mut config = config;
    if path == LoadPath::WithBadRecord {
        use redtrack::broker::{AnyBroker, Broker, PutRecord};
        let broker = AnyBroker::from_config(&config).await.expect("broker");
        let bad = || PutRecord {
            partition_key: "bad".into(),
            data: bytes::Bytes::from_static(br#"{"seq":"not a number"}"#),
        };
        for table in [
            Numbers::TABLE_NAME,
            Texts::TABLE_NAME,
            Times::TABLE_NAME,
            Supers::TABLE_NAME,
        ] {
            broker
                .put_records(&config.stream_name(table), &[bad()])
                .await
                .expect("put a bad record");
        }
        rejected = 1;
        config = config
            .into_builder()
            .with_max_errors(1)
            .build()
            .expect("config");
    }

    let loader = Loader::new(config).await.expect("loader");
    load_all::<Numbers>(&loader, numbers().len(), rejected).await;
    load_all::<Texts>(&loader, texts().len(), rejected).await;
    load_all::<Times>(&loader, times().len(), rejected).await;
    load_all::<Supers>(&loader, supers().len(), rejected).await;

    check_numbers(pg).await;
    check_texts(pg).await;
    check_times(pg).await;
    check_supers(pg).await;
    client.close().await.expect("close");
}

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "redtrack-e2e-{what}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// The file broker, with a directory stage.
fn file_config(env: &common::TestEnv) -> (Config, PathBuf) {
    let dir = temp_dir("broker");
    let config = env
        .config()
        .into_builder()
        .broker(BrokerKind::File(dir.join("broker")))
        .stage(StageLocation::Dir(dir.join("stage")))
        .build()
        .expect("file config");
    (config, dir)
}

crate::each_backend! {
    /// Every type through Kinesis, S3 and the warehouse, checked value by value in the stored
    /// rows.
    async fn every_type_round_trips_through_kinesis(env: TestEnv) {
        let pg = env.pg().await;
        round_trip(env.config(), &pg, LoadPath::Plain).await;
    }

    /// The same with one bad record per table, rejected under MAXERROR 1.
    async fn every_type_round_trips_through_the_loaders_careful_path(env: TestEnv) {
        let pg = env.pg().await;
        round_trip(env.config(), &pg, LoadPath::WithBadRecord).await;
    }
}

/// On a current-thread runtime (plain `#[tokio::test]`), as many applications' tests run.
#[tokio::test]
async fn every_type_round_trips_through_the_file_broker() {
    let env = common::TestEnv::named("e2e_f").await;
    let (config, dir) = file_config(&env);
    let pg = env.pg().await;
    round_trip(config, &pg, LoadPath::Plain).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_with_kpl_aggregation() {
    let env = common::TestEnv::named("e2e_a").await;
    let config = env
        .config()
        .into_builder()
        .with_aggregation(true)
        .build()
        .expect("config");
    let pg = env.pg().await;
    round_trip(config, &pg, LoadPath::Plain).await;
}

// ---------------------------------------------------------------------------------------------
// Bad values.

fn good(seq: i32) -> Strict {
    Strict {
        seq,
        ratio: Some(f64::from(seq) / 4.0),
        ratio32: None,
        country: Some("NZ".into()),
        amount: Some(Decimal::new(i64::from(seq) * 1234, 2)),
        note: Some(format!("good {seq}")),
        day: date(2024, 1, 1).checked_add_days(chrono::Days::new(seq.unsigned_abs().into())),
        at: None,
        doc: Some(json!({"seq": seq})),
    }
}

/// One bad event per rule: the event, the column, and text of the value the message must show.
fn bad_events() -> Vec<(Strict, &'static str, &'static str)> {
    let blank = Strict {
        seq: -1,
        ratio: None,
        ratio32: None,
        country: None,
        amount: None,
        note: None,
        day: None,
        at: None,
        doc: None,
    };
    vec![
        (
            Strict {
                ratio: Some(f64::NAN),
                ..blank.clone()
            },
            "ratio",
            "NaN",
        ),
        (
            Strict {
                ratio: Some(f64::NEG_INFINITY),
                ..blank.clone()
            },
            "ratio",
            "inf",
        ),
        (
            Strict {
                ratio32: Some(f32::INFINITY),
                ..blank.clone()
            },
            "ratio32",
            "inf",
        ),
        (
            Strict {
                country: Some("Ísland".into()),
                ..blank.clone()
            },
            "country",
            "Ísland",
        ),
        (
            Strict {
                amount: Some(dec("12345.67")),
                ..blank.clone()
            },
            "amount",
            "12345.67",
        ),
        (
            Strict {
                amount: Some(dec("-1.005")),
                ..blank.clone()
            },
            "amount",
            "-1.005",
        ),
        (
            Strict {
                note: Some("nul\0inside".into()),
                ..blank.clone()
            },
            "naïve$note",
            "nul\\0inside",
        ),
        (
            Strict {
                doc: Some(json!({"k": ["a\u{0}b"]})),
                ..blank.clone()
            },
            "doc",
            "a\\0b",
        ),
        (
            Strict {
                day: Some(date(-4713, 12, 31)),
                ..blank.clone()
            },
            "day",
            "-4713-12-31",
        ),
        (
            Strict {
                at: Some(dt(-4713, 12, 31, 23, 59, 59, 999_999)),
                ..blank
            },
            "at",
            "-4713-12-31 23:59:59.999999",
        ),
    ]
}

/// Writes good events around every bad one: each bad write fails at once with an `EncodeError`
/// naming table, column and value; every good event is loaded.
async fn bad_values_lose_nothing(config: Config, pg: &tokio_postgres::Client) {
    let client = Client::new(config.clone()).await.expect("client");
    client.create_stream::<Strict>(2).await.expect("stream");
    let mut seq = 0;
    let mut written = Vec::new();
    for (bad, column, value) in bad_events() {
        for _ in 0..2 {
            let e = good(seq);
            client.write(&e).await.expect("a good write");
            written.push(e);
            seq += 1;
        }
        // Another event in flight while the bad one fails.
        let in_flight = good(seq);
        seq += 1;
        let ack = client.enqueue(&in_flight).await.expect("enqueue");
        match client.write(&bad).await {
            Err(redtrack::Error::Encode(e)) => {
                assert_eq!((e.table, e.column), ("e2e_strict", column));
                let msg = e.to_string();
                assert!(
                    msg.contains("e2e_strict") && msg.contains(column) && msg.contains(value),
                    "the message names table, column `{column}` and value `{value}`: {msg}"
                );
            }
            other => panic!("{bad:?}: expected Error::Encode, got {other:?}"),
        }
        // `encode_json` refuses it the same way, appending nothing.
        let mut buf = b"x".to_vec();
        let err = bad.encode_json(&mut buf).expect_err("does not encode");
        assert_eq!(err.column, column);
        assert_eq!(buf, b"x");
        ack.await.expect("the event in flight is acknowledged");
        written.push(in_flight);
    }
    // Too large for one Kinesis record: refused at once too, nothing sent.
    let too_large = Strict {
        doc: Some(json!("x".repeat(1 << 20))),
        note: None,
        ..good(-2)
    };
    match client.write(&too_large).await {
        Err(redtrack::Error::RecordTooLarge { table, .. }) => assert_eq!(table, "e2e_strict"),
        other => panic!("expected Error::RecordTooLarge, got {other:?}"),
    }
    for _ in 0..2 {
        let mut e = good(seq);
        e.note = None; // a random partition key
        client.write(&e).await.expect("a good write after");
        written.push(e);
        seq += 1;
    }
    client.flush().await.expect("flush");

    let loader = Loader::new(config).await.expect("loader");
    loader.setup::<Strict>().await.expect("setup");
    let report = loader.load::<Strict>().await.expect("load");
    assert_eq!(report.records, written.len() as u64);
    assert_eq!(report.rejected, 0);

    let rows = pg
        .query(
            "SELECT seq, ratio, ratio32, country::text, amount::text, \"naïve$note\", day, at, \
             doc FROM e2e_strict ORDER BY seq",
            &[],
        )
        .await
        .expect("select e2e_strict");
    let got: Vec<Strict> = rows
        .iter()
        .map(|r| Strict {
            seq: r.get(0),
            ratio: r.get(1),
            ratio32: r.get(2),
            country: r.get(3),
            amount: r.get::<_, Option<String>>(4).map(|s| dec(&s)),
            note: r.get(5),
            day: r.get(6),
            at: r.get(7),
            doc: r.get(8),
        })
        .collect();
    written.sort_by_key(|e| e.seq);
    assert_eq!(got, written);
    client.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_fail_at_once_through_kinesis() {
    let env = common::TestEnv::named("e2e_bk").await;
    let pg = env.pg().await;
    bad_values_lose_nothing(env.config(), &pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_fail_at_once_through_the_file_broker() {
    let env = common::TestEnv::named("e2e_bf").await;
    let (config, dir) = file_config(&env);
    let pg = env.pg().await;
    bad_values_lose_nothing(config, &pg).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Regression: a JSON `null` as the whole value of a NOT NULL SUPER column was accepted by
/// `write` and then failed the whole load (the row violates NOT NULL), holding back every event
/// after it. It now fails `write` at once; `Some(Value::Null)` in a nullable column loads NULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_in_a_not_null_super_column_fails_at_once() {
    let env = common::TestEnv::named("e2e_sn").await;
    let config = env.config();
    let client = Client::new(config.clone()).await.expect("client");
    client.create_stream::<Supers>(1).await.expect("stream");
    let before = Supers {
        seq: 0,
        doc: json!([null]),
        doc_opt: Some(Value::Null),
    };
    client.write(&before).await.expect("nested null is a value");
    let bad = Supers {
        seq: 1,
        doc: Value::Null,
        doc_opt: None,
    };
    match client.write(&bad).await {
        Err(redtrack::Error::Encode(e)) => {
            assert_eq!((e.table, e.column), ("e2e_supers", "doc"));
            let msg = e.to_string();
            assert!(msg.contains("null") && msg.contains("NOT NULL"), "{msg}");
        }
        other => panic!("expected Error::Encode, got {other:?}"),
    }
    let after = Supers {
        seq: 2,
        doc: json!({"k": null}),
        doc_opt: None,
    };
    client.write(&after).await.expect("a good write after");
    client.flush().await.expect("flush");

    let loader = Loader::new(config).await.expect("loader");
    loader.setup::<Supers>().await.expect("setup");
    let report = loader
        .load::<Supers>()
        .await
        .expect("the load is not blocked");
    assert_eq!(report.records, 2);
    let pg = env.pg().await;
    let rows: Vec<(i32, Value, Option<Value>)> = pg
        .query("SELECT seq, doc, doc_opt FROM e2e_supers ORDER BY seq", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [(0, json!([null]), None), (2, json!({"k": null}), None)]
    );
    client.close().await.expect("close");
}

/// A table whose only column is named `data`: its events look like the original gem's
/// `{"data": "<event json>"}` envelope, which the loader also reads.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "e2e_payloads")]
pub struct Payload {
    #[redtrack(type = "varchar(1000)")]
    pub data: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_one_data_column_loads_its_values() {
    let env = common::TestEnv::named("e2e_d").await;
    let config = env.config();
    let client = Client::new(config.clone()).await.expect("client");
    client.create_stream::<Payload>(1).await.expect("stream");
    // Values that are the text of a JSON object, even of an envelope, stay that text: only a
    // table with other columns than `data` can hold the gem's envelopes.
    let values = [
        "{\"a\":1}",
        "{\"data\":\"x\"}",
        "plain",
        "[1,2]",
        "{not json",
        " {\"a\":1} trailing",
        "\"quoted\"",
    ];
    for v in values {
        client
            .write(&Payload { data: v.into() })
            .await
            .expect("write");
    }
    client.flush().await.expect("flush");
    let loader = Loader::new(config).await.expect("loader");
    load_all::<Payload>(&loader, values.len(), 0).await;
    let pg = env.pg().await;
    let mut got: Vec<String> = pg
        .query("SELECT data FROM e2e_payloads", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    got.sort();
    let mut want: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    want.sort();
    assert_eq!(got, want);
    client.close().await.expect("close");
}

/// Borrowed and shared text, a lifetime parameter, a fully qualified `Option`.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "e2e_borrowed", sortkey = "seq")]
pub struct Borrowed<'a> {
    pub seq: i32,
    #[redtrack(type = "varchar(8)", partition_key)]
    pub name: &'a str,
    pub tag: std::borrow::Cow<'a, str>,
    pub boxed: Box<str>,
    pub shared: std::sync::Arc<str>,
    pub maybe: std::option::Option<&'a str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrowed_fields_round_trip() {
    let env = common::TestEnv::named("e2e_b").await;
    let (config, dir) = file_config(&env);
    let client = Client::new(config.clone()).await.expect("client");
    client
        .create_stream::<Borrowed<'static>>(1)
        .await
        .expect("stream");
    let owned = String::from("ünïcödé name");
    let events = [
        Borrowed {
            seq: 0,
            name: &owned,
            tag: std::borrow::Cow::Borrowed("borrowed"),
            boxed: "boxed".into(),
            shared: "shared".into(),
            maybe: Some(&owned[..2]),
        },
        Borrowed {
            seq: 1,
            name: "",
            tag: std::borrow::Cow::Owned("owned".to_owned()),
            boxed: "".into(),
            shared: "😀".into(),
            maybe: None,
        },
    ];
    for e in &events {
        client.write(e).await.expect("write");
    }
    client.flush().await.expect("flush");
    let loader = Loader::new(config).await.expect("loader");
    load_all::<Borrowed<'static>>(&loader, events.len(), 0).await;
    let pg = env.pg().await;
    let rows = pg
        .query(
            "SELECT name, tag, boxed, shared, maybe FROM e2e_borrowed ORDER BY seq",
            &[],
        )
        .await
        .expect("select");
    let got: Vec<(String, String, String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        [
            (
                cut(&owned, 8),
                "borrowed".to_owned(),
                "boxed".to_owned(),
                "shared".to_owned(),
                Some("ü".to_owned())
            ),
            (
                String::new(),
                "owned".to_owned(),
                String::new(),
                "😀".to_owned(),
                None
            ),
        ]
    );
    client.close().await.expect("close");
    let _ = std::fs::remove_dir_all(dir);
}

/// Identifiers up to Redshift's 127 bytes (PostgreSQL, standing in, keeps 63 of them).
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "e2e_long_names")]
pub struct LongNames {
    pub seq: i32,
    #[redtrack(
        rename = "a_column_name_of_the_full_127_bytes_redshift_allows_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    )]
    pub long: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_127_byte_column_name_loads() {
    assert_eq!(LongNames::schema().columns[1].name.len(), 127);
    let env = common::TestEnv::named("e2e_l").await;
    let config = env.config();
    let client = Client::new(config.clone()).await.expect("client");
    client.create_stream::<LongNames>(1).await.expect("stream");
    // Twice: through the direct path, then with a bad record in the load, through the careful
    // path, which matches keys to the full 127-byte name too (PostgreSQL's identifiers stop at 63).
    let loader = Loader::new(config.clone()).await.expect("loader");
    let careful = Loader::new(
        config
            .clone()
            .into_builder()
            .with_max_errors(1)
            .build()
            .expect("config"),
    )
    .await
    .expect("loader");
    for (round, loader) in [&loader, &careful].into_iter().enumerate() {
        let first = 3 * i32::try_from(round).expect("round");
        for seq in first..first + 3 {
            let e = LongNames {
                seq,
                long: (seq % 3 != 1).then(|| format!("value {seq}")),
            };
            client.write(&e).await.expect("write");
        }
        client.flush().await.expect("flush");
        let rejected = if round == 1 {
            use redtrack::broker::{AnyBroker, Broker, PutRecord};
            let broker = AnyBroker::from_config(&config).await.expect("broker");
            let bad = PutRecord {
                partition_key: "bad".into(),
                data: bytes::Bytes::from_static(br#"{"seq":"not a number"}"#),
            };
            broker
                .put_records(&config.stream_name(LongNames::TABLE_NAME), &[bad])
                .await
                .expect("put a bad record");
            1
        } else {
            0
        };
        load_all::<LongNames>(loader, 3, rejected).await;
    }
    let pg = env.pg().await;
    let got: Vec<Option<String>> = pg
        .query("SELECT * FROM e2e_long_names ORDER BY seq", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(1))
        .collect();
    let want: Vec<Option<String>> = (0..6)
        .map(|seq| (seq % 3 != 1).then(|| format!("value {seq}")))
        .collect();
    assert_eq!(got, want);
    client.close().await.expect("close");
}
