//! Exactly-once rows: an event written once lands once, even when Kinesis stored a PutRecords
//! call whose answer was lost and the writer sent its records again (a twin).
//!
//! Twins are made by fault injectors around the real client: the HTTP proxy of `fault_kinesis`
//! (PutRecords reaches the emulator, then the answer is cut off or comes after the client gave
//! up), and [`Twinning`], a broker wrapper that stores a call and then answers with a timeout
//! (and can split the shards before it answers, so the retry lands in a child shard). Both can
//! hold the retries until the test releases them, so that twins land after a load on purpose.
//! Loads then run with a loader killed mid-way (SIGKILL at a phase, as in `loader_crash`), with
//! three loaders racing, across a shard split, with aggregation on and off, for events whose
//! identity is their partition key and events whose identity is a KPL tag (a `partition_key`
//! field): each event must be in the table exactly once. Records of other producers, which
//! carry no identity, load as before.

use crate::common::Backend;
use crate::fault_kinesis::{proxied_config, Counts, Faults};
use crate::{common, loader_crash};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use redtrack::__test::Phase;
use redtrack::broker::aggregate::{deaggregate, Aggregator};
use redtrack::broker::{
    AnyBroker, Broker, KinesisBroker, PutOutcome, PutRecord, ShardInfo, ShardReader,
    StartingPosition,
};
use redtrack::identity::{RecordId, TAG_KEY};
use redtrack::{Client, Config, Error, LoadReport, Loader, RedTrackEvent};
use tokio::sync::watch;

/// An event whose identity is its partition key.
#[derive(RedTrackEvent)]
#[redtrack(table = "once_events")]
pub struct OnceEvent {
    pub id: i32,
    #[redtrack(type = "varchar(64)")]
    pub note: Option<String>,
}

/// An event with a partition key of its own: its identity travels in a KPL tag.
#[derive(RedTrackEvent)]
#[redtrack(table = "once_keyed")]
pub struct KeyedOnce {
    #[redtrack(type = "varchar(16)", partition_key)]
    pub user: String,
    pub id: i32,
}

/// The events of these tests: made from their number, which is their `id` column.
pub trait Numbered: RedTrackEvent + Send + Sync + 'static {
    fn make(id: i32) -> Self;
}

impl Numbered for OnceEvent {
    fn make(id: i32) -> Self {
        OnceEvent {
            id,
            note: Some(format!("event {id}")),
        }
    }
}

impl Numbered for KeyedOnce {
    fn make(id: i32) -> Self {
        KeyedOnce {
            user: format!("user-{}", id % 7),
            id,
        }
    }
}

/// Tells `loader_child` it is the child: `<table>:<max load records>`.
const CHILD_ENV: &str = "REDTRACK_ONCE_CHILD";

/// In the child process: one load of the named table, with the inherited environment.
#[tokio::test]
async fn loader_child() {
    let Ok(what) = std::env::var(CHILD_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let (table, budget) = what.split_once(':').expect("<table>:<records>");
    let config = Config::from_env()
        .expect("the child's configuration")
        .into_builder()
        .with_max_load_records(budget.parse().expect("a number"))
        .build()
        .unwrap();
    let loader = Loader::new(config).await.expect("the child's loader");
    let report = match table {
        "once_events" => loader.load::<OnceEvent>().await,
        "once_keyed" => loader.load::<KeyedOnce>().await,
        other => panic!("no table {other}"),
    };
    println!("LOADED {}", report.expect("the child's load").records);
}

/// Runs a child loader of `E` (at most `budget` records) and SIGKILLs it at `phase`.
fn kill_loader_at<E: Numbered>(env: &common::TestEnv, phase: Phase, budget: u64) {
    let mark = format!("{}:{budget}", E::TABLE_NAME);
    loader_crash::kill_child(env, phase, "exactly_once::loader_child", (CHILD_ENV, &mark));
}

/// A fresh environment loading into `backend`: PostgreSQL, or the Redshift stand-in as a
/// provisioned cluster (SNAPSHOT isolation) or as Serverless (SERIALIZABLE). The Redshift
/// variants of these tests share out the two modes.
async fn env_of(name: &str, backend: Backend) -> common::TestEnv {
    common::TestEnv::on(backend, name).await
}

/// Every copy of every event in `E`'s stream, read straight from the emulator: the shards
/// holding each event's copies, by its id.
async fn stored_copies<E: Numbered>(env: &common::TestEnv) -> BTreeMap<i32, Vec<String>> {
    let broker = KinesisBroker::from_client(env.kinesis().await);
    let stream = env.stream_name(E::TABLE_NAME);
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for shard in broker.list_shards(&stream).await.unwrap() {
        let mut r = broker
            .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        loop {
            let batch = r.next_batch(10_000).await.unwrap();
            for rec in &batch.records {
                assert!(
                    seen.insert((shard.shard_id.clone(), rec.sequence_number.clone())),
                    "record {} of {} read twice",
                    rec.sequence_number,
                    shard.shard_id
                );
                for user in deaggregate(&rec.partition_key, &rec.data).unwrap() {
                    let v: serde_json::Value = serde_json::from_slice(&user.data).unwrap();
                    let id = v["id"].as_i64().unwrap() as i32;
                    out.entry(id).or_default().push(shard.shard_id.clone());
                }
            }
            if batch.records.is_empty() {
                break;
            }
        }
    }
    out
}

/// The copies beyond the first of each event: what the loader must drop.
fn extra_copies(copies: &BTreeMap<i32, Vec<String>>) -> u64 {
    copies.values().map(|c| c.len() as u64 - 1).sum()
}

/// Loads until a load finds nothing; the committed loads' reports.
async fn drain<E: Numbered>(loader: &Loader) -> Vec<LoadReport> {
    let mut reports = Vec::new();
    loop {
        let r = loader.load::<E>().await.unwrap();
        let done = r.records == 0 && r.twins == 0 && !r.more;
        reports.push(r);
        if done {
            return reports;
        }
    }
}

fn twins_dropped(reports: &[LoadReport]) -> u64 {
    reports.iter().map(|r| r.twins).sum()
}

/// `E`'s table holds the events `0..n`, each exactly once.
async fn assert_each_once<E: Numbered>(env: &common::TestEnv, n: i32) {
    let row = env
        .pg()
        .await
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {}",
                E::TABLE_NAME
            ),
            &[],
        )
        .await
        .unwrap();
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    let (min, max): (Option<i32>, Option<i32>) = (row.get(2), row.get(3));
    assert_eq!(
        (rows, distinct, min, max),
        (i64::from(n), i64::from(n), Some(0), Some(n - 1)),
        "each of the {n} events exactly once: (rows, distinct ids, min id, max id)"
    );
}

/// Writes events `ids` from `tasks` tasks at once; counts the acknowledged ones in `acked`.
/// Every write must succeed. A task waits for each write before the next, or, `pipelined`,
/// hands all its events to the client and then waits for their acknowledgements (so that a
/// write whose retry is held does not hold up the task's other events).
fn write_from_tasks<E: Numbered>(
    client: &Client<impl Broker + 'static>,
    ids: std::ops::Range<i32>,
    tasks: i32,
    acked: Arc<AtomicU64>,
    pipelined: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let client = client.clone();
            let acked = acked.clone();
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut acks = FuturesUnordered::new();
                for id in ids.skip(t as usize).step_by(tasks as usize) {
                    let ack = client.enqueue(&E::make(id)).await.unwrap();
                    acks.push(async move { (id, ack.await) });
                    while let Some((id, result)) = if pipelined {
                        acks.next().now_or_never().flatten()
                    } else {
                        acks.next().await
                    } {
                        result.unwrap_or_else(|e| panic!("event {id} was not written: {e}"));
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
                while let Some((id, result)) = acks.next().await {
                    result.unwrap_or_else(|e| panic!("event {id} was not written: {e}"));
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

/// Waits (at most two minutes) until `state()` says it is done; its text says where it is.
async fn wait_until(what: &str, state: impl Fn() -> (bool, String)) {
    for _ in 0..1200 {
        if state().0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}: {}", state().1);
}

// ------------------------------------------------------------------------------------------
// Through the HTTP fault injector: the real SDK, the emulator, answers lost on the wire.

/// 32 tasks write 20,000 events while a tenth of the PutRecords calls lose their answers after
/// the emulator stored them (cut off, or answered after the client's 1 s attempt timeout); the
/// stream holds twins. A first load, a loader killed mid-COPY, then loads until drained: each
/// event is in the table once, and every extra copy was dropped as a twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_leave_twins_yet_each_event_loads_once() {
    let env = common::TestEnv::named("lost").await;
    let counts = Arc::new(Counts::default());
    let faults = Arc::new(Faults::losing(10, Some(Duration::from_millis(1500)), None));
    let config = proxied_config(&env, counts.clone(), faults)
        .await
        .with_attempt_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<OnceEvent>(2).await.unwrap();
    const N: i32 = 20_000;
    let acked = Arc::new(AtomicU64::new(0));
    for t in write_from_tasks::<OnceEvent>(&client, 0..N, 32, acked.clone(), false) {
        t.await.unwrap();
    }
    client.close().await.unwrap();
    assert_eq!(acked.load(Ordering::SeqCst), N as u64);
    assert!(counts.answers_lost.load(Ordering::SeqCst) > 0);
    assert!(
        counts.answers_late.load(Ordering::SeqCst) > 0,
        "some answers came late"
    );

    let copies = stored_copies::<OnceEvent>(&env).await;
    assert_eq!(copies.len(), N as usize, "every event is in the stream");
    let extra = extra_copies(&copies);
    assert!(extra > 0, "the stream holds twins");

    let loader = Loader::new(
        env.config()
            .into_builder()
            .with_max_load_records(6_000)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    loader.setup::<OnceEvent>().await.unwrap();
    let first = loader.load::<OnceEvent>().await.unwrap();
    assert!(first.records > 0 && first.more, "{first:?}");
    kill_loader_at::<OnceEvent>(&env, Phase::Copy, 6_000);
    let mut reports = vec![first];
    reports.extend(drain::<OnceEvent>(&loader).await);
    assert_each_once::<OnceEvent>(&env, N).await;
    assert_eq!(
        twins_dropped(&reports),
        extra,
        "every extra copy dropped as a twin"
    );
}

/// The same, with every retry held until a load has taken the first copies: each twin lands in
/// a later load than its first copy, and a loader is killed mid-COPY while it loads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_split_across_two_loads_on_purpose_load_once() {
    twins_split_across_two_loads(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_split_across_two_loads_on_purpose_load_once_redshift_serverless() {
    twins_split_across_two_loads(Backend::RedshiftServerless).await;
}

async fn twins_split_across_two_loads(backend: Backend) {
    let env = env_of("split2", backend).await;
    let counts = Arc::new(Counts::default());
    let (release, hold) = watch::channel(false);
    let faults = Arc::new(Faults::losing(30, None, Some(hold)));
    // Attempts that outlast the hold, and a writer span that fits the default window.
    let config = proxied_config(&env, counts.clone(), faults.clone())
        .await
        .with_attempt_timeout(Duration::from_secs(150))
        .with_max_attempts(3)
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<OnceEvent>(2).await.unwrap();
    const N: i32 = 20_000;
    let acked = Arc::new(AtomicU64::new(0));
    let tasks = write_from_tasks::<OnceEvent>(&client, 0..N, 32, acked.clone(), true);
    // Every event is either acknowledged or in a retry the injector holds.
    wait_until("every event is acknowledged or held", || {
        let (a, h) = (
            acked.load(Ordering::SeqCst),
            counts.records_held.load(Ordering::SeqCst),
        );
        let lost = counts.answers_lost.load(Ordering::SeqCst);
        (
            a + h == N as u64,
            format!("{a} acked, {h} held, {lost} lost"),
        )
    })
    .await;
    let held = counts.records_held.load(Ordering::SeqCst);
    assert!(held > 0, "some retries are held");
    assert_eq!(
        counts.retries_held.load(Ordering::SeqCst),
        counts.answers_lost.load(Ordering::SeqCst)
    );

    // Load 1: the first copies of all events (lost answers or not).
    let loader = env.loader::<OnceEvent>().await;
    let mut reports = drain::<OnceEvent>(&loader).await;
    assert_each_once::<OnceEvent>(&env, N).await;
    assert_eq!(twins_dropped(&reports), 0);

    // The retries go through: their twins land after the load; and some new events.
    release.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    const MORE: i32 = 500;
    for t in write_from_tasks::<OnceEvent>(&client, N..N + MORE, 8, acked.clone(), false) {
        t.await.unwrap();
    }
    client.close().await.unwrap();
    // (Calls of the last events may lose their answers too: their retries go straight on.)
    let held = counts.records_held.load(Ordering::SeqCst);
    let copies = stored_copies::<OnceEvent>(&env).await;
    assert_eq!(extra_copies(&copies), held, "each held retry stored a twin");

    kill_loader_at::<OnceEvent>(&env, Phase::Copy, 1_000_000);
    reports.extend(drain::<OnceEvent>(&loader).await);
    assert_each_once::<OnceEvent>(&env, N + MORE).await;
    assert_eq!(twins_dropped(&reports), held, "every twin dropped");
}

// ------------------------------------------------------------------------------------------
// Through a broker wrapper: twins on demand, across a shard split.

/// Stores a share of PutRecords calls and then fails them as if their answer was lost (a
/// retryable timeout), so the client sends them again; a retry (a call carrying a record of a
/// lost call) is never lost. Optionally splits the shards before answering the `split_at`-th
/// lost call (its retry lands in a child), and holds retries until the test releases the round
/// they were lost in.
struct Twinning<B> {
    inner: B,
    lose_percent: u64,
    /// At most this many calls are lost (a held retry keeps one of the client's 16 calls under
    /// way busy: more would stop it).
    max_lost: u64,
    split_at: Option<u64>,
    lost_calls: AtomicU64,
    split_done: AtomicBool,
    /// (partition key, data) of the records of lost calls, with the round they were lost in.
    lost: Mutex<HashMap<(String, Bytes), u64>>,
    round: AtomicU64,
    /// Retries of round r wait until this is at least r.
    hold: Option<watch::Receiver<u64>>,
    /// Events (user records) in held retries.
    held_events: AtomicU64,
}

impl<B: Broker> Twinning<B> {
    fn new(inner: B, lose_percent: u64) -> Twinning<B> {
        Twinning {
            inner,
            lose_percent,
            max_lost: u64::MAX,
            split_at: None,
            lost_calls: AtomicU64::new(0),
            split_done: AtomicBool::new(false),
            lost: Mutex::default(),
            round: AtomicU64::new(0),
            hold: None,
            held_events: AtomicU64::new(0),
        }
    }
}

impl<B: Broker> Broker for Twinning<B> {
    type Reader = B::Reader;

    async fn create_stream(&self, stream: &str, shards: u32) -> redtrack::Result<()> {
        self.inner.create_stream(stream, shards).await
    }

    async fn split_shards(&self, stream: &str) -> redtrack::Result<usize> {
        self.inner.split_shards(stream).await
    }

    async fn put_records(
        &self,
        stream: &str,
        records: &[PutRecord],
    ) -> redtrack::Result<Vec<PutOutcome>> {
        let prints: Vec<(String, Bytes)> = records
            .iter()
            .map(|r| (r.partition_key.clone(), r.data.clone()))
            .collect();
        let lost_in = {
            let lost = self.lost.lock().unwrap();
            prints.iter().find_map(|p| lost.get(p).copied())
        };
        if let Some(round) = lost_in {
            if let Some(hold) = &self.hold {
                let events: usize = records
                    .iter()
                    .map(|r| deaggregate(&r.partition_key, &r.data).map_or(1, |u| u.len()))
                    .sum();
                self.held_events.fetch_add(events as u64, Ordering::SeqCst);
                let mut hold = hold.clone();
                let _ = hold.wait_for(|released| *released >= round).await;
            }
            return self.inner.put_records(stream, records).await;
        }
        let out = self.inner.put_records(stream, records).await?;
        let stored = out.iter().all(|o| matches!(o, PutOutcome::Stored { .. }));
        let lose = stored
            && rand::random_range(0..100) < self.lose_percent
            && self
                .lost_calls
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < self.max_lost).then_some(n + 1)
                })
                .is_ok();
        if lose {
            let round = self.round.load(Ordering::SeqCst);
            self.lost
                .lock()
                .unwrap()
                .extend(prints.into_iter().map(|p| (p, round)));
            let n = self.lost_calls.load(Ordering::SeqCst);
            if self.split_at.is_some_and(|at| n >= at)
                && !self.split_done.swap(true, Ordering::SeqCst)
            {
                self.inner.split_shards(stream).await?;
            }
            return Err(Error::broker(
                "PutRecords",
                stream,
                "Timeout",
                "the answer was lost (injected)",
                true,
            ));
        }
        Ok(out)
    }

    async fn list_shards(&self, stream: &str) -> redtrack::Result<Vec<ShardInfo>> {
        self.inner.list_shards(stream).await
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> redtrack::Result<B::Reader> {
        self.inner.read_shard(stream, shard_id, from).await
    }
}

/// Events written through [`Twinning`] (a fifth of the calls lost, the shards split at the
/// third loss) by 8 tasks while three loaders load at once, 500 records a load at most; then
/// drained. Each event once, every extra copy dropped, some twins across the split.
async fn racing_loaders_across_a_split<E: Numbered>(name: &str, aggregate: bool, backend: Backend) {
    let env = env_of(name, backend).await;
    let config = env
        .config()
        .into_builder()
        .with_aggregation(aggregate)
        .with_linger(Duration::from_millis(2))
        .build()
        .unwrap();
    let kinesis = AnyBroker::from_config(&config).await.unwrap();
    let mut twinning = Twinning::new(kinesis, 20);
    twinning.split_at = Some(3);
    let client = Client::with_broker(config, twinning);
    client.create_stream::<E>(2).await.unwrap();
    env.loader::<E>().await;

    const N: i32 = 3_000;
    let acked = Arc::new(AtomicU64::new(0));
    let writers = write_from_tasks::<E>(&client, 0..N, 8, acked.clone(), false);
    let done = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..3)
        .map(|_| {
            let config = env
                .config()
                .into_builder()
                .with_max_load_records(500)
                .build()
                .unwrap();
            let done = done.clone();
            tokio::spawn(async move {
                let loader = Loader::new(config).await.unwrap();
                let (mut reports, mut conflicts) = (Vec::new(), 0u32);
                while !done.load(Ordering::SeqCst) {
                    match loader.load::<E>().await {
                        Ok(r) => reports.push(r),
                        Err(Error::LoadConflict { .. }) => conflicts += 1,
                        Err(e) => panic!("a loader failed: {e}"),
                    }
                }
                (reports, conflicts)
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    client.close().await.unwrap();
    let twinning = client.broker();
    assert!(
        twinning.split_done.load(Ordering::SeqCst),
        "the shards were split"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::SeqCst);
    let mut reports = Vec::new();
    for l in loaders {
        let (r, conflicts) = l.await.unwrap();
        eprintln!("loader: {} loads, {conflicts} conflicts", r.len());
        reports.extend(r);
    }
    reports.extend(drain::<E>(&Loader::new(env.config()).await.unwrap()).await);

    let copies = stored_copies::<E>(&env).await;
    assert_eq!(copies.len(), N as usize);
    let extra = extra_copies(&copies);
    assert!(extra > 0, "the stream holds twins");
    let across = copies
        .values()
        .filter(|shards| shards.iter().any(|s| s != &shards[0]))
        .count();
    assert!(
        across > 0,
        "some twins sit in different shards (across the split)"
    );
    assert_each_once::<E>(&env, N).await;
    assert_eq!(
        twins_dropped(&reports),
        extra,
        "every extra copy dropped as a twin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_loaders_across_a_split_plain_records() {
    racing_loaders_across_a_split::<OnceEvent>("race_plain", false, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_loaders_across_a_split_aggregated() {
    racing_loaders_across_a_split::<OnceEvent>("race_agg", true, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_loaders_across_a_split_keyed_plain() {
    racing_loaders_across_a_split::<KeyedOnce>("race_keyed", false, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_loaders_across_a_split_plain_records_redshift_serverless() {
    racing_loaders_across_a_split::<OnceEvent>("race_plain_rs", false, Backend::RedshiftServerless)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_loaders_across_a_split_keyed_aggregated_redshift_provisioned() {
    racing_loaders_across_a_split::<KeyedOnce>("race_kagg_rs", true, Backend::RedshiftProvisioned)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_loaders_across_a_split_keyed_aggregated() {
    racing_loaders_across_a_split::<KeyedOnce>("race_keyed_agg", true, Backend::Postgres).await;
}

/// A loader killed at every phase of a load, each load holding the twins of the events of the
/// round before (their retries held until that round was loaded) and new events: after each
/// rerun every event written so far is in the table once.
async fn killed_at_every_phase<E: Numbered>(name: &str, aggregate: bool, backend: Backend) {
    let env = env_of(name, backend).await;
    let config = env
        .config()
        .into_builder()
        .with_aggregation(aggregate)
        .with_attempt_timeout(Duration::from_secs(150))
        .with_max_attempts(3)
        .build()
        .unwrap();
    let kinesis = AnyBroker::from_config(&config).await.unwrap();
    let (release, hold) = watch::channel(0u64);
    // The first call of each round loses its answer.
    let mut twinning = Twinning::new(kinesis, 100);
    twinning.hold = Some(hold);
    twinning.max_lost = 1;
    let client = Client::with_broker(config, twinning);
    client.create_stream::<E>(2).await.unwrap();
    let loader = env.loader::<E>().await;

    const PER_ROUND: i32 = 300;
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut reports = Vec::new();
    let mut written = 0;
    for (round, phase) in Phase::ALL.into_iter().enumerate() {
        let round = round as u64 + 1;
        // The twins of the last round arrive now, after it was loaded; then this round's events,
        // whose lost calls' retries wait for the next round.
        client.broker().round.store(round, Ordering::SeqCst);
        client.broker().lost_calls.store(0, Ordering::SeqCst);
        release.send(round - 1).unwrap();
        let held_before = client.broker().held_events.load(Ordering::SeqCst);
        tasks.extend(write_from_tasks::<E>(
            &client,
            written..written + PER_ROUND,
            6,
            acked.clone(),
            true,
        ));
        written += PER_ROUND;
        wait_until("this round is acknowledged or held", || {
            let held = client.broker().held_events.load(Ordering::SeqCst) - held_before;
            let a = acked.load(Ordering::SeqCst);
            let lost = client.broker().lost_calls.load(Ordering::SeqCst);
            (
                a + held >= written as u64,
                format!("{a} acked, {held} held, {lost} lost, {written} written"),
            )
        })
        .await;

        kill_loader_at::<E>(&env, phase, 1_000_000);
        reports.extend(drain::<E>(&loader).await);
        assert_each_once::<E>(&env, written).await;
    }
    release.send(u64::MAX).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    client.close().await.unwrap();
    reports.extend(drain::<E>(&loader).await);
    assert_each_once::<E>(&env, written).await;
    let copies = stored_copies::<E>(&env).await;
    assert!(extra_copies(&copies) > 0, "the stream holds twins");
    // (The child that committed before its kill dropped some too, unreported.)
    assert!(
        twins_dropped(&reports) > 0,
        "twins were dropped in later loads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_phase_with_twins_across_loads() {
    killed_at_every_phase::<OnceEvent>("kill_twins", false, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_phase_with_twins_across_loads_redshift_provisioned() {
    killed_at_every_phase::<OnceEvent>("kill_twins_rs", false, Backend::RedshiftProvisioned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_phase_with_tagged_twins_aggregated() {
    killed_at_every_phase::<KeyedOnce>("kill_tagged", true, Backend::Postgres).await;
}

// ------------------------------------------------------------------------------------------
// Which guarantee applies to what.

/// Records without an identity (another producer's plain JSON, the gem's `{"data": ...}`
/// envelopes, a KPL application's aggregates) load as before: a record stored twice loads
/// twice. Records with one (a redtrack partition key, or a `redtrack.id` tag) load once, in the
/// same load or in a later one.
#[tokio::test]
async fn records_without_an_identity_load_as_before() {
    foreign_records(Backend::Postgres).await;
}

#[tokio::test]
async fn records_without_an_identity_load_as_before_redshift_serverless() {
    foreign_records(Backend::RedshiftServerless).await;
}

async fn foreign_records(backend: Backend) {
    let env = env_of("foreign", backend).await;
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    let stream = env.stream_name(OnceEvent::TABLE_NAME);
    broker.create_stream(&stream, 1).await.unwrap();
    let loader = env.loader::<OnceEvent>().await;
    let plain = |key: &str, json: &str| PutRecord {
        partition_key: key.to_owned(),
        data: Bytes::from(json.to_owned()),
    };
    let kpl = |users: &[(&str, &str, Option<&str>)]| {
        let mut agg = Aggregator::new(1 << 20);
        for (key, json, id) in users {
            let tag = id.map(|id| [(TAG_KEY, Some(id))]);
            agg.try_push_with_tags(key, json.as_bytes(), tag.as_ref().map_or(&[], |t| &t[..]));
        }
        agg.finish().unwrap()
    };
    let id = |n: u128| RecordId::from_u128(n << 90 | n).to_text();
    let (id5, id6, id7) = (id(5), id(6), id(7));
    let batch = vec![
        // Another producer's plain JSON, and the gem's envelope, each stored twice.
        plain("user-1", r#"{"id": 1}"#),
        plain("gem-key", r#"{"data": "{\"id\": 2}"}"#),
        // A KPL application's aggregate (no tags, its own keys), stored twice.
        kpl(&[
            ("app-key", r#"{"id": 3}"#, None),
            ("app-key", r#"{"id": 4}"#, None),
        ]),
        // redtrack's: an identity as the key, and identities in tags.
        plain(&id5, r#"{"id": 5}"#),
        kpl(&[
            ("user-6", r#"{"id": 6}"#, Some(id6.as_str())),
            (id7.as_str(), r#"{"id": 7}"#, None),
        ]),
    ];
    for _ in 0..2 {
        let out = broker.put_records(&stream, &batch).await.unwrap();
        assert!(out.iter().all(|o| matches!(o, PutOutcome::Stored { .. })));
    }
    let first = loader.load::<OnceEvent>().await.unwrap();
    assert_eq!((first.records, first.twins), (11, 3), "{first:?}");
    // The same records once more, in a later load.
    broker.put_records(&stream, &batch).await.unwrap();
    let second = loader.load::<OnceEvent>().await.unwrap();
    assert_eq!((second.records, second.twins), (4, 3), "{second:?}");

    let rows = env
        .pg()
        .await
        .query(
            "SELECT id, count(*) FROM once_events GROUP BY id ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let counts: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        counts,
        [(1, 3), (2, 3), (3, 3), (4, 3), (5, 1), (6, 1), (7, 1)],
        "(id, rows)"
    );
}

/// The loader remembers a shard's identities for the dedupe window of arrival time before its
/// newest loaded record, and forgets older ones: the table of identities does not grow with the
/// stream. (A copy that arrives later than the window is no longer recognized.)
#[tokio::test]
async fn identities_older_than_the_window_are_forgotten() {
    let env = common::TestEnv::named("window").await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<OnceEvent>(1).await.unwrap();
    // A loader with a 2 s window (no writer could retry within it: this one only loads).
    let loader = Loader::new(
        env.config()
            .into_builder()
            .with_record_identity(false)
            .with_dedupe_window(Duration::from_secs(2))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    loader.setup::<OnceEvent>().await.unwrap();
    let pg = env.pg().await;
    let stream = env.stream_name(OnceEvent::TABLE_NAME);
    let (pg, stream_ref) = (&pg, stream.as_str());
    let remembered = || async move {
        redtrack::__test::remembered_record_ids(pg, OnceEvent::TABLE_NAME, stream_ref)
            .await
            .unwrap()
    };

    for id in 0..50 {
        client.write(&OnceEvent::make(id)).await.unwrap();
    }
    assert_eq!(loader.load::<OnceEvent>().await.unwrap().records, 50);
    assert_eq!(remembered().await, 50);
    // A copy of the first batch within the window is dropped.
    let direct = KinesisBroker::from_client(env.kinesis().await);
    let mut first = direct
        .read_shard(
            &stream,
            "shardId-000000000000",
            StartingPosition::TrimHorizon,
        )
        .await
        .unwrap();
    let again: Vec<PutRecord> = first
        .next_batch(10)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| PutRecord {
            partition_key: r.partition_key,
            data: r.data,
        })
        .collect();
    direct.put_records(&stream, &again).await.unwrap();
    let r = loader.load::<OnceEvent>().await.unwrap();
    assert_eq!((r.records, r.twins), (0, 10));

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for id in 50..80 {
        client.write(&OnceEvent::make(id)).await.unwrap();
    }
    client.close().await.unwrap();
    assert_eq!(loader.load::<OnceEvent>().await.unwrap().records, 30);
    assert_eq!(
        remembered().await,
        30,
        "the first 50 fell out of the window"
    );
    // Past the window, a copy is a new record again.
    direct.put_records(&stream, &again).await.unwrap();
    let r = loader.load::<OnceEvent>().await.unwrap();
    assert_eq!((r.records, r.twins), (10, 0));
}

/// Shows a loader only some of a stream's shards, and lets it read them only once the test
/// opens the gate: two loaders made to plan the same moment and load disjoint shards.
struct Partial<B> {
    inner: B,
    shards: Vec<String>,
    gate: watch::Receiver<bool>,
    /// Readers that reached the gate.
    waiting: Arc<AtomicU64>,
}

/// A shard reader that waits for its loader's gate before its first batch.
struct Gated<R> {
    inner: R,
    gate: watch::Receiver<bool>,
    waiting: Arc<AtomicU64>,
}

impl<R: ShardReader> ShardReader for Gated<R> {
    async fn next_batch(&mut self, limit: usize) -> redtrack::Result<redtrack::broker::ReadBatch> {
        if !*self.gate.borrow() {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.gate.wait_for(|open| *open).await;
        self.inner.next_batch(limit).await
    }

    fn read_policy(&self) -> redtrack::broker::ReadPolicy {
        self.inner.read_policy()
    }
}

impl<B: Broker> Broker for Partial<B> {
    type Reader = Gated<B::Reader>;

    async fn create_stream(&self, stream: &str, shards: u32) -> redtrack::Result<()> {
        self.inner.create_stream(stream, shards).await
    }

    async fn split_shards(&self, stream: &str) -> redtrack::Result<usize> {
        self.inner.split_shards(stream).await
    }

    async fn put_records(
        &self,
        stream: &str,
        records: &[PutRecord],
    ) -> redtrack::Result<Vec<PutOutcome>> {
        self.inner.put_records(stream, records).await
    }

    async fn list_shards(&self, stream: &str) -> redtrack::Result<Vec<ShardInfo>> {
        let all = self.inner.list_shards(stream).await?;
        Ok(all
            .into_iter()
            .filter(|s| self.shards.contains(&s.shard_id))
            .collect())
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> redtrack::Result<Self::Reader> {
        Ok(Gated {
            inner: self.inner.read_shard(stream, shard_id, from).await?,
            gate: self.gate.clone(),
            waiting: self.waiting.clone(),
        })
    }
}

/// An event's first copy in a parent shard, its twin (the retry) in a child after a split. Two
/// loaders plan at the same moment; one loads the child (the twin) and commits while the other
/// reads the parent (the first copy). The second must not commit its copy: it fails with a
/// retryable conflict, and tried again it drops its copy as a twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_racing_another_across_a_split_conflicts_rather_than_load_a_twin() {
    racing_over_a_split(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_racing_another_across_a_split_conflicts_rather_than_load_a_twin_redshift_provisioned(
) {
    racing_over_a_split(Backend::RedshiftProvisioned).await;
}

async fn racing_over_a_split(backend: Backend) {
    let env = env_of("race_split", backend).await;
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    let stream = env.stream_name(OnceEvent::TABLE_NAME);
    broker.create_stream(&stream, 1).await.unwrap();
    env.loader::<OnceEvent>().await;
    let id = RecordId::new().to_text();
    let record = PutRecord {
        partition_key: id,
        data: Bytes::from_static(br#"{"id": 0}"#),
    };
    let other = PutRecord {
        partition_key: RecordId::new().to_text(),
        data: Bytes::from_static(br#"{"id": 1}"#),
    };
    broker
        .put_records(&stream, std::slice::from_ref(&record))
        .await
        .unwrap();
    assert_eq!(broker.split_shards(&stream).await.unwrap(), 1);
    // The retry lands in the child that covers its key, with another event.
    broker
        .put_records(&stream, &[record.clone(), other])
        .await
        .unwrap();
    let shards = broker.list_shards(&stream).await.unwrap();
    let parent = shards
        .iter()
        .find(|s| s.is_closed())
        .unwrap()
        .shard_id
        .clone();
    let children: Vec<String> = shards
        .iter()
        .filter(|s| !s.is_closed())
        .map(|s| s.shard_id.clone())
        .collect();

    let (open_a, gate_a) = watch::channel(false);
    let (open_b, gate_b) = watch::channel(false);
    let waiting = Arc::new(AtomicU64::new(0));
    let loader = |shards: Vec<String>, gate| {
        let (env, waiting) = (&env, waiting.clone());
        async move {
            let broker = Partial {
                inner: AnyBroker::from_config(&env.config()).await.unwrap(),
                shards,
                gate,
                waiting,
            };
            Loader::with_broker(env.config(), broker).await.unwrap()
        }
    };
    let a = loader(vec![parent], gate_a).await;
    let b = loader(children.clone(), gate_b).await;
    let (a_load, b_load) = (a.load::<OnceEvent>(), b.load::<OnceEvent>());
    tokio::pin!(a_load, b_load);
    // Both plan (nothing remembered yet), then wait at their first reads.
    let readers = 1 + children.len() as u64;
    for _ in 0..600 {
        tokio::select! {
            _ = &mut a_load => panic!("A went on before its gate opened"),
            _ = &mut b_load => panic!("B went on before its gate opened"),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if waiting.load(Ordering::SeqCst) >= readers {
            break;
        }
    }
    assert_eq!(
        waiting.load(Ordering::SeqCst),
        readers,
        "both loaders planned"
    );
    open_b.send(true).unwrap();
    let b_report = tokio::select! {
        r = &mut b_load => r.unwrap(),
        _ = &mut a_load => panic!("A went on before its gate opened"),
    };
    assert_eq!(
        (b_report.records, b_report.twins),
        (2, 0),
        "B loaded the twin"
    );
    open_a.send(true).unwrap();
    match a_load.await {
        Err(Error::LoadConflict { message, .. }) => {
            assert!(message.contains("copy of record"), "{message}")
        }
        other => panic!("A must not load its copy: {other:?}"),
    }
    let again = a.load::<OnceEvent>().await.unwrap();
    assert_eq!((again.records, again.twins), (0, 1), "{again:?}");
    assert_eq!(env.ids("once_events").await, [0, 1], "each event once");
}

/// A deployment upgraded without running `setup` again has no table of identities: the load
/// fails before reading anything, saying what to run.
#[tokio::test]
async fn a_missing_table_of_identities_says_to_run_setup() {
    let env = common::TestEnv::named("no_ids").await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<OnceEvent>(1).await.unwrap();
    client.write(&OnceEvent::make(1)).await.unwrap();
    client.close().await.unwrap();
    let loader = env.loader::<OnceEvent>().await;
    env.pg()
        .await
        .batch_execute("DROP TABLE redtrack_ids_once_events")
        .await
        .unwrap();
    let e = loader.load::<OnceEvent>().await.unwrap_err().to_string();
    assert!(
        e.contains("redtrack_ids_once_events") && e.contains("setup"),
        "{e}"
    );
    loader.setup::<OnceEvent>().await.unwrap();
    assert_eq!(loader.load::<OnceEvent>().await.unwrap().records, 1);
}
