//! Configuration: from the environment ([`Config::from_env`]) or a builder ([`Config::builder`]).
//!
//! The standard AWS variables (region, credentials, `AWS_ENDPOINT_URL_KINESIS`, ...) are not read
//! here: they go through `aws-config` unchanged when a client is built.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::schema::Dialect;

/// Where events are written and read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerKind {
    /// Amazon Kinesis Data Streams (the default).
    Kinesis,
    /// Append-only files in a directory, for development (`REDTRACK_BROKER=file:<dir>`).
    File(PathBuf),
}

/// Where the loader stages gzip'd files and manifests for COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StageLocation {
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
    },
    /// A local directory (`file:<dir>`), for the PostgreSQL warehouse.
    Dir(PathBuf),
}

impl StageLocation {
    /// Parses `s3://bucket/prefix` (the prefix may be empty) or `file:<dir>`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the text and the two forms it can take.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Config(format!(
                    "REDTRACK_STAGE `{s}` names no bucket: use s3://bucket/prefix"
                )));
            }
            Ok(StageLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            })
        } else if let Some(dir) = s.strip_prefix("file:") {
            if dir.is_empty() {
                return Err(Error::Config(
                    "REDTRACK_STAGE `file:` names no directory; use file:<dir>".into(),
                ));
            }
            Ok(StageLocation::Dir(PathBuf::from(dir)))
        } else {
            Err(Error::Config(format!(
                "REDTRACK_STAGE `{s}` is neither s3://bucket/prefix nor file:<dir>"
            )))
        }
    }
}

/// How the loader signs in to Redshift with temporary IAM credentials instead of a password in
/// `REDTRACK_WAREHOUSE_URL` (whose user and database it keeps). The credentials are asked for
/// with the loader's AWS credentials, renewed 5 minutes before they expire, and never logged.
/// `REDTRACK_REDSHIFT_IAM=cluster:<cluster identifier>` (with `:autocreate` to create the user
/// at its first login) or `serverless:<workgroup>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedshiftIam {
    /// A provisioned cluster: `GetClusterCredentials`
    /// (`https://docs.aws.amazon.com/redshift/latest/APIReference/API_GetClusterCredentials.html`),
    /// which needs the IAM action `redshift:GetClusterCredentials` on the `dbuser` and `dbname`
    /// resources (and `redshift:CreateClusterUser` with `auto_create`). The session runs as
    /// the URL's user.
    Cluster {
        /// The cluster's identifier.
        cluster_identifier: String,
        /// Create the user at its first login if it does not exist.
        auto_create: bool,
    },
    /// Redshift Serverless: `GetCredentials`
    /// (`https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_GetCredentials.html`),
    /// which needs `redshift-serverless:GetCredentials` on the workgroup. The session runs as
    /// the caller's IAM identity (`IAM:<user>` or `IAMR:<role>`); the URL's user is ignored.
    Serverless {
        /// The workgroup's name.
        workgroup: String,
    },
}

impl RedshiftIam {
    /// Parses `cluster:<id>`, `cluster:<id>:autocreate` or `serverless:<workgroup>`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the value and the forms it can take.
    pub fn parse(s: &str) -> Result<RedshiftIam> {
        let bad = || {
            Error::Config(format!(
                "REDTRACK_REDSHIFT_IAM `{s}` is neither cluster:<cluster identifier>[:autocreate] \
                 nor serverless:<workgroup>"
            ))
        };
        match s.split_once(':') {
            Some(("cluster", rest)) => {
                let (id, auto_create) = match rest.strip_suffix(":autocreate") {
                    Some(id) => (id, true),
                    None => (rest, false),
                };
                if id.is_empty() {
                    return Err(bad());
                }
                Ok(RedshiftIam::Cluster {
                    cluster_identifier: id.to_owned(),
                    auto_create,
                })
            }
            Some(("serverless", w)) if !w.is_empty() => Ok(RedshiftIam::Serverless {
                workgroup: w.to_owned(),
            }),
            _ => Err(bad()),
        }
    }
}

/// All of redtrack's settings. Cheap to clone.
///
/// Defaults are documented on each `ConfigBuilder::with_*` method.
#[derive(Clone)]
pub struct Config {
    pub(crate) cluster: String,
    pub(crate) database: String,
    pub(crate) broker: BrokerKind,
    pub(crate) stage: Option<StageLocation>,
    pub(crate) warehouse_url: Option<String>,
    pub(crate) dialect: Dialect,
    pub(crate) copy_iam_role: Option<String>,
    pub(crate) redshift_iam: Option<RedshiftIam>,
    pub(crate) linger: Duration,
    pub(crate) max_buffered_records: usize,
    pub(crate) max_attempts: u32,
    pub(crate) attempt_timeout: Duration,
    pub(crate) aggregate: bool,
    pub(crate) record_identity: bool,
    pub(crate) dedupe_window: Duration,
    pub(crate) sdk_config: Option<aws_config::SdkConfig>,
    pub(crate) loader: LoaderSettings,
}

/// How much later than its writer's last attempt ended a record may still arrive in the stream
/// (a request Kinesis takes in after the writer gave up on it), and how far arrival times in a
/// shard may be out of order: the dedupe window must cover a writer's retry span plus this.
pub const ARRIVAL_MARGIN: Duration = Duration::from_secs(60);

/// The loader's knobs (see the `ConfigBuilder::with_*` methods for meanings and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoaderSettings {
    pub(crate) max_load_records: u64,
    pub(crate) max_load_bytes: u64,
    pub(crate) max_load_time: Duration,
    pub(crate) read_concurrency: usize,
    pub(crate) max_errors: u64,
    pub(crate) files_per_slice: usize,
    pub(crate) serverless_files: Option<usize>,
    pub(crate) accept_data_loss: bool,
    pub(crate) staging_dir: Option<PathBuf>,
}

/// Uncompressed bytes of the load's budget per staged file on Redshift Serverless.
const SERVERLESS_BYTES_PER_FILE: u64 = 64 << 20;

/// The most files a load stages on Redshift Serverless by default.
const MAX_SERVERLESS_FILES: u64 = 64;

impl LoaderSettings {
    /// The files a load stages where there is no slice count (Redshift Serverless): the
    /// configured number, else one per 64 MiB of the byte budget, between 1 and 64.
    pub(crate) fn serverless_files(&self) -> usize {
        self.serverless_files.unwrap_or_else(|| {
            let n = self
                .max_load_bytes
                .div_ceil(SERVERLESS_BYTES_PER_FILE)
                .clamp(1, MAX_SERVERLESS_FILES);
            usize::try_from(n).unwrap_or(1)
        })
    }
}

impl Default for LoaderSettings {
    fn default() -> Self {
        LoaderSettings {
            max_load_records: 1_000_000,
            max_load_bytes: 1 << 30,
            max_load_time: Duration::from_secs(600),
            read_concurrency: 8,
            max_errors: 0,
            files_per_slice: 1,
            serverless_files: None,
            accept_data_loss: false,
            staging_dir: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cluster", &self.cluster)
            .field("database", &self.database)
            .field("broker", &self.broker)
            .field("stage", &self.stage)
            .field(
                "warehouse_url",
                &self.warehouse_url.as_deref().map(redact_url),
            )
            .field("dialect", &self.dialect)
            .field("copy_iam_role", &self.copy_iam_role)
            .field("redshift_iam", &self.redshift_iam)
            .field("linger", &self.linger)
            .field("max_buffered_records", &self.max_buffered_records)
            .field("max_attempts", &self.max_attempts)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("aggregate", &self.aggregate)
            .field("record_identity", &self.record_identity)
            .field("dedupe_window", &self.dedupe_window)
            .field("loader", &self.loader)
            .finish_non_exhaustive()
    }
}

/// Any connection string (URL with or without its scheme, key=value) with its password replaced
/// by `***`, for logs, `Debug` and messages.
pub(crate) fn redact_url(url: &str) -> String {
    crate::text::redact_connection_string(url)
}

impl Config {
    /// A builder with every default; set at least the cluster and database.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default_values(),
        }
    }

    fn default_values() -> Config {
        Config {
            cluster: String::new(),
            database: String::new(),
            broker: BrokerKind::Kinesis,
            stage: None,
            warehouse_url: None,
            dialect: Dialect::Redshift,
            copy_iam_role: None,
            redshift_iam: None,
            linger: Duration::from_millis(5),
            max_buffered_records: 50_000,
            max_attempts: 8,
            attempt_timeout: Duration::from_secs(30),
            aggregate: false,
            record_identity: true,
            dedupe_window: Duration::from_secs(600),
            sdk_config: None,
            loader: LoaderSettings::default(),
        }
    }

    /// Reads the `REDTRACK_*` variables (see the README's configuration reference).
    ///
    /// `REDTRACK_CLUSTER` and `REDTRACK_DATABASE` are required; the rest have defaults or are
    /// checked when the part that needs them (the loader's stage and warehouse) is built. Every
    /// variable that is set is checked, so a value it cannot take fails here, at once.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming every variable that is missing or has a value it cannot take
    /// (all of them in one message, one per line), with what to set.
    pub fn from_env() -> Result<Config> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Config::from_env`] with variables from `lookup` (for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        from_lookup_for(lookup, Needs::default())
    }

    /// A builder holding every setting of this configuration, to change some of them.
    pub fn into_builder(self) -> ConfigBuilder {
        ConfigBuilder { config: self }
    }

    /// The Kinesis stream of `table`: `<cluster>.<database>.<table>`.
    pub fn stream_name(&self, table: &str) -> String {
        format!("{}.{}.{}", self.cluster, self.database, table)
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The broker.
    pub fn broker(&self) -> &BrokerKind {
        &self.broker
    }

    /// The stage, if configured.
    pub fn stage(&self) -> Option<&StageLocation> {
        self.stage.as_ref()
    }

    /// The warehouse dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The longest a writer may go on sending one record: `max_attempts` attempts of at most
    /// `attempt_timeout` each, and the backoff between them at its longest (exponential from
    /// 50 ms, each delay at most 5 s). A twin a retry stores arrives at most this long after the
    /// record's first copy (plus [`ARRIVAL_MARGIN`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = redtrack_runtime::Config::builder().cluster("c").database("d").build()?;
    /// // 8 attempts of at most 30 s, and 6.35 s of backoff between them.
    /// assert_eq!(c.write_retry_span(), Duration::from_millis(246_350));
    /// # Ok::<(), redtrack_runtime::Error>(())
    /// ```
    pub fn write_retry_span(&self) -> Duration {
        self.attempt_timeout
            .saturating_mul(self.max_attempts.max(1))
            .saturating_add(crate::retry::max_total_delay(self.max_attempts))
    }

    /// The window within which the loader drops twins ([`ConfigBuilder::with_dedupe_window`]).
    pub fn dedupe_window(&self) -> Duration {
        self.dedupe_window
    }

    /// Whether the client gives each record an identity
    /// ([`ConfigBuilder::with_record_identity`]).
    pub fn record_identity(&self) -> bool {
        self.record_identity
    }
}

/// Builds a [`Config`]. Every setting has a documented default.
///
/// One naming rule, here and across redtrack: a setting that says *what* to connect to is named
/// by its noun ([`cluster`](Self::cluster), [`database`](Self::database),
/// [`broker`](Self::broker), [`stage`](Self::stage), [`warehouse_url`](Self::warehouse_url),
/// [`dialect`](Self::dialect), [`copy_iam_role`](Self::copy_iam_role)); a knob that tunes *how*,
/// with a default, is `with_<knob>` (its default and unit in its docs), as
/// `KinesisBroker::with_list_shards_page` is. A constructor that takes a part of your own is
/// `with_<part>` (`Client::with_broker`, `Loader::with_broker`, `Loader::with_parts`).
///
/// ```
/// use std::time::Duration;
/// let config = redtrack_runtime::Config::builder()
///     .cluster("prod")
///     .database("analytics")
///     .with_linger(Duration::from_millis(10))
///     .with_max_errors(5)
///     .build()?;
/// assert_eq!(config.stream_name("page_views"), "prod.analytics.page_views");
/// # Ok::<(), redtrack_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// The Redshift cluster name (first part of stream names). Required.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.config.cluster = cluster.into();
        self
    }

    /// The database name (second part of stream names). Required.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.config.database = database.into();
        self
    }

    /// The broker. Default: [`BrokerKind::Kinesis`].
    pub fn broker(mut self, broker: BrokerKind) -> Self {
        self.config.broker = broker;
        self
    }

    /// The loader's stage. Default: none (the loader refuses to start without one).
    pub fn stage(mut self, stage: StageLocation) -> Self {
        self.config.stage = Some(stage);
        self
    }

    /// `postgres://user:pass@host:port/db` of the warehouse. Default: none.
    pub fn warehouse_url(mut self, url: impl Into<String>) -> Self {
        self.config.warehouse_url = Some(url.into());
        self
    }

    /// The warehouse dialect. Default: [`Dialect::Redshift`].
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.config.dialect = dialect;
        self
    }

    /// The IAM role ARN for COPY. Default: none (the AWS credentials are passed to COPY).
    pub fn copy_iam_role(mut self, arn: impl Into<String>) -> Self {
        self.config.copy_iam_role = Some(arn.into());
        self
    }

    /// Sign in to Redshift with temporary IAM credentials ([`RedshiftIam`]) instead of the
    /// URL's password. Default: none (the URL's password).
    pub fn redshift_iam(mut self, iam: RedshiftIam) -> Self {
        self.config.redshift_iam = Some(iam);
        self
    }

    /// How long the writer waits to fill a PutRecords batch. Default: 5 ms.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }

    /// How many records may wait for Kinesis at once before `write` waits and `try_write`
    /// fails. Default: 50,000.
    pub fn with_max_buffered_records(mut self, n: usize) -> Self {
        self.config.max_buffered_records = n.max(1);
        self
    }

    /// How many times a record is sent before its failure reaches the caller. Default: 8.
    ///
    /// With record identities on, `max_attempts` × [`with_attempt_timeout`](Self::with_attempt_timeout)
    /// plus the backoff ([`Config::write_retry_span`]) and [`ARRIVAL_MARGIN`] must fit in the
    /// [dedupe window](Self::with_dedupe_window), or [`build`](Self::build) fails.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n.max(1);
        self
    }

    /// How long one PutRecords attempt may take before the writer gives up on it and sends its
    /// records again (they may have been stored all the same: with record identities, the
    /// loader drops such twins). Default: 30 s. Counts toward [`Config::write_retry_span`].
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Pack many events into one Kinesis record (the KPL aggregated format). Default: off.
    pub fn with_aggregation(mut self, on: bool) -> Self {
        self.config.aggregate = on;
        self
    }

    /// Give every record the client writes an identity that its retries keep, so that the
    /// loader loads an event once even when a retry stored it twice (see
    /// [`crate::identity`] for where the identity travels). Default: on.
    ///
    /// Off, an event without a `partition_key` field gets a random 32-hex-digit key and an
    /// event with one is sent as plain JSON (no KPL framing): rows are then at least once
    /// where Kinesis gave no answer.
    pub fn with_record_identity(mut self, on: bool) -> Self {
        self.config.record_identity = on;
        self
    }

    /// The window of arrival time within which the loader drops a record whose identity it
    /// already loaded: it remembers, per shard, the identities of the records loaded in the
    /// last `window` (in the warehouse, `redtrack_ids_<table>`). Default: 10 minutes.
    ///
    /// It must cover every writer's [`Config::write_retry_span`] plus [`ARRIVAL_MARGIN`]
    /// ([`build`](Self::build) checks the writer's own settings), and writers and loaders must
    /// agree on it. A longer window costs the loader memory and time in proportion to the
    /// events it covers (under a byte each for a client's numbered identities, kept as runs;
    /// about 22 for identities that are not numbered).
    pub fn with_dedupe_window(mut self, window: Duration) -> Self {
        self.config.dedupe_window = window;
        self
    }

    /// Use this AWS SDK configuration instead of loading one from the environment.
    pub fn with_sdk_config(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.config.sdk_config = Some(sdk);
        self
    }

    /// The most records one load copies; the rest wait for the next load. Default: 1,000,000.
    pub fn with_max_load_records(mut self, n: u64) -> Self {
        self.config.loader.max_load_records = n.max(1);
        self
    }

    /// The most bytes of event JSON one load copies (before gzip). Default: 1 GiB.
    pub fn with_max_load_bytes(mut self, n: u64) -> Self {
        self.config.loader.max_load_bytes = n.max(1);
        self
    }

    /// How long one load reads before it stages and copies what it has. Default: 10 minutes.
    pub fn with_max_load_time(mut self, d: Duration) -> Self {
        self.config.loader.max_load_time = d;
        self
    }

    /// How many shards one load reads at once. Default: 8. From the file broker (local reads,
    /// bound by the CPU rather than the network) at most as many as there are cores.
    pub fn with_read_concurrency(mut self, n: usize) -> Self {
        self.config.loader.read_concurrency = n.max(1);
        self
    }

    /// How many records one load may reject, the same in both dialects: records that are no
    /// valid JSON object of the table's columns (rejected by the loader's check before COPY)
    /// and rows COPY refuses, together. They are kept in `redtrack_load_rejects` (with their
    /// stream, shard, sequence number and raw bytes, for `redrive`) and counted in the report;
    /// one more fails the load, which then loads nothing. On Redshift, COPY's MAXERROR is set
    /// so that it tolerates what is left of this budget. Default: 0.
    pub fn with_max_errors(mut self, n: u64) -> Self {
        self.config.loader.max_errors = n;
        self
    }

    /// How many staged files per warehouse slice one load writes. Default: 1.
    pub fn with_files_per_slice(mut self, n: usize) -> Self {
        self.config.loader.files_per_slice = n.max(1);
        self
    }

    /// How many files one load stages for a warehouse that has no slice count to query: Redshift
    /// Serverless, where the STL/STV system tables (`stv_slices`) do not exist
    /// (`https://docs.aws.amazon.com/redshift/latest/dg/c_intro_system_views.html`). Default:
    /// one file per 64 MiB of the load's byte budget
    /// ([`with_max_load_bytes`](Self::with_max_load_bytes)), between 1 and 64: 16 files for
    /// the default 1 GiB, so a full load's gzip'd files land inside the 1 MB..1 GB that AWS
    /// recommends per file (`https://docs.aws.amazon.com/redshift/latest/dg/queries-troubleshooting-load-takes-too-long.html`)
    /// and COPY reads them in parallel. Where `stv_slices` exists, the slice count decides
    /// ([`with_files_per_slice`](Self::with_files_per_slice)).
    pub fn with_serverless_files(mut self, n: usize) -> Self {
        self.config.loader.serverless_files = Some(n.max(1));
        self
    }

    /// Go on loading when records were trimmed from a shard before they were loaded (the loss is
    /// still logged at error level and listed in the load report). Default: `false`, the load
    /// fails with `Error::DataLoss` naming the shard and the lost range.
    pub fn with_accept_data_loss(mut self, accept: bool) -> Self {
        self.config.loader.accept_data_loss = accept;
        self
    }

    /// The local directory where a load writes its gzip'd files before uploading them to an S3
    /// stage. Default: the system's temporary directory.
    pub fn with_staging_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.loader.staging_dir = Some(dir.into());
        self
    }

    /// Checks the settings and returns the [`Config`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the cluster or database name is missing or holds a character a
    /// Kinesis stream name cannot (they are part of every stream's name), or if, with record
    /// identities on, a writer could retry a record for longer than the dedupe window allows.
    pub fn build(self) -> Result<Config> {
        let mut problems = name_problems(&self.config);
        problems.extend(window_problem(&self.config));
        if problems.is_empty() {
            Ok(self.config)
        } else {
            Err(config_error(problems))
        }
    }
}

/// The problems of the cluster and database names: each missing one, and each holding a
/// character a Kinesis stream name cannot.
fn name_problems(c: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, v) in [("cluster", &c.cluster), ("database", &c.database)] {
        let var = format!("REDTRACK_{}", what.to_uppercase());
        if v.is_empty() {
            problems.push(format!(
                "{var} is not set: the {what} name, part of every stream's name \
                 (<cluster>.<database>.<table>)"
            ));
        } else if !v
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch))
        {
            problems.push(format!(
                "{var} `{v}` may hold only letters, digits, `_`, `-` and `.` (it is part of \
                 Kinesis stream names)"
            ));
        }
    }
    problems
}

/// The problem of a writer whose retries could outlast the dedupe window (with record
/// identities on): a twin it stores could arrive after the loader forgot the first copy.
fn window_problem(c: &Config) -> Option<String> {
    let span = c.write_retry_span();
    if !c.record_identity || span.saturating_add(ARRIVAL_MARGIN) <= c.dedupe_window {
        return None;
    }
    Some(format!(
        "a writer may send a record again up to {:.1} s after its first attempt \
         (with_max_attempts {} x with_attempt_timeout {:.1} s, plus {:.2} s of backoff), and it \
         may arrive {} s later still: that is longer than the dedupe window of {:.1} s within \
         which the loader drops twins; lower with_max_attempts or with_attempt_timeout, or raise \
         with_dedupe_window on every writer and loader alike",
        span.as_secs_f64(),
        c.max_attempts,
        c.attempt_timeout.as_secs_f64(),
        crate::retry::max_total_delay(c.max_attempts).as_secs_f64(),
        ARRIVAL_MARGIN.as_secs(),
        c.dedupe_window.as_secs_f64(),
    ))
}

/// One [`Error::Config`] for every problem found: one line each, the variable to set first.
pub(crate) fn config_error(problems: Vec<String>) -> Error {
    match problems.as_slice() {
        [one] => Error::Config(one.clone()),
        many => Error::Config(format!(
            "{} settings are missing or wrong:\n  {}",
            many.len(),
            many.join("\n  ")
        )),
    }
}

/// What a part of redtrack needs from the configuration, so that everything it lacks is said
/// at once, before any network call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// Writes or reads streams (Kinesis needs AWS settings).
    pub(crate) broker: bool,
    /// Stages files (an S3 stage needs AWS settings).
    pub(crate) stage: bool,
    /// Connects to the warehouse (Redshift without an IAM role passes AWS credentials to COPY).
    pub(crate) warehouse: bool,
}

impl Needs {
    /// The client: the broker.
    pub(crate) const WRITER: Needs = Needs {
        broker: true,
        stage: false,
        warehouse: false,
    };
    /// The loader: all three.
    pub(crate) const LOADER: Needs = Needs {
        broker: true,
        stage: true,
        warehouse: true,
    };
    /// The warehouse alone (migrations, DDL).
    pub(crate) const WAREHOUSE: Needs = Needs {
        broker: false,
        stage: false,
        warehouse: true,
    };
}

/// What the AWS SDK configuration must provide for some [`Needs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AwsNeeds {
    /// A region (Kinesis and S3 calls are signed for one).
    pub(crate) region: bool,
    /// Credentials.
    pub(crate) credentials: bool,
}

impl Config {
    /// What this configuration lacks for `needs`, one line per problem, each naming the
    /// variable to set. The AWS settings are checked apart ([`Config::aws_needs`]).
    pub(crate) fn problems(&self, needs: Needs) -> Vec<String> {
        self.problems_with(needs, true)
    }

    /// [`Config::problems`], checking the warehouse URL's form only if `check_url`.
    fn problems_with(&self, needs: Needs, check_url: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if needs.stage && self.stage.is_none() {
            problems.push(
                "REDTRACK_STAGE is not set: where the loader stages files for COPY \
                 (s3://bucket/prefix; file:<dir> with the postgres dialect)"
                    .to_owned(),
            );
        }
        if needs.warehouse && self.warehouse_url.is_none() {
            problems.push(
                "REDTRACK_WAREHOUSE_URL is not set: the warehouse to load into \
                 (postgres://user:password@host:port/database)"
                    .to_owned(),
            );
        }
        if let Some(url) = self
            .warehouse_url
            .as_deref()
            .filter(|_| needs.warehouse && check_url)
        {
            if let Err(e) = parse_warehouse_url(url) {
                problems.push(e);
            }
        }
        if needs.stage && needs.warehouse && self.dialect == Dialect::Redshift {
            if let Some(StageLocation::Dir(dir)) = &self.stage {
                problems.push(format!(
                    "REDTRACK_STAGE is the directory `{}`, but Redshift's COPY reads only from \
                     S3: set REDTRACK_STAGE=s3://bucket/prefix (or \
                     REDTRACK_WAREHOUSE_DIALECT=postgres for a PostgreSQL warehouse)",
                    dir.display()
                ));
            }
        }
        if needs.warehouse && self.dialect == Dialect::Postgres && self.redshift_iam.is_some() {
            problems.push(
                "REDTRACK_REDSHIFT_IAM is set, but the warehouse dialect is postgres: IAM \
                 sign-in asks Redshift's API for a password; unset it, or set \
                 REDTRACK_WAREHOUSE_DIALECT=redshift"
                    .to_owned(),
            );
        }
        problems
    }

    /// Which AWS settings `needs` call for here: Kinesis and an S3 stage need a region and
    /// credentials; a Redshift COPY without `REDTRACK_COPY_IAM_ROLE` needs credentials; IAM
    /// sign-in (`REDTRACK_REDSHIFT_IAM`) needs both. A
    /// configuration with its own SDK configuration ([`ConfigBuilder::with_sdk_config`]) is
    /// checked the same way.
    pub(crate) fn aws_needs(&self, needs: Needs) -> AwsNeeds {
        let kinesis = needs.broker && self.broker == BrokerKind::Kinesis;
        let s3 = needs.stage && matches!(self.stage, Some(StageLocation::S3 { .. }));
        let copy =
            needs.warehouse && self.dialect == Dialect::Redshift && self.copy_iam_role.is_none();
        // GetClusterCredentials / GetCredentials are calls to a regional AWS API.
        let sign_in = needs.warehouse && self.redshift_iam.is_some();
        AwsNeeds {
            region: kinesis || s3 || sign_in,
            credentials: kinesis || s3 || copy || sign_in,
        }
    }
}

/// The form a warehouse URL takes, for messages.
const WAREHOUSE_URL_FORM: &str = "postgres://user:password@host:port/database";

/// Parses a warehouse connection string: a `postgres://` (or `postgresql://`) URL, or a
/// key=value string. The error names what is wrong and shows the string with its password
/// hidden, never as given.
pub(crate) fn parse_warehouse_url(
    url: &str,
) -> std::result::Result<tokio_postgres::Config, String> {
    let shown = crate::text::redact_connection_string(url);
    let form = WAREHOUSE_URL_FORM;
    match url.split_once("://") {
        Some((scheme, _))
            if !scheme.eq_ignore_ascii_case("postgres")
                && !scheme.eq_ignore_ascii_case("postgresql") =>
        {
            return Err(format!(
                "REDTRACK_WAREHOUSE_URL `{shown}` is a `{scheme}` URL; redtrack speaks \
                 PostgreSQL's protocol (as Redshift does): set it to {form}"
            ));
        }
        // The parser ends the user and password at the first `@`: the rest of a password
        // holding `@` would be taken for the host, and shown in every message naming it.
        Some((_, rest))
            if rest
                .split(['/', '?'])
                .next()
                .is_some_and(|authority| authority.matches('@').count() > 1) =>
        {
            return Err(format!(
                "REDTRACK_WAREHOUSE_URL `{shown}` holds more than one `@` before its host: \
                 percent-encode each `@` of the user or password as %40"
            ));
        }
        Some(_) => {}
        // A key=value string has `=`; anything else is a URL without its scheme.
        None if !url.contains('=') => {
            return Err(format!(
                "REDTRACK_WAREHOUSE_URL `{shown}` has no scheme: set it to {form}"
            ));
        }
        None => {}
    }
    let config = url.parse::<tokio_postgres::Config>().map_err(|e| {
        // The parser's message may quote a part of the string: hide passwords there too.
        format!(
            "REDTRACK_WAREHOUSE_URL `{shown}` is not a valid connection URL ({}): set it to \
             {form}",
            crate::text::redact_connection_string(&e.to_string())
        )
    })?;
    if config.get_user().is_none() {
        return Err(format!(
            "REDTRACK_WAREHOUSE_URL `{shown}` names no user: set it to {form}"
        ));
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err(format!(
            "REDTRACK_WAREHOUSE_URL `{shown}` names no host: set it to {form}"
        ));
    }
    Ok(config)
}

/// Reads the `REDTRACK_*` variables through `lookup`, and checks them for `needs`: every
/// problem in one [`Error::Config`].
pub(crate) fn from_lookup_for(
    lookup: impl Fn(&str) -> Option<String>,
    needs: Needs,
) -> Result<Config> {
    let read = read_lookup(lookup, needs);
    if read.problems.is_empty() {
        Ok(read.config)
    } else {
        Err(config_error(read.problems))
    }
}

/// What [`read_lookup`] found: the configuration as far as it could be read, and its problems.
pub(crate) struct Read {
    /// The configuration; with problems, only partly what was meant.
    pub(crate) config: Config,
    /// Every problem found, one line each.
    pub(crate) problems: Vec<String>,
    /// Whether the broker and the stage are as meant (their variables, if set, were valid), so
    /// that what they need of AWS can be told.
    pub(crate) kinds_known: bool,
}

/// Reads the `REDTRACK_*` variables through `lookup`, and checks them for `needs`.
pub(crate) fn read_lookup(lookup: impl Fn(&str) -> Option<String>, needs: Needs) -> Read {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    let mut problems = Vec::new();
    let mut kinds_known = true;
    // A stage that is set but cannot be taken is said once, as wrong, not again as missing.
    let mut stage_wrong = false;
    let mut b = Config::builder();
    if let Some(cluster) = get("REDTRACK_CLUSTER") {
        b = b.cluster(cluster);
    }
    if let Some(database) = get("REDTRACK_DATABASE") {
        b = b.database(database);
    }
    if let Some(broker) = get("REDTRACK_BROKER") {
        match broker.as_str() {
            "kinesis" => b = b.broker(BrokerKind::Kinesis),
            other => match other.strip_prefix("file:") {
                Some(dir) if !dir.is_empty() => b = b.broker(BrokerKind::File(PathBuf::from(dir))),
                _ => {
                    kinds_known = false;
                    problems.push(format!(
                        "REDTRACK_BROKER `{other}` is neither `kinesis` nor `file:<dir>`"
                    ));
                }
            },
        }
    }
    if let Some(stage) = get("REDTRACK_STAGE") {
        match StageLocation::parse(&stage) {
            Ok(stage) => b = b.stage(stage),
            Err(e) => {
                kinds_known = false;
                stage_wrong = true;
                problems.push(match e {
                    Error::Config(m) => m,
                    other => other.to_string(),
                });
            }
        }
    }
    if let Some(url) = get("REDTRACK_WAREHOUSE_URL") {
        if let Err(e) = parse_warehouse_url(&url) {
            problems.push(e);
        }
        b = b.warehouse_url(url);
    }
    if let Some(d) = get("REDTRACK_WAREHOUSE_DIALECT") {
        match d.to_ascii_lowercase().as_str() {
            "redshift" => b = b.dialect(Dialect::Redshift),
            "postgres" | "postgresql" => b = b.dialect(Dialect::Postgres),
            other => problems.push(format!(
                "REDTRACK_WAREHOUSE_DIALECT `{other}` is neither `redshift` nor `postgres`"
            )),
        }
    }
    if let Some(role) = get("REDTRACK_COPY_IAM_ROLE") {
        b = b.copy_iam_role(role);
    }
    if let Some(iam) = get("REDTRACK_REDSHIFT_IAM") {
        match RedshiftIam::parse(&iam) {
            Ok(iam) => b = b.redshift_iam(iam),
            Err(e) => problems.push(match e {
                Error::Config(m) => m,
                other => other.to_string(),
            }),
        }
    }
    let config = b.config;
    let mut all = name_problems(&config);
    all.extend(problems);
    // The URL, if set, was checked above; so was a stage that is set.
    let needs = Needs {
        stage: needs.stage && !stage_wrong,
        ..needs
    };
    all.extend(config.problems_with(needs, false));
    Read {
        config,
        problems: all,
        kinds_known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ConfigBuilder {
        Config::builder().cluster("c").database("d")
    }

    /// A password with an `@` not percent-encoded is refused, showing no part of it; encoded,
    /// or an `@` in the query, it is taken.
    #[test]
    fn an_unencoded_at_in_the_password_is_refused() {
        let e = parse_warehouse_url("postgres://u:pa@ss-word@h:5439/db").unwrap_err();
        assert!(e.contains("percent-encode each `@`"), "{e}");
        assert!(!e.contains("ss-word"), "{e}");
        parse_warehouse_url("postgres://u:pa%40ss@h:5439/db").unwrap();
        parse_warehouse_url("postgres://u:p@h:5439/db?application_name=a@b").unwrap();
        parse_warehouse_url("postgres://u@h/db").unwrap();
    }

    /// A stage that is set but wrong is one problem, said as wrong: not also "not set".
    #[test]
    fn a_wrong_stage_is_not_also_reported_missing() {
        let vars = |k: &str| {
            match k {
                "REDTRACK_CLUSTER" => Some("c"),
                "REDTRACK_DATABASE" => Some("d"),
                "REDTRACK_STAGE" => Some("http://bucket/prefix"),
                "REDTRACK_WAREHOUSE_URL" => Some("postgres://u:p@h/db"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let read = read_lookup(vars, Needs::LOADER);
        assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
        assert!(
            read.problems[0].starts_with("REDTRACK_STAGE `http://bucket/prefix` is neither"),
            "{:?}",
            read.problems
        );
        // Unset, it is said missing.
        let read = read_lookup(|k| vars(k).filter(|_| k != "REDTRACK_STAGE"), Needs::LOADER);
        assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
        assert!(
            read.problems[0].starts_with("REDTRACK_STAGE is not set"),
            "{:?}",
            read.problems
        );
    }

    #[test]
    fn a_writer_retrying_longer_than_the_dedupe_window_is_refused() {
        let c = builder().build().unwrap();
        assert!(c.write_retry_span() + ARRIVAL_MARGIN <= c.dedupe_window());
        let e = builder()
            .with_max_attempts(40)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("with_max_attempts 40") && e.contains("raise with_dedupe_window"),
            "{e}"
        );
        let e = builder()
            .with_attempt_timeout(Duration::from_secs(120))
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("with_attempt_timeout 120.0 s"), "{e}");
        // A longer window, or no identities (nothing to drop), takes the same writer.
        builder()
            .with_max_attempts(40)
            .with_dedupe_window(Duration::from_secs(3600))
            .build()
            .unwrap();
        builder()
            .with_max_attempts(40)
            .with_record_identity(false)
            .build()
            .unwrap();
        // A short window with a writer that gives up early.
        let c = builder()
            .with_max_attempts(3)
            .with_attempt_timeout(Duration::from_secs(2))
            .with_dedupe_window(Duration::from_secs(70))
            .build()
            .unwrap();
        assert_eq!(c.write_retry_span(), Duration::from_millis(6_150));
    }
}
