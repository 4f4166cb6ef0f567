//! Per-record validation: the step between reading a shard and staging its events. A stream may
//! carry records redtrack did not write (the Ruby gem, a Lambda, a KPL application), so every
//! record is checked against the table's columns before it is staged, and one that COPY would
//! refuse, in either dialect, is rejected on its own instead of failing the whole load.
//!
//! A record passes when it is (after the gem's `{"data": "<json>"}` envelope is taken off):
//!
//! - UTF-8 text, not empty, at most [`MAX_JSON_OBJECT_BYTES`] (the largest object Redshift's
//!   `COPY ... JSON` reads, page `copy-parameters-data-format`);
//! - one JSON object whose every string (keys and values, nested ones too) decodes to Unicode
//!   scalar values other than U+0000 (no lone surrogate escapes; no NUL, which no text column
//!   holds);
//! - for each column, the key of the column's exact name (COPY JSON 'auto' matches lowercase
//!   names case-sensitively; other keys are ignored) holding a value of the column's type within
//!   its limits, as both Redshift and PostgreSQL take it (the Redshift meaning where they differ:
//!   lengths in bytes, CHAR single-byte only), or null or missing for a nullable column.
//!
//! The column types are the warehouse's own (its catalog, read once per load) where it has the
//! column, else the struct's: a table widened by `migrate --apply` takes what it now fits.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::rejects::escape_raw;
use crate::migrate::WarehouseColumn;
use crate::schema::limits::{
    MAX_JSON_OBJECT_BYTES, MAX_SUPER_BYTES, MAX_SUPER_STRING_BYTES, MAX_YEAR, MIN_YEAR,
};
use crate::schema::{SqlType, TableSchema};

/// Why a record was rejected: the column at fault (empty for the record as a whole), the value
/// (its text, for a column), and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) column: String,
    pub(crate) value: String,
    pub(crate) reason: String,
}

impl Invalid {
    fn record(reason: impl Into<String>) -> Invalid {
        Invalid {
            column: String::new(),
            value: String::new(),
            reason: reason.into(),
        }
    }

    fn column(column: &str, value: &str, reason: impl Into<String>) -> Invalid {
        Invalid {
            column: column.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// One column as records are checked against it.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    sql_type: SqlType,
    nullable: bool,
}

/// A table's columns as the loader checks records against them.
#[derive(Debug, Clone)]
pub(crate) struct RecordRules {
    columns: Vec<Rule>,
    /// Whether a record may be the original gem's `{"data": "<json>"}` envelope: not for a
    /// table whose only column is `data`, whose records look alike.
    envelopes: bool,
}

impl RecordRules {
    /// The rules of `schema`'s columns, each with the type and nullability the warehouse's
    /// catalog gives it (`warehouse`, empty when the table is not there yet), else the struct's.
    pub(crate) fn new(schema: &TableSchema, warehouse: &[WarehouseColumn]) -> RecordRules {
        let columns = schema
            .columns
            .iter()
            .map(|c| {
                let there = warehouse.iter().find(|w| w.name == c.name);
                Rule {
                    name: c.name.to_owned(),
                    sql_type: there.and_then(|w| w.sql_type()).unwrap_or(c.sql_type),
                    nullable: there.map_or(c.nullable, |w| w.nullable),
                }
            })
            .collect();
        RecordRules {
            columns,
            envelopes: !matches!(schema.columns, [only] if only.name == "data"),
        }
    }

    /// The event's JSON object as one line, ready to stage (unwrapped from the gem's envelope),
    /// or why the record cannot be loaded.
    pub(crate) fn check<'a>(&self, data: &'a [u8]) -> Result<Cow<'a, [u8]>, Invalid> {
        let trimmed = data.trim_ascii();
        if trimmed.is_empty() {
            return Err(Invalid::record("an empty record: no JSON object to load"));
        }
        if trimmed.len() <= MAX_JSON_OBJECT_BYTES {
            if let Some(checked) = self.check_flat(trimmed) {
                return checked.map(|()| one_line(trimmed));
            }
        }
        if let Err(e) = std::str::from_utf8(data) {
            let at = e.valid_up_to();
            return Err(Invalid::record(format!(
                "not UTF-8 text: byte 0x{:02X} at offset {at} starts no UTF-8 character \
                 (Redshift and PostgreSQL take UTF-8 only)",
                data.get(at).copied().unwrap_or(0)
            )));
        }
        if self.envelopes {
            if let Some(inner) = envelope(trimmed) {
                let inner = inner.trim();
                let line = self.check_object(inner.as_bytes())?;
                return Ok(Cow::Owned(line.into_owned()));
            }
        }
        self.check_object(trimmed)
    }

    /// The quick way to [`RecordRules::check_object`] for the usual record: a flat JSON object
    /// whose keys and string values are printable ASCII without escapes and whose other values
    /// are numbers, `true`, `false` or `null` (what redtrack's encoder writes for most tables),
    /// read with the runtime's JSON scanner. `None` for any other record (or one that may be the
    /// gem's envelope), which the full check then reads; the same answer otherwise.
    fn check_flat(&self, b: &[u8]) -> Option<Result<(), Invalid>> {
        use crate::json_scan::{
            escaped_string_end, literal_end, number_end, plain_string_end, skip_ws,
        };
        const MAX_COLUMNS: usize = 64;
        if self.columns.len() > MAX_COLUMNS {
            return None;
        }
        let mut state = [Seen::Missing; MAX_COLUMNS];
        let mut i = skip_ws(b, 0);
        (b.get(i) == Some(&b'{')).then_some(())?;
        i = skip_ws(b, i + 1);
        let mut next = 0;
        let mut first_key = true;
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                let key_end = plain_string_end(b, i)?;
                let key = &b[i + 1..key_end];
                if first_key && self.envelopes && key == b"data" {
                    return None;
                }
                first_key = false;
                i = skip_ws(b, key_end + 1);
                (b.get(i) == Some(&b':')).then_some(())?;
                i = skip_ws(b, i + 1);
                let start = i;
                let mut escapes = 0;
                let end = match *b.get(i)? {
                    b'"' => {
                        let (close, n) = escaped_string_end(b, i)?;
                        escapes = n;
                        close + 1
                    }
                    b'-' | b'0'..=b'9' => number_end(b, i)?,
                    b't' | b'f' | b'n' => literal_end(b, i)?,
                    _ => return None,
                };
                // Printable ASCII and JSON punctuation only: always UTF-8.
                let raw = std::str::from_utf8(&b[start..end]).ok()?;
                i = skip_ws(b, end);
                // Keys usually come in column order (redtrack's encoder writes them so).
                let matched = match self.columns.get(next) {
                    Some(c) if c.name.as_bytes() == key => Some(next),
                    _ => self.columns.iter().position(|c| c.name.as_bytes() == key),
                };
                if let Some(c) = matched {
                    next = c + 1;
                    let rule = &self.columns[c];
                    let seen = match rule.sql_type {
                        // A VARCHAR takes such a string whose text fits: the body less one
                        // byte per escape.
                        SqlType::Varchar { len } if raw.starts_with('"') => {
                            let text_len = raw.len() - 2 - escapes;
                            if text_len <= usize::try_from(len).unwrap_or(usize::MAX) {
                                Ok(Seen::Value)
                            } else {
                                check_value(rule, raw)
                            }
                        }
                        _ => check_value(rule, raw),
                    };
                    match seen {
                        Ok(seen) => state[c] = seen,
                        Err(bad) => return Some(Err(bad)),
                    }
                }
                match *b.get(i)? {
                    b',' => i = skip_ws(b, i + 1),
                    b'}' => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (skip_ws(b, i) == b.len()).then_some(())?;
        Some(self.not_null(&state[..self.columns.len()]))
    }

    /// Every NOT NULL column holds a value.
    fn not_null(&self, state: &[Seen]) -> Result<(), Invalid> {
        for (rule, seen) in self.columns.iter().zip(state) {
            if !rule.nullable && *seen != Seen::Value {
                let null = *seen == Seen::Null;
                return Err(Invalid::column(
                    &rule.name,
                    if null { "null" } else { "" },
                    format!(
                        "{} in a NOT NULL column ({})",
                        if null { "null" } else { "missing" },
                        rule.sql_type
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `text` (UTF-8) checked as one JSON object of the table's columns; it as one line.
    fn check_object<'a>(&self, text: &'a [u8]) -> Result<Cow<'a, [u8]>, Invalid> {
        if text.len() > MAX_JSON_OBJECT_BYTES {
            return Err(Invalid::record(format!(
                "the record is {} bytes; COPY reads JSON objects of at most {MAX_JSON_OBJECT_BYTES}",
                text.len()
            )));
        }
        if text.first() != Some(&b'{') {
            // Which JSON value it is, if it is one at all.
            let what = match serde_json::from_slice::<de::IgnoredAny>(text) {
                Err(_) => "not JSON at all",
                Ok(_) => match text.first() {
                    Some(b'[') => "a JSON array",
                    Some(b'"') => "a JSON string",
                    Some(b't' | b'f') => "a boolean",
                    Some(b'n') => "null",
                    _ => "a number",
                },
            };
            return Err(Invalid::record(format!("not a JSON object: {what}")));
        }
        let mut state = vec![Seen::Missing; self.columns.len()];
        let mut invalid = None;
        let mut de = serde_json::Deserializer::from_slice(text);
        let walked = Top {
            rules: self,
            state: &mut state,
            invalid: &mut invalid,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(e) = walked {
            return Err(invalid.unwrap_or_else(|| Invalid::record(not_json(&e))));
        }
        self.not_null(&state)?;
        Ok(one_line(text))
    }
}

/// What a JSON parse error says, as a reason.
fn not_json(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains("surrogate") || text.contains("escape") {
        format!("holds an escape that is not a Unicode character: {text}")
    } else {
        format!("not valid JSON: {text}")
    }
}

/// The original gem's envelope: exactly one key, `data`, holding the event's JSON as a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// The JSON object text inside `record` if it is the gem's envelope `{"data": "<json>"}` whose
/// string holds an object; `None` for anything else (a `data` key that holds no JSON object is
/// an ordinary column).
fn envelope(record: &[u8]) -> Option<Cow<'_, str>> {
    if !record[1..].trim_ascii_start().starts_with(b"\"data\"") {
        return None;
    }
    let env = serde_json::from_slice::<Envelope<'_>>(record).ok()?;
    let inner = env.data.trim();
    if !inner.starts_with('{') || serde_json::from_str::<de::IgnoredAny>(inner).is_err() {
        return None;
    }
    Some(env.data)
}

/// Valid JSON holds raw line breaks only as whitespace between tokens, so dropping them keeps
/// the meaning and makes the object one line.
pub(crate) fn one_line(b: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'\n', b'\r', b).is_some() {
        Cow::Owned(
            b.iter()
                .copied()
                .filter(|&c| c != b'\n' && c != b'\r')
                .collect(),
        )
    } else {
        Cow::Borrowed(b)
    }
}

/// What the record held for a column so far (a later duplicate key wins, as in PostgreSQL's
/// `json` and the loader's COPY rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Missing,
    Null,
    Value,
}

/// The abort a column's check raises inside the parse (its [`Invalid`] is kept aside).
const ABORT: &str = "redtrack: invalid column value";

/// The record's top level: an object whose keys are matched to the columns.
struct Top<'r> {
    rules: &'r RecordRules,
    state: &'r mut [Seen],
    invalid: &'r mut Option<Invalid>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Text {
            super_limits: false,
        })? {
            match self.rules.columns.iter().position(|c| c.name == *key) {
                Some(i) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let rule = &self.rules.columns[i];
                    match check_value(rule, raw.get()) {
                        Ok(seen) => self.state[i] = seen,
                        Err(bad) => {
                            *self.invalid = Some(bad);
                            return Err(de::Error::custom(ABORT));
                        }
                    }
                }
                None => map.next_value_seed(Any {
                    super_limits: false,
                })?,
            }
        }
        Ok(())
    }
}

/// A string anywhere in the record: decoded (so a lone surrogate escape fails the parse), free
/// of U+0000, and within SUPER's string limit inside a SUPER value. The decoded text.
#[derive(Clone, Copy)]
struct Text {
    super_limits: bool,
}

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        self.check(v)?;
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        self.check(v)?;
        Ok(Cow::Owned(v.to_owned()))
    }
}

impl Text {
    fn check<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v.contains('\0') {
            return Err(E::custom(
                "a string holds U+0000 (NUL), which no text column can store",
            ));
        }
        if self.super_limits && v.len() > MAX_SUPER_STRING_BYTES {
            return Err(E::custom(format!(
                "a string of {} bytes inside a SUPER value; SUPER holds strings of at most \
                 {MAX_SUPER_STRING_BYTES}",
                v.len()
            )));
        }
        Ok(())
    }
}

/// Any JSON value, walked so that every string in it is checked as [`Text`].
#[derive(Clone, Copy)]
struct Any {
    super_limits: bool,
}

impl<'de> DeserializeSeed<'de> for Any {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Any {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        Text {
            super_limits: self.super_limits,
        }
        .check(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        Text {
            super_limits: self.super_limits,
        }
        .check(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let text = Text {
            super_limits: self.super_limits,
        };
        while map.next_key_seed(text)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// The JSON type of a value's text, for reasons.
fn json_type(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// A string value's decoded text (its escapes checked as [`Text`]).
fn string_value(raw: &str, super_limits: bool) -> Result<Cow<'_, str>, String> {
    let body = &raw[1..raw.len().saturating_sub(1).max(1)];
    if !body.contains(['\\', '\0']) && (!super_limits || body.len() <= MAX_SUPER_STRING_BYTES) {
        // No escape: the text as it stands (the parse already checked it is one string).
        return Ok(Cow::Borrowed(body));
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    Text { super_limits }
        .deserialize(&mut de)
        .map_err(|e| not_json(&e))
}

/// Checks one column's value (`raw`, its JSON text) against the column's rule.
fn check_value(rule: &Rule, raw: &str) -> Result<Seen, Invalid> {
    if raw == "null" {
        return Ok(Seen::Null);
    }
    // A value is shown as its text (a string without its quotes and JSON escapes), with
    // control characters escaped as a reject's raw bytes are.
    let shown = |value: &str| {
        let text = match value.starts_with('"') {
            true => serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_owned()),
            false => value.to_owned(),
        };
        crate::text::truncate_string(escape_raw(text.as_bytes()), 1024)
    };
    let bad = |value: &str, reason: String| Invalid::column(&rule.name, &shown(value), reason);
    let t = rule.sql_type;
    let wrong = |what: &str| bad(raw, format!("{t} expects {what}, got {}", json_type(raw)));
    match t {
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            if !is_number(raw) || raw.contains(['.', 'e', 'E']) {
                return Err(wrong(
                    "an integer (a JSON number without fraction or exponent)",
                ));
            }
            let (min, max) = match t {
                SqlType::SmallInt => (i64::from(i16::MIN), i64::from(i16::MAX)),
                SqlType::Integer => (i64::from(i32::MIN), i64::from(i32::MAX)),
                _ => (i64::MIN, i64::MAX),
            };
            match raw.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => {}
                _ => return Err(bad(raw, format!("out of range for {t} ({min}..={max})"))),
            }
        }
        SqlType::Real | SqlType::Double => {
            if !is_number(raw) {
                return Err(wrong("a JSON number"));
            }
            let (finite, zero) = if t == SqlType::Real {
                let x: f32 = raw.parse().unwrap_or(f32::INFINITY);
                (x.is_finite(), x == 0.0)
            } else {
                let x: f64 = raw.parse().unwrap_or(f64::INFINITY);
                (x.is_finite(), x == 0.0)
            };
            let nonzero_digits = raw
                .split(['e', 'E'])
                .next()
                .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
            if !finite || (zero && nonzero_digits) {
                return Err(bad(raw, format!("out of range for {t}")));
            }
        }
        SqlType::Boolean => {
            if raw != "true" && raw != "false" {
                return Err(wrong("true or false"));
            }
        }
        SqlType::Decimal { precision, scale } => {
            let text = match raw.as_bytes().first() {
                Some(b'"') => string_value(raw, false).map_err(|r| bad(raw, r))?,
                _ if is_number(raw) => Cow::Borrowed(raw),
                _ => return Err(wrong("a number (a JSON number or a string of one)")),
            };
            check_decimal(&text, precision, scale).map_err(|r| bad(&text, r))?;
        }
        SqlType::Char { .. } | SqlType::Varchar { .. } if raw.starts_with('"') => {
            let text = string_value(raw, false).map_err(|r| bad(raw, r))?;
            check_text(rule, &text).map_err(|r| bad(&text, r))?;
        }
        SqlType::Char { .. } | SqlType::Varchar { .. } => {
            // A number, boolean, object or array loads as its JSON text (COPY JSON 'auto';
            // PostgreSQL's ->>), whose strings must still be text.
            walk(raw, false).map_err(|r| bad(raw, r))?;
            check_text(rule, raw).map_err(|r| bad(raw, r))?;
        }
        SqlType::Date | SqlType::Timestamp | SqlType::TimestampTz | SqlType::Time => {
            if !raw.starts_with('"') {
                return Err(wrong("a string (a date or time as text)"));
            }
            let text = string_value(raw, false).map_err(|r| bad(raw, r))?;
            let ok = match t {
                SqlType::Time => parse_time(text.as_bytes(), 0) == Some(text.len()),
                _ => is_datetime(&text, t == SqlType::Date),
            };
            if !ok {
                return Err(bad(&text, datetime_reason(t)));
            }
        }
        SqlType::Super => {
            if raw.len() > MAX_SUPER_BYTES {
                return Err(bad(
                    "",
                    format!(
                        "a SUPER value of {} bytes; SUPER holds at most {MAX_SUPER_BYTES}",
                        raw.len()
                    ),
                ));
            }
            walk(raw, true).map_err(|r| bad(raw, r))?;
        }
    }
    Ok(Seen::Value)
}

/// Every string of the JSON value `raw` checked as [`Text`].
fn walk(raw: &str, super_limits: bool) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(raw);
    Any { super_limits }
        .deserialize(&mut de)
        .map_err(|e| match e.to_string() {
            s if s.contains("U+0000") || s.contains("SUPER") => {
                s.split(" at line").next().unwrap_or_default().to_owned()
            }
            _ => not_json(&e),
        })
}

/// Text for a CHAR or VARCHAR column: lengths in bytes; CHAR single-byte characters only.
fn check_text(rule: &Rule, text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err("holds U+0000 (NUL), which no text column can store".into());
    }
    match rule.sql_type {
        SqlType::Char { len } => {
            if !text.is_ascii() {
                return Err(format!(
                    "{} takes single-byte characters only; this value holds multibyte ones",
                    rule.sql_type
                ));
            }
            if text.len() > usize::from(len) {
                return Err(format!(
                    "too long: {} bytes; {} holds at most {len}",
                    text.len(),
                    rule.sql_type
                ));
            }
        }
        SqlType::Varchar { len } if text.len() > usize::try_from(len).unwrap_or(usize::MAX) => {
            return Err(format!(
                "too long: {} bytes; {} holds at most {len} (bytes, not characters)",
                text.len(),
                rule.sql_type
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Whether `raw` is the text of a JSON number.
fn is_number(raw: &str) -> bool {
    matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

/// Checks `text` as a value of DECIMAL(`precision`, `scale`): `-?(\d+\.?\d*|\.\d+)` (no
/// exponent: Redshift reads digits and one point only), at most `precision - scale` digits
/// before the point once rounded to `scale` after it, half away from zero as PostgreSQL rounds
/// (Redshift truncates, which never needs more), and for DECIMAL(19, s), Redshift's 64-bit
/// one, at most 9223372036854775807 unscaled (page `r_Numeric_types201`). The reason if not.
fn check_decimal(text: &str, precision: u8, scale: u8) -> Result<(), String> {
    let t = SqlType::Decimal { precision, scale };
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(p) => (&b[..p], &b[p + 1..]),
        None => (b, &b[b.len()..]),
    };
    if (int.is_empty() && frac.is_empty()) || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return Err(format!(
            "{t} expects a decimal number (digits and one point, no exponent)"
        ));
    }
    // The unscaled digits kept: the integer part and `scale` fraction digits (zero-padded),
    // plus one at the last of them when the first one dropped is 5 or more.
    let int = &int[int.iter().position(|&c| c != b'0').unwrap_or(int.len())..];
    let scale_len = usize::from(scale);
    let kept = |i: usize| -> u8 {
        if i < int.len() {
            int[i]
        } else {
            frac.get(i - int.len()).copied().unwrap_or(b'0')
        }
    };
    let n = int.len() + scale_len;
    let rounds_up = frac.get(scale_len).is_some_and(|&d| d >= b'5');
    let all_nines = (0..n).all(|i| kept(i) == b'9');
    // Digits before the point once rounded: a carry through nines adds one in front, and one
    // into an integer part of zero makes it 1.
    let mut int_digits = int.len();
    if rounds_up && all_nines {
        int_digits += 1;
    }
    let room = usize::from(precision - scale);
    if int_digits > room {
        return Err(format!(
            "{int_digits} digits before the decimal point (after rounding to {scale} after it); \
             {t} holds at most {room}"
        ));
    }
    if precision == 19 {
        // The unscaled value, rounded: it must fit a signed 64-bit integer.
        let mut unscaled: u128 = 0;
        for i in 0..n {
            unscaled = unscaled * 10 + u128::from(kept(i) - b'0');
        }
        if rounds_up {
            unscaled += 1;
        }
        if unscaled > u128::from(i64::MAX.unsigned_abs()) {
            return Err(format!(
                "{t} is 64-bit on Redshift: at most 9223372036854775807 unscaled"
            ));
        }
    }
    Ok(())
}

/// Whether `text` is a date (with `date_only`, a time part is allowed and dropped) or a
/// timestamp as both Redshift (TIMEFORMAT/DATEFORMAT 'auto') and PostgreSQL read it:
/// `YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,6}]]][Z|±HH[[:]MM]][ BC]`, in 4713 BC..294276 AD.
fn is_datetime(text: &str, date_only: bool) -> bool {
    let b = text.as_bytes();
    let (body, bc) = match text.strip_suffix(" BC") {
        Some(body) => (body.as_bytes(), true),
        None => (b, false),
    };
    let Some((year, month, day, mut i)) = parse_date(body) else {
        return false;
    };
    let year = if bc { 1 - year } else { year };
    if !(MIN_YEAR..=MAX_YEAR).contains(&i32::try_from(year).unwrap_or(i32::MAX))
        || day > days_in_month(year, month)
    {
        return false;
    }
    if i == body.len() {
        return true;
    }
    if matches!(body[i], b' ' | b'T') {
        match parse_time(body, i + 1) {
            Some(end) => i = end,
            None => return false,
        }
    } else if !date_only {
        return false;
    }
    if i < body.len() {
        match parse_offset(body, i) {
            Some(end) => i = end,
            None => return false,
        }
    }
    i == body.len()
}

/// `YYYY-MM-DD` (four or more year digits) at the start of `b`: year, month, day and the
/// index after it.
fn parse_date(b: &[u8]) -> Option<(i64, u32, u32, usize)> {
    let year_end = b.iter().position(|c| !c.is_ascii_digit())?;
    if !(4..=6).contains(&year_end) {
        return None;
    }
    let year: i64 = std::str::from_utf8(&b[..year_end]).ok()?.parse().ok()?;
    let rest = &b[year_end..];
    if rest.len() < 6 || rest[0] != b'-' || rest[3] != b'-' {
        return None;
    }
    let month = two_digits(&rest[1..3])?;
    let day = two_digits(&rest[4..6])?;
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    Some((year, month, day, year_end + 6))
}

/// `HH:MM[:SS[.f{1,6}]]` from `b[i]`: the index after it.
fn parse_time(b: &[u8], i: usize) -> Option<usize> {
    let hour = two_digits(b.get(i..i + 2)?)?;
    if b.get(i + 2) != Some(&b':') {
        return None;
    }
    let minute = two_digits(b.get(i + 3..i + 5)?)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut j = i + 5;
    if b.get(j) == Some(&b':') {
        let second = two_digits(b.get(j + 1..j + 3)?)?;
        if second > 59 {
            return None;
        }
        j += 3;
        if b.get(j) == Some(&b'.') {
            let n = b[j + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=6).contains(&n) {
                return None;
            }
            j += 1 + n;
        }
    }
    Some(j)
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM` from `b[i]`: the index after it.
fn parse_offset(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'Z' => Some(i + 1),
        b'+' | b'-' => {
            let hours = two_digits(b.get(i + 1..i + 3)?)?;
            if hours > 15 {
                return None;
            }
            let mut j = i + 3;
            if b.get(j) == Some(&b':') {
                j += 1;
            }
            if let Some(m) = b.get(j..j + 2).and_then(two_digits) {
                if m > 59 {
                    return None;
                }
                j += 2;
            } else if j != i + 3 {
                return None;
            }
            Some(j)
        }
        _ => None,
    }
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

/// Days in `month` of the proleptic Gregorian `year` (astronomical: 0 is 1 BC).
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year.rem_euclid(4) == 0
            && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0) =>
        {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn datetime_reason(t: SqlType) -> String {
    match t {
        SqlType::Time => "TIME expects `HH:MM[:SS[.ffffff]]`".into(),
        SqlType::Date => "DATE expects `YYYY-MM-DD` (4713 BC to 294276 AD)".into(),
        _ => format!(
            "{t} expects `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|±HH[:MM]]` (or `T` before the time; \
             4713 BC to 294276 AD, at most 6 fraction digits)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, SortKey};

    fn col(name: &'static str, sql_type: SqlType, nullable: bool) -> Column {
        Column {
            name,
            sql_type,
            nullable,
            encode: None,
        }
    }

    fn rules(columns: &'static [Column]) -> RecordRules {
        let schema: &'static TableSchema = Box::leak(Box::new(TableSchema {
            name: "t",
            columns,
            sortkey: SortKey::None,
            distkey: None,
            diststyle: None,
        }));
        RecordRules::new(schema, &[])
    }

    fn one(t: SqlType, value: &str) -> Result<(), Invalid> {
        let columns: &'static [Column] = Box::leak(Box::new([col("v", t, true)]));
        rules(columns)
            .check(format!(r#"{{"v":{value}}}"#).as_bytes())
            .map(|_| ())
    }

    #[test]
    fn records_that_are_no_objects_are_named() {
        static C: [Column; 1] = [Column {
            name: "a",
            sql_type: SqlType::Integer,
            nullable: true,
            encode: None,
        }];
        let r = rules(&C);
        for (data, why) in [
            (&b""[..], "empty"),
            (b"   ", "empty"),
            (b"[1]", "array"),
            (b"\"x\"", "string"),
            (b"7", "number"),
            (b"null", "null"),
            (b"true", "boolean"),
            (b"hello", "not JSON"),
            (b"this is not json", "not JSON at all"),
            (b"nulls", "not JSON at all"),
            (b"{\"a\":", "not valid JSON"),
            (b"{\"a\":1} {}", "not valid JSON"),
            (b"{\"a\":1,\"b\":\"\xe9\"}", "UTF-8"),
            (br#"{"b":"\ud800"}"#, "Unicode"),
            (br#"{"b":"\udc00x"}"#, "Unicode"),
            (br#"{"b":["\u0000"]}"#, "U+0000"),
            (br#"{"\u0000":1}"#, "U+0000"),
        ] {
            let e = r.check(data).unwrap_err();
            assert!(
                e.reason.contains(why),
                "{:?}: {e:?}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(&r.check(b" {\"a\":\n1} ").unwrap()[..], b"{\"a\":1}");
        assert_eq!(
            &r.check(br#"{"data":"{\"a\":2}"}"#).unwrap()[..],
            br#"{"a":2}"#
        );
        assert!(r.check(br#"{"data":"{\"a\":\"x\"}"}"#).is_err());
        // A valid surrogate pair is a character.
        assert!(r.check(br#"{"b":"\ud83d\ude00"}"#).is_ok());
    }

    /// The quick path gives the full check's answer on any record it takes.
    #[test]
    fn the_flat_path_agrees_with_the_full_check() {
        static C: [Column; 6] = [
            Column {
                name: "a",
                sql_type: SqlType::Integer,
                nullable: false,
                encode: None,
            },
            Column {
                name: "b",
                sql_type: SqlType::Varchar { len: 3 },
                nullable: true,
                encode: None,
            },
            Column {
                name: "d",
                sql_type: SqlType::Decimal {
                    precision: 4,
                    scale: 1,
                },
                nullable: true,
                encode: None,
            },
            Column {
                name: "t",
                sql_type: SqlType::Date,
                nullable: true,
                encode: None,
            },
            Column {
                name: "s",
                sql_type: SqlType::Super,
                nullable: true,
                encode: None,
            },
            Column {
                name: "data",
                sql_type: SqlType::Boolean,
                nullable: true,
                encode: None,
            },
        ];
        let r = rules(&C);
        let keys = [
            "\"a\"", "\"b\"", "\"d\"", "\"t\"", "\"s\"", "\"data\"", "\"x\"", "\"A\"",
        ];
        let values = [
            "1",
            "-2",
            "2147483648",
            "1.5",
            "1e2",
            "\"12.3\"",
            "\"999.95\"",
            "\"ab\"",
            "\"abcd\"",
            "\"\"",
            "true",
            "false",
            "null",
            "\"2024-02-30\"",
            "\"2024-02-29\"",
            "0.05",
            "-0",
        ];
        let mut flat = 0;
        for _ in 0..50_000 {
            let n = rand::random_range(0..5);
            let pairs: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "{}{}:{}",
                        if rand::random_range(0..8) == 0 {
                            " "
                        } else {
                            ""
                        },
                        keys[rand::random_range(0..keys.len())],
                        values[rand::random_range(0..values.len())]
                    )
                })
                .collect();
            let line = format!("{{{}}}", pairs.join(","));
            let full = r.check_object(line.as_bytes()).map(|_| ());
            if let Some(quick) = r.check_flat(line.as_bytes()) {
                flat += 1;
                assert_eq!(quick, full, "{line}");
            }
        }
        assert!(flat > 10_000, "the quick path took {flat}");
    }

    #[test]
    fn integers_by_type_and_range() {
        assert!(one(SqlType::SmallInt, "32767").is_ok());
        assert!(one(SqlType::SmallInt, "32768")
            .unwrap_err()
            .reason
            .contains("range"));
        assert!(one(SqlType::Integer, "-2147483648").is_ok());
        assert!(one(SqlType::Integer, "2147483648").is_err());
        assert!(one(SqlType::BigInt, "9223372036854775807").is_ok());
        assert!(one(SqlType::BigInt, "9223372036854775808").is_err());
        for bad in ["1.0", "1e3", "\"1\"", "true", "[1]", "{}"] {
            let e = one(SqlType::Integer, bad).unwrap_err();
            assert_eq!(e.column, "v");
            assert!(e.reason.contains("INTEGER expects"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn floats_finite_and_representable() {
        assert!(one(SqlType::Real, "3.4e38").is_ok());
        assert!(one(SqlType::Real, "3.5e38").is_err());
        assert!(one(SqlType::Real, "1e-50").is_err());
        assert!(one(SqlType::Real, "0.0e-50").is_ok());
        assert!(one(SqlType::Double, "1e308").is_ok());
        assert!(one(SqlType::Double, "1e309").is_err());
        assert!(one(SqlType::Double, "-1e-400").is_err());
        assert!(one(SqlType::Double, "\"1.5\"").is_err());
    }

    #[test]
    fn decimals_by_digits_after_rounding() {
        let d = SqlType::Decimal {
            precision: 5,
            scale: 2,
        };
        for ok in [
            "999.99",
            "\"999.99\"",
            "-999.994",
            "0.001",
            "0",
            "\".5\"",
            "\"5.\"",
            "-0",
        ] {
            assert!(one(d, ok).is_ok(), "{ok}");
        }
        for bad in [
            "1000", "999.995", "1e2", "\"1e3\"", "\"abc\"", "\"\"", "true", "\"NaN\"", "\"+1\"",
            "\".\"",
        ] {
            assert!(one(d, bad).is_err(), "{bad}");
        }
        let fits = |text: &str, p: u8, s: u8| check_decimal(text, p, s).is_ok();
        assert!(fits("0.995", 3, 2) && !fits("9.995", 3, 2));
        assert!(fits("000123.4", 3, 0) && !fits("99.5", 2, 0) && fits("99.4", 2, 0));
        assert!(fits("0.5", 1, 0) && fits("0.99", 2, 1) && !fits("9.96", 2, 1));
        // DECIMAL(19, s) is 64-bit on Redshift.
        assert!(fits("9223372036854775807", 19, 0));
        assert!(!fits("9223372036854775808", 19, 0));
        assert!(fits("922337203685477580.7", 19, 1));
        assert!(!fits("922337203685477580.75", 19, 1));
        assert!(fits("9223372036854775808", 20, 0));
        // Against rust_decimal's own rounding (half away from zero), over many numbers.
        for _ in 0..20_000 {
            let int = rand::random_range(0u64..100_000);
            let frac = rand::random_range(0u64..100_000);
            let text = format!("{int}.{frac:05}");
            let scale = rand::random_range(0u8..5);
            let rounded = rust_decimal::Decimal::from_str_exact(&text)
                .unwrap()
                .round_dp_with_strategy(
                    u32::from(scale),
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                )
                .trunc()
                .to_string();
            let int_digits = rounded.trim_start_matches('0').len() as u8;
            for room in [int_digits.saturating_sub(1), int_digits] {
                let p = room + scale;
                if p == 0 || p > 38 {
                    continue;
                }
                assert_eq!(
                    fits(&text, p, scale),
                    room >= int_digits,
                    "{text} ({p},{scale})"
                );
            }
        }
    }

    #[test]
    fn text_lengths_are_bytes_and_char_is_single_byte() {
        let v = SqlType::Varchar { len: 4 };
        assert!(one(v, "\"abcd\"").is_ok());
        assert!(one(v, "\"ééé\"").unwrap_err().reason.contains("bytes"));
        assert!(one(v, "\"\\u00e9\\u00e9\"").is_ok());
        assert!(one(v, "1234").is_ok());
        assert!(one(v, "12345").is_err());
        assert!(one(v, "\"a\\u0000\"")
            .unwrap_err()
            .reason
            .contains("U+0000"));
        let c = SqlType::Char { len: 4 };
        assert!(one(c, "\"abc\"").is_ok());
        assert!(one(c, "\"é\"").unwrap_err().reason.contains("single-byte"));
    }

    #[test]
    fn dates_and_times_as_the_encoder_writes_them_and_iso() {
        let ts = SqlType::Timestamp;
        for ok in [
            "2024-02-29 23:59:59.999999",
            "2024-02-29 00:00:00",
            "2024-02-29T10:11:12Z",
            "2024-02-29T10:11:12.5+05:30",
            "2024-02-29 10:11",
            "2024-02-29",
            "4713-01-01 00:00:00 BC",
            "294276-12-31 23:59:59",
            "2024-01-01 00:00:00+00",
        ] {
            assert!(one(ts, &format!("\"{ok}\"")).is_ok(), "{ok}");
        }
        for bad in [
            "2023-02-29 00:00:00",
            "2024-13-01",
            "2024-01-01 24:00:00",
            "2024-01-01 10:00:60",
            "2024-01-01 10:00:00.1234567",
            "4714-01-01 BC",
            "294277-01-01",
            "1700000000",
            "",
            "2024-01-01x",
        ] {
            assert!(one(ts, &format!("\"{bad}\"")).is_err(), "{bad}");
        }
        assert!(one(ts, "1700000000").is_err());
        assert!(one(SqlType::Date, "\"2024-01-31\"").is_ok());
        assert!(one(SqlType::Date, "\"2024-01-31 10:00:00\"").is_ok());
        assert!(one(SqlType::Date, "\"2024-04-31\"").is_err());
        assert!(one(SqlType::Time, "\"23:59:59.123456\"").is_ok());
        assert!(one(SqlType::Time, "\"23:59\"").is_ok());
        assert!(one(SqlType::Time, "\"24:00\"").is_err());
        assert!(one(SqlType::Time, "\"10:00:00+01\"").is_err());
    }

    #[test]
    fn super_takes_any_json_within_its_limits() {
        assert!(one(SqlType::Super, r#"{"a":[1,"x",null]}"#).is_ok());
        assert!(one(SqlType::Super, "\"s\"").is_ok());
        let long = format!("\"{}\"", "x".repeat(MAX_SUPER_STRING_BYTES + 1));
        assert!(one(SqlType::Super, &format!("[{long}]"))
            .unwrap_err()
            .reason
            .contains("SUPER"));
    }

    #[test]
    fn not_null_columns_need_a_value_and_the_last_duplicate_wins() {
        static C: [Column; 2] = [
            Column {
                name: "id",
                sql_type: SqlType::Integer,
                nullable: false,
                encode: None,
            },
            Column {
                name: "n",
                sql_type: SqlType::Varchar { len: 3 },
                nullable: true,
                encode: None,
            },
        ];
        let r = rules(&C);
        assert!(r.check(br#"{"id":1}"#).is_ok());
        let e = r.check(br#"{"n":"x"}"#).unwrap_err();
        assert_eq!(
            (e.column.as_str(), e.reason.contains("missing")),
            ("id", true)
        );
        let e = r.check(br#"{"id":null}"#).unwrap_err();
        assert!(e.reason.contains("null in a NOT NULL"), "{e:?}");
        assert!(r.check(br#"{"id":1,"id":null}"#).is_err());
        assert!(r.check(br#"{"id":null,"id":1}"#).is_ok());
        // Keys match column names exactly: `ID` is another key.
        assert!(r.check(br#"{"ID":1}"#).is_err());
        assert!(r.check(br#"{"id":1,"n":"abcd"}"#).is_err());
    }

    #[test]
    fn the_warehouse_types_win_over_the_structs() {
        static C: [Column; 1] = [Column {
            name: "n",
            sql_type: SqlType::Varchar { len: 32 },
            nullable: false,
            encode: None,
        }];
        let schema: &'static TableSchema = Box::leak(Box::new(TableSchema {
            name: "t",
            columns: &C,
            sortkey: SortKey::None,
            distkey: None,
            diststyle: None,
        }));
        let narrower = WarehouseColumn {
            char_len: Some(4),
            ..WarehouseColumn::new("n", "character varying", true)
        };
        let r = RecordRules::new(schema, &[narrower]);
        assert!(r.check(br#"{"n":"abcde"}"#).is_err());
        assert!(r.check(br#"{}"#).is_ok(), "nullable in the warehouse");
    }
}
