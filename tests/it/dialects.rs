//! The warehouse dialects a loader test runs in: PostgreSQL, and Redshift through the stand-in
//! (`redshift-local`, which `scripts/services up` starts in front of the same PostgreSQL server,
//! so a test's own database is reachable both ways and `TestEnv::pg` reads what either loaded).

use crate::common::TestEnv;

use redtrack::Dialect;

/// The stand-in's URL (`scripts/services up` exports it); panics with the command to run when
/// it is not set: a Redshift test never passes by skipping.
fn redshift_url() -> String {
    std::env::var("REDTRACK_REDSHIFT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "Redshift-dialect tests need the stand-in, but REDTRACK_REDSHIFT_URL is not set; \
                 run `eval \"$(scripts/services up)\"` first (scripts/test does it for you)"
            )
        })
}

/// The URL of `env`'s database in `dialect`.
pub fn warehouse_url(env: &TestEnv, dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => env.warehouse_url(),
        Dialect::Redshift => crate::common::with_database(&redshift_url(), env.id()),
    }
}

/// The environment variables that put a loader of `env` in `dialect` (for a child process).
pub fn vars(env: &TestEnv, dialect: Dialect) -> Vec<(String, String)> {
    let name = match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Redshift => "redshift",
    };
    vec![
        (
            "REDTRACK_WAREHOUSE_URL".to_owned(),
            warehouse_url(env, dialect),
        ),
        ("REDTRACK_WAREHOUSE_DIALECT".to_owned(), name.to_owned()),
    ]
}

/// `env`'s configuration with its warehouse in `dialect`: PostgreSQL directly, or the same
/// database through the Redshift stand-in with the `redshift` dialect.
pub fn config(env: &TestEnv, dialect: Dialect) -> redtrack::Config {
    match dialect {
        Dialect::Postgres => env.config(),
        Dialect::Redshift => env
            .config()
            .into_builder()
            .warehouse_url(warehouse_url(env, dialect))
            .dialect(Dialect::Redshift)
            .build()
            .unwrap_or_else(|e| panic!("the Redshift configuration is invalid: {e}")),
    }
}

/// A connection to `env`'s database in `dialect` (for the statements a user would run to fix a
/// table, which Redshift takes differently).
pub async fn connect(env: &TestEnv, dialect: Dialect) -> tokio_postgres::Client {
    let url = warehouse_url(env, dialect);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the {dialect:?} warehouse: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
