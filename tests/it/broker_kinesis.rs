//! The Kinesis broker against the emulator: both sides of the `Broker` contract the loader uses.

use crate::common;

use std::collections::BTreeSet;

use bytes::Bytes;
use redtrack::broker::{
    cmp_sequence_numbers, AnyBroker, Broker, PutOutcome, PutRecord, ShardReader, StartingPosition,
    StoredRecord,
};

fn records(prefix: &str, n: usize) -> Vec<PutRecord> {
    (0..n)
        .map(|i| PutRecord {
            partition_key: format!("{prefix}-{i}"),
            data: Bytes::from(format!("{{\"n\":\"{prefix}-{i}\"}}")),
        })
        .collect()
}

/// Reads a shard from `from` until it reports shard_end or runs dry.
async fn drain(
    broker: &AnyBroker,
    stream: &str,
    shard: &str,
    from: StartingPosition,
) -> (Vec<StoredRecord>, bool) {
    let mut reader = broker.read_shard(stream, shard, from).await.unwrap();
    let mut out = Vec::new();
    loop {
        let batch = reader.next_batch(7).await.unwrap();
        let n = batch.records.len();
        out.extend(batch.records);
        if batch.shard_end {
            return (out, true);
        }
        if n == 0 {
            return (out, false);
        }
    }
}

#[tokio::test]
async fn put_list_read_resume_split() {
    let env = common::TestEnv::new().await;
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    assert!(matches!(broker, AnyBroker::Kinesis(_)));
    let stream = env.stream_name("broker_events");

    broker.create_stream(&stream, 2).await.unwrap();
    broker.create_stream(&stream, 2).await.unwrap(); // idempotent
    let shards = broker.list_shards(&stream).await.unwrap();
    assert_eq!(shards.len(), 2);
    assert!(shards.iter().all(|s| !s.is_closed()));

    let first = records("a", 40);
    let out = broker.put_records(&stream, &first).await.unwrap();
    assert_eq!(out.len(), first.len());
    assert!(out.iter().all(|o| matches!(o, PutOutcome::Stored { .. })));

    // Read back everything, in sequence order per shard.
    let mut seen = BTreeSet::new();
    for s in &shards {
        let (recs, end) = drain(&broker, &stream, &s.shard_id, StartingPosition::TrimHorizon).await;
        assert!(!end, "an open shard has no end");
        for w in recs.windows(2) {
            assert!(cmp_sequence_numbers(&w[0].sequence_number, &w[1].sequence_number).is_lt());
        }
        seen.extend(
            recs.iter()
                .map(|r| (r.partition_key.clone(), r.data.clone())),
        );
    }
    let want: BTreeSet<_> = first
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.clone()))
        .collect();
    assert_eq!(seen, want);

    // Resume after a sequence number: only what follows it.
    let shard0 = &shards[0].shard_id;
    let (all0, _) = drain(&broker, &stream, shard0, StartingPosition::TrimHorizon).await;
    assert!(all0.len() > 2);
    let (rest, _) = drain(
        &broker,
        &stream,
        shard0,
        StartingPosition::AfterSequenceNumber(all0[1].sequence_number.clone()),
    )
    .await;
    assert_eq!(rest, all0[2..]);

    // Split: parents close, children name them, later records land in the children.
    assert_eq!(broker.split_shards(&stream).await.unwrap(), 2);
    let after = broker.list_shards(&stream).await.unwrap();
    assert_eq!(after.len(), 6, "{after:?}");
    let closed: Vec<_> = after.iter().filter(|s| s.is_closed()).collect();
    assert_eq!(closed.len(), 2);
    let second = records("b", 40);
    let out = broker.put_records(&stream, &second).await.unwrap();
    let parents: BTreeSet<_> = closed.iter().map(|s| s.shard_id.clone()).collect();
    for o in &out {
        match o {
            PutOutcome::Stored { shard_id, .. } => assert!(!parents.contains(shard_id)),
            PutOutcome::Failed { code, .. } => panic!("{code}"),
            other => panic!("{other:?}"),
        }
    }
    // A drained closed parent reports shard_end, from the start or from its last record.
    for p in &closed {
        let (recs, end) = drain(&broker, &stream, &p.shard_id, StartingPosition::TrimHorizon).await;
        assert!(end, "shard_end of closed {}", p.shard_id);
        let last = recs.last().unwrap().sequence_number.clone();
        let (none, end) = drain(
            &broker,
            &stream,
            &p.shard_id,
            StartingPosition::AfterSequenceNumber(last),
        )
        .await;
        assert!(none.is_empty() && end);
    }
    let mut in_children = 0;
    for c in after.iter().filter(|s| !s.is_closed()) {
        assert!(parents.contains(c.parent_shard_id.as_deref().unwrap()));
        in_children += drain(&broker, &stream, &c.shard_id, StartingPosition::TrimHorizon)
            .await
            .0
            .len();
    }
    assert_eq!(in_children, second.len());

    // Asking for pages of one changes nothing (the emulator ignores MaxResults; the fault test's
    // injector pages ListShards for real).
    if let AnyBroker::Kinesis(k) = &broker {
        let paged = AnyBroker::Kinesis(k.clone().with_list_shards_page(1));
        assert_eq!(paged.list_shards(&stream).await.unwrap(), after);
        k.delete_stream(&stream).await.unwrap();
    }
}

#[tokio::test]
async fn errors_carry_the_kinesis_code() {
    let env = common::TestEnv::new().await;
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    let err = broker
        .put_records(&env.stream_name("missing"), &records("x", 1))
        .await
        .unwrap_err();
    match &err {
        redtrack::Error::Broker {
            code, retryable, ..
        } => {
            assert_eq!(code, "ResourceNotFoundException");
            assert!(!retryable);
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK's error is kept as the source"
    );
}
