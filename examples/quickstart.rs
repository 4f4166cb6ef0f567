//! The main job end to end, with the seed example's tables: create the streams and tables, write
//! events through the broker, load them through the stage into the warehouse, and show what was
//! loaded.
//!
//! ```text
//! eval "$(scripts/services up)"
//! cargo run --example quickstart -- [EVENTS]     # default 1000 of each table
//! ```
mod sample;
mod seed;

use std::time::Instant;

use redtrack::warehouse::{AnyWarehouse, Warehouse};
use redtrack::{Client, Config, Loader};
use seed::{TestAllTypes, TestEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,redtrack::truncation=off")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let events: u32 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("EVENTS `{n}` is not a count"))?,
        None => 1000,
    };
    let config = Config::from_env()?;
    println!("config: {config:?}\n");

    // 1. Set up: the streams, kinesis_loads and the tables (all idempotent).
    let client = Client::new(config.clone()).await?;
    client.create_stream::<TestEvent>(2).await?;
    client.create_stream::<TestAllTypes>(2).await?;
    let loader = Loader::new(config.clone()).await?;
    loader.setup::<TestEvent>().await?;
    loader.setup::<TestAllTypes>().await?;
    println!("{};\n", TestEvent::create_table_sql());
    println!("{};\n", TestAllTypes::create_table_sql());

    // 2. Write: many concurrent writers, as a web application's requests would be.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16u32 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut i = w;
            while i < events {
                client.write(&sample::test_event(i)).await?;
                client.write(&sample::all_types(i)).await?;
                i += 16;
            }
            Ok::<_, redtrack::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    client.close().await?;
    println!(
        "wrote {} events to {} and {} in {:.2} s ({} values truncated to their column's bytes)",
        2 * events,
        config.stream_name(TestEvent::TABLE_NAME),
        config.stream_name(TestAllTypes::TABLE_NAME),
        started.elapsed().as_secs_f64(),
        redtrack::encode::truncations()
    );

    // 3. Load: one pass per table, exactly once.
    let reports = [
        loader.load::<TestEvent>().await?,
        loader.load::<TestAllTypes>().await?,
    ];
    for report in &reports {
        println!(
            "loaded {} events ({} rejected) from {} shards in {:.2} s, manifest {}",
            report.records,
            report.rejected,
            report.ranges.len(),
            report.elapsed.as_secs_f64(),
            report.manifest_url.as_deref().unwrap_or("-")
        );
    }

    // 4. Show what is in the warehouse.
    let db = AnyWarehouse::from_config(&config).await?.connect().await?;
    for (table, report) in [TestEvent::TABLE_NAME, TestAllTypes::TABLE_NAME]
        .into_iter()
        .zip(&reports)
    {
        let row = db
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await?;
        let rows = row.get::<_, i64>(0);
        // Each run writes the same sample events: rows that repeat come from earlier runs,
        // not from a load that loaded twice.
        let earlier = if u64::try_from(rows).is_ok_and(|r| r > report.records) {
            " (the rest from earlier runs, which wrote the same sample events)"
        } else {
            ""
        };
        println!(
            "{table}: {rows} rows in the table, {} of them loaded by this run{earlier}",
            report.records
        );
    }
    // NULL as psql shows it, not as Rust's `None`.
    let shown = |v: Option<String>| v.unwrap_or_else(|| "NULL".to_owned());
    println!();
    println!("first rows of test_events (client_ip, timestamp, message):");
    let rows = db
        .query(
            "SELECT client_ip, \"timestamp\", message FROM test_events \
             ORDER BY \"timestamp\" LIMIT 3",
            &[],
        )
        .await?;
    for r in rows {
        println!(
            "  {} | {} | {}",
            r.get::<_, String>(0),
            r.get::<_, i32>(1),
            shown(r.get(2))
        );
    }
    println!(
        "first rows of test_all_types (test_integer, test_decimal, test_varchar, test_timestamp):"
    );
    let rows = db
        .query(
            "SELECT test_integer, CAST(test_decimal AS VARCHAR(64)), test_varchar, \
             CAST(test_timestamp AS VARCHAR(64)) FROM test_all_types ORDER BY test_integer LIMIT 3",
            &[],
        )
        .await?;
    for r in rows {
        println!(
            "  {} | {} | {} | {}",
            r.get::<_, i32>(0),
            shown(r.get(1)),
            r.get::<_, String>(2),
            shown(r.get(3))
        );
    }
    let loads = db
        .query_one("SELECT COUNT(*) FROM kinesis_loads", &[])
        .await?;
    println!(
        "\nkinesis_loads: {} ranges recorded",
        loads.get::<_, i64>(0)
    );
    Ok(())
}
