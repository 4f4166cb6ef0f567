//! Kept rejects loaded again once the table is fixed, exactly once: reject, fix the table
//! (`migrate --apply`), re-drive, re-drive again (nothing twice); two re-drives at once; the
//! `redrive` command. The first two run on every backend (PostgreSQL, and the Redshift stand-in
//! provisioned and Serverless).

use crate::common;

use bytes::Bytes;
use redtrack::broker::{AnyBroker, Broker, PutRecord};
use redtrack::cli::{Cli, EXIT_OK};
use redtrack::{Loader, RedTrackEvent};

/// The table as first deployed: names of at most 8 bytes.
#[derive(Debug, Clone, RedTrackEvent)]
#[redtrack(table = "redrive_events")]
pub struct Narrow {
    pub id: i32,
    #[redtrack(type = "varchar(8)")]
    pub name: Option<String>,
}

/// The same table once `migrate --apply` widened the column.
#[derive(Debug, Clone, RedTrackEvent)]
#[redtrack(table = "redrive_events")]
pub struct Wide {
    pub id: i32,
    #[redtrack(type = "varchar(64)")]
    pub name: Option<String>,
}

fn raw(data: &[u8]) -> PutRecord {
    PutRecord {
        partition_key: format!("k{}", rand::random::<u32>()),
        data: Bytes::copy_from_slice(data),
    }
}

async fn put(env: &common::TestEnv, records: &[PutRecord]) {
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    let stream = env.stream_name("redrive_events");
    broker.create_stream(&stream, 2).await.unwrap();
    for chunk in records.chunks(500) {
        broker.put_records(&stream, chunk).await.unwrap();
    }
}

fn config(env: &common::TestEnv, max_errors: u64) -> redtrack::Config {
    env.config()
        .into_builder()
        .with_max_errors(max_errors)
        .build()
        .unwrap()
}

/// Widens the table as `migrate --table redrive_events --apply` does, in the backend's dialect.
async fn widen(env: &common::TestEnv) {
    let dialect = env.config().dialect();
    let warehouse = env.warehouse().await;
    let existing = redtrack::migrate::read_columns(&warehouse, "redrive_events")
        .await
        .unwrap();
    let plan = redtrack::migrate::plan(Wide::schema(), &existing);
    assert!(!plan.is_empty());
    for sql in plan.statements(dialect) {
        warehouse.batch_execute(&sql).await.unwrap();
    }
}

crate::each_backend! {
    async fn reject_fix_redrive_and_redrive_again_loads_each_once(env: TestEnv) {
        let long = format!(r#"{{"id":2,"name":"{}"}}"#, "much longer than eight");
        put(
            &env,
            &[
                raw(br#"{"id":1,"name":"short"}"#),
                raw(long.as_bytes()),
                raw(br#"{"data":"{\"id\":3,\"name\":\"enveloped and long\"}"}"#),
                raw(b"{\"id\":4,\"name\":\"\xff\"}"),
            ],
        )
        .await;
        let loader = Loader::new(config(&env, 5)).await.unwrap();
        loader.setup::<Narrow>().await.unwrap();
        let report = loader.load::<Narrow>().await.unwrap();
        assert_eq!((report.records, report.rejected), (1, 3), "{report:?}");

        // Before the fix nothing fits: nothing loads, the reasons are today's.
        let early = loader.redrive::<Narrow>().await.unwrap();
        assert_eq!(early.redriven, 0);
        assert_eq!(early.still_rejected.len(), 3, "{early:?}");
        assert_eq!(env.ids("redrive_events").await, [1]);

        widen(&env).await;
        let fixed = loader.redrive::<Wide>().await.unwrap();
        assert_eq!(fixed.redriven, 2, "{fixed:?}");
        assert_eq!(fixed.still_rejected.len(), 1, "{fixed:?}");
        assert!(
            fixed.still_rejected[0].reason.contains("UTF-8"),
            "{fixed:?}"
        );
        assert_eq!(env.ids("redrive_events").await, [1, 2, 3]);

        // Again: nothing twice.
        let again = loader.redrive::<Wide>().await.unwrap();
        assert_eq!(again.redriven, 0, "{again:?}");
        assert_eq!(env.ids("redrive_events").await, [1, 2, 3]);
        let statuses: Vec<(String, i64)> = env
            .pg()
            .await
            .query(
                "SELECT status, count(*) FROM redtrack_load_rejects GROUP BY status ORDER BY status",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            statuses,
            [("redriven".to_owned(), 2), ("rejected".to_owned(), 1)]
        );
        // Loads go on as before: the re-driven records are not read again.
        assert_eq!(loader.load::<Wide>().await.unwrap().records, 0);
    }
}

crate::each_backend! {
    /// Two re-drives at once load every kept reject exactly once between them.
    async fn two_redrives_at_once_load_each_reject_once(env: TestEnv) {
        let records: Vec<Vec<u8>> = (0..60)
            .map(|i| format!(r#"{{"id":{i},"name":"name number {i} is long"}}"#).into_bytes())
            .collect();
        put(&env, &records.iter().map(|r| raw(r)).collect::<Vec<_>>()).await;
        let loader = Loader::new(config(&env, 100)).await.unwrap();
        loader.setup::<Narrow>().await.unwrap();
        assert_eq!(loader.load::<Narrow>().await.unwrap().rejected, 60);
        widen(&env).await;
        let other = Loader::new(config(&env, 100)).await.unwrap();
        let (a, b) = tokio::join!(loader.redrive::<Wide>(), other.redrive::<Wide>());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.redriven + b.redriven, 60, "{a:?} {b:?}");
        assert_eq!(env.ids("redrive_events").await, (0..60).collect::<Vec<_>>());
    }
}

/// The `redrive` command: what it loaded and what still does not fit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redrive_command_reports_what_it_loaded() {
    let env = common::TestEnv::named("redrive_cli").await;
    put(
        &env,
        &[
            raw(br#"{"id":1,"name":"a name too long for eight"}"#),
            raw(br#"{"id":"two"}"#),
        ],
    )
    .await;
    let loader = Loader::new(config(&env, 5)).await.unwrap();
    loader.setup::<Narrow>().await.unwrap();
    assert_eq!(loader.load::<Narrow>().await.unwrap().rejected, 2);
    widen(&env).await;
    let run = |args: &'static [&'static str]| {
        let config = config(&env, 5);
        async move { common::cli_of(Cli::new("app").register::<Wide>(), config, args).await }
    };
    let (code, out, err) = run(&["redrive", "--table", "redrive_events"]).await;
    assert_eq!(code, EXIT_OK, "{out}{err}");
    assert!(
        out.contains("loaded 1 kept rejects again; 1 still do not fit"),
        "{out}"
    );
    assert!(out.contains("column id"), "{out}");
    let (code, out, err) = run(&["redrive", "--table", "redrive_events", "--json"]).await;
    assert_eq!(code, EXIT_OK, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["redriven"], 0, "{out}");
    assert_eq!(env.ids("redrive_events").await, [1]);
}

crate::each_backend! {
    /// The rejects table of an older redtrack (its first eight columns, a row of its own): before
    /// `setup` a re-drive says to run it; `setup` adds the new columns and keeps the row, which
    /// is listed and never re-driven (it has no raw record); new rejects are kept whole.
    async fn an_older_rejects_table_keeps_its_rows_and_gets_the_new_columns(env: TestEnv) {
        env.warehouse()
            .await
            .batch_execute(
                "CREATE TABLE redtrack_load_rejects (load_id VARCHAR(64) NOT NULL, \
                 table_name VARCHAR(256) NOT NULL, file_name VARCHAR(1024) NOT NULL, \
                 line_number BIGINT NOT NULL, column_name VARCHAR(256) NOT NULL, \
                 raw_value VARCHAR(4096) NOT NULL, reason VARCHAR(1024) NOT NULL, \
                 rejected_at TIMESTAMP NOT NULL)",
            )
            .await
            .unwrap();
        env.pg()
            .await
            .batch_execute(
                "INSERT INTO redtrack_load_rejects VALUES ('old', 'redrive_events', 'f', 1, \
                 'name', 'x', 'value too long', '2024-01-01 00:00:00')",
            )
            .await
            .unwrap();
        let loader = Loader::new(config(&env, 5)).await.unwrap();
        let err = loader.redrive::<Narrow>().await.unwrap_err().to_string();
        assert!(err.contains("run setup"), "{err}");
        loader.setup::<Narrow>().await.unwrap();
        put(&env, &[raw(br#"{"id":1,"name":"far too long a name"}"#)]).await;
        assert_eq!(loader.load::<Narrow>().await.unwrap().rejected, 1);
        let kept = loader.rejects::<Narrow>(10).await.unwrap();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.iter().any(|k| k.load_id == "old"), "{kept:?}");
        widen(&env).await;
        let report = loader.redrive::<Wide>().await.unwrap();
        assert_eq!((report.redriven, report.still_rejected.len()), (1, 0), "{report:?}");
        assert_eq!(env.ids("redrive_events").await, [1]);
    }
}
