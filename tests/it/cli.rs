//! The command line against the local services: an application's own `redtrack` binary for the
//! seed tables, run in-process with the test's configuration.

use crate::{common, seed};

use redtrack::cli::{Cli, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use redtrack::{Client, Dialect};
use seed::{TestAllTypes, TestEvent};

use common::write_test_events as write_events;

/// What one run of the command line did.
struct Run {
    code: u8,
    out: String,
    err: String,
}

async fn run(env: &common::TestEnv, args: &[&str]) -> Run {
    let (code, out, err) = common::cli(env.config(), args).await;
    Run { code, out, err }
}

/// In a child process (see `common::cli_command`): the seed tables' command line, run as an
/// application's `main` would, exiting with its code.
#[tokio::test]
async fn cli_child() {
    let Ok(args) = std::env::var(common::CLI_CHILD_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let args = std::iter::once("redtrack".to_owned()).chain(
        args.split('\u{1f}')
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
    );
    let cli = Cli::new("redtrack")
        .register::<TestEvent>()
        .register::<TestAllTypes>();
    let code = match std::env::var("REDTRACK_CLI_CHILD_VIA").as_deref() {
        Ok("run_with") => cli.run_with(args, redtrack::Config::from_env).await,
        _ => cli.run_args(args).await,
    };
    let n = (0..=255u8)
        .find(|n| std::process::ExitCode::from(*n) == code)
        .unwrap_or(255);
    std::process::exit(i32::from(n));
}

fn ok(r: Run, what: &str) -> String {
    assert_eq!(r.code, EXIT_OK, "{what} failed:\n{}\n{}", r.out, r.err);
    r.out
}

#[tokio::test]
async fn ddl_prints_every_table_in_the_chosen_dialect() {
    let env = common::TestEnv::new().await;
    let out = ok(run(&env, &["ddl", "--dialect", "postgres"]).await, "ddl");
    // Every table `setup` creates: the bookkeeping, and each table with its identities.
    for table in [
        "kinesis_loads",
        "redtrack_load_rejects",
        "redtrack_ids_test_events",
        "redtrack_ids_test_all_types",
    ] {
        assert!(
            out.contains(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
            "{out}"
        );
    }
    assert!(out.contains(&format!(
        "{};",
        TestEvent::schema().create_table_sql(Dialect::Postgres)
    )));
    assert!(out.contains(&format!(
        "{};",
        TestAllTypes::schema().create_table_sql(Dialect::Postgres)
    )));

    // One table, and which tables of `setup` that leaves out.
    let out = ok(
        run(&env, &["ddl", "--table", "test_events"]).await,
        "ddl --table",
    );
    let (comment, ddl) = out.split_once('\n').expect("two parts");
    assert!(
        comment.starts_with("-- kinesis_loads and redtrack_load_rejects")
            && comment.contains("left out"),
        "{out}"
    );
    let (table, ids) = ddl
        .trim()
        .split_once("\n\n")
        .expect("the table and its identities");
    assert_eq!(table, format!("{};", TestEvent::create_table_sql()));
    assert!(
        ids.starts_with("CREATE TABLE IF NOT EXISTS redtrack_ids_test_events (")
            && ids.ends_with(';'),
        "{out}"
    );
}

#[tokio::test]
async fn usage_errors_have_their_own_exit_code_and_name_the_known_tables() {
    let env = common::TestEnv::new().await;
    let r = run(&env, &["load", "--table", "no_such_table"]).await;
    assert_eq!(r.code, EXIT_USAGE);
    assert!(
        r.err.contains("no registered table `no_such_table`"),
        "{}",
        r.err
    );
    assert!(r.err.contains("test_events, test_all_types"), "{}", r.err);

    let r = run(&env, &["frobnicate"]).await;
    assert_eq!(r.code, EXIT_USAGE, "{}", r.err);

    let r = run(&env, &["--help"]).await;
    assert_eq!(r.code, EXIT_OK);
    assert!(r.out.contains("migrate"), "{}", r.out);
}

crate::each_backend! {
    async fn cli_end_to_end(env: TestEnv) {

        let first = ok(run(&env, &["setup", "--shards", "2"]).await, "setup");
        let stream = env.stream_name("test_events");
        for line in [
            "table kinesis_loads: created".to_owned(),
            "table test_events: created".to_owned(),
            format!("stream {stream}: created"),
        ] {
            assert!(first.contains(&line), "missing `{line}` in:\n{first}");
        }
        let again = ok(run(&env, &["setup", "--shards", "2"]).await, "setup again");
        assert!(
            !again.contains("created"),
            "setup is not idempotent:\n{again}"
        );
        assert!(
            again.contains(&format!("stream {stream}: already there")),
            "{again}"
        );

        let client = Client::new(env.config()).await.expect("client");
        for i in 0..40 {
            let event = TestEvent {
                client_ip: format!("10.0.0.{i}"),
                timestamp: i,
                message: Some(format!("m{i}")),
            };
            client.write(&event).await.expect("write");
        }
        client.close().await.expect("close");

        let out = ok(
            run(&env, &["load", "--table", "test_events", "--json"]).await,
            "load",
        );
        let report: serde_json::Value = serde_json::from_str(out.trim()).expect("load --json is JSON");
        assert_eq!(report["records"], 40, "{report}");
        assert_eq!(report["table"], "test_events");
        let count: i64 = env
            .pg()
            .await
            .query_one("SELECT COUNT(*) FROM test_events", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(count, 40);

        // A second load finds nothing new.
        let out = ok(
            run(&env, &["load", "--table", "test_events"]).await,
            "load again",
        );
        assert!(out.starts_with("test_events: 0 events loaded"), "{out}");

        let out = ok(
            run(&env, &["status", "--json", "--table", "test_events"]).await,
            "status",
        );
        let shards: Vec<serde_json::Value> = serde_json::from_str(out.trim()).expect("status --json");
        assert_eq!(shards.len(), 2, "{out}");
        for s in &shards {
            assert_eq!(s["open"], true, "{s}");
            assert!(
                s["last_sequence_number"].is_string(),
                "every shard got records: {s}"
            );
            assert!(s["last_load"].is_string(), "{s}");
        }
        let table = ok(run(&env, &["status"]).await, "status (table)");
        assert!(
            table.contains("test_all_types") && table.contains("never"),
            "{table}"
        );

        let out = ok(
            run(&env, &["errors", "--table", "test_events"]).await,
            "errors",
        );
        assert_eq!(out.trim(), "test_events: no rejected rows");

        let out = ok(
            run(&env, &["split-shards", "--table", "test_events"]).await,
            "split",
        );
        assert_eq!(out.trim(), format!("stream {stream}: split 2 shards"));
        let out = ok(
            run(&env, &["status", "--json", "--table", "test_events"]).await,
            "status",
        );
        let shards: Vec<serde_json::Value> = serde_json::from_str(out.trim()).expect("status --json");
        assert_eq!(shards.len(), 6, "2 closed parents and 4 children: {out}");
        assert_eq!(
            shards.iter().filter(|s| s["open"] == false).count(),
            2,
            "{out}"
        );
    }
}

#[tokio::test]
async fn migrate_widens_adds_and_refuses_with_reasons() {
    let env = common::TestEnv::new().await;
    ok(
        run(&env, &["setup", "--table", "test_events"]).await,
        "setup",
    );
    let out = ok(
        run(&env, &["migrate", "--table", "test_events"]).await,
        "migrate",
    );
    assert_eq!(out.trim(), "-- test_events: up to date");

    let pg = env.pg().await;
    pg.batch_execute(
        "ALTER TABLE test_events ALTER COLUMN message TYPE VARCHAR(64); \
         ALTER TABLE test_events DROP COLUMN client_ip; \
         ALTER TABLE test_events ADD COLUMN client_ip VARCHAR(32)",
    )
    .await
    .expect("alter");
    // client_ip came back nullable: making it NOT NULL again is refused, nothing applied.
    let r = run(&env, &["migrate", "--table", "test_events", "--apply"]).await;
    assert_eq!(r.code, EXIT_REFUSED, "{}\n{}", r.out, r.err);
    assert!(
        r.err
            .contains("table `test_events`, column `client_ip`: became NOT NULL"),
        "{}",
        r.err
    );
    assert!(r.err.contains("nothing was changed"), "{}", r.err);

    pg.batch_execute(
        "ALTER TABLE test_events DROP COLUMN client_ip; \
         ALTER TABLE test_events ADD COLUMN client_ip VARCHAR(32) NOT NULL",
    )
    .await
    .expect("alter");
    let out = ok(
        run(&env, &["migrate", "--table", "test_events"]).await,
        "migrate (dry)",
    );
    assert!(
        out.contains("ALTER TABLE test_events ALTER COLUMN message TYPE VARCHAR(128);"),
        "{out}"
    );
    assert!(out.contains("not applied"), "{out}");
    let out = ok(
        run(&env, &["migrate", "--table", "test_events", "--apply"]).await,
        "apply",
    );
    assert!(out.contains("applied 1 statements"), "{out}");
    let len: i32 = pg
        .query_one(
            "SELECT CAST(character_maximum_length AS INTEGER) FROM information_schema.columns \
             WHERE table_name = 'test_events' AND column_name = 'message'",
            &[],
        )
        .await
        .expect("column")
        .get(0);
    assert_eq!(len, 128);

    // A column that the struct does not have and that is NOT NULL would fail every COPY.
    pg.batch_execute("ALTER TABLE test_events ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0")
        .await
        .expect("alter");
    let r = run(&env, &["migrate", "--table", "test_events"]).await;
    assert_eq!(r.code, EXIT_REFUSED);
    assert!(r.err.contains("column `legacy`"), "{}", r.err);
}

#[tokio::test]
async fn a_load_that_fails_exits_with_the_failure_code() {
    let env = common::TestEnv::new().await;
    // No warehouse listens on port 1.
    let config = env
        .config()
        .into_builder()
        .warehouse_url("postgres://redtrack:redtrack@127.0.0.1:1/nothing")
        .build()
        .expect("config");
    let (code, _, err) = common::cli(config, &["load", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_FAILED, "{err}");
    assert!(err.starts_with("redtrack: error: "), "{err}");
    assert!(
        err.contains("connecting to postgres://redtrack@127.0.0.1:1/nothing"),
        "{err}"
    );
}

#[tokio::test]
async fn a_postgres_server_with_the_redshift_dialect_is_a_configuration_error() {
    let env = common::TestEnv::new().await;
    let config = env
        .config()
        .into_builder()
        .dialect(Dialect::Redshift)
        .stage(
            redtrack::StageLocation::parse(&env.var("REDTRACK_STAGE").expect("stage"))
                .expect("s3 stage"),
        )
        .build()
        .expect("config");
    let (code, _, err) = common::cli(config, &["setup"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(
        err.contains("set REDTRACK_WAREHOUSE_DIALECT=postgres"),
        "{err}"
    );
}

crate::each_backend! {
    /// `migrate` on each backend: it reads the table from the warehouse's catalog
    /// (`svv_redshift_columns` on Redshift), widens what Redshift can widen, refuses with a deep
    /// copy what it cannot (a TEXT32K-encoded VARCHAR, a VARCHAR with a DEFAULT: r_ALTER_TABLE),
    /// and a failure in the middle of `--apply` says exactly what was applied.
    async fn migrate_follows_what_the_warehouse_accepts(env: TestEnv) {
        ok(run(&env, &["setup", "--table", "test_events"]).await, "setup");
        let warehouse = env.warehouse().await;
        // One statement at a time: Redshift alters a column's type only outside a transaction.
        warehouse
            .batch_execute("ALTER TABLE test_events ALTER COLUMN message TYPE VARCHAR(64)")
            .await
            .expect("narrow message");
        let out = ok(
            run(&env, &["migrate", "--table", "test_events", "--apply"]).await,
            "migrate --apply",
        );
        assert!(
            out.contains("ALTER TABLE test_events ALTER COLUMN message TYPE VARCHAR(128);"),
            "{out}"
        );
        assert!(out.contains("applied 1 statements"), "{out}");
        let len: i32 = env
            .pg()
            .await
            .query_one(
                "SELECT CAST(character_maximum_length AS INTEGER) FROM information_schema.columns \
                 WHERE table_name = 'test_events' AND column_name = 'message'",
                &[],
            )
            .await
            .expect("column")
            .get(0);
        assert_eq!(len, 128);

        if env.backend().is_redshift() {
            for (column, why) in [
                ("message VARCHAR(64) ENCODE TEXT32K", "it is encoded TEXT32K"),
                ("message VARCHAR(64) DEFAULT 'none'", "it has a DEFAULT"),
            ] {
                warehouse
                    .batch_execute("ALTER TABLE test_events DROP COLUMN message")
                    .await
                    .expect("drop message");
                warehouse
                    .batch_execute(&format!("ALTER TABLE test_events ADD COLUMN {column}"))
                    .await
                    .expect("add message back");
                let r = run(&env, &["migrate", "--table", "test_events", "--apply"]).await;
                assert_eq!(r.code, EXIT_REFUSED, "{}\n{}", r.out, r.err);
                assert!(r.err.contains(why), "{}", r.err);
                assert!(r.err.contains("deep-copy"), "{}", r.err);
                assert!(r.err.contains("nothing was changed"), "{}", r.err);
            }
        }

        // A plan that fails half way says what took effect: the ADD COLUMN (its own
        // transaction) did; the widening of a column dropped meanwhile did not.
        warehouse
            .batch_execute("ALTER TABLE test_events DROP COLUMN message")
            .await
            .expect("drop message");
        warehouse
            .batch_execute("ALTER TABLE test_events ALTER COLUMN client_ip TYPE VARCHAR(16)")
            .await
            .expect("narrow client_ip");
        let dialect = env.config().dialect();
        let mut client = env.warehouse().await;
        let existing = redtrack::migrate::read_columns_for(&client, "test_events", dialect)
            .await
            .expect("columns");
        let plan = redtrack::migrate::plan(TestEvent::schema(), &existing);
        assert_eq!(plan.changes.len(), 2, "{plan:?}");
        warehouse
            .batch_execute("ALTER TABLE test_events RENAME COLUMN client_ip TO gone")
            .await
            .expect("rename client_ip");
        let e = plan.apply(&mut client, dialect).await.unwrap_err().to_string();
        assert!(
            e.contains("applied: ALTER TABLE test_events ADD COLUMN message VARCHAR(128)"),
            "{e}"
        );
        assert!(
            e.contains("failed: `ALTER TABLE test_events ALTER COLUMN client_ip TYPE VARCHAR(32)`"),
            "{e}"
        );
        let added: i64 = env
            .pg()
            .await
            .query_one(
                "SELECT count(*) FROM information_schema.columns \
                 WHERE table_name = 'test_events' AND column_name = 'message'",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(added, 1, "the ADD COLUMN it reported applied is there");
    }
}

/// `setup` says how many shards a stream was created with, and how many an existing one has
/// (which `--shards` does not change).
#[tokio::test]
async fn setup_reports_each_streams_shard_count() {
    let env = common::TestEnv::new().await;
    let stream = env.stream_name("test_events");
    let out = ok(
        run(&env, &["setup", "--table", "test_events", "--shards", "2"]).await,
        "setup",
    );
    assert!(
        out.contains(&format!("stream {stream}: created with 2 shards\n")),
        "{out}"
    );
    assert!(out.contains("stage s3://"), "the stage was checked: {out}");
    let out = ok(
        run(&env, &["setup", "--table", "test_events", "--shards", "4"]).await,
        "setup again",
    );
    assert!(
        out.contains(&format!(
            "stream {stream}: already there, 2 open shards (--shards applies to new streams"
        )),
        "{out}"
    );
    ok(
        run(&env, &["split-shards", "--table", "test_events"]).await,
        "split",
    );
    let out = ok(
        run(&env, &["setup", "--table", "test_events"]).await,
        "setup after the split",
    );
    assert!(
        out.contains(&format!("stream {stream}: already there, 4 open shards")),
        "{out}"
    );
}

crate::each_backend! {
    /// The loader's knobs are flags: `--max-load-records` cuts a load short (and says more waits),
    /// `--max-errors` lets a load keep the bad rows aside, which `errors` then shows with their
    /// column (on PostgreSQL as on Redshift).
    async fn loader_knobs_are_flags_and_errors_names_the_column(env: TestEnv) {
        ok(
            run(&env, &["setup", "--table", "test_events"]).await,
            "setup",
        );
        write_events(env.config(), 0, 5).await;
        let broker = redtrack::broker::AnyBroker::from_config(&env.config())
            .await
            .expect("broker");
        redtrack::broker::Broker::put_records(
            &broker,
            &env.stream_name("test_events"),
            &[redtrack::broker::PutRecord {
                partition_key: "k".into(),
                data: br#"{"client_ip":"2.2.2.2","timestamp":"soon"}"#.to_vec().into(),
            }],
        )
        .await
        .expect("a bad record");

        let out = ok(
            run(
                &env,
                &[
                    "load",
                    "--table",
                    "test_events",
                    "--max-load-records",
                    "2",
                    "--json",
                ],
            )
            .await,
            "a short load",
        );
        let report = &common::json_lines(&out)[0];
        assert_eq!(report["records"], 2, "{report}");
        assert_eq!(report["more"], true, "{report}");

        let r = run(&env, &["load", "--table", "test_events"]).await;
        assert_eq!(
            r.code, EXIT_FAILED,
            "MAXERROR 0 refuses the bad row: {}",
            r.out
        );
        let out = ok(
            run(
                &env,
                &["load", "--table", "test_events", "--max-errors", "1"],
            )
            .await,
            "a load with room for one bad row",
        );
        assert!(
            out.starts_with("test_events: 3 events loaded")
                && out.contains("1 rejected (see `errors --table test_events`)"),
            "{out}"
        );
        let out = ok(
            run(&env, &["errors", "--table", "test_events"]).await,
            "errors",
        );
        assert!(out.contains("column timestamp: "), "{out}");
        assert!(out.contains("value: soon"), "{out}");
        // Each kept row says what became of it: the failed load's first record is read again
        // by the next load; the one kept under --max-errors waits for `redrive`.
        assert!(
            out.contains("its load failed and loaded nothing: the next load reads it again"),
            "{out}"
        );
        assert!(
            out.contains("kept: `redrive --table test_events` loads it once the table fits it"),
            "{out}"
        );
        assert!(!out.contains(" line 0\n"), "a record has no line: {out}");
    }
}

/// `load --all` loads every registered table in one process, a summary each; the summary counts
/// the shards that had records among those read.
#[tokio::test]
async fn load_all_loads_every_table() {
    let env = common::TestEnv::new().await;
    ok(run(&env, &["setup", "--shards", "2"]).await, "setup");
    write_events(env.config(), 0, 40).await;
    let out = ok(run(&env, &["load", "--all"]).await, "load --all");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("test_events: 40 events loaded from 2 of 2 shards"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("test_all_types: 0 events loaded from 0 of 2 shards"),
        "{out}"
    );
    let r = run(&env, &["load", "--table", "test_events", "--all"]).await;
    assert_eq!(r.code, EXIT_USAGE, "--table and --all exclude each other");
    let r = run(&env, &["load"]).await;
    assert_eq!(r.code, EXIT_USAGE, "one of --table and --all is needed");
}

/// `load --follow` (here for every table, with `--all`) prints one summary per load, empty
/// ones included, as JSON lines; SIGTERM stops it between loads, with a last line per table.
/// Its log lines, off a terminal, are plain text without colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_follow_prints_a_summary_per_load() {
    use std::io::{BufRead, BufReader};
    let env = common::TestEnv::new().await;
    ok(run(&env, &["setup", "--shards", "1"]).await, "setup");
    write_events(env.config(), 0, 10).await;
    let mut vars: Vec<(&str, &str)> = env.vars().collect();
    vars.push(("RUST_LOG", "info"));
    let mut child = common::cli_command(
        vars,
        &["load", "--all", "--follow", "--interval", "0.1", "--json"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("the follower");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // Loads of both tables, empty ones among them, then 5 more events.
    let mut summaries: Vec<serde_json::Value> = Vec::new();
    let mut wrote_more = false;
    let loaded = |s: &[serde_json::Value]| -> u64 {
        s.iter()
            .filter(|j| j["table"] == "test_events" && j.get("load_id").is_some())
            .map(|j| j["records"].as_u64().unwrap_or(0))
            .sum()
    };
    while loaded(&summaries) < 15 || summaries.iter().filter(|j| j["records"] == 0).count() < 3 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no summary: {e}; so far: {summaries:?}"));
        summaries.extend(common::json_lines(&line));
        if !wrote_more && loaded(&summaries) >= 10 {
            write_events(env.config(), 10, 5).await;
            wrote_more = true;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait_with_output().expect("the follower exits");
    assert_eq!(exit.status.code(), Some(0), "{exit:?}");
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        summaries.extend(common::json_lines(&line));
    }
    for table in ["test_events", "test_all_types"] {
        let loads = summaries
            .iter()
            .filter(|j| j["table"] == table && j.get("load_id").is_some())
            .count();
        let stopped = summaries
            .iter()
            .find(|j| j["table"] == table && j["stopped"] == true)
            .unwrap_or_else(|| panic!("no last line for {table}: {summaries:?}"));
        assert!(loads >= 2, "{table}: {summaries:?}");
        assert_eq!(stopped["loads"].as_u64(), Some(loads as u64), "{stopped}");
    }
    assert_eq!(loaded(&summaries), 15);
    let log = String::from_utf8_lossy(&exit.stderr);
    assert!(log.contains("load committed"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes off a terminal:\n{log}"
    );
}

/// `run_with` logs like `run` does (to stderr, by `RUST_LOG`).
#[tokio::test]
async fn run_with_keeps_the_logging_run_sets_up() {
    let env = common::TestEnv::new().await;
    let mut vars: Vec<(&str, &str)> = env.vars().collect();
    vars.extend([
        ("RUST_LOG", "debug"),
        ("REDTRACK_CLI_CHILD_VIA", "run_with"),
    ]);
    let r = common::run_cli(common::cli_command(
        vars,
        &["setup", "--table", "test_events"],
    ));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.err.contains("DEBUG"), "no log from run_with: {r:?}");
}

/// `status` shows what waits to be loaded in each shard: records, bytes and the age of the
/// oldest, on the Kinesis emulator (which reports MillisBehindLatest as 0) and on the file
/// broker; after a load, nothing.
#[tokio::test]
async fn status_shows_the_backlog_on_the_emulator_and_the_file_broker() {
    for file_broker in [false, true] {
        let env = common::TestEnv::new().await;
        let dir = std::env::temp_dir().join(format!("redtrack-status-{}", env.id()));
        let config = match file_broker {
            false => env.config(),
            true => env
                .config()
                .into_builder()
                .broker(redtrack::BrokerKind::File(dir.clone()))
                .build()
                .expect("config"),
        };
        let run_with = |args: &'static [&'static str]| {
            let config = config.clone();
            async move {
                let (code, out, err) = common::cli(config, args).await;
                assert_eq!(code, EXIT_OK, "{args:?}: {out}{err}");
                out
            }
        };
        run_with(&["setup", "--shards", "1"]).await;
        write_events(config.clone(), 0, 12).await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let shards: Vec<serde_json::Value> =
            serde_json::from_str(run_with(&["status", "--json"]).await.trim()).expect("JSON");
        let s = &shards[0];
        assert_eq!(s["unloaded_records"], 12, "{s}");
        assert!(s["unloaded_bytes"].as_u64().unwrap_or(0) > 12 * 30, "{s}");
        assert_eq!(s["unloaded_counted_all"], true, "{s}");
        assert!(
            s["oldest_unloaded_age_ms"].as_u64().unwrap_or(0) >= 1000,
            "the oldest unloaded record waited a second: {s}"
        );
        let table = run_with(&["status"]).await;
        assert!(
            table.contains("UNLOADED") && table.contains(" 12 "),
            "{table}"
        );

        run_with(&["load", "--table", "test_events"]).await;
        let shards: Vec<serde_json::Value> =
            serde_json::from_str(run_with(&["status", "--json"]).await.trim()).expect("JSON");
        assert_eq!(shards[0]["unloaded_records"], 0, "{}", shards[0]);
        assert_eq!(shards[0]["oldest_unloaded_age_ms"], serde_json::Value::Null);
        let _ = std::fs::remove_dir_all(dir);
    }
}
