//! Two tables loaded side by side (issue 14, item 5): N events in each of two tables' streams,
//! loaded through `redshift-local` in the Redshift dialect, each table alone and then both at
//! once, alternately for a few rounds; prints each round, the medians, and "both at once" as a
//! fraction of "the sum of each alone".
//!
//! ```text
//! eval "$(scripts/services up)"
//! cargo build --release --example bench_tables
//! target/release/examples/bench_tables 300000 3            # REDTRACK_REDSHIFT_URL: SNAPSHOT
//! REDTRACK_BENCH_ISOLATION=SERIALIZABLE target/release/examples/bench_tables 300000 3
//! REDTRACK_BENCH_SERVERLESS_FILES=1 target/release/examples/bench_tables 300000 3
//! ```
//!
//! Each load starts from an emptied table and forgotten checkpoints, so every round loads the
//! same N events per table. It reads the usual variables (`REDTRACK_STAGE`, `AWS_*`,
//! `REDTRACK_REDSHIFT_URL`), writes into a file broker in a temporary directory, and makes a
//! database of its own through the stand-in (dropped at the end).
mod bench;
mod seed;

use std::time::{Duration, Instant};

use bench::{arg, connect, median, with_db};
use redtrack::{BrokerKind, Client, Config, Dialect, Loader, RedTrackEvent};
use seed::TestEvent;

/// The second table: the same columns under another name.
#[derive(RedTrackEvent)]
#[redtrack(table = "other_events", sortkey = "timestamp")]
struct OtherEvent {
    #[redtrack(type = "varchar(32)")]
    client_ip: String,
    timestamp: i32,
    #[redtrack(type = "varchar(128)")]
    message: Option<String>,
}

/// Empties `E`'s table and forgets its stream's checkpoints and loaded identities, so the next
/// load loads it all.
async fn reset<E: RedTrackEvent>(
    loader: &Loader,
    db: &tokio_postgres::Client,
) -> Result<(), Box<dyn std::error::Error>> {
    let stream = loader.config().stream_name(E::TABLE_NAME);
    db.batch_execute(&format!("TRUNCATE {}", E::TABLE_NAME))
        .await?;
    db.execute(
        "DELETE FROM kinesis_loads WHERE stream_name = $1",
        &[&stream],
    )
    .await?;
    // The loaded records' identities too, or the next load drops every record as a twin of
    // one loaded before.
    db.execute(
        &format!(
            "DELETE FROM redtrack_ids_{} WHERE stream_name = $1",
            E::TABLE_NAME
        ),
        &[&stream],
    )
    .await?;
    Ok(())
}

/// One load of `E`'s table: its time.
async fn load_one<E: RedTrackEvent>(
    loader: &Loader,
    n: u64,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let report = loader.load::<E>().await?;
    assert_eq!(report.records, n, "{}: {report:?}", E::TABLE_NAME);
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = arg(1, 300_000)?;
    let rounds: usize = arg(2, 3)?;
    let isolation = std::env::var("REDTRACK_BENCH_ISOLATION").unwrap_or_else(|_| "SNAPSHOT".into());
    // REDTRACK_BENCH_SERVERLESS_FILES=n: the stand-in as Serverless, n files per load (1: one
    // converting thread per COPY, so two loads at once can use both of two cores).
    let files: Option<usize> = std::env::var("REDTRACK_BENCH_SERVERLESS_FILES")
        .ok()
        .map(|v| v.parse())
        .transpose()?;
    let url_var = match files {
        Some(_) => "REDTRACK_REDSHIFT_SERVERLESS_URL",
        None => "REDTRACK_REDSHIFT_URL",
    };
    let rs_url = std::env::var(url_var)
        .map_err(|_| format!("{url_var} is not set; run `eval \"$(scripts/services up)\"`"))?;
    let stage = std::env::var("REDTRACK_STAGE")?;
    let id = format!("bench_tables_{}", std::process::id());
    let dir = std::env::temp_dir().join(&id);
    connect(&rs_url)
        .await?
        .batch_execute(&format!("CREATE DATABASE {id} ISOLATION LEVEL {isolation}"))
        .await?;
    let url = with_db(&rs_url, &id);
    let config = Config::builder()
        .cluster("bench")
        .database(&id)
        .broker(BrokerKind::File(dir.join("broker")))
        .stage(redtrack::StageLocation::parse(&format!(
            "{}/{id}",
            stage.trim_end_matches('/')
        ))?)
        .warehouse_url(&url)
        .dialect(Dialect::Redshift)
        .with_max_load_records(n)
        .with_serverless_files(files.unwrap_or(16))
        .build()?;

    let client = Client::new(config.clone()).await?;
    client.create_stream::<TestEvent>(2).await?;
    client.create_stream::<OtherEvent>(2).await?;
    for i in 0..n {
        let (ip, t) = (format!("10.0.{}.{}", (i >> 8) & 255, i & 255), i as i32);
        let message = Some(format!("side by side event {i}"));
        drop(
            client
                .enqueue(&TestEvent {
                    client_ip: ip.clone(),
                    timestamp: t,
                    message: message.clone(),
                })
                .await?,
        );
        drop(
            client
                .enqueue(&OtherEvent {
                    client_ip: ip,
                    timestamp: t,
                    message,
                })
                .await?,
        );
    }
    client.close().await?;
    let loader = Loader::new(config.clone()).await?;
    loader.setup::<TestEvent>().await?;
    loader.setup::<OtherEvent>().await?;
    let (db_a, db_b) = (connect(&url).await?, connect(&url).await?);
    println!(
        "{n} events in each of two tables, {isolation} isolation, {}, {rounds} rounds:",
        match files {
            Some(f) => format!("Serverless, {f} files per load"),
            None => "provisioned, a file per slice".into(),
        }
    );

    let (mut sums, mut boths) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        reset::<TestEvent>(&loader, &db_a).await?;
        let a = load_one::<TestEvent>(&loader, n).await?;
        reset::<OtherEvent>(&loader, &db_b).await?;
        let b = load_one::<OtherEvent>(&loader, n).await?;
        // Both at once: reset both first, then start both loads together.
        reset::<TestEvent>(&loader, &db_a).await?;
        reset::<OtherEvent>(&loader, &db_b).await?;
        let started = Instant::now();
        let (x, y) = tokio::join!(
            load_one::<TestEvent>(&loader, n),
            load_one::<OtherEvent>(&loader, n)
        );
        let (x, y) = (x?, y?);
        let both = started.elapsed();
        println!(
            "  round {round}: alone {:.2} s + {:.2} s = {:.2} s; at once {:.2} s ({:.2} s and \
             {:.2} s each): {:.0}% of the sum",
            a.as_secs_f64(),
            b.as_secs_f64(),
            (a + b).as_secs_f64(),
            both.as_secs_f64(),
            x.as_secs_f64(),
            y.as_secs_f64(),
            100.0 * both.as_secs_f64() / (a + b).as_secs_f64()
        );
        sums.push(a + b);
        boths.push(both);
    }
    let (sum, both) = (median(sums), median(boths));
    println!(
        "median: the sum of each alone {:.2} s, both at once {:.2} s ({:.0}% of the sum)",
        sum.as_secs_f64(),
        both.as_secs_f64(),
        100.0 * both.as_secs_f64() / sum.as_secs_f64()
    );
    drop((db_a, db_b, loader));
    let _ = connect(&rs_url)
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS {id} WITH (FORCE)"))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
