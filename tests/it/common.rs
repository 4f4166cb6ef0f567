//! Shared support for integration tests against the local services.
//!
//! The servers come from `scripts/services up` (which `scripts/test` runs); their endpoints come
//! from the variables it exports. Each [`TestEnv`] is a world of its own on those shared servers,
//! so tests run in parallel (and in several processes at once) without seeing each other:
//!
//! - its own `REDTRACK_DATABASE` name, hence its own Kinesis streams `<cluster>.<database>.<table>`;
//! - its own warehouse database of that name, created for it and dropped when it passes;
//! - its own S3 prefix (or subdirectory, for a `file:` stage).
//!
//! A test environment is on one [`Backend`]: PostgreSQL itself (the `postgres` dialect), or the
//! Redshift stand-in `redshift-local` in front of it (the `redshift` dialect, S3 stage), as a
//! provisioned cluster or as Serverless. [`each_backend!`](crate::each_backend) turns one test
//! body into a test per backend, so a new test gets every backend for free:
//!
//! ```ignore
//! use crate::common::{self, TestEnv};
//!
//! crate::each_backend! {
//!     /// What the test shows.
//!     async fn loads_what_was_written(env: TestEnv) {
//!         let client = redtrack::Client::new(env.config()).await.unwrap();
//!         let pg = env.pg().await; // the stored rows, for checks
//!         // ...
//!     }
//! }
//! ```
//!
//! When the variables are missing, [`TestEnv::new`] panics with the command to run: a test that
//! needs the services never passes by skipping.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What `scripts/services up` exports and these tests need.
pub const REQUIRED_VARS: &[&str] = &[
    "REDTRACK_CLUSTER",
    "REDTRACK_DATABASE",
    "REDTRACK_STAGE",
    "REDTRACK_WAREHOUSE_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL_KINESIS",
    "AWS_ENDPOINT_URL_S3",
    "REDTRACK_REDSHIFT_URL",
];

/// The variables passed through unchanged to every test.
const SHARED_VARS: &[&str] = &[
    "REDTRACK_REDSHIFT_PROVISIONED_URL",
    "REDTRACK_REDSHIFT_SERVERLESS_URL",
    "REDTRACK_CLUSTER",
    "REDTRACK_BROKER",
    "REDTRACK_WAREHOUSE_DIALECT",
    "REDTRACK_COPY_IAM_ROLE",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL_KINESIS",
    "AWS_ENDPOINT_URL_S3",
];

/// Databases this helper made are named `t_<test>_<unix secs hex>_<pid hex>_<n>`.
const DB_PREFIX: &str = "t_";

/// Test databases left behind (by failed tests) are dropped once they are this old.
const STALE_AFTER: Duration = Duration::from_secs(3 * 3600);

/// How long a connection to PostgreSQL may take before the test fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared settings read from the environment, before a test makes them its own.
#[derive(Debug, Clone)]
pub struct Services {
    vars: BTreeMap<String, String>,
}

impl Services {
    /// Reads the process environment; panics with the command to run when variables are missing.
    pub fn from_env() -> Services {
        Services::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Services::from_env`] with variables from `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Services {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let missing: Vec<&str> = REQUIRED_VARS
            .iter()
            .copied()
            .filter(|k| get(k).is_none())
            .collect();
        if !missing.is_empty() {
            panic!(
                "integration tests need the local services, but {} not set; \
                 run `eval \"$(scripts/services up)\"` first (scripts/test does it for you)",
                match missing.as_slice() {
                    [one] => format!("{one} is"),
                    many => format!("{} are", many.join(", ")),
                }
            );
        }
        let vars = REQUIRED_VARS
            .iter()
            .chain(SHARED_VARS)
            .filter_map(|k| get(k).map(|v| (k.to_string(), v)))
            .collect();
        Services { vars }
    }

    fn var(&self, k: &str) -> &str {
        self.vars.get(k).map(String::as_str).unwrap_or_default()
    }

    /// The database `scripts/services` created (the path of `REDTRACK_WAREHOUSE_URL`).
    fn db_name(&self) -> String {
        let url = self.var("REDTRACK_WAREHOUSE_URL");
        let path = url.rsplit_once('/').map_or("", |(_, p)| p);
        path.split('?').next().unwrap_or_default().to_owned()
    }
}

/// Where a test's warehouse is: which server and dialect its loader talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL itself, the `postgres` dialect (`REDTRACK_WAREHOUSE_URL`).
    Postgres,
    /// The Redshift stand-in as a provisioned cluster (`REDTRACK_REDSHIFT_PROVISIONED_URL`,
    /// `stv_slices` and the STL tables exist), the `redshift` dialect, S3 stage; its databases
    /// are SNAPSHOT isolation, the default of new clusters (c_serial_isolation).
    RedshiftProvisioned,
    /// The Redshift stand-in as Serverless (`REDTRACK_REDSHIFT_SERVERLESS_URL`: no STL/STV
    /// tables), the `redshift` dialect, S3 stage; its databases are SERIALIZABLE, so that every
    /// test runs under both of Redshift's isolation levels.
    RedshiftServerless,
}

impl Backend {
    /// The short tag in the names of this backend's databases and streams.
    pub fn tag(self) -> &'static str {
        match self {
            Backend::Postgres => "pg",
            Backend::RedshiftProvisioned => "rp",
            Backend::RedshiftServerless => "rs",
        }
    }

    /// Whether the loader talks Redshift's dialect to the stand-in.
    pub fn is_redshift(self) -> bool {
        !matches!(self, Backend::Postgres)
    }

    /// The variable with the stand-in's URL of this mode.
    fn url_var(self) -> Option<&'static str> {
        match self {
            Backend::Postgres => None,
            Backend::RedshiftProvisioned => Some("REDTRACK_REDSHIFT_PROVISIONED_URL"),
            Backend::RedshiftServerless => Some("REDTRACK_REDSHIFT_SERVERLESS_URL"),
        }
    }

    /// The isolation level its databases are created with (Redshift's `CREATE DATABASE ...
    /// ISOLATION LEVEL`, r_CREATE_DATABASE).
    pub fn isolation(self) -> Option<&'static str> {
        match self {
            Backend::Postgres => None,
            Backend::RedshiftProvisioned => Some("SNAPSHOT"),
            Backend::RedshiftServerless => Some("SERIALIZABLE"),
        }
    }
}

/// Turns each `async fn name(env: TestEnv) { ... }` into a module `name` with one test per
/// [`Backend`] (`name::postgres`, `name::redshift_provisioned`, `name::redshift_serverless`),
/// each on a fresh [`TestEnv`] of that backend named after `name`. They are separate tests, so
/// they run in parallel and fail separately; `cargo test --test it name::` runs all three.
#[macro_export]
macro_rules! each_backend {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($env:ident : TestEnv) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($env: $crate::common::TestEnv) $body

            async fn on(backend: $crate::common::Backend) {
                body($crate::common::TestEnv::on(backend, stringify!($name)).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                on($crate::common::Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redshift_provisioned() {
                on($crate::common::Backend::RedshiftProvisioned).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redshift_serverless() {
                on($crate::common::Backend::RedshiftServerless).await
            }
        }
    )*};
}

/// One test's own streams, stage prefix and database on the shared local services.
///
/// Dropping it drops the test's database, unless the test is failing (then the database is
/// kept for a look, and removed by a later run once it is [`STALE_AFTER`] old).
#[derive(Debug)]
pub struct TestEnv {
    id: String,
    backend: Backend,
    vars: BTreeMap<String, String>,
    config: redtrack::Config,
    /// PostgreSQL's own URL (the `redtrack` database), for creating and dropping databases.
    admin_url: String,
    /// The test database on PostgreSQL itself (also what the stand-in keeps its rows in).
    storage_url: String,
}

impl TestEnv {
    /// A fresh PostgreSQL environment named after the running test (the test thread's name).
    pub async fn new() -> TestEnv {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("test");
        TestEnv::named(test.rsplit("::").next().unwrap_or(test)).await
    }

    /// A fresh PostgreSQL environment whose names start with `name` (only `[a-z0-9_]` of it is
    /// kept).
    pub async fn named(name: &str) -> TestEnv {
        TestEnv::on(Backend::Postgres, name).await
    }

    /// A fresh environment on `backend` whose names start with `name`.
    pub async fn on(backend: Backend, name: &str) -> TestEnv {
        TestEnv::with_services(Services::from_env(), backend, name).await
    }

    /// A fresh environment on `services`.
    pub async fn with_services(services: Services, backend: Backend, name: &str) -> TestEnv {
        let id = unique_id(&format!("{}_{name}", backend.tag()));
        let mut vars = services.vars.clone();

        // REDTRACK_DATABASE names the streams and, as in production, the warehouse database.
        vars.insert("REDTRACK_DATABASE".into(), id.clone());
        let admin_url = services.var("REDTRACK_WAREHOUSE_URL").to_owned();
        let storage_url = with_database(&admin_url, &id);
        let warehouse_url = match backend.url_var() {
            None => storage_url.clone(),
            Some(var) => {
                let Some(url) = services.vars.get(var) else {
                    panic!(
                        "{var} is not set: the Redshift tests need the stand-in; \
                         run `eval \"$(scripts/services up)\"` first (scripts/test does it for you)"
                    )
                };
                vars.insert("REDTRACK_WAREHOUSE_DIALECT".into(), "redshift".into());
                with_database(url, &id)
            }
        };
        vars.insert("REDTRACK_WAREHOUSE_URL".into(), warehouse_url);
        let stage = services.var("REDTRACK_STAGE");
        let stage = match stage.strip_prefix("file:") {
            Some(dir) if !backend.is_redshift() => {
                format!("file:{}", PathBuf::from(dir).join(&id).display())
            }
            Some(_) => panic!("REDTRACK_STAGE is a directory, but Redshift's COPY reads only S3"),
            None => format!("{}/{id}", stage.trim_end_matches('/')),
        };
        vars.insert("REDTRACK_STAGE".into(), stage);

        let config = redtrack::Config::from_lookup(|k| vars.get(k).cloned())
            .unwrap_or_else(|e| panic!("the test configuration is invalid: {e}"));

        let admin = connect(&admin_url).await;
        drop_stale_databases(&admin).await;
        match backend.isolation() {
            None => admin
                .batch_execute(&format!("CREATE DATABASE {id}"))
                .await
                .unwrap_or_else(|e| panic!("cannot create the test database {id}: {e:?}")),
            Some(level) => {
                // Through the stand-in: Redshift's CREATE DATABASE sets the isolation level.
                let url = with_database(&vars["REDTRACK_WAREHOUSE_URL"], &services.db_name());
                connect(&url)
                    .await
                    .batch_execute(&format!("CREATE DATABASE {id} ISOLATION LEVEL {level}"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot create the test database {id} through the stand-in: {e:?}")
                    })
            }
        }

        TestEnv {
            id,
            backend,
            vars,
            config,
            admin_url,
            storage_url,
        }
    }

    /// The backend this environment's loader talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The unique name of this environment: its `REDTRACK_DATABASE` and PostgreSQL database.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The test's configuration (Kinesis broker, its stage, its database, its backend's
    /// dialect).
    pub fn config(&self) -> redtrack::Config {
        self.config.clone()
    }

    /// A variable of the test's environment, for `redtrack::Config::from_lookup(|k| env.var(k))`.
    pub fn var(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }

    /// Every variable of the test's environment, for `Command::envs` when a test runs a binary.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The Kinesis stream of `table` (`<cluster>.<database>.<table>`).
    pub fn stream_name(&self, table: &str) -> String {
        self.config.stream_name(table)
    }

    /// The S3 bucket of the stage (panics for a `file:` stage).
    pub fn bucket(&self) -> String {
        match self.config.stage() {
            Some(redtrack::StageLocation::S3 { bucket, .. }) => bucket.clone(),
            other => panic!("the stage is not in S3: {other:?}"),
        }
    }

    /// The test's own key prefix in the bucket, without a trailing `/` (panics for a `file:` stage).
    pub fn prefix(&self) -> String {
        match self.config.stage() {
            Some(redtrack::StageLocation::S3 { prefix, .. }) => prefix.clone(),
            other => panic!("the stage is not in S3: {other:?}"),
        }
    }

    /// `postgres://...` of the test's own database as the loader reaches it (the stand-in's URL
    /// for a Redshift backend).
    pub fn warehouse_url(&self) -> String {
        self.vars["REDTRACK_WAREHOUSE_URL"].clone()
    }

    /// A loader of this environment, with `E`'s table and the bookkeeping tables set up.
    pub async fn loader<E: redtrack::RedTrackEvent>(&self) -> redtrack::Loader {
        let loader = redtrack::Loader::new(self.config()).await.unwrap();
        loader.setup::<E>().await.unwrap();
        loader
    }

    /// A connection to the test's own database on PostgreSQL itself, for checking the stored
    /// rows with PostgreSQL's types (behind the stand-in too: it keeps its rows there, SUPER as
    /// `jsonb`). Statements a Redshift user would send go through [`TestEnv::warehouse`].
    pub async fn pg(&self) -> tokio_postgres::Client {
        connect(&self.storage_url).await
    }

    /// A connection to the test's own database as the loader reaches it: the stand-in for a
    /// Redshift backend (so DDL keeps Redshift's catalog), PostgreSQL otherwise.
    pub async fn warehouse(&self) -> tokio_postgres::Client {
        connect(&self.warehouse_url()).await
    }

    /// `(rows, distinct values of column)` of `table` in the test's database: equal when no
    /// event was loaded twice.
    pub async fn count_distinct(&self, table: &str, column: &str) -> (i64, i64) {
        let row = self
            .pg()
            .await
            .query_one(
                &format!("SELECT count(*), count(DISTINCT {column}) FROM {table}"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("counting {table}: {e:?}"));
        (row.get(0), row.get(1))
    }

    /// The `id` column (an INTEGER) of every row of `table` in the test's database, in order.
    pub async fn ids(&self, table: &str) -> Vec<i32> {
        self.pg()
            .await
            .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
            .await
            .unwrap_or_else(|e| panic!("reading the ids of {table}: {e:?}"))
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The AWS SDK configuration of the test's environment: region, dummy credentials, and the
    /// service endpoints of `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_S3`.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds = aws_sdk_kinesis::config::Credentials::new(
            &self.vars["AWS_ACCESS_KEY_ID"],
            &self.vars["AWS_SECRET_ACCESS_KEY"],
            None,
            None,
            "redtrack-test",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new(
                self.vars["AWS_REGION"].clone(),
            ))
            .credentials_provider(creds)
            .load()
            .await
    }

    /// A Kinesis client on the emulator.
    pub async fn kinesis(&self) -> aws_sdk_kinesis::Client {
        let conf = aws_sdk_kinesis::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&self.vars["AWS_ENDPOINT_URL_KINESIS"])
            .build();
        aws_sdk_kinesis::Client::from_conf(conf)
    }

    /// An S3 client on the emulator, with path-style addressing (`http://host:port/bucket/key`).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&self.vars["AWS_ENDPOINT_URL_S3"])
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept the database {} of the failed test: {}",
                self.id,
                redtrack::__test::redact_url(&self.storage_url)
            );
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread of its own.
        let (admin_url, id) = (self.admin_url.clone(), self.id.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for dropping the test database");
            rt.block_on(async move {
                let admin = connect(&admin_url).await;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {id} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e:?}", self.id),
            Err(_) => eprintln!("could not drop the test database {}", self.id),
        }
    }
}

/// `t_<name>_<unix secs hex>_<pid hex>_<n>`: unique across tests, processes and runs, a valid
/// unquoted PostgreSQL identifier (<= 63 bytes) and a valid part of a Kinesis stream name.
pub fn unique_id(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut clean: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    // Short keys: s3s-fs puts bucket and key, base64-encoded, into one file name (255 bytes),
    // and the id appears twice in a staged key; real S3 takes 1024-byte keys.
    clean.truncate(12);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{DB_PREFIX}{clean}_{secs:x}_{:x}_{n}", std::process::id())
}

/// The creation time encoded in a name made by [`unique_id`].
pub fn created_secs(id: &str) -> Option<u64> {
    let mut parts = id.strip_prefix(DB_PREFIX)?.rsplit('_');
    let (_n, _pid, secs) = (parts.next()?, parts.next()?, parts.next()?);
    u64::from_str_radix(secs, 16).ok()
}

/// Drops test databases that failed tests left behind, once per process.
async fn drop_stale_databases(admin: &tokio_postgres::Client) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::Relaxed) {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            &[&DB_PREFIX],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        if created_secs(&name).is_some_and(|t| now.saturating_sub(t) > STALE_AFTER.as_secs()) {
            // Best effort: another process may be dropping it too.
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// `url` with its database (the path) replaced by `database`; the query string is kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// A connection to PostgreSQL at `url`, its connection task spawned on the current runtime.
async fn connect(url: &str) -> tokio_postgres::Client {
    let shown = redtrack::__test::redact_url(url);
    let mut pg = tokio_postgres::Config::from_str(url)
        .unwrap_or_else(|e| panic!("REDTRACK_WAREHOUSE_URL {shown} is not a PostgreSQL URL: {e}"));
    pg.connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        panic!(
            "cannot connect to PostgreSQL at {shown}: {e}; \
             is it up? `scripts/services status` tells, `eval \"$(scripts/services up)\"` starts it"
        )
    });
    tokio::spawn(async move {
        // Ends when the client is dropped; an error here is the server going away.
        let _ = connection.await;
    });
    client
}

/// The variable that makes this test binary, run again, the seed tables' command line (its
/// arguments, separated by U+001F): see `cli::cli_child`.
pub const CLI_CHILD_ENV: &str = "REDTRACK_CLI_CHILD_ARGS";

/// This test binary run again as the seed tables' command line (`Cli::run_args`, the
/// configuration from the environment, the logging `run` sets up), with `args`. Its environment
/// is exactly `vars`, with PATH and HOME.
pub fn cli_command<K, V>(
    vars: impl IntoIterator<Item = (K, V)>,
    args: &[&str],
) -> std::process::Command
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "--exact",
        "cli::cli_child",
        "--nocapture",
        "--test-threads=1",
        "--color",
        "never",
    ])
    .env_clear()
    .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
    .envs(vars)
    .env(CLI_CHILD_ENV, args.join("\u{1f}"));
    cmd
}

/// What a command line child printed, and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    /// Its exit code.
    pub code: Option<i32>,
    /// Its standard output (with libtest's few lines around it).
    pub out: String,
    /// Its standard error: the log and the error messages.
    pub err: String,
}

/// Runs `cmd` (from [`cli_command`]) to its end.
pub fn run_cli(mut cmd: std::process::Command) -> CliOutput {
    let out = cmd.output().expect("run the command line child");
    CliOutput {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The JSON objects a command line printed, one per line (libtest may print its test's name
/// before the first).
pub fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Writes `n` `test_events` events (timestamps `from..from + n`) through a client of `config`,
/// creating the stream (one shard) if it does not exist yet, and closes the client.
pub async fn write_test_events(config: redtrack::Config, from: i32, n: i32) {
    use crate::seed::TestEvent;
    let client = redtrack::Client::new(config).await.expect("client");
    client.create_stream::<TestEvent>(1).await.expect("stream");
    for i in from..from + n {
        client
            .write(&TestEvent {
                client_ip: format!("10.0.1.{}", i % 250),
                timestamp: i,
                message: Some(format!("m{i}")),
            })
            .await
            .expect("write");
    }
    client.close().await.expect("close");
}

/// The seed tables' command line in this process with `config`: its exit code, stdout and
/// stderr.
pub async fn cli(config: redtrack::Config, args: &[&str]) -> (u8, String, String) {
    let seed_cli = redtrack::cli::Cli::new("redtrack")
        .register::<crate::seed::TestEvent>()
        .register::<crate::seed::TestAllTypes>();
    cli_of(seed_cli, config, args).await
}

/// Command line `cli` (an application's own, with its tables) in this process with `config`:
/// its exit code, stdout and stderr.
pub async fn cli_of(
    cli: redtrack::cli::Cli,
    config: redtrack::Config,
    args: &[&str],
) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // On the heap: a command's future is large, and tests run on 2 MiB thread stacks.
    let code = Box::pin(cli.run_to(
        std::iter::once("redtrack").chain(args.iter().copied()),
        move || Ok(config),
        &mut out,
        &mut err,
    ))
    .await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}
