//! COPY from S3 with FORMAT JSON 'auto': what reaches the table, and what is rejected.

use crate::common::*;

/// A table with one column of every kind the loader writes.
const TABLE: &str = "CREATE TABLE ev (
    id INTEGER NOT NULL,
    small SMALLINT,
    big BIGINT,
    name VARCHAR(8),
    code CHAR(3),
    amount DECIMAL(8,2),
    ratio DOUBLE PRECISION,
    r REAL,
    ok BOOLEAN,
    day DATE,
    at TIMESTAMP,
    atz TIMESTAMPTZ,
    payload SUPER
)";

async fn setup(test: &str) -> (Db, Conn, aws_sdk_s3::Client, String) {
    let db = Db::new(test, None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute(TABLE).await.unwrap();
    (db, c, s3().await, prefix(test))
}

/// copy-parameters-data-format (JSON 'auto'), copy-parameters-data-source-s3 (manifest),
/// copy-parameters-file-compression (GZIP), copy-parameters-authorization (keys),
/// PG_LAST_COPY_COUNT: every value lands exactly, keys are matched to the (lowercase) columns
/// case-sensitively, a missing key loads NULL, extra keys are ignored.
#[tokio::test]
async fn json_auto_loads_every_type_exactly() {
    let (_db, mut c, s3, p) = setup("copy_types").await;
    let m = manifest(
        &s3,
        &p,
        &[
            concat!(
                r#"{"id": 1, "small": -32768, "big": 9223372036854775807, "name": "日本", "code": "abc", "#,
                r#""amount": "123456.78", "ratio": 0.1, "r": 1.5, "ok": true, "day": "2024-02-29", "#,
                r#""at": "2024-02-29 23:59:59.123456", "atz": "2024-02-29T23:59:59Z", "payload": {"a": [1, "x", null]}, "ignored": 1}"#,
                "\n",
                r#"{"id": 2, "ID": 99, "Name": "x"}"#,
                "\n"
            ),
            "{\"id\": 3,\n \"name\": \"multi\",\n \"atz\": \"1997-12-17 07:37:16-08\"}\n",
        ],
    )
    .await;
    c.batch_execute(&copy_sql("ev", &m, "MAXERROR 0"))
        .await
        .unwrap();
    let notices = c.take_notices();
    assert!(
        notices.contains(
            &"INFO: Load into table 'ev' completed, 3 record(s) loaded successfully.".to_owned()
        ),
        "{notices:?}"
    );
    let n: i64 = c
        .query_one("SELECT pg_last_copy_count()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    let got = rows(
        &c,
        "SELECT id, small, big, name, code, amount, ratio, r, ok, day, at, atz, payload FROM ev ORDER BY id",
    )
    .await;
    let o = |x: &str| Some(x.to_owned());
    assert_eq!(
        got[0],
        vec![
            o("1"),
            o("-32768"),
            o("9223372036854775807"),
            o("日本"),
            o("abc"),
            o("123456.78"),
            o("0.1"),
            o("1.5"),
            o("t"),
            o("2024-02-29"),
            o("2024-02-29 23:59:59.123456"),
            o("2024-02-29 23:59:59+00"),
            o(r#"{"a": [1, "x", null]}"#),
        ]
    );
    // "ID" and "Name" don't match lowercase columns under 'auto': NULL
    assert_eq!(got[1], {
        let mut v = vec![None; 13];
        v[0] = o("2");
        v
    });
    assert_eq!(got[2][3], o("multi"));
    assert_eq!(got[2][11], o("1997-12-17 15:37:16+00"));
}

/// copy-parameters-data-format: 'auto ignorecase' matches keys in any case.
#[tokio::test]
async fn auto_ignorecase_matches_keys_in_any_case() {
    let (_db, c, s3, p) = setup("copy_ignorecase").await;
    let m = manifest(
        &s3,
        &p,
        &["{\"ID\": 7, \"Name\": \"Ann\", \"oK\": \"yes\"}\n"],
    )
    .await;
    let sql = copy_sql("ev", &m, "").replace("JSON 'auto'", "JSON 'auto ignorecase'");
    c.batch_execute(&sql).await.unwrap();
    assert_eq!(
        rows(&c, "SELECT id, name, ok FROM ev").await,
        vec![vec![Some("7".into()), Some("Ann".into()), Some("t".into())]]
    );
}

/// The conversion rules, each a rejected row with Redshift's load error code
/// (r_Load_Error_Reference): byte lengths (r_Character_types), CHAR single-byte only
/// (multi-byte-character-load-errors), integer ranges (r_Numeric_types201), DECIMAL overflow,
/// booleans (r_Boolean_type), date/time formats (automatic-recognition), SUPER strings
/// (limitations-super), junk between objects (copy-parameters-data-format).
#[tokio::test]
async fn rejected_rows_have_redshifts_codes() {
    let (_db, c, s3, p) = setup("copy_rejects").await;
    let data = [
        r#"{"id": 1, "name": "ninebytes"}"#, // 9 bytes into VARCHAR(8): 1204
        r#"{"id": 2, "name": "日本語"}"#,    // 9 bytes: 1204
        r#"{"id": 3, "code": "é"}"#,         // multibyte into CHAR: 1220
        r#"{"id": 4, "small": 32768}"#,      // SMALLINT range: 1222
        r#"{"id": 5, "big": "12x"}"#,        // invalid digit: 1207
        r#"{"id": 6, "amount": "1000000.00"}"#, // DECIMAL(8,2) overflow: 1204
        r#"{"id": 7, "ok": "maybe"}"#,       // boolean: 1210
        r#"{"id": 8, "day": "2023-02-29"}"#, // no such date: 1205
        r#"{"id": 9, "at": "yesterday"}"#,   // not a timestamp: 1206
        r#"{"id": 10, "id2": 1, "ratio": "abc"}"#, // float: 1208
        "junk",                              // not JSON: 1224
        r#"{"id": 11, "name": "fine"}"#,
    ]
    .join("\n");
    let m = manifest(&s3, &p, &[&(data + "\n")]).await;
    c.batch_execute(&copy_sql("ev", &m, "MAXERROR 100"))
        .await
        .unwrap();
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM ev").await.as_deref(),
        Some("1")
    );
    let n: i64 = c
        .query_one("SELECT pg_last_copy_count()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let got = rows(
        &c,
        &format!(
            "SELECT line_number, TRIM(colname), err_code FROM stl_load_errors \
             WHERE filename LIKE 's3://{}/{p}/%' ORDER BY line_number",
            bucket()
        ),
    )
    .await;
    let codes: Vec<(String, String, String)> = got
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone().unwrap_or_default(),
                r[2].clone().unwrap(),
            )
        })
        .collect();
    let want = [
        ("1", "name", "1204"),
        ("2", "name", "1204"),
        ("3", "code", "1220"),
        ("4", "small", "1222"),
        ("5", "big", "1207"),
        ("6", "amount", "1204"),
        ("7", "ok", "1210"),
        ("8", "day", "1205"),
        ("9", "at", "1206"),
        ("10", "ratio", "1208"),
        ("11", "", "1224"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(codes, want);
}

/// copy-parameters-data-conversion: TRUNCATECOLUMNS cuts to the column's bytes on a character
/// boundary; EMPTYASNULL loads empty CHAR/VARCHAR as NULL; an empty string is always NULL for
/// other types; ROUNDEC rounds excess scale that is otherwise truncated.
#[tokio::test]
async fn conversion_options() {
    let (_db, c, s3, p) = setup("copy_options").await;
    let m = manifest(
        &s3,
        &format!("{p}/2"),
        &["{\"id\": 1, \"name\": \"abc日本\", \"code\": \"\", \"big\": \"\", \"amount\": \"1.239\"}\n"],
    )
    .await;
    c.batch_execute(&copy_sql("ev", &m, "TRUNCATECOLUMNS"))
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT name, code IS NULL, big IS NULL, amount FROM ev").await,
        vec![vec![
            Some("abc日".into()),
            Some("f".into()),
            Some("t".into()),
            Some("1.23".into())
        ]]
    );
    c.batch_execute("TRUNCATE ev").await.unwrap();
    c.batch_execute(&copy_sql("ev", &m, "TRUNCATECOLUMNS EMPTYASNULL ROUNDEC"))
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT code IS NULL, amount FROM ev").await,
        vec![vec![Some("t".into()), Some("1.24".into())]]
    );
}

/// automatic-recognition, r_Datetime_types: DATEFORMAT / TIMEFORMAT 'auto' recognise more than
/// ISO (a Julian date, `Mon-DD-YY BC`, BC years, years past 9999 up to 294276 AD), the forms
/// PostgreSQL's date parser reads, which the stand-in asks.
#[tokio::test]
async fn auto_recognises_more_than_iso_dates() {
    let (_db, c, s3, p) = setup("copy_auto_dates").await;
    let m = manifest(
        &s3,
        &p,
        &[concat!(
            r#"{"id": 1, "day": "4713-01-01 BC", "at": "4713-01-01 00:00:00 BC", "atz": "4713-01-01 00:00:00+00 BC"}"#,
            "\n",
            r#"{"id": 2, "day": "262142-12-31", "at": "262142-12-31 23:59:59.999999", "atz": "262142-12-31 23:59:59.999999+00"}"#,
            "\n",
            r#"{"id": 3, "day": "J2451187", "at": "Jan-08-95 BC"}"#,
            "\n",
        )],
    )
    .await;
    c.batch_execute(&copy_sql("ev", &m, "")).await.unwrap();
    assert_eq!(
        rows(
            &c,
            "SELECT CAST(day AS VARCHAR), CAST(at AS VARCHAR), CAST(atz AS VARCHAR) FROM ev ORDER BY id"
        )
        .await,
        vec![
            vec![
                Some("4713-01-01 BC".into()),
                Some("4713-01-01 00:00:00 BC".into()),
                Some("4713-01-01 00:00:00+00 BC".into())
            ],
            vec![
                Some("262142-12-31".into()),
                Some("262142-12-31 23:59:59.999999".into()),
                Some("262142-12-31 23:59:59.999999+00".into())
            ],
            vec![
                Some("1999-01-08".into()),
                Some("0095-01-08 00:00:00 BC".into()),
                None
            ],
        ]
    );
}

/// copy-parameters-data-conversion (ACCEPTINVCHARS), multi-byte-character-load-errors: invalid
/// UTF-8 rejects the row with 1220, unless ACCEPTINVCHARS replaces each invalid byte.
#[tokio::test]
async fn invalid_utf8_and_acceptinvchars() {
    let (_db, c, s3, p) = setup("copy_invalid_utf8").await;
    let mut bad = b"{\"id\": 1, \"name\": \"a".to_vec();
    bad.extend_from_slice(&[0xa4, 0xff]);
    bad.extend_from_slice(b"b\"}\n");
    let url = put(&s3, &format!("{p}/bad.json.gz"), gzip(&bad)).await;
    let man = serde_json::json!({"entries": [{"url": url, "mandatory": true}]}).to_string();
    let m = put(&s3, &format!("{p}/manifest.json"), man.into_bytes()).await;
    let e = c.batch_execute(&copy_sql("ev", &m, "")).await.unwrap_err();
    assert_eq!(db_err(&e).0, "XX000");
    let reason = one(
        &c,
        &format!("SELECT TRIM(err_reason) FROM stl_load_errors WHERE filename = '{url}' AND err_code = 1220"),
    )
    .await
    .unwrap();
    assert!(
        reason.starts_with("String contains invalid or unsupported UTF8 codepoints"),
        "{reason}"
    );
    c.batch_execute(&copy_sql("ev", &m, "ACCEPTINVCHARS AS '^'"))
        .await
        .unwrap();
    assert_eq!(
        one(&c, "SELECT name FROM ev").await.as_deref(),
        Some("a^^b")
    );
}

/// copy-parameters-data-format: NULL into a NOT NULL column fails the COPY whatever MAXERROR
/// says (the row is recorded with 1213); a NOT NULL column with a DEFAULT gets the default
/// (r_ALTER_TABLE, DEFAULT).
#[tokio::test]
async fn not_null_fails_the_copy_unless_there_is_a_default() {
    let (_db, c, s3, p) = setup("copy_not_null").await;
    let m = manifest(&s3, &p, &["{\"id\": 1}\n{\"name\": \"no id\"}\n"]).await;
    let e = c
        .batch_execute(&copy_sql("ev", &m, "MAXERROR 100"))
        .await
        .unwrap_err();
    let (code, msg) = db_err(&e);
    assert_eq!(code, "XX000");
    assert!(msg.starts_with("Load into table 'ev' failed."), "{msg}");
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM ev").await.as_deref(),
        Some("0")
    );
    assert_eq!(
        one(
            &c,
            &format!(
                "SELECT err_code FROM stl_load_errors WHERE filename LIKE 's3://{}/{p}/%'",
                bucket()
            )
        )
        .await
        .as_deref(),
        Some("1213")
    );
    c.batch_execute("CREATE TABLE d (id INT NOT NULL DEFAULT 42, name VARCHAR(8))")
        .await
        .unwrap();
    c.batch_execute(&copy_sql("d", &m, "")).await.unwrap();
    assert_eq!(
        rows(&c, "SELECT id, name FROM d ORDER BY id").await,
        vec![
            vec![Some("1".into()), None],
            vec![Some("42".into()), Some("no id".into())]
        ]
    );
}

/// copy-parameters-data-load (MAXERROR): the load fails once the errors reach MAXERROR, so
/// MAXERROR n lets n - 1 rows be rejected, and 0 and 1 both stop at the first; a failed load
/// loads nothing (the COPY is atomic) and pg_last_copy_count() is 0 (PG_LAST_COPY_COUNT).
#[tokio::test]
async fn maxerror_fails_when_errors_reach_it() {
    let (_db, c, s3, p) = setup("copy_maxerror").await;
    let data = "{\"id\": 1}\n{\"id\": \"x\"}\n{\"id\": 2}\n{\"id\": \"y\"}\n{\"id\": 3}\n";
    let m = manifest(&s3, &p, &[data]).await;
    for (maxerror, loads) in [(0, false), (1, false), (2, false), (3, true), (100, true)] {
        c.batch_execute("TRUNCATE ev").await.unwrap();
        let r = c
            .batch_execute(&copy_sql("ev", &m, &format!("MAXERROR {maxerror}")))
            .await;
        let n: i64 = c
            .query_one("SELECT pg_last_copy_count()", &[])
            .await
            .unwrap()
            .get(0);
        let count = one(&c, "SELECT COUNT(*) FROM ev").await.unwrap();
        if loads {
            r.unwrap_or_else(|e| panic!("MAXERROR {maxerror}: {e}"));
            assert_eq!((n, count.as_str()), (3, "3"), "MAXERROR {maxerror}");
        } else {
            let e = r
                .err()
                .unwrap_or_else(|| panic!("MAXERROR {maxerror} loaded"));
            assert!(
                db_err(&e)
                    .1
                    .contains("Check 'stl_load_errors' system table"),
                "{e}"
            );
            assert_eq!((n, count.as_str()), (0, "0"), "MAXERROR {maxerror}");
        }
    }
    // the INFO of a load that rejected rows says how many
    c.batch_execute("TRUNCATE ev").await.unwrap();
    let mut c2 = c;
    let _ = c2.take_notices();
    c2.batch_execute(&copy_sql("ev", &m, "MAXERROR 3"))
        .await
        .unwrap();
    let notices = c2.take_notices();
    assert!(
        notices.iter().any(|n| n == "INFO: Load into table 'ev' completed, 2 record(s) could not be loaded.  Check 'stl_load_errors' system table for details."),
        "{notices:?}"
    );
}

/// copy-parameters-data-format: a JSON object over 4 MB fails the COPY, whatever MAXERROR says.
#[tokio::test]
async fn an_object_over_4_mb_fails_the_copy() {
    let (_db, c, s3, p) = setup("copy_4mb").await;
    c.batch_execute("CREATE TABLE big (id INT, body VARCHAR(65535))")
        .await
        .unwrap();
    let pad = "x".repeat(4 * 1024 * 1024);
    let data = format!("{{\"id\": 1}}\n{{\"id\": 2, \"extra\": \"{pad}\"}}\n");
    let m = manifest(&s3, &p, &[&data]).await;
    let e = c
        .batch_execute(&copy_sql("big", &m, "MAXERROR 100"))
        .await
        .unwrap_err();
    assert_eq!(db_err(&e).0, "XX000");
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM big").await.as_deref(),
        Some("0")
    );
    // just under the limit loads
    let pad = "x".repeat(4 * 1024 * 1024 - 64);
    let m = manifest(
        &s3,
        &format!("{p}/ok"),
        &[&format!("{{\"id\": 2, \"extra\": \"{pad}\"}}\n")],
    )
    .await;
    c.batch_execute(&copy_sql("big", &m, "")).await.unwrap();
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM big").await.as_deref(),
        Some("1")
    );
}

/// limitations-super: a string inside a SUPER value holds at most 65535 bytes.
#[tokio::test]
async fn super_string_limit() {
    let (_db, c, s3, p) = setup("copy_super_limit").await;
    let long = "y".repeat(65536);
    let m = manifest(
        &s3,
        &p,
        &[&format!("{{\"id\": 1, \"payload\": {{\"s\": \"{long}\"}}}}\n{{\"id\": 2, \"payload\": [\"{}\"]}}\n", &long[1..])],
    )
    .await;
    c.batch_execute(&copy_sql("ev", &m, "MAXERROR 2"))
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT id FROM ev").await.as_deref(), Some("2"));
}

/// copy-parameters-authorization: wrong keys fail as S3 refuses them (signatures are checked
/// by the S3 emulator); IAM_ROLE uses the stand-in's own credentials; a missing mandatory file
/// fails the COPY, a missing optional one is skipped (copy-parameters-data-source-s3); without
/// MANIFEST the path is a key prefix.
#[tokio::test]
async fn s3_access_and_sources() {
    let (_db, c, s3, p) = setup("copy_s3").await;
    let m = manifest(&s3, &p, &["{\"id\": 1}\n"]).await;
    let wrong = copy_sql("ev", &m, "").replace(&var("AWS_SECRET_ACCESS_KEY"), "not-the-secret");
    let e = c.batch_execute(&wrong).await.unwrap_err();
    let (code, msg) = db_err(&e);
    assert_eq!(code, "XX000");
    assert!(msg.starts_with("S3ServiceException:"), "{msg}");
    assert!(msg.contains("Status 403"), "{msg}");
    assert!(
        !msg.contains("not-the-secret"),
        "the secret must not be echoed"
    );
    let role = format!(
        "COPY ev FROM '{m}' IAM_ROLE 'arn:aws:iam::123456789012:role/load' FORMAT AS JSON 'auto' GZIP MANIFEST"
    );
    c.batch_execute(&role).await.unwrap();
    // a prefix, uncompressed
    put(&s3, &format!("{p}/plain/a.json"), b"{\"id\": 2}".to_vec()).await;
    put(
        &s3,
        &format!("{p}/plain/b.json"),
        b"{\"id\": 3}\n{\"id\": 4}".to_vec(),
    )
    .await;
    c.batch_execute(&format!(
        "COPY ev FROM 's3://{}/{p}/plain/' IAM_ROLE default JSON 'auto'",
        bucket()
    ))
    .await
    .unwrap();
    assert_eq!(
        one(&c, "SELECT SUM(id) FROM ev").await.as_deref(),
        Some("10")
    );
    // manifests with a missing file
    let missing = format!("s3://{}/{p}/missing.json.gz", bucket());
    let man = |mandatory: bool| {
        serde_json::json!({"entries": [{"url": missing, "mandatory": mandatory}]})
            .to_string()
            .into_bytes()
    };
    let m1 = put(&s3, &format!("{p}/m1.json"), man(true)).await;
    assert!(c.batch_execute(&copy_sql("ev", &m1, "")).await.is_err());
    let m2 = put(&s3, &format!("{p}/m2.json"), man(false)).await;
    c.batch_execute(&copy_sql("ev", &m2, "")).await.unwrap();
    let n: i64 = c
        .query_one("SELECT pg_last_copy_count()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

/// r_COPY: Redshift loads from S3, EMR, DynamoDB or SSH hosts, never from the client:
/// `COPY ... FROM STDIN` is a syntax error there (darwin-eu/CDMConnector#38).
#[tokio::test]
async fn copy_from_stdin_is_a_syntax_error() {
    let (_db, c, _s3, _p) = setup("copy_stdin").await;
    let e = c
        .batch_execute("COPY ev (id) FROM STDIN")
        .await
        .unwrap_err();
    assert_eq!(
        db_err(&e),
        (
            "42601".to_owned(),
            "syntax error at or near \"STDIN\"".to_owned()
        )
    );
    // the extended protocol refuses it when it is prepared
    let e = c.prepare("COPY ev FROM STDIN").await.unwrap_err();
    assert_eq!(db_err(&e).0, "42601");
}
