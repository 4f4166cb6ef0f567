//! `Client::write` against the Kinesis emulator: many writers coalesced, everything read back,
//! partition keys, aggregation, backpressure and call-site errors.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use redtrack::broker::aggregate::deaggregate;
use redtrack::broker::{AnyBroker, Broker, ShardReader, StartingPosition, StoredRecord};
use redtrack::{Client, Error, RedTrackEvent};

#[derive(RedTrackEvent)]
#[redtrack(table = "write_events")]
pub struct WriteEvent {
    #[redtrack(type = "varchar(64)")]
    pub id: String,
    pub task: i32,
    pub score: f64,
}

#[derive(RedTrackEvent)]
#[redtrack(table = "keyed_events")]
pub struct KeyedEvent {
    #[redtrack(type = "varchar(64)", partition_key)]
    pub user: String,
    pub n: i32,
}

/// Every record of every shard of `stream`, from the start, by shard.
async fn read_shards(broker: &AnyBroker, stream: &str) -> BTreeMap<String, Vec<StoredRecord>> {
    let mut out = BTreeMap::new();
    for shard in broker.list_shards(stream).await.unwrap() {
        let mut r = broker
            .read_shard(stream, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        let mut records = Vec::new();
        loop {
            let batch = r.next_batch(10_000).await.unwrap();
            let n = batch.records.len();
            records.extend(batch.records);
            if batch.shard_end || n == 0 {
                break;
            }
        }
        out.insert(shard.shard_id, records);
    }
    out
}

/// Every record of every shard of `stream`, from the start.
async fn read_stream(broker: &AnyBroker, stream: &str) -> Vec<StoredRecord> {
    read_shards(broker, stream)
        .await
        .into_values()
        .flatten()
        .collect()
}

/// The `id`s of the events in `records`, de-aggregating KPL records.
fn ids(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| deaggregate(&r.partition_key, &r.data).unwrap())
        .map(|u| {
            let v: serde_json::Value = serde_json::from_slice(&u.data).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn write_from_tasks(client: &Client, tasks: usize, total: usize) -> BTreeSet<String> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in (t..total).step_by(tasks) {
                let e = WriteEvent {
                    id: format!("e{i}"),
                    task: t as i32,
                    score: i as f64 / 3.0,
                };
                client.write(&e).await.unwrap();
                written.push(e.id);
            }
            written
        }));
    }
    let mut all = BTreeSet::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_ten_thousand_events_four_shards() {
    let env = common::TestEnv::new().await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<WriteEvent>(4).await.unwrap();
    client.create_stream::<WriteEvent>(4).await.unwrap(); // idempotent

    let written = write_from_tasks(&client, 32, 10_000).await;
    client.close().await.unwrap();
    assert_eq!(written.len(), 10_000);

    let shards = read_shards(client.broker(), &client.stream_name::<WriteEvent>()).await;
    assert_eq!(shards.len(), 4);
    // Random partition keys spread the events over all four shards.
    for (shard, records) in &shards {
        assert!(records.len() > 1_000, "{shard} has only {}", records.len());
    }
    let records: Vec<_> = shards.into_values().flatten().collect();
    let got = ids(&records);
    assert_eq!(got.len(), 10_000, "no event twice, none lost");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_writes_read_back_and_pack() {
    let env = common::TestEnv::new().await;
    let config = redtrack::Config::builder()
        .cluster(env.config().cluster())
        .database(env.config().database())
        .with_aggregation(true)
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<WriteEvent>(2).await.unwrap();
    let written = write_from_tasks(&client, 16, 3_000).await;
    client.flush().await.unwrap();

    let records = read_stream(client.broker(), &client.stream_name::<WriteEvent>()).await;
    assert!(
        records.len() < 750,
        "3000 events in {} Kinesis records",
        records.len()
    );
    let got = ids(&records);
    assert_eq!(got.len(), 3_000);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), written);
}

#[tokio::test]
async fn the_partition_key_field_is_the_partition_key() {
    let env = common::TestEnv::new().await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<KeyedEvent>(2).await.unwrap();
    for n in 0..10 {
        let e = KeyedEvent {
            user: format!("user-{}", n % 3),
            n,
        };
        client.write(&e).await.unwrap();
    }
    let records = read_stream(client.broker(), &client.stream_name::<KeyedEvent>()).await;
    assert_eq!(records.len(), 10);
    let mut shard_of_user = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for r in &records {
        // The Kinesis record's key is the user's; inside is the one user record a KCL consumer
        // sees: the event's JSON and its key, with the record's identity in a tag.
        let users = deaggregate(&r.partition_key, &r.data).unwrap();
        assert_eq!(users.len(), 1);
        let user = &users[0];
        let v: serde_json::Value = serde_json::from_slice(&user.data).unwrap();
        assert_eq!(v["user"].as_str().unwrap(), r.partition_key);
        assert_eq!(user.partition_key, r.partition_key);
        let [(tag, Some(id))] = &user.tags[..] else {
            panic!("{:?}", user.tags)
        };
        assert_eq!(tag, redtrack::identity::TAG_KEY);
        ids.insert(redtrack::identity::RecordId::parse(id).expect("an id"));
        shard_of_user
            .entry(r.partition_key.clone())
            .or_insert_with(BTreeSet::new)
            .insert(r.sequence_number.len());
    }
    assert_eq!(shard_of_user.len(), 3);
    assert_eq!(ids.len(), 10, "every event its own identity");
}

#[tokio::test]
async fn without_identities_a_keyed_event_is_plain_json() {
    let env = common::TestEnv::new().await;
    let config = env
        .config()
        .into_builder()
        .with_record_identity(false)
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<KeyedEvent>(1).await.unwrap();
    client
        .write(&KeyedEvent {
            user: "user-1".into(),
            n: 1,
        })
        .await
        .unwrap();
    let records = read_stream(client.broker(), &client.stream_name::<KeyedEvent>()).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].partition_key, "user-1");
    let v: serde_json::Value = serde_json::from_slice(&records[0].data).unwrap();
    assert_eq!(v, serde_json::json!({"user": "user-1", "n": 1}));
}

#[tokio::test]
async fn bad_events_fail_at_the_call_site_and_try_write_fails_when_full() {
    let env = common::TestEnv::new().await;
    let config = redtrack::Config::builder()
        .cluster(env.config().cluster())
        .database(env.config().database())
        .with_linger(Duration::from_secs(30))
        .with_max_buffered_records(3)
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<WriteEvent>(1).await.unwrap();

    let nan = WriteEvent {
        id: "nan".into(),
        task: 0,
        score: f64::NAN,
    };
    assert!(matches!(client.write(&nan).await, Err(Error::Encode(_))));

    // On this single-threaded runtime the batcher cannot run before this task yields, and
    // nothing below yields until try_write: three records fill the buffer, the fourth is refused.
    let mut acks = Vec::new();
    for i in 0..3 {
        let e = WriteEvent {
            id: format!("b{i}"),
            task: 0,
            score: 1.0,
        };
        acks.push(client.enqueue(&e).await.unwrap());
    }
    assert_eq!(client.unanswered(), 3);
    let fourth = WriteEvent {
        id: "b3".into(),
        task: 0,
        score: 1.0,
    };
    // `try_write` decides when it is called, not when awaited: refused now, the refusal stands
    // even if the buffer frees before it is awaited, and nothing was taken from the buffer.
    let refused = client.try_write(&fourth);
    assert_eq!(client.unanswered(), 3);
    assert!(matches!(
        refused.await,
        Err(Error::BufferFull { capacity: 3, .. })
    ));
    // A waiting `write` gets in once flush frees the buffer.
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.write(&fourth).await })
    };
    client.flush().await.unwrap();
    for a in acks {
        a.await.unwrap();
    }
    client.flush().await.unwrap();
    waiting.await.unwrap().unwrap();
    assert_eq!(client.unanswered(), 0);

    let records = read_stream(client.broker(), &client.stream_name::<WriteEvent>()).await;
    assert_eq!(ids(&records).len(), 4);

    client.close().await.unwrap();
    let after = WriteEvent {
        id: "late".into(),
        task: 0,
        score: 0.0,
    };
    assert!(matches!(
        client.write(&after).await,
        Err(Error::ClientClosed)
    ));
}

/// An event whose JSON is larger than a Kinesis record.
struct Huge(usize);

static HUGE_SCHEMA: redtrack::TableSchema = redtrack::TableSchema {
    name: "huge",
    columns: &[],
    sortkey: redtrack::SortKey::None,
    distkey: None,
    diststyle: None,
};

impl RedTrackEvent for Huge {
    const TABLE_NAME: &'static str = "huge";
    fn schema() -> &'static redtrack::TableSchema {
        &HUGE_SCHEMA
    }
    fn encode_json(&self, buf: &mut Vec<u8>) -> Result<(), redtrack::EncodeError> {
        buf.extend_from_slice(b"{\"s\":\"");
        buf.resize(buf.len() + self.0, b'a');
        buf.extend_from_slice(b"\"}");
        Ok(())
    }
}

#[tokio::test]
async fn an_event_larger_than_a_record_is_an_error_at_write_time() {
    let env = common::TestEnv::new().await;
    let client = Arc::new(Client::new(env.config()).await.unwrap());
    client.create_stream::<Huge>(1).await.unwrap();
    let err = client.write(&Huge(1024 * 1024)).await.unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { bytes, limit: 1_048_576, .. } if bytes > 1_048_576),
        "{err}"
    );
    // Just under the limit goes through (partition key: 32 characters).
    client.write(&Huge(1024 * 1024 - 32 - 8)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_on_across_a_split() {
    let env = common::TestEnv::new().await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<WriteEvent>(2).await.unwrap();
    let writing = {
        let client = client.clone();
        tokio::spawn(async move { write_from_tasks(&client, 8, 2_000).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(client.split_shards::<WriteEvent>().await.unwrap(), 2);
    let written = writing.await.unwrap();
    client.flush().await.unwrap();

    let stream = client.stream_name::<WriteEvent>();
    let shards = client.broker().list_shards(&stream).await.unwrap();
    assert_eq!(shards.len(), 6);
    let by_shard = read_shards(client.broker(), &stream).await;
    let records: Vec<_> = by_shard.values().flatten().cloned().collect();
    let got = ids(&records);
    assert_eq!(got.len(), 2_000, "no event twice, none lost");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), written);
    // The children took the writes after the split.
    let in_children: usize = shards
        .iter()
        .filter(|s| !s.is_closed())
        .map(|s| by_shard[&s.shard_id].len())
        .sum();
    assert!(in_children > 0);
}

/// A write to a stream nobody created fails once, at the caller, saying what to do; it is not
/// retried (nothing else would make the stream appear).
#[tokio::test]
async fn a_write_to_a_missing_stream_says_to_create_it() {
    let env = common::TestEnv::named("nostream").await;
    let client = Client::new(env.config()).await.unwrap();
    let err = client
        .write(&KeyedEvent {
            user: "u".into(),
            n: 1,
        })
        .await
        .unwrap_err();
    match &err {
        Error::Broker {
            operation,
            stream,
            code,
            message,
            retryable,
            ..
        } => {
            assert_eq!(*operation, "PutRecords");
            assert_eq!(stream, &env.stream_name("keyed_events"));
            assert_eq!(code, "ResourceNotFoundException");
            assert!(!retryable);
            assert!(!message.contains("attempts"), "tried once: {message}");
            assert!(message.contains("create_stream"), "{message}");
        }
        other => panic!("expected Error::Broker, got {other:?}"),
    }
    assert_eq!(client.stats().calls, 1, "no retry");
}

/// `try_write` takes its record into the buffer when it is called: the record is on its way
/// (counted as unanswered) before the returned future is awaited, and is stored even if that
/// future is dropped.
#[tokio::test]
async fn try_write_accepts_at_the_call() {
    let env = common::TestEnv::new().await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<WriteEvent>(1).await.unwrap();
    let accepted = client.try_write(&WriteEvent {
        id: "t1".into(),
        task: 0,
        score: 1.0,
    });
    assert_eq!(client.unanswered(), 1, "accepted before any await");
    accepted.await.unwrap();
    #[allow(unused_must_use)]
    {
        // Dropped unawaited (the compiler warns without the allow): still written.
        client.try_write(&WriteEvent {
            id: "t2".into(),
            task: 0,
            score: 2.0,
        });
    }
    client.flush().await.unwrap();
    let records = read_stream(client.broker(), &client.stream_name::<WriteEvent>()).await;
    assert_eq!(ids(&records), ["t1", "t2"]);
    client.close().await.unwrap();
}
