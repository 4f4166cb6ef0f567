//! STL_LOAD_ERRORS and SYS_LOAD_ERROR_DETAIL, and the session's PG_LAST_COPY_COUNT.

use crate::common::*;

/// r_STL_LOAD_ERRORS and SYS_LOAD_ERROR_DETAIL: one row per rejected row with the documented
/// columns and widths (filename / file_name character(256); colname character(127);
/// err_reason character(100); error_message character(512); raw_line character(1024) with
/// multibyte characters as '.'), the JSON object's last line as line_number. (A URL over 256
/// bytes is cut to 256 bytes: the S3 emulator can't store keys that long, so `copy::tests`
/// checks the cut.)
#[tokio::test]
async fn error_rows_have_the_documented_columns_and_widths() {
    let db = Db::new("errors_columns", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE t (id INTEGER, name VARCHAR(4))")
        .await
        .unwrap();
    let s3 = s3().await;
    let p = prefix("errors_columns");
    let m = manifest(
        &s3,
        &p,
        &["{\"id\": 1}\n{\"id\": 2,\n \"name\": \"ünïcode\"}\n"],
    )
    .await;
    c.batch_execute(&copy_sql("t", &m, "MAXERROR 10"))
        .await
        .unwrap();
    let url = format!("s3://{}/{p}/part-0000.json.gz", bucket());
    let stl = rows(
        &c,
        "SELECT filename, line_number, TRIM(colname), TRIM(type), TRIM(col_length), TRIM(raw_line), \
         TRIM(raw_field_value), err_code, TRIM(err_reason), octet_length(filename), octet_length(err_reason) \
         FROM stl_load_errors WHERE query = pg_last_copy_id()",
    )
    .await;
    assert_eq!(stl.len(), 1, "{stl:?}");
    let r = &stl[0];
    let v = |i: usize| r[i].clone().unwrap_or_default();
    assert_eq!(
        v(0).trim_end(),
        url,
        "filename, blank-padded to character(256)"
    );
    assert_eq!(v(1), "3", "the last line of the object");
    assert_eq!(
        (v(2).as_str(), v(3).as_str(), v(4).as_str()),
        ("name", "varchar", "4")
    );
    assert_eq!(v(5), "{\"id\": 2,\n \"name\": \".n.code\"}");
    assert_eq!(v(6), "ünïcode");
    assert_eq!(v(7), "1204");
    assert_eq!(v(8), "String length exceeds DDL length");
    assert_eq!(v(9), "256", "character(256) is blank-padded");
    let types = rows(
        &c,
        "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns \
         WHERE table_name IN ('stl_load_errors', 'sys_load_error_detail') \
         AND column_name IN ('filename', 'file_name', 'colname', 'column_name', 'err_reason', 'error_message', 'raw_line', 'database_name') \
         ORDER BY column_name",
    )
    .await;
    let t: Vec<String> = types
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r[0].clone().unwrap(),
                r[1].clone().unwrap(),
                r[2].clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        t,
        [
            "colname character 127",
            "column_name character 127",
            "database_name character 64",
            "err_reason character 100",
            "error_message character 512",
            "file_name character 256",
            "filename character 256",
            "raw_line character 1024",
        ]
    );
    let sys = rows(
        &c,
        "SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(error_message), error_code, \
         TRIM(database_name), TRIM(column_type) FROM sys_load_error_detail WHERE query_id = pg_last_copy_id()",
    )
    .await;
    assert_eq!(sys.len(), 1);
    assert_eq!(sys[0][0].as_deref(), Some(url.as_str()));
    assert_eq!(sys[0][1].as_deref(), Some("3"));
    assert_eq!(sys[0][2].as_deref(), Some("name"));
    assert_eq!(
        sys[0][3].as_deref(),
        Some("String length exceeds DDL length")
    );
    assert_eq!(sys[0][4].as_deref(), Some("1204"));
    assert_eq!(sys[0][5].as_deref(), Some(db.name.as_str()));
}

/// System tables are not part of a transaction (c_serial_isolation: "STL and STV are not
/// locked in a transaction"): the rows of a failed COPY survive its rollback, and are visible
/// at once, also to a transaction whose snapshot is older than the COPY.
#[tokio::test]
async fn error_rows_survive_rollback_and_are_visible_at_once() {
    let db = Db::new("errors_rollback", None).await;
    let a = db.connect(Mode::Provisioned).await;
    let b = db.connect(Mode::Provisioned).await;
    a.batch_execute("CREATE TABLE t (id INTEGER)")
        .await
        .unwrap();
    let s3 = s3().await;
    let p = prefix("errors_rollback");
    let m = manifest(&s3, &p, &["{\"id\": \"nope\"}\n"]).await;
    let pattern = format!("s3://{}/{p}/%", bucket());
    // b's snapshot is taken before the COPY
    b.batch_execute("BEGIN").await.unwrap();
    let before: i64 = b
        .query_one(
            "SELECT COUNT(*) FROM sys_load_error_detail WHERE file_name LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, 0);
    a.batch_execute("BEGIN").await.unwrap();
    let e = a.batch_execute(&copy_sql("t", &m, "")).await.unwrap_err();
    assert!(db_err(&e).1.starts_with("Load into table 't' failed."));
    a.batch_execute("ROLLBACK").await.unwrap();
    let after: i64 = b
        .query_one(
            "SELECT COUNT(*) FROM sys_load_error_detail WHERE file_name LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        after, 1,
        "the error row is visible inside b's older snapshot"
    );
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        one(
            &a,
            &format!("SELECT COUNT(*) FROM stl_load_errors WHERE filename LIKE '{pattern}'")
        )
        .await
        .as_deref(),
        Some("1")
    );
}

/// r_STL_LOAD_ERRORS, SYS_LOAD_ERROR_DETAIL: regular users see their own rows only.
#[tokio::test]
async fn regular_users_see_their_own_rows() {
    let db = Db::new("errors_visibility", None).await;
    let owner = db.connect(Mode::Provisioned).await;
    owner
        .batch_execute("CREATE TABLE t (id INTEGER); GRANT ALL ON t TO PUBLIC")
        .await
        .unwrap();
    let _ = owner.batch_execute("DROP USER IF EXISTS rl_bob").await;
    owner
        .batch_execute("CREATE USER rl_bob PASSWORD 'B0bsPassword'")
        .await
        .unwrap();
    let bob_url =
        url(Mode::Provisioned, &db.name).replacen("redtrack:redtrack@", "rl_bob:B0bsPassword@", 1);
    let bob = connect_url(&bob_url).await.unwrap();
    let s3 = s3().await;
    let p = prefix("errors_visibility");
    let m = manifest(&s3, &p, &["{\"id\": \"nope\"}\n"]).await;
    let pattern = format!("s3://{}/{p}/%", bucket());
    assert!(bob.batch_execute(&copy_sql("t", &m, "")).await.is_err());
    let sql = format!("SELECT COUNT(*) FROM stl_load_errors WHERE filename LIKE '{pattern}'");
    assert_eq!(one(&bob, &sql).await.as_deref(), Some("1"));
    assert_eq!(
        one(&owner, &sql).await.as_deref(),
        Some("0"),
        "redtrack is not a superuser"
    );
    drop(bob);
    let _ = owner
        .batch_execute("DROP OWNED BY rl_bob; DROP USER rl_bob")
        .await;
}

/// PG_LAST_COPY_COUNT: per session; a COPY that fails while loading sets it to 0, and one
/// refused before loading (a syntax error) leaves it as it was.
#[tokio::test]
async fn pg_last_copy_count_is_per_session() {
    let db = Db::new("errors_copy_count", None).await;
    let a = db.connect(Mode::Provisioned).await;
    let b = db.connect(Mode::Provisioned).await;
    a.batch_execute("CREATE TABLE t (id INTEGER)")
        .await
        .unwrap();
    let s3 = s3().await;
    let p = prefix("errors_copy_count");
    let good = manifest(&s3, &format!("{p}/good"), &["{\"id\": 1}\n{\"id\": 2}\n"]).await;
    let bad = manifest(&s3, &format!("{p}/bad"), &["{\"id\": \"x\"}\n"]).await;
    assert_eq!(last_copy_count(&a).await, 0, "no COPY yet");
    a.batch_execute(&copy_sql("t", &good, "")).await.unwrap();
    assert_eq!(last_copy_count(&a).await, 2);
    assert_eq!(last_copy_count(&b).await, 0, "another session's COPY");
    assert!(a
        .batch_execute("COPY t FROM 's3://x/y' JSON 'auto' NOSUCHOPTION")
        .await
        .is_err());
    assert_eq!(last_copy_count(&a).await, 2, "a syntax error leaves it");
    a.batch_execute("BEGIN").await.unwrap();
    assert!(a.batch_execute(&copy_sql("t", &bad, "")).await.is_err());
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(last_copy_count(&a).await, 0, "a load that failed");
    // the value is the session's, also inside a transaction and through a prepared statement
    let stmt = a.prepare("SELECT pg_last_copy_count()").await.unwrap();
    a.batch_execute(&copy_sql("t", &good, "")).await.unwrap();
    assert_eq!(a.query_one(&stmt, &[]).await.unwrap().get::<_, i64>(0), 2);
}

async fn last_copy_count(c: &Conn) -> i64 {
    c.query_one("SELECT pg_last_copy_count()", &[])
        .await
        .unwrap()
        .get(0)
}
