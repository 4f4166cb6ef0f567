//! The loader as a real child process, killed with SIGKILL at each phase of a load (mid-read,
//! mid-upload, mid-COPY, after COPY before COMMIT, right after COMMIT), then run again: every
//! event lands exactly once. The same for a re-drive of kept rejects: every reject is loaded
//! exactly once.
//!
//! The child is this test binary run again with `REDTRACK_LOADER_CHILD=1` (`=redrive` for a
//! re-drive): its `loader_child` test then runs one load (or re-drive) and exits.
//! `REDTRACK_TEST_PAUSE_AT=<phase>` makes the child print `REDTRACK_PAUSED <phase>` and sleep at
//! that phase, where the parent kills it.

use crate::{common, seed};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use redtrack::__test::{Phase, PAUSE_ENV, PAUSE_MARKER};
use redtrack::{Client, Config, Loader, RedTrackEvent};
use seed::TestEvent;

const CHILD_ENV: &str = "REDTRACK_LOADER_CHILD";

/// In the child process: one load of `test_events` with the inherited environment.
#[tokio::test]
async fn loader_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return; // an ordinary test run: nothing to do
    }
    let config = Config::from_env().expect("the child's configuration");
    let loader = Loader::new(config).await.expect("the child's loader");
    if std::env::var(CHILD_ENV).as_deref() == Ok(REDRIVE) {
        let report = loader
            .redrive::<TestEvent>()
            .await
            .expect("the child's re-drive");
        println!("REDRIVEN {}", report.redriven);
        return;
    }
    let report = loader.load::<TestEvent>().await.expect("the child's load");
    println!("LOADED {}", report.records);
}

/// The child's mode that re-drives instead of loading.
const REDRIVE: &str = "redrive";

fn event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: "127.0.0.1".into(),
        timestamp: i,
        message: Some(format!("event {i}")),
    }
}

/// Runs the child (a load) until it pauses at `phase`, then kills it with SIGKILL.
fn kill_child_at(env: &common::TestEnv, phase: Phase) {
    kill_child_in_mode_at(env, "1", phase);
}

/// Runs the child in `mode` (with `env`'s variables) until it pauses at `phase`, then kills it
/// with SIGKILL.
fn kill_child_in_mode_at(env: &common::TestEnv, mode: &str, phase: Phase) {
    kill_child(env, phase, "loader_crash::loader_child", (CHILD_ENV, mode));
}

/// Runs this test binary's test `child` (with `env`'s variables and `mark`, the variable that
/// tells it it is the child) until it pauses at `phase`, then kills it with SIGKILL.
pub(crate) fn kill_child(env: &common::TestEnv, phase: Phase, child: &str, mark: (&str, &str)) {
    pause_child(env, phase, child, mark).kill().unwrap(); // SIGKILL on Unix
}

/// A child process killed (SIGKILL) and reaped when dropped, also when the test fails.
struct Paused(std::process::Child);

impl Paused {
    fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(drop)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Runs the child (a load) until it pauses at `phase`, and returns it, paused there.
fn pause_child_at(env: &common::TestEnv, phase: Phase) -> Paused {
    pause_child(env, phase, "loader_crash::loader_child", (CHILD_ENV, "1"))
}

/// Runs this test binary's test `child` (with `env`'s variables and `mark`, the variable that
/// tells it it is the child) until it pauses at `phase`, and returns it, paused there.
fn pause_child(env: &common::TestEnv, phase: Phase, child: &str, mark: (&str, &str)) -> Paused {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", child, "--nocapture", "--test-threads=1"])
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
        .envs(env.vars())
        .env(mark.0, mark.1)
        .env(PAUSE_ENV, phase.name())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let want = format!("{PAUSE_MARKER} {}", phase.name());
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.trim() == want => break,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "the child never paused at {}: {e}; it said:\n{}",
                    phase.name(),
                    seen.join("\n")
                );
            }
        }
    }
    Paused(child)
}

crate::each_backend! {
    async fn sigkill_at_every_phase_then_rerun_loads_exactly_once(env: TestEnv) {
        if std::env::var(CHILD_ENV).is_ok() {
            return;
        }
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(2).await.unwrap();
        let loader = env.loader::<TestEvent>().await;

        let mut written = 0;
        for phase in Phase::ALL {
            for _ in 0..300 {
                drop(client.enqueue(&event(written)).await.unwrap());
                written += 1;
            }
            client.flush().await.unwrap();
            let before = env.count_distinct("test_events", "timestamp").await;
            kill_child_at(&env, phase);
            let after_kill = env.count_distinct("test_events", "timestamp").await;
            if phase == Phase::Committed {
                assert_eq!(after_kill.0, written as i64, "committed before the kill");
            } else {
                assert_eq!(
                    after_kill,
                    before,
                    "a load killed at {} left rows",
                    phase.name()
                );
            }
            // PostgreSQL ends the killed child's session (and its lock) when it sees the socket close.
            let report = tokio::time::timeout(Duration::from_secs(120), loader.load::<TestEvent>())
                .await
                .expect("the rerun waited on a lock too long")
                .unwrap();
            let (n, distinct) = env.count_distinct("test_events", "timestamp").await;
            assert_eq!(
                n,
                written as i64,
                "after a kill at {} and a rerun ({report:?})",
                phase.name()
            );
            assert_eq!(distinct, n, "duplicates after a kill at {}", phase.name());
        }
        assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 0);
    }
}

/// What a call answered within its time, or a failure saying it waited.
fn within<T>(what: &str, r: Result<T, tokio::time::error::Elapsed>) -> T {
    r.unwrap_or_else(|_| panic!("{what} waited for another table's COPY"))
}

/// A second table, loaded while `test_events`' load is in its COPY.
#[derive(RedTrackEvent)]
#[redtrack(table = "side_events")]
struct SideEvent {
    n: i32,
}

crate::each_backend! {
    /// While a load of one table is in its COPY (holding its lock inside its transaction): a
    /// load of another table commits, and `status`, `checkpoints`, `recent_loads` and `rejects`
    /// of the locked table answer, under SNAPSHOT (provisioned) and SERIALIZABLE (Serverless)
    /// alike; then the paused loader is killed and a rerun loads every event once.
    async fn other_tables_and_readers_go_on_while_a_copy_runs(env: TestEnv) {
        const WAIT: Duration = Duration::from_secs(30);
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(2).await.unwrap();
        client.create_stream::<SideEvent>(1).await.unwrap();
        let loader = env.loader::<TestEvent>().await;
        loader.setup::<SideEvent>().await.unwrap();
        for i in 0..200 {
            drop(client.enqueue(&event(i)).await.unwrap());
            drop(client.enqueue(&SideEvent { n: i }).await.unwrap());
        }
        client.flush().await.unwrap();

        let mut child = pause_child_at(&env, Phase::Copy);
        let side = tokio::time::timeout(WAIT, loader.load::<SideEvent>())
            .await
            .map(Result::unwrap);
        assert_eq!(within("a load of another table", side).records, 200);
        let status = tokio::time::timeout(WAIT, loader.status::<TestEvent>()).await;
        assert_eq!(within("status", status).unwrap().len(), 2);
        let cps = tokio::time::timeout(WAIT, loader.checkpoints::<TestEvent>()).await;
        assert!(within("checkpoints", cps).unwrap().is_empty());
        let recent = tokio::time::timeout(WAIT, loader.recent_loads::<TestEvent>(5)).await;
        assert!(within("recent loads", recent).unwrap().is_empty());
        let rejects = tokio::time::timeout(WAIT, loader.rejects::<TestEvent>(5)).await;
        assert!(within("rejects", rejects).unwrap().is_empty());
        // A second load of the locked table waits for it (loads of one table take turns).
        let same = tokio::time::timeout(Duration::from_millis(500), loader.load::<TestEvent>()).await;
        assert!(same.is_err(), "a second load of the same table did not wait: {same:?}");

        child.kill().unwrap();
        let report = tokio::time::timeout(Duration::from_secs(120), loader.load::<TestEvent>())
            .await
            .expect("the rerun waited on a lock too long")
            .unwrap();
        assert_eq!(report.records, 200, "{report:?}");
        assert_eq!(env.count_distinct("test_events", "timestamp").await, (200, 200));
        assert_eq!(env.count_distinct("side_events", "n").await, (200, 200));
    }
}

crate::each_backend! {
    /// A re-drive killed at each phase (rejects read, file uploaded, mid-COPY, before COMMIT,
    /// after COMMIT), then run again: each kept reject is loaded exactly once.
    async fn sigkill_a_redrive_at_every_phase_then_rerun_loads_each_reject_once(env: TestEnv) {
        if std::env::var(CHILD_ENV).is_ok() {
            return;
        }
        // A fresh table with fresh rejects for each phase.
        let backend = env.backend();
        drop(env);
        for phase in Phase::ALL {
            let env = common::TestEnv::on(backend, "rdkill").await;
            let config = env
                .config()
                .into_builder()
                .with_max_errors(100)
                .build()
                .unwrap();
            let client = Client::new(config.clone()).await.unwrap();
            client.create_stream::<TestEvent>(1).await.unwrap();
            // 40-byte client IPs: too long for VARCHAR(32), written by another producer.
            let broker = redtrack::broker::AnyBroker::from_config(&config)
                .await
                .unwrap();
            let records: Vec<_> = (0..30)
                .map(|i| redtrack::broker::PutRecord {
                    partition_key: format!("k{i}"),
                    data: format!(r#"{{"client_ip":"{}","timestamp":{i}}}"#, "9".repeat(40)).into(),
                })
                .collect();
            use redtrack::broker::Broker;
            broker
                .put_records(&env.stream_name("test_events"), &records)
                .await
                .unwrap();
            for i in 30..40 {
                client.write(&event(i)).await.unwrap();
            }
            let loader = Loader::new(config).await.unwrap();
            loader.setup::<TestEvent>().await.unwrap();
            let report = loader.load::<TestEvent>().await.unwrap();
            assert_eq!((report.records, report.rejected), (10, 30));
            // The fix: a wider column.
            env.warehouse()
                .await
                .batch_execute("ALTER TABLE test_events ALTER COLUMN client_ip TYPE VARCHAR(64)")
                .await
                .unwrap();

            kill_child_in_mode_at(&env, REDRIVE, phase);
            let after_kill = env.count_distinct("test_events", "timestamp").await;
            let expected = if phase == Phase::Committed { 40 } else { 10 };
            assert_eq!(after_kill.0, expected, "after a kill at {}", phase.name());

            let rerun = tokio::time::timeout(Duration::from_secs(120), loader.redrive::<TestEvent>())
                .await
                .expect("the rerun waited on a lock too long")
                .unwrap();
            assert_eq!(rerun.redriven, 40 - expected as u64, "{rerun:?}");
            assert_eq!(
                env.count_distinct("test_events", "timestamp").await,
                (40, 40),
                "after a kill at {} and a rerun",
                phase.name()
            );
            assert_eq!(loader.redrive::<TestEvent>().await.unwrap().redriven, 0);
        }
    }
}
