//! Every step taken out of order names the step to take: a load before `setup`, a field deployed
//! before `migrate --apply`, `errors` without `redtrack_load_rejects`, a stream or a bucket that
//! is not there. Nothing is loaded, nothing is lost, and once the step is taken the same events
//! load. A COPY that cannot start is never taken for a rejected row. The warehouse's steps run on
//! every backend (PostgreSQL, and the Redshift stand-in provisioned and Serverless); DDL a user
//! would send goes through the warehouse as the loader reaches it.

use crate::{common, seed};

use redtrack::cli::{EXIT_OK, EXIT_USAGE};
use redtrack::error::Missing;
use redtrack::{Error, Loader};
use seed::TestEvent;

use common::{cli, write_test_events};

crate::each_backend! {
    /// Before `setup` nothing exists: the load, the command line and `status` say to run it; with
    /// the bookkeeping made for another table only, the event table's own `setup` is named.
    async fn a_load_before_setup_says_to_run_setup(env: TestEnv) {
        write_test_events(env.config(), 0, 5).await;
        let loader = Loader::new(env.config()).await.expect("loader");
        match loader.load::<TestEvent>().await {
            Err(Error::Missing {
                missing: Missing::Table { table },
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

    /// A field deployed before its column was added: the load stops before reading (Redshift's
    /// COPY would drop the field's values without a word), names the column, records nothing, and
    /// loads every event with its field once `migrate --apply` ran.
    async fn a_field_deployed_before_migrate_says_to_migrate(env: TestEnv) {
        write_test_events(env.config(), 0, 7).await;
        let loader = env.loader::<TestEvent>().await;
        env.warehouse()
            .await
            .batch_execute("ALTER TABLE test_events DROP COLUMN message")
            .await
            .expect("the table of the previous deploy");
        let err = loader
            .load::<TestEvent>()
            .await
            .expect_err("a missing column");
        assert_eq!(
            err.to_string(),
            "column `message` of table `test_events` is missing (the struct has fields the \
             table lacks): run `migrate --table test_events --apply`"
        );
        assert!(!err.is_retryable());
        let (code, _, stderr) = cli(env.config(), &["load", "--table", "test_events"]).await;
        assert_eq!(code, EXIT_USAGE, "{stderr}");
        assert!(
            stderr.contains("run `migrate --table test_events --apply`"),
            "{stderr}"
        );
        let pg = env.pg().await;
        let count = |sql: &'static str| {
            let pg = &pg;
            async move { pg.query_one(sql, &[]).await.expect(sql).get::<_, i64>(0) }
        };
        assert_eq!(
            count("SELECT count(*) FROM kinesis_loads").await,
            0,
            "nothing was recorded as loaded"
        );

        let (code, out, err) = cli(
            env.config(),
            &["migrate", "--table", "test_events", "--apply"],
        )
        .await;
        assert_eq!(code, EXIT_OK, "{out}{err}");
        assert_eq!(loader.load::<TestEvent>().await.expect("load").records, 7);
        assert_eq!(
            count("SELECT count(message) FROM test_events").await,
            7,
            "every event loaded with its field"
        );
    }

    /// `errors` reads `redtrack_load_rejects`: without it, it says to run `setup`.
    async fn errors_without_the_rejects_table_says_to_run_setup(env: TestEnv) {
        env.loader::<TestEvent>().await;
        env.warehouse()
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

    /// The warehouse's COPY that cannot start (here: its table went away after the load's
    /// checks) fails with what is missing; it is not a rejected row.
    async fn a_copy_that_cannot_start_is_not_a_rejected_row(env: TestEnv) {
        use redtrack::stage::Stage;
        use redtrack::warehouse::{CopyRequest, StagedFile, Warehouse};

        let loader = env.loader::<TestEvent>().await;
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
        env.warehouse()
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
                missing: Missing::Table { table },
                ..
            }) => assert_eq!(table, "test_events"),
            other => panic!("expected Error::Missing, got {other:?}"),
        }
    }
}

/// A stream that is not there (Kinesis' or the file broker's) says to run `setup`.
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
    // `split-shards` says so at once, rather than waiting minutes for the stream to turn ACTIVE.
    let (code, out, err) = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        cli(env.config(), &["split-shards", "--table", "test_events"]),
    )
    .await
    .expect("split-shards answers at once");
    assert_eq!(code, redtrack::cli::EXIT_FAILED, "{out}{err}");
    assert!(
        err.contains("the stream does not exist: run `setup`"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("redtrack-{}", env.id()));
    let file = env
        .config()
        .into_builder()
        .broker(redtrack::BrokerKind::File(dir.clone()))
        .build()
        .expect("config");
    let err = Loader::new(file)
        .await
        .expect("loader")
        .load::<TestEvent>()
        .await
        .expect_err("no stream");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.to_string()
            .contains("the stream does not exist: run `setup`"),
        "{err}"
    );
}

/// `setup` checks the stage: a bucket that is not there is named, with what to do.
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
    let (code, out, err) = cli(config, &["setup", "--table", "test_events"]).await;
    assert_ne!(code, EXIT_OK, "{out}");
    assert!(
        err.contains(&format!("the bucket `{bucket}` does not exist: create it")),
        "{err}"
    );
    // (A load's PutObject would say the same; s3s-fs, unlike S3, creates the bucket instead.)
}
