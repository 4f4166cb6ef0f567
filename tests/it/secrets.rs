//! No password, secret key or session token shows anywhere: in `Debug` of any configuration or
//! connection type, in any error's `Display` or `Debug`, in any log line at the most verbose
//! level (tokio-postgres logs every statement at DEBUG), in the command line's output. Every
//! form a connection string takes, and AWS credentials with a session token.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::TestEnv;

/// The secrets these tests plant; none may ever be printed.
const PASSWORD: &str = "Pw-s3cret-9f2e";
const SECRET_KEY: &str = "Sk-s3cret/wJalrXUtnFEMIK7MDENGbPxRfiCY";
const SESSION_TOKEN: &str = "St-s3cret-IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ";

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, SECRET_KEY, SESSION_TOKEN] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret `{secret}`:\n{text}"
        );
    }
}

/// Everything logged on this thread while it lives, at TRACE, `log` records (tokio-postgres')
/// included.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn start() -> Capture {
        static LOG_BRIDGE: OnceLock<()> = OnceLock::new();
        LOG_BRIDGE.get_or_init(|| {
            // tokio-postgres logs through `log`; forward its records to tracing.
            let _ = tracing_log::LogTracer::init();
        });
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        Capture {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

/// A statement can carry a secret by placeholder: the server gets the secret (the query
/// returns it), while the statement's text that tokio-postgres logs (simple and extended
/// protocol alike) holds only the placeholder. This is how COPY carries AWS credentials.
#[tokio::test]
async fn a_masked_secret_reaches_the_server_but_no_log_line() {
    let env = TestEnv::new().await;
    let capture = Capture::start();
    let literal = SECRET_KEY.replace('\'', "''");
    let guard = redtrack::__test::mask_secret(&literal);
    let sql = format!("SELECT CAST('{}' AS VARCHAR(100))", guard.placeholder());
    let connector = redtrack::warehouse::Connector::new(&env.warehouse_url()).expect("the URL");
    let client = connector.connect().await.expect("a connection");

    let rows = client.simple_query(&sql).await.expect("simple query");
    let seen = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(
        seen.as_deref(),
        Some(SECRET_KEY),
        "the server got the secret"
    );
    let row = client.query_one(&sql, &[]).await.expect("extended query");
    assert_eq!(row.get::<_, String>(0), SECRET_KEY);
    client.batch_execute(&sql).await.expect("batch");

    let placeholder = guard.placeholder().to_owned();
    drop(guard);
    let logs = capture.text();
    assert!(
        logs.contains(&format!("executing simple query: {sql}"))
            && logs.contains(&format!("executing statement batch: {sql}")),
        "tokio-postgres logs the statements at DEBUG (the test must see them):\n{logs}"
    );
    assert!(logs.contains(&placeholder));
    assert_no_secret("the log at TRACE", &logs);
}

/// Every form of connection string, valid or not: `Debug` of the configuration, the builder,
/// the connector, the warehouse and the loader, and the `Display` and `Debug` of every error on
/// the way (parsing, connecting with a wrong password), keep the password out.
#[tokio::test]
async fn no_form_of_a_password_shows_in_debug_or_errors() {
    let env = TestEnv::new().await;
    let port = env
        .var("REDTRACK_WAREHOUSE_URL")
        .and_then(|u| {
            u.rsplit_once(':')
                .map(|(_, p)| p.split('/').next().unwrap_or("").to_owned())
        })
        .expect("the warehouse's port");
    let p = PASSWORD;
    let forms = [
        format!("postgres://redtrack:{p}@127.0.0.1:{port}/{}", env.id()),
        format!(
            "postgresql://redtrack:{p}@127.0.0.1:{port}/{}?sslmode=disable",
            env.id()
        ),
        format!("redtrack:{p}@127.0.0.1"),
        format!("redtrack:{p}@127.0.0.1:{port}/db?sslmode=disable"),
        format!(
            "postgres://127.0.0.1:{port}/{}?user=redtrack&password={p}",
            env.id()
        ),
        format!(
            "host=127.0.0.1 port={port} user=redtrack password={p} dbname={}",
            env.id()
        ),
        format!("host=127.0.0.1 port={port} user=redtrack password='{p} x' dbname=d"),
        format!("mysql://root:{p}@127.0.0.1/db"),
        format!("postgres://redtrack:{p}@127.0.0.1:notaport/db"),
        format!("postgres://:{p}@127.0.0.1/db"),
        format!("user=redtrack password={p} bogus_option=1"),
        format!("redtrack:{p}@127.0.0.1/db?sslmode=disable&x=1"),
        // A password with an `@` not percent-encoded: the parser would take what follows it
        // for the host.
        format!("postgres://redtrack:x@{p}@127.0.0.1:{port}/db"),
    ];
    for url in &forms {
        let vars = |k: &str| match k {
            "REDTRACK_WAREHOUSE_URL" => Some(url.clone()),
            "REDTRACK_BROKER" => Some("file:/tmp/redtrack-secrets-broker".into()),
            "REDTRACK_STAGE" => Some("file:/tmp/redtrack-secrets-stage".into()),
            "REDTRACK_WAREHOUSE_DIALECT" => Some("postgres".into()),
            other => env.var(other),
        };
        let config = match redtrack::Config::from_lookup(vars) {
            Ok(config) => config,
            Err(e) => {
                assert_no_secret(url, &format!("{e}\n{e:?}"));
                continue;
            }
        };
        assert_no_secret(
            url,
            &format!("{config:?}\n{:?}", config.clone().into_builder()),
        );
        match redtrack::warehouse::Connector::new(url) {
            Ok(c) => {
                assert_no_secret(url, &format!("{c:?} {}", c.target()));
                if let Err(e) = c.connect().await {
                    assert_no_secret(url, &format!("{e}\n{e:?}"));
                }
            }
            Err(e) => assert_no_secret(url, &format!("{e}\n{e:?}")),
        }
        match redtrack::Loader::new(config).await {
            Ok(loader) => {
                assert_no_secret(url, &format!("{loader:?}"));
                if let Err(e) = loader.checkpoints::<crate::seed::TestEvent>().await {
                    assert_no_secret(url, &format!("{e}\n{e:?}"));
                }
            }
            Err(e) => assert_no_secret(url, &format!("{e}\n{e:?}")),
        }
    }
}

/// AWS credentials with a session token, given to the client and the loader (Redshift COPY
/// without an IAM role passes them on): `Debug` of the configuration, the client and the
/// loader shows neither the secret key nor the token.
#[tokio::test]
async fn aws_secrets_stay_out_of_debug() {
    let env = TestEnv::new().await;
    let creds = aws_sdk_kinesis::config::Credentials::new(
        "AKIDEXAMPLE",
        SECRET_KEY,
        Some(SESSION_TOKEN.to_owned()),
        None,
        "test",
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await;
    let config = env
        .config()
        .into_builder()
        .dialect(redtrack::Dialect::Redshift)
        .with_sdk_config(sdk)
        .build()
        .expect("config");
    let client = redtrack::Client::new(config.clone()).await.expect("client");
    let loader = redtrack::Loader::new(config.clone()).await.expect("loader");
    assert_no_secret(
        "Debug",
        &format!(
            "{config:?}\n{client:?}\n{loader:?}\n{:?}",
            loader.warehouse()
        ),
    );
    client.close().await.expect("close");
}

/// Redshift's COPY without `REDTRACK_COPY_IAM_ROLE` carries the loader's AWS credentials, a
/// session token included: the stand-in gets them (it reads the stage with them, and the load
/// succeeds), while every log line at TRACE, tokio-postgres' statements included, shows only
/// placeholders.
#[tokio::test]
async fn copy_credentials_reach_redshift_but_no_log_line() {
    let env = TestEnv::on(common::Backend::RedshiftProvisioned, "copy_credentials").await;
    let secret = env.var("AWS_SECRET_ACCESS_KEY").expect("the secret key");
    let creds = aws_sdk_kinesis::config::Credentials::new(
        env.var("AWS_ACCESS_KEY_ID").expect("the access key"),
        secret.clone(),
        Some(SESSION_TOKEN.to_owned()),
        None,
        "test",
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(creds)
        .load()
        .await;
    let config = env
        .config()
        .into_builder()
        .with_sdk_config(sdk)
        .build()
        .expect("config");
    let capture = Capture::start();
    common::write_test_events(config.clone(), 0, 3).await;
    let loader = redtrack::Loader::new(config).await.expect("loader");
    loader
        .setup::<crate::seed::TestEvent>()
        .await
        .expect("setup");
    let report = loader
        .load::<crate::seed::TestEvent>()
        .await
        .expect("the COPY read the stage with the credentials");
    assert_eq!(report.records, 3);
    let logs = capture.text();
    assert!(
        logs.contains("executing statement batch: COPY test_events FROM")
            && logs.contains("SECRET_ACCESS_KEY 'masked-")
            && logs.contains("SESSION_TOKEN 'masked-"),
        "the COPY is logged at DEBUG, with placeholders:\n{logs}"
    );
    assert_no_secret("the log at TRACE", &logs);
    assert!(
        !logs.contains(&secret),
        "the secret key is in the log:\n{logs}"
    );
}

/// The command line as an application runs it, at `RUST_LOG=trace`, with a warehouse password,
/// an AWS secret key and a session token: every command's output and log, in both dialects,
/// and its errors for every form of a wrong or broken URL, show none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_at_trace_shows_no_secret() {
    let env = TestEnv::new().await;
    // The same data behind the Redshift stand-in, for the redshift dialect's commands.
    let rs_env = TestEnv::on(common::Backend::RedshiftProvisioned, "cli_trace").await;
    for e in [&env, &rs_env] {
        e.loader::<crate::seed::TestEvent>().await;
        common::write_test_events(e.config(), 1, 1).await;
    }
    // A role of the test's own with a password worth hiding, a member of the warehouse user.
    let role = format!("{}_u", env.id());
    let pg = env.pg().await;
    pg.batch_execute(&format!(
        "SET password_encryption = 'md5'; CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE \
         redtrack"
    ))
    .await
    .expect("a role with a password");
    let aws_secret = env.var("AWS_SECRET_ACCESS_KEY").expect("the secret key");
    let with_user =
        |url: String| url.replacen("redtrack:redtrack@", &format!("{role}:{PASSWORD}@"), 1);
    let pg_url = with_user(env.warehouse_url());
    let rs_url = with_user(rs_env.warehouse_url());
    assert!(pg_url.contains(PASSWORD) && rs_url.contains(PASSWORD));
    let (host_port, db) = pg_url
        .rsplit_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .expect("host and database");
    let (host, port) = host_port.split_once(':').expect("host:port");

    // (environment, URL, command, dialect, whether it must succeed)
    let mut runs: Vec<(&TestEnv, String, Vec<&str>, &str, bool)> = Vec::new();
    for (e, dialect, url) in [(&env, "postgres", &pg_url), (&rs_env, "redshift", &rs_url)] {
        for args in [
            vec!["setup", "--table", "test_events"],
            vec!["load", "--table", "test_events"],
            vec!["status", "--table", "test_events"],
            vec!["errors", "--table", "test_events"],
        ] {
            runs.push((e, url.clone(), args, dialect, true));
        }
    }
    // Other forms of the URL, right and wrong.
    for (url, succeeds) in [
        (
            pg_url.replace(PASSWORD, &format!("{PASSWORD}-wrong")),
            false,
        ),
        (pg_url.replacen("postgres://", "", 1), false),
        (
            format!("host={host} port={port} user={role} password={PASSWORD} dbname={db}"),
            true,
        ),
        (
            format!("host={host} port={port} user={role} password='{PASSWORD} x' dbname={db}"),
            false,
        ),
        (
            format!("postgres://{host}:{port}/{db}?user={role}&password={PASSWORD}"),
            true,
        ),
        (format!("mysql://{role}:{PASSWORD}@{host}/{db}"), false),
        (
            format!("postgres://{role}:{PASSWORD}@{host}:port/{db}"),
            false,
        ),
        (format!("user={role} password={PASSWORD} bogus=1"), false),
    ] {
        runs.push((
            &env,
            url,
            vec!["status", "--table", "test_events"],
            "postgres",
            succeeds,
        ));
    }
    let mut statements_seen = false;
    for (e, url, args, dialect, succeeds) in &runs {
        let mut vars: Vec<(String, String)> = e
            .vars()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        vars.retain(|(k, _)| k != "REDTRACK_WAREHOUSE_URL" && k != "REDTRACK_WAREHOUSE_DIALECT");
        vars.extend([
            ("REDTRACK_WAREHOUSE_URL".to_owned(), url.clone()),
            (
                "REDTRACK_WAREHOUSE_DIALECT".to_owned(),
                (*dialect).to_owned(),
            ),
            ("AWS_SESSION_TOKEN".to_owned(), SESSION_TOKEN.to_owned()),
            ("RUST_LOG".to_owned(), "trace".to_owned()),
        ]);
        let r = common::run_cli(common::cli_command(vars, args));
        let all = format!("{}\n{}", r.out, r.err);
        assert_eq!(
            r.code == Some(0),
            *succeeds,
            "{dialect} {args:?} with {}:\n{all}",
            url.replace(PASSWORD, "<the password>")
        );
        assert_no_secret(&format!("{dialect} {args:?}"), &all);
        assert!(
            !all.contains(&aws_secret),
            "{dialect} {args:?} shows the AWS secret key:\n{all}"
        );
        statements_seen |= r.err.contains("executing statement");
    }
    assert!(
        statements_seen,
        "tokio-postgres' statements were logged at TRACE"
    );
    pg.batch_execute(&format!("DROP ROLE {role}"))
        .await
        .expect("drop the role");
}
