//! Configuration mistakes say what to set: everything missing or wrong in one short message,
//! each line naming its variable, exit code 2, before any call to a service. Switching a table's
//! broker with the old checkpoints says that they belong to the other broker and what to do.

use crate::{common, seed};

use std::net::TcpListener;

use redtrack::{BrokerKind, Client, Config, Error, Loader};
use seed::TestEvent;

#[test]
fn every_problem_of_the_environment_at_once() {
    let vars = |k: &str| {
        match k {
            "REDTRACK_BROKER" => Some("kafka"),
            "REDTRACK_STAGE" => Some("gs://bucket"),
            "REDTRACK_WAREHOUSE_URL" => Some("mysql://root:pw@db/x"),
            "REDTRACK_WAREHOUSE_DIALECT" => Some("oracle"),
            _ => None,
        }
        .map(str::to_owned)
    };
    let err = Config::from_lookup(vars).expect_err("six problems");
    let Error::Config(message) = &err else {
        panic!("expected Error::Config, got {err:?}")
    };
    for var in [
        "REDTRACK_CLUSTER is not set",
        "REDTRACK_DATABASE is not set",
        "REDTRACK_BROKER `kafka`",
        "REDTRACK_STAGE `gs://bucket`",
        "REDTRACK_WAREHOUSE_URL `mysql://root:***@db/x` is a `mysql` URL",
        "REDTRACK_WAREHOUSE_DIALECT `oracle`",
    ] {
        assert!(message.contains(var), "`{var}` missing from:\n{message}");
    }
    assert!(
        message.starts_with("6 settings are missing or wrong:\n"),
        "{message}"
    );
    assert_eq!(
        message.lines().count(),
        7,
        "one line per problem:\n{message}"
    );
}

/// The command line with the usual mistakes of a first run: no cluster, no stage, a `mysql://`
/// URL, no AWS region, no credentials. One message names them all, the exit code is 2, and
/// neither Kinesis nor S3 was called (their endpoints point at a socket nobody may connect to).
#[test]
fn the_command_line_names_every_missing_setting_before_any_call() {
    let trap = TcpListener::bind("127.0.0.1:0").expect("a socket");
    trap.set_nonblocking(true).expect("nonblocking");
    let endpoint = format!("http://{}", trap.local_addr().expect("its address"));
    let vars = [
        ("REDTRACK_DATABASE", "analytics"),
        ("REDTRACK_WAREHOUSE_URL", "mysql://root:pw@127.0.0.1/x"),
        ("AWS_ENDPOINT_URL_KINESIS", &endpoint),
        ("AWS_ENDPOINT_URL_S3", &endpoint),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/redtrack-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/redtrack-test/credentials",
        ),
    ];
    for args in [
        &["load", "--table", "test_events"][..],
        &["status"],
        &["setup"],
    ] {
        let r = common::run_cli(common::cli_command(vars, args));
        assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
        let message = r
            .err
            .split_once("redtrack: error: configuration: ")
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("{args:?}: no configuration error: {r:?}"));
        for said in [
            "5 settings are missing or wrong",
            "REDTRACK_CLUSTER is not set",
            "REDTRACK_STAGE is not set",
            "REDTRACK_WAREHOUSE_URL `mysql://root:***@127.0.0.1/x` is a `mysql` URL",
            "AWS_REGION is not set",
            "no AWS credentials were found",
        ] {
            assert!(
                message.contains(said),
                "{args:?}: `{said}` missing from:\n{message}"
            );
        }
        assert!(
            r.err.len() < 1500,
            "{args:?}: a short message, not the SDK's errors:\n{}",
            r.err
        );
    }
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a service was called before the configuration was checked: {other:?}"),
    }
}

/// The library says the same: `Loader::new` and `Client::new` refuse a configuration without AWS
/// settings before any call, naming the variables.
#[tokio::test]
async fn the_loader_and_the_client_check_aws_settings_before_calling() {
    let env = common::TestEnv::new().await;
    // An SDK configuration without a region or credentials.
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let config = env
        .config()
        .into_builder()
        .with_sdk_config(sdk)
        .build()
        .expect("config");
    for err in [
        Loader::new(config.clone())
            .await
            .expect_err("no AWS settings"),
        Client::new(config).await.expect_err("no AWS settings"),
    ] {
        let message = err.to_string();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(message.contains("AWS_REGION is not set"), "{message}");
        assert!(
            message.contains("no AWS credentials were found"),
            "{message}"
        );
    }
}

async fn write_and_load(config: &Config, n: i32) -> u64 {
    common::write_test_events(config.clone(), 0, n).await;
    let loader = Loader::new(config.clone()).await.expect("loader");
    loader.setup::<TestEvent>().await.expect("setup");
    loader
        .load::<TestEvent>()
        .await
        .map(|r| r.records)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A table loaded from Kinesis, then switched to the file broker (same names, so the same
/// stream and checkpoints), and the other way round: the load refuses, saying whose the
/// checkpoints are and what to do; doing it (deleting the old checkpoints) loads the events.
#[tokio::test]
async fn switching_brokers_with_the_old_checkpoints_says_what_to_do() {
    let env = common::TestEnv::new().await;
    let kinesis = env.config();
    let dir = std::env::temp_dir().join(format!("redtrack-switch-{}", env.id()));
    let file = kinesis
        .clone()
        .into_builder()
        .broker(BrokerKind::File(dir.clone()))
        .build()
        .expect("config");
    let stream = env.stream_name("test_events");
    assert_eq!(write_and_load(&kinesis, 3).await, 3);

    common::write_test_events(file.clone(), 9, 1).await;
    let to_file = Loader::new(file.clone()).await.expect("loader");
    let err = to_file
        .load::<TestEvent>()
        .await
        .expect_err("Kinesis' checkpoints");
    let message = err.to_string();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    for said in [
        "written by a loader reading Kinesis",
        "the checkpoints belong to the other broker",
        "Set REDTRACK_BROKER=kinesis",
        &format!("DELETE FROM kinesis_loads WHERE stream_name = '{stream}'"),
    ] {
        assert!(message.contains(said), "`{said}` missing from: {message}");
    }
    let err = to_file
        .status::<TestEvent>()
        .await
        .expect_err("status says it too");
    assert!(
        err.to_string().contains("belong to the other broker"),
        "{err}"
    );

    // Doing what it says.
    env.pg()
        .await
        .execute(
            "DELETE FROM kinesis_loads WHERE stream_name = $1",
            &[&stream],
        )
        .await
        .expect("delete");
    assert_eq!(to_file.load::<TestEvent>().await.expect("load").records, 1);

    // And back: the file broker's checkpoints mean nothing to Kinesis.
    let err = Loader::new(kinesis)
        .await
        .expect("loader")
        .load::<TestEvent>()
        .await
        .expect_err("the file broker's checkpoints");
    let message = err.to_string();
    assert!(
        message.contains("written by a loader reading the file broker")
            && message.contains("REDTRACK_BROKER=file:"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A file broker directory replaced after a load (its checkpoints now lie beyond the end of the
/// shard files) would never load its new records: the load says so.
#[tokio::test]
async fn a_replaced_file_broker_directory_is_found() {
    let env = common::TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("redtrack-replaced-{}", env.id()));
    let file = env
        .config()
        .into_builder()
        .broker(BrokerKind::File(dir.clone()))
        .build()
        .expect("config");
    assert_eq!(write_and_load(&file, 5).await, 5);
    std::fs::remove_dir_all(&dir).expect("remove the directory");
    common::write_test_events(file.clone(), 1, 1).await;
    let err = Loader::new(file)
        .await
        .expect("loader")
        .load::<TestEvent>()
        .await
        .expect_err("beyond the end");
    assert!(
        err.to_string().contains("lies beyond the end of its file"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
