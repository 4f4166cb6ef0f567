//! Benchmark of the write path against the Kinesis emulator, in one run:
//!
//! 1. `Client::write` from 64 concurrent tasks: events/s, mean records per PutRecords call;
//! 2. the floor: a bare SDK loop sending pre-encoded 500-record PutRecords calls;
//! 3. the baseline: one PutRecord call per event, as the original gem did;
//! 4. CPU time per event of encode + enqueue on the caller's task.
//!
//! ```text
//! eval "$(scripts/services up)"
//! cargo run --release --example bench_write -- [events per phase, default 20000] [rounds, default 5]
//! ```
//!
//! Measured on the 2-core development machine (kinesalite 3.3.3 from `scripts/services`, other
//! builds running; `bench_write 20000 5`, three runs at load averages 2.9, 5.8 and 6.8):
//! Client::write 19,800 / 11,747 / 12,763 events/s against a floor of 23,839 / 14,883 /
//! 17,118 (median per-round ratio 0.83 / 0.82 / 0.71); one PutRecord per event 1,748 / 876 /
//! 1,921 events/s (the client is 6.6 to 13.4 times faster); 61 to 63.5 records per PutRecords
//! call; encode + enqueue 570 to 780 ns of CPU per event on the caller's thread, of which the
//! encoder is about 40 ns.
//!
//! The emulator and this process share the machine, so the figures are for comparison within
//! one run, not absolute; the client and the floor alternate round by round, so a passing load
//! weighs on both, and the medians are reported.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use redtrack::broker::{AnyBroker, KinesisBroker};
use redtrack::{Client, Config, RedTrackEvent};

/// The seed example's event.
#[derive(RedTrackEvent)]
#[redtrack(table = "bench_events", sortkey = "timestamp")]
pub struct BenchEvent {
    #[redtrack(type = "varchar(32)")]
    pub client_ip: String,
    pub timestamp: i32,
    #[redtrack(type = "varchar(128)")]
    pub message: Option<String>,
}

fn event(i: usize) -> BenchEvent {
    BenchEvent {
        client_ip: format!("10.0.{}.{}", (i / 256) % 256, i % 256),
        timestamp: 1_700_000_000 + i as i32,
        message: Some(format!(
            "bench event number {i}, a message of ordinary length"
        )),
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let events: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let rounds: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let tasks = 64;
    let shards = 4;
    let run = format!("bench{}", std::process::id());
    let base = Config::from_lookup(|k| match k {
        "REDTRACK_CLUSTER" => Some("bench".into()),
        "REDTRACK_DATABASE" => Some(run.clone()),
        _ => std::env::var(k).ok(),
    })?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let broker = KinesisBroker::from_client(kinesis.clone());
    let streams: Vec<String> = vec![
        base.stream_name(BenchEvent::TABLE_NAME),
        base.stream_name("bench_floor"),
        base.stream_name("bench_baseline"),
    ];
    for s in &streams {
        redtrack::broker::Broker::create_stream(&broker, s, shards).await?;
    }
    println!(
        "events per phase: {events}; rounds: {rounds}; writer tasks: {tasks}; shards: {shards}"
    );

    // 1 and 2 alternate, `rounds` times, so that a load on the shared machine weighs on both.
    let linger_ms: u64 = std::env::var("BENCH_LINGER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let writer = Config::builder()
        .cluster("bench")
        .database(run.clone())
        .with_linger(Duration::from_millis(linger_ms))
        .build()?;
    let client = Client::with_broker(writer, AnyBroker::Kinesis(broker.clone()));
    let entries: Vec<PutRecordsRequestEntry> = (0..events)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("{:032x}", rand::random::<u128>()))
                .data(Blob::new(event(i).to_json().unwrap_or_default()))
                .build()
        })
        .collect::<Result<_, _>>()?;
    let mut client_rates = Vec::new();
    let mut floor_rates = Vec::new();
    for _ in 0..rounds {
        // 1. Client::write from 64 tasks.
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let client = client.clone();
            handles.push(tokio::spawn(async move {
                for i in (t..events).step_by(tasks) {
                    client.write(&event(i)).await?;
                }
                Ok::<_, redtrack::Error>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        client.flush().await?;
        client_rates.push(rate(events, started.elapsed()));

        // 2. The floor: pre-encoded 500-record PutRecords calls, one after another.
        let started = Instant::now();
        for chunk in entries.chunks(500) {
            let out = kinesis
                .put_records()
                .stream_name(&streams[1])
                .set_records(Some(chunk.to_vec()))
                .send()
                .await?;
            assert_eq!(out.failed_record_count(), Some(0));
        }
        floor_rates.push(rate(events, started.elapsed()));
    }
    let stats = client.stats();
    let ratios: Vec<f64> = client_rates
        .iter()
        .zip(&floor_rates)
        .map(|(c, f)| c / f)
        .collect();
    let client_rate = median(&client_rates);
    let floor_rate = median(&floor_rates);

    // 3. The baseline: one PutRecord per event (fewer events: it is slow).
    let baseline_events = (events / 4).max(1);
    let started = Instant::now();
    for i in 0..baseline_events {
        kinesis
            .put_record()
            .stream_name(&streams[2])
            .partition_key(format!("{:032x}", rand::random::<u128>()))
            .data(Blob::new(event(i).to_json()?))
            .send()
            .await?;
    }
    let baseline_time = started.elapsed();
    let baseline_rate = rate(baseline_events, baseline_time);

    // 4. CPU per event on the caller: encode + enqueue, acknowledgements not awaited. The
    // linger keeps the batcher from competing for the CPU while the loop runs.
    let quiet = Config::builder()
        .cluster("bench")
        .database(run.clone())
        .with_linger(Duration::from_secs(60))
        .with_max_buffered_records(events + 1)
        .build()?;
    let client4 = Client::with_broker(quiet, AnyBroker::Kinesis(broker.clone()));
    let prepared: Vec<BenchEvent> = (0..events).map(event).collect();
    // On this thread only (block_in_place), so its CPU clock measures the loop.
    let (acks, enqueue_wall, enqueue_cpu) = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let mut acks = Vec::with_capacity(events);
            let cpu0 = thread_cpu();
            let started = Instant::now();
            for e in &prepared {
                acks.push(client4.enqueue(e).await?);
            }
            let wall = started.elapsed();
            Ok::<_, redtrack::Error>((acks, wall, thread_cpu().saturating_sub(cpu0)))
        })
    })?;
    let mut buf = Vec::with_capacity(256);
    let started = Instant::now();
    for e in &prepared {
        buf.clear();
        e.encode_json(&mut buf)?;
    }
    let encode_only = started.elapsed();
    client4.flush().await?;
    for a in acks {
        a.await?;
    }

    let per = |d: Duration| d.as_nanos() as f64 / events as f64;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| Client::write, {tasks} tasks (median of {rounds}) | {client_rate:.0} events/s (rounds: {}) |",
        list(&client_rates)
    );
    println!(
        "| floor: bare SDK, 500-record PutRecords, sequential (median) | {floor_rate:.0} events/s (rounds: {}) |",
        list(&floor_rates)
    );
    println!(
        "| baseline: one PutRecord per event, sequential | {baseline_rate:.0} events/s ({baseline_events} in {baseline_time:.2?}) |"
    );
    println!(
        "| client / floor, per round | median {:.2} (rounds: {}) |",
        median(&ratios),
        ratios
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("| client / baseline | {:.1} |", client_rate / baseline_rate);
    println!(
        "| PutRecords calls by the client | {} ({} records, {} retried) |",
        stats.calls, stats.records_sent, stats.records_retried
    );
    println!(
        "| mean records per PutRecords call | {:.1} |",
        stats.records_per_call()
    );
    println!(
        "| encode + enqueue per event, caller's thread | {:.0} ns CPU ({:.0} ns wall) |",
        per(enqueue_cpu),
        per(enqueue_wall)
    );
    println!("| of which encode alone | {:.0} ns |", per(encode_only));

    for s in &streams {
        broker.delete_stream(s).await?;
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// CPU time of the calling thread, in nanoseconds from Linux's `/proc/thread-self/schedstat`
/// (`stat`'s clock ticks are too coarse).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}
