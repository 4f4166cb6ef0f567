//! The local services and the shared test helper work: each test's Kinesis streams, S3 prefix
//! and PostgreSQL database are its own, reached through the variables of `scripts/services up`.

use crate::common;

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use aws_sdk_s3::primitives::ByteStream;
use common::TestEnv;

/// Waits (bounded) until `stream` is ACTIVE.
async fn wait_active(kinesis: &aws_sdk_kinesis::Client, stream: &str) {
    for _ in 0..100 {
        let out = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .expect("DescribeStreamSummary");
        let summary = out.stream_description_summary().expect("a summary");
        if summary.stream_status() == &StreamStatus::Active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {stream} did not become ACTIVE within 5 s");
}

#[tokio::test]
async fn kinesis_stream_round_trips_a_record() {
    let env = TestEnv::new().await;
    let kinesis = env.kinesis().await;
    let stream = env.stream_name("round_trip");

    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(2)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&kinesis, &stream).await;
    let put = kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key("k")
        .data(Blob::new(&b"{\"a\":1}"[..]))
        .send()
        .await
        .expect("PutRecord");

    let iterator = kinesis
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id(put.shard_id())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("an iterator");
    let records = kinesis
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("GetRecords")
        .records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data().as_ref(), b"{\"a\":1}");
    assert_eq!(records[0].sequence_number(), put.sequence_number());
}

/// The runtime loads its SDK configuration with `aws_config::load_defaults`, so the endpoint
/// variables themselves must reach the emulators.
#[tokio::test]
async fn sdk_defaults_reach_the_emulators_through_the_endpoint_variables() {
    let env = TestEnv::new().await;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;

    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let stream = env.stream_name("from_env");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .expect("CreateStream through AWS_ENDPOINT_URL_KINESIS");
    let names = kinesis
        .list_streams()
        .exclusive_start_stream_name(env.stream_name("from_dz"))
        .send()
        .await;
    assert!(names.is_ok(), "ListStreams: {names:?}");

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.head_bucket()
        .bucket(env.bucket())
        .send()
        .await
        .expect("HeadBucket through AWS_ENDPOINT_URL_S3");
}

#[tokio::test]
async fn s3_round_trips_an_object_under_the_test_prefix() {
    let env = TestEnv::new().await;
    let s3 = env.s3().await;
    let key = format!("{}/hello.json.gz", env.prefix());
    let body = b"not really gzip".to_vec();

    s3.put_object()
        .bucket(env.bucket())
        .key(&key)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("PutObject");
    let got = s3
        .get_object()
        .bucket(env.bucket())
        .key(&key)
        .send()
        .await
        .expect("GetObject")
        .body
        .collect()
        .await
        .expect("the object's body")
        .into_bytes();
    assert_eq!(got.as_ref(), body.as_slice());

    let listed = s3
        .list_objects_v2()
        .bucket(env.bucket())
        .prefix(format!("{}/", env.prefix()))
        .send()
        .await
        .expect("ListObjectsV2");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key.as_str()]);
}

#[tokio::test]
async fn s3_checks_signatures() {
    let env = TestEnv::new().await;
    let sdk = env.sdk_config().await;
    let wrong = aws_sdk_s3::config::Builder::from(&sdk)
        .endpoint_url(env.var("AWS_ENDPOINT_URL_S3").expect("the S3 endpoint"))
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            env.var("AWS_ACCESS_KEY_ID").expect("the access key"),
            "not-the-secret",
            None,
            None,
            "wrong",
        ))
        .build();
    let denied = aws_sdk_s3::Client::from_conf(wrong)
        .head_bucket()
        .bucket(env.bucket())
        .send()
        .await;
    let status = match denied {
        Ok(_) => panic!("a wrong secret was accepted"),
        Err(e) => e.raw_response().map(|r| r.status().as_u16()),
    };
    assert_eq!(
        status,
        Some(403),
        "a wrong secret must be refused, not fail otherwise"
    );
}

#[tokio::test]
async fn postgres_database_is_the_tests_own() {
    let env = TestEnv::new().await;
    let pg = env.pg().await;
    let row = pg
        .query_one("SELECT current_database(), current_user", &[])
        .await
        .expect("a query");
    let database: String = row.get(0);
    assert_eq!(database, env.id());
    assert_eq!(env.config().database(), env.id());

    pg.batch_execute("CREATE TABLE events (id integer NOT NULL); INSERT INTO events VALUES (1)")
        .await
        .expect("CREATE TABLE in the test's own database");
}

#[tokio::test]
async fn two_environments_are_isolated() {
    let a = TestEnv::named("isolated").await;
    let b = TestEnv::named("isolated").await;

    assert_ne!(a.id(), b.id());
    assert_ne!(a.stream_name("events"), b.stream_name("events"));
    assert_ne!(a.prefix(), b.prefix());
    assert_eq!(a.bucket(), b.bucket());
    assert_ne!(a.warehouse_url(), b.warehouse_url());

    a.pg()
        .await
        .batch_execute("CREATE TABLE only_in_a (id integer)")
        .await
        .expect("CREATE TABLE");
    let seen: i64 = b
        .pg()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
            &[],
        )
        .await
        .expect("a query")
        .get(0);
    assert_eq!(seen, 0);
}

crate::each_backend! {
    /// Each backend's environment reaches its own warehouse: PostgreSQL, or the stand-in in the
    /// backend's mode with the backend's isolation level, the stored rows behind it in a
    /// PostgreSQL database of the same name.
    async fn each_backend_has_its_own_warehouse(env: TestEnv) {
        let warehouse = env.warehouse().await;
        let version: String = warehouse
            .query_one("SELECT CAST(version() AS VARCHAR(512))", &[])
            .await
            .expect("version()")
            .get(0);
        let config = env.config();
        assert_eq!(version.contains("Redshift"), env.backend().is_redshift(), "{version}");
        assert_eq!(
            config.dialect(),
            if env.backend().is_redshift() {
                redtrack::Dialect::Redshift
            } else {
                redtrack::Dialect::Postgres
            }
        );
        if env.backend().is_redshift() {
            let slices = warehouse.query_one("SELECT COUNT(*) FROM stv_slices", &[]).await;
            assert_eq!(
                slices.is_ok(),
                env.backend() == crate::common::Backend::RedshiftProvisioned,
                "stv_slices exists only on a provisioned cluster: {slices:?}"
            );
        }
        let isolation: String = env
            .pg()
            .await
            .query_one("SHOW default_transaction_isolation", &[])
            .await
            .expect("isolation")
            .get(0);
        let want = match env.backend().isolation() {
            Some("SERIALIZABLE") => "serializable",
            Some(_) => "repeatable read", // the stand-in's SNAPSHOT
            None => "read committed",
        };
        assert_eq!(isolation, want);
        warehouse
            .batch_execute("CREATE TABLE kept (id INTEGER NOT NULL); INSERT INTO kept VALUES (7)")
            .await
            .expect("CREATE TABLE and INSERT through the warehouse");
        let n: i32 = env
            .pg()
            .await
            .query_one("SELECT id FROM kept", &[])
            .await
            .expect("the row, stored")
            .get(0);
        assert_eq!(n, 7);
    }
}

#[tokio::test]
async fn config_points_at_the_tests_own_resources() {
    let env = TestEnv::new().await;
    let config = env.config();
    assert_eq!(
        config.stream_name("events"),
        format!("{}.{}.events", config.cluster(), env.id())
    );
    assert_eq!(config.broker(), &redtrack::BrokerKind::Kinesis);
    assert_eq!(config.dialect(), redtrack::Dialect::Postgres);
    assert_eq!(
        config.stage(),
        Some(&redtrack::StageLocation::S3 {
            bucket: env.bucket(),
            prefix: env.prefix(),
        })
    );
    assert!(env.prefix().ends_with(env.id()));
    // The same settings through the lookup a binary under test would see.
    let again = redtrack::Config::from_lookup(|k| env.var(k)).expect("a config");
    assert_eq!(again.stream_name("events"), config.stream_name("events"));
}

#[tokio::test]
async fn passing_tests_drop_their_database() {
    let env = TestEnv::new().await;
    let id = env.id().to_owned();
    let probe = TestEnv::named("probe").await;
    drop(env);
    let left: i64 = probe
        .pg()
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&id],
        )
        .await
        .expect("a query")
        .get(0);
    assert_eq!(left, 0, "the database {id} is still there");
}

#[test]
#[should_panic(expected = "run `eval \"$(scripts/services up)\"` first")]
fn missing_variables_fail_loudly_with_the_command_to_run() {
    common::Services::from_lookup(|_| None);
}

#[test]
fn database_urls_keep_everything_but_the_database() {
    use common::with_database;
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5432/redtrack", "t_x"),
        "postgres://u:p@127.0.0.1:5432/t_x"
    );
    assert_eq!(
        with_database("postgres://u@h:1/db?sslmode=disable", "t_x"),
        "postgres://u@h:1/t_x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "t_x"), "postgres://h:1/t_x");
}

#[test]
fn ids_are_unique_identifiers_that_carry_their_age() {
    let a = common::unique_id("Some::Test-Name with a very very very long tail");
    let b = common::unique_id("Some::Test-Name with a very very very long tail");
    assert_ne!(a, b);
    assert!(a.len() <= 63, "{a}");
    assert!(a
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    assert!(common::created_secs(&a).is_some());
    assert_eq!(common::created_secs("postgres"), None);
}

/// The local PostgreSQL checks passwords on TCP, as Redshift and a managed PostgreSQL do: a
/// wrong password, or none, is refused with PostgreSQL's own error, and the right one logs in.
#[tokio::test]
async fn postgres_refuses_a_wrong_password() {
    use std::str::FromStr;
    let env = TestEnv::new().await;
    let url = env.warehouse_url();
    let right = tokio_postgres::Config::from_str(&url).expect("the test's URL parses");
    let mut wrong = right.clone();
    wrong.password("not-the-password");
    let mut none = right.clone();
    none.password(Vec::<u8>::new());
    for (what, config) in [("a wrong password", wrong), ("an empty password", none)] {
        match config.connect(tokio_postgres::NoTls).await {
            Ok(_) => panic!("PostgreSQL accepted {what}"),
            Err(e) => assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
                "{what} must be refused as a wrong password: {e:?}"
            ),
        }
    }
    let (client, connection) = right
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the right password logs in");
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.expect("a query");
}

/// `scripts/services` finds a service whose process died (its PID file names a process that is
/// gone) without shell noise: only its own `services: ...` lines reach stderr. Run on a copy of
/// the scripts, so the services of this checkout are not touched.
#[test]
fn services_script_meets_dead_processes_without_shell_noise() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("redtrack-services-{}", rand::random::<u64>()));
    std::fs::create_dir_all(tmp.join("scripts/lib")).expect("a temporary checkout");
    for file in ["scripts/services", "scripts/lib/common.sh"] {
        std::fs::copy(root.join(file), tmp.join(file)).expect("copy the scripts");
    }
    // A PID that is gone: a child that exited and was reaped.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("run `true`");
    let dead = child.id();
    child.wait().expect("`true` exits");
    std::fs::create_dir_all(tmp.join(".services")).expect(".services");
    for name in ["kinesis", "s3"] {
        std::fs::write(
            tmp.join(format!(".services/{name}.pid")),
            format!("{dead}\n"),
        )
        .expect("a PID file");
    }
    let out = std::process::Command::new(tmp.join("scripts/services"))
        .arg("down")
        .output()
        .expect("run scripts/services down");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(out.status.success(), "{stderr}");
    for line in stderr.lines() {
        assert!(line.starts_with("services: "), "shell noise: {stderr}");
    }
}
