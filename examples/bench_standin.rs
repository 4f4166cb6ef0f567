//! The Redshift stand-in's benchmark (issue 9, item 5): loads N events (default 1,000,000)
//! through `redshift-local` in the Redshift dialect, then COPYs the very same staged files
//! again, alternately through the stand-in (`COPY ... FROM 's3://.../manifest.json' ...
//! MANIFEST`) and with the PostgreSQL dialect (the runtime streaming them into `COPY FROM
//! STDIN`), and prints each round, the medians and their ratio.
//!
//! ```text
//! eval "$(scripts/services up)"
//! cargo build --release --example bench_standin
//! target/release/examples/bench_standin 1000000 3
//! ```
//!
//! It reads the usual variables (`REDTRACK_STAGE`, `AWS_*`, `REDTRACK_WAREHOUSE_URL` for
//! PostgreSQL, `REDTRACK_REDSHIFT_URL` for the stand-in), writes the events into a file broker
//! in a temporary directory, and makes two databases of its own (dropped at the end).
mod bench;
mod seed;

use std::time::{Duration, Instant};

use bench::{arg, connect, median, var, with_db};
use redtrack::stage::{AnyStage, Stage};
use redtrack::warehouse::{
    Connector, CopyRequest, PostgresWarehouse, RedshiftWarehouse, StagedFile, Warehouse,
};
use redtrack::{BrokerKind, Client, Config, Dialect, Loader};
use seed::TestEvent;

fn event(i: u64) -> TestEvent {
    TestEvent {
        client_ip: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        timestamp: 1_700_000_000 + (i % 1_000_000) as i32,
        message: Some(format!("benchmark event number {i}")),
    }
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// One COPY of `req` by `warehouse` into a freshly truncated `test_events`, committed.
async fn timed_copy<W: Warehouse>(
    warehouse: &W,
    req: &CopyRequest,
    stage: &AnyStage,
) -> Result<(u64, Duration), Box<dyn std::error::Error>> {
    let mut client = warehouse.connect().await?;
    client.batch_execute("TRUNCATE test_events").await?;
    let started = Instant::now();
    let txn = client.transaction().await?;
    let outcome = warehouse.copy(&txn, req, stage).await?;
    txn.commit().await?;
    Ok((outcome.loaded, started.elapsed()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = arg(1, 1_000_000)?;
    let rounds: usize = arg(2, 3)?;
    let id = format!("bench_standin_{}", std::process::id());
    let pg_url = var("REDTRACK_WAREHOUSE_URL")?;
    let rs_url = var("REDTRACK_REDSHIFT_URL")?;
    let stage_url = var("REDTRACK_STAGE")?;
    let dir = std::env::temp_dir().join(&id);

    // Two databases: one through the stand-in (Redshift's CREATE DATABASE), one in PostgreSQL.
    connect(&rs_url)
        .await?
        .batch_execute(&format!("CREATE DATABASE {id}_rs"))
        .await?;
    connect(&pg_url)
        .await?
        .batch_execute(&format!("CREATE DATABASE {id}_pg"))
        .await?;
    let config = Config::builder()
        .cluster("bench")
        .database(&id)
        .broker(BrokerKind::File(dir.join("broker")))
        .stage(redtrack::StageLocation::parse(&format!(
            "{}/{id}",
            stage_url.trim_end_matches('/')
        ))?)
        .warehouse_url(with_db(&rs_url, &format!("{id}_rs")))
        .dialect(Dialect::Redshift)
        .with_max_load_records(n)
        .build()?;

    let started = Instant::now();
    let client = Client::new(config.clone()).await?;
    client.create_stream::<TestEvent>(4).await?;
    for i in 0..n {
        drop(client.enqueue(&event(i)).await?);
    }
    client.close().await?;
    println!(
        "wrote {n} events into the file broker in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 1. The whole load through the stand-in.
    let loader = Loader::new(config.clone()).await?;
    loader.setup::<TestEvent>().await?;
    let report = loader.load::<TestEvent>().await?;
    assert_eq!(report.records, n, "the load through the stand-in");
    println!(
        "load through redshift-local: {} events in {:.2} s ({:.0}/s): read+stage {:.2} s, \
         upload {:.2} s, COPY+commit {:.2} s",
        report.records,
        report.elapsed.as_secs_f64(),
        rate(report.records, report.elapsed),
        report.read_elapsed.as_secs_f64(),
        report.upload_elapsed.as_secs_f64(),
        report.commit_elapsed.as_secs_f64()
    );

    // 2. The same staged files, COPYed again by each dialect, alternately.
    let stage = AnyStage::from_config(&config).await?;
    let manifest_url = report
        .manifest_url
        .clone()
        .ok_or("the load staged nothing")?;
    let base = stage.url("");
    let folder = manifest_url
        .strip_prefix(&base)
        .and_then(|k| k.strip_suffix("/manifest.json"))
        .ok_or("the manifest is not in the stage")?
        .to_owned();
    let files: Vec<StagedFile> = stage
        .list(&folder)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with("manifest.json"))
        .map(|key| StagedFile {
            url: stage.url(&key),
            key,
            lines: 0,
        })
        .collect();
    let req = CopyRequest {
        table: TestEvent::schema(),
        load_id: "bench".into(),
        folder,
        manifest_url,
        files,
        max_errors: 0,
    };
    let redshift = RedshiftWarehouse::new(Connector::new(&config_url(&config))?, &config);
    let postgres = PostgresWarehouse::new(Connector::new(&with_db(&pg_url, &format!("{id}_pg")))?);
    connect(&with_db(&pg_url, &format!("{id}_pg")))
        .await?
        .batch_execute(&TestEvent::schema().create_table_sql(Dialect::Postgres))
        .await?;
    println!(
        "{} staged files ({} events), COPYed {rounds} times by each, alternately:",
        req.files.len(),
        n
    );
    let (mut rs_times, mut pg_times) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (rs_rows, rs) = timed_copy(&redshift, &req, &stage).await?;
        let (pg_rows, pg) = timed_copy(&postgres, &req, &stage).await?;
        assert_eq!((rs_rows, pg_rows), (n, n), "both COPYs load every row");
        println!(
            "  round {round}: redshift-local {:.2} s ({:.0}/s), postgres dialect {:.2} s ({:.0}/s)",
            rs.as_secs_f64(),
            rate(n, rs),
            pg.as_secs_f64(),
            rate(n, pg)
        );
        rs_times.push(rs);
        pg_times.push(pg);
    }
    let (rs, pg) = (median(rs_times), median(pg_times));
    println!(
        "median: redshift-local {:.2} s ({:.0} events/s), postgres dialect {:.2} s ({:.0} \
         events/s); the stand-in takes {:.2}x the PostgreSQL dialect's time",
        rs.as_secs_f64(),
        rate(n, rs),
        pg.as_secs_f64(),
        rate(n, pg),
        rs.as_secs_f64() / pg.as_secs_f64()
    );

    // Clean up: the databases and the broker's files.
    for (url, db) in [(&pg_url, format!("{id}_pg")), (&pg_url, format!("{id}_rs"))] {
        let _ = connect(url)
            .await?
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The warehouse URL of `config` (the stand-in's, with the benchmark's database).
fn config_url(config: &Config) -> String {
    std::env::var("REDTRACK_REDSHIFT_URL")
        .map(|u| with_db(&u, &format!("{}_rs", config.database())))
        .unwrap_or_default()
}
