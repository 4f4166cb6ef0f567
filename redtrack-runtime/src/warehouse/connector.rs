//! Connections to the warehouse: a parsed URL, TLS unless the URL disables it, and the helpers
//! every statement's error and every row read goes through.

use std::str::FromStr;
use std::sync::Arc;

use crate::config::redact_url;
use crate::error::{Error, Result};

/// Opens connections to one URL, with TLS when the URL does not disable it.
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    /// Where it connects, without the password: `postgres://user@host:port/db`.
    target: String,
}

impl std::fmt::Debug for Connector {
    /// The parsed configuration, whose own `Debug` shows a password only as `_`, whatever form
    /// the URL gave it in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("config", &self.config)
            .finish()
    }
}

impl Connector {
    /// Parses a `postgres://` URL (or a key=value connection string).
    pub fn new(url: &str) -> Result<Connector> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| {
            Error::warehouse(format!(
                "REDTRACK_WAREHOUSE_URL `{}` is not a valid connection URL",
                redact_url(url)
            ))
            .with_source(e)
        })?;
        Ok(Connector {
            target: target(&config),
            config,
        })
    }

    /// A new connection; its I/O runs on a spawned task until the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let fail = |e| Error::warehouse(format!("connecting to {}", self.target)).with_source(e);
        if self.config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            let (client, conn) = self
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("warehouse connection ended: {e}");
                }
            });
            Ok(client)
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()?);
            let (client, conn) = self.config.connect(tls).await.map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("warehouse connection ended: {e}");
                }
            });
            Ok(client)
        }
    }
}

/// rustls with the system's root certificates (Redshift's are signed by Amazon's public CAs).
fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Column `idx` of a result row as `T`. A value the server sent that `T` cannot hold (another
/// type, or NULL where none was expected) is an error naming `what`, never a panic.
pub(crate) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
    what: &str,
) -> Result<T> {
    row.try_get(idx).map_err(|e| db_error(what, e))
}

/// A [`Error::Warehouse`] saying what was being done, with the server's message and detail.
pub(crate) fn db_error(what: &str, e: tokio_postgres::Error) -> Error {
    let message = match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{what}: {}", db.message());
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            m
        }
        None => format!("{what}: {e}"),
    };
    Error::warehouse(message).with_source(e)
}

/// `postgres://user@host:port/db` of a parsed configuration: where it connects, never the password.
fn target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password never shows in `Debug` or in the connection target, in either URL form.
    #[test]
    fn the_password_stays_out_of_debug() {
        for url in [
            "postgres://user:s3cret-pw@db.example:5439/dev?sslmode=require",
            "host=db.example port=5439 user=user password=s3cret-pw dbname=dev",
        ] {
            let c = Connector::new(url).unwrap();
            let shown = format!("{c:?} {}", c.target);
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert_eq!(c.target, "postgres://user@db.example:5439/dev");
        }
    }
}
