//! A cursor over a statement's tokens, for the few statements the stand-in parses itself.

use crate::error::SqlError;

use super::lexer::{Kind, Statement, Token};
use crate::error::syntax_error;

/// Walks the tokens of one statement.
pub struct Cursor<'a> {
    /// The statement text.
    pub sql: &'a str,
    /// Its tokens.
    pub tokens: &'a [Token],
    /// The next token's index.
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first token of `stmt`.
    pub fn new(stmt: &'a Statement) -> Cursor<'a> {
        Cursor {
            sql: &stmt.sql,
            tokens: &stmt.tokens,
            pos: 0,
        }
    }

    /// The next token, if any.
    pub fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    /// The token `n` ahead.
    pub fn peek_at(&self, n: usize) -> Option<&'a Token> {
        self.tokens.get(self.pos + n)
    }

    /// Takes the next token.
    pub fn next_token(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// True at the end.
    pub fn done(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// The next token is the keyword `kw`.
    pub fn at(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is(self.sql, kw))
    }

    /// The next tokens are the keywords `kws`.
    pub fn at_all(&self, kws: &[&str]) -> bool {
        kws.iter()
            .enumerate()
            .all(|(i, kw)| self.peek_at(i).is_some_and(|t| t.is(self.sql, kw)))
    }

    /// The next token is the punctuation `p`.
    pub fn at_punct(&self, p: &str) -> bool {
        self.peek().is_some_and(|t| t.is_punct(self.sql, p))
    }

    /// Takes the keyword `kw` if it is next.
    pub fn eat(&mut self, kw: &str) -> bool {
        if self.at(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes the keywords `kws` if they are next.
    pub fn eat_all(&mut self, kws: &[&str]) -> bool {
        if self.at_all(kws) {
            self.pos += kws.len();
            true
        } else {
            false
        }
    }

    /// Takes the punctuation `p` if it is next.
    pub fn eat_punct(&mut self, p: &str) -> bool {
        if self.at_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A syntax error at the next token (or at the end).
    pub fn error(&self) -> SqlError {
        match self.peek() {
            Some(t) => syntax_error(self.sql, t.span.start, t.text(self.sql)),
            None => {
                let mut e = crate::error::err("42601", "syntax error at end of input");
                e.position = Some((self.sql.chars().count() + 1).to_string());
                e
            }
        }
    }

    /// Requires the keyword `kw`.
    pub fn expect(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Requires the punctuation `p`.
    pub fn expect_punct(&mut self, p: &str) -> Result<(), SqlError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// An identifier (unquoted folded to lowercase, quoted as written).
    pub fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(t) if matches!(t.kind, Kind::Word | Kind::Quoted) => {
                self.pos += 1;
                t.ident(self.sql).ok_or_else(|| self.error())
            }
            _ => Err(self.error()),
        }
    }

    /// A possibly schema-qualified name, as its parts.
    pub fn qualified_name(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.ident()?];
        while self.eat_punct(".") {
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    /// A string constant's value.
    pub fn string(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Str => {
                self.pos += 1;
                t.string_value(self.sql).ok_or_else(|| self.error())
            }
            _ => Err(self.error()),
        }
    }

    /// An unsigned integer constant.
    pub fn integer(&mut self) -> Result<i64, SqlError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Number => {
                let v = t.text(self.sql).parse::<i64>().map_err(|_| self.error())?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error()),
        }
    }

    /// A parenthesized, comma-separated list of identifiers.
    pub fn ident_list(&mut self) -> Result<Vec<String>, SqlError> {
        self.expect_punct("(")?;
        let mut out = vec![self.ident()?];
        while self.eat_punct(",") {
            out.push(self.ident()?);
        }
        self.expect_punct(")")?;
        Ok(out)
    }

    /// The byte offset of the next token (or the end of the text).
    pub fn offset(&self) -> usize {
        self.peek().map_or(self.sql.len(), |t| t.span.start)
    }
}

/// Quotes an identifier for PostgreSQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for PostgreSQL.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A qualified name, quoted.
pub fn quote_name(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| quote_ident(p))
        .collect::<Vec<_>>()
        .join(".")
}
