//! The value writers the generated `encode_json` calls. Each appends one JSON value to `buf`;
//! on error it may have appended part of one (the generated code truncates `buf` back).

use super::{EncodeError, EncodeErrorKind, TRUNCATIONS};
use crate::schema::limits::{
    MAX_JSON_OBJECT_BYTES, MAX_SUPER_BYTES, MAX_SUPER_STRING_BYTES, MAX_YEAR, MIN_YEAR,
};
use crate::text::{shorten, truncate_to_bytes};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rust_decimal::Decimal;
use std::sync::atomic::Ordering;

/// Runs `encode` on `buf` for an event of `table`; on error truncates `buf` back to its length
/// before the call. An event larger than COPY reads as one JSON object (4 MB,
/// `copy-parameters-data-format`) is an error too.
#[inline(always)]
pub fn encode_or_rollback<F>(
    buf: &mut Vec<u8>,
    table: &'static str,
    encode: F,
) -> Result<(), EncodeError>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
{
    let start = buf.len();
    let mut result = encode(buf);
    let bytes = buf.len() - start;
    if result.is_ok() && bytes > MAX_JSON_OBJECT_BYTES {
        result = Err(EncodeError::new(
            table,
            "",
            EncodeErrorKind::RecordTooLarge {
                bytes,
                limit: MAX_JSON_OBJECT_BYTES,
            },
        ));
    }
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Writes `null`.
#[inline(always)]
pub fn write_null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"null");
}

/// Writes an integer (SMALLINT, INTEGER, BIGINT).
#[inline(always)]
pub fn write_int<I: itoa::Integer>(buf: &mut Vec<u8>, value: I) {
    buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Writes a boolean.
#[inline(always)]
pub fn write_bool(buf: &mut Vec<u8>, value: bool) {
    buf.extend_from_slice(if value { b"true" } else { b"false" });
}

/// `f32` (REAL) and `f64` (DOUBLE PRECISION), for [`write_float`].
pub trait JsonFloat: zmij::Float + std::fmt::Display {
    /// Neither NaN nor an infinity.
    fn is_finite_value(self) -> bool;
}

impl JsonFloat for f32 {
    #[inline(always)]
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
}

impl JsonFloat for f64 {
    #[inline(always)]
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
}

/// Writes a REAL or a DOUBLE PRECISION; NaN and infinities are an error.
#[inline]
pub fn write_float<F: JsonFloat>(
    buf: &mut Vec<u8>,
    value: F,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    if !value.is_finite_value() {
        return Err(not_finite(table, column, value.to_string()));
    }
    buf.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    Ok(())
}

#[cold]
fn not_finite(table: &'static str, column: &'static str, value: String) -> EncodeError {
    EncodeError::new(table, column, EncodeErrorKind::NotFinite { value })
}

/// Writes a DECIMAL(precision, scale) as a JSON string, after checking that the value has at most
/// `scale` digits after the point (trailing zeros aside) and `precision - scale` before it.
#[inline]
pub fn write_decimal(
    buf: &mut Vec<u8>,
    value: Decimal,
    precision: u8,
    scale: u8,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    if value.scale() > u32::from(scale) && value.normalize().scale() > u32::from(scale) {
        return Err(decimal_error(
            table,
            column,
            value,
            precision,
            scale,
            format!("more than {scale} digits after the decimal point; round it first"),
        ));
    }
    let int_digits = u32::from(precision.saturating_sub(scale));
    // Decimal's mantissa has at most 29 digits, so only smaller limits can be broken.
    if int_digits < 29 {
        let limit = Decimal::from_i128_with_scale(10i128.pow(int_digits), 0);
        if value.trunc().abs() >= limit {
            return Err(decimal_error(
                table,
                column,
                value,
                precision,
                scale,
                format!("more than {int_digits} digits before the decimal point"),
            ));
        }
    }
    buf.push(b'"');
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_fmt(buf, format_args!("{value}"));
    buf.push(b'"');
    Ok(())
}

#[cold]
fn decimal_error(
    table: &'static str,
    column: &'static str,
    value: Decimal,
    precision: u8,
    scale: u8,
    reason: String,
) -> EncodeError {
    EncodeError::new(
        table,
        column,
        EncodeErrorKind::DecimalOutOfRange {
            value: value.to_string(),
            precision,
            scale,
            reason,
        },
    )
}

/// Writes a VARCHAR(max) value: truncated to `max` bytes on a char boundary, escaped; a NUL in
/// the stored part is an error.
#[inline]
pub fn write_varchar(
    buf: &mut Vec<u8>,
    value: &str,
    max: usize,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    let stored = truncate_to_bytes(value, max);
    if stored.len() < value.len() {
        truncated(table, column, value.len(), max);
    }
    write_str(buf, stored, table, column)
}

/// Writes a CHAR(max) value: ASCII only, truncated to `max` bytes, escaped; a NUL in the stored
/// part is an error.
#[inline]
pub fn write_char(
    buf: &mut Vec<u8>,
    value: &str,
    max: usize,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    let checked = &value.as_bytes()[..value.len().min(max)];
    if let Some(position) = checked.iter().position(|b| !b.is_ascii()) {
        return Err(not_ascii(table, column, value, position));
    }
    // Everything up to `max` is ASCII, so `max` is a char boundary.
    let stored = &value[..checked.len()];
    if stored.len() < value.len() {
        truncated(table, column, value.len(), max);
    }
    write_str(buf, stored, table, column)
}

#[cold]
fn not_ascii(
    table: &'static str,
    column: &'static str,
    value: &str,
    position: usize,
) -> EncodeError {
    // `position` is the first non-ASCII byte, so it starts a char.
    let found = value[position..].chars().next().unwrap_or('\u{fffd}');
    EncodeError::new(
        table,
        column,
        EncodeErrorKind::NotAscii {
            value: shorten(value),
            found,
            position,
        },
    )
}

#[cold]
fn truncated(table: &'static str, column: &'static str, bytes: usize, limit: usize) {
    TRUNCATIONS.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        target: "redtrack::truncation",
        table,
        column,
        bytes,
        limit,
        "value truncated to the column's byte length"
    );
}

const QU: u8 = b'"';
const BS: u8 = b'\\';
const BB: u8 = b'b';
const TT: u8 = b't';
const NN: u8 = b'n';
const FF: u8 = b'f';
const RR: u8 = b'r';
const UU: u8 = b'u';
const NUL: u8 = 0xff;
const __: u8 = 0;

/// For each byte: 0 = written as is, else the escape letter (`u` for `\u00XX`), `NUL` for U+0000.
static ESCAPE: [u8; 256] = [
    //   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F
    NUL, UU, UU, UU, UU, UU, UU, UU, BB, TT, NN, UU, FF, RR, UU, UU, // 0
    UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, // 1
    __, __, QU, __, __, __, __, __, __, __, __, __, __, __, __, __, // 2
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 3
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 4
    __, __, __, __, __, __, __, __, __, __, __, __, BS, __, __, __, // 5
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 6
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 7
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 8
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 9
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // A
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // B
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // C
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // D
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // E
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // F
];

/// Writes `value` as a JSON string (quoted, escaped); a NUL character is an error.
#[inline]
pub(crate) fn write_str(
    buf: &mut Vec<u8>,
    value: &str,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    let bytes = value.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        if start < i {
            buf.extend_from_slice(&bytes[start..i]);
        }
        match escape {
            NUL => return Err(nul_error(table, column, value, i)),
            UU => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(byte >> 4) as usize],
                    HEX[(byte & 0xf) as usize],
                ]);
            }
            letter => buf.extend_from_slice(&[b'\\', letter]),
        }
        start = i + 1;
    }
    if start < bytes.len() {
        buf.extend_from_slice(&bytes[start..]);
    }
    buf.push(b'"');
    Ok(())
}

#[cold]
fn nul_error(
    table: &'static str,
    column: &'static str,
    value: &str,
    position: usize,
) -> EncodeError {
    EncodeError::new(
        table,
        column,
        EncodeErrorKind::NulCharacter {
            value: shorten(value),
            position,
        },
    )
}

#[inline(always)]
fn two_digits(buf: &mut Vec<u8>, n: u32) {
    buf.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
}

/// `YYYY-MM-DD` (at least 4 year digits; BC years as their positive number), and whether the
/// date is BC.
#[inline(always)]
fn date_part(buf: &mut Vec<u8>, date: NaiveDate) -> bool {
    let year = date.year();
    let (shown, bc) = if year <= 0 {
        ((1 - year) as u32, true)
    } else {
        (year as u32, false)
    };
    if shown < 10_000 {
        buf.extend_from_slice(&[
            b'0' + (shown / 1000) as u8,
            b'0' + (shown / 100 % 10) as u8,
            b'0' + (shown / 10 % 10) as u8,
            b'0' + (shown % 10) as u8,
        ]);
    } else {
        buf.extend_from_slice(itoa::Buffer::new().format(shown).as_bytes());
    }
    buf.push(b'-');
    two_digits(buf, date.month());
    buf.push(b'-');
    two_digits(buf, date.day());
    bc
}

/// `HH:MM:SS[.ffffff]`: microseconds, only when not zero; a leap second shows as `:59.999999`.
#[inline(always)]
fn time_part(buf: &mut Vec<u8>, time: NaiveTime) {
    two_digits(buf, time.hour());
    buf.push(b':');
    two_digits(buf, time.minute());
    buf.push(b':');
    two_digits(buf, time.second());
    let nanos = time.nanosecond();
    let micros = if nanos >= 1_000_000_000 {
        999_999
    } else {
        nanos / 1000
    };
    if micros != 0 {
        buf.push(b'.');
        let mut digits = [b'0'; 6];
        let mut n = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        buf.extend_from_slice(&digits);
    }
}

#[inline(always)]
fn check_year(
    year: i32,
    table: &'static str,
    column: &'static str,
    sql_type: &'static str,
    value: &dyn std::fmt::Display,
) -> Result<(), EncodeError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(out_of_range(table, column, sql_type, value))
    }
}

#[cold]
fn out_of_range(
    table: &'static str,
    column: &'static str,
    sql_type: &'static str,
    value: &dyn std::fmt::Display,
) -> EncodeError {
    EncodeError::new(
        table,
        column,
        EncodeErrorKind::DateOutOfRange {
            value: value.to_string(),
            sql_type,
        },
    )
}

/// Writes a DATE as `"YYYY-MM-DD"` (`"YYYY-MM-DD BC"` before year 1).
#[inline]
pub fn write_date(
    buf: &mut Vec<u8>,
    value: NaiveDate,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    check_year(value.year(), table, column, "DATE", &value)?;
    buf.push(b'"');
    if date_part(buf, value) {
        buf.extend_from_slice(b" BC");
    }
    buf.push(b'"');
    Ok(())
}

/// Writes a TIMESTAMP (UTC) as `"YYYY-MM-DD HH:MM:SS[.ffffff]"`.
#[inline]
pub fn write_timestamp(
    buf: &mut Vec<u8>,
    value: NaiveDateTime,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    write_datetime(buf, value, "", "TIMESTAMP", table, column)
}

/// Writes a TIMESTAMPTZ (converted to UTC) as `"YYYY-MM-DD HH:MM:SS[.ffffff]+00"`.
#[inline]
pub fn write_timestamptz(
    buf: &mut Vec<u8>,
    utc: NaiveDateTime,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    write_datetime(buf, utc, "+00", "TIMESTAMPTZ", table, column)
}

#[inline(always)]
fn write_datetime(
    buf: &mut Vec<u8>,
    value: NaiveDateTime,
    offset: &str,
    sql_type: &'static str,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    check_year(value.year(), table, column, sql_type, &value)?;
    buf.push(b'"');
    let bc = date_part(buf, value.date());
    buf.push(b' ');
    time_part(buf, value.time());
    buf.extend_from_slice(offset.as_bytes());
    if bc {
        buf.extend_from_slice(b" BC");
    }
    buf.push(b'"');
    Ok(())
}

/// Writes a TIME as `"HH:MM:SS[.ffffff]"`.
#[inline]
pub fn write_time(buf: &mut Vec<u8>, value: NaiveTime) {
    buf.push(b'"');
    time_part(buf, value);
    buf.push(b'"');
}

/// Writes the value of a NOT NULL SUPER column: as [`write_super`], and a JSON `null` as the
/// whole value is an error (COPY would load it as NULL and reject the row).
pub fn write_super_not_null(
    buf: &mut Vec<u8>,
    value: &serde_json::Value,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    if value.is_null() {
        return Err(EncodeError::new(
            table,
            column,
            EncodeErrorKind::NullInNotNullColumn {
                value: "null".into(),
                sql_type: "SUPER",
            },
        ));
    }
    write_super(buf, value, table, column)
}

/// Writes a SUPER value as JSON. A NUL in any string or key is an error, and so is what Redshift
/// does not store in a SUPER value (`limitations-super`): a string or key over 65,535 bytes, or
/// a value over 16 MB as JSON.
pub fn write_super(
    buf: &mut Vec<u8>,
    value: &serde_json::Value,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    let start = buf.len();
    write_super_value(buf, value, table, column)?;
    let bytes = buf.len() - start;
    if bytes > MAX_SUPER_BYTES {
        return Err(EncodeError::new(
            table,
            column,
            EncodeErrorKind::SuperTooLarge {
                bytes,
                limit: MAX_SUPER_BYTES,
            },
        ));
    }
    Ok(())
}

/// A string of a SUPER value (a value or a key), within its limit.
fn write_super_str(
    buf: &mut Vec<u8>,
    s: &str,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    if s.len() > MAX_SUPER_STRING_BYTES {
        return Err(EncodeError::new(
            table,
            column,
            EncodeErrorKind::SuperStringTooLong {
                value: shorten(s),
                bytes: s.len(),
                limit: MAX_SUPER_STRING_BYTES,
            },
        ));
    }
    write_str(buf, s, table, column)
}

fn write_super_value(
    buf: &mut Vec<u8>,
    value: &serde_json::Value,
    table: &'static str,
    column: &'static str,
) -> Result<(), EncodeError> {
    use serde_json::Value;
    match value {
        Value::Null => write_null(buf),
        Value::Bool(b) => write_bool(buf, *b),
        // serde_json numbers are finite; their Display is their JSON form.
        Value::Number(n) => {
            let _ = std::io::Write::write_fmt(buf, format_args!("{n}"));
        }
        Value::String(s) => write_super_str(buf, s, table, column)?,
        Value::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_super_value(buf, item, table, column)?;
            }
            buf.push(b']');
        }
        Value::Object(map) => {
            buf.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_super_str(buf, key, table, column)?;
                buf.push(b':');
                write_super_value(buf, item, table, column)?;
            }
            buf.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// limitations-super: a string in a SUPER value holds at most 65,535 bytes, a SUPER value
    /// 16 MB; each broken limit names the table, the column and the limit.
    #[test]
    fn super_limits_are_checked_before_the_data_leaves() {
        let mut buf = Vec::new();
        let fits = serde_json::json!({"a": "x".repeat(MAX_SUPER_STRING_BYTES)});
        write_super(&mut buf, &fits, "t", "doc").unwrap();
        for too_long in [
            serde_json::json!({"a": ["é".repeat(MAX_SUPER_STRING_BYTES / 2 + 1)]}),
            serde_json::json!({ "k".repeat(MAX_SUPER_STRING_BYTES + 1): 1 }),
        ] {
            let e = write_super(&mut Vec::new(), &too_long, "t", "doc").unwrap_err();
            assert_eq!((e.table, e.column), ("t", "doc"));
            assert!(
                matches!(
                    e.kind,
                    EncodeErrorKind::SuperStringTooLong { limit: 65535, .. }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("at most 65535 bytes"), "{e}");
        }
        // 300 strings of 60,000 bytes: each fits, the value (18 MB) does not.
        let big =
            serde_json::Value::Array(vec![serde_json::Value::String("y".repeat(60_000)); 300]);
        let e = write_super(&mut Vec::new(), &big, "t", "doc").unwrap_err();
        assert!(
            matches!(e.kind, EncodeErrorKind::SuperTooLarge { limit, .. } if limit == MAX_SUPER_BYTES),
            "{e}"
        );
        assert!(e.to_string().starts_with("table `t`, column `doc`"), "{e}");
    }

    /// copy-parameters-data-format: COPY reads a JSON object of at most 4 MB; a larger event is
    /// refused at encoding, and the buffer is left as it was.
    #[test]
    fn an_event_over_4_mb_is_refused() {
        let mut buf = b"before".to_vec();
        let e = encode_or_rollback(&mut buf, "t", |buf| {
            buf.resize(buf.len() + MAX_JSON_OBJECT_BYTES + 1, b' ');
            Ok(())
        })
        .unwrap_err();
        assert_eq!(buf, b"before");
        assert_eq!(e.table, "t");
        assert!(
            matches!(e.kind, EncodeErrorKind::RecordTooLarge { limit, .. } if limit == MAX_JSON_OBJECT_BYTES),
            "{e}"
        );
        encode_or_rollback(&mut buf, "t", |buf| {
            buf.resize(buf.len() + MAX_JSON_OBJECT_BYTES, b' ');
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "plain",
            "a\"b\\c",
            "\u{1}\u{1f}\n\r\t\u{8}\u{c}",
            "é€𝄞",
            "\u{7f}",
        ] {
            let mut buf = Vec::new();
            write_str(&mut buf, s, "t", "c").unwrap();
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_to_bytes("héllo", 2), "h");
        assert_eq!(truncate_to_bytes("héllo", 3), "hé");
        assert_eq!(truncate_to_bytes("hé", 10), "hé");
        assert_eq!(truncate_to_bytes("𝄞", 3), "");
    }

    #[test]
    fn null_is_refused_only_in_not_null_super_columns() {
        let mut buf = Vec::new();
        let err = write_super_not_null(&mut buf, &serde_json::Value::Null, "t", "c").unwrap_err();
        assert!(matches!(
            err.kind,
            EncodeErrorKind::NullInNotNullColumn {
                sql_type: "SUPER",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "table `t`, column `c`: null loads as NULL, but the SUPER column is NOT NULL; send a value that is not null, or make the field an Option and send None"
        );
        assert!(buf.is_empty());
        // Nested nulls are values.
        write_super_not_null(&mut buf, &serde_json::json!([null, {"k": null}]), "t", "c").unwrap();
        assert_eq!(buf, br#"[null,{"k":null}]"#);
        buf.clear();
        write_super(&mut buf, &serde_json::Value::Null, "t", "c").unwrap();
        assert_eq!(buf, b"null");
    }

    #[test]
    fn bc_dates() {
        let mut buf = Vec::new();
        let d = NaiveDate::from_ymd_opt(-43, 3, 15).unwrap();
        write_date(&mut buf, d, "t", "c").unwrap();
        assert_eq!(buf, b"\"0044-03-15 BC\"");
    }
}
