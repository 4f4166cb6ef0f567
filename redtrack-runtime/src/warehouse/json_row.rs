//! One staged JSON line as one row of PostgreSQL's COPY text format, with COPY JSON 'auto''s
//! meaning: first-level keys matched to the column names, a missing key NULL, extra keys
//! ignored. Scalars go in as their exact text (the column type's input function parses them,
//! as `jsonb_populate_record` does, so no digit is lost); a SUPER (jsonb) column gets the
//! value's JSON text.
//!
//! Used by the PostgreSQL warehouse's fast path; a row that PostgreSQL then refuses sends the
//! load down the row-by-row path, which finds and rejects it.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::value::RawValue;

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
pub(crate) fn push_copy_row(out: &mut BytesMut, columns: &[Column], line: &[u8]) -> bool {
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
}
