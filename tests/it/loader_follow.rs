//! A continuous loader (`load_follow`) keeps loading what writers write, and SIGTERM (through
//! the command line's `shutdown_signal`) stops it between loads: it exits cleanly with its
//! report.

use crate::{common, seed};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redtrack::{Client, Config, Loader};
use seed::TestEvent;

const CHILD_ENV: &str = "REDTRACK_FOLLOW_CHILD";

/// In the child process: follow `test_events` until a signal.
#[tokio::test]
async fn follow_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let loader = Loader::new(Config::from_env().unwrap()).await.unwrap();
    let report = loader
        .load_follow::<TestEvent>(Duration::from_millis(100), redtrack::cli::shutdown_signal())
        .await
        .unwrap();
    println!("FOLLOWED {} {}", report.loads, report.records);
}

async fn count(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one("SELECT count(*) FROM test_events", &[])
        .await
        .unwrap()
        .get(0)
}

async fn wait_for(pg: &tokio_postgres::Client, n: i64) {
    let start = Instant::now();
    while count(pg).await != n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the follower never loaded {n} rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_loads_continuously_and_stops_on_sigterm() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let env = common::TestEnv::named("follow").await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<TestEvent>(2).await.unwrap();
    env.loader::<TestEvent>().await;
    let pg = env.pg().await;

    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "loader_follow::follow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
        .envs(env.vars())
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    for round in 0..3 {
        for i in 0..100 {
            client
                .write(&TestEvent {
                    client_ip: "10.0.0.2".into(),
                    timestamp: round * 100 + i,
                    message: None,
                })
                .await
                .unwrap();
        }
        wait_for(&pg, (round as i64 + 1) * 100).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the follower exited with {}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints the test's name on the same line before the report.
    let line = stdout
        .lines()
        .find_map(|l| l.find("FOLLOWED ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no report from the follower: {stdout}"));
    let records: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(records, 300);
    assert_eq!(count(&pg).await, 300);
}
