//! Client behaviour that needs no services: secrets stay out of `Debug`, a dropped client with
//! unanswered records says so loudly (and still delivers them while the runtime lives).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redtrack::broker::{AnyBroker, Broker, ShardReader, StartingPosition};
use redtrack::{BrokerKind, Client, Config, RedTrackEvent};

#[derive(RedTrackEvent)]
#[redtrack(table = "client_events")]
pub struct ClientEvent {
    pub n: i32,
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("redtrack-client-{}", rand::random::<u64>()))
}

/// A configuration builder for a file broker in `dir`.
fn file_broker(dir: &std::path::Path) -> redtrack::ConfigBuilder {
    Config::builder()
        .cluster("c")
        .database("d")
        .broker(BrokerKind::File(dir.to_owned()))
}

#[tokio::test]
async fn secrets_stay_out_of_debug() {
    let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let creds = aws_sdk_kinesis::config::Credentials::new("AKIDEXAMPLE", secret, None, None, "t");
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::SharedCredentialsProvider::new(
            creds,
        ))
        .build();
    let config = Config::builder()
        .cluster("c")
        .database("d")
        .warehouse_url(format!("postgres://user:{secret}@localhost/db"))
        .with_sdk_config(sdk)
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    for shown in [format!("{client:?}"), format!("{:?}", client.broker())] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

/// Collects what tracing writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn dropping_a_client_with_unanswered_records_logs_an_error() {
    let dir = temp_dir();
    let config = file_broker(&dir).build().unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = Client::new(config.clone()).await.unwrap();
    client.create_stream::<ClientEvent>(1).await.unwrap();
    // On this single-threaded runtime nothing is sent before the task yields.
    let mut acks = Vec::new();
    for n in 0..3 {
        acks.push(client.enqueue(&ClientEvent { n }).await.unwrap());
    }
    assert_eq!(client.unanswered(), 3);
    drop(client);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("3 records not yet acknowledged"), "{log}");

    // The batcher goes on while the runtime lives: the records still arrive.
    for a in acks {
        tokio::time::timeout(Duration::from_secs(10), a)
            .await
            .unwrap()
            .unwrap();
    }
    let broker = AnyBroker::from_config(&config).await.unwrap();
    let stream = config.stream_name(ClientEvent::TABLE_NAME);
    let shard = broker.list_shards(&stream).await.unwrap().remove(0);
    let mut r = broker
        .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
        .await
        .unwrap();
    assert_eq!(r.next_batch(10).await.unwrap().records.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn flush_waits_for_every_earlier_record() {
    let dir = temp_dir();
    let config = file_broker(&dir)
        .with_linger(Duration::from_secs(3600))
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<ClientEvent>(2).await.unwrap();
    let mut acks = Vec::new();
    for n in 0..1_200 {
        acks.push(client.enqueue(&ClientEvent { n }).await.unwrap());
    }
    // The hour-long linger does not hold a flush up.
    tokio::time::timeout(Duration::from_secs(10), client.flush())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.unanswered(), 0);
    for a in acks {
        a.await.unwrap();
    }
    let stats = client.stats();
    assert_eq!(stats.events_acked, 1_200);
    assert!(stats.calls >= 3, "at most 500 records per call: {stats:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An event whose hand-written partition key is given by the test.
struct KeyedEvent(String);

impl RedTrackEvent for KeyedEvent {
    const TABLE_NAME: &'static str = "client_events";
    fn schema() -> &'static redtrack::TableSchema {
        ClientEvent::schema()
    }
    fn encode_json(&self, buf: &mut Vec<u8>) -> Result<(), redtrack::EncodeError> {
        buf.extend_from_slice(b"{\"n\":1}");
        Ok(())
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn partition_keys_are_measured_in_utf16_units_as_kinesis_counts_them() {
    let dir = temp_dir();
    let config = file_broker(&dir).build().unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<ClientEvent>(1).await.unwrap();
    // 128 emoji are 256 UTF-16 units: the limit exactly.
    client.write(&KeyedEvent("😀".repeat(128))).await.unwrap();
    // 129 emoji are 129 characters but 258 units: Kinesis would fail the whole batch.
    let err = client
        .write(&KeyedEvent("😀".repeat(129)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, redtrack::Error::InvalidPartitionKey { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("258 UTF-16 code units"), "{err}");
    let err = client.write(&KeyedEvent(String::new())).await.unwrap_err();
    assert!(
        matches!(err, redtrack::Error::InvalidPartitionKey { .. }),
        "{err:?}"
    );
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// A broker of the application's own: here the file broker behind a wrapper that counts the
/// PutRecords calls and remembers every sequence number it was given.
struct Counting {
    inner: redtrack::broker::FileBroker,
    calls: Arc<Mutex<Vec<redtrack::SequenceNumber>>>,
}

impl Broker for Counting {
    type Reader = redtrack::broker::FileReader;

    async fn create_stream(&self, stream: &str, shards: u32) -> redtrack::Result<()> {
        self.inner.create_stream(stream, shards).await
    }

    async fn split_shards(&self, stream: &str) -> redtrack::Result<usize> {
        self.inner.split_shards(stream).await
    }

    async fn put_records(
        &self,
        stream: &str,
        records: &[redtrack::broker::PutRecord],
    ) -> redtrack::Result<Vec<redtrack::broker::PutOutcome>> {
        let out = self.inner.put_records(stream, records).await?;
        let mut seen = self.calls.lock().unwrap();
        for o in &out {
            if let redtrack::broker::PutOutcome::Stored {
                sequence_number, ..
            } = o
            {
                seen.push(sequence_number.clone());
            }
        }
        Ok(out)
    }

    async fn list_shards(
        &self,
        stream: &str,
    ) -> redtrack::Result<Vec<redtrack::broker::ShardInfo>> {
        self.inner.list_shards(stream).await
    }

    async fn read_shard(
        &self,
        stream: &str,
        shard_id: &str,
        from: StartingPosition,
    ) -> redtrack::Result<Self::Reader> {
        self.inner.read_shard(stream, shard_id, from).await
    }
}

/// `Client::with_broker` takes any `Broker`, as `Loader::with_broker` does: the writes go through
/// the application's broker and are acknowledged with its sequence numbers.
#[tokio::test]
async fn a_client_writes_through_a_broker_of_the_applications_own() {
    let dir = temp_dir();
    let config = file_broker(&dir).build().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let broker = Counting {
        inner: redtrack::broker::FileBroker::new(&dir).unwrap(),
        calls: calls.clone(),
    };
    let client = Client::with_broker(config, broker);
    client.create_stream::<ClientEvent>(1).await.unwrap();
    for n in 0..25 {
        client.write(&ClientEvent { n }).await.unwrap();
    }
    client.close().await.unwrap();
    let stored = calls.lock().unwrap().clone();
    assert_eq!(
        stored.len(),
        25,
        "every write went through the application's broker"
    );

    // What it stored is in the stream, in the order of its sequence numbers.
    let stream = client.stream_name::<ClientEvent>();
    let shard = client
        .broker()
        .list_shards(&stream)
        .await
        .unwrap()
        .remove(0);
    let mut reader = client
        .broker()
        .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
        .await
        .unwrap();
    let batch = reader.next_batch(100).await.unwrap();
    let read: Vec<_> = batch
        .records
        .iter()
        .map(|r| r.sequence_number.clone())
        .collect();
    let mut sorted = stored.clone();
    sorted.sort();
    assert_eq!(read, sorted);
    let _ = std::fs::remove_dir_all(&dir);
}
