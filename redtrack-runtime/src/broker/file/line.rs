//! The line format of a shard file: one record per line,
//! `{"t":<ms>,"k":"<partition key>","d":"<text>"}`, or `"b":"<base64>"` instead of `"d"` for bytes
//! that are not one line of UTF-8; `t` is when the record was written (milliseconds since the
//! epoch), for the backlog's age and as the record's arrival time (the loader's dedupe window
//! counts in it), and lines written before it existed have none. Writing goes
//! through serde_json; reading takes the usual shape in one pass (unescaping as it checks) and
//! leaves anything else to serde_json.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::broker::{PutRecord, StoredRecord};
use crate::json_scan;

/// How many bytes of record data share one allocation.
const DATA_BLOCK: usize = 256 * 1024;

/// One line of a shard file.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    written_ms: Option<u64>,
    #[serde(rename = "k", borrow)]
    key: std::borrow::Cow<'a, str>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none", borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

/// One shard file line as a record whose sequence number is `seq`; its data is appended to
/// `data` and split off from it.
pub(super) fn parse_line(
    line: &[u8],
    seq: u64,
    data: &mut BytesMut,
) -> std::result::Result<StoredRecord, String> {
    if let Some((ms, key, text)) = split_plain_line(line) {
        if data.capacity() - data.len() < text.len() {
            data.reserve(DATA_BLOCK.max(text.len()));
        }
        // Written by `encode_line` in its usual shape: unescaped (and checked) in one pass
        // without building a JSON tree; anything unusual goes to the JSON parser below.
        if unescape_into(text, data) {
            return Ok(StoredRecord {
                sequence_number: seq.into(),
                partition_key: key.to_owned(),
                data: data.split().freeze(),
                approximate_arrival_timestamp: ms.and_then(arrival),
            });
        }
    }
    let l: Line<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let data = match (l.text, l.base64) {
        (Some(t), None) => Bytes::copy_from_slice(t.as_bytes()),
        (None, Some(b)) => Bytes::from(
            aws_smithy_types::base64::decode(b).map_err(|e| format!("bad base64: {e}"))?,
        ),
        _ => return Err("a line needs exactly one of `d` and `b`".into()),
    };
    Ok(StoredRecord {
        sequence_number: seq.into(),
        partition_key: l.key.into_owned(),
        data,
        approximate_arrival_timestamp: l.written_ms.and_then(arrival),
    })
}

/// The time of a line's `t`.
fn arrival(ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// The write time (if any), the key and the still escaped text of a line shaped
/// `{"t":<ms>,"k":"<key>","d":"<text>"}` (or without `"t"`) whose key is printable ASCII (DEL
/// included) without escapes; `None` for any other line.
fn split_plain_line(line: &[u8]) -> Option<(Option<u64>, &str, &[u8])> {
    const HEAD: &[u8] = b"{\"k\":";
    const MID: &[u8] = b",\"d\":\"";
    const TAIL: &[u8] = b"\"}";
    let (ms, rest) = match written_ms(line) {
        Some((ms, after)) => (Some(ms), after.strip_prefix(&HEAD[1..])?),
        None => (None, line.strip_prefix(HEAD)?),
    };
    let key_end = json_scan::plain_string_end(rest, 0)?;
    let key = &rest[1..key_end];
    let text = rest[key_end + 1..].strip_prefix(MID)?.strip_suffix(TAIL)?;
    // Printable ASCII (checked by the scanner) is UTF-8.
    let key = std::str::from_utf8(key).ok()?;
    Some((ms, key, text))
}

/// The write time of a line that begins `{"t":<digits>,`, and the rest of the line after the
/// comma.
pub(super) fn written_ms(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"{\"t\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let ms = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some((ms, rest[digits..].strip_prefix(b",")?))
}

/// Appends the JSON string body `text` unescaped to `out`, if it is printable ASCII (or UTF-8)
/// whose only escapes are `\"` and `\\` and which holds no unescaped `"`; `false` (and `out`
/// as it was) otherwise.
fn unescape_into(text: &[u8], out: &mut BytesMut) -> bool {
    let at = out.len();
    out.resize(at + text.len(), 0);
    let dst = &mut out[at..];
    // One pass, copying as it checks: bit 0 of `bad` marks a control character or a bare
    // quote, bit 7 a byte that is not ASCII.
    let mut bad = 0u8;
    let (mut i, mut j) = (0, 0);
    while i < text.len() {
        // Eight plain bytes at a time while there are.
        if let Some(word) = text.get(i..i + 8) {
            if !json_scan::has_special_byte(u64::from_le_bytes(word.try_into().unwrap_or_default()))
            {
                dst[j..j + 8].copy_from_slice(word);
                i += 8;
                j += 8;
                continue;
            }
        }
        let c = text[i];
        if c == b'\\' {
            match text.get(i + 1) {
                Some(&e @ (b'"' | b'\\')) => {
                    dst[j] = e;
                    j += 1;
                    i += 2;
                    continue;
                }
                _ => {
                    bad |= 1;
                    break;
                }
            }
        }
        bad |= u8::from(c < 0x20 || c == b'"') | (c & 0x80);
        dst[j] = c;
        j += 1;
        i += 1;
    }
    let ok = bad & 1 == 0 && (bad == 0 || std::str::from_utf8(text).is_ok());
    out.truncate(if ok { at + j } else { at });
    ok
}

/// Appends `r` as one line, written at `written_ms` (milliseconds since the epoch).
pub(super) fn encode_line(r: &PutRecord, written_ms: u64, out: &mut Vec<u8>) {
    let text = std::str::from_utf8(&r.data)
        .ok()
        .filter(|t| !t.contains(['\n', '\r']));
    let line = Line {
        written_ms: Some(written_ms),
        key: r.partition_key.as_str().into(),
        text: text.map(Into::into),
        base64: match text {
            Some(_) => None,
            None => Some(aws_smithy_types::base64::encode(&r.data)),
        },
    };
    // Serializing strings into a Vec cannot fail; JSON escapes keep the line on one line.
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, d: &[u8]) -> PutRecord {
        PutRecord {
            partition_key: k.into(),
            data: Bytes::copy_from_slice(d),
        }
    }

    #[test]
    fn fast_line_parser_agrees_with_json() {
        let datas: Vec<&[u8]> = vec![
            b"{\"a\":1}",
            b"{\"q\":\"say \\\"hi\\\" \\\\ there\"}",
            b"{\"t\":\"tab\there\"}",
            b"{\"u\":\"\\u00e9 \xc3\xa9 \xe2\x82\xac\"}",
            b"\"",
            b"\\",
            b"",
            b"/ \x7f",
            &[0xF3, b'\n', 0],
            b"\xff\xfe",
            b"line\rbreak",
            b"{\"long\":\"abcdefghijklmnop\\\"qrstuvwxyz0123456789\\\\ABCDEFGH\\\"\"}",
            b"abcdefghijklmno\xc3\xa9pqrstuvwxyz",
            b"abcdefghijklmno\tpqrstuvwxyz",
        ];
        let keys = ["k", "tab\t\"k\"", "\u{e9}t\u{e9}", "a\\b", "\u{1}"];
        for data in datas {
            for key in keys {
                let r = rec(key, data);
                let mut line = Vec::new();
                encode_line(&r, 1_764_500_000_123, &mut line);
                let line = &line[..line.len() - 1];
                let mut buf = BytesMut::new();
                let got = parse_line(line, 7, &mut buf).unwrap();
                assert_eq!(got.data, r.data, "data of {line:?}");
                assert_eq!(got.partition_key, r.partition_key, "key of {line:?}");
                assert_eq!(got.sequence_number, "7");
                assert_eq!(
                    got.approximate_arrival_timestamp
                        .map(|t| t.timestamp_millis()),
                    Some(1_764_500_000_123),
                    "time of {line:?}"
                );
            }
        }
        // Lines the fast path refuses still fail (or parse) as JSON says.
        let mut buf = BytesMut::new();
        assert!(parse_line(b"{\"k\":\"a\",\"d\":\"x\"y\"}", 1, &mut buf).is_err());
        assert!(parse_line(b"{\"k\":\"a\",\"d\":\"\xff\"}", 1, &mut buf).is_err());
        assert!(parse_line(b"{\"k\":\"a\",\"d\":\"x\\\"}", 1, &mut buf).is_err());
        let r = parse_line(b"{\"d\":\"x\\/y\",\"k\":\"a\"}", 1, &mut buf).unwrap();
        assert_eq!(&r.data[..], b"x/y");
        // Lines written before the write time was kept still read, by either path.
        let r = parse_line(b"{\"k\":\"a\",\"d\":\"{}\"}", 1, &mut buf).unwrap();
        assert_eq!((&r.data[..], r.partition_key.as_str()), (&b"{}"[..], "a"));
        assert_eq!(r.approximate_arrival_timestamp, None);
        let mut line = Vec::new();
        encode_line(&rec("k", b"{}"), 42, &mut line);
        assert_eq!(line, b"{\"t\":42,\"k\":\"k\",\"d\":\"{}\"}\n");
        assert_eq!(written_ms(&line).map(|(t, _)| t), Some(42));
    }
}
