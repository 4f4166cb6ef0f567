//! IAM sign-in: without a password in `REDTRACK_WAREHOUSE_URL`, the loader asks the Redshift API
//! for temporary credentials (`GetClusterCredentials` for a provisioned cluster, Redshift
//! Serverless' `GetCredentials`) and signs in to the stand-in with them. The API is the
//! stand-in's, in front of moto's server (`AWS_ENDPOINT_URL_REDSHIFT`, from `scripts/services`);
//! the stand-in accepts exactly the passwords the API issued, for their user and database, until
//! they expire.

use crate::common::{Backend, TestEnv};
use crate::seed::TestEvent;

use redtrack::{Client, Loader, RedshiftIam};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(scripts/services up)\"` first")
    })
}

/// The test's warehouse URL with `user` and no password.
fn url_without_password(env: &TestEnv, user: &str) -> String {
    let url = env.warehouse_url();
    let (_, rest) = url.split_once('@').expect("a URL with a user");
    format!("postgres://{user}@{rest}")
}

/// Writes `n` events and loads them with `config`: what the load reports.
async fn write_and_load(env: &TestEnv, config: redtrack::Config, n: i32) -> u64 {
    let client = Client::new(env.config()).await.expect("client");
    client.create_stream::<TestEvent>(1).await.expect("stream");
    for i in 0..n {
        drop(
            client
                .enqueue(&TestEvent {
                    client_ip: "10.0.0.1".into(),
                    timestamp: i,
                    message: None,
                })
                .await
                .expect("enqueue"),
        );
    }
    client.close().await.expect("close");
    let loader = Loader::new(config).await.expect("loader");
    loader
        .setup::<TestEvent>()
        .await
        .expect("setup with IAM credentials");
    let report = loader
        .load::<TestEvent>()
        .await
        .expect("load with IAM credentials");
    let again = loader.load::<TestEvent>().await.expect("a second load");
    assert_eq!(again.records, 0, "loaded twice");
    // The credentials are nowhere in what a user could print.
    let shown = format!("{loader:?}");
    assert!(
        !shown.contains("DbPassword") && !shown.contains("password: Some"),
        "{shown}"
    );
    report.records
}

/// A provisioned cluster: GetClusterCredentials (through moto) for an existing user, without
/// AutoCreate; a made-up password and a user that does not exist are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_loads_with_get_cluster_credentials() {
    let env = TestEnv::on(Backend::RedshiftProvisioned, "iam_c").await;
    let cluster = format!("c-{}", env.id().replace('_', "-"));
    let sdk = env.sdk_config().await;
    let redshift = aws_sdk_redshift::Client::from_conf(
        aws_sdk_redshift::config::Builder::from(&sdk)
            .endpoint_url(var("AWS_ENDPOINT_URL_REDSHIFT"))
            .build(),
    );
    redshift
        .create_cluster()
        .cluster_identifier(&cluster)
        .node_type("ra3.xlplus")
        .master_username("admin")
        .master_user_password("Passw0rd-not-used")
        .send()
        .await
        .expect("CreateCluster on the emulated AWS endpoint");
    let user = format!("u_{}", &env.id()[2..]);
    let warehouse = env.warehouse().await;
    warehouse
        .batch_execute(&format!("CREATE USER {user} PASSWORD 'Unused1pw'"))
        .await
        .expect("CREATE USER");

    let config = env
        .config()
        .into_builder()
        .warehouse_url(url_without_password(&env, &user))
        .redshift_iam(RedshiftIam::Cluster {
            cluster_identifier: cluster.clone(),
            auto_create: false,
        })
        .build()
        .expect("config");
    assert_eq!(write_and_load(&env, config.clone(), 25).await, 25);

    // Only the issued password signs in as IAM:<user>.
    let base = url_without_password(&env, &format!("IAM%3A{user}"));
    let wrong = format!(
        "{}?password=not-what-was-issued",
        base.split('?').next().unwrap_or(&base)
    );
    let refused = tokio_postgres::connect(&wrong, tokio_postgres::NoTls).await;
    let e = refused.err().expect("a made-up password is refused");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("28P01"),
        "{e}"
    );

    // Credentials for a user that does not exist, without AutoCreate: the login fails.
    let missing = config
        .clone()
        .into_builder()
        .warehouse_url(url_without_password(&env, "nobody_here"))
        .build()
        .expect("config");
    let e = Loader::new(missing)
        .await
        .expect("loader")
        .setup::<TestEvent>()
        .await
        .expect_err("no such user");
    assert!(format!("{e:?}").contains("does not exist"), "{e:?}");

    // A cluster the API does not know: GetClusterCredentials fails, saying which action.
    let unknown = config
        .into_builder()
        .redshift_iam(RedshiftIam::Cluster {
            cluster_identifier: "no-such-cluster".into(),
            auto_create: false,
        })
        .build()
        .expect("config");
    let e = Loader::new(unknown)
        .await
        .expect("loader")
        .setup::<TestEvent>()
        .await
        .expect_err("an unknown cluster");
    assert!(
        e.to_string().contains("redshift:GetClusterCredentials"),
        "{e}"
    );
    assert_short_service_error(&e.to_string(), "ClusterNotFound");
}

/// An AWS API's refusal is said by its code and message, not by the SDK error's Debug form
/// (the raw HTTP response, its headers and body).
fn assert_short_service_error(shown: &str, code: &str) {
    assert!(shown.contains(code), "the service's code: {shown}");
    assert!(
        !shown.contains("raw: Response") && !shown.contains("ServiceError {") && shown.len() < 400,
        "a short message, not the SDK's Debug: {shown}"
    );
}

/// Redshift Serverless: GetCredentials for the workgroup, the session as the caller's IAM
/// identity (created at its first login).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_loads_with_get_credentials() {
    let env = TestEnv::on(Backend::RedshiftServerless, "iam_s").await;
    let config = env
        .config()
        .into_builder()
        .warehouse_url(url_without_password(&env, "ignored"))
        .redshift_iam(RedshiftIam::Serverless {
            workgroup: var("REDTRACK_REDSHIFT_WORKGROUP"),
        })
        .build()
        .expect("config");
    assert_eq!(write_and_load(&env, config.clone(), 30).await, 30);

    let other = config
        .into_builder()
        .redshift_iam(RedshiftIam::Serverless {
            workgroup: "no-such-workgroup".into(),
        })
        .build()
        .expect("config");
    let e = Loader::new(other)
        .await
        .expect("loader")
        .setup::<TestEvent>()
        .await
        .expect_err("an unknown workgroup");
    assert!(
        e.to_string().contains("redshift-serverless:GetCredentials"),
        "{e}"
    );
    assert_short_service_error(&e.to_string(), "ResourceNotFoundException");
}
