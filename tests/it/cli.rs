//! The command line against the local services: an application's own `redtrack` binary for the
//! seed tables, run in-process with the test's configuration.

use crate::{common, seed};

use redtrack::cli::{Cli, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use redtrack::{Client, Dialect};
use seed::{TestAllTypes, TestEvent};

/// What one run of the command line did.
struct Run {
    code: u8,
    out: String,
    err: String,
}

async fn run(env: &common::TestEnv, args: &[&str]) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let config = env.config();
    let code = Cli::new("redtrack")
        .register::<TestEvent>()
        .register::<TestAllTypes>()
        .run_to(
            std::iter::once("redtrack").chain(args.iter().copied()),
            move || Ok(config),
            &mut out,
            &mut err,
        )
        .await;
    Run {
        code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
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
    let code = Cli::new("redtrack")
        .register::<TestEvent>()
        .register::<TestAllTypes>()
        .run_args(args)
        .await;
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
    // Every table `setup` creates.
    for table in ["kinesis_loads", "redtrack_load_rejects"] {
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
    assert_eq!(ddl.trim(), format!("{};", TestEvent::create_table_sql()));
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

#[tokio::test]
async fn cli_end_to_end() {
    let env = common::TestEnv::new().await;

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
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = Cli::new("redtrack")
        .register::<TestEvent>()
        .run_to(
            ["redtrack", "load", "--table", "test_events"],
            move || Ok(config),
            &mut out,
            &mut err,
        )
        .await;
    let err = String::from_utf8_lossy(&err);
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
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = Cli::new("redtrack")
        .register::<TestEvent>()
        .run_to(
            ["redtrack", "setup"],
            move || Ok(config),
            &mut out,
            &mut err,
        )
        .await;
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(
        err.contains("set REDTRACK_WAREHOUSE_DIALECT=postgres"),
        "{err}"
    );
}
