//! What every test of the stand-in needs: the running stand-in and S3 emulator of
//! `scripts/services up`, a database of its own, a client, files in S3.

use std::io::Write;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// A variable `scripts/services up` exports; a clear failure when the services are down.
pub fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: the stand-in's tests need the local services. Run: \
             eval \"$(scripts/services up)\" && cargo test -p redshift-local"
        ),
    }
}

/// Which listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Provisioned,
    Serverless,
}

/// The URL of the stand-in in `mode`, for database `db`.
pub fn url(mode: Mode, db: &str) -> String {
    let base = match mode {
        Mode::Provisioned => var("REDTRACK_REDSHIFT_PROVISIONED_URL"),
        Mode::Serverless => var("REDTRACK_REDSHIFT_SERVERLESS_URL"),
    };
    let (head, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{head}/{db}")
}

/// A connection and the notices it receives.
pub struct Conn {
    pub client: Client,
    pub notices: mpsc::UnboundedReceiver<tokio_postgres::error::DbError>,
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Conn {
    /// The notices received so far, as messages.
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(n) = self.notices.try_recv() {
            out.push(format!("{}: {}", n.severity(), n.message()));
        }
        out
    }
}

/// Connects to `url`.
pub async fn connect_url(url: &str) -> Result<Conn, tokio_postgres::Error> {
    let (client, mut conn) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, notices) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = stream.next().await {
            match m {
                Ok(AsyncMessage::Notice(n)) => {
                    let _ = tx.send(n);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok(Conn { client, notices })
}

/// A database of the test's own, created through the stand-in (so it has Redshift's
/// catalog and the stand-in's default isolation level), dropped first if a former run left it.
pub struct Db {
    pub name: String,
}

impl Db {
    /// Creates database `rl_<name>`, with `isolation` (`SNAPSHOT`/`SERIALIZABLE`) if given.
    pub async fn new(name: &str, isolation: Option<&str>) -> Db {
        let name = format!("rl_{name}");
        let admin = connect_url(&url(Mode::Provisioned, &var_db()))
            .await
            .expect("connecting to the stand-in");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("dropping a former run's database");
        let level = isolation
            .map(|l| format!(" ISOLATION LEVEL {l}"))
            .unwrap_or_default();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}{level}"))
            .await
            .expect("CREATE DATABASE through the stand-in");
        Db { name }
    }

    /// A connection to it in `mode`.
    pub async fn connect(&self, mode: Mode) -> Conn {
        connect_url(&url(mode, &self.name))
            .await
            .expect("connecting to the stand-in")
    }
}

/// The database `scripts/services` created.
pub fn var_db() -> String {
    let u = var("REDTRACK_REDSHIFT_URL");
    u.rsplit_once('/')
        .map(|(_, d)| d.to_owned())
        .unwrap_or_default()
}

/// The stage bucket.
pub fn bucket() -> String {
    let stage = var("REDTRACK_STAGE");
    stage
        .strip_prefix("s3://")
        .and_then(|s| s.split('/').next())
        .expect("REDTRACK_STAGE is s3://bucket/prefix")
        .to_owned()
}

/// An S3 client with the credentials of the environment.
pub async fn s3() -> aws_sdk_s3::Client {
    let _ = var("AWS_ENDPOINT_URL_S3");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A key prefix of the test's own.
pub fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("standin/{test}/{nanos}")
}

/// Uploads `body` to `key`; its `s3://` URL.
pub async fn put(s3: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) -> String {
    s3.put_object()
        .bucket(bucket())
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("PutObject");
    format!("s3://{}/{key}", bucket())
}

/// gzip'd `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// Uploads `files` gzip'd and a manifest listing them; the manifest's URL.
pub async fn manifest(s3: &aws_sdk_s3::Client, prefix: &str, files: &[&str]) -> String {
    let mut entries = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let url = put(
            s3,
            &format!("{prefix}/part-{i:04}.json.gz"),
            gzip(f.as_bytes()),
        )
        .await;
        entries.push(serde_json::json!({"url": url, "mandatory": true}));
    }
    let body = serde_json::json!({ "entries": entries }).to_string();
    put(s3, &format!("{prefix}/manifest.json"), body.into_bytes()).await
}

/// The COPY the loader runs, with the stand-in's credentials.
pub fn copy_sql(table: &str, manifest_url: &str, extra: &str) -> String {
    format!(
        "COPY {table} FROM '{manifest_url}' ACCESS_KEY_ID '{}' SECRET_ACCESS_KEY '{}' \
         FORMAT AS JSON 'auto' GZIP MANIFEST TIMEFORMAT 'auto' DATEFORMAT 'auto' {extra}",
        var("AWS_ACCESS_KEY_ID"),
        var("AWS_SECRET_ACCESS_KEY")
    )
}

/// The SQLSTATE and message of a failed statement.
pub fn db_err(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("expected a database error, got {e}"));
    (db.code().code().to_owned(), db.message().to_owned())
}

/// One text value of a simple query.
pub async fn one(c: &Client, sql: &str) -> Option<String> {
    let msgs = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    for m in msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            return r.get(0).map(str::to_owned);
        }
    }
    panic!("{sql}: no row")
}

/// All rows of a simple query, as text.
pub async fn rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let msgs = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    msgs.into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Waits up to `d` for `f` to finish; `None` if it is still running.
pub async fn within<T>(d: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(d, f).await.ok()
}
