//! Which Rust types fit which column types: one trait per SQL type family.
//!
//! The derive requires, for every column, that the field's type implements the trait of the
//! column's type; a mismatch (an `i64` in a SMALLINT column, a `String` in an INTEGER one) is
//! therefore a compile error that points at the field's type and says what fits. `Option<T>`
//! columns require the trait of `T`. Implement a trait for your own newtype to store it in such a
//! column:
//!
//! ```
//! struct UserId(i64);
//! impl redtrack_runtime::encode::value::BigIntValue for UserId {
//!     fn to_i64(&self) -> i64 {
//!         self.0
//!     }
//! }
//! ```

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

/// Types that fit a `SMALLINT` column: `i8`, `u8`, `i16`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a SMALLINT column",
    label = "not storable in SMALLINT",
    note = "SMALLINT holds the i16 range: use `i16` (or `i8`, `u8`), or declare a wider column, e.g. #[redtrack(type = \"integer\")] or \"bigint\""
)]
pub trait SmallIntValue {
    /// The value as an `i16`.
    fn to_i16(&self) -> i16;
}

/// Types that fit an `INTEGER` column: `i8`, `u8`, `i16`, `u16`, `i32`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit an INTEGER column",
    label = "not storable in INTEGER",
    note = "INTEGER holds the i32 range: use `i32` (or `i16`, `u16`, `i8`, `u8`), or declare #[redtrack(type = \"bigint\")] for 64-bit integers"
)]
pub trait IntegerValue {
    /// The value as an `i32`.
    fn to_i32(&self) -> i32;
}

/// Types that fit a `BIGINT` column: the signed integers up to `i64`, `u8`, `u16`, `u32`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a BIGINT column",
    label = "not storable in BIGINT",
    note = "BIGINT holds the i64 range: use `i64` or a narrower integer; for `u64` declare #[redtrack(type = \"decimal(20,0)\")]"
)]
pub trait BigIntValue {
    /// The value as an `i64`.
    fn to_i64(&self) -> i64;
}

/// Types that fit a `DECIMAL(p,s)` column: `rust_decimal::Decimal` and the integers. The value
/// is checked against `p` and `s` when it is encoded.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a DECIMAL column",
    label = "not storable in DECIMAL",
    note = "DECIMAL needs an exact number: use `rust_decimal::Decimal` or an integer type; for binary floating point declare #[redtrack(type = \"double precision\")]"
)]
pub trait DecimalValue {
    /// The value as a `Decimal`.
    fn to_decimal(&self) -> Decimal;
}

/// Types that fit a `REAL` column: `f32`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a REAL column",
    label = "not storable in REAL",
    note = "REAL is a 4-byte float: use `f32`, or declare #[redtrack(type = \"double precision\")] for `f64`"
)]
pub trait RealValue {
    /// The value as an `f32`.
    fn to_f32(&self) -> f32;
}

/// Types that fit a `DOUBLE PRECISION` column: `f32`, `f64`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a DOUBLE PRECISION column",
    label = "not storable in DOUBLE PRECISION",
    note = "DOUBLE PRECISION holds `f64` or `f32`; for exact numbers declare #[redtrack(type = \"decimal(p,s)\")] with `rust_decimal::Decimal`"
)]
pub trait DoubleValue {
    /// The value as an `f64`.
    fn to_f64(&self) -> f64;
}

/// Types that fit a `BOOLEAN` column: `bool`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a BOOLEAN column",
    label = "not storable in BOOLEAN",
    note = "BOOLEAN holds `bool`"
)]
pub trait BooleanValue {
    /// The value as a `bool`.
    fn to_bool(&self) -> bool;
}

/// Types that fit a `VARCHAR(n)` or `CHAR(n)` column: `String`, `str`, `Box<str>`, `Cow<str>`,
/// `Arc<str>`, `Rc<str>` and references to them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a VARCHAR or CHAR column",
    label = "not storable as text",
    note = "VARCHAR and CHAR hold text: use `String` or `&str`; or declare the column type that fits `{Self}` (e.g. #[redtrack(type = \"integer\")]; a list or a map fits \"super\" as a `serde_json::Value`); or implement `redtrack::encode::value::TextValue` for it"
)]
pub trait TextValue {
    /// The value as text.
    fn as_text(&self) -> &str;
}

/// Types that fit a `DATE` column: `chrono::NaiveDate`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a DATE column",
    label = "not storable in DATE",
    note = "DATE holds `chrono::NaiveDate`; for a date and time declare #[redtrack(type = \"timestamp\")]"
)]
pub trait DateValue {
    /// The value as a date.
    fn to_date(&self) -> NaiveDate;
}

/// Types that fit a `TIMESTAMP` column: `chrono::NaiveDateTime` (taken as UTC) and
/// `chrono::DateTime` of any time zone (stored as the same instant in UTC).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a TIMESTAMP column",
    label = "not storable in TIMESTAMP",
    note = "TIMESTAMP holds `chrono::NaiveDateTime` (in UTC) or a `chrono::DateTime` (stored in UTC)"
)]
pub trait TimestampValue {
    /// The value as a date and time in UTC.
    fn to_utc_naive(&self) -> NaiveDateTime;
}

/// Types that fit a `TIMESTAMPTZ` column: `chrono::DateTime` of any time zone (sent as the same
/// instant in UTC) and `chrono::NaiveDateTime` (taken as UTC).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a TIMESTAMPTZ column",
    label = "not storable in TIMESTAMPTZ",
    note = "TIMESTAMPTZ holds a `chrono::DateTime` of any time zone, or `chrono::NaiveDateTime` (in UTC)"
)]
pub trait TimestampTzValue {
    /// The value as a date and time in UTC.
    fn to_utc_naive(&self) -> NaiveDateTime;
}

/// Types that fit a `TIME` column: `chrono::NaiveTime`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a TIME column",
    label = "not storable in TIME",
    note = "TIME holds `chrono::NaiveTime`"
)]
pub trait TimeValue {
    /// The value as a time of day.
    fn to_time(&self) -> NaiveTime;
}

/// Types that fit a `SUPER` column: `serde_json::Value`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit a SUPER column",
    label = "not storable in SUPER",
    note = "SUPER holds semi-structured data: use `serde_json::Value`"
)]
pub trait SuperValue {
    /// The value as JSON.
    fn as_json(&self) -> &serde_json::Value;
}

/// Types that can be a Kinesis partition key (`#[redtrack(partition_key)]`): text and integers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a partition key",
    label = "not usable as a Kinesis partition key",
    note = "a partition key is text or an integer: use `String`, `&str` or an integer type"
)]
pub trait PartitionKeyValue {
    /// The partition key: `None` (a random key) when empty, else at most 256 characters as
    /// Kinesis counts them, UTF-16 code units (longer keys are cut to Kinesis' limit).
    fn partition_key(&self) -> Option<String>;
}

macro_rules! impl_int {
    ($trait:ident, $method:ident -> $to:ty: $($from:ty),*) => {$(
        #[diagnostic::do_not_recommend]
        impl $trait for $from {
            #[inline]
            fn $method(&self) -> $to {
                <$to>::from(*self)
            }
        }
    )*};
}

impl_int!(SmallIntValue, to_i16 -> i16: i8, u8, i16);
impl_int!(IntegerValue, to_i32 -> i32: i8, u8, i16, u16, i32);
impl_int!(BigIntValue, to_i64 -> i64: i8, u8, i16, u16, i32, u32, i64);
impl_int!(DecimalValue, to_decimal -> Decimal: Decimal, i8, u8, i16, u16, i32, u32, i64, u64);
impl_int!(RealValue, to_f32 -> f32: f32);
impl_int!(DoubleValue, to_f64 -> f64: f32, f64);
impl_int!(BooleanValue, to_bool -> bool: bool);
impl_int!(DateValue, to_date -> NaiveDate: NaiveDate);
impl_int!(TimeValue, to_time -> NaiveTime: NaiveTime);

#[diagnostic::do_not_recommend]
impl TimestampValue for NaiveDateTime {
    #[inline]
    fn to_utc_naive(&self) -> NaiveDateTime {
        *self
    }
}

/// Any time zone's instant, stored as the same instant in UTC.
#[diagnostic::do_not_recommend]
impl<Tz: TimeZone> TimestampValue for DateTime<Tz> {
    #[inline]
    fn to_utc_naive(&self) -> NaiveDateTime {
        self.naive_utc()
    }
}

#[diagnostic::do_not_recommend]
impl TimestampTzValue for NaiveDateTime {
    #[inline]
    fn to_utc_naive(&self) -> NaiveDateTime {
        *self
    }
}

/// Any time zone's instant (`Utc`, `FixedOffset`, `Local`, a `chrono-tz` zone), sent in UTC.
#[diagnostic::do_not_recommend]
impl<Tz: TimeZone> TimestampTzValue for DateTime<Tz> {
    #[inline]
    fn to_utc_naive(&self) -> NaiveDateTime {
        self.naive_utc()
    }
}

#[diagnostic::do_not_recommend]
impl TextValue for str {
    #[inline]
    fn as_text(&self) -> &str {
        self
    }
}

#[diagnostic::do_not_recommend]
impl TextValue for String {
    #[inline]
    fn as_text(&self) -> &str {
        self
    }
}

#[diagnostic::do_not_recommend]
impl TextValue for Cow<'_, str> {
    #[inline]
    fn as_text(&self) -> &str {
        self
    }
}

#[diagnostic::do_not_recommend]
impl SuperValue for serde_json::Value {
    #[inline]
    fn as_json(&self) -> &serde_json::Value {
        self
    }
}

use crate::schema::limits::MAX_PARTITION_KEY_UTF16_UNITS;

#[diagnostic::do_not_recommend]
impl PartitionKeyValue for str {
    /// The text itself, cut after as many whole characters as fit in
    /// [`MAX_PARTITION_KEY_UTF16_UNITS`] UTF-16 code units (a longer key fails the whole PutRecords
    /// call at Kinesis).
    fn partition_key(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut units = 0;
        for (at, c) in self.char_indices() {
            units += c.len_utf16();
            if units > MAX_PARTITION_KEY_UTF16_UNITS {
                return Some(self[..at].to_owned());
            }
        }
        Some(self.to_owned())
    }
}

#[diagnostic::do_not_recommend]
impl PartitionKeyValue for String {
    fn partition_key(&self) -> Option<String> {
        self.as_str().partition_key()
    }
}

#[diagnostic::do_not_recommend]
impl PartitionKeyValue for Cow<'_, str> {
    fn partition_key(&self) -> Option<String> {
        (**self).partition_key()
    }
}

macro_rules! impl_int_partition_key {
    ($($t:ty),*) => {$(
        #[diagnostic::do_not_recommend]
        impl PartitionKeyValue for $t {
            fn partition_key(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

impl_int_partition_key!(i8, u8, i16, u16, i32, u32, i64, u64, i128, u128, isize, usize);

/// Forwards every trait through `&T`, `Box<T>`, `Arc<T>` and `Rc<T>`.
macro_rules! impl_pointers {
    ($($trait:ident :: $method:ident -> $ret:ty),* $(,)?) => {$(
        #[diagnostic::do_not_recommend]
        impl<T: $trait + ?Sized> $trait for &T {
            #[inline]
            fn $method(&self) -> $ret {
                (**self).$method()
            }
        }
        #[diagnostic::do_not_recommend]
        impl<T: $trait + ?Sized> $trait for Box<T> {
            #[inline]
            fn $method(&self) -> $ret {
                (**self).$method()
            }
        }
        #[diagnostic::do_not_recommend]
        impl<T: $trait + ?Sized> $trait for Arc<T> {
            #[inline]
            fn $method(&self) -> $ret {
                (**self).$method()
            }
        }
        #[diagnostic::do_not_recommend]
        impl<T: $trait + ?Sized> $trait for Rc<T> {
            #[inline]
            fn $method(&self) -> $ret {
                (**self).$method()
            }
        }
    )*};
}

impl_pointers!(
    SmallIntValue::to_i16 -> i16,
    IntegerValue::to_i32 -> i32,
    BigIntValue::to_i64 -> i64,
    DecimalValue::to_decimal -> Decimal,
    RealValue::to_f32 -> f32,
    DoubleValue::to_f64 -> f64,
    BooleanValue::to_bool -> bool,
    DateValue::to_date -> NaiveDate,
    TimestampValue::to_utc_naive -> NaiveDateTime,
    TimestampTzValue::to_utc_naive -> NaiveDateTime,
    TimeValue::to_time -> NaiveTime,
    PartitionKeyValue::partition_key -> Option<String>,
);

// Lifetimes elided in the return type need their own impls.
#[diagnostic::do_not_recommend]
impl<T: TextValue + ?Sized> TextValue for &T {
    #[inline]
    fn as_text(&self) -> &str {
        (**self).as_text()
    }
}
#[diagnostic::do_not_recommend]
impl<T: TextValue + ?Sized> TextValue for Box<T> {
    #[inline]
    fn as_text(&self) -> &str {
        (**self).as_text()
    }
}
#[diagnostic::do_not_recommend]
impl<T: TextValue + ?Sized> TextValue for Arc<T> {
    #[inline]
    fn as_text(&self) -> &str {
        (**self).as_text()
    }
}
#[diagnostic::do_not_recommend]
impl<T: TextValue + ?Sized> TextValue for Rc<T> {
    #[inline]
    fn as_text(&self) -> &str {
        (**self).as_text()
    }
}
#[diagnostic::do_not_recommend]
impl<T: SuperValue + ?Sized> SuperValue for &T {
    #[inline]
    fn as_json(&self) -> &serde_json::Value {
        (**self).as_json()
    }
}
#[diagnostic::do_not_recommend]
impl<T: SuperValue + ?Sized> SuperValue for Box<T> {
    #[inline]
    fn as_json(&self) -> &serde_json::Value {
        (**self).as_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_fit_kinesis_utf16_limit() {
        let units = |k: Option<String>| k.map(|k| k.encode_utf16().count());
        assert_eq!("".partition_key(), None);
        assert_eq!(units("é".repeat(300).partition_key()), Some(256));
        // An emoji is two UTF-16 units: 128 of them fit, never half of one.
        assert_eq!("😀".repeat(300).partition_key(), Some("😀".repeat(128)));
        assert_eq!(
            ("a".to_owned() + &"😀".repeat(200)).partition_key(),
            Some("a".to_owned() + &"😀".repeat(127))
        );
        let fits = "😀".repeat(128);
        assert_eq!(fits.partition_key(), Some(fits.clone()));
        assert_eq!(42i64.partition_key(), Some("42".to_owned()));
    }
}
