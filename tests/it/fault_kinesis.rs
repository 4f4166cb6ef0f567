//! Failures Kinesis produces and no emulator does: a fault injector, an HTTP proxy on loopback
//! between the real SDK and the emulator, fails and throttles a share of the records of
//! PutRecords calls (the records it fails never reach the emulator, as in Kinesis) and throttles
//! some whole calls, closes the connection on a few (a network failure before the emulator saw
//! the call); it also throttles GetRecords and pages ListShards one shard at a time.
//! Every event acknowledged to its writer must be in the stream, exactly once;
//! every event that was not must have reached its writer as an error with the Kinesis code.
//!
//! In its other mode ([`Faults::losing`]) the injector lets a share of PutRecords calls reach
//! the emulator and then loses their answers (closes the connection, or answers after the
//! client gave up): the records are stored and the client sends them again, so the stream holds
//! twins. It can hold those retries until the test releases them, so that the twins land after
//! a load. `exactly_once` uses it.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redtrack::broker::{AnyBroker, Broker, ShardReader, StartingPosition};
use redtrack::{Client, Error, RedTrackEvent};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(RedTrackEvent)]
#[redtrack(table = "fault_events")]
pub struct FaultEvent {
    pub id: i32,
}

/// Events whose id is `ALWAYS_DENIED (mod 50)` fail with a non-retryable code on every attempt.
const ALWAYS_DENIED: i64 = 7;
/// Events whose id is `ALWAYS_THROTTLED (mod 50)` are throttled on every attempt.
const ALWAYS_THROTTLED: i64 = 13;
/// Every other record is throttled with this probability (percent) on each attempt.
const THROTTLE_PERCENT: u64 = 30;
/// This share (percent) of whole PutRecords calls is refused with a throttling error.
const CALL_THROTTLE_PERCENT: u64 = 10;
/// This share (percent) of PutRecords calls meets a closed connection instead of an answer.
const DROP_PERCENT: u64 = 3;
/// This share (percent) of GetRecords calls is refused with a throttling error.
const GET_THROTTLE_PERCENT: u64 = 40;

#[derive(Default)]
pub(crate) struct Counts {
    calls: AtomicU64,
    calls_throttled: AtomicU64,
    records_failed: AtomicU64,
    gets_throttled: AtomicU64,
    list_pages: AtomicU64,
    dropped: AtomicU64,
    /// Calls stored by the emulator whose answers were lost (connection closed, or answered
    /// after the client's attempt timeout).
    pub(crate) answers_lost: AtomicU64,
    /// Of those, the ones answered late rather than cut off.
    pub(crate) answers_late: AtomicU64,
    /// Retries of lost calls that waited for the test's release, and their records.
    pub(crate) retries_held: AtomicU64,
    pub(crate) records_held: AtomicU64,
}

/// What the injector does to the calls that pass it.
pub(crate) struct Faults {
    /// Refuse, throttle and fail records, throttle GetRecords, page ListShards (the first
    /// tests' faults); none of the faults below.
    refusals: bool,
    /// This share (percent) of PutRecords calls reaches the emulator, and then its answer is
    /// lost: half the time the connection closes, half the time the answer comes after `late`.
    lose_percent: u64,
    /// At most this many answers are lost (held retries each keep one of the client's 16
    /// calls under way busy: more would stop it).
    max_lost: u64,
    /// How late a late answer comes (longer than the client's attempt timeout); `None`: lost
    /// answers are always cut off.
    late: Option<Duration>,
    /// Retries of lost calls wait until this turns `true` before they reach the emulator.
    hold_retries: Option<tokio::sync::watch::Receiver<bool>>,
    /// The (partition key, data) of every record of a lost call: a later call carrying one is
    /// its retry (never lost again, so each event is stored at most twice).
    lost: Mutex<HashSet<(String, String)>>,
}

impl Faults {
    /// The first tests' refusals and throttles.
    fn refusing() -> Faults {
        Faults {
            refusals: true,
            lose_percent: 0,
            max_lost: 0,
            late: None,
            hold_retries: None,
            lost: Mutex::default(),
        }
    }

    /// Loses the answers of `percent` of PutRecords calls after the emulator stored them: cuts
    /// the connection off, or (half the time, with `late`) answers that much later. With `hold`,
    /// their retries wait for it to be `true` (and at most 8 answers are lost).
    pub(crate) fn losing(
        percent: u64,
        late: Option<Duration>,
        hold: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Faults {
        Faults {
            refusals: false,
            lose_percent: percent,
            max_lost: if hold.is_some() { 8 } else { u64::MAX },
            late,
            hold_retries: hold,
            lost: Mutex::default(),
        }
    }
}

/// Writes one HTTP/1.1 message in one write (two small writes would meet Nagle's algorithm).
async fn send(to: &mut TcpStream, head: &str, body: &[u8]) -> std::io::Result<()> {
    let mut msg = with_length(head, body.len());
    msg.extend_from_slice(body);
    to.write_all(&msg).await
}

/// One HTTP/1.1 message: the head (start line and headers, without the blank line) and body.
async fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = header("content-length") {
        let n: usize = n.parse().map_err(std::io::Error::other)?;
        body.resize(n, 0);
        r.read_exact(&mut body).await?;
    }
    Ok(Some((head, body)))
}

/// The head with its body headers replaced by a Content-Length for `len` bytes.
fn with_length(head: &str, len: usize) -> Vec<u8> {
    let mut out = String::new();
    for l in head.lines() {
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-length: {len}\r\n\r\n"));
    out.into_bytes()
}

fn id_of(record: &Value) -> Option<i64> {
    let data = base64_decode(record["Data"].as_str()?)?;
    serde_json::from_slice::<Value>(&data).ok()?["id"].as_i64()
}

/// Base64 decoding without another dependency.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = acc << 6 | T.iter().position(|&t| t == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// One PutRecords call under [`Faults::losing`]: reaches the emulator (after waiting for the
/// release if it is the retry of a lost call and retries are held), then, for a share of calls
/// that are not retries, loses the answer. `Ok(false)`: the connection is to close.
async fn lose_answers(
    client: &mut BufReader<TcpStream>,
    up: &mut BufReader<TcpStream>,
    (head, body): (&str, &[u8]),
    faults: &Faults,
    counts: &Counts,
) -> std::io::Result<bool> {
    let req: Value = serde_json::from_slice(body).map_err(std::io::Error::other)?;
    let prints: Vec<(String, String)> = req["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("PartitionKey"), s("Data"))
        })
        .collect();
    let retry = {
        let lost = faults.lost.lock().unwrap();
        prints.iter().any(|p| lost.contains(p))
    };
    if retry {
        if let Some(hold) = &faults.hold_retries {
            counts.retries_held.fetch_add(1, Ordering::SeqCst);
            counts
                .records_held
                .fetch_add(prints.len() as u64, Ordering::SeqCst);
            let mut hold = hold.clone();
            let _ = hold.wait_for(|released| *released).await;
        }
    }
    send(up.get_mut(), head, body).await?;
    let (rhead, rbody) = read_message(up)
        .await?
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let lose = !retry
        && rhead.starts_with("HTTP/1.1 200")
        && rand::random_range(0..100) < faults.lose_percent
        && counts
            .answers_lost
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < faults.max_lost).then_some(n + 1)
            })
            .is_ok();
    if lose {
        faults.lost.lock().unwrap().extend(prints);
        match faults.late {
            Some(late) if rand::random::<bool>() => {
                counts.answers_late.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(late).await;
            }
            // The connection closes: the client hears nothing.
            _ => return Ok(false),
        }
    }
    send(client.get_mut(), &rhead, rbody.as_ref()).await?;
    Ok(true)
}

async fn proxy_connection(
    client: TcpStream,
    upstream: String,
    counts: Arc<Counts>,
    faults: Arc<Faults>,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let up = TcpStream::connect(&upstream).await?;
    up.set_nodelay(true)?;
    let mut client = BufReader::new(client);
    let mut up = BufReader::new(up);
    while let Some((head, body)) = read_message(&mut client).await? {
        let lower = head.to_ascii_lowercase();
        let put_records = lower.contains("x-amz-target: kinesis_20131202.putrecords\r");
        if !faults.refusals {
            if put_records {
                counts.calls.fetch_add(1, Ordering::Relaxed);
                let open =
                    lose_answers(&mut client, &mut up, (&head, &body), &faults, &counts).await?;
                if !open {
                    return Ok(());
                }
            } else {
                send(up.get_mut(), &head, body.as_ref()).await?;
                let (rhead, rbody) = read_message(&mut up)
                    .await?
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                send(client.get_mut(), &rhead, rbody.as_ref()).await?;
            }
            continue;
        }
        let get_records = lower.contains("x-amz-target: kinesis_20131202.getrecords\r");
        if get_records && rand::random_range(0..100) < GET_THROTTLE_PERCENT {
            counts.gets_throttled.fetch_add(1, Ordering::Relaxed);
            let b = json!({"__type": "ProvisionedThroughputExceededException",
                           "message": "Rate exceeded for shard (injected)"})
            .to_string();
            let h = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: injected";
            send(client.get_mut(), h, b.as_ref()).await?;
            continue;
        }
        if lower.contains("x-amz-target: kinesis_20131202.listshards\r") {
            // Pages of one shard (the emulator ignores MaxResults and never paginates).
            let req: Value = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
            let (stream, index) = match req["NextToken"].as_str() {
                Some(t) => {
                    let (i, stream) = t.split_once(':').ok_or(std::io::ErrorKind::InvalidData)?;
                    (
                        stream.to_owned(),
                        i.parse::<usize>().map_err(std::io::Error::other)?,
                    )
                }
                None => (req["StreamName"].as_str().unwrap_or_default().to_owned(), 0),
            };
            let ask = json!({"StreamName": stream}).to_string();
            let ask_head = head
                .lines()
                .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
                .collect::<Vec<_>>()
                .join("\r\n");
            send(up.get_mut(), &ask_head, ask.as_bytes()).await?;
            let (rhead, rbody) = read_message(&mut up)
                .await?
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            let resp: Value = serde_json::from_slice(&rbody).map_err(std::io::Error::other)?;
            let shards = resp["Shards"].as_array().cloned().unwrap_or_default();
            if !rhead.starts_with("HTTP/1.1 200") || shards.is_empty() {
                send(client.get_mut(), &rhead, rbody.as_ref()).await?;
                continue;
            }
            counts.list_pages.fetch_add(1, Ordering::Relaxed);
            let mut page = json!({"Shards": [shards.get(index).cloned().unwrap_or(Value::Null)]});
            if index + 1 < shards.len() {
                page["NextToken"] = json!(format!("{}:{stream}", index + 1));
            }
            send(client.get_mut(), &rhead, page.to_string().as_bytes()).await?;
            continue;
        }
        if !put_records {
            send(up.get_mut(), &head, body.as_ref()).await?;
            let (rhead, rbody) = read_message(&mut up)
                .await?
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            send(client.get_mut(), &rhead, rbody.as_ref()).await?;
            continue;
        }
        counts.calls.fetch_add(1, Ordering::Relaxed);
        if rand::random_range(0..100) < CALL_THROTTLE_PERCENT {
            counts.calls_throttled.fetch_add(1, Ordering::Relaxed);
            let b = json!({"__type": "ProvisionedThroughputExceededException",
                           "message": "Rate exceeded for stream (injected)"})
            .to_string();
            let h = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: injected";
            send(client.get_mut(), h, b.as_ref()).await?;
            continue;
        }
        let mut req: Value = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
        let records = req["Records"].as_array().cloned().unwrap_or_default();
        // A network failure: the connection closes with no answer (nothing was stored). Not for
        // calls with the always-failing ids, whose writers must see their own codes.
        let special = |r: &Value| {
            id_of(r).is_some_and(|id| [ALWAYS_DENIED, ALWAYS_THROTTLED].contains(&(id % 50)))
        };
        if !records.iter().any(special) && rand::random_range(0..100) < DROP_PERCENT {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        // Decide each record's fate; the failed ones never reach the emulator.
        let fate: Vec<Option<(&str, &str)>> = records
            .iter()
            .map(|r| match id_of(r).map(|id| id % 50) {
                Some(ALWAYS_DENIED) => {
                    Some(("KMSAccessDeniedException", "access denied (injected)"))
                }
                Some(ALWAYS_THROTTLED) => Some((
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for shard (injected)",
                )),
                _ if rand::random_range(0..100) < THROTTLE_PERCENT => Some((
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for shard (injected)",
                )),
                _ => None,
            })
            .collect();
        let kept: Vec<Value> = records
            .iter()
            .zip(&fate)
            .filter(|(_, f)| f.is_none())
            .map(|(r, _)| r.clone())
            .collect();
        let mut results: Vec<Value> = Vec::new();
        let mut failed = 0;
        let mut rhead_kept = None;
        if !kept.is_empty() {
            req["Records"] = Value::Array(kept);
            let b = serde_json::to_vec(&req).map_err(std::io::Error::other)?;
            send(up.get_mut(), &head, b.as_ref()).await?;
            let (rhead, rbody) = read_message(&mut up)
                .await?
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            if !rhead.starts_with("HTTP/1.1 200") {
                send(client.get_mut(), &rhead, rbody.as_ref()).await?;
                continue;
            }
            let resp: Value = serde_json::from_slice(&rbody).map_err(std::io::Error::other)?;
            results = resp["Records"].as_array().cloned().unwrap_or_default();
            failed += resp["FailedRecordCount"].as_u64().unwrap_or(0);
            rhead_kept = Some(rhead);
        }
        let mut upstream_results = results.into_iter();
        let merged: Vec<Value> = fate
            .iter()
            .map(|f| match f {
                Some((code, msg)) => {
                    failed += 1;
                    counts.records_failed.fetch_add(1, Ordering::Relaxed);
                    json!({"ErrorCode": code, "ErrorMessage": msg})
                }
                None => upstream_results.next().unwrap_or(Value::Null),
            })
            .collect();
        let b = json!({"FailedRecordCount": failed, "Records": merged}).to_string();
        let h = rhead_kept.unwrap_or_else(|| {
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: injected".into()
        });
        send(client.get_mut(), &h, b.as_ref()).await?;
    }
    Ok(())
}

/// Starts the fault injector in front of `upstream` (`host:port`); returns its `http://` URL.
async fn start_proxy(upstream: String, counts: Arc<Counts>, faults: Arc<Faults>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (up, counts, faults) = (upstream.clone(), counts.clone(), faults.clone());
            tokio::spawn(async move {
                let _ = proxy_connection(conn, up, counts, faults).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A client whose SDK talks to a fresh fault injector in front of the emulator.
async fn proxied_client(env: &common::TestEnv, counts: Arc<Counts>, aggregate: bool) -> Client {
    let config = proxied_config(env, counts, Arc::new(Faults::refusing()))
        .await
        .with_max_attempts(6)
        .with_aggregation(aggregate)
        .build()
        .unwrap();
    Client::new(config).await.unwrap()
}

/// The configuration of a client whose SDK talks to a fresh fault injector doing `faults` in
/// front of the emulator.
pub(crate) async fn proxied_config(
    env: &common::TestEnv,
    counts: Arc<Counts>,
    faults: Arc<Faults>,
) -> redtrack::ConfigBuilder {
    let endpoint = env.var("AWS_ENDPOINT_URL_KINESIS").unwrap();
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = start_proxy(upstream, counts, faults).await;

    // Built without the environment's service config, so that AWS_ENDPOINT_URL_KINESIS does not
    // override the endpoint: the SDK talks to the injector.
    let creds = aws_sdk_kinesis::config::Credentials::new(
        env.var("AWS_ACCESS_KEY_ID").unwrap(),
        env.var("AWS_SECRET_ACCESS_KEY").unwrap(),
        None,
        None,
        "fault-test",
    );
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(env.var("AWS_REGION").unwrap()))
        .credentials_provider(aws_sdk_kinesis::config::SharedCredentialsProvider::new(
            creds,
        ))
        .endpoint_url(&proxy)
        // The SDK's own attempt timeout out of the way: the client's (with_attempt_timeout)
        // decides when an attempt is given up.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(300))
                .build(),
        )
        .build();
    redtrack::Config::builder()
        .cluster(env.config().cluster())
        .database(env.config().database())
        .with_sdk_config(sdk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_are_stored_and_failed_ones_reported() {
    let env = common::TestEnv::new().await;
    let counts = Arc::new(Counts::default());
    let client = proxied_client(&env, counts.clone(), false).await;
    client.create_stream::<FaultEvent>(2).await.unwrap();

    const TOTAL: i32 = 2_000;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for id in (t..TOTAL).step_by(16) {
                outcomes.push((id, client.write(&FaultEvent { id }).await));
            }
            outcomes
        }));
    }
    let mut acked = BTreeSet::new();
    let mut failed: BTreeMap<i32, Error> = BTreeMap::new();
    for t in tasks {
        for (id, outcome) in t.await.unwrap() {
            match outcome {
                Ok(()) => {
                    acked.insert(id);
                }
                Err(e) => {
                    failed.insert(id, e);
                }
            }
        }
    }
    client.close().await.unwrap();
    assert!(counts.calls_throttled.load(Ordering::Relaxed) > 0);
    assert!(counts.dropped.load(Ordering::Relaxed) > 0);
    let stats = client.stats();
    assert!(stats.records_retried > 300, "{stats:?}");
    assert_eq!(stats.events_acked as usize, acked.len());
    assert_eq!(stats.events_failed as usize, failed.len());
    assert!(counts.records_failed.load(Ordering::Relaxed) > 300);

    // Exactly the callers whose records failed got errors, with the Kinesis code.
    for id in 0..TOTAL {
        match i64::from(id) % 50 {
            ALWAYS_DENIED => match &failed[&id] {
                Error::Broker {
                    code, retryable, ..
                } => {
                    assert_eq!(code, "KMSAccessDeniedException");
                    assert!(!retryable);
                }
                other => panic!("{other:?}"),
            },
            ALWAYS_THROTTLED => match &failed[&id] {
                Error::Broker {
                    code,
                    retryable,
                    message,
                    ..
                } => {
                    assert_eq!(code, "ProvisionedThroughputExceededException");
                    assert!(retryable, "retries exhausted: the caller may try again");
                    assert!(message.contains("after 6 attempts"), "{message}");
                }
                other => panic!("{other:?}"),
            },
            _ => {}
        }
    }
    let must_fail = (0..TOTAL)
        .filter(|id| [ALWAYS_DENIED, ALWAYS_THROTTLED].contains(&(i64::from(*id) % 50)))
        .count();
    // A record throttled on all 6 attempts by chance (about 0.37^6 with the whole-call
    // throttles: ~5 of 2000 expected) fails too; its writer was told, which is what counts.
    assert!(
        failed.len() >= must_fail && failed.len() <= must_fail + 40,
        "{}",
        failed.len()
    );
    assert_eq!(acked.len() + failed.len(), TOTAL as usize);

    // Read the stream directly from the emulator, and through the injector (which throttles
    // GetRecords): exactly the acknowledged events, once each, both ways.
    let direct = AnyBroker::Kinesis(redtrack::broker::KinesisBroker::from_client(
        env.kinesis().await,
    ));
    let stream = client.stream_name::<FaultEvent>();
    let shards = direct.list_shards(&stream).await.unwrap();
    assert_eq!(client.broker().list_shards(&stream).await.unwrap(), shards);
    assert!(counts.list_pages.load(Ordering::Relaxed) >= shards.len() as u64);
    for broker in [&direct, client.broker()] {
        let mut stored = Vec::new();
        for shard in broker.list_shards(&stream).await.unwrap() {
            let mut r = broker
                .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
                .await
                .unwrap();
            loop {
                let batch = r.next_batch(100).await.unwrap();
                if batch.records.is_empty() {
                    break;
                }
                for rec in batch.records {
                    let v: Value = serde_json::from_slice(&rec.data).unwrap();
                    stored.push(v["id"].as_i64().unwrap() as i32);
                }
            }
        }
        let stored_set: BTreeSet<i32> = stored.iter().copied().collect();
        assert_eq!(stored.len(), stored_set.len(), "no event stored twice");
        assert_eq!(stored_set, acked);
    }
    assert!(counts.gets_throttled.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_records_are_retried_whole() {
    let env = common::TestEnv::new().await;
    let counts = Arc::new(Counts::default());
    let client = proxied_client(&env, counts.clone(), true).await;
    client.create_stream::<FaultEvent>(2).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for id in (t..1_000).step_by(16) {
                outcomes.push((id, client.write(&FaultEvent { id }).await.is_ok()));
            }
            outcomes
        }));
    }
    let mut acked = BTreeSet::new();
    for t in tasks {
        for (id, ok) in t.await.unwrap() {
            if ok {
                acked.insert(id);
            }
        }
    }
    client.close().await.unwrap();
    assert!(counts.records_failed.load(Ordering::Relaxed) > 0);
    assert!(acked.len() > 900, "{}", acked.len());

    let direct = AnyBroker::Kinesis(redtrack::broker::KinesisBroker::from_client(
        env.kinesis().await,
    ));
    let stream = client.stream_name::<FaultEvent>();
    let mut stored = Vec::new();
    for shard in direct.list_shards(&stream).await.unwrap() {
        let mut r = direct
            .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        loop {
            let batch = r.next_batch(1_000).await.unwrap();
            if batch.records.is_empty() {
                break;
            }
            for rec in batch.records {
                for user in
                    redtrack::broker::aggregate::deaggregate(&rec.partition_key, &rec.data).unwrap()
                {
                    let v: Value = serde_json::from_slice(&user.data).unwrap();
                    stored.push(v["id"].as_i64().unwrap() as i32);
                }
            }
        }
    }
    let stored_set: BTreeSet<i32> = stored.iter().copied().collect();
    assert_eq!(stored.len(), stored_set.len(), "no event stored twice");
    assert_eq!(stored_set, acked);
}
