//! Connections to the warehouse: a parsed URL, TLS unless the URL disables it, a password or
//! temporary IAM credentials (GetClusterCredentials / Serverless GetCredentials), and the
//! helpers every statement's error and every row read goes through.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aws::Aws;
use crate::config::{redact_url, Config, RedshiftIam};
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
        let fail = |api: &str, action: &str, e: String| {
            Error::warehouse(format!(
                "asking {api} for temporary database credentials: {e} (the loader's AWS \
                 credentials need the IAM action {action})"
            ))
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
                        let message = aws_sdk_redshift::error::DisplayErrorContext(&e).to_string();
                        fail(
                            "GetClusterCredentials",
                            "redshift:GetClusterCredentials",
                            message,
                        )
                        .with_source(e)
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
                        let message =
                            aws_sdk_redshiftserverless::error::DisplayErrorContext(&e).to_string();
                        fail(
                            "GetCredentials",
                            "redshift-serverless:GetCredentials",
                            message,
                        )
                        .with_source(e)
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

    /// A new connection; its I/O runs on a spawned task until the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let fail = |e| Error::warehouse(format!("connecting to {}", self.target)).with_source(e);
        let mut config = self.config.clone();
        if let Some(iam) = &self.iam {
            let user = config.get_user().unwrap_or_default().to_owned();
            let database = config.get_dbname().unwrap_or_default().to_owned();
            let (user, password) = iam.credentials(&user, &database).await?;
            config.user(&user).password(password);
        }
        let config = &config;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("warehouse connection ended: {e}");
                }
            });
            Ok(client)
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()?);
            let (client, conn) = config.connect(tls).await.map_err(fail)?;
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
