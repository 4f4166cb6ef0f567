//! The load path: drain every shard of a table's stream from its checkpoint, stage the events,
//! COPY them into the warehouse and record the loaded ranges in `kinesis_loads`, in one
//! transaction.
//!
//! ```text
//! list shards -> read each from its checkpoint (reader) -> gzip files (staging) -> stage + manifest
//!   -> txn { LOCK kinesis_loads; checkpoints unchanged?; no overlap?; COPY; INSERT ranges; COMMIT }
//! ```
//!
//! A crash anywhere before COMMIT leaves the checkpoints where they were, so the next load reads
//! the same records again; a crash after COMMIT leaves them past what was loaded. Staged files of
//! a load that never committed are left in the stage, unreferenced.
//!
//! OWNER: issue 5.

pub mod checkpoint;
mod reader;
mod staging;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

pub use checkpoint::{Checkpoint, LoadedRange, ShardRange};

use crate::broker::{AnyBroker, Broker, SequenceNumber};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::RedTrackEvent;
use crate::schema::Dialect;
use crate::stage::{load_folder, AnyStage, Manifest, Stage};
use crate::warehouse::{
    column, db_error, kinesis_loads_ddl, load_rejects_ddl, AnyWarehouse, CopyRequest, RejectedRow,
    StagedFile, Warehouse,
};
use reader::{read_shard, shard_done, Budget, ShardPlan};
use staging::{run_stager, staging_failed};

/// How many chunks of records may wait for the stager (bounds the loader's memory).
const CHANNEL_CHUNKS: usize = 2;

/// How many staged files are uploaded at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// Records trimmed from a shard before they were loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLoss {
    /// The stream.
    pub stream: String,
    /// The shard.
    pub shard_id: String,
    /// The last sequence number loaded (the checkpoint).
    pub after: SequenceNumber,
    /// The oldest sequence number still in the shard; records between were lost.
    pub first_available: SequenceNumber,
}

impl DataLoss {
    /// The [`Error::DataLoss`] describing this loss.
    pub fn into_error(self) -> Error {
        Error::DataLoss {
            stream: self.stream,
            shard_id: self.shard_id,
            after: self.after,
            first_available: self.first_available,
        }
    }
}

/// What one load pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Events loaded into the table.
    pub records: u64,
    /// Events rejected (at most MAXERROR), kept in `redtrack_load_rejects`.
    pub rejected: u64,
    /// The rejected rows with their reasons.
    pub rejects: Vec<RejectedRow>,
    /// Kinesis records read (a KPL aggregate counts once).
    pub kinesis_records: u64,
    /// Uncompressed bytes of event JSON staged.
    pub bytes: u64,
    /// The range loaded from each shard that had records.
    pub ranges: Vec<ShardRange>,
    /// Shards that lost records to the stream's retention (only with
    /// `ConfigBuilder::with_accept_data_loss`; otherwise the load fails instead).
    pub data_loss: Vec<DataLoss>,
    /// The load's id (its folder in the stage is `.../load-<id>/`); `None` if nothing was read.
    pub load_id: Option<String>,
    /// The manifest's URL; `None` if nothing was read.
    pub manifest_url: Option<String>,
    /// A limit (records, bytes or time) stopped the load: more may be waiting.
    pub more: bool,
    /// How long the load took.
    pub elapsed: Duration,
    /// How long reading and staging took (they overlap: the stager writes while readers read).
    pub read_elapsed: Duration,
    /// How long uploading the staged files and the manifest took.
    pub upload_elapsed: Duration,
    /// How long the transaction (LOCK, checks, COPY, bookkeeping, COMMIT) took.
    pub commit_elapsed: Duration,
}

/// What a continuous loader did until it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowReport {
    /// Load passes that committed or found nothing.
    pub loads: u64,
    /// Events loaded over all passes.
    pub records: u64,
    /// Events rejected over all passes.
    pub rejected: u64,
    /// Passes that failed with a retryable error (conflicts with other loaders, lost
    /// connections) and were tried again.
    pub retried: u64,
}

/// A shard of a stream and how far it was loaded, for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard as ListShards reports it.
    pub shard: crate::broker::ShardInfo,
    /// Its checkpoint, if it was ever loaded.
    pub checkpoint: Option<Checkpoint>,
    /// Closed and loaded to its end: nothing left.
    pub done: bool,
}

/// A row kept in `redtrack_load_rejects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReject {
    /// The load that rejected it.
    pub load_id: String,
    /// The row.
    pub row: RejectedRow,
    /// When (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
    pub rejected_at: String,
}

/// Loads events from the broker into the warehouse.
///
/// ```no_run
/// # async fn run<E: redtrack_runtime::RedTrackEvent>() -> redtrack_runtime::Result<()> {
/// let loader = redtrack_runtime::Loader::new(redtrack_runtime::Config::from_env()?).await?;
/// loader.setup::<E>().await?;
/// let report = loader.load::<E>().await?;
/// println!("{} events loaded", report.records);
/// # Ok(()) }
/// ```
///
/// The loader works through the [`Broker`], [`Stage`] and [`Warehouse`] traits only: any of the
/// three can be one of your own ([`Loader::with_broker`], [`Loader::with_parts`]).
#[derive(Debug)]
pub struct Loader<B: Broker = AnyBroker, S: Stage = AnyStage, W: Warehouse = AnyWarehouse> {
    config: Config,
    broker: B,
    stage: S,
    warehouse: W,
    slices: tokio::sync::OnceCell<usize>,
    progress: Arc<std::sync::atomic::AtomicU64>,
}

impl Loader<AnyBroker> {
    /// Connects to the broker, the stage and the warehouse named by `config`.
    pub async fn new(config: Config) -> Result<Loader> {
        let broker = AnyBroker::from_config(&config).await?;
        Loader::with_broker(config, broker).await
    }
}

impl<B: Broker> Loader<B> {
    /// A loader reading from `broker` (a broker of your own, or one wrapped for tests); stage
    /// and warehouse from `config`.
    pub async fn with_broker(config: Config, broker: B) -> Result<Loader<B>> {
        let stage = AnyStage::from_config(&config).await?;
        let warehouse = AnyWarehouse::from_config(&config).await?;
        Loader::with_parts(config, broker, stage, warehouse)
    }
}

impl<B: Broker, S: Stage, W: Warehouse> Loader<B, S, W> {
    /// A loader of these parts; `config` gives the stream names and the loader's knobs.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the warehouse cannot COPY from this stage (Redshift reads only S3).
    pub fn with_parts(config: Config, broker: B, stage: S, warehouse: W) -> Result<Self> {
        warehouse.check_stage(&stage)?;
        Ok(Loader {
            config,
            broker,
            stage,
            warehouse,
            slices: tokio::sync::OnceCell::new(),
            progress: Arc::default(),
        })
    }

    /// Broker records read so far by the load in progress (a KPL aggregate counts once), for
    /// progress displays; reset when a load starts. With several loads of one `Loader` at once,
    /// their sum.
    pub fn records_read(&self) -> u64 {
        self.progress.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The broker.
    pub fn broker(&self) -> &B {
        &self.broker
    }

    /// The stage.
    pub fn stage(&self) -> &S {
        &self.stage
    }

    /// The warehouse.
    pub fn warehouse(&self) -> &W {
        &self.warehouse
    }

    /// Creates `kinesis_loads`, `redtrack_load_rejects` and `E`'s table unless they exist;
    /// idempotent.
    pub async fn setup<E: RedTrackEvent>(&self) -> Result<()> {
        let client = self.warehouse.connect().await?;
        let dialect = self.warehouse.dialect();
        for (what, sql) in [
            ("kinesis_loads", kinesis_loads_ddl(dialect)),
            ("redtrack_load_rejects", load_rejects_ddl(dialect)),
            (E::TABLE_NAME, E::schema().create_table_sql(dialect)),
        ] {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| db_error(&format!("creating {what}"), e))?;
        }
        Ok(())
    }

    /// The latest checkpoint of every shard ever loaded for `E`'s stream.
    pub async fn checkpoints<E: RedTrackEvent>(&self) -> Result<Vec<Checkpoint>> {
        let client = self.warehouse.connect().await?;
        let stream = self.config.stream_name(E::TABLE_NAME);
        let mut cps: Vec<Checkpoint> = checkpoint::read_checkpoints(&client, &stream)
            .await?
            .into_values()
            .collect();
        cps.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(cps)
    }

    /// Every shard of `E`'s stream with how far it was loaded.
    pub async fn status<E: RedTrackEvent>(&self) -> Result<Vec<ShardStatus>> {
        let stream = self.config.stream_name(E::TABLE_NAME);
        let shards = self.broker.list_shards(&stream).await?;
        let client = self.warehouse.connect().await?;
        let mut cps = checkpoint::read_checkpoints(&client, &stream).await?;
        Ok(shards
            .into_iter()
            .map(|shard| {
                let checkpoint = cps.remove(&shard.shard_id);
                let done = shard_done(&shard, checkpoint.as_ref().map(|c| &c.sequence_number));
                ShardStatus {
                    shard,
                    checkpoint,
                    done,
                }
            })
            .collect())
    }

    /// The `limit` most recent rows of `kinesis_loads` for `E`'s stream, newest first.
    pub async fn recent_loads<E: RedTrackEvent>(&self, limit: u32) -> Result<Vec<LoadedRange>> {
        const WHAT: &str = "reading kinesis_loads";
        let client = self.warehouse.connect().await?;
        let stream = self.config.stream_name(E::TABLE_NAME);
        let rows = client
            .query(&checkpoint::recent_loads_sql(limit), &[&stream])
            .await
            .map_err(|e| db_error(WHAT, e))?;
        rows.iter()
            .map(|r| {
                Ok(LoadedRange {
                    shard_id: column(r, 0, WHAT)?,
                    starting_sequence_number: column::<String>(r, 1, WHAT)?.into(),
                    ending_sequence_number: column::<String>(r, 2, WHAT)?.into(),
                    load_timestamp: column::<Option<String>>(r, 3, WHAT)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The `limit` most recent rejected rows of `E`'s table, newest first.
    pub async fn rejects<E: RedTrackEvent>(&self, limit: u32) -> Result<Vec<KeptReject>> {
        const WHAT: &str = "reading redtrack_load_rejects";
        let client = self.warehouse.connect().await?;
        let rows = client
            .query(&checkpoint::recent_rejects_sql(limit), &[&E::TABLE_NAME])
            .await
            .map_err(|e| db_error(WHAT, e))?;
        rows.iter()
            .map(|r| {
                Ok(KeptReject {
                    load_id: column(r, 0, WHAT)?,
                    row: RejectedRow {
                        file: column(r, 1, WHAT)?,
                        line: u64::try_from(column::<i64>(r, 2, WHAT)?).unwrap_or(0),
                        column: column(r, 3, WHAT)?,
                        value: column(r, 4, WHAT)?,
                        reason: column(r, 5, WHAT)?,
                    },
                    rejected_at: column::<Option<String>>(r, 6, WHAT)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn slices(&self, client: &tokio_postgres::Client) -> Result<usize> {
        self.slices
            .get_or_try_init(|| self.warehouse.slices(client))
            .await
            .copied()
    }

    /// One pass over every shard of `E`'s stream: read from the checkpoints, stage, and COPY +
    /// record the ranges in one transaction. Fails with [`Error::LoadConflict`] (retryable,
    /// nothing loaded) if another loader loaded the same shards meanwhile.
    pub async fn load<E: RedTrackEvent>(&self) -> Result<LoadReport> {
        let started = Instant::now();
        let table = E::TABLE_NAME;
        let stream = self.config.stream_name(table);
        let settings = &self.config.loader;
        let mut client = self.warehouse.connect().await?;
        let slices = self.slices(&client).await?;
        let expected = checkpoint::read_checkpoints(&client, &stream).await?;
        let shards = self.broker.list_shards(&stream).await?;

        let mut plans = Vec::new();
        for shard in shards {
            let cp = expected
                .get(&shard.shard_id)
                .map(|c| c.sequence_number.clone());
            if shard_done(&shard, cp.as_ref()) {
                continue;
            }
            plans.push(ShardPlan {
                index: plans.len(),
                shard,
                checkpoint: cp,
            });
        }
        let shard_ids: Vec<String> = plans.iter().map(|p| p.shard.shard_id.clone()).collect();

        let now = chrono::Utc::now();
        let load_id = format!("{}-{:08x}", now.format("%H%M%S"), rand::random::<u32>());
        let folder = load_folder(
            self.config.cluster(),
            self.config.database(),
            table,
            &now.format("%Y%m%d").to_string(),
            &load_id,
        );
        let local_dir = self.local_dir(&load_id);
        let n_files = slices * settings.files_per_slice;

        // Read every shard (several at once) into the stager on a blocking thread.
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let stager = {
            let dir = local_dir.clone();
            let stream = stream.clone();
            let ids = shard_ids.clone();
            // redtrack's records carry every column's key: only a table whose one column is
            // `data` could be mistaken for the gem's `{"data": "<json>"}` envelope.
            let envelopes = !matches!(E::schema().columns, [only] if only.name == "data");
            tokio::task::spawn_blocking(move || {
                run_stager(rx, &dir, n_files, &stream, &ids, envelopes)
            })
        };
        let budget = Arc::new(Mutex::new(Budget {
            records: settings.max_load_records,
            bytes: settings.max_load_bytes,
            deadline: Instant::now() + settings.max_load_time,
            exhausted: false,
            progress: {
                self.progress.store(0, std::sync::atomic::Ordering::Relaxed);
                self.progress.clone()
            },
        }));
        // Futures built in a loop, not by a closure in a stream combinator: that keeps
        // `load` spawnable (a closure there makes its future's Send-ness lifetime-specific).
        let mut reading = Vec::with_capacity(plans.len());
        for plan in plans {
            reading.push(read_shard(
                &self.broker,
                &stream,
                plan,
                budget.clone(),
                tx.clone(),
                settings.accept_data_loss,
            ));
        }
        // Reads that wait on the network pay to run many at once; a local broker's reads are CPU
        // work, and the broker says how many are worth it.
        let concurrency = match self.broker.max_parallel_reads() {
            Some(n) => settings.read_concurrency.min(n.max(1)),
            None => settings.read_concurrency,
        };
        let reads: Result<Vec<_>> = stream::iter(reading)
            .buffer_unordered(concurrency)
            .try_collect()
            .await;
        drop(tx);
        let staged = stager.await.map_err(|e| staging_failed(&local_dir, e));
        let cleanup = || {
            let _ = std::fs::remove_dir_all(&local_dir);
        };
        let (reads, staged) = match (reads, staged) {
            (Ok(r), Ok(Ok(s))) => (r, s),
            (Err(e), _) | (_, Err(e)) | (_, Ok(Err(e))) => {
                cleanup();
                return Err(e);
            }
        };
        let mut report = LoadReport {
            read_elapsed: started.elapsed(),
            more: budget.lock().map(|b| b.exhausted).unwrap_or(false),
            ..LoadReport::default()
        };
        for read in reads {
            if let Some(loss) = read.loss {
                report.data_loss.push(loss);
            }
            if let Some(range) = read.range {
                report.kinesis_records += range.records;
                report.ranges.push(range);
            }
        }
        report.ranges.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        if report.ranges.is_empty() {
            cleanup();
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        report.bytes = staged.bytes;

        // Upload the files, then the manifest naming them (unless only closed shards' ends and
        // no events were found).
        let upload_started = Instant::now();
        let (files, manifest_url) = if staged.lines > 0 {
            let upload = self.upload(&folder, &staged).await;
            cleanup();
            let files = upload?;
            let manifest_key = format!("{folder}/manifest.json");
            let manifest = Manifest::new(files.iter().map(|f| f.url.clone()));
            self.stage
                .put_bytes(&manifest_key, manifest.to_bytes())
                .await?;
            (files, Some(self.stage.url(&manifest_key)))
        } else {
            cleanup();
            (Vec::new(), None)
        };

        report.upload_elapsed = upload_started.elapsed();
        let commit_started = Instant::now();
        let committed = checkpoint::commit_load(
            &mut client,
            &self.warehouse,
            &self.stage,
            checkpoint::Commit {
                stream: &stream,
                table,
                expected: &expected,
                ranges: &report.ranges,
                staging_rejects: staged.rejects,
                copy: CopyRequest {
                    table: E::schema(),
                    load_id: load_id.clone(),
                    folder,
                    manifest_url: manifest_url.clone().unwrap_or_default(),
                    files,
                    max_errors: settings.max_errors,
                },
            },
        )
        .await;
        let outcome = match committed {
            Ok(outcome) => outcome,
            Err(Error::LoadRejected {
                table: t,
                rejected,
                max_errors,
                first,
            }) => {
                // Nothing was loaded; the first bad row is kept where `errors` shows it.
                let mut row = (*first).clone();
                row.reason = format!(
                    "load failed, nothing loaded ({rejected} rows rejected, MAXERROR {max_errors}): {}",
                    row.reason
                );
                let kept = checkpoint::keep_rejects(
                    &client,
                    &load_id,
                    table,
                    std::slice::from_ref(&row),
                    &checkpoint::now_text(),
                )
                .await;
                if let Err(e) = kept {
                    tracing::warn!(table, error = %e, "could not keep the failed load's reject");
                }
                return Err(Error::LoadRejected {
                    table: t,
                    rejected,
                    max_errors,
                    first,
                });
            }
            Err(e) => return Err(e),
        };
        report.commit_elapsed = commit_started.elapsed();
        report.records = outcome.loaded;
        report.rejected = outcome.rejected.len() as u64;
        report.rejects = outcome.rejected;
        report.load_id = Some(load_id);
        report.manifest_url = manifest_url;
        report.elapsed = started.elapsed();
        if report.rejected > 0 {
            tracing::warn!(
                table,
                rejected = report.rejected,
                "rows rejected under MAXERROR; kept in redtrack_load_rejects"
            );
        }
        tracing::info!(
            table,
            records = report.records,
            shards = report.ranges.len(),
            elapsed_ms = report.elapsed.as_millis() as u64,
            "load committed"
        );
        Ok(report)
    }

    /// Where a load writes its files before they go to the stage: beside a directory stage
    /// (so moving them is a rename), else the configured or system temporary directory.
    fn local_dir(&self, load_id: &str) -> PathBuf {
        let base = match &self.config.loader.staging_dir {
            Some(dir) => dir.clone(),
            None => self
                .stage
                .preferred_local_dir()
                .unwrap_or_else(|| std::env::temp_dir().join("redtrack")),
        };
        base.join(format!("load-{load_id}"))
    }

    async fn upload(&self, folder: &str, staged: &staging::Staged) -> Result<Vec<StagedFile>> {
        let first = std::sync::atomic::AtomicBool::new(true);
        let mut uploads = Vec::with_capacity(staged.files.len());
        for (i, local) in staged.files.iter().enumerate() {
            let first = &first;
            uploads.push(async move {
                let key = format!("{folder}/{}", staging::part_name(i));
                self.stage.put_file(&key, &local.path).await?;
                if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    crate::hooks::pause_at(crate::hooks::Phase::Upload).await;
                }
                Ok::<_, Error>(StagedFile {
                    url: self.stage.url(&key),
                    key,
                    lines: local.lines,
                })
            });
        }
        let files: Vec<StagedFile> = stream::iter(uploads)
            .buffered(UPLOAD_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(files)
    }

    /// Loads continuously: a pass, then another at once if a limit cut it short, else after
    /// `interval`; until SIGINT or SIGTERM, which stop it between passes (a pass under way
    /// finishes or fails whole). Retryable failures (conflicts with other loaders, lost
    /// connections) are logged and tried again; others end the loop with the error.
    pub async fn load_follow<E: RedTrackEvent>(&self, interval: Duration) -> Result<FollowReport> {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let stop = stop.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                stop.notify_waiters();
            })
        };
        let mut report = FollowReport::default();
        let result = loop {
            if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                break Ok(report);
            }
            let wait = match self.load::<E>().await {
                Ok(r) => {
                    report.loads += 1;
                    report.records += r.records;
                    report.rejected += r.rejected;
                    if r.more {
                        Duration::ZERO
                    } else {
                        interval
                    }
                }
                Err(e) if e.is_retryable() => {
                    report.retried += 1;
                    tracing::warn!(table = E::TABLE_NAME, error = %e, "load failed; trying again");
                    interval.min(Duration::from_secs(5))
                }
                Err(e) => break Err(e),
            };
            if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                break Ok(report);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.notified() => {}
            }
        };
        watcher.abort();
        result
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Every statement the loader sends to Redshift for `table`, for SQL linters: bound parameters
/// (`$1`, `$2`, ...) appear as sample literals, as the server sees them after binding.
pub fn redshift_statements(table: &'static crate::schema::TableSchema) -> Vec<String> {
    use crate::warehouse::redshift;
    let req = CopyRequest {
        table,
        load_id: "033535-4f720c9b".into(),
        folder: format!(
            "redtrack/cluster/db/{}/20261124/load-033535-4f720c9b",
            table.name
        ),
        manifest_url: format!(
            "s3://bucket/prefix/redtrack/cluster/db/{}/20261124/load-033535-4f720c9b/manifest.json",
            table.name
        ),
        files: Vec::new(),
        max_errors: 10,
    };
    let mut out = vec![
        kinesis_loads_ddl(Dialect::Redshift),
        load_rejects_ddl(Dialect::Redshift),
        redshift::SLICES_SQL.to_owned(),
        checkpoint::CHECKPOINTS_SQL.to_owned(),
        redshift::LOCK_SQL.to_owned(),
        checkpoint::OVERLAP_SQL.to_owned(),
        checkpoint::INSERT_RANGE_SQL.to_owned(),
        checkpoint::INSERT_REJECT_SQL.to_owned(),
        checkpoint::recent_loads_sql(20),
        checkpoint::recent_rejects_sql(20),
        redshift::LAST_COPY_COUNT_SQL.to_owned(),
        redshift::LOAD_ERRORS_SQL.to_owned(),
    ];
    for auth in [
        redshift::iam_role_clause("arn:aws:iam::123456789012:role/redtrack-copy"),
        redshift::credentials_clause("AKIAEXAMPLE", "secret", None),
        redshift::credentials_clause("ASIAEXAMPLE", "secret", Some("token")),
    ]
    .into_iter()
    .flatten()
    {
        out.extend(redshift::copy_sql(&req, &auth, req.max_errors));
    }
    out.into_iter().map(|s| bind_samples(&s)).collect()
}

/// `$n` replaced by a sample string literal.
fn bind_samples(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push_str("'49590338271490256608559692538361571095921575989136588898'");
        } else {
            out.push(c);
        }
    }
    out
}

/// The per-shard checkpoints as a map, for callers that compare them.
pub fn checkpoint_map(cps: &[Checkpoint]) -> HashMap<&str, &str> {
    cps.iter()
        .map(|c| (c.shard_id.as_str(), c.sequence_number.as_str()))
        .collect()
}
