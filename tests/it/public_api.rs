//! The public API exactly as DESIGN.md shows it ("Public API: these names are contracts"), used
//! the way an application would: only the facade crate `redtrack`, `?` in an async fn returning
//! `Result<(), Box<dyn std::error::Error>>`, no internal modules. Runs on the local services.

use crate::common;

use std::error::Error as StdError;

/// The contract's snippet, verbatim.
mod snippet {
    use redtrack::RedTrackEvent;

    #[derive(RedTrackEvent)]
    #[redtrack(table = "test_events", sortkey = "timestamp")]
    pub struct TestEvent {
        #[redtrack(type = "varchar(32)")]
        pub client_ip: String, // NOT NULL: not an Option
        pub timestamp: i32, // INTEGER, inferred from i32
        #[redtrack(type = "varchar(128)")]
        pub message: Option<String>, // nullable
    }
}

use snippet::TestEvent;

/// Compile-time proof that the error types are what `?` into `Box<dyn Error>` needs.
fn assert_std_error<E: StdError + Send + Sync + 'static>() {}

#[test]
fn error_types_are_std_errors_with_the_contract_names() {
    assert_std_error::<redtrack::Error>();
    assert_std_error::<redtrack::EncodeError>();
    // Both convert into a boxed error by `?`.
    fn boxed(e: redtrack::Error) -> Box<dyn StdError + Send + Sync + 'static> {
        Box::new(e)
    }
    fn boxed_encode(e: redtrack::EncodeError) -> Box<dyn StdError + Send + Sync + 'static> {
        e.into()
    }
    let _ = (boxed, boxed_encode);
    // An EncodeError becomes a redtrack::Error (what `client.write(..)?` returns).
    fn from_encode(e: redtrack::EncodeError) -> redtrack::Error {
        e.into()
    }
    let _ = from_encode;
}

/// What an application shares between tasks: the client (cloned into every handler), the
/// configuration, the loader, the schema statics.
#[test]
fn shared_types_are_send_sync_and_clone() {
    fn shared<T: Send + Sync + 'static>() {}
    fn cloned<T: Clone>() {}
    shared::<redtrack::Client>();
    shared::<redtrack::Config>();
    shared::<redtrack::Loader>();
    shared::<redtrack::LoadReport>();
    shared::<&'static redtrack::TableSchema>();
    shared::<TestEvent>();
    cloned::<redtrack::Client>();
    cloned::<redtrack::Config>();
    cloned::<redtrack::ConfigBuilder>();
}

/// The inherent items work without `use redtrack::RedTrackEvent` in scope (this function has
/// no such import; the trait is only imported inside `mod snippet`).
#[test]
fn inherent_items_without_the_trait_in_scope() -> Result<(), Box<dyn StdError>> {
    let table: &'static str = TestEvent::TABLE_NAME;
    assert_eq!(table, "test_events");

    let sql: String = TestEvent::create_table_sql();
    assert_eq!(
        sql,
        "CREATE TABLE IF NOT EXISTS test_events (\n    \
         client_ip VARCHAR(32) NOT NULL,\n    \
         \"timestamp\" INTEGER NOT NULL,\n    \
         message VARCHAR(128)\n\
         )\n\
         COMPOUND SORTKEY (\"timestamp\")"
    );

    let schema: &'static redtrack::TableSchema = TestEvent::schema();
    assert_eq!(schema.name, "test_events");
    let columns: Vec<(&str, String, bool)> = schema
        .columns
        .iter()
        .map(|c| (c.name, c.sql_type.to_string(), c.nullable))
        .collect();
    assert_eq!(
        columns,
        [
            ("client_ip", "VARCHAR(32)".to_owned(), false),
            ("timestamp", "INTEGER".to_owned(), false),
            ("message", "VARCHAR(128)".to_owned(), true),
        ]
    );
    assert_eq!(
        schema.columns[0].sql_type,
        redtrack::SqlType::Varchar { len: 32 }
    );
    assert_eq!(schema.columns[1].sql_type, redtrack::SqlType::Integer);
    assert_eq!(schema.sortkey, redtrack::SortKey::Compound(&["timestamp"]));
    assert_eq!(schema.distkey, None);
    assert_eq!(schema.diststyle, None);
    assert!(schema.column("message").is_some_and(|c| c.nullable));

    let event = TestEvent {
        client_ip: "127.0.0.1".into(),
        timestamp: 1_700_000_000,
        message: Some("héllo \"world\"".into()),
    };
    let mut buf = Vec::new();
    event.encode_json(&mut buf)?;
    let json: String = event.to_json()?;
    assert_eq!(buf, json.as_bytes());
    assert_eq!(
        json,
        r#"{"client_ip":"127.0.0.1","timestamp":1700000000,"message":"héllo \"world\""}"#
    );
    // encode_json appends.
    event.encode_json(&mut buf)?;
    assert_eq!(buf, format!("{json}{json}").as_bytes());

    let none = TestEvent {
        message: None,
        ..event
    };
    assert_eq!(
        none.to_json()?,
        r#"{"client_ip":"127.0.0.1","timestamp":1700000000,"message":null}"#
    );
    assert_eq!(none.partition_key(), None);
    Ok(())
}

/// The same items through the trait, generically, as library code over any event would use them.
#[test]
fn trait_items_generically() -> Result<(), Box<dyn StdError>> {
    use redtrack::RedTrackEvent;
    fn describe<E: RedTrackEvent>(e: &E) -> Result<(String, String, usize), redtrack::EncodeError> {
        Ok((
            E::TABLE_NAME.to_owned(),
            e.to_json()?,
            E::schema().columns.len(),
        ))
    }
    let e = TestEvent {
        client_ip: "::1".into(),
        timestamp: -1,
        message: None,
    };
    let (table, json, n) = describe(&e)?;
    assert_eq!(table, "test_events");
    assert_eq!(json, r#"{"client_ip":"::1","timestamp":-1,"message":null}"#);
    assert_eq!(n, 3);
    assert_eq!(
        <TestEvent as RedTrackEvent>::create_table_sql(),
        TestEvent::create_table_sql()
    );
    Ok(())
}

/// `encode_json(&mut buf)?` fails with a `redtrack::EncodeError` that names table and column.
#[test]
fn encode_error_is_the_contract_type() {
    #[derive(redtrack::RedTrackEvent)]
    #[redtrack(table = "floats")]
    struct Floats {
        value: f64,
    }
    let mut buf = b"keep".to_vec();
    let err: redtrack::EncodeError = Floats { value: f64::NAN }
        .encode_json(&mut buf)
        .expect_err("NaN does not encode");
    assert_eq!(buf, b"keep", "nothing appended on error");
    assert_eq!(err.table, "floats");
    assert_eq!(err.column, "value");
    let shown = err.to_string();
    assert!(
        shown.contains("floats") && shown.contains("value") && shown.contains("NaN"),
        "{shown}"
    );
}

/// The whole flow of the contract, with `?` everywhere.
async fn the_flow(env: &common::TestEnv) -> Result<(), Box<dyn StdError>> {
    // `Config::from_env()` reads the variables `scripts/services` exports.
    let from_env = redtrack::Config::from_env()?;
    assert!(!from_env.cluster().is_empty());

    // "also a builder": the test's own database, stage and warehouse, set by hand.
    let var = |k: &str| env.var(k).ok_or_else(|| format!("{k} is not set"));
    let config = redtrack::Config::builder()
        .cluster(var("REDTRACK_CLUSTER")?)
        .database(env.id())
        .broker(redtrack::BrokerKind::Kinesis)
        .stage(redtrack::StageLocation::parse(&var("REDTRACK_STAGE")?)?)
        .warehouse_url(env.warehouse_url())
        .dialect(redtrack::Dialect::Postgres)
        .build()?;
    // The same as the environment's configuration would be.
    let via_env = from_env.clone().into_builder().database(env.id()).build()?;
    assert_eq!(
        config.stream_name(TestEvent::TABLE_NAME),
        via_env.stream_name(TestEvent::TABLE_NAME)
    );

    let client = redtrack::Client::new(config.clone()).await?;
    let shards = 2;
    client.create_stream::<TestEvent>(shards).await?;
    client.create_stream::<TestEvent>(shards).await?; // idempotent

    for i in 0..10 {
        let event = TestEvent {
            client_ip: format!("10.0.0.{i}"),
            timestamp: 1_700_000_000 + i,
            message: (i % 2 == 0).then(|| format!("message {i}")),
        };
        client.write(&event).await?;
    }
    client.flush().await?;

    let loader = redtrack::Loader::new(config).await?;
    loader.setup::<TestEvent>().await?;
    loader.setup::<TestEvent>().await?; // idempotent
    let report = loader.load::<TestEvent>().await?;
    assert_eq!(report.records, 10);
    let again = loader.load::<TestEvent>().await?;
    assert_eq!(again.records, 0, "nothing is loaded twice");

    let pg = env.pg().await;
    let rows = pg
        .query(
            "SELECT client_ip, \"timestamp\", message FROM test_events ORDER BY \"timestamp\"",
            &[],
        )
        .await?;
    assert_eq!(rows.len(), 10);
    for (i, row) in (0..10).zip(&rows) {
        assert_eq!(row.get::<_, String>(0), format!("10.0.0.{i}"));
        assert_eq!(row.get::<_, i32>(1), 1_700_000_000 + i);
        assert_eq!(
            row.get::<_, Option<String>>(2),
            (i % 2 == 0).then(|| format!("message {i}"))
        );
    }

    // A bad value fails `write` with `redtrack::Error::Encode`, which `?` would pass on.
    #[derive(redtrack::RedTrackEvent)]
    #[redtrack(table = "bad_floats")]
    struct BadFloats {
        value: f32,
    }
    match client
        .write(&BadFloats {
            value: f32::INFINITY,
        })
        .await
    {
        Err(redtrack::Error::Encode(e)) => {
            assert_eq!((e.table, e.column), ("bad_floats", "value"));
        }
        other => panic!("expected Error::Encode, got {other:?}"),
    }
    client.close().await?;
    Ok(())
}

/// Plain `#[tokio::test]`: a current-thread runtime, as many applications' tests have.
#[tokio::test]
async fn design_snippet_end_to_end() {
    // Short names: the S3 emulator (s3s-fs) keeps each key in one file name.
    let env = common::TestEnv::named("api").await;
    // A `Box<dyn Error>` result is a plain std error: printable, with its sources.
    if let Err(e) = the_flow(&env).await {
        panic!("the public API flow failed: {e}");
    }
}

/// The spawned-task shape of an application: the futures of `write` and `load` are `Send`, and
/// their errors cross task boundaries as `Box<dyn Error + Send + Sync>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send_and_errors_cross_tasks() {
    let env = common::TestEnv::named("api_send").await;
    let config = env.config();
    let task = tokio::spawn(async move {
        let client = redtrack::Client::new(config.clone()).await?;
        client.create_stream::<TestEvent>(1).await?;
        let event = TestEvent {
            client_ip: "1.2.3.4".into(),
            timestamp: 7,
            message: None,
        };
        client.write(&event).await?;
        client.flush().await?;
        let loader = redtrack::Loader::new(config).await?;
        loader.setup::<TestEvent>().await?;
        let report = loader.load::<TestEvent>().await?;
        Ok::<u64, Box<dyn StdError + Send + Sync>>(report.records)
    });
    let records = task
        .await
        .expect("the task ran")
        .unwrap_or_else(|e| panic!("the task failed: {e}"));
    assert_eq!(records, 1);
}
