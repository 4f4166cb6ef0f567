//! The loader as a real child process, killed with SIGKILL at each phase of a load (mid-read,
//! mid-upload, mid-COPY, after COPY before COMMIT, right after COMMIT), then run again: every
//! event lands exactly once.
//!
//! The child is this test binary run again with `REDTRACK_LOADER_CHILD=1`: its `loader_child`
//! test then runs one load and exits. `REDTRACK_TEST_PAUSE_AT=<phase>` makes the child print
//! `REDTRACK_PAUSED <phase>` and sleep at that phase, where the parent kills it.

use crate::{common, seed};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use redtrack::__test::{Phase, PAUSE_ENV, PAUSE_MARKER};
use redtrack::{Client, Config, Loader};
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
    let report = loader.load::<TestEvent>().await.expect("the child's load");
    println!("LOADED {}", report.records);
}

fn event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: "127.0.0.1".into(),
        timestamp: i,
        message: Some(format!("event {i}")),
    }
}

/// Runs the child until it pauses at `phase`, then kills it with SIGKILL.
fn kill_child_at(env: &common::TestEnv, phase: Phase) {
    kill_child(env, phase, "loader_crash::loader_child", (CHILD_ENV, "1"));
}

/// Runs this test binary's test `child` (with `env`'s variables and `mark`, the variable that
/// tells it it is the child) until it pauses at `phase`, then kills it with SIGKILL.
pub(crate) fn kill_child(env: &common::TestEnv, phase: Phase, child: &str, mark: (&str, &str)) {
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
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
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
