//! What the benchmarks against the local services share: their arguments, connections to a
//! database of their own, and medians.

#![allow(dead_code)] // each benchmark uses part of it

use std::str::FromStr;
use std::time::Duration;

/// Positional argument `n` (1-based), parsed; `default` when it is absent.
pub fn arg<T>(n: usize, default: T) -> Result<T, Box<dyn std::error::Error>>
where
    T: FromStr,
    T::Err: std::error::Error + 'static,
{
    Ok(std::env::args()
        .nth(n)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default))
}

/// Variable `name`, or an error that says how to set it.
pub fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set; run `eval \"$(scripts/services up)\"` first"))
}

/// `url` with its database replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (head, tail) = url.rsplit_once('/').unwrap_or((url, ""));
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}/{db}{query}")
}

/// A plain-text connection to `url`, its I/O on a spawned task.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
