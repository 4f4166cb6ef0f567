//! Every step taken out of order names the step to take: a load before `setup`, a field deployed
//! before `migrate --apply`, `errors` without `redtrack_load_rejects`, a stream or a bucket that
//! is not there. Nothing is loaded, nothing is lost, and once the step is taken the same events
//! load. A COPY that cannot start is never taken for a rejected row.

use crate::{common, seed};

use redtrack::cli::{EXIT_OK, EXIT_USAGE};
use redtrack::{Error, Loader};
use seed::{TestAllTypes, TestEvent};

use common::cli;

async fn write_events(config: redtrack::Config, n: i32) {
    common::write_test_events(config, 0, n).await;
}

async fn rows(env: &common::TestEnv) -> i64 {
    env.pg()
        .await
        .query_one("SELECT count(*) FROM test_events", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn a_load_before_setup_says_to_run_setup() {
    let env = common::TestEnv::new().await;
    write_events(env.config(), 5).await;
    let loader = Loader::new(env.config()).await.expect("loader");
    match loader.load::<TestEvent>().await {
        Err(Error::Missing {
            missing: redtrack::error::Missing::Table { table },
            ..
        }) => assert_eq!(table, "kinesis_loads"),
        other => panic!("expected Error::Missing, got {other:?}"),
    }
    let (code, _, err) = cli(env.config(), &["load", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert_eq!(
        err.trim(),
        "redtrack: error: table `kinesis_loads` does not exist: run `setup` (or \
         `Loader::setup`), which creates it"
    );
    let (code, _, err) = cli(env.config(), &["status", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(err.contains("run `setup`"), "{err}");

    // The bookkeeping is there, the event table is not (setup ran for another table).
    let (code, out, err) = cli(env.config(), &["setup", "--table", "test_all_types"]).await;
    assert_eq!(code, EXIT_OK, "{out}{err}");
    match loader.load::<TestEvent>().await {
        Err(e @ Error::Missing { .. }) => assert_eq!(
            e.to_string(),
            "table `test_events` does not exist: run `setup --table test_events` (or \
             `Loader::setup`), which creates it"
        ),
        other => panic!("expected Error::Missing, got {other:?}"),
    }

    // The step taken, the same events load.
    loader.setup::<TestEvent>().await.expect("setup");
    assert_eq!(loader.load::<TestEvent>().await.expect("load").records, 5);
}

/// A field deployed before its column was added: the load stops before reading (on Redshift a
/// COPY would drop the field's values without a word), names the column, and loads everything
/// once `migrate --apply` ran.
#[tokio::test]
async fn a_field_deployed_before_migrate_says_to_migrate() {
    let env = common::TestEnv::new().await;
    write_events(env.config(), 7).await;
    let loader = env.loader::<TestEvent>().await;
    let pg = env.pg().await;
    pg.batch_execute("ALTER TABLE test_events DROP COLUMN message")
        .await
        .expect("the table of the previous deploy");
    let err = loader
        .load::<TestEvent>()
        .await
        .expect_err("a missing column");
    assert_eq!(
        err.to_string(),
        "column `message` of table `test_events` is missing (the struct has fields the table \
         lacks): run `migrate --table test_events --apply`"
    );
    assert!(!err.is_retryable());
    let (code, _, stderr) = cli(env.config(), &["load", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_USAGE, "{stderr}");
    assert!(
        stderr.contains("run `migrate --table test_events --apply`"),
        "{stderr}"
    );
    let loads: i64 = pg
        .query_one("SELECT count(*) FROM kinesis_loads", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(loads, 0, "nothing was recorded as loaded");

    let (code, out, err) = cli(
        env.config(),
        &["migrate", "--table", "test_events", "--apply"],
    )
    .await;
    assert_eq!(code, EXIT_OK, "{out}{err}");
    assert_eq!(loader.load::<TestEvent>().await.expect("load").records, 7);
    assert_eq!(rows(&env).await, 7);
}

#[tokio::test]
async fn errors_without_the_rejects_table_says_to_run_setup() {
    let env = common::TestEnv::new().await;
    env.loader::<TestEvent>().await;
    env.pg()
        .await
        .batch_execute("DROP TABLE redtrack_load_rejects")
        .await
        .expect("drop");
    let (code, _, err) = cli(env.config(), &["errors", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(
        err.contains("table `redtrack_load_rejects` does not exist: run `setup`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_stream_says_to_run_setup() {
    let env = common::TestEnv::new().await;
    let loader = env.loader::<TestEvent>().await; // tables only, no stream
    let err = loader.load::<TestEvent>().await.expect_err("no stream");
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err}");
    assert!(
        err.to_string()
            .contains("the stream does not exist: run `setup`"),
        "{err}"
    );

    let file = env
        .config()
        .into_builder()
        .broker(redtrack::BrokerKind::File(
            std::env::temp_dir().join(format!("redtrack-{}", env.id())),
        ))
        .build()
        .expect("config");
    let err = Loader::new(file)
        .await
        .expect("loader")
        .load::<TestEvent>()
        .await
        .expect_err("no stream");
    assert!(
        err.to_string()
            .contains("the stream does not exist: run `setup`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_bucket_says_to_create_it() {
    let env = common::TestEnv::new().await;
    let bucket = format!("no-such-bucket-{}", env.id().replace('_', "-"));
    let config = env
        .config()
        .into_builder()
        .stage(redtrack::StageLocation::S3 {
            bucket: bucket.clone(),
            prefix: "stage".into(),
        })
        .build()
        .expect("config");
    let (code, out, err) = cli(config.clone(), &["setup", "--table", "test_events"]).await;
    assert_ne!(code, EXIT_OK, "{out}");
    assert!(
        err.contains(&format!("the bucket `{bucket}` does not exist: create it")),
        "{err}"
    );
    // (A load's PutObject would say the same; s3s-fs, unlike S3, creates the bucket instead.)
}

/// The warehouse's COPY that cannot start (here: its table went away after the load's checks)
/// fails the load with what is missing; it is not a rejected row, and nothing is kept as one.
#[tokio::test]
async fn a_copy_that_cannot_start_is_not_a_rejected_row() {
    let env = common::TestEnv::new().await;
    let loader = env.loader::<TestEvent>().await;
    copy_into_a_dropped_table(&env, &loader).await;
}

/// Stages one file (and its manifest), drops `test_events`, and runs the warehouse's COPY of the
/// file: it must fail with `Error::Missing` naming the table.
async fn copy_into_a_dropped_table(env: &common::TestEnv, loader: &Loader) {
    use redtrack::stage::Stage;
    use redtrack::warehouse::{CopyRequest, StagedFile, Warehouse};

    let line = br#"{"client_ip":"10.0.0.1","timestamp":1,"message":"m"}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, line).expect("gzip");
    let folder = "redtrack/unstartable";
    let key = format!("{folder}/part-0000.json.gz");
    let stage = loader.stage();
    stage
        .put_bytes(&key, gz.finish().expect("gzip").into())
        .await
        .expect("stage a file");
    let manifest_key = format!("{folder}/manifest.json");
    let manifest = format!(
        r#"{{"entries":[{{"url":"{}","mandatory":true}}]}}"#,
        stage.url(&key)
    );
    stage
        .put_bytes(&manifest_key, manifest.into_bytes().into())
        .await
        .expect("stage the manifest");
    env.pg()
        .await
        .batch_execute("DROP TABLE test_events")
        .await
        .expect("drop");
    let mut client = loader.warehouse().connect().await.expect("connect");
    let txn = client.transaction().await.expect("begin");
    let req = CopyRequest {
        table: TestEvent::schema(),
        load_id: "unstartable".into(),
        folder: folder.into(),
        manifest_url: stage.url(&manifest_key),
        files: vec![StagedFile {
            url: stage.url(&key),
            key,
            lines: 1,
        }],
        max_errors: 10,
    };
    match loader.warehouse().copy(&txn, &req, stage).await {
        Err(Error::Missing {
            missing: redtrack::error::Missing::Table { table },
            ..
        }) => assert_eq!(table, "test_events"),
        other => panic!("expected Error::Missing, got {other:?}"),
    }
}

/// The same steps against the Redshift stand-in, in the `redshift` dialect: a load before
/// `setup`, a table `setup` did not create yet, a field deployed before `migrate --apply` (which
/// Redshift's COPY would drop silently), `errors` without `redtrack_load_rejects`, and a COPY
/// that cannot start.
#[tokio::test]
async fn in_the_redshift_dialect_too() {
    let env = common::TestEnv::new().await;
    let config = env.redshift_config();
    write_events(config.clone(), 4).await;
    let loader = Loader::new(config.clone()).await.expect("loader");
    let err = loader.load::<TestEvent>().await.expect_err("before setup");
    assert_eq!(
        err.to_string(),
        "table `kinesis_loads` does not exist: run `setup` (or `Loader::setup`), which creates it"
    );
    loader
        .setup::<TestAllTypes>()
        .await
        .expect("setup of another table");
    let err = loader.load::<TestEvent>().await.expect_err("no table");
    assert!(
        err.to_string()
            .starts_with("table `test_events` does not exist: run `setup --table test_events`"),
        "{err}"
    );
    loader.setup::<TestEvent>().await.expect("setup");
    let pg = env.pg().await;
    pg.batch_execute("ALTER TABLE test_events DROP COLUMN message")
        .await
        .expect("the previous deploy's table");
    let (code, _, stderr) = cli(config.clone(), &["load", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_USAGE, "{stderr}");
    assert!(
        stderr.contains("column `message` of table `test_events` is missing")
            && stderr.contains("run `migrate --table test_events --apply`"),
        "{stderr}"
    );
    let (code, out, err) = cli(
        config.clone(),
        &["migrate", "--table", "test_events", "--apply"],
    )
    .await;
    assert_eq!(code, EXIT_OK, "{out}{err}");
    assert_eq!(loader.load::<TestEvent>().await.expect("load").records, 4);
    let with_message: i64 = pg
        .query_one("SELECT count(message) FROM test_events", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(with_message, 4, "no field's values were dropped");

    pg.batch_execute("DROP TABLE redtrack_load_rejects")
        .await
        .expect("drop");
    let (code, _, err) = cli(config.clone(), &["errors", "--table", "test_events"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(
        err.contains("table `redtrack_load_rejects` does not exist: run `setup`"),
        "{err}"
    );

    // A COPY whose table went away after the load's checks.
    copy_into_a_dropped_table(&env, &loader).await;
}
