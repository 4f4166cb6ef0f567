//! The loader's benchmark (issue 5, item 8). Each step is its own command so that peak memory
//! is the loader's alone; every command reads the usual `REDTRACK_*` / `AWS_*` variables.
//!
//! ```text
//! eval "$(scripts/services env)"
//! export REDTRACK_DATABASE=bench$RANDOM
//! cargo build --release --example bench_load
//! B=target/release/examples/bench_load
//! $B write 1000000 4          # events of test_events into the Kinesis emulator, 4 shards
//! $B drain-floor              # bare GetRecords loop over the same shards (the floor of (a))
//! $B load                     # the whole pipeline: Kinesis -> S3 stage -> PostgreSQL (a)
//! export REDTRACK_BROKER=file:/tmp/bb$RANDOM REDTRACK_STAGE=file:/tmp/bs$RANDOM
//! $B write 1000000 4          # the same events into the file broker
//! $B compare 3                # (b): load and COPY floor alternately, 3 rounds, medians, ratio
//! $B load                     # (c): peak RSS at 1,000,000 (and again after `write 100000 4`
//!                             #      into fresh dirs for 100,000)
//! $B copy-floor 1000000       # COPY FROM STDIN of the same rows straight into PostgreSQL
//! ```
//!
//! Record identities (issue 13), on and off in one run:
//!
//! ```text
//! $B write 1000000 4          # events with identities (the default)
//! $B write-plain 1000000 4    # the same events without (`with_record_identity(false)`), into
//!                             # the stream of database `<REDTRACK_DATABASE>_plain`
//! $B identity 3               # loads of the two streams alternately, 3 rounds: rates, ratio
//! ```
//!
//! `load` truncates `test_events` and forgets the stream's checkpoints and remembered record
//! identities first, loads until the stream is drained, and prints the rate, its CPU time and
//! the process's peak RSS (VmHWM).
//! `compare` does that and the COPY floor of as many rows in one process, alternately (so a
//! busy machine weighs on both alike), and prints each round's ratio (load rate / floor rate)
//! and their median; its peak RSS is taken after the first load, before the COPY floor builds
//! its rows.
mod seed;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use redtrack::broker::{AnyBroker, Broker};
use redtrack::{Client, Config, Loader};
use seed::TestEvent;

fn event(i: u64) -> TestEvent {
    TestEvent {
        client_ip: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        timestamp: 1_700_000_000 + (i % 1_000_000) as i32,
        message: Some(format!("benchmark event number {i}")),
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Loads `test_events` from the start of its stream until drained (after truncating the table
/// and forgetting the stream's checkpoints): events, wall time, CPU time.
async fn run_load(
    config: Config,
    stream: &str,
) -> Result<(u64, Duration, f64), Box<dyn std::error::Error>> {
    let config = config
        .into_builder()
        .with_max_load_records(2_000_000)
        .with_max_load_bytes(4 << 30)
        .build()?;
    let loader = Loader::new(config).await?;
    loader.setup::<TestEvent>().await?;
    let url = std::env::var("REDTRACK_WAREHOUSE_URL")?;
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    pg.batch_execute("TRUNCATE test_events").await?;
    // Forget earlier runs' checkpoints: load the stream from its start.
    pg.execute(
        "DELETE FROM kinesis_loads WHERE stream_name = $1",
        &[&stream],
    )
    .await?;
    let ids = redtrack::loader::dedupe_table(TestEvent::TABLE_NAME);
    pg.execute(
        &format!("DELETE FROM {ids} WHERE stream_name = $1"),
        &[&stream],
    )
    .await?;
    let start = Instant::now();
    let cpu = cpu_seconds();
    let mut n = 0;
    loop {
        let r = loader.load::<TestEvent>().await?;
        n += r.records;
        if r.twins > 0 {
            return Err(format!("{} twins in a benchmark stream", r.twins).into());
        }
        eprintln!(
            "  load: {} records in {:.2} s (read+stage {:.2} s, upload {:.2} s, commit {:.2} s)",
            r.records,
            r.elapsed.as_secs_f64(),
            r.read_elapsed.as_secs_f64(),
            r.upload_elapsed.as_secs_f64(),
            r.commit_elapsed.as_secs_f64()
        );
        // A pass that no limit cut short read the stream to its end.
        if !r.more {
            break;
        }
    }
    Ok((n, start.elapsed(), cpu_seconds() - cpu))
}

/// COPY FROM STDIN of `n` events' rows straight into `test_events` (truncated first); only
/// the COPY is timed.
async fn run_copy_floor(n: u64) -> Result<(u64, Duration), Box<dyn std::error::Error>> {
    let url = std::env::var("REDTRACK_WAREHOUSE_URL")?;
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    pg.batch_execute(&TestEvent::schema().create_table_sql(redtrack::Dialect::Postgres))
        .await?;
    pg.batch_execute("TRUNCATE test_events").await?;
    // The rows, made before the clock starts: only COPY is timed.
    let mut chunks = Vec::new();
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let e = event(i);
        use std::io::Write;
        writeln!(
            buf,
            "{}\t{}\t{}",
            e.client_ip,
            e.timestamp,
            e.message.as_deref().unwrap_or("\\N")
        )?;
        if buf.len() >= 1 << 20 {
            chunks.push(Bytes::from(std::mem::take(&mut buf)));
        }
    }
    chunks.push(Bytes::from(buf));
    let start = Instant::now();
    let sink = pg
        .copy_in::<_, Bytes>("COPY test_events (client_ip, timestamp, message) FROM STDIN")
        .await?;
    futures::pin_mut!(sink);
    for c in chunks {
        sink.send(c).await?;
    }
    let rows = sink.finish().await?;
    Ok((rows, start.elapsed()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = Config::from_env()?;
    let stream = config.stream_name(TestEvent::TABLE_NAME);
    // The stream of the same events written without record identities.
    let plain = config
        .clone()
        .into_builder()
        .database(format!("{}_plain", config.database()))
        .with_record_identity(false)
        .build()?;
    match args.first().map(String::as_str) {
        Some(cmd @ ("write" | "write-plain")) => {
            let n: u64 = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
            let shards: u32 = args.get(2).map_or(Ok(4), |s| s.parse())?;
            let config = if cmd == "write" { config } else { plain };
            let client = Client::new(config).await?;
            client.create_stream::<TestEvent>(shards).await?;
            let start = Instant::now();
            for i in 0..n {
                drop(client.enqueue(&event(i)).await?);
            }
            client.flush().await?;
            let d = start.elapsed();
            println!(
                "write: {n} events in {:.1} s = {:.0} events/s",
                d.as_secs_f64(),
                rate(n, d)
            );
        }
        Some("drain-floor") => {
            let broker = AnyBroker::from_config(&config).await?;
            let AnyBroker::Kinesis(kinesis) = &broker else {
                return Err("drain-floor needs REDTRACK_BROKER=kinesis".into());
            };
            let sdk = kinesis.sdk_client().clone();
            let shards = broker.list_shards(&stream).await?;
            let start = Instant::now();
            let mut tasks = Vec::new();
            for shard in shards {
                let sdk = sdk.clone();
                let stream = stream.clone();
                tasks.push(tokio::spawn(async move {
                    let mut it = sdk
                        .get_shard_iterator()
                        .stream_name(&stream)
                        .shard_id(&shard.shard_id)
                        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                        .send()
                        .await?
                        .shard_iterator;
                    let mut n = 0u64;
                    while let Some(i) = it {
                        let out = sdk
                            .get_records()
                            .shard_iterator(i)
                            .limit(10_000)
                            .send()
                            .await?;
                        n += out.records.len() as u64;
                        if out.records.is_empty() && out.millis_behind_latest.unwrap_or(0) == 0 {
                            break;
                        }
                        it = out.next_shard_iterator;
                    }
                    Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(n)
                }));
            }
            let mut n = 0;
            for t in tasks {
                n += t.await?.map_err(|e| e.to_string())?;
            }
            let d = start.elapsed();
            println!(
                "drain-floor: {n} records in {:.1} s = {:.0} records/s",
                d.as_secs_f64(),
                rate(n, d)
            );
        }
        Some("load") => {
            let (n, d, cpu) = run_load(config, &stream).await?;
            println!(
                "load: {n} events in {:.2} s = {:.0} events/s; CPU {cpu:.2} s; peak RSS {} MiB",
                d.as_secs_f64(),
                rate(n, d),
                peak_rss_kib() / 1024
            );
        }
        Some("copy-floor") => {
            let n: u64 = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
            let (rows, d) = run_copy_floor(n).await?;
            println!(
                "copy-floor: {rows} rows in {:.2} s = {:.0} rows/s",
                d.as_secs_f64(),
                rate(rows, d)
            );
        }
        Some("identity") => {
            // Identities on and off in one process, alternately, so a busy machine weighs on
            // both alike; each round's ratio pairs the two loads next to each other.
            let rounds: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
            let plain_stream = plain.stream_name(TestEvent::TABLE_NAME);
            let (mut on, mut off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            let mut cpus = Vec::new();
            for round in 1..=rounds.max(1) {
                // Which goes first alternates, so neither always finds the caches warm.
                let ((n, d, cpu), (m, e, cpu_off)) = if round % 2 == 1 {
                    let on = run_load(config.clone(), &stream).await?;
                    (on, run_load(plain.clone(), &plain_stream).await?)
                } else {
                    let off = run_load(plain.clone(), &plain_stream).await?;
                    (run_load(config.clone(), &stream).await?, off)
                };
                let ratio = rate(n, d) / rate(m, e);
                println!(
                    "round {round}: identities on {n} events in {:.2} s = {:.0}/s (CPU {cpu:.2} s); \
                     off {m} events in {:.2} s = {:.0}/s (CPU {cpu_off:.2} s); ratio {ratio:.3}",
                    d.as_secs_f64(),
                    rate(n, d),
                    e.as_secs_f64(),
                    rate(m, e),
                );
                on.push(rate(n, d));
                off.push(rate(m, e));
                ratios.push(ratio);
                cpus.push(cpu / cpu_off);
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "identity: median of {} rounds: on {:.0} events/s, off {:.0} events/s, ratio \
                 {:.3} (goal >= 0.90); loader CPU on/off {:.3}; peak RSS {} MiB",
                ratios.len(),
                median(&mut on),
                median(&mut off),
                median(&mut ratios),
                median(&mut cpus),
                peak_rss_kib() / 1024
            );
        }
        Some("compare") => {
            // (b) in one run: the load and the COPY floor of as many rows, alternately, so
            // both see the same machine; the medians decide.
            let rounds: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
            let (mut loads, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            let mut peak = 0;
            for round in 1..=rounds.max(1) {
                let (n, d, cpu) = run_load(config.clone(), &stream).await?;
                if round == 1 {
                    // Before the COPY floor builds its rows: the loader's peak alone.
                    peak = peak_rss_kib() / 1024;
                }
                let (rows, f) = run_copy_floor(n).await?;
                let ratio = rate(n, d) / rate(rows, f);
                println!(
                    "round {round}: load {n} events in {:.2} s = {:.0}/s (CPU {cpu:.2} s); \
                     copy-floor {rows} rows in {:.2} s = {:.0}/s; ratio {ratio:.2}",
                    d.as_secs_f64(),
                    rate(n, d),
                    f.as_secs_f64(),
                    rate(rows, f),
                );
                loads.push(rate(n, d));
                floors.push(rate(rows, f));
                ratios.push(ratio);
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            // Each round's ratio pairs a load with the floor measured right after it, so a
            // machine that gets busier or quieter between rounds weighs on both alike.
            println!(
                "compare: median of {} rounds: ratio {:.2} (goal >= 0.50); load {:.0} events/s, \
                 copy-floor {:.0} rows/s; loader peak RSS {peak} MiB",
                ratios.len(),
                median(&mut ratios),
                median(&mut loads),
                median(&mut floors),
            );
        }
        _ => {
            eprintln!(
                "usage: bench_load write [N] [SHARDS] | write-plain [N] [SHARDS] | drain-floor | load \
                 | copy-floor [N] | compare [ROUNDS] | identity [ROUNDS]"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
