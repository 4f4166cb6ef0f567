//! A checkpoint older than the stream's retention (records trimmed before they were loaded) is
//! reported loudly, as data loss naming the shard and the lost range, never skipped quietly.
//!
//! The emulator keeps records for 24 hours, so trimming is simulated by a broker that wraps the
//! real one and hides every record up to a trim point, as Kinesis does past its retention.

use crate::{common, seed};

use std::sync::{Arc, Mutex};

use redtrack::broker::{
    cmp_sequence_numbers, AnyBroker, AnyReader, Broker, PutOutcome, PutRecord, ReadBatch,
    SequenceNumber, ShardInfo, ShardReader, StartingPosition,
};
use redtrack::{Client, Error, Loader};
use seed::TestEvent;

/// The real broker, with every record up to `trim` (inclusive) gone.
struct Trimming {
    inner: AnyBroker,
    trim: Arc<Mutex<Option<SequenceNumber>>>,
}

struct TrimReader {
    inner: AnyReader,
    trim: Option<SequenceNumber>,
}

impl ShardReader for TrimReader {
    async fn next_batch(&mut self, limit: usize) -> redtrack::Result<ReadBatch> {
        loop {
            let mut batch = self.inner.next_batch(limit).await?;
            if let Some(t) = &self.trim {
                let before = batch.records.len();
                batch
                    .records
                    .retain(|r| cmp_sequence_numbers(&r.sequence_number, t).is_gt());
                // A batch wholly trimmed: read on, as a reader at the trim horizon would.
                if before > 0 && batch.records.is_empty() && !batch.shard_end {
                    continue;
                }
            }
            return Ok(batch);
        }
    }
}

impl Broker for Trimming {
    type Reader = TrimReader;

    async fn create_stream(&self, stream: &str, shards: u32) -> redtrack::Result<()> {
        self.inner.create_stream(stream, shards).await
    }

    async fn split_shards(&self, stream: &str) -> redtrack::Result<usize> {
        self.inner.split_shards(stream).await
    }

    async fn put_records(
        &self,
        stream: &str,
        records: &[PutRecord],
    ) -> redtrack::Result<Vec<PutOutcome>> {
        self.inner.put_records(stream, records).await
    }

    async fn list_shards(&self, stream: &str) -> redtrack::Result<Vec<ShardInfo>> {
        self.inner.list_shards(stream).await
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> redtrack::Result<TrimReader> {
        let trim = self.trim.lock().unwrap().clone();
        Ok(TrimReader {
            inner: self.inner.read_shard(stream, shard_id, from).await?,
            trim,
        })
    }
}

fn event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: "10.0.0.1".into(),
        timestamp: i,
        message: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimmed_records_are_reported_as_data_loss() {
    let env = common::TestEnv::named("loss").await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<TestEvent>(1).await.unwrap();
    for i in 0..10 {
        client.write(&event(i)).await.unwrap();
    }
    let trim = Arc::new(Mutex::new(None));
    let broker = || async {
        Trimming {
            inner: AnyBroker::from_config(&env.config()).await.unwrap(),
            trim: trim.clone(),
        }
    };
    let loader = Loader::with_broker(env.config(), broker().await)
        .await
        .unwrap();
    loader.setup::<TestEvent>().await.unwrap();
    assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 10);
    for i in 10..20 {
        client.write(&event(i)).await.unwrap();
    }

    // Every sequence number of the shard, in order.
    let stream = env.stream_name("test_events");
    let inner = AnyBroker::from_config(&env.config()).await.unwrap();
    let shard = inner.list_shards(&stream).await.unwrap().remove(0);
    let mut reader = inner
        .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 20 {
        let batch = reader.next_batch(100).await.unwrap();
        assert!(!batch.records.is_empty(), "the 20 records are readable");
        seqs.extend(batch.records.into_iter().map(|r| r.sequence_number));
    }
    // The 11th to 15th records expire before they are loaded.
    *trim.lock().unwrap() = Some(seqs[14].clone());

    match loader.load::<TestEvent>().await {
        Err(Error::DataLoss {
            stream: s,
            shard_id,
            after,
            first_available,
            ..
        }) => {
            assert_eq!(s, stream);
            assert_eq!(shard_id, shard.shard_id);
            assert_eq!(after, seqs[9]);
            assert_eq!(first_available, seqs[15]);
        }
        other => panic!("expected DataLoss, got {other:?}"),
    }
    let pg = env.pg().await;
    let count = || async {
        pg.query_one("SELECT count(*) FROM test_events", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count().await, 10, "nothing loaded past a loss by default");

    // An operator who has seen the loss goes on: the rest loads, the loss is in the report.
    let accepting = Loader::with_broker(
        env.config()
            .into_builder()
            .with_accept_data_loss(true)
            .build()
            .unwrap(),
        broker().await,
    )
    .await
    .unwrap();
    let report = accepting.load::<TestEvent>().await.unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(report.data_loss.len(), 1);
    assert_eq!(report.data_loss[0].after, seqs[9]);
    assert_eq!(count().await, 15);
    // Past the loss, loads are clean again.
    assert!(loader
        .load::<TestEvent>()
        .await
        .unwrap()
        .data_loss
        .is_empty());
}
