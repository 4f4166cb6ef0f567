//! One JSON value into one column, by Redshift's COPY rules, written as a field of PostgreSQL's
//! COPY text format. Each rule names the page it follows:
//!
//! - lengths count bytes; CHAR takes single-byte characters only (r_Character_types,
//!   multi-byte-character-load-errors); over-long values fail with 1204 unless TRUNCATECOLUMNS;
//! - an empty string loads NULL into every non-character type, and into CHAR/VARCHAR with
//!   EMPTYASNULL; BLANKSASNULL does the same for white space (copy-parameters-data-format,
//!   copy-parameters-data-conversion);
//! - integers in range (r_Numeric_types201), DECIMAL within precision with excess scale
//!   truncated unless ROUNDEC (copy-parameters-data-conversion), DECIMAL(19,s) up to 2^63-1;
//! - BOOLEAN takes Redshift's literals (r_Boolean_type);
//! - dates and timestamps by DATEFORMAT/TIMEFORMAT (see `datetime`);
//! - SUPER takes any JSON value, a string in it at most 65535 bytes (limitations-super);
//! - error codes and reasons from r_Load_Error_Reference and multi-byte-character-load-errors.

use serde_json::value::RawValue;

use super::command::TimeFormat;
use super::datetime;

/// What a column holds, as far as conversion cares (from its PostgreSQL type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// int2
    Int2,
    /// int4
    Int4,
    /// int8
    Int8,
    /// numeric(p, s)
    Numeric,
    /// float4
    Float4,
    /// float8
    Float8,
    /// bool
    Bool,
    /// bpchar(n)
    Char,
    /// varchar(n) (or text, unbounded)
    Varchar,
    /// date
    Date,
    /// timestamp
    Timestamp,
    /// timestamptz
    Timestamptz,
    /// time
    Time,
    /// timetz
    Timetz,
    /// jsonb, standing in for SUPER
    Super,
    /// Anything else: the text is handed to PostgreSQL as is.
    Other,
}

/// How one column is loaded.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    /// The column's name.
    pub name: String,
    /// What it holds.
    pub kind: Kind,
    /// Length in bytes for CHAR/VARCHAR (0: unbounded), precision for DECIMAL.
    pub length: u32,
    /// Scale for DECIMAL.
    pub scale: u32,
    /// NOT NULL.
    pub notnull: bool,
    /// For a NOT NULL column with a DEFAULT: the default's value, which COPY loads for a null
    /// field (r_ALTER_TABLE, DEFAULT).
    pub default: Option<String>,
    /// The type's name in the load-error tables (`int4`, `varchar`, ...).
    pub label: String,
    /// The type's length in the load-error tables (`256`, `18,0`, or empty).
    pub length_label: String,
}

impl ColumnRule {
    /// The rule for a column of PostgreSQL type `oid` with modifier `typmod`.
    pub fn new(name: &str, oid: u32, typmod: i32, notnull: bool) -> ColumnRule {
        let (kind, label) = match oid {
            21 => (Kind::Int2, "int2"),
            23 => (Kind::Int4, "int4"),
            20 => (Kind::Int8, "int8"),
            1700 => (Kind::Numeric, "numeric"),
            700 => (Kind::Float4, "float4"),
            701 => (Kind::Float8, "float8"),
            16 => (Kind::Bool, "bool"),
            1042 => (Kind::Char, "bpchar"),
            1043 => (Kind::Varchar, "varchar"),
            25 => (Kind::Varchar, "text"),
            1082 => (Kind::Date, "date"),
            1114 => (Kind::Timestamp, "timestamp"),
            1184 => (Kind::Timestamptz, "timestamptz"),
            1083 => (Kind::Time, "time"),
            1266 => (Kind::Timetz, "timetz"),
            3802 => (Kind::Super, "super"),
            _ => (Kind::Other, "other"),
        };
        let (length, scale) = match kind {
            Kind::Char | Kind::Varchar if typmod >= 4 => ((typmod - 4) as u32, 0),
            Kind::Numeric if typmod >= 4 => {
                let m = (typmod - 4) as u32;
                (m >> 16, m & 0xffff)
            }
            Kind::Numeric => (38, 0),
            _ => (0, 0),
        };
        let length_label = match kind {
            Kind::Char | Kind::Varchar if length > 0 => length.to_string(),
            Kind::Numeric => format!("{length},{scale}"),
            _ => String::new(),
        };
        ColumnRule {
            name: name.to_owned(),
            kind,
            length,
            scale,
            notnull,
            default: None,
            label: label.to_owned(),
            length_label,
        }
    }
}

/// COPY's conversion options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// TRUNCATECOLUMNS.
    pub truncate_columns: bool,
    /// EMPTYASNULL.
    pub empty_as_null: bool,
    /// BLANKSASNULL.
    pub blanks_as_null: bool,
    /// TRIMBLANKS.
    pub trim_blanks: bool,
    /// ROUNDEC.
    pub round_dec: bool,
    /// DATEFORMAT.
    pub date_format: TimeFormat,
    /// TIMEFORMAT.
    pub time_format: TimeFormat,
}

/// Why a field was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Redshift's load error code (r_Load_Error_Reference).
    pub code: i32,
    /// The reason, as Redshift words it where known.
    pub reason: String,
    /// Position of the error in the field.
    pub position: i32,
}

fn fe(code: i32, reason: impl Into<String>) -> FieldError {
    FieldError {
        code,
        reason: reason.into(),
        position: 0,
    }
}

/// A JSON value, classified.
pub enum Json<'a> {
    /// The key was missing.
    Missing,
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// A string, unescaped.
    Str(std::borrow::Cow<'a, str>),
    /// An object or array, as written.
    Nested(&'a str),
}

/// Classifies a raw JSON value. `Err` for a string that can't be unescaped to valid UTF-8 (a
/// lone surrogate escape).
pub fn classify(raw: &RawValue) -> Result<Json<'_>, FieldError> {
    let s = raw.get();
    match s.as_bytes().first() {
        Some(b'n') => Ok(Json::Null),
        Some(b't') => Ok(Json::Bool(true)),
        Some(b'f') => Ok(Json::Bool(false)),
        Some(b'"') => {
            let inner = &s[1..s.len() - 1];
            if !inner.contains('\\') {
                Ok(Json::Str(std::borrow::Cow::Borrowed(inner)))
            } else {
                serde_json::from_str::<String>(s)
                    .map(|v| Json::Str(std::borrow::Cow::Owned(v)))
                    .map_err(|e| {
                        fe(
                            1220,
                            format!("String contains invalid or unsupported UTF8 codepoints. Bad escape: {e}"),
                        )
                    })
            }
        }
        Some(b'{') | Some(b'[') => Ok(Json::Nested(s)),
        _ => Ok(Json::Number(s)),
    }
}

/// Appends `s` to a COPY text field, escaping what the format needs.
pub fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// The value's text, for error messages and raw_field_value.
pub fn raw_text<'a>(v: &'a Json<'a>) -> std::borrow::Cow<'a, str> {
    match v {
        Json::Missing | Json::Null => "".into(),
        Json::Bool(true) => "true".into(),
        Json::Bool(false) => "false".into(),
        Json::Number(n) => (*n).into(),
        Json::Str(s) => s.as_ref().into(),
        Json::Nested(n) => (*n).into(),
    }
}

/// What a conversion produced.
pub enum Out {
    /// A value, already appended (escaped) to the row.
    Value,
    /// NULL (the caller decides between NULL, the column's default, or a NOT NULL failure).
    Null,
}

/// Converts `v` for column `rule`, appending the field text to `out` on success.
pub fn convert(
    rule: &ColumnRule,
    v: &Json,
    opts: &Options,
    fallback: &dyn datetime::Fallback,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    match v {
        Json::Missing | Json::Null => return Ok(Out::Null),
        _ => {}
    }
    match rule.kind {
        Kind::Char | Kind::Varchar => return character(rule, v, opts, out),
        Kind::Super => return superv(v, out),
        _ => {}
    }
    // every other type: the value's text; an empty string is NULL (copy-parameters-data-format)
    let text: std::borrow::Cow<str> = match v {
        Json::Str(s) => {
            if s.is_empty() || (opts.blanks_as_null && s.trim().is_empty()) {
                return Ok(Out::Null);
            }
            std::borrow::Cow::Borrowed(s.as_ref())
        }
        Json::Number(n) => std::borrow::Cow::Borrowed(*n),
        Json::Bool(b) => std::borrow::Cow::Borrowed(if *b { "true" } else { "false" }),
        Json::Nested(_) => {
            return Err(fe(
                1224,
                format!(
                    "Invalid data type: a JSON object or array can't load into {}",
                    rule.label
                ),
            ))
        }
        Json::Missing | Json::Null => return Ok(Out::Null),
    };
    let text = text.as_ref();
    match rule.kind {
        Kind::Int2 => integer(text, i16::MIN as i64, i16::MAX as i64, "Short", out),
        Kind::Int4 => integer(text, i32::MIN as i64, i32::MAX as i64, "Integer", out),
        Kind::Int8 => integer(text, i64::MIN, i64::MAX, "Long", out),
        Kind::Numeric => decimal(text, rule.length, rule.scale, opts.round_dec, out),
        Kind::Float4 => float(text, true, out),
        Kind::Float8 => float(text, false, out),
        Kind::Bool => boolean(v, text, out),
        Kind::Date => datetime::date(
            text,
            matches!(v, Json::Number(_)),
            opts.date_format,
            fallback,
            out,
        ),
        Kind::Timestamp | Kind::Timestamptz => datetime::timestamp(
            text,
            matches!(v, Json::Number(_)),
            rule.kind == Kind::Timestamptz,
            opts.time_format,
            fallback,
            out,
        ),
        Kind::Time | Kind::Timetz => datetime::time(text, rule.kind == Kind::Timetz, fallback, out),
        _ => {
            if text.contains('\0') {
                return Err(nul_error());
            }
            push_escaped(out, text.as_bytes());
            Ok(Out::Value)
        }
    }
}

fn nul_error() -> FieldError {
    fe(
        1220,
        "String contains invalid or unsupported UTF8 codepoints. U+0000 can't be stored \
         (redshift-local: the PostgreSQL backend has no NUL in text)",
    )
}

fn character(
    rule: &ColumnRule,
    v: &Json,
    opts: &Options,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    let text: std::borrow::Cow<str> = match v {
        Json::Str(s) => std::borrow::Cow::Borrowed(s.as_ref()),
        other => raw_text(other),
    };
    let mut s: &str = text.as_ref();
    if s.is_empty() && opts.empty_as_null {
        return Ok(Out::Null);
    }
    if opts.blanks_as_null
        && !s.is_empty()
        && s.trim_matches(|c: char| c.is_ascii_whitespace()).is_empty()
    {
        return Ok(Out::Null);
    }
    if s.contains('\0') {
        return Err(nul_error());
    }
    if opts.trim_blanks && rule.kind == Kind::Varchar {
        s = s.trim_end_matches(|c: char| c.is_ascii_whitespace());
    }
    if rule.kind == Kind::Char {
        // CHAR holds single-byte characters only (multi-byte-character-load-errors)
        if let Some(pos) = s.bytes().position(|b| b >= 0x80) {
            let ch_len = s[pos..].chars().next().map_or(1, char::len_utf8);
            let hex: Vec<String> = s.as_bytes()[pos..pos + ch_len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            return Err(FieldError {
                code: 1220,
                reason: format!(
                    "Multibyte character not supported for CHAR (Hint: Try using VARCHAR). Invalid char: {}",
                    hex.join(" ")
                ),
                position: pos as i32,
            });
        }
        // trailing blanks of a CHAR value are not significant
        let trimmed = s.trim_end_matches(' ');
        if rule.length > 0 && trimmed.len() > rule.length as usize {
            if opts.truncate_columns {
                s = &s[..rule.length as usize];
            } else {
                return Err(FieldError {
                    code: 1204,
                    reason: "Char length exceeds DDL length".into(),
                    position: rule.length as i32,
                });
            }
        } else if rule.length > 0 && s.len() > rule.length as usize {
            s = trimmed;
        }
    } else if rule.length > 0 && s.len() > rule.length as usize {
        // VARCHAR lengths count bytes (r_Character_types)
        if opts.truncate_columns {
            let mut end = rule.length as usize;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s = &s[..end];
        } else {
            return Err(FieldError {
                code: 1204,
                reason: "String length exceeds DDL length".into(),
                position: rule.length as i32,
            });
        }
    }
    push_escaped(out, s.as_bytes());
    Ok(Out::Value)
}

/// SUPER from any JSON value (ingest-super; limitations-super).
fn superv(v: &Json, out: &mut Vec<u8>) -> Result<Out, FieldError> {
    const MAX_STRING: usize = 65535;
    const MAX_SUPER: usize = 16 * 1024 * 1024;
    let json: std::borrow::Cow<str> = match v {
        Json::Missing | Json::Null => return Ok(Out::Null),
        Json::Bool(b) => (if *b { "true" } else { "false" }).into(),
        Json::Number(n) => (*n).into(),
        Json::Str(s) => {
            if s.len() > MAX_STRING {
                return Err(super_string_error(s.len()));
            }
            serde_json::to_string(s.as_ref()).unwrap_or_default().into()
        }
        Json::Nested(n) => {
            if n.len() > MAX_SUPER {
                return Err(fe(
                    1204,
                    format!("SUPER value of {} bytes exceeds the 16 MB maximum", n.len()),
                ));
            }
            let value: serde_json::Value = serde_json::from_str(n)
                .map_err(|e| fe(1224, format!("Invalid JSON for SUPER: {e}")))?;
            if let Some(len) = longest_string(&value).filter(|l| *l > MAX_STRING) {
                return Err(super_string_error(len));
            }
            if n.contains("\\u0000") {
                return Err(nul_error());
            }
            (*n).into()
        }
    };
    push_escaped(out, json.as_bytes());
    Ok(Out::Value)
}

fn super_string_error(len: usize) -> FieldError {
    fe(
        1204,
        format!(
            "A string of {len} bytes exceeds the 65535-byte limit of a string in a SUPER value"
        ),
    )
}

fn longest_string(v: &serde_json::Value) -> Option<usize> {
    match v {
        serde_json::Value::String(s) => Some(s.len()),
        serde_json::Value::Array(a) => a.iter().filter_map(longest_string).max(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| longest_string(v).unwrap_or(0).max(k.len()))
            .max(),
        _ => None,
    }
}

fn integer(
    text: &str,
    min: i64,
    max: i64,
    label: &str,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    let b = text.as_bytes();
    let (neg, digits_at) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    if digits_at == b.len() {
        return Err(FieldError {
            code: 1207,
            reason: format!("Invalid digit, Value '{text}', Pos 0, Type: {label}"),
            position: 0,
        });
    }
    let mut acc: i128 = 0;
    for (i, &d) in b[digits_at..].iter().enumerate() {
        if !d.is_ascii_digit() {
            let pos = digits_at + i;
            let ch = text[pos..].chars().next().unwrap_or('?');
            return Err(FieldError {
                code: 1207,
                reason: format!("Invalid digit, Value '{ch}', Pos {pos}, Type: {label}"),
                position: pos as i32,
            });
        }
        acc = acc * 10 + i128::from(d - b'0');
        if acc > i128::from(i64::MAX) + 1 {
            break;
        }
    }
    let v = if neg { -acc } else { acc };
    if v < i128::from(min) || v > i128::from(max) {
        return Err(fe(
            1222,
            format!("Overflow, Value '{text}', Pos 0, Type: {label} (valid range {min} to {max})"),
        ));
    }
    out.extend_from_slice(v.to_string().as_bytes());
    Ok(Out::Value)
}

/// DECIMAL(p, s): digits checked, excess scale truncated (or rounded with ROUNDEC), integer
/// digits within p - s (r_Numeric_types201; copy-parameters-data-conversion ROUNDEC).
fn decimal(
    text: &str,
    precision: u32,
    scale: u32,
    round: bool,
    out: &mut Vec<u8>,
) -> Result<Out, FieldError> {
    let b = text.as_bytes();
    let (neg, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut int_digits = String::new();
    let mut frac_digits = String::new();
    let mut seen_dot = false;
    while i < b.len() {
        match b[i] {
            d @ b'0'..=b'9' => {
                if seen_dot {
                    frac_digits.push(d as char)
                } else {
                    int_digits.push(d as char)
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(FieldError {
                    code: 1207,
                    reason: format!("Invalid digit, Value '{ch}', Pos {i}, Type: Decimal"),
                    position: i as i32,
                });
            }
        }
        i += 1;
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(fe(1209, format!("Invalid decimal value '{text}'")));
    }
    let int_part = int_digits.trim_start_matches('0');
    let mut frac: Vec<u8> = frac_digits.bytes().collect();
    let mut carry = false;
    if frac.len() > scale as usize {
        carry = round && frac[scale as usize] >= b'5';
        frac.truncate(scale as usize);
    }
    while frac.len() < scale as usize {
        frac.push(b'0');
    }
    // the unscaled digits, rounded up if needed
    let mut digits: Vec<u8> = int_part.bytes().chain(frac.iter().copied()).collect();
    if carry {
        let mut k = digits.len();
        loop {
            if k == 0 {
                digits.insert(0, b'1');
                break;
            }
            k -= 1;
            if digits[k] == b'9' {
                digits[k] = b'0';
            } else {
                digits[k] += 1;
                break;
            }
        }
    }
    let int_len = digits.len() - scale as usize;
    let significant_int = digits[..int_len].iter().skip_while(|d| **d == b'0').count();
    if significant_int > (precision - scale) as usize {
        return Err(fe(
            1204,
            format!("Numeric data overflow (result precision): '{text}' doesn't fit DECIMAL({precision},{scale})"),
        ));
    }
    // DECIMAL(19, s) is 64-bit: at most 9223372036854775807 unscaled (r_Numeric_types201)
    if precision == 19 {
        let unscaled: String = digits.iter().map(|d| *d as char).collect();
        let trimmed = unscaled.trim_start_matches('0');
        if trimmed.len() > 19 || (trimmed.len() == 19 && trimmed > "9223372036854775807") {
            return Err(fe(
                1204,
                format!("Numeric data overflow: '{text}' is above 9223372036854775807 unscaled for DECIMAL(19,{scale})"),
            ));
        }
    }
    let all_zero = digits.iter().all(|d| *d == b'0');
    if neg && !all_zero {
        out.push(b'-');
    }
    let ip: String = digits[..int_len].iter().map(|d| *d as char).collect();
    let ip = ip.trim_start_matches('0');
    out.extend_from_slice(if ip.is_empty() { b"0" } else { ip.as_bytes() });
    if scale > 0 {
        out.push(b'.');
        out.extend_from_slice(&digits[int_len..]);
    }
    Ok(Out::Value)
}

fn float(text: &str, single: bool, out: &mut Vec<u8>) -> Result<Out, FieldError> {
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "nan" | "infinity" | "+infinity" | "-infinity" | "inf" | "+inf" | "-inf"
    ) {
        out.extend_from_slice(text.as_bytes());
        return Ok(Out::Value);
    }
    let valid = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    let label = if single { "Real" } else { "Double" };
    let v: f64 = match text.parse::<f64>() {
        Ok(v) if valid => v,
        _ => {
            return Err(fe(
                1208,
                format!("Invalid float value '{text}', Type: {label}"),
            ));
        }
    };
    let nonzero_text = text
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    let overflow = if single {
        v.is_infinite() || (v as f32).is_infinite()
    } else {
        v.is_infinite()
    };
    let underflow = nonzero_text && if single { (v as f32) == 0.0 } else { v == 0.0 };
    if overflow || underflow {
        return Err(fe(
            1204,
            format!(
                "Value '{text}' is out of range for type {}",
                if single { "real" } else { "double precision" }
            ),
        ));
    }
    out.extend_from_slice(text.as_bytes());
    Ok(Out::Value)
}

/// BOOLEAN (r_Boolean_type): true/false, or the literals 't' 'true' 'y' 'yes' '1' and
/// 'f' 'false' 'n' 'no' '0'.
fn boolean(v: &Json, text: &str, out: &mut Vec<u8>) -> Result<Out, FieldError> {
    let t = match v {
        Json::Bool(b) => *b,
        _ => match text.to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "1" => true,
            "f" | "false" | "n" | "no" | "0" => false,
            _ => return Err(fe(1210, format!("Invalid boolean value '{text}'"))),
        },
    };
    out.push(if t { b't' } else { b'f' });
    Ok(Out::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            truncate_columns: false,
            empty_as_null: false,
            blanks_as_null: false,
            trim_blanks: false,
            round_dec: false,
            date_format: TimeFormat::Auto,
            time_format: TimeFormat::Auto,
        }
    }

    fn conv(oid: u32, typmod: i32, json: &str, o: &Options) -> Result<Option<String>, FieldError> {
        let rule = ColumnRule::new("c", oid, typmod, false);
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        let v = classify(&raw)?;
        let mut out = Vec::new();
        match convert(&rule, &v, o, &datetime::NoFallback, &mut out)? {
            Out::Value => Ok(Some(String::from_utf8(out).unwrap())),
            Out::Null => Ok(None),
        }
    }

    #[test]
    fn integers_check_digits_and_range() {
        assert_eq!(conv(23, -1, "42", &opts()).unwrap().as_deref(), Some("42"));
        assert_eq!(
            conv(23, -1, "\"-7\"", &opts()).unwrap().as_deref(),
            Some("-7")
        );
        assert_eq!(conv(21, -1, "32768", &opts()).unwrap_err().code, 1222);
        assert_eq!(conv(23, -1, "1.5", &opts()).unwrap_err().code, 1207);
        assert_eq!(
            conv(23, -1, "\"a\"", &opts()).unwrap_err().reason,
            "Invalid digit, Value 'a', Pos 0, Type: Integer"
        );
        assert_eq!(conv(20, -1, "\"\"", &opts()).unwrap(), None);
    }

    #[test]
    fn decimals_truncate_or_round_excess_scale() {
        let m = |p: i32, s: i32| ((p << 16) | s) + 4;
        assert_eq!(
            conv(1700, m(8, 2), "\"20.259\"", &opts())
                .unwrap()
                .as_deref(),
            Some("20.25")
        );
        let mut o = opts();
        o.round_dec = true;
        assert_eq!(
            conv(1700, m(8, 2), "\"20.259\"", &o).unwrap().as_deref(),
            Some("20.26")
        );
        assert_eq!(
            conv(1700, m(5, 2), "\"999.995\"", &o).unwrap_err().code,
            1204
        );
        assert_eq!(
            conv(1700, m(5, 2), "\"1000\"", &opts()).unwrap_err().code,
            1204
        );
        assert_eq!(
            conv(1700, m(19, 0), "\"9223372036854775808\"", &opts())
                .unwrap_err()
                .code,
            1204
        );
        assert_eq!(
            conv(1700, m(19, 0), "\"9223372036854775807\"", &opts())
                .unwrap()
                .as_deref(),
            Some("9223372036854775807")
        );
        assert_eq!(
            conv(1700, m(4, 2), "\"-0.001\"", &opts())
                .unwrap()
                .as_deref(),
            Some("0.00")
        );
    }

    #[test]
    fn varchar_counts_bytes_and_char_is_ascii() {
        let v = |n: i32| n + 4;
        assert_eq!(
            conv(1043, v(3), "\"日\"", &opts()).unwrap().as_deref(),
            Some("日")
        );
        assert_eq!(
            conv(1043, v(2), "\"日\"", &opts()).unwrap_err().reason,
            "String length exceeds DDL length"
        );
        let mut o = opts();
        o.truncate_columns = true;
        assert_eq!(
            conv(1043, v(4), "\"a日本\"", &o).unwrap().as_deref(),
            Some("a日")
        );
        let e = conv(1042, v(5), "\"é\"", &opts()).unwrap_err();
        assert_eq!(e.code, 1220);
        assert!(
            e.reason
                .starts_with("Multibyte character not supported for CHAR"),
            "{}",
            e.reason
        );
        assert_eq!(
            conv(1043, v(5), "\"a\\tb\"", &opts()).unwrap().as_deref(),
            Some("a\\tb")
        );
    }

    #[test]
    fn empty_strings() {
        assert_eq!(
            conv(1043, 14, "\"\"", &opts()).unwrap().as_deref(),
            Some("")
        );
        let mut o = opts();
        o.empty_as_null = true;
        assert_eq!(conv(1043, 14, "\"\"", &o).unwrap(), None);
        assert_eq!(conv(16, -1, "\"\"", &opts()).unwrap(), None);
        assert_eq!(conv(1082, -1, "\"\"", &opts()).unwrap(), None);
    }

    #[test]
    fn booleans() {
        assert_eq!(conv(16, -1, "true", &opts()).unwrap().as_deref(), Some("t"));
        assert_eq!(
            conv(16, -1, "\"no\"", &opts()).unwrap().as_deref(),
            Some("f")
        );
        assert_eq!(conv(16, -1, "\"maybe\"", &opts()).unwrap_err().code, 1210);
    }

    #[test]
    fn super_limits() {
        assert_eq!(
            conv(3802, -1, "{\"a\":[1,2]}", &opts()).unwrap().as_deref(),
            Some("{\"a\":[1,2]}")
        );
        assert_eq!(
            conv(3802, -1, "\"x\"", &opts()).unwrap().as_deref(),
            Some("\"x\"")
        );
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(65536));
        assert_eq!(conv(3802, -1, &long, &opts()).unwrap_err().code, 1204);
    }
}
