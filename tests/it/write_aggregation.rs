//! KPL aggregates stay within one shard, as a KCL consumer of the same stream requires: the KCL
//! de-aggregates a record with the hash key range of the shard that stores it and drops the
//! whole aggregate at the first user record whose hash lies outside
//! (`AggregatorUtil.deaggregate`). Replayed here on every record read back, before and after a
//! split; redtrack's own loader still loads every event. On a stream whose records Kinesis
//! places itself (service-managed record distribution) no aggregate can stay within a shard, and
//! the writer sends plain records, as the KPL does.

use crate::{common, seed};

use md5::{Digest, Md5};
use redtrack::broker::aggregate::{deaggregate, is_aggregated};
use redtrack::Client;
use seed::TestEvent;

/// A client of `env` with KPL aggregation on.
async fn aggregating_client(env: &common::TestEnv) -> Client {
    let config = env.config().into_builder().with_aggregation(true).build();
    Client::new(config.unwrap()).await.unwrap()
}

fn event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: "10.4.4.4".into(),
        timestamp: i,
        message: Some(format!("event {i}")),
    }
}

async fn write(client: &Client, from: i32, to: i32) {
    for i in from..to {
        drop(client.enqueue(&event(i)).await.unwrap());
    }
    client.flush().await.unwrap();
}

/// What a KCL consumer keeps of `stream`: every shard read from its trim horizon, each record
/// de-aggregated with the shard's hash key range, an aggregate dropped whole at its first user
/// record outside it. The events kept (their `timestamp`s), and how many aggregates were seen.
async fn kcl_reads(env: &common::TestEnv, stream: &str) -> (Vec<i64>, usize) {
    let kinesis = env.kinesis().await;
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    let mut kept = Vec::new();
    let mut aggregates = 0;
    for shard in shards {
        let range = shard.hash_key_range().unwrap();
        let start: u128 = range.starting_hash_key().parse().unwrap();
        let end: u128 = range.ending_hash_key().parse().unwrap();
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        loop {
            let out = kinesis
                .get_records()
                .shard_iterator(&iterator)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            for record in out.records() {
                let data = bytes::Bytes::copy_from_slice(record.data().as_ref());
                let users = deaggregate(record.partition_key().unwrap_or_default(), &data).unwrap();
                if is_aggregated(&data) {
                    aggregates += 1;
                    let outsider = users.iter().any(|u| {
                        let hash = match &u.explicit_hash_key {
                            Some(ehk) => ehk.parse::<u128>().unwrap(),
                            None => {
                                u128::from_be_bytes(Md5::digest(u.partition_key.as_bytes()).into())
                            }
                        };
                        hash < start || hash > end
                    });
                    if outsider {
                        continue; // the KCL drops the whole aggregate
                    }
                }
                for u in users {
                    let json: serde_json::Value = serde_json::from_slice(&u.data).unwrap();
                    kept.push(json["timestamp"].as_i64().unwrap());
                }
            }
            match out.next_shard_iterator() {
                Some(next) if !out.records().is_empty() => iterator = next.to_owned(),
                _ => break,
            }
        }
    }
    kept.sort_unstable();
    (kept, aggregates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kcl_consumer_keeps_every_aggregated_event_across_a_split() {
    let env = common::TestEnv::named("kclrule").await;
    let client = aggregating_client(&env).await;
    client.create_stream::<TestEvent>(2).await.unwrap();
    let stream = client.stream_name::<TestEvent>();

    write(&client, 0, 2000).await;
    let (kept, aggregates) = kcl_reads(&env, &stream).await;
    assert!(
        aggregates > 0 && aggregates < 2000,
        "aggregated: {aggregates}"
    );
    assert!(
        kept == (0..2000).collect::<Vec<_>>(),
        "a KCL consumer keeps {} of 2000 events",
        kept.len()
    );

    // Split every shard (2 -> 4 open), then write on.
    assert_eq!(client.split_shards::<TestEvent>().await.unwrap(), 2);
    write(&client, 2000, 4000).await;
    let (kept, _) = kcl_reads(&env, &stream).await;
    assert!(
        kept == (0..4000).collect::<Vec<_>>(),
        "across the split, a KCL consumer keeps {} of 4000 events",
        kept.len()
    );

    // redtrack's own loader loads every event once.
    let loader = env.loader::<TestEvent>().await;
    let mut loaded = 0;
    loop {
        let r = loader.load::<TestEvent>().await.unwrap();
        loaded += r.records;
        if r.records == 0 && !r.more {
            break;
        }
    }
    assert_eq!(loaded, 4000);
    assert_eq!(
        env.count_distinct("test_events", "timestamp").await,
        (4000, 4000)
    );
}

/// A split made by another process: the writer's first record after it lands in a child shard
/// that its shard map does not know, and the writer reads the map again before its next call,
/// so a KCL consumer keeps every event written after the split too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_by_another_process_is_learned_from_the_first_misplaced_record() {
    let env = common::TestEnv::named("kclsplit").await;
    let client = aggregating_client(&env).await;
    client.create_stream::<TestEvent>(2).await.unwrap();
    let stream = client.stream_name::<TestEvent>();
    write(&client, 0, 1000).await;

    // Another process (an operator's `split-shards`) splits the stream.
    let other = Client::new(env.config()).await.unwrap();
    assert_eq!(other.split_shards::<TestEvent>().await.unwrap(), 2);

    write(&client, 1000, 1001).await;
    write(&client, 1001, 3000).await;
    let (kept, _) = kcl_reads(&env, &stream).await;
    assert!(
        kept == (0..3000).collect::<Vec<_>>(),
        "a KCL consumer keeps {} of 3000 events",
        kept.len()
    );
}
