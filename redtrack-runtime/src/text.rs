//! Text helpers shared by every part of the runtime: cutting text to a number of bytes on a
//! character boundary, shortening values for messages, and an error with its causes as one line.

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary: how VARCHAR and
/// CHAR values are truncated.
///
/// ```
/// use redtrack_runtime::encode::truncate_to_bytes;
/// assert_eq!(truncate_to_bytes("h\u{e9}llo", 2), "h");
/// assert_eq!(truncate_to_bytes("h\u{e9}llo", 3), "h\u{e9}");
/// ```
#[inline]
pub fn truncate_to_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    // A UTF-8 char is at most 4 bytes, so this loops at most 3 times.
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// `s` cut to at most `max` bytes on a char boundary, in place.
pub(crate) fn truncate_string(mut s: String, max: usize) -> String {
    let keep = truncate_to_bytes(&s, max).len();
    s.truncate(keep);
    s
}

/// A value for an error message: at most 64 characters, with `…` when cut.
pub(crate) fn shorten(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// The error and its sources, `: `-separated, each source left out when the text so far already
/// says it (SDK errors often repeat their cause in their own message).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate_string("héllo".into(), 2), "h");
        assert_eq!(truncate_string("abc".into(), 5), "abc");
        assert_eq!(shorten(&"x".repeat(70)).chars().count(), 65);
    }

    #[test]
    fn chains_sources_without_repeating_them() {
        let io = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(io);
        assert_eq!(error_chain(&outer), "connection refused");
    }
}
