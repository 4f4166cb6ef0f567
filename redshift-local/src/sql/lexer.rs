//! A SQL tokenizer good enough to find statement boundaries, keywords and identifiers the way
//! PostgreSQL (and so Redshift, a fork of PostgreSQL 8.0) reads them: quoted identifiers,
//! `'...'` strings with `''`, `E'...'` strings with backslash escapes, dollar-quoted strings,
//! `--` and nested `/* */` comments. It does not parse SQL; the classifier works on its tokens.

use std::ops::Range;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An unquoted identifier or keyword (compare with [`Token::is`]).
    Word,
    /// A `"quoted"` identifier.
    Quoted,
    /// A string constant of any form.
    Str,
    /// A numeric constant.
    Number,
    /// A `$n` parameter.
    Param,
    /// Any operator or punctuation; `;`, `(`, `)`, `,`, `.` are single characters.
    Punct,
}

/// One token: its kind and where it is in the statement text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Byte range in the text it was read from.
    pub span: Range<usize>,
}

impl Token {
    /// The token's text in `sql`.
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.span.clone()]
    }

    /// An unquoted word equal to `keyword`, case-insensitively.
    pub fn is(&self, sql: &str, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text(sql).eq_ignore_ascii_case(keyword)
    }

    /// Punctuation equal to `p`.
    pub fn is_punct(&self, sql: &str, p: &str) -> bool {
        self.kind == Kind::Punct && self.text(sql) == p
    }

    /// An identifier's name as PostgreSQL resolves it: unquoted folded to lowercase, quoted
    /// with `""` unescaped. `None` for tokens that are not identifiers.
    pub fn ident(&self, sql: &str) -> Option<String> {
        let t = self.text(sql);
        match self.kind {
            Kind::Word => Some(t.to_ascii_lowercase()),
            Kind::Quoted => Some(t[1..t.len() - 1].replace("\"\"", "\"")),
            _ => None,
        }
    }

    /// A string constant's value (`'a''b'` is `a'b`, `E'a\nb'` has a newline, `$$x$$` is `x`).
    pub fn string_value(&self, sql: &str) -> Option<String> {
        if self.kind != Kind::Str {
            return None;
        }
        let t = self.text(sql);
        if let Some(rest) = t.strip_prefix('$') {
            let tag_end = rest.find('$')? + 2;
            return Some(t[tag_end..t.len() - tag_end].to_owned());
        }
        let (escapes, body) = if t.starts_with(['e', 'E']) {
            (true, &t[2..t.len() - 1])
        } else {
            (false, &t[1..t.len() - 1])
        };
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    out.push('\'');
                }
                '\\' if escapes => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some(other) => out.push(other),
                    None => {}
                },
                c => out.push(c),
            }
        }
        Some(out)
    }
}

/// Splits `sql` into tokens. Unterminated strings, identifiers or comments end at the end of the
/// text (PostgreSQL reports those as syntax errors; the backend will, too).
pub fn tokenize(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // whitespace
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // comments
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            continue;
        }
        let start = i;
        // E'...' strings
        if (c == b'e' || c == b'E') && b.get(i + 1) == Some(&b'\'') {
            i = skip_quoted(b, i + 1, b'\'', true);
            out.push(Token {
                kind: Kind::Str,
                span: start..i,
            });
            continue;
        }
        if c == b'\'' {
            i = skip_quoted(b, i, b'\'', false);
            out.push(Token {
                kind: Kind::Str,
                span: start..i,
            });
            continue;
        }
        if c == b'"' {
            i = skip_quoted(b, i, b'"', false);
            out.push(Token {
                kind: Kind::Quoted,
                span: start..i,
            });
            continue;
        }
        if c == b'$' {
            // $n parameter
            if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Token {
                    kind: Kind::Param,
                    span: start..i,
                });
                continue;
            }
            // $tag$ ... $tag$
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
                j += 1;
            }
            if j < b.len() && b[j] == b'$' {
                let tag = &sql[i..=j];
                let body_start = j + 1;
                let end = sql[body_start..]
                    .find(tag)
                    .map_or(b.len(), |p| body_start + p + tag.len());
                i = end;
                out.push(Token {
                    kind: Kind::Str,
                    span: start..i,
                });
                continue;
            }
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Token {
                kind: Kind::Word,
                span: start..i,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            out.push(Token {
                kind: Kind::Number,
                span: start..i,
            });
            continue;
        }
        // punctuation: single characters for the ones that structure statements, otherwise a
        // run of operator characters
        if matches!(c, b';' | b'(' | b')' | b',' | b'.' | b'[' | b']') {
            i += 1;
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            i += 2;
        } else if is_op_char(c) {
            while i < b.len() && is_op_char(b[i]) {
                // a comment start ends an operator
                if (b[i] == b'-' && b.get(i + 1) == Some(&b'-'))
                    || (b[i] == b'/' && b.get(i + 1) == Some(&b'*'))
                {
                    break;
                }
                i += 1;
            }
            if i == start {
                i += 1;
            }
        } else {
            // a UTF-8 sequence that is not a letter we know of: one character
            i += sql[i..].chars().next().map_or(1, char::len_utf8);
        }
        out.push(Token {
            kind: Kind::Punct,
            span: start..i,
        });
    }
    out
}

fn is_op_char(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
            | b':'
    )
}

/// Index just past the closing quote of a quoted token starting at `open` (the quote itself).
fn skip_quoted(b: &[u8], open: usize, quote: u8, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// One statement of a query string: its text (without the `;`) and its tokens (spans relative
/// to that text).
#[derive(Debug, Clone)]
pub struct Statement {
    /// The statement's text, trimmed of surrounding whitespace.
    pub sql: String,
    /// Its tokens.
    pub tokens: Vec<Token>,
}

/// Splits a query string into its statements at top-level semicolons; statements with no
/// tokens (only whitespace or comments) are dropped.
pub fn split(sql: &str) -> Vec<Statement> {
    let tokens = tokenize(sql);
    let mut out = Vec::new();
    let mut begin = 0usize;
    let mut group: Vec<Token> = Vec::new();
    let mut depth = 0i32;
    let flush = |group: &mut Vec<Token>, end: usize, begin: usize, out: &mut Vec<Statement>| {
        if group.is_empty() {
            return;
        }
        let first = group[0].span.start;
        let last = group[group.len() - 1].span.end;
        let _ = (begin, end);
        let text = &sql[first..last];
        let tokens = group
            .drain(..)
            .map(|t| Token {
                kind: t.kind,
                span: t.span.start - first..t.span.end - first,
            })
            .collect();
        out.push(Statement {
            sql: text.to_owned(),
            tokens,
        });
    };
    for t in tokens {
        if t.kind == Kind::Punct {
            match t.text(sql) {
                "(" => depth += 1,
                ")" => depth -= 1,
                ";" if depth <= 0 => {
                    let end = t.span.start;
                    flush(&mut group, end, begin, &mut out);
                    begin = t.span.end;
                    depth = 0;
                    continue;
                }
                _ => {}
            }
        }
        group.push(t);
    }
    flush(&mut group, sql.len(), begin, &mut out);
    out
}

/// Replaces the byte ranges of `sql` given in `edits` (sorted, not overlapping) with their texts.
pub fn apply_edits(sql: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut at = 0;
    for (range, text) in edits {
        out.push_str(&sql[at..range.start]);
        out.push_str(text);
        at = range.end;
    }
    out.push_str(&sql[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let s = split(
            "BEGIN; insert into t values ('a;b', $$c;d$$, E'e\\';f'); -- x;\n/* y; */ COMMIT;;",
        );
        let texts: Vec<_> = s.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            texts,
            [
                "BEGIN",
                "insert into t values ('a;b', $$c;d$$, E'e\\';f')",
                "COMMIT"
            ]
        );
    }

    #[test]
    fn identifiers_fold_and_unquote() {
        let sql = r#"Foo "Bar""x" 'it''s'"#;
        let t = tokenize(sql);
        assert_eq!(t[0].ident(sql).unwrap(), "foo");
        assert_eq!(t[1].ident(sql).unwrap(), "Bar\"x");
        assert_eq!(t[2].string_value(sql).unwrap(), "it's");
    }

    #[test]
    fn numbers_params_and_operators() {
        let sql = "a::int >= $12 + 1.5e3";
        let kinds: Vec<_> = tokenize(sql)
            .iter()
            .map(|t| (t.kind, t.text(sql).to_owned()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Word, "a".into()),
                (Kind::Punct, "::".into()),
                (Kind::Word, "int".into()),
                (Kind::Punct, ">=".into()),
                (Kind::Param, "$12".into()),
                (Kind::Punct, "+".into()),
                (Kind::Number, "1.5e3".into()),
            ]
        );
    }
}
