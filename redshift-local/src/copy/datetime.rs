//! DATEFORMAT / TIMEFORMAT (copy-parameters-data-conversion, automatic-recognition,
//! r_DATEFORMAT_and_TIMEFORMAT_strings).
//!
//! The common ISO forms are recognised here. With `'auto'`, anything else is given to
//! PostgreSQL's date/time parser (Redshift's is the PostgreSQL 8.0 one it forked, and the
//! forms automatic-recognition lists, `J2451187`, `Jan-08-95 BC`, `19960108 040809`,
//! `1996.008`, `17 Dec 07:37:16 1997 PST`, ..., are PostgreSQL input forms), on a connection of
//! its own with `DateStyle = ISO, MDY` and `TimeZone = UTC`, except the special words
//! (`epoch`, `now`, `infinity`, ...) that are not dates. Epochs are not recognised by `'auto'`
//! (automatic-recognition) and need TIMEFORMAT 'epochsecs' / 'epochmillisecs'.

use super::command::TimeFormat;
use super::convert::{push_escaped, FieldError, Kind, Out};

/// Asks PostgreSQL whether it reads `text` as a value of `kind`; its canonical text if so.
pub trait Fallback {
    /// PostgreSQL's reading of `text`, or `None` if it refuses it.
    fn datetime(&self, text: &str, kind: Kind) -> Option<String>;
}

/// A fallback that accepts nothing (conversions that never need PostgreSQL).
#[cfg(test)]
pub struct NoFallback;

#[cfg(test)]
impl Fallback for NoFallback {
    fn datetime(&self, _: &str, _: Kind) -> Option<String> {
        None
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Parsed {
    year: i32,
    month: u32,
    day: u32,
    time: Option<(u32, u32, u32, String)>,
    offset_minutes: Option<i32>,
}

fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    if !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `YYYY-MM-DD[( |T)HH:MI[:SS[.f]]][Z|(+|-)HH[[:]MM]]`; `time_sep_t` allows the `T`.
fn parse_iso(s: &str, allow_t: bool, allow_date_only: bool) -> Option<Parsed> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)? as i32;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut p = Parsed {
        year,
        month,
        day,
        ..Parsed::default()
    };
    let mut i = 10;
    if i == b.len() {
        return allow_date_only.then_some(p);
    }
    match b[i] {
        b' ' => {}
        b'T' | b't' if allow_t => {}
        _ => return None,
    }
    i += 1;
    let hh = digits(b, i, 2)?;
    if b.get(i + 2) != Some(&b':') {
        return None;
    }
    let mi = digits(b, i + 3, 2)?;
    i += 5;
    let mut ss = 0;
    let mut frac = String::new();
    if b.get(i) == Some(&b':') {
        ss = digits(b, i + 1, 2)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            frac = s[start..i].to_owned();
        }
    }
    if hh > 24
        || mi > 59
        || ss > 60
        || (hh == 24 && (mi > 0 || ss > 0 || frac.bytes().any(|d| d != b'0')))
    {
        return None;
    }
    p.time = Some((hh, mi, ss, frac));
    if i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => p.offset_minutes = Some(0),
            b'+' | b'-' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                let h = digits(b, i + 1, 2)
                    .or_else(|| digits(b, i + 1, 1).filter(|_| b.len() == i + 2))?;
                let hlen = if digits(b, i + 1, 2).is_some() { 2 } else { 1 };
                let mut j = i + 1 + hlen;
                let mut m = 0;
                if j < b.len() {
                    if b[j] == b':' {
                        j += 1;
                    }
                    m = digits(b, j, 2)?;
                    j += 2;
                }
                if j != b.len() || h > 15 || m > 59 {
                    return None;
                }
                p.offset_minutes = Some(sign * (h as i32 * 60 + m as i32));
            }
            _ => return None,
        }
    }
    Some(p)
}

fn is_special_word(text: &str) -> bool {
    let l = text.to_ascii_lowercase();
    [
        "epoch",
        "infinity",
        "now",
        "today",
        "tomorrow",
        "yesterday",
        "allballs",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// A DATE value.
pub fn date(
    text: &str,
    is_number: bool,
    fmt: TimeFormat,
    fallback: &dyn Fallback,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    let bad = || FieldError {
        code: 1205,
        reason: format!("Invalid Date Format - length must be 10 or more: '{text}'")
            .replace(" - length must be 10 or more", ""),
        position: 0,
    };
    if is_number {
        return Err(bad());
    }
    let auto = fmt == TimeFormat::Auto;
    if let Some(p) = parse_iso(text.trim(), auto, true) {
        // a time part in a DATE is dropped (automatic-recognition)
        out.extend_from_slice(format!("{:04}-{:02}-{:02}", p.year, p.month, p.day).as_bytes());
        return Ok(Out::Value);
    }
    if auto && !is_special_word(text) {
        if let Some(v) = fallback.datetime(text, Kind::Date) {
            push_escaped(out, v.as_bytes());
            return Ok(Out::Value);
        }
    }
    Err(bad())
}

/// A TIMESTAMP or TIMESTAMPTZ value.
pub fn timestamp(
    text: &str,
    is_number: bool,
    tz: bool,
    fmt: TimeFormat,
    fallback: &dyn Fallback,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    let bad = || FieldError {
        code: 1206,
        reason: format!("Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]: '{text}'"),
        position: 0,
    };
    match fmt {
        TimeFormat::EpochSecs | TimeFormat::EpochMillis => {
            let millis = fmt == TimeFormat::EpochMillis;
            return epoch(text, millis, tz, out).ok_or_else(bad);
        }
        _ if is_number => return Err(bad()),
        _ => {}
    }
    let auto = fmt == TimeFormat::Auto;
    if let Some(p) = parse_iso(text.trim(), auto, auto) {
        if fmt == TimeFormat::Default && p.time.is_none() {
            return Err(bad());
        }
        if fmt == TimeFormat::Default && !tz && p.offset_minutes.is_some() {
            return Err(bad());
        }
        let (hh, mi, ss, frac) = p.time.unwrap_or((0, 0, 0, String::new()));
        let mut s = format!(
            "{:04}-{:02}-{:02} {hh:02}:{mi:02}:{ss:02}",
            p.year, p.month, p.day
        );
        if !frac.is_empty() {
            s.push('.');
            s.push_str(&frac);
        }
        // TIMESTAMP ignores an offset; TIMESTAMPTZ without one is UTC (Redshift sessions are UTC)
        if tz {
            let off = p.offset_minutes.unwrap_or(0);
            s.push_str(&format!(
                "{}{:02}:{:02}",
                if off < 0 { '-' } else { '+' },
                off.abs() / 60,
                off.abs() % 60
            ));
        }
        out.extend_from_slice(s.as_bytes());
        return Ok(Out::Value);
    }
    if auto && !is_special_word(text) {
        if let Some(v) = fallback.datetime(
            text,
            if tz {
                Kind::Timestamptz
            } else {
                Kind::Timestamp
            },
        ) {
            push_escaped(out, v.as_bytes());
            return Ok(Out::Value);
        }
    }
    Err(bad())
}

/// A TIME or TIMETZ value: `HH:MI[:SS[.f]]`, with an offset for TIMETZ.
pub fn time(
    text: &str,
    tz: bool,
    fallback: &dyn Fallback,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    let probe = format!("2000-01-01 {}", text.trim());
    if let Some(p) = parse_iso(&probe, false, false) {
        if p.offset_minutes.is_none() || tz {
            push_escaped(out, text.trim().as_bytes());
            return Ok(Out::Value);
        }
    }
    if !is_special_word(text) {
        if let Some(v) = fallback.datetime(text, if tz { Kind::Timetz } else { Kind::Time }) {
            push_escaped(out, v.as_bytes());
            return Ok(Out::Value);
        }
    }
    Err(FieldError {
        code: 1206,
        reason: format!("Invalid time format or value [HH24:MI:SS]: '{text}'"),
        position: 0,
    })
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn epoch(text: &str, millis: bool, tz: bool, out: &mut Vec<u8>) -> Option<Out> {
    let t = text.trim();
    let (int_part, frac_part) = t.split_once('.').unwrap_or((t, ""));
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = int_part.parse().ok()?;
    let (secs, mut micros) = if millis {
        (v.div_euclid(1000), v.rem_euclid(1000) * 1000)
    } else {
        (v, 0)
    };
    if !frac_part.is_empty() {
        let mut f = frac_part.to_owned();
        f.truncate(if millis { 3 } else { 6 });
        while f.len() < if millis { 3 } else { 6 } {
            f.push('0');
        }
        let add: i64 = f.parse().ok()?;
        micros += add;
        if v < 0 {
            return None;
        }
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(1..=294_276).contains(&y) {
        return None;
    }
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if micros > 0 {
        s.push_str(&format!(".{micros:06}"));
    }
    if tz {
        s.push_str("+00:00");
    }
    out.extend_from_slice(s.as_bytes());
    Some(Out::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str, tz: bool, fmt: TimeFormat) -> Option<String> {
        let mut out = Vec::new();
        timestamp(text, false, tz, fmt, &NoFallback, &mut out)
            .ok()
            .map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn iso_forms_under_auto() {
        assert_eq!(
            ts("2019-02-11T05:09:12.195Z", true, TimeFormat::Auto).as_deref(),
            Some("2019-02-11 05:09:12.195+00:00")
        );
        assert_eq!(
            ts("1997-12-17 07:37:16-08", true, TimeFormat::Auto).as_deref(),
            Some("1997-12-17 07:37:16-08:00")
        );
        assert_eq!(
            ts("2019-02-11T05:09:12Z", false, TimeFormat::Auto).as_deref(),
            Some("2019-02-11 05:09:12")
        );
        assert_eq!(
            ts("2019-02-11", false, TimeFormat::Auto).as_deref(),
            Some("2019-02-11 00:00:00")
        );
        assert_eq!(ts("2019-02-30 00:00:00", false, TimeFormat::Auto), None);
        assert_eq!(ts("2019-02-11T05:09:12", false, TimeFormat::Default), None);
        assert_eq!(
            ts("2019-02-11 05:09:12.5", false, TimeFormat::Default).as_deref(),
            Some("2019-02-11 05:09:12.5")
        );
    }

    #[test]
    fn epochs() {
        assert_eq!(
            ts("1700000000", false, TimeFormat::EpochSecs).as_deref(),
            Some("2023-11-14 22:13:20")
        );
        assert_eq!(
            ts("1700000000123", true, TimeFormat::EpochMillis).as_deref(),
            Some("2023-11-14 22:13:20.123000+00:00")
        );
    }

    #[test]
    fn dates_drop_the_time() {
        let mut out = Vec::new();
        date(
            "2020-02-29T10:00:00Z",
            false,
            TimeFormat::Auto,
            &NoFallback,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"2020-02-29");
        assert!(date(
            "2021-02-29",
            false,
            TimeFormat::Auto,
            &NoFallback,
            &mut Vec::new()
        )
        .is_err());
        assert!(date(
            "20200101",
            true,
            TimeFormat::Auto,
            &NoFallback,
            &mut Vec::new()
        )
        .is_err());
    }
}
