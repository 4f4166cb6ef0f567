//! The encoder's runtime half: value checks and JSON writing used by the derive's generated code.
//!
//! OWNER: issue 2. Extend [`EncodeErrorKind`] freely.

/// An event could not be encoded: names the table, the column and what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("table `{table}`, column `{column}`: {kind}")]
#[non_exhaustive]
pub struct EncodeError {
    /// The table.
    pub table: &'static str,
    /// The column (empty when the problem is not one column's).
    pub column: &'static str,
    /// What was wrong.
    pub kind: EncodeErrorKind,
}

/// What was wrong with a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeErrorKind {
    /// The encoder produced bytes that are not UTF-8 (a bug in redtrack).
    #[error("the encoder produced invalid UTF-8: {0}")]
    InvalidUtf8(String),
}

impl EncodeError {
    /// An error for `table`, `column` and `kind`.
    pub fn new(table: &'static str, column: &'static str, kind: EncodeErrorKind) -> Self {
        EncodeError {
            table,
            column,
            kind,
        }
    }

    pub(crate) fn invalid_utf8(table: &'static str, e: std::string::FromUtf8Error) -> Self {
        EncodeError::new(table, "", EncodeErrorKind::InvalidUtf8(e.to_string()))
    }
}
