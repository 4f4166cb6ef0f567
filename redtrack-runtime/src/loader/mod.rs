//! The load path: drain every shard of a table's stream from its checkpoint, stage the events,
//! COPY them into the warehouse and record the loaded ranges in `kinesis_loads`, in one
//! transaction.
//!
//! ```text
//! list shards -> read each from its checkpoint (reader) -> drop twins (dedupe) -> gzip files
//!   (staging) -> stage + manifest -> txn { LOCK <table>; checkpoints unchanged?; no overlap?;
//!   identities; COPY; INSERT ranges; COMMIT }
//! ```
//!
//! A crash anywhere before COMMIT leaves the checkpoints where they were, so the next load reads
//! the same records again; a crash after COMMIT leaves them past what was loaded. Staged files of
//! a load that never committed are left in the stage, unreferenced.
//!
//! Rooms: `load` (one pass: plan, read and stage, upload, commit), `reader` (one shard),
//! `validate` (each record checked against the table's columns), `staging` (gzip files),
//! `dedupe` (twins of records already loaded, and the identities the loader remembers),
//! `commit` (the transaction), `checkpoint` (`kinesis_loads`), `retention` (the data-loss rule),
//! `rejects` (`redtrack_load_rejects`), `redrive` (loading kept rejects again), `follow` (loading
//! continuously), `inspect` (status queries), `report` (what the loader returns).

pub(crate) mod checkpoint;
mod commit;
pub(crate) mod dedupe;
mod follow;
mod inspect;
mod load;
mod reader;
pub(crate) mod redrive;
pub(crate) mod rejects;
mod report;
mod retention;
mod staging;
mod validate;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use checkpoint::{Checkpoint, LoadedRange, ShardRange};
pub use dedupe::dedupe_table;
pub use report::{DataLoss, FollowReport, KeptReject, LoadReport, RedriveReport, ShardStatus};

pub(crate) use checkpoint::kinesis_loads_ddl;
use dedupe::dedupe_ddl;
pub(crate) use rejects::load_rejects_ddl;
pub(crate) use validate::RecordRules;

use crate::aws::Aws;
use crate::broker::{AnyBroker, Broker, StreamInfo};
use crate::config::{Config, Needs};
use crate::error::Result;
use crate::event::RedTrackEvent;
use crate::schema::{KINESIS_LOADS, LOAD_REJECTS};
use crate::stage::{AnyStage, Stage};
use crate::warehouse::{db_error, AnyWarehouse, Warehouse};

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
    /// Each stream's settings, as last asked (see [`STREAM_INFO_TTL`]).
    stream_infos: std::sync::Mutex<HashMap<String, (Instant, StreamInfo)>>,
}

/// How long the loader keeps a stream's settings before it asks again.
const STREAM_INFO_TTL: Duration = Duration::from_secs(300);

impl Loader<AnyBroker> {
    /// Connects to the broker, the stage and the warehouse named by `config`. The three share
    /// one AWS SDK configuration (loaded once, credentials cached).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) listing everything missing or wrong, at once and
    /// before any call to a service: no stage or warehouse URL, a stage the warehouse cannot
    /// COPY from, no AWS region or credentials where Kinesis, S3 or COPY need them. The
    /// warehouse itself is first reached by the first call that needs it.
    pub async fn new(config: Config) -> Result<Loader> {
        let aws = Aws::default();
        crate::aws::check(&config, Needs::LOADER, &aws).await?;
        let broker = AnyBroker::with_aws(&config, &aws).await?;
        let stage = AnyStage::with_aws(&config, &aws).await?;
        let warehouse = AnyWarehouse::with_aws(&config, &aws)?;
        Loader::with_parts(config, broker, stage, warehouse)
    }
}

impl<B: Broker> Loader<B> {
    /// A loader reading from `broker` (a broker of your own, or one wrapped for tests); stage
    /// and warehouse from `config`.
    pub async fn with_broker(config: Config, broker: B) -> Result<Loader<B>> {
        let aws = Aws::default();
        let needs = Needs {
            broker: false,
            ..Needs::LOADER
        };
        crate::aws::check(&config, needs, &aws).await?;
        let stage = AnyStage::with_aws(&config, &aws).await?;
        let warehouse = AnyWarehouse::with_aws(&config, &aws)?;
        Loader::with_parts(config, broker, stage, warehouse)
    }
}

impl<B: Broker, S: Stage, W: Warehouse> Loader<B, S, W> {
    /// A loader of these parts; `config` gives the stream names and the loader's knobs.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) if the warehouse cannot COPY from this stage (Redshift reads only S3).
    pub fn with_parts(config: Config, broker: B, stage: S, warehouse: W) -> Result<Self> {
        warehouse.check_stage(&stage)?;
        Ok(Loader {
            config,
            broker,
            stage,
            warehouse,
            slices: tokio::sync::OnceCell::new(),
            progress: Arc::default(),
            stream_infos: Default::default(),
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

    /// Creates `kinesis_loads`, `redtrack_load_rejects`, `E`'s table and the table of the
    /// record identities loaded into it ([`dedupe_table`]) unless they exist, and
    /// adds redtrack's columns to a `kinesis_loads` the Ruby gem (or an older redtrack) made,
    /// keeping its rows; idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::Warehouse`](crate::Error::Warehouse) naming the table it was creating, with the
    /// server's message.
    pub async fn setup<E: RedTrackEvent>(&self) -> Result<()> {
        let client = self.warehouse.connect().await?;
        let dialect = self.warehouse.dialect();
        let ids = dedupe_table(E::TABLE_NAME);
        for (what, sql) in [
            (KINESIS_LOADS, kinesis_loads_ddl(dialect)),
            (LOAD_REJECTS, load_rejects_ddl(dialect)),
            (
                rejects::LOAD_REJECT_PARTS,
                rejects::load_reject_parts_ddl(dialect),
            ),
            (E::TABLE_NAME, E::schema().create_table_sql(dialect)),
            (ids.as_str(), dedupe_ddl(E::TABLE_NAME, dialect)),
        ] {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| db_error(&format!("creating {what}"), e))?;
        }
        // Tables of the Ruby gem or an older redtrack get redtrack's columns.
        checkpoint::add_missing_columns(&client, KINESIS_LOADS, checkpoint::ADDED_COLUMNS).await?;
        checkpoint::add_missing_columns(&client, LOAD_REJECTS, rejects::ADDED_COLUMNS).await
    }

    /// The stream's settings (retention, limits), asked of the broker at most every
    /// [`STREAM_INFO_TTL`].
    async fn stream_info(&self, stream: &str) -> Result<StreamInfo> {
        let cached = self
            .stream_infos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(stream)
            .filter(|(at, _)| at.elapsed() < STREAM_INFO_TTL)
            .map(|(_, info)| info.clone());
        if let Some(info) = cached {
            return Ok(info);
        }
        let info = self.broker.stream_info(stream).await?;
        self.stream_infos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.to_owned(), (Instant::now(), info.clone()));
        Ok(info)
    }

    async fn slices(&self, client: &tokio_postgres::Client) -> Result<usize> {
        self.slices
            .get_or_try_init(|| self.warehouse.slices(client))
            .await
            .copied()
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
}
