//! Prints every Redshift statement redtrack generates, each followed by `;` and a newline, so an
//! independent parser can check them (`scripts/check-sql` runs sqlfluff's redshift dialect on
//! this output). Add a section here for every new kind of statement.
mod seed;

use redtrack::RedTrackEvent;

/// Every table shape the derive can produce that changes the DDL's grammar.
mod shapes {
    use redtrack::RedTrackEvent;

    /// Every column type, an encoding on each, DISTKEY and an interleaved sort key.
    #[derive(RedTrackEvent)]
    #[redtrack(
        table = "all_shapes",
        distkey = "user_id",
        interleaved_sortkey = "event_time, user_id"
    )]
    pub struct AllShapes {
        #[redtrack(encode = "az64")]
        pub user_id: i64,
        #[redtrack(encode = "az64")]
        pub event_time: chrono::NaiveDateTime,
        #[redtrack(type = "smallint", encode = "delta")]
        pub small: i16,
        #[redtrack(type = "numeric(18,4)", encode = "mostly32")]
        pub amount: Option<rust_decimal::Decimal>,
        #[redtrack(encode = "raw")]
        pub ratio: Option<f32>,
        #[redtrack(type = "float8", encode = "zstd")]
        pub score: Option<f64>,
        #[redtrack(encode = "runlength")]
        pub flag: bool,
        #[redtrack(type = "char(2)", encode = "bytedict")]
        pub country: String,
        #[redtrack(type = "varchar(max)", encode = "text32k")]
        pub body: Option<String>,
        #[redtrack(encode = "lzo")]
        pub day: Option<chrono::NaiveDate>,
        #[redtrack(encode = "az64")]
        pub at: Option<chrono::DateTime<chrono::Utc>>,
        pub time_of_day: Option<chrono::NaiveTime>,
        #[redtrack(encode = "raw")]
        pub payload: Option<serde_json::Value>,
        #[redtrack(rename = "user")]
        pub user_name: Option<String>,
        #[redtrack(rename = "select")]
        pub selected: Option<String>,
    }

    /// DISTSTYLE ALL with a compound sort key on two columns.
    #[derive(RedTrackEvent)]
    #[redtrack(table = "dist_all", diststyle = "all", sortkey = "a, b")]
    pub struct DistAll {
        pub a: i32,
        pub b: i32,
    }

    /// DISTSTYLE EVEN, no sort key.
    #[derive(RedTrackEvent)]
    #[redtrack(table = "dist_even", diststyle = "even")]
    pub struct DistEven {
        pub a: i32,
    }

    /// DISTSTYLE KEY spelled out.
    #[derive(RedTrackEvent)]
    #[redtrack(table = "dist_key", diststyle = "key", distkey = "a")]
    pub struct DistKey {
        pub a: i32,
    }

    /// DISTSTYLE AUTO.
    #[derive(RedTrackEvent)]
    #[redtrack(table = "dist_auto", diststyle = "auto")]
    pub struct DistAuto {
        pub a: i32,
    }
}

fn main() {
    let statements: Vec<String> = vec![
        // Tables (issue 2).
        seed::TestEvent::create_table_sql(),
        seed::TestAllTypes::create_table_sql(),
        shapes::AllShapes::create_table_sql(),
        <shapes::DistAll as RedTrackEvent>::create_table_sql(),
        shapes::DistEven::create_table_sql(),
        shapes::DistKey::create_table_sql(),
        shapes::DistAuto::create_table_sql(),
        // Loader and CLI statements go below.
    ];
    // The loader's statements (issue 5): bookkeeping DDL, checkpoint queries, LOCK, COPY.
    let statements = statements
        .into_iter()
        .chain(redtrack::__test::redshift_statements(
            seed::TestEvent::schema(),
        ));
    // The CLI's `migrate` (issue 6): ADD COLUMN (with an encoding) and widening a VARCHAR, as
    // planned against an older version of `all_shapes` in the warehouse.
    let migrations = migrate_statements();
    for sql in statements.chain(migrations) {
        println!("{sql};");
    }
}

/// What `migrate` plans for `all_shapes` when the warehouse has an older table: `body` was a
/// shorter VARCHAR and `amount` (ENCODE mostly32), `payload` and `user` did not exist yet.
fn migrate_statements() -> Vec<String> {
    use redtrack::migrate::{plan, WarehouseColumn};
    let schema = shapes::AllShapes::schema();
    let existing: Vec<WarehouseColumn> = schema
        .columns
        .iter()
        .filter(|c| !matches!(c.name, "amount" | "payload" | "user"))
        .map(|c| {
            let mut w = WarehouseColumn::new(c.name, "", c.nullable);
            w.data_type = match c.sql_type {
                redtrack::SqlType::Varchar { len } => {
                    w.char_len = Some(if c.name == "body" { 100 } else { len as i32 });
                    "character varying".into()
                }
                redtrack::SqlType::Char { len } => {
                    w.char_len = Some(i32::from(len));
                    "character".into()
                }
                other => other.sql(redtrack::Dialect::Postgres).to_lowercase(),
            };
            w
        })
        .collect();
    let plan = plan(schema, &existing);
    assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
    let statements = plan.statements(redtrack::Dialect::Redshift);
    assert_eq!(statements.len(), 4, "{statements:?}");
    statements
}
