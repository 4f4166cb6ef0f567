//! A checkpoint older than the stream's retention (records trimmed before they were loaded) is
//! reported loudly, as data loss naming the shard and the lost range, never skipped quietly.
//!
//! The emulator keeps records for 24 hours, so trimming is simulated by a broker that wraps the
//! real one and hides every record up to a trim point, as Kinesis does past its retention, and
//! reports the retention it emulates (Kinesis never trims a record sooner, and the loader's
//! data-loss rule rests on that).
//!
//! Both ways are tested: expired records that were loaded are no loss (a quiet shard, several
//! shards, a reshard, idle loads in between), and unread records trimmed are a loss, reported
//! with the stream, the shard and the range; on every backend (the bookkeeping is SQL of its
//! own: PostgreSQL, and the Redshift stand-in provisioned and Serverless).

use crate::{common, seed};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redtrack::broker::{
    cmp_sequence_numbers, AnyBroker, AnyReader, Broker, PutOutcome, PutRecord, ReadBatch,
    SequenceNumber, ShardInfo, ShardReader, StartingPosition, StreamInfo,
};
use redtrack::{Client, Error, Loader};
use seed::TestEvent;

/// Where each shard is trimmed: every record up to its sequence number (inclusive) is gone.
type TrimPoints = Arc<Mutex<HashMap<String, SequenceNumber>>>;

/// The real broker with the records up to each shard's trim point gone, on a stream keeping
/// records for `retention`.
struct Trimming {
    inner: AnyBroker,
    trim: TrimPoints,
    retention: Duration,
}

/// Kinesis' default retention.
const DAY: Duration = Duration::from_secs(24 * 3600);

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

    async fn stream_info(&self, stream: &str) -> redtrack::Result<StreamInfo> {
        let real = self.inner.stream_info(stream).await?;
        Ok(StreamInfo::new(
            Some(self.retention),
            real.max_record_bytes,
            real.service_managed_distribution,
        ))
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> redtrack::Result<TrimReader> {
        let trim = self.trim.lock().unwrap().get(shard_id).cloned();
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

crate::each_backend! {
    /// Records written after a load and trimmed before the next one read them are a loss: the
    /// stream keeps records for two seconds, and the loader looks again only after three.
    async fn trimmed_records_are_reported_as_data_loss(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(1).await.unwrap();
        for i in 0..10 {
            client.write(&event(i)).await.unwrap();
        }
        let trim = TrimPoints::default();
        let broker = || async {
            Trimming {
                inner: AnyBroker::from_config(&env.config()).await.unwrap(),
                trim: trim.clone(),
                retention: Duration::from_secs(2),
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
        // The 11th to 15th records expire before they are loaded (after the retention).
        tokio::time::sleep(Duration::from_secs(3)).await;
        trim.lock()
            .unwrap()
            .insert(shard.shard_id.clone(), seqs[14].clone());

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
}

/// The last sequence number of every shard of `stream` (those that have records), read from the
/// real broker.
async fn last_sequence_numbers(
    env: &common::TestEnv,
    stream: &str,
) -> HashMap<String, SequenceNumber> {
    let inner = AnyBroker::from_config(&env.config()).await.unwrap();
    let mut last = HashMap::new();
    for shard in inner.list_shards(stream).await.unwrap() {
        let mut reader = inner
            .read_shard(stream, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        loop {
            let batch = reader.next_batch(1000).await.unwrap();
            if let Some(r) = batch.records.last() {
                last.insert(shard.shard_id.clone(), r.sequence_number.clone());
            }
            if batch.records.is_empty() || batch.shard_end {
                break;
            }
        }
    }
    last
}

/// Everything written to `stream` so far expires.
async fn expire_everything(env: &common::TestEnv, stream: &str, trim: &TrimPoints) {
    let last = last_sequence_numbers(env, stream).await;
    assert!(!last.is_empty());
    *trim.lock().unwrap() = last;
}

crate::each_backend! {
    /// The reproducer: a quiet shard whose loaded records all expire is not a lost shard.
    async fn a_quiet_shard_whose_loaded_records_expired_loses_nothing(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(1).await.unwrap();
        for i in 0..10 {
            client.write(&event(i)).await.unwrap();
        }
        let trim = TrimPoints::default();
        let broker = Trimming {
            inner: AnyBroker::from_config(&env.config()).await.unwrap(),
            trim: trim.clone(),
            retention: DAY,
        };
        let loader = Loader::with_broker(env.config(), broker)
            .await
            .unwrap();
        loader.setup::<TestEvent>().await.unwrap();
        assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 10);

        // The ten loaded records expire; the shard stays quiet.
        let stream = env.stream_name("test_events");
        expire_everything(&env, &stream, &trim).await;
        let idle = loader.load::<TestEvent>().await.unwrap();
        assert_eq!((idle.records, idle.data_loss.len()), (0, 0));

        for i in 10..20 {
            client.write(&event(i)).await.unwrap();
        }
        let report = loader.load::<TestEvent>().await.unwrap();
        assert_eq!(report.records, 10, "{report:?}");
        assert!(report.data_loss.is_empty(), "{report:?}");
        assert_eq!(
            env.count_distinct("test_events", "timestamp").await,
            (20, 20)
        );
    }
}

crate::each_backend! {
    /// The same with several shards, a reshard, and any number of idle loads in between: only
    /// loaded records expired, so nothing is reported lost and every new event loads once.
    async fn expired_loaded_records_are_no_loss_across_shards_idle_loads_and_a_reshard(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(2).await.unwrap();
        let trim = TrimPoints::default();
        let broker = Trimming {
            inner: AnyBroker::from_config(&env.config()).await.unwrap(),
            trim: trim.clone(),
            retention: DAY,
        };
        let loader = Loader::with_broker(env.config(), broker)
            .await
            .unwrap();
        loader.setup::<TestEvent>().await.unwrap();
        let stream = env.stream_name("test_events");
        let mut next = 0;
        let mut write = |n: i32| {
            let (from, client) = (next, client.clone());
            next += n;
            async move {
                for i in from..from + n {
                    client.write(&event(i)).await.unwrap();
                }
            }
        };

        write(40).await;
        assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 40);
        assert_eq!(client.split_shards::<TestEvent>().await.unwrap(), 2);
        write(40).await;
        assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 40);

        // Everything loaded so far expires, in every shard; three quiet loads follow.
        expire_everything(&env, &stream, &trim).await;
        for _ in 0..3 {
            let idle = loader.load::<TestEvent>().await.unwrap();
            assert_eq!((idle.records, idle.data_loss.len()), (0, 0), "{idle:?}");
        }

        write(40).await;
        let report = loader.load::<TestEvent>().await.unwrap();
        assert_eq!(report.records, 40, "{report:?}");
        assert!(report.data_loss.is_empty(), "{report:?}");
        assert_eq!(
            env.count_distinct("test_events", "timestamp").await,
            (120, 120)
        );
    }
}

crate::each_backend! {
    /// A loader that keeps running keeps a quiet shard's bookkeeping fresh: on a stream keeping
    /// records for four seconds, idle loads every second record that they found the shard caught up,
    /// so when the loaded records expire six seconds after the last load that read any, nothing is
    /// reported lost. A loader that stopped as long (the second half) reports the possible loss.
    async fn idle_loads_keep_a_quiet_shard_known_caught_up(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(1).await.unwrap();
        let trim = TrimPoints::default();
        let retention = Duration::from_secs(4);
        let broker = Trimming {
            inner: AnyBroker::from_config(&env.config()).await.unwrap(),
            trim: trim.clone(),
            retention,
        };
        let loader = Loader::with_broker(env.config(), broker)
            .await
            .unwrap();
        loader.setup::<TestEvent>().await.unwrap();
        let stream = env.stream_name("test_events");

        for i in 0..10 {
            client.write(&event(i)).await.unwrap();
        }
        assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 10);
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 0);
        }
        expire_everything(&env, &stream, &trim).await;
        for i in 10..20 {
            client.write(&event(i)).await.unwrap();
        }
        let report = loader.load::<TestEvent>().await.unwrap();
        assert_eq!(
            (report.records, report.data_loss.len()),
            (10, 0),
            "{report:?}"
        );

        // Now the loader stops for longer than the retention while the shard is quiet; its last
        // loaded record expires and new ones arrive: records may have come and gone unseen.
        tokio::time::sleep(retention + Duration::from_secs(1)).await;
        expire_everything(&env, &stream, &trim).await;
        let last = trim.lock().unwrap().clone();
        client.write(&event(20)).await.unwrap();
        match loader.load::<TestEvent>().await {
            Err(Error::DataLoss {
                stream: s,
                shard_id,
                after,
                ..
            }) => {
                assert_eq!(s, stream);
                assert_eq!(Some(&after), last.get(&shard_id));
            }
            other => panic!("expected DataLoss, got {other:?}"),
        }
    }
}
