//! System tables in provisioned and Serverless mode.

use crate::common::*;

/// r_STV_SLICES: a provisioned cluster lists its slices (the count `scripts/services` gave the
/// stand-in, REDTRACK_REDSHIFT_SLICES, 2 by default).
#[tokio::test]
async fn stv_slices_lists_the_configured_slices() {
    let c = connect_url(&url(Mode::Provisioned, &var_db()))
        .await
        .unwrap();
    let want: i64 = std::env::var("REDTRACK_REDSHIFT_SLICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    // as the runtime asks it: COUNT(*) through the extended protocol, BIGINT in binary
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM stv_slices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, want);
    let slices = rows(&c, "SELECT slice FROM stv_slices ORDER BY slice").await;
    let got: Vec<i64> = slices
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, (0..want).collect::<Vec<_>>());
}

/// c_intro_system_views: Serverless has no STL/STV tables (provisioned-only monitoring), while
/// the SYS views are there.
#[tokio::test]
async fn serverless_has_sys_views_but_no_stl_or_stv() {
    let db = Db::new("system_serverless", None).await;
    let c = db.connect(Mode::Serverless).await;
    for sql in [
        "SELECT COUNT(*) FROM stv_slices",
        "SELECT * FROM pg_catalog.stl_load_errors",
    ] {
        let e = c.query(sql, &[]).await.unwrap_err();
        assert_eq!(db_err(&e).0, "42P01", "{sql}");
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(db_err(&e).0, "42P01", "{sql}");
    }
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM sys_load_error_detail WHERE file_name LIKE $1",
            &[&"s3://none/%"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // a failed COPY points to the SYS view there
    c.batch_execute("CREATE TABLE t (id INTEGER)")
        .await
        .unwrap();
    let s3 = s3().await;
    let m = manifest(&s3, &prefix("system_serverless"), &["{\"id\": \"x\"}\n"]).await;
    let e = c.batch_execute(&copy_sql("t", &m, "")).await.unwrap_err();
    assert_eq!(
        db_err(&e).1,
        "Load into table 't' failed.  Check 'sys_load_error_detail' system table for details."
    );
}

/// The same database answers in both modes at once (what lets one test run cover both).
#[tokio::test]
async fn both_modes_serve_the_same_databases() {
    let db = Db::new("system_both_modes", None).await;
    let p = db.connect(Mode::Provisioned).await;
    let s = db.connect(Mode::Serverless).await;
    p.batch_execute("CREATE TABLE shared (id INT)")
        .await
        .unwrap();
    s.batch_execute("INSERT INTO shared VALUES (1)")
        .await
        .unwrap();
    assert_eq!(
        one(&p, "SELECT COUNT(*) FROM shared").await.as_deref(),
        Some("1")
    );
    assert!(one(&s, "SELECT version()")
        .await
        .unwrap()
        .contains("Redshift"));
}
