//! Staged lines as COPY rows: the raw CSV row of the temporary table, and a line as a row of
//! the table in COPY's text format with COPY JSON 'auto''s meaning (first-level keys matched to
//! the column names, a missing key NULL, extra keys ignored). Scalars go in as their exact text
//! (the column type's input function parses them, as `jsonb_populate_record` does, so no digit
//! is lost); a SUPER (jsonb) column gets the value's JSON text.
//!
//! [`push_flat_row`] reads the usual line (a flat object of plain values) with the runtime's JSON
//! scanner; [`push_copy_row`] reads any other through serde_json. A row that PostgreSQL then
//! refuses sends the load down the row-by-row path, which finds and rejects it.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::value::RawValue;

use crate::json_scan;
use crate::schema::{Column, SqlType};

/// A value as it goes into a COPY cell.
#[derive(Debug)]
enum Cell<'de> {
    Null,
    Text(Cow<'de, str>),
}

/// A key or string, borrowed from the input when it has no escapes.
struct Str<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads one JSON object into cells in column order.
struct Row<'a, 'de> {
    columns: &'a [Column],
    cells: &'a mut Vec<Cell<'de>>,
}

impl<'de> DeserializeSeed<'de> for Row<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match self.columns.iter().position(|c| c.name == key.0) {
                Some(i) => {
                    // The value's exact text: numbers keep every digit, as in jsonb.
                    let raw: &'de RawValue = map.next_value()?;
                    let super_column = self.columns[i].sql_type == SqlType::Super;
                    // A later duplicate key wins, as in jsonb.
                    self.cells[i] = cell(raw.get(), super_column).map_err(de::Error::custom)?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The COPY cell of one JSON value's text (`raw` is valid JSON: the parser checked it).
fn cell(raw: &str, super_column: bool) -> Result<Cell<'_>, serde_json::Error> {
    Ok(match raw.as_bytes().first() {
        Some(b'n') => Cell::Null,
        _ if super_column => Cell::Text(Cow::Borrowed(raw)),
        Some(b'"') => {
            let inner = &raw[1..raw.len() - 1];
            if inner.contains('\\') {
                Cell::Text(Cow::Owned(serde_json::from_str::<String>(raw)?))
            } else {
                Cell::Text(Cow::Borrowed(inner))
            }
        }
        // Numbers, booleans, and objects or arrays (whose JSON text the column's type then
        // accepts or refuses).
        _ => Cell::Text(Cow::Borrowed(raw)),
    })
}

/// Appends `line` (one JSON object) as a COPY text row of `columns` to `out`; `false` (and
/// nothing appended) if it is not a JSON object.
pub(super) fn push_copy_row(out: &mut BytesMut, columns: &[Column], line: &[u8]) -> bool {
    let mut cells: Vec<Cell<'_>> = Vec::with_capacity(columns.len());
    cells.resize_with(columns.len(), || Cell::Null);
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed = Row {
        columns,
        cells: &mut cells,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if parsed.is_err() {
        return false;
    }
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.put_u8(b'\t');
        }
        match cell {
            Cell::Null => out.put_slice(b"\\N"),
            Cell::Text(s) => escape_into(out, s),
        }
    }
    out.put_u8(b'\n');
    true
}

/// COPY text escaping: backslash, newline, carriage return and tab.
fn escape_into(out: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(esc);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
}

/// Appends one staged line as a CSV row `file \x02 line \x02 \x01doc\x01`. Valid JSON never
/// holds a raw control character, so neither the delimiter nor the quote can occur in `doc`.
pub(super) fn push_row(out: &mut BytesMut, file_no: usize, line_no: u64, doc: &[u8]) {
    let mut num = itoa::Buffer::new();
    out.put_slice(num.format(file_no).as_bytes());
    out.put_u8(0x02);
    out.put_slice(num.format(line_no).as_bytes());
    out.put_slice(b"\x02\x01");
    out.put_slice(doc);
    out.put_slice(b"\x01\n");
}

/// The quick way to [`push_copy_row`] for the usual line: a flat JSON object whose keys and
/// string values are printable ASCII without escapes, and whose other values are numbers,
/// `true`, `false` or `null`, with no SUPER column among the keys that match. Such values go
/// into a COPY text row as they stand (nothing in them needs COPY escaping). `None`, with
/// nothing appended, for any other line, which `push_copy_row` then reads.
pub(super) fn push_flat_row(
    out: &mut BytesMut,
    columns: &[Column],
    line: &[u8],
    cells: &mut Vec<Option<(usize, usize)>>,
) -> Option<()> {
    use json_scan::{literal_end, number_end, plain_string_end, skip_ws};
    let ws = |i: usize| skip_ws(line, i);
    // A string without escapes starting at `i`: its body's span.
    let plain_string = |i: usize| plain_string_end(line, i).map(|end| (i + 1, end));
    cells.clear();
    cells.resize(columns.len(), None);
    let mut next_column = 0;
    let mut i = ws(0);
    (line.get(i) == Some(&b'{')).then_some(())?;
    i = ws(i + 1);
    if line.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key = plain_string(i)?;
            i = ws(key.1 + 1);
            (line.get(i) == Some(&b':')).then_some(())?;
            i = ws(i + 1);
            let value = match *line.get(i)? {
                b'"' => {
                    let body = plain_string(i)?;
                    i = body.1 + 1;
                    Some(body)
                }
                b'n' => {
                    i = literal_end(line, i)?;
                    None
                }
                b't' | b'f' => {
                    let end = literal_end(line, i)?;
                    let span = (i, end);
                    i = end;
                    Some(span)
                }
                b'-' | b'0'..=b'9' => {
                    let end = number_end(line, i)?;
                    let span = (i, end);
                    i = end;
                    Some(span)
                }
                _ => return None,
            };
            let name = &line[key.0..key.1];
            // Keys usually come in column order (redtrack's encoder writes them so): try the
            // column after the last one matched first.
            let matched = match columns.get(next_column) {
                Some(c) if c.name.as_bytes() == name => Some(next_column),
                _ => columns.iter().position(|c| c.name.as_bytes() == name),
            };
            if let Some(c) = matched {
                next_column = c + 1;
                if columns[c].sql_type == SqlType::Super {
                    return None;
                }
                // A later duplicate key wins, as in jsonb.
                cells[c] = value;
            }
            i = ws(i);
            match *line.get(i)? {
                b',' => i = ws(i + 1),
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (ws(i) == line.len()).then_some(())?;
    for (n, cell) in cells.iter().enumerate() {
        if n > 0 {
            out.put_u8(b'\t');
        }
        match cell {
            None => out.put_slice(b"\\N"),
            Some((a, b)) => out.put_slice(&line[*a..*b]),
        }
    }
    out.put_u8(b'\n');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[Column] = &[
        Column {
            name: "a",
            sql_type: SqlType::Integer,
            nullable: true,
            encode: None,
        },
        Column {
            name: "b",
            sql_type: SqlType::Varchar { len: 10 },
            nullable: true,
            encode: None,
        },
        Column {
            name: "s",
            sql_type: SqlType::Super,
            nullable: true,
            encode: None,
        },
    ];

    fn row(line: &str) -> Option<String> {
        let mut out = BytesMut::new();
        push_copy_row(&mut out, COLS, line.as_bytes())
            .then(|| String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn columns_by_key_missing_null_extra_ignored() {
        assert_eq!(
            row(r#"{"b":"x","a":1,"zz":[1,{"q":2}]}"#).unwrap(),
            "1\tx\t\\N\n"
        );
        assert_eq!(row(r#"{}"#).unwrap(), "\\N\t\\N\t\\N\n");
        assert_eq!(row(r#"{"A":1}"#).unwrap(), "\\N\t\\N\t\\N\n");
    }

    #[test]
    fn escapes_and_types() {
        assert_eq!(
            row(r#"{"a":1.5,"b":"t\tn\nb\\ \"q\" é","s":"str"}"#).unwrap(),
            "1.5\tt\\tn\\nb\\\\ \"q\" é\t\"str\"\n"
        );
        assert_eq!(
            row(r#"{"a":true,"b":null,"s":{"k":[1,null]}}"#).unwrap(),
            "true\t\\N\t{\"k\":[1,null]}\n"
        );
        assert_eq!(row(r#"{"b":{"x":1}}"#).unwrap(), "\\N\t{\"x\":1}\t\\N\n");
    }

    #[test]
    fn not_an_object() {
        assert_eq!(row("[1]"), None);
        assert_eq!(row("{\"a\":1} x"), None);
    }

    #[test]
    fn flat_rows_as_push_copy_row_writes_them() {
        let col = |name, sql_type| Column {
            name,
            sql_type,
            nullable: true,
            encode: None,
        };
        let columns = [
            col("a", SqlType::Integer),
            col("b", SqlType::Varchar { len: 10 }),
            col("c", SqlType::Boolean),
            col("s", SqlType::Super),
        ];
        let check = |line: &str| -> bool {
            let mut fast = BytesMut::new();
            let mut cells = Vec::new();
            let quick = push_flat_row(&mut fast, &columns, line.as_bytes(), &mut cells);
            if quick.is_none() {
                assert!(fast.is_empty(), "{line:?}");
                return false;
            }
            let mut slow = BytesMut::new();
            assert!(
                push_copy_row(&mut slow, &columns, line.as_bytes()),
                "{line:?}"
            );
            assert_eq!(fast, slow, "{line:?}");
            true
        };
        for line in [
            r#"{"a":1,"b":"x y","c":true}"#,
            r#" { "b" : "" , "a" : -1.5e+3 , "zz" : 7 , "c" : false } "#,
            r#"{"a":null,"b":"q","a":2}"#,
            r#"{}"#,
            r#"{"A":1,"b":"~!"}"#,
        ] {
            assert!(check(line), "{line}");
        }
        for line in [
            r#"{"s":1}"#,
            r#"{"b":"x\"y"}"#,
            r#"{"b":"é"}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{}}"#,
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"[1]"#,
            r#"{"a":tru}"#,
            "{\"b\":\"\t\"}",
            r#"{"a\"":1}"#,
        ] {
            assert!(!check(line), "{line}");
        }
        let tokens: &[&str] = &[
            "{", "}", "[", "]", ",", ":", " ", "\"", "\"a\"", "\"b\"", "\"s\"", "\\", "1", "0",
            "-", ".", "e", "+", "true", "null", "false", "x", "\t", "é", "\"v\"",
        ];
        let mut quick = 0;
        for _ in 0..200_000 {
            let n = rand::random_range(1..14);
            let line: String = (0..n)
                .map(|_| tokens[rand::random_range(0..tokens.len())])
                .collect();
            quick += usize::from(check(&line));
        }
        assert!(quick > 10, "the soup should hold some flat rows ({quick})");
        let keys = ["\"a\"", "\"b\"", "\"c\"", "\"zz\"", "\"A\""];
        let values = [
            "1", "-2.5", "0e1", "\"x\"", "\"\"", "null", "true", "false", "\"1 2\"",
        ];
        for _ in 0..20_000 {
            let n = rand::random_range(0..6);
            let pairs: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "{}:{}",
                        keys[rand::random_range(0..keys.len())],
                        values[rand::random_range(0..values.len())]
                    )
                })
                .collect();
            let line = format!("{{{}}}", pairs.join(","));
            assert!(check(&line), "{line}");
        }
    }

    #[test]
    fn csv_rows() {
        let mut out = BytesMut::new();
        push_row(&mut out, 3, 120, br#"{"a":"x,y\"z"}"#);
        assert_eq!(&out[..], b"3\x02120\x02\x01{\"a\":\"x,y\\\"z\"}\x01\n");
    }
}
