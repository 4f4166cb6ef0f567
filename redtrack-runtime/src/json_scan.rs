//! The one JSON scanner of the runtime: quick checks and spans over the plain JSON events usually
//! are, eight bytes at a time where it can. Each function follows JSON's grammar as serde_json
//! reads it and returns `None` for anything it leaves to serde_json (escapes it does not handle,
//! bytes beyond ASCII in strings, deep nesting), never a wrong answer.
//!
//! Used by the file broker's line reader, the loader's check of each record (its quick path)
//! and the PostgreSQL warehouse's fast COPY rows.

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

/// The index of the closing quote of the string starting at `b[i]` (a `"`), if its body is
/// printable ASCII with single-character escapes only (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`), and how many escapes it holds: its text is as many bytes shorter.
pub(crate) fn escaped_string_end(b: &[u8], mut i: usize) -> Option<(usize, usize)> {
    (b.get(i) == Some(&b'"')).then_some(())?;
    i += 1;
    let mut escapes = 0;
    loop {
        i += plain_run(b, i);
        match *b.get(i)? {
            b'"' => return Some((i, escapes)),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                    escapes += 1;
                    i += 2;
                }
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
        assert_eq!(escaped_string_end(br#""a\"b\\" "#, 0), Some((7, 2)));
        assert_eq!(escaped_string_end(br#""\u0041""#, 0), None);
        assert_eq!(escaped_string_end("\"é\"".as_bytes(), 0), None);
        assert_eq!(plain_string_end("\"é\"".as_bytes(), 0), None);
        assert_eq!(number_end(b"-12.5e+3,", 0), Some(8));
        assert_eq!(number_end(b"01", 0), Some(1));
        assert_eq!(number_end(b"1.", 0), None);
        assert_eq!(literal_end(b"falsey", 0), Some(5));
        assert_eq!(literal_end(b"nul", 0), None);
    }
}
