//! What the warehouse sends back, as the runtime reads it: Redshift's serialization conflict
//! (error 1023, SQLSTATE XX000) is retryable like PostgreSQL's 40001, and no query of the
//! runtime asks for a NUMERIC, DATE or TIME result in binary (the stand-in refuses those, so
//! every Redshift test of the loader, the CLI and migrate would fail if one did).

use std::time::Duration;

crate::each_backend! {
    /// Two transactions update one row: the later one fails on the conflict (Redshift: 1023 as
    /// XX000, under SNAPSHOT and SERIALIZABLE alike, c_serial_isolation; PostgreSQL: 40001),
    /// and redtrack's error says it may be retried.
    async fn a_serialization_conflict_is_retryable(env: TestEnv) {
        let a = env.warehouse().await;
        let b = env.warehouse().await;
        a.batch_execute("CREATE TABLE counters (id INTEGER, v INTEGER); INSERT INTO counters VALUES (1, 0)")
            .await
            .expect("table");
        // Redshift accepts and ignores the level (the database's decides, r_BEGIN).
        for c in [&a, &b] {
            c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT v FROM counters")
                .await
                .expect("begin");
        }
        a.batch_execute("UPDATE counters SET v = 1 WHERE id = 1")
            .await
            .expect("first update");
        let later = tokio::spawn(async move {
            let r = b.batch_execute("UPDATE counters SET v = 2 WHERE id = 1").await;
            (b, r)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.batch_execute("COMMIT").await.expect("commit");
        let (_b, r) = later.await.expect("the later update");
        let e = r.expect_err("the later update of the row conflicts");
        let db = e.as_db_error().expect("a server error");
        if env.backend().is_redshift() {
            assert_eq!((db.code().code(), db.message()), ("XX000", "1023"), "{db:?}");
        } else {
            assert_eq!(db.code().code(), "40001", "{db:?}");
        }
        let e = redtrack::Error::warehouse("updating counters").with_source(e);
        assert!(e.is_retryable(), "{e}");
    }

    /// A login the server refuses says what to check: the user and password, or the database
    /// name, in REDTRACK_WAREHOUSE_URL (by SQLSTATE 28P01 / 3D000), without the password.
    async fn a_refused_login_names_what_to_check(env: TestEnv) {
        let url = env.warehouse_url();
        let (head, rest) = url.split_once('@').expect("user@host");
        let (user_part, _) = head.rsplit_once(':').expect("user:password");
        let wrong = format!("{user_part}:not-the-password-42@{rest}");
        let e = redtrack::warehouse::Connector::new(&wrong)
            .expect("a connector")
            .connect()
            .await
            .expect_err("a wrong password");
        let shown = e.to_string();
        assert!(
            shown.contains("refused the user or password: check them in REDTRACK_WAREHOUSE_URL"),
            "{shown}"
        );
        assert!(!format!("{e}{e:?}").contains("not-the-password-42"), "{e:?}");
        let (server, _) = rest.rsplit_once('/').expect("host/db");
        let nodb = format!("{head}@{server}/no_such_db_{}", env.id());
        let e = redtrack::warehouse::Connector::new(&nodb)
            .expect("a connector")
            .connect()
            .await
            .expect_err("no such database");
        assert!(
            e.to_string()
                .contains("no such database: check the database name in REDTRACK_WAREHOUSE_URL"),
            "{e}"
        );
    }

    /// The stand-in refuses a binary NUMERIC, DATE or TIME result, as a guard on every other
    /// Redshift test; the runtime's own reads cast to VARCHAR or BIGINT and pass it.
    async fn binary_numeric_date_and_time_reads_are_refused(env: TestEnv) {
        let warehouse = env.warehouse().await;
        for (sql, name) in [
            ("SELECT CAST(1.5 AS DECIMAL(4,1))", "numeric"),
            ("SELECT CAST('2024-01-01' AS DATE)", "date"),
            ("SELECT CAST('01:02:03' AS TIME)", "time"),
        ] {
            // tokio-postgres asks for every result column in binary.
            let r = warehouse.query(sql, &[]).await;
            if env.backend().is_redshift() {
                let e = r.expect_err(sql);
                let db = e.as_db_error().expect("a server error");
                assert_eq!(db.code().code(), "0A000", "{db:?}");
                assert!(db.message().contains(name), "{db:?}");
            } else {
                r.expect(sql);
            }
            // As text, it crosses.
            let text: String = warehouse
                .query_one(&format!("SELECT CAST(({sql}) AS VARCHAR(32))"), &[])
                .await
                .expect("cast to VARCHAR")
                .get(0);
            assert!(!text.is_empty());
        }
        // The loader's reads of a loaded table, every one of them through the warehouse.
        let loader = env.loader::<crate::seed::TestEvent>().await;
        loader.checkpoints::<crate::seed::TestEvent>().await.expect("checkpoints");
        loader.recent_loads::<crate::seed::TestEvent>(5).await.expect("recent loads");
        loader.rejects::<crate::seed::TestEvent>(5).await.expect("rejects");
        redtrack::migrate::read_columns_for(&warehouse, "test_events", env.config().dialect())
            .await
            .expect("columns");
    }
}
