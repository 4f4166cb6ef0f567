//! The stand-in's errors, and the errors it sends to clients in Redshift's shape.

use pgwire::error::{ErrorInfo, PgWireError};

/// What can go wrong inside the stand-in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PostgreSQL (or Redshift-emulation) error to hand to the client as it is.
    #[error("{}: {}", .0.code, .0.message)]
    Db(Box<ErrorInfo>),
    /// The backend connection failed or misbehaved.
    #[error("PostgreSQL backend: {0}")]
    Backend(String),
    /// The admin connection (auth lookups, catalog install, load-error log) failed.
    #[error("admin connection: {0}")]
    Admin(String),
    /// A wire-protocol failure.
    #[error("protocol: {0}")]
    Wire(#[from] PgWireError),
    /// An I/O failure.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The stand-in's result.
pub type Result<T> = std::result::Result<T, Error>;

/// An error for the client, boxed: pgwire's ErrorInfo is large and errors are the rare path.
pub type SqlError = Box<ErrorInfo>;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Error::Db(Box::new(ErrorInfo::new(
                db.severity().to_owned(),
                db.code().code().to_owned(),
                db.message().to_owned(),
            ))),
            None => Error::Admin(e.to_string()),
        }
    }
}

/// An ERROR with `code` and `message`.
pub fn err(code: &str, message: impl Into<String>) -> SqlError {
    Box::new(ErrorInfo::new("ERROR".into(), code.into(), message.into()))
}

/// An ERROR with a DETAIL.
pub fn err_detail(code: &str, message: impl Into<String>, detail: impl Into<String>) -> SqlError {
    let mut e = err(code, message);
    e.detail = Some(detail.into());
    e
}

/// An ERROR with a HINT.
pub fn err_hint(code: &str, message: impl Into<String>, hint: impl Into<String>) -> SqlError {
    let mut e = err(code, message);
    e.hint = Some(hint.into());
    e
}

/// `syntax error at or near "TOKEN"` with the 1-based character position, as PostgreSQL and
/// Redshift word it.
pub fn syntax_error(sql: &str, byte_pos: usize, token: &str) -> SqlError {
    let mut e = err("42601", format!("syntax error at or near \"{token}\""));
    e.position = Some((sql[..byte_pos.min(sql.len())].chars().count() + 1).to_string());
    e
}

/// A feature Redshift has that the stand-in does not emulate: says so, and what to do.
pub fn not_emulated(what: &str) -> SqlError {
    err_hint(
        "0A000",
        format!("redshift-local does not emulate {what}"),
        "See redshift-local/README.md for what the stand-in covers; use the features it lists, or test this against a real cluster.",
    )
}

/// Redshift's serializable-isolation error as clients see it: SQLSTATE XX000, message `1023`
/// (npgsql/npgsql#1339; c_serial_isolation "ERROR:1023 DETAIL: Serializable isolation
/// violation on table").
pub fn serializable_violation(pg: &ErrorInfo) -> ErrorInfo {
    let mut e = *err("XX000", "1023");
    let table = pg.table.as_deref().unwrap_or("0");
    e.detail = Some(format!(
        "Serializable isolation violation on table - {table}, transactions forming the cycle are: \
         (redshift-local: PostgreSQL reported \"{}\"{})",
        pg.message,
        pg.detail
            .as_deref()
            .map(|d| format!(", {d}"))
            .unwrap_or_default()
    ));
    e
}

/// Rewrites a backend error into what Redshift reports for the same condition.
pub fn redshift_error(pg: ErrorInfo) -> ErrorInfo {
    match pg.code.as_str() {
        "40001" => serializable_violation(&pg),
        _ => pg,
    }
}
