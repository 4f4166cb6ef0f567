//! Connections to the warehouse: a parsed URL, TLS unless the URL disables it, a password or
//! temporary IAM credentials (GetClusterCredentials / Serverless GetCredentials), every byte
//! through a [`Masked`] stream, and the helpers every statement's error and every row read goes
//! through.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::masked::{Masked, MaskedTls};
use crate::aws::{sdk_failure, Aws, SdkFailure};
use crate::config::{parse_warehouse_url, Config, RedshiftIam};
use crate::error::{Error, Result};

/// Opens connections to one URL, with TLS when the URL does not disable it, signing in with
/// the URL's password or with temporary IAM credentials ([`RedshiftIam`]).
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    /// Where it connects, without the password: `postgres://user@host:port/db`.
    target: String,
    iam: Option<Arc<IamSignIn>>,
}

impl std::fmt::Debug for Connector {
    /// The parsed configuration, whose own `Debug` shows a password only as `_`, whatever form
    /// the URL gave it in; of IAM sign-in only how, never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("config", &self.config)
            .field("iam", &self.iam.as_ref().map(|i| &i.how))
            .finish()
    }
}

/// Temporary database credentials are renewed once they have less than this left.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// How long the temporary credentials asked for last (the most both APIs allow).
const CREDENTIALS_SECONDS: i32 = 3600;

/// What to do when the server refused the login itself (by SQLSTATE, never by message text):
/// a wrong user or password, or a database that does not exist. Empty for anything else.
fn refusal_step(e: &tokio_postgres::Error, iam: bool) -> &'static str {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c)
            if (*c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                && iam =>
        {
            " (the user IAM sign-in signed in as was refused: check the user in \
             REDTRACK_WAREHOUSE_URL and REDTRACK_REDSHIFT_IAM)"
        }
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            " (the warehouse refused the user or password: check them in \
             REDTRACK_WAREHOUSE_URL, percent-encoding any `@`, `:` or `/` in the password)"
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            " (no such database: check the database name in REDTRACK_WAREHOUSE_URL)"
        }
        _ => "",
    }
}

/// Temporary database credentials (never shown: no `Debug`).
struct TempCredentials {
    user: String,
    password: String,
    expires: SystemTime,
}

/// Whether credentials that expire at `expires` must be renewed at `now`: less than
/// [`RENEW_BEFORE_EXPIRY`] left, so that no connection is opened with credentials about to
/// lapse.
fn needs_renewal(expires: SystemTime, now: SystemTime) -> bool {
    expires
        .duration_since(now)
        .map_or(true, |left| left <= RENEW_BEFORE_EXPIRY)
}

/// Signs in with temporary credentials from the Redshift API.
struct IamSignIn {
    how: RedshiftIam,
    aws: Aws,
    config: Box<Config>,
    cached: tokio::sync::Mutex<Option<TempCredentials>>,
}

impl IamSignIn {
    /// Fresh credentials for `db_user` on `database`, asked for with the loader's AWS
    /// credentials.
    async fn ask(&self, db_user: &str, database: &str) -> Result<TempCredentials> {
        let sdk = self.aws.sdk(&self.config).await;
        // The service's code and message, not the SDK error's Debug form (the raw HTTP
        // response); the SDK error stays reachable as the source.
        let fail = |api: &str, action: &str, e: SdkFailure| Error::Warehouse {
            message: format!(
                "asking {api} for temporary database credentials: {}: {} (the loader's AWS \
                 credentials need the IAM action {action})",
                e.code, e.message
            ),
            source: Some(e.source),
        };
        let expires = |t: Option<&aws_smithy_types::DateTime>| {
            t.and_then(|t| SystemTime::try_from(*t).ok())
                .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(900))
        };
        match &self.how {
            RedshiftIam::Cluster {
                cluster_identifier,
                auto_create,
            } => {
                let out = aws_sdk_redshift::Client::new(sdk)
                    .get_cluster_credentials()
                    .cluster_identifier(cluster_identifier)
                    .db_user(db_user)
                    .db_name(database)
                    .auto_create(*auto_create)
                    .duration_seconds(CREDENTIALS_SECONDS)
                    .send()
                    .await
                    .map_err(|e| {
                        fail(
                            "GetClusterCredentials",
                            "redshift:GetClusterCredentials",
                            sdk_failure(e),
                        )
                    })?;
                Ok(TempCredentials {
                    user: out.db_user().unwrap_or_default().to_owned(),
                    password: out.db_password().unwrap_or_default().to_owned(),
                    expires: expires(out.expiration()),
                })
            }
            RedshiftIam::Serverless { workgroup } => {
                let out = aws_sdk_redshiftserverless::Client::new(sdk)
                    .get_credentials()
                    .workgroup_name(workgroup)
                    .db_name(database)
                    .duration_seconds(CREDENTIALS_SECONDS)
                    .send()
                    .await
                    .map_err(|e| {
                        fail(
                            "GetCredentials",
                            "redshift-serverless:GetCredentials",
                            sdk_failure(e),
                        )
                    })?;
                Ok(TempCredentials {
                    user: out.db_user().unwrap_or_default().to_owned(),
                    password: out.db_password().unwrap_or_default().to_owned(),
                    expires: expires(out.expiration()),
                })
            }
        }
    }

    /// The user and password to sign in with: the cached ones while they have more than
    /// [`RENEW_BEFORE_EXPIRY`] left, else new ones.
    async fn credentials(&self, db_user: &str, database: &str) -> Result<(String, String)> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if cached
            .as_ref()
            .is_none_or(|c| needs_renewal(c.expires, now))
        {
            let new = self.ask(db_user, database).await?;
            tracing::debug!(user = %new.user, "temporary database credentials issued");
            *cached = Some(new);
        }
        let c = cached
            .as_ref()
            .ok_or_else(|| Error::warehouse("no temporary credentials"))?;
        Ok((c.user.clone(), c.password.clone()))
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
            iam: None,
        })
    }

    /// This connector signing in with temporary IAM credentials as `how` says, asked for with
    /// the AWS credentials `aws` loads for `config`, instead of the URL's password.
    pub(crate) fn with_iam(mut self, how: RedshiftIam, config: &Config, aws: &Aws) -> Connector {
        self.iam = Some(Arc::new(IamSignIn {
            how,
            aws: aws.clone(),
            config: Box::new(config.clone()),
            cached: tokio::sync::Mutex::new(None),
        }));
        self
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
        let mut config = self.config.clone();
        if let Some(iam) = &self.iam {
            let user = config.get_user().unwrap_or_default().to_owned();
            let database = config.get_dbname().unwrap_or_default().to_owned();
            let (user, password) = iam.credentials(&user, &database).await?;
            config.user(&user).password(password);
        }
        let config = &config;
        let mut last = None;
        for (host, port) in self.addresses() {
            let socket = match open(&host, port, config).await {
                Ok(socket) => Masked::new(socket),
                Err(e) => {
                    last = Some(
                        Error::warehouse(format!("connecting to {}", self.target)).with_source(e),
                    );
                    continue;
                }
            };
            let started = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
                start(config, socket, tokio_postgres::NoTls).await
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
                start(config, socket, MaskedTls(tls)).await
            };
            match started {
                Ok(client) => return Ok(client),
                Err(e) => {
                    let step = refusal_step(&e, self.iam.is_some());
                    last = Some(
                        Error::warehouse(format!("connecting to {}{step}", self.target))
                            .with_source(e),
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
    statement_error(what, e)
}

/// Like [`db_error`], but always an [`Error::Warehouse`] that starts with `what`: for a step
/// whose own account of what happened (a migration's applied and not-run statements) matters
/// more than which setup step a missing table or column points to.
pub(crate) fn statement_error(what: &str, e: tokio_postgres::Error) -> Error {
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

    #[test]
    fn temporary_credentials_are_renewed_five_minutes_before_they_expire() {
        let now = SystemTime::now();
        let at = |secs: u64| now + Duration::from_secs(secs);
        assert!(!needs_renewal(at(3600), now));
        assert!(!needs_renewal(at(301), now));
        assert!(needs_renewal(at(300), now));
        assert!(needs_renewal(now - Duration::from_secs(1), now));
    }

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
