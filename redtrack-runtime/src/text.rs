//! Text helpers shared by every part of the runtime: cutting text to a number of bytes on a
//! character boundary, shortening values for messages, an error with its causes as one line, and
//! connection strings with their passwords taken out.

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

/// What a password is replaced with.
pub(crate) const REDACTED: &str = "***";

/// The keys whose values are secrets in a key=value connection string or a URL's query.
const SECRET_KEYS: &[&str] = &["password", "pass", "passwd", "pwd", "sslpassword"];

/// `text` (a connection URL with or without its scheme, a key=value connection string, or any
/// text holding one) with every password replaced by `***`: the `:password` of a URL's
/// `user:password@`, and the value of `password=` (quoted or not; also `pass`, `pwd`,
/// `sslpassword`) in key=value strings and query strings. For logs, `Debug` and error messages
/// of strings that may not even parse: when unsure it hides more, never less.
///
/// ```text
/// postgres://user:s3cret@host/db        -> postgres://user:***@host/db
/// user:s3cret@host                      -> user:***@host
/// host=h password='s 3' user=u          -> host=h password=*** user=u
/// postgres://h/db?user=u&password=s3    -> postgres://h/db?user=u&password=***
/// ```
pub(crate) fn redact_connection_string(text: &str) -> String {
    redact_key_values(&redact_userinfo(text))
}

/// The password of every `user:password@` hidden. Each whitespace- or quote-delimited word is
/// looked at on its own: after its `scheme://`, if any, its userinfo runs to its last `@` (a
/// password may hold `@`, `/` or `?` unescaped; a host never holds `@`).
fn redact_userinfo(text: &str) -> String {
    let is_delimiter = |c: char| c.is_whitespace() || "`'\"<>".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word_start = 0;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        if i < text.len() && !is_delimiter(c) {
            continue;
        }
        let word = &text[word_start..i];
        let start = word.find("://").map_or(0, |s| s + 3);
        let userinfo = word[start..].rfind('@').map(|at| &word[start..start + at]);
        match userinfo.and_then(|u| u.find(':').map(|colon| (u, colon))) {
            Some((u, colon)) => {
                out.push_str(&word[..start + colon + 1]);
                out.push_str(REDACTED);
                out.push_str(&word[start + u.len()..]);
            }
            None => out.push_str(word),
        }
        if i < text.len() {
            out.push(c);
        }
        word_start = i + c.len_utf8();
    }
    out
}

/// The values of `password=...` (and the other [`SECRET_KEYS`]) hidden, in key=value connection
/// strings (`password = 'a b'`, with `\'` escapes) and in query strings (`&password=x`).
fn redact_key_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let at_key_start =
            i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'?' | b'&' | b';');
        let key = SECRET_KEYS
            .iter()
            .filter(|k| at_key_start && lower[i..].starts_with(**k))
            .max_by_key(|k| k.len());
        let Some(key) = key else {
            i += 1;
            continue;
        };
        // `key`, spaces, `=`, spaces, then the value.
        let mut j = i + key.len();
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') {
            i += 1;
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let value_start = j;
        if bytes.get(j) == Some(&b'\'') {
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !matches!(bytes[j], b' ' | b'\t' | b'\n' | b'&' | b'#') {
                j += 1;
            }
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = j;
        i = j.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form a connection string can take keeps its password out, and keeps the rest.
    #[test]
    fn connection_strings_lose_their_passwords() {
        for (given, shown) in [
            (
                "postgres://user:s3cret@host:5439/db",
                "postgres://user:***@host:5439/db",
            ),
            (
                "postgresql://user:s3cret@host/db?sslmode=require",
                "postgresql://user:***@host/db?sslmode=require",
            ),
            ("redtrack:s3cret@127.0.0.1", "redtrack:***@127.0.0.1"),
            (
                "redtrack:s3cret@127.0.0.1:5432/db",
                "redtrack:***@127.0.0.1:5432/db",
            ),
            ("mysql://root:s3cret@db/x", "mysql://root:***@db/x"),
            ("postgres://u:p@ss/w?rd@host/db", "postgres://u:***@host/db"),
            ("postgres://user@host/db", "postgres://user@host/db"),
            (
                "postgres://host/db?user=u&password=s3cret&sslmode=require",
                "postgres://host/db?user=u&password=***&sslmode=require",
            ),
            (
                "host=h user=u password=s3cret dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            (
                "host=h password = 's3 cr\\'et' user=u",
                "host=h password = *** user=u",
            ),
            ("host=h PASSWORD=s3cret", "host=h PASSWORD=***"),
            ("password=s3cret", "password=***"),
            ("host=h sslpassword=s3cret", "host=h sslpassword=***"),
            ("passwordless=1 user=u", "passwordless=1 user=u"),
            (
                "the URL `postgres://u:s3cret@h/d` is bad",
                "the URL `postgres://u:***@h/d` is bad",
            ),
            (
                "`u:s3cret@h` is not postgres://user:pass@host",
                "`u:***@h` is not postgres://user:***@host",
            ),
            ("é u:s3cret@h", "é u:***@h"),
        ] {
            let got = redact_connection_string(given);
            assert_eq!(got, shown, "{given}");
            assert!(!got.contains("s3cret") && !got.contains("s3 cr"), "{got}");
        }
    }

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
