//! The one JSON scanner of the runtime: quick checks and spans over the plain JSON events usually
//! are, eight bytes at a time where it can. Each function follows JSON's grammar as serde_json
//! reads it and returns `None` for anything it leaves to serde_json (escapes it does not handle,
//! bytes beyond ASCII in strings, deep nesting), never a wrong answer.
//!
//! Used by the file broker's line reader, the stager's check of each event and the PostgreSQL
//! warehouse's fast COPY rows.

/// Whether any of the eight bytes of `w` (little-endian) is a control character, `"`, `\\` or
/// not ASCII: the bytes that end a plain run inside a JSON string.
pub(crate) fn has_special_byte(w: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // `x - n` borrows into a byte's high bit where that byte of `x` is below `n`.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    (below(w, 0x20) | below(quote, 1) | below(backslash, 1) | (w & HIGH)) != 0
}

/// The eight bytes of `b` from `i` as a little-endian word, if there are eight.
#[inline]
pub(crate) fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// How many bytes from `i` on are plain string bytes (none special, see [`has_special_byte`]),
/// counted eight at a time: a lower bound a scanner can skip.
#[inline]
pub(crate) fn plain_run(b: &[u8], mut i: usize) -> usize {
    let start = i;
    while let Some(w) = word_at(b, i) {
        if has_special_byte(w) {
            break;
        }
        i += 8;
    }
    i - start
}

/// The index after JSON whitespace from `i`.
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        i += 1;
    }
    i
}

/// The index of the closing quote of the string starting at `b[i]` (a `"`), if its body is
/// printable ASCII (DEL included) without escapes: the body is `b[i + 1..end]` as it stands.
pub(crate) fn plain_string_end(b: &[u8], i: usize) -> Option<usize> {
    (b.get(i) == Some(&b'"')).then_some(())?;
    let mut end = i + 1;
    loop {
        end += plain_run(b, end);
        match *b.get(end)? {
            b'"' => return Some(end),
            c @ 0x20..=0x7f if c != b'\\' => end += 1,
            _ => return None,
        }
    }
}

/// The index after the JSON string starting at `b[i]`, if it is printable ASCII with
/// single-character escapes (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`).
pub(crate) fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    (b.get(i) == Some(&b'"')).then_some(())?;
    i += 1;
    loop {
        i += plain_run(b, i);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                _ => return None,
            },
            0x20..=0x7f => i += 1,
            _ => return None,
        }
    }
}

/// The index after the JSON number starting at `b[i]`:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(crate) fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match *b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Some(i)
}

/// The index after `true`, `false` or `null` starting at `b[i]`.
pub(crate) fn literal_end(b: &[u8], i: usize) -> Option<usize> {
    let word: &[u8] = match b.get(i)? {
        b't' => b"true",
        b'f' => b"false",
        b'n' => b"null",
        _ => return None,
    };
    b[i..].starts_with(word).then_some(i + word.len())
}

/// The index after the one JSON value that `b` holds (whitespace around it allowed), if it is
/// made of what this module reads (nesting up to 64 levels); `Some(b.len())` means `b` is one
/// JSON value.
pub(crate) fn value_end(b: &[u8]) -> Option<usize> {
    let ws = |i: usize| skip_ws(b, i);
    let mut open = [0u8; 64];
    let mut depth = 0;
    let mut i = ws(0);
    loop {
        // A value at `i`.
        match *b.get(i)? {
            c @ (b'{' | b'[') => {
                *open.get_mut(depth)? = c;
                depth += 1;
                i = ws(i + 1);
                if b.get(i) == Some(&(c + 2)) {
                    // `{}` or `[]` (`}` and `]` are two past their openers).
                    depth -= 1;
                    i += 1;
                } else if c == b'{' {
                    i = ws(string_end(b, i)?);
                    (b.get(i) == Some(&b':')).then_some(())?;
                    i = ws(i + 1);
                    continue;
                } else {
                    continue;
                }
            }
            b'"' => i = string_end(b, i)?,
            b'-' | b'0'..=b'9' => i = number_end(b, i)?,
            _ => i = literal_end(b, i)?,
        }
        // After a value: separators and closers until the next value, or the end.
        loop {
            i = ws(i);
            if depth == 0 {
                return Some(i);
            }
            match (open[depth - 1], *b.get(i)?) {
                (b'{', b',') => {
                    i = ws(string_end(b, ws(i + 1))?);
                    (b.get(i) == Some(&b':')).then_some(())?;
                    i = ws(i + 1);
                    break;
                }
                (b'[', b',') => {
                    i = ws(i + 1);
                    break;
                }
                (b'{', b'}') | (b'[', b']') => {
                    depth -= 1;
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// Whether `b` is one JSON value, checked quickly: `true` only if it is (as serde_json reads
/// it); `false` if it is not, or if it holds anything this module leaves to serde_json.
pub(crate) fn surely_json(b: &[u8]) -> bool {
    value_end(b) == Some(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_in_words() {
        assert!(!has_special_byte(u64::from_le_bytes(*b"abcdefgh")));
        assert!(!has_special_byte(u64::from_le_bytes(*b" !#[]~\x7f0")));
        for special in [b'"', b'\\', 0, 0x1f, b'\n', 0x80, 0xff] {
            for at in 0..8 {
                let mut w = *b"abcdefgh";
                w[at] = special;
                assert!(has_special_byte(u64::from_le_bytes(w)), "{special} at {at}");
            }
        }
    }

    #[test]
    fn plain_strings_and_numbers() {
        assert_eq!(plain_string_end(br#""abc" x"#, 0), Some(4));
        assert_eq!(
            plain_string_end(br#""a long plain string here""#, 0),
            Some(25)
        );
        assert_eq!(plain_string_end(br#""a\"b""#, 0), None);
        assert_eq!(plain_string_end("\"é\"".as_bytes(), 0), None);
        assert_eq!(string_end(br#""a\"b" "#, 0), Some(6));
        assert_eq!(number_end(b"-12.5e+3,", 0), Some(8));
        assert_eq!(number_end(b"01", 0), Some(1));
        assert_eq!(number_end(b"1.", 0), None);
        assert_eq!(literal_end(b"falsey", 0), Some(5));
        assert_eq!(literal_end(b"nul", 0), None);
    }

    #[test]
    fn quick_json_check_never_accepts_what_serde_refuses() {
        let serde_ok = |b: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok();
        for good in [
            r#"{"a":1,"b":"x\"y\\z\/\n","c":[1,-2.5e+3,0.5,true,false,null,{},[]],"d":{"e":[[]]}}"#,
            r#" { "a" : [ 1 , 2 ] , "b" : { } } "#,
            "{\"client_ip\":\"10.0.0.4\",\"timestamp\":1700000004,\"message\":\"m 4\"}",
            "{\"a\":\n1}",
            "{\"a\":\"\x7f\"}",
        ] {
            assert!(surely_json(good.as_bytes()), "{good}");
            assert!(serde_ok(good.as_bytes()), "{good}");
        }
        for unsure_or_bad in [
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":+1}",
            "{\"a\":1,}",
            "{,}",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":tru}",
            "{\"a\":truex}",
            "{\"a\":\"\\u0041\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"é\"}",
            "{\"a\":1}}",
            "{\"a\":[1}",
            "{\"a\":1",
            "{1:2}",
            "{\"a\":1} 2",
            "{\"a\":NaN}",
            "{\"a\":\"x}",
            "\u{c}{}",
        ] {
            assert!(!surely_json(unsure_or_bad.as_bytes()), "{unsure_or_bad}");
        }
        assert!(!surely_json("[".repeat(65).as_bytes()));
        // Random token soup: whatever the quick check accepts, serde_json accepts.
        let tokens: &[&str] = &[
            "{", "}", "[", "]", ",", ":", " ", "\n", "\"", "\"k\"", "\\", "\\n", "\\u", "1", "0",
            "-", ".", "e", "+", "true", "null", "fals", "x", "\t", "\u{1}", "é",
        ];
        let mut accepted = 0;
        for _ in 0..200_000 {
            let n = rand::random_range(1..12);
            let text: String = (0..n)
                .map(|_| tokens[rand::random_range(0..tokens.len())])
                .collect();
            if surely_json(text.as_bytes()) {
                accepted += 1;
                assert!(serde_ok(text.as_bytes()), "{text:?}");
            }
        }
        assert!(
            accepted > 100,
            "the soup should hold some JSON ({accepted})"
        );
    }
}
