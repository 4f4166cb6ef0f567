//! Redshift's CREATE TABLE and ALTER TABLE, and the catalog views that read them back.

use crate::common::*;

const SEED_DDL: &str = "CREATE TABLE IF NOT EXISTS all_shapes (
    id BIGINT NOT NULL ENCODE az64 DISTKEY,
    body VARCHAR(2000) ENCODE text32k,
    note VARCHAR(64) ENCODE lzo,
    flag BOOLEAN ENCODE runlength,
    amount DECIMAL(38,10) ENCODE mostly32,
    at TIMESTAMP NOT NULL,
    day DATE,
    payload SUPER ENCODE zstd,
    code CHAR(2) DEFAULT 'xx',
    PRIMARY KEY (id)
) DISTSTYLE KEY COMPOUND SORTKEY (at, id)";

/// r_CREATE_TABLE_NEW, r_PG_TABLE_DEF, c_Compression_encodings: Redshift's attributes are
/// accepted and read back from pg_table_def (encoding, distkey, sort key position, type,
/// notnull); a column without ENCODE gets Redshift's default (RAW for sort keys, AZ64 for
/// numbers and times, LZO for strings).
#[tokio::test]
async fn create_table_attributes_read_back_from_pg_table_def() {
    let db = Db::new("ddl_table_def", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute(SEED_DDL).await.unwrap();
    let got = rows(
        &c,
        "SELECT \"column\", type, TRIM(encoding), distkey, sortkey, \"notnull\" FROM pg_table_def \
         WHERE tablename = 'all_shapes' ORDER BY \"column\"",
    )
    .await;
    let s = |v: &[&str]| v.iter().map(|x| Some((*x).to_owned())).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            s(&["amount", "numeric(38,10)", "mostly32", "f", "0", "f"]),
            s(&["at", "timestamp without time zone", "none", "f", "1", "t"]),
            s(&["body", "character varying(2000)", "text32k", "f", "0", "f"]),
            s(&["code", "character(2)", "lzo", "f", "0", "f"]),
            s(&["day", "date", "az64", "f", "0", "f"]),
            s(&["flag", "boolean", "runlength", "f", "0", "f"]),
            s(&["id", "bigint", "az64", "t", "2", "t"]),
            s(&["note", "character varying(64)", "lzo", "f", "0", "f"]),
            s(&["payload", "super", "zstd", "f", "0", "f"]),
        ]
    );
    // IF NOT EXISTS again: nothing changes
    c.batch_execute(SEED_DDL).await.unwrap();
    assert_eq!(
        one(
            &c,
            "SELECT COUNT(*) FROM pg_table_def WHERE tablename = 'all_shapes'"
        )
        .await
        .as_deref(),
        Some("9")
    );
}

/// r_SVV_REDSHIFT_COLUMNS: type, default, nullability, encoding, distkey and sort key, what a
/// migrator compares.
#[tokio::test]
async fn svv_redshift_columns_has_what_a_migrator_needs() {
    let db = Db::new("ddl_svv_columns", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute(SEED_DDL).await.unwrap();
    let got = rows(
        &c,
        "SELECT column_name, data_type, column_default, is_nullable, encoding, distkey, sortkey \
         FROM svv_redshift_columns WHERE table_name = 'all_shapes' AND column_name IN ('code', 'id', 'body') \
         ORDER BY ordinal_position",
    )
    .await;
    let o = |x: &str| Some(x.to_owned());
    assert_eq!(
        got,
        vec![
            vec![
                o("id"),
                o("bigint"),
                None,
                o("NO"),
                o("az64"),
                o("t"),
                o("2")
            ],
            vec![
                o("body"),
                o("character varying(2000)"),
                None,
                o("YES"),
                o("text32k"),
                o("f"),
                o("0")
            ],
            vec![
                o("code"),
                o("character(2)"),
                o("'xx'::bpchar"),
                o("YES"),
                o("lzo"),
                o("f"),
                o("0")
            ],
        ]
    );
    assert_eq!(
        one(&c, "SELECT DISTINCT database_name FROM svv_redshift_columns WHERE table_name = 'all_shapes'")
            .await,
        Some(db.name.clone())
    );
}

/// c_Compression_encodings (the table of types each encoding supports), limitations-super
/// (SUPER is never a distribution or sort key), r_Character_types (VARCHAR ≤ 65535 bytes,
/// CHAR ≤ 4096), r_Numeric_types201 (DECIMAL precision ≤ 38): Redshift refuses these.
#[tokio::test]
async fn create_table_refuses_what_redshift_refuses() {
    let db = Db::new("ddl_refusals", None).await;
    let c = db.connect(Mode::Provisioned).await;
    for (ddl, code) in [
        ("CREATE TABLE r1 (a BOOLEAN ENCODE az64)", "0A000"),
        ("CREATE TABLE r2 (a CHAR(4) ENCODE text255)", "0A000"),
        ("CREATE TABLE r3 (a SMALLINT ENCODE mostly16)", "0A000"),
        ("CREATE TABLE r4 (a SUPER ENCODE lzo)", "0A000"),
        ("CREATE TABLE r5 (a TIMESTAMPTZ ENCODE delta)", "0A000"),
        ("CREATE TABLE r6 (a INT ENCODE snappy)", "42704"),
        ("CREATE TABLE r7 (a SUPER DISTKEY)", "0A000"),
        ("CREATE TABLE r8 (a SUPER, b INT) SORTKEY (a)", "0A000"),
        ("CREATE TABLE r9 (a VARCHAR(65536))", "22023"),
        ("CREATE TABLE r10 (a CHAR(4097))", "22023"),
        ("CREATE TABLE r11 (a DECIMAL(39,2))", "22023"),
        ("CREATE TABLE r12 (a UUID)", "42704"),
        (
            "CREATE TABLE r13 (a INT, b INT) DISTKEY (a) DISTSTYLE EVEN",
            "42601",
        ),
        (
            "CREATE TABLE r14 (a INT, b INT, c INT, d INT, e INT, f INT, g INT, h INT, i INT) \
          INTERLEAVED SORTKEY (a, b, c, d, e, f, g, h, i)",
            "54011",
        ),
    ] {
        let e = c
            .batch_execute(ddl)
            .await
            .err()
            .unwrap_or_else(|| panic!("{ddl} was accepted"));
        assert_eq!(db_err(&e).0, code, "{ddl}: {e}");
    }
    // and accepts these
    c.batch_execute(
        "CREATE TABLE ok1 (a TEXT, b NVARCHAR, c DECIMAL, d FLOAT, e CHAR, f VARCHAR(MAX), \
         g TIMESTAMPTZ, h TIME, i INT IDENTITY(1, 1), j SUPER) \
         BACKUP NO DISTSTYLE EVEN INTERLEAVED SORTKEY (a, c) ENCODE AUTO",
    )
    .await
    .unwrap();
    let types = rows(&c, "SELECT \"column\", type, sortkey FROM pg_table_def WHERE tablename = 'ok1' ORDER BY \"column\"").await;
    let t = |i: usize| types[i][1].clone().unwrap();
    assert_eq!(t(0), "character varying(256)"); // TEXT is VARCHAR(256) (r_Character_types)
    assert_eq!(t(1), "character varying(256)");
    assert_eq!(t(2), "numeric(18,0)"); // DECIMAL defaults to (18,0) (r_Numeric_types201)
    assert_eq!(t(3), "double precision");
    assert_eq!(t(4), "character(1)");
    assert_eq!(t(5), "character varying(65535)");
    // interleaved sort keys alternate in sign (r_PG_TABLE_DEF)
    assert_eq!(types[0][2].as_deref(), Some("-1"));
    assert_eq!(types[2][2].as_deref(), Some("2"));
}

/// t_Defining_constraints: PRIMARY KEY, UNIQUE and FOREIGN KEY are informational, not enforced.
#[tokio::test]
async fn key_constraints_are_not_enforced() {
    let db = Db::new("ddl_constraints", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute(
        "CREATE TABLE parent (id INT PRIMARY KEY, u INT UNIQUE); \
         CREATE TABLE child (id INT REFERENCES parent(id), pid INT, FOREIGN KEY (pid) REFERENCES parent (id))",
    )
    .await
    .unwrap();
    c.batch_execute("INSERT INTO parent VALUES (1, 1), (1, 1); INSERT INTO child VALUES (7, 8)")
        .await
        .expect("duplicates and dangling references are not refused");
    assert_eq!(
        one(&c, "SELECT COUNT(*) FROM parent").await.as_deref(),
        Some("2")
    );
    // NOT NULL is enforced
    c.batch_execute("CREATE TABLE nn (a INT NOT NULL)")
        .await
        .unwrap();
    assert_eq!(
        db_err(
            &c.batch_execute("INSERT INTO nn VALUES (NULL)")
                .await
                .unwrap_err()
        )
        .0,
        "23502"
    );
}

/// r_ALTER_TABLE, ALTER COLUMN ... TYPE: only a VARCHAR's size; not inside a transaction
/// block; not for BYTEDICT, RUNLENGTH, TEXT255 or TEXT32K columns; not for columns with a
/// default or a key constraint; not below the longest value.
#[tokio::test]
async fn alter_column_type_follows_redshifts_limits() {
    let db = Db::new("ddl_alter_column", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute(
        "CREATE TABLE t (id INT, a VARCHAR(8), b VARCHAR(8) ENCODE text32k, c VARCHAR(8) ENCODE bytedict, \
         d VARCHAR(8) ENCODE runlength, e VARCHAR(8) ENCODE text255, f VARCHAR(8) DEFAULT 'x', \
         g VARCHAR(8) PRIMARY KEY, h INT); INSERT INTO t (id, a, g) VALUES (1, 'abcdefg', 'k')",
    )
    .await
    .unwrap();
    let refuse = |sql: &'static str, code: &'static str| {
        let c = &c;
        async move {
            let e = c
                .batch_execute(sql)
                .await
                .err()
                .unwrap_or_else(|| panic!("{sql} was accepted"));
            assert_eq!(db_err(&e).0, code, "{sql}: {e}");
        }
    };
    refuse("ALTER TABLE t ALTER COLUMN h TYPE BIGINT", "0A000").await;
    refuse("ALTER TABLE t ALTER COLUMN h TYPE VARCHAR(20)", "0A000").await;
    for col in ["b", "c", "d", "e"] {
        let sql = format!("ALTER TABLE t ALTER COLUMN {col} TYPE VARCHAR(20)");
        let e = c.batch_execute(&sql).await.unwrap_err();
        assert_eq!(db_err(&e).0, "0A000", "{sql}");
        assert!(db_err(&e).1.contains("encoded"), "{e}");
    }
    refuse("ALTER TABLE t ALTER COLUMN f TYPE VARCHAR(20)", "0A000").await;
    refuse("ALTER TABLE t ALTER COLUMN g TYPE VARCHAR(20)", "0A000").await;
    refuse("ALTER TABLE t ALTER COLUMN a TYPE VARCHAR(4)", "0A000").await;
    // inside a transaction block, whatever the column
    c.batch_execute("BEGIN").await.unwrap();
    let e = c
        .batch_execute("ALTER TABLE t ALTER COLUMN a TYPE VARCHAR(20)")
        .await
        .unwrap_err();
    assert_eq!(db_err(&e).0, "25001");
    c.batch_execute("ROLLBACK").await.unwrap();
    // a multi-statement query is a transaction block too
    let e = c
        .batch_execute("SELECT 1; ALTER TABLE t ALTER COLUMN a TYPE VARCHAR(20)")
        .await
        .unwrap_err();
    assert_eq!(db_err(&e).0, "25001");
    // and the allowed case
    c.batch_execute("ALTER TABLE t ALTER COLUMN a TYPE VARCHAR(20)")
        .await
        .unwrap();
    assert_eq!(
        one(
            &c,
            "SELECT type FROM pg_table_def WHERE tablename = 't' AND \"column\" = 'a'"
        )
        .await
        .as_deref(),
        Some("character varying(20)")
    );
}

/// r_ALTER_TABLE ADD COLUMN with ENCODE (one column per statement; not a sort or dist key),
/// ALTER COLUMN ENCODE, ALTER DISTKEY / SORTKEY: all read back from pg_table_def.
#[tokio::test]
async fn alter_table_keeps_the_catalog() {
    let db = Db::new("ddl_alter_catalog", None).await;
    let c = db.connect(Mode::Provisioned).await;
    c.batch_execute("CREATE TABLE t (id INT, a VARCHAR(10) ENCODE lzo) SORTKEY (id)")
        .await
        .unwrap();
    c.batch_execute("BEGIN; ALTER TABLE t ADD COLUMN b VARCHAR(30) ENCODE zstd; COMMIT")
        .await
        .unwrap();
    c.batch_execute("ALTER TABLE t ADD c BIGINT DEFAULT 0 NOT NULL")
        .await
        .unwrap();
    assert_eq!(
        db_err(
            &c.batch_execute("ALTER TABLE t ADD COLUMN d INT SORTKEY")
                .await
                .unwrap_err()
        )
        .0,
        "0A000"
    );
    assert_eq!(
        db_err(
            &c.batch_execute("ALTER TABLE t ADD COLUMN e BOOLEAN ENCODE az64")
                .await
                .unwrap_err()
        )
        .0,
        "0A000"
    );
    c.batch_execute("ALTER TABLE t ALTER COLUMN a ENCODE bytedict")
        .await
        .unwrap();
    assert!(
        c.batch_execute("ALTER TABLE t ALTER COLUMN a ENCODE bytedict")
            .await
            .is_err(),
        "same encoding again"
    );
    c.batch_execute("ALTER TABLE t ALTER DISTKEY a")
        .await
        .unwrap();
    c.batch_execute("ALTER TABLE t ALTER COMPOUND SORTKEY (b, id)")
        .await
        .unwrap();
    let got = rows(&c, "SELECT \"column\", TRIM(encoding), distkey, sortkey FROM pg_table_def WHERE tablename = 't' ORDER BY \"column\"").await;
    let o = |x: &str| Some(x.to_owned());
    assert_eq!(
        got,
        vec![
            vec![o("a"), o("bytedict"), o("t"), o("0")],
            vec![o("b"), o("none"), o("f"), o("1")],
            vec![o("c"), o("az64"), o("f"), o("0")],
            vec![o("id"), o("none"), o("f"), o("2")],
        ]
    );
}
