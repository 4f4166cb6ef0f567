//! Connections to the warehouse: a parsed URL, TLS unless the URL disables it, every byte through
//! a [`Masked`] stream, and the helpers every statement's error and every row read goes through.

use std::sync::Arc;

use super::masked::{Masked, MaskedTls};
use crate::config::parse_warehouse_url;
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
    /// Parses a `postgres://` (or `postgresql://`) URL, or a key=value connection string.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming what is wrong (another scheme, no scheme, no user, a value the
    /// parser refused), with the URL's password hidden, never the URL as given.
    pub fn new(url: &str) -> Result<Connector> {
        let config = parse_warehouse_url(url).map_err(Error::Config)?;
        Ok(Connector {
            target: target(&config),
            config,
        })
    }

    /// Where it connects, without the password: `postgres://user@host:port/db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A new connection; its I/O runs on a spawned task until the client is dropped. Each host
    /// of the URL is tried in turn; TLS unless the URL says `sslmode=disable` (and only if the
    /// server offers it, unless `sslmode=require`). The connection's bytes go through a
    /// masking stream, so statements can carry secrets by placeholder (see `warehouse::masked`).
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let mut last = None;
        for (host, port) in self.addresses() {
            let socket = match open(&host, port, &self.config).await {
                Ok(socket) => Masked::new(socket),
                Err(e) => {
                    last = Some(
                        Error::warehouse(format!("connecting to {}", self.target)).with_source(e),
                    );
                    continue;
                }
            };
            let started = if self.config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable
            {
                start(&self.config, socket, tokio_postgres::NoTls).await
            } else {
                let domain = match &host {
                    tokio_postgres::config::Host::Tcp(h) => h.as_str(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(_) => "localhost",
                };
                let mut make = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()?);
                let tls =
                    match tokio_postgres::tls::MakeTlsConnect::<Masked<Transport>>::make_tls_connect(
                        &mut make, domain,
                    ) {
                        Ok(tls) => tls,
                        Err(never) => match never {},
                    };
                start(&self.config, socket, MaskedTls(tls)).await
            };
            match started {
                Ok(client) => return Ok(client),
                Err(e) => {
                    last = Some(
                        Error::warehouse(format!("connecting to {}", self.target)).with_source(e),
                    )
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Config(format!("{} names no host", self.target))))
    }

    /// Every host of the URL with its port, as libpq pairs them: one port for all hosts, or one
    /// per host; 5432 by default. A `hostaddr` takes the place of its host's name.
    fn addresses(&self) -> Vec<(tokio_postgres::config::Host, u16)> {
        use tokio_postgres::config::Host;
        let c = &self.config;
        let hosts: Vec<Host> = if c.get_hosts().is_empty() {
            c.get_hostaddrs()
                .iter()
                .map(|a| Host::Tcp(a.to_string()))
                .collect()
        } else {
            c.get_hosts()
                .iter()
                .enumerate()
                .map(|(i, h)| match c.get_hostaddrs().get(i) {
                    Some(addr) => Host::Tcp(addr.to_string()),
                    None => h.clone(),
                })
                .collect()
        };
        let ports = c.get_ports();
        hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let port = match ports {
                    [] => 5432,
                    [one] => *one,
                    many => many.get(i).copied().unwrap_or(5432),
                };
                (h, port)
            })
            .collect()
    }
}

/// The socket under a connection: TCP, or a Unix socket on Unix.
pub(crate) enum Transport {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// Opens the socket to `host:port` (for a Unix socket directory, its `.s.PGSQL.<port>`) as
/// tokio-postgres would: within the URL's `connect_timeout`, with `TCP_NODELAY`, its keepalives
/// and (on Linux) its `tcp_user_timeout`.
async fn open(
    host: &tokio_postgres::config::Host,
    port: u16,
    config: &tokio_postgres::Config,
) -> std::io::Result<Transport> {
    let connecting = async {
        match host {
            tokio_postgres::config::Host::Tcp(h) => {
                let stream = tokio::net::TcpStream::connect((h.as_str(), port)).await?;
                stream.set_nodelay(true)?;
                let socket = socket2::SockRef::from(&stream);
                #[cfg(target_os = "linux")]
                if let Some(timeout) = config.get_tcp_user_timeout() {
                    socket.set_tcp_user_timeout(Some(*timeout))?;
                }
                if config.get_keepalives() {
                    let mut keepalive =
                        socket2::TcpKeepalive::new().with_time(config.get_keepalives_idle());
                    #[cfg(not(any(target_os = "openbsd", target_os = "solaris")))]
                    if let Some(interval) = config.get_keepalives_interval() {
                        keepalive = keepalive.with_interval(interval);
                    }
                    #[cfg(not(any(
                        target_os = "openbsd",
                        target_os = "solaris",
                        target_os = "windows"
                    )))]
                    if let Some(retries) = config.get_keepalives_retries() {
                        keepalive = keepalive.with_retries(retries);
                    }
                    socket.set_tcp_keepalive(&keepalive)?;
                }
                Ok(Transport::Tcp(stream))
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(dir) => Ok(Transport::Unix(
                tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?,
            )),
        }
    };
    match config.get_connect_timeout() {
        Some(t) => tokio::time::timeout(*t, connecting)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))?,
        None => connecting.await,
    }
}

/// Starts the session on `socket` (TLS by `tls` as the URL's sslmode says) and spawns its
/// connection task.
async fn start<T>(
    config: &tokio_postgres::Config,
    socket: Masked<Transport>,
    tls: T,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error>
where
    T: tokio_postgres::tls::TlsConnect<Masked<Transport>>,
    T::Stream: Send + 'static,
{
    let (client, conn) = config.connect_raw(socket, tls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("warehouse connection ended: {e}");
        }
    });
    Ok(client)
}

impl tokio::io::AsyncRead for Transport {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Transport::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Transport {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Transport::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Transport::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Transport::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
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

/// A [`Error::Warehouse`] saying what was being done, with the server's message and detail; or
/// [`Error::Missing`] when the server says a step was not taken (a table or column missing).
pub(crate) fn db_error(what: &str, e: tokio_postgres::Error) -> Error {
    if let Some(missing) = super::missing::missing_step(&e) {
        return Error::Missing {
            missing,
            source: Some(std::sync::Arc::new(e)),
        };
    }
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
