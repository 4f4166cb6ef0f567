//! LOCK and isolation.

use std::time::Duration;

use crate::common::*;

/// r_LOCK: LOCK takes an ACCESS EXCLUSIVE lock: other sessions' reads of the table wait until
/// the locking transaction ends. Outside a transaction block it has no effect (and no error);
/// it takes no lock modes.
#[tokio::test]
async fn lock_blocks_readers_until_commit() {
    let db = Db::new("tx_lock", None).await;
    let a = db.connect(Mode::Provisioned).await;
    let b = db.connect(Mode::Provisioned).await;
    a.batch_execute("CREATE TABLE kinesis_loads (id INT); INSERT INTO kinesis_loads VALUES (1)")
        .await
        .unwrap();
    a.batch_execute("LOCK kinesis_loads")
        .await
        .expect("LOCK outside a transaction block is accepted");
    assert_eq!(
        db_err(
            &a.batch_execute("LOCK TABLE kinesis_loads IN SHARE MODE")
                .await
                .unwrap_err()
        )
        .0,
        "42601"
    );
    a.batch_execute("BEGIN; LOCK kinesis_loads").await.unwrap();
    let read = b.query_one("SELECT COUNT(*) FROM kinesis_loads", &[]);
    tokio::pin!(read);
    assert!(
        within(Duration::from_millis(500), &mut read)
            .await
            .is_none(),
        "a reader of a locked table must wait"
    );
    a.batch_execute("COMMIT").await.unwrap();
    let n: i64 = within(Duration::from_secs(10), read)
        .await
        .expect("the reader goes on after COMMIT")
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// r_CREATE_DATABASE, c_serial_isolation: in a SERIALIZABLE database, write skew is refused
/// with Redshift's error 1023 (SQLSTATE XX000, not PostgreSQL's 40001); in a SNAPSHOT database
/// the same schedule commits (SNAPSHOT "doesn't prevent write skew").
#[tokio::test]
async fn serializable_refuses_write_skew_with_1023_snapshot_allows_it() {
    for (level, refused) in [("SERIALIZABLE", true), ("SNAPSHOT", false)] {
        let db = Db::new(&format!("tx_skew_{}", level.to_lowercase()), Some(level)).await;
        let a = db.connect(Mode::Provisioned).await;
        let b = db.connect(Mode::Provisioned).await;
        a.batch_execute("CREATE TABLE numbers (digits INT); INSERT INTO numbers VALUES (0), (1)")
            .await
            .unwrap();
        a.batch_execute("BEGIN; UPDATE numbers SET digits = 0 WHERE digits = 1")
            .await
            .unwrap();
        b.batch_execute("BEGIN; UPDATE numbers SET digits = 1 WHERE digits = 0")
            .await
            .unwrap();
        a.batch_execute("COMMIT").await.unwrap();
        let r = b.batch_execute("COMMIT").await;
        if refused {
            let e = r.expect_err("write skew under SERIALIZABLE");
            let db_e = e.as_db_error().unwrap();
            assert_eq!(db_e.code().code(), "XX000");
            assert_eq!(db_e.message(), "1023");
            assert!(
                db_e.detail()
                    .unwrap_or("")
                    .starts_with("Serializable isolation violation on table"),
                "{db_e:?}"
            );
        } else {
            r.expect("SNAPSHOT commits write skew");
        }
    }
}

/// c_serial_isolation: under SNAPSHOT isolation too, two transactions updating the same row
/// conflict; the later one gets error 1023.
#[tokio::test]
async fn snapshot_refuses_concurrent_updates_of_a_row() {
    let db = Db::new("tx_snapshot_update", Some("SNAPSHOT")).await;
    let a = db.connect(Mode::Provisioned).await;
    let b = db.connect(Mode::Provisioned).await;
    a.batch_execute("CREATE TABLE t (id INT, v INT); INSERT INTO t VALUES (1, 0)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; SELECT * FROM t").await.unwrap();
    b.batch_execute("BEGIN; SELECT * FROM t").await.unwrap();
    a.batch_execute("UPDATE t SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    let update = b.batch_execute("UPDATE t SET v = 2 WHERE id = 1");
    tokio::pin!(update);
    assert!(
        within(Duration::from_millis(300), &mut update)
            .await
            .is_none(),
        "b waits for a's row lock"
    );
    a.batch_execute("COMMIT").await.unwrap();
    let e = within(Duration::from_secs(10), update)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(db_err(&e), ("XX000".to_owned(), "1023".to_owned()));
    b.batch_execute("ROLLBACK").await.unwrap();
}

/// r_BEGIN: every isolation level asked for in BEGIN / START TRANSACTION behaves as the
/// database's, so a READ COMMITTED transaction still keeps its snapshot.
#[tokio::test]
async fn begin_isolation_levels_map_to_the_databases() {
    let db = Db::new("tx_begin_levels", Some("SNAPSHOT")).await;
    let a = db.connect(Mode::Provisioned).await;
    let b = db.connect(Mode::Provisioned).await;
    a.batch_execute("CREATE TABLE t (id INT)").await.unwrap();
    a.batch_execute("START TRANSACTION ISOLATION LEVEL READ COMMITTED; SELECT COUNT(*) FROM t")
        .await
        .unwrap();
    b.batch_execute("INSERT INTO t VALUES (1)").await.unwrap();
    assert_eq!(
        one(&a, "SELECT COUNT(*) FROM t").await.as_deref(),
        Some("0"),
        "the snapshot is kept"
    );
    a.batch_execute("COMMIT").await.unwrap();
    a.batch_execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    // tokio-postgres' transaction builder sends START TRANSACTION ISOLATION LEVEL ...
    let mut a = a;
    let tx = a
        .client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .unwrap();
    let n: i64 = tx
        .query_one("SELECT COUNT(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
}

/// r_ALTER_DATABASE: ISOLATION LEVEL changes a database's level for new sessions; not inside a
/// transaction block, not while other users are connected.
#[tokio::test]
async fn alter_database_isolation_level() {
    let db = Db::new("tx_alter_isolation", Some("SNAPSHOT")).await;
    let home = connect_url(&url(Mode::Provisioned, &var_db()))
        .await
        .unwrap();
    let other = db.connect(Mode::Provisioned).await;
    let sql = format!("ALTER DATABASE {} ISOLATION LEVEL SERIALIZABLE", db.name);
    let e = home.batch_execute(&sql).await.unwrap_err();
    assert_eq!(db_err(&e).0, "55006", "{e}");
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = home
        .batch_execute(&format!("BEGIN; {sql}"))
        .await
        .unwrap_err();
    assert_eq!(db_err(&e).0, "25001");
    home.batch_execute("ROLLBACK").await.unwrap();
    home.batch_execute(&sql).await.unwrap();
    let c = db.connect(Mode::Provisioned).await;
    assert_eq!(
        one(&c, "SHOW transaction_isolation").await.as_deref(),
        Some("serializable")
    );
}

/// r_TRUNCATE: TRUNCATE commits the transaction it runs in, so what came before it in the
/// transaction stays even if the transaction is then rolled back.
#[tokio::test]
async fn truncate_commits_its_transaction() {
    let db = Db::new("tx_truncate", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE a (id INT); CREATE TABLE b (id INT); INSERT INTO b VALUES (1)")
        .await
        .unwrap();
    c.batch_execute("BEGIN; INSERT INTO a VALUES (1); TRUNCATE b")
        .await
        .unwrap();
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM a").await.as_deref(),
        Some("1"),
        "the INSERT was committed"
    );
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM b").await.as_deref(),
        Some("0")
    );
}

/// An error inside a transaction block aborts it, whether PostgreSQL or the stand-in raised
/// it, in the simple and the extended protocol: later statements fail until ROLLBACK.
#[tokio::test]
async fn a_refused_statement_aborts_the_transaction() {
    let db = Db::new("tx_abort", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE t (id INT, a VARCHAR(8))")
        .await
        .unwrap();
    for extended in [false, true] {
        c.batch_execute("BEGIN; INSERT INTO t VALUES (1, 'x')")
            .await
            .unwrap();
        let sql = "ALTER TABLE t ALTER COLUMN a TYPE VARCHAR(20)";
        let e = if extended {
            c.execute(sql, &[]).await.unwrap_err()
        } else {
            c.batch_execute(sql).await.unwrap_err()
        };
        assert_eq!(db_err(&e).0, "25001");
        let e = c.query("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(db_err(&e).0, "25P02", "extended: {extended}");
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(
            one(&c, "SELECT COUNT(*) FROM t").await.as_deref(),
            Some("0")
        );
    }
    // a failed COPY inside a multi-statement query rolls back what came before it
    let s3 = s3().await;
    let m = manifest(&s3, &prefix("tx_abort"), &["{\"id\": \"x\"}\n"]).await;
    let batch = format!("INSERT INTO t VALUES (2, 'y'); {}", copy_sql("t", &m, ""));
    assert!(c.batch_execute(&batch).await.is_err());
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM t").await.as_deref(),
        Some("0")
    );
}
