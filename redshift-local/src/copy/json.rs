//! COPY's JSON data files (copy-parameters-data-format, "JSON data file"): a stream of
//! root-level objects separated by white space only, each at most 4 MB, each one row; the
//! line number of a row is the last line of its object. Objects are converted into rows of
//! PostgreSQL's COPY text format.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::convert::{self, classify, ColumnRule, FieldError, Json, Options, Out};
use super::datetime::Fallback;

/// The largest JSON object or array, braces included (copy-parameters-data-format).
pub const MAX_OBJECT: usize = 4 * 1024 * 1024;

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete object and the line its closing brace is on.
    Object(&'a [u8], u64),
    /// A root-level array (needs a JSONPaths file), and its last line.
    Array(&'a [u8], u64),
    /// Characters that are not white space between objects, and their line.
    Junk(&'a [u8], u64),
    /// An object that never closed before the end of the file.
    Unterminated(&'a [u8], u64),
}

/// Splits a byte stream into root-level JSON values, keeping the scan state between chunks.
/// Input is read straight into its buffer ([`Framer::fill`]).
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    line: u64,
    // the value being scanned
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escape: bool,
    lines_in_value: u64,
    skip_lines: u64,
}

/// How much the framer reads at a time.
const READ_SIZE: usize = 256 * 1024;

impl Framer {
    /// A framer that first skips `ignore_header` lines (IGNOREHEADER).
    pub fn new(ignore_header: u64) -> Framer {
        Framer {
            line: 1,
            skip_lines: ignore_header,
            ..Framer::default()
        }
    }

    /// Drops consumed bytes and makes room for at least `want` more.
    fn make_room(&mut self, want: usize) {
        let keep_from = self.start.unwrap_or(self.pos);
        if keep_from > 0 {
            self.buf.copy_within(keep_from..self.len, 0);
            self.len -= keep_from;
            self.pos -= keep_from;
            if let Some(s) = self.start.as_mut() {
                *s -= keep_from;
            }
        }
        if self.buf.len() < self.len + want {
            self.buf.resize(self.len + want, 0);
        }
    }

    /// Reads the next piece of input straight into the buffer; 0 at the end of the input.
    pub fn fill(&mut self, r: &mut dyn std::io::Read) -> std::io::Result<usize> {
        if self.buf.len() - self.len < READ_SIZE / 4 {
            self.make_room(READ_SIZE);
        }
        let n = r.read(&mut self.buf[self.len..])?;
        self.len += n;
        Ok(n)
    }

    /// Appends bytes (for tests).
    #[cfg(test)]
    pub fn push(&mut self, data: &[u8]) {
        self.make_room(data.len());
        self.buf[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    /// The size of the value being scanned, if one is open.
    pub fn open_value_len(&self) -> usize {
        self.start.map_or(0, |s| self.len - s)
    }

    /// The next item, or `None` when more input is needed (`eof` false) or there is none left.
    pub fn next_item(&mut self, eof: bool) -> Option<Item<'_>> {
        let len = self.len;
        let b = &self.buf[..len];
        while self.skip_lines > 0 && self.pos < len {
            if b[self.pos] == b'\n' {
                self.skip_lines -= 1;
                self.line += 1;
            }
            self.pos += 1;
        }
        if self.skip_lines > 0 {
            return None;
        }
        if self.start.is_none() {
            // white space, then a value or junk
            while self.pos < len && b[self.pos].is_ascii_whitespace() {
                if b[self.pos] == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            }
            if self.pos >= len {
                return None;
            }
            let c = b[self.pos];
            if c != b'{' && c != b'[' {
                let start = self.pos;
                while self.pos < len
                    && !b[self.pos].is_ascii_whitespace()
                    && b[self.pos] != b'{'
                    && b[self.pos] != b'['
                {
                    self.pos += 1;
                }
                if self.pos >= len && !eof {
                    // the run may go on in the next chunk
                    self.pos = start;
                    return None;
                }
                return Some(Item::Junk(&self.buf[start..self.pos], self.line));
            }
            self.start = Some(self.pos);
            self.depth = 0;
            self.in_string = false;
            self.escape = false;
            self.lines_in_value = 0;
        }
        let start = self.start.unwrap_or(self.pos);
        while self.pos < len {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    self.pos += 1;
                    continue;
                }
                // to the string's next quote or backslash (a plain loop: this crate is
                // optimized in debug builds, its dependencies are not)
                let rest = &b[self.pos..];
                let mut k = 0;
                while k < rest.len() && rest[k] != b'"' && rest[k] != b'\\' {
                    if rest[k] == b'\n' {
                        self.lines_in_value += 1;
                    }
                    k += 1;
                }
                if k < rest.len() {
                    if rest[k] == b'\\' {
                        self.escape = true;
                    } else {
                        self.in_string = false;
                    }
                    k += 1;
                }
                self.pos += k;
                continue;
            }
            let c = b[self.pos];
            self.pos += 1;
            match c {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.start = None;
                        self.line += self.lines_in_value;
                        let v = &self.buf[start..self.pos];
                        return Some(if v[0] == b'{' {
                            Item::Object(v, self.line)
                        } else {
                            Item::Array(v, self.line)
                        });
                    }
                }
                b'\n' => self.lines_in_value += 1,
                _ => {}
            }
        }
        if eof {
            self.start = None;
            self.line += self.lines_in_value;
            return Some(Item::Unterminated(&self.buf[start..len], self.line));
        }
        None
    }
}

/// A JSON object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The top-level fields of an object, in order.
struct Fields<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some((k, v)) = m.next_entry::<Key<'de>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Why a row was rejected.
#[derive(Debug, Clone)]
pub struct RowError {
    /// The column (empty when the whole object is at fault).
    pub column: Option<usize>,
    /// The error.
    pub error: FieldError,
    /// The field's raw text.
    pub raw_field: String,
    /// A NULL into a NOT NULL column: the COPY fails whatever MAXERROR says
    /// (copy-parameters-data-format: "the COPY command fails").
    pub fatal: bool,
}

/// Converts objects into COPY text rows for one table.
pub struct RowWriter {
    /// The columns loaded, in COPY order.
    pub columns: Vec<ColumnRule>,
    by_name: HashMap<String, usize>,
    ignorecase: bool,
    accept_inv_chars: Option<u8>,
    opts: Options,
}

impl RowWriter {
    /// A writer for `columns`.
    pub fn new(
        columns: Vec<ColumnRule>,
        ignorecase: bool,
        accept_inv_chars: Option<u8>,
        opts: Options,
    ) -> RowWriter {
        let by_name = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        RowWriter {
            columns,
            by_name,
            ignorecase,
            accept_inv_chars,
            opts,
        }
    }

    /// Converts one object and appends its row to `out`; on error `out` is left as it was.
    pub fn object(
        &self,
        obj: &[u8],
        fallback: &dyn Fallback,
        out: &mut Vec<u8>,
    ) -> Result<(), RowError> {
        let whole = |code: i32, reason: String| RowError {
            column: None,
            error: FieldError {
                code,
                reason,
                position: 0,
            },
            raw_field: String::new(),
            fatal: false,
        };
        // invalid UTF-8: replaced byte for byte (ACCEPTINVCHARS), or remembered to reject the
        // column it is in (copy-parameters-data-conversion; multi-byte-character-load-errors)
        let mut invalid: Vec<usize> = Vec::new();
        let fixed: Cow<[u8]> = match std::str::from_utf8(obj) {
            Ok(_) => Cow::Borrowed(obj),
            Err(_) => {
                let mut v = obj.to_vec();
                let mut i = 0;
                while i < v.len() {
                    match std::str::from_utf8(&v[i..]) {
                        Ok(_) => break,
                        Err(e) => {
                            let bad = i + e.valid_up_to();
                            let len = e.error_len().unwrap_or(v.len() - bad);
                            for (k, byte) in v.iter_mut().enumerate().skip(bad).take(len) {
                                invalid.push(k);
                                *byte = self.accept_inv_chars.unwrap_or(b'?');
                            }
                            i = bad + len;
                        }
                    }
                }
                Cow::Owned(v)
            }
        };
        let fields: Fields = serde_json::from_slice(&fixed)
            .map_err(|e| whole(1224, format!("Malformed JSON: {e}")))?;
        let mut values: Vec<Option<&RawValue>> = vec![None; self.columns.len()];
        for (k, v) in &fields.0 {
            let idx = if self.ignorecase {
                self.by_name.get(&k.0.to_lowercase())
            } else {
                self.by_name.get(k.0.as_ref())
            };
            if let Some(&i) = idx {
                values[i] = Some(v);
            }
        }
        let base = fixed.as_ptr() as usize;
        let row_start = out.len();
        for (i, rule) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let raw = values[i];
            let fail = |out: &mut Vec<u8>, error: FieldError, raw_field: String, fatal: bool| {
                out.truncate(row_start);
                RowError {
                    column: Some(i),
                    error,
                    raw_field,
                    fatal,
                }
            };
            if let Some(r) = raw {
                let s = r.get();
                let at = s.as_ptr() as usize - base;
                let span = at..at + s.len();
                if let Some(&bad) = invalid.iter().find(|k| span.contains(k)) {
                    let hex = format!("{:02x}", obj[bad]);
                    let raw_field = String::from_utf8_lossy(&obj[span.clone()]).into_owned();
                    if rule.kind == convert::Kind::Char {
                        return Err(fail(
                            out,
                            FieldError {
                                code: 1220,
                                reason: format!(
                                    "Multibyte character not supported for CHAR (Hint: Try using VARCHAR). Invalid char: {hex}"
                                ),
                                position: (bad - at) as i32,
                            },
                            raw_field,
                            false,
                        ));
                    }
                    if self.accept_inv_chars.is_none() {
                        return Err(fail(
                            out,
                            FieldError {
                                code: 1220,
                                reason: format!(
                                    "String contains invalid or unsupported UTF8 codepoints. Bad UTF8 hex sequence: {hex}"
                                ),
                                position: (bad - at) as i32,
                            },
                            raw_field,
                            false,
                        ));
                    }
                }
            }
            let v = match raw {
                None => Json::Missing,
                Some(r) => match classify(r) {
                    Ok(v) => v,
                    Err(e) => return Err(fail(out, e, r.get().to_owned(), false)),
                },
            };
            match convert::convert(rule, &v, &self.opts, fallback, out) {
                Ok(Out::Value) => {}
                Ok(Out::Null) => {
                    if rule.notnull {
                        match &rule.default {
                            Some(d) => convert::push_escaped(out, d.as_bytes()),
                            None => {
                                return Err(fail(
                                    out,
                                    FieldError {
                                        code: 1213,
                                        reason: "Missing data for not-null field".into(),
                                        position: 0,
                                    },
                                    String::new(),
                                    true,
                                ))
                            }
                        }
                    } else {
                        out.extend_from_slice(b"\\N");
                    }
                }
                Err(e) => {
                    let raw_field = convert::raw_text(&v).into_owned();
                    return Err(fail(out, e, raw_field, false));
                }
            }
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::command::TimeFormat;
    use crate::copy::datetime::NoFallback;

    fn items(chunks: &[&str]) -> Vec<String> {
        let mut f = Framer::new(0);
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            f.push(c.as_bytes());
            let eof = i + 1 == chunks.len();
            while let Some(item) = f.next_item(eof) {
                out.push(match item {
                    Item::Object(o, l) => format!("O{l}:{}", String::from_utf8_lossy(o)),
                    Item::Array(o, l) => format!("A{l}:{}", String::from_utf8_lossy(o)),
                    Item::Junk(o, l) => format!("J{l}:{}", String::from_utf8_lossy(o)),
                    Item::Unterminated(o, l) => format!("U{l}:{}", String::from_utf8_lossy(o)),
                });
            }
        }
        out
    }

    #[test]
    fn objects_split_across_chunks_keep_their_last_line() {
        assert_eq!(
            items(&["{\"a\":\"}{\"}\n{\"b\":", "\n1}\n x {\"c\":[1]}\n[1] {"]),
            [
                "O1:{\"a\":\"}{\"}",
                "O3:{\"b\":\n1}",
                "J4:x",
                "O4:{\"c\":[1]}",
                "A5:[1]",
                "U5:{"
            ]
        );
    }

    #[test]
    fn keys_match_case_sensitively_unless_ignorecase() {
        let opts = Options {
            truncate_columns: false,
            empty_as_null: false,
            blanks_as_null: false,
            trim_blanks: false,
            round_dec: false,
            date_format: TimeFormat::Auto,
            time_format: TimeFormat::Auto,
        };
        let cols = vec![
            ColumnRule::new("id", 23, -1, false),
            ColumnRule::new("name", 1043, 14, false),
        ];
        let w = RowWriter::new(cols.clone(), false, None, opts);
        let mut out = Vec::new();
        w.object(
            br#"{"ID": 1, "name": "x", "extra": {"y": 1}}"#,
            &NoFallback,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"\\N\tx\n");
        let w = RowWriter::new(cols, true, None, opts);
        out.clear();
        w.object(br#"{"ID": 1, "Name": "x"}"#, &NoFallback, &mut out)
            .unwrap();
        assert_eq!(out, b"1\tx\n");
        // invalid UTF-8 in a VARCHAR is 1220 without ACCEPTINVCHARS
        let e = w
            .object(b"{\"id\": 2, \"name\": \"a\xa4b\"}", &NoFallback, &mut out)
            .unwrap_err();
        assert_eq!(e.error.code, 1220);
        assert_eq!(e.column, Some(1));
        let w2 = RowWriter::new(w.columns.clone(), true, Some(b'^'), opts);
        out.clear();
        w2.object(b"{\"id\": 2, \"name\": \"a\xa4b\"}", &NoFallback, &mut out)
            .unwrap();
        assert_eq!(out, b"2\ta^b\n");
    }
}
