//! The wire protocol as tokio-postgres and psql use it.

use crate::common::*;

/// The extended protocol as tokio-postgres speaks it (named statements, binary `&str`
/// parameters, binary results), portals fetched in pieces, and a multi-statement simple query
/// that is one transaction.
#[tokio::test]
async fn extended_protocol_round_trips() {
    let db = Db::new("proto_extended", None).await;
    let mut c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE kv (k VARCHAR(32), v BIGINT)")
        .await
        .unwrap();
    let ins = c
        .prepare("INSERT INTO kv VALUES ($1, CAST(CAST($2 AS VARCHAR(20)) AS BIGINT))")
        .await
        .unwrap();
    for i in 0..10i64 {
        c.execute(&ins, &[&format!("k{i}"), &i.to_string()])
            .await
            .unwrap();
    }
    let row = c
        // PostgreSQL's SUM(BIGINT) is NUMERIC (Redshift's is BIGINT, r_SUM): cast it
        .query_one(
            "SELECT COUNT(*), CAST(SUM(v) AS BIGINT) FROM kv WHERE k LIKE $1",
            &[&"k%"],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (10, 45));
    let tx = c.client.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT k FROM kv ORDER BY v").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let first = tx.query_portal(&portal, 3).await.unwrap();
    let rest = tx.query_portal(&portal, 100).await.unwrap();
    assert_eq!((first.len(), rest.len()), (3, 7));
    tx.commit().await.unwrap();
    // a multi-statement simple query is atomic
    assert!(c
        .batch_execute(
            "INSERT INTO kv VALUES ('x', 1); INSERT INTO kv VALUES ('y', 'not a number')"
        )
        .await
        .is_err());
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM kv WHERE k IN ('x', 'y')")
            .await
            .as_deref(),
        Some("0")
    );
    // errors come back with PostgreSQL's fields, and the session goes on
    let e = c
        .query("SELECT * FROM no_such_table", &[])
        .await
        .unwrap_err();
    assert_eq!(db_err(&e).0, "42P01");
    assert_eq!(one(&c, "SELECT 1").await.as_deref(), Some("1"));
}

/// Redshift sends NUMERIC, DATE and TIME in binary only to drivers that negotiate its own
/// protocol, in a layout unlike PostgreSQL's (REDSHIFT.md: redshift_connector
/// `numeric_in_binary`; npgsql#3843): a client that asks for them in binary gets a clear error
/// instead of values PostgreSQL would have encoded; text, VARCHAR casts and other types work.
#[tokio::test]
async fn binary_numeric_date_time_are_refused() {
    let db = Db::new("proto_binary", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE t (d DECIMAL(10,2), day DATE, at TIME, n BIGINT, s VARCHAR(4), ts TIMESTAMP); \
                     INSERT INTO t VALUES (1.25, '2024-01-02', '03:04:05', 7, 'x', '2024-01-02 03:04:05')")
        .await
        .unwrap();
    for col in ["d", "day", "at"] {
        let e = c
            .query(&format!("SELECT {col} FROM t"), &[])
            .await
            .unwrap_err();
        let (code, msg) = db_err(&e);
        assert_eq!(code, "0A000", "{col}");
        assert!(
            msg.starts_with("binary result format requested for column"),
            "{msg}"
        );
    }
    // the session is fine afterwards, and the safe forms work
    let row = c
        .query_one(
            "SELECT CAST(d AS VARCHAR(20)), CAST(day AS VARCHAR(10)), n, s, ts FROM t",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "1.25");
    assert_eq!(row.get::<_, String>(1), "2024-01-02");
    assert_eq!(row.get::<_, i64>(2), 7);
    assert_eq!(one(&c, "SELECT d FROM t").await.as_deref(), Some("1.25"));
}

/// c_unsupported-postgresql-features, r_INSERT_30: PostgreSQL features Redshift lacks are
/// refused rather than quietly working.
#[tokio::test]
async fn postgresql_only_features_are_refused() {
    let db = Db::new("proto_unsupported", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE t (id INT)").await.unwrap();
    for (sql, code) in [
        ("CREATE INDEX t_id ON t (id)", "0A000"),
        ("CREATE UNIQUE INDEX t_id ON t (id)", "0A000"),
        ("CREATE SEQUENCE s", "0A000"),
        ("INSERT INTO t VALUES (1) RETURNING id", "42601"),
        ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "42601"),
        ("CREATE TABLE u (id SERIAL)", "42704"),
        ("CREATE TABLE u (id INT CHECK (id > 0))", "42601"),
    ] {
        let e = c
            .batch_execute(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} was accepted"));
        assert_eq!(db_err(&e).0, code, "{sql}: {e}");
    }
}

/// A client's CancelRequest reaches the PostgreSQL session behind it.
#[tokio::test]
async fn cancel_requests_are_forwarded() {
    let c = connect_url(&var("REDTRACK_REDSHIFT_URL")).await.unwrap();
    let token = c.cancel_token();
    let sleeper = tokio::spawn(async move {
        let r = c.batch_execute("SELECT pg_sleep(30)").await;
        (r, c)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (r, c) = within(std::time::Duration::from_secs(10), sleeper)
        .await
        .expect("cancelled in time")
        .unwrap();
    assert_eq!(db_err(&r.unwrap_err()).0, "57014");
    assert_eq!(one(&c, "SELECT 1").await.as_deref(), Some("1"));
}
