//! The stream's limits, not constants: a record is checked against the stream's own maximum
//! record size (`MaxRecordSizeInKiB` of DescribeStreamSummary, page `large-records`), no
//! PutRecords request is built over the request limit (10 MiB, page `API_PutRecords`), and a
//! refusal that retrying cannot fix is final at once for exactly the records it concerns, with
//! an error that says why. Also: a stream whose records Kinesis places itself gets plain
//! records from an aggregating writer.
//!
//! No emulator has per-stream record sizes or service-managed distribution: an SDK interceptor
//! around the real client rewrites DescribeStreamSummary's answer as Kinesis gives it for such a
//! stream. The emulator itself takes HTTP bodies of at most 7 MiB, so a call of ~7 MiB of
//! records (base64 in JSON) is refused as too large (HTTP 413), as any endpoint may refuse one.

use crate::common;

use aws_sdk_kinesis::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_kinesis::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kinesis::operation::describe_stream_summary::DescribeStreamSummaryOutput;
use aws_sdk_kinesis::types::RecordDistributionStrategy;
use redtrack::broker::aggregate::is_aggregated;
use redtrack::broker::{AnyBroker, Broker, KinesisBroker, ShardReader, StartingPosition};
use redtrack::{Client, Error, RedTrackEvent};

/// An event of about `n` KiB (a SUPER array of short strings, so it also loads).
#[derive(Debug, Clone, RedTrackEvent)]
#[redtrack(table = "blobs")]
pub struct Blob {
    pub n: i32,
    pub body: serde_json::Value,
}

fn blob(n: i32, kib: usize) -> Blob {
    let part = "x".repeat(1000);
    Blob {
        n,
        body: serde_json::Value::Array(
            (0..kib * 1024 / 1003)
                .map(|_| serde_json::Value::String(part.clone()))
                .collect(),
        ),
    }
}

/// Rewrites DescribeStreamSummary's answer: the stream's maximum record size and record
/// distribution as configured on a real stream.
#[derive(Debug)]
struct Configured {
    max_record_kib: Option<i32>,
    service_managed: bool,
}

impl Intercept for Configured {
    fn name(&self) -> &'static str {
        "Configured"
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_kinesis::error::BoxError> {
        if let Some(Ok(output)) = context.output_or_error_mut() {
            if let Some(out) = output.downcast_mut::<DescribeStreamSummaryOutput>() {
                if let Some(s) = out.stream_description_summary.as_mut() {
                    s.max_record_size_in_kib = self.max_record_kib;
                    if self.service_managed {
                        s.record_distribution_strategy = Some(RecordDistributionStrategy::Auto);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A Kinesis broker on the emulator whose streams are configured as `configured` says.
async fn broker(env: &common::TestEnv, configured: Configured) -> KinesisBroker {
    let kinesis = env.kinesis().await;
    let conf = kinesis
        .config()
        .to_builder()
        .interceptor(configured)
        .build();
    KinesisBroker::from_client(aws_sdk_kinesis::Client::from_conf(conf))
}

/// Every record of `stream`, from the start.
async fn read_back(env: &common::TestEnv, stream: &str) -> Vec<redtrack::broker::StoredRecord> {
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    let mut out = Vec::new();
    for shard in broker.list_shards(stream).await.unwrap() {
        let mut r = broker
            .read_shard(stream, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        loop {
            let batch = r.next_batch(10_000).await.unwrap();
            let n = batch.records.len();
            out.extend(batch.records);
            if batch.shard_end || n == 0 {
                break;
            }
        }
    }
    out
}

/// Eight events of ~900 KiB coalesce into one call of ~7 MiB, which the endpoint refuses as too
/// large: the call is split, not retried as it was, and every event is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_as_too_large_is_split_not_retried() {
    let env = common::TestEnv::named("too_large").await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<Blob>(1).await.unwrap();
    let mut acks = Vec::new();
    for n in 0..8 {
        acks.push(client.enqueue(&blob(n, 900)).await.unwrap());
    }
    client.flush().await.unwrap();
    for ack in acks {
        ack.await.expect("every event stored");
    }
    let stats = client.stats();
    assert_eq!(stats.records_retried, 0, "nothing retried: {stats:?}");
    assert!(stats.calls <= 8, "{stats:?}");
    let stream = client.stream_name::<Blob>();
    assert_eq!(read_back(&env, &stream).await.len(), 8);
}

/// A record is measured against its own stream's maximum record size: 1 MiB by default (an
/// event of 1.5 MiB fails at once, naming the stream and its limit, and is never sent); on a
/// stream configured for 2 MiB the same event is sent, and when the endpoint (the emulator,
/// which takes 1 MiB) refuses it, that refusal is final for that one event, with why, while the
/// events sent with it are stored; nothing is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_own_record_size_decides_and_a_refusal_is_final_for_its_record() {
    let env = common::TestEnv::named("rec_size").await;
    // A stream as created: records of up to 1 MiB.
    let plain = Client::with_broker(
        env.config(),
        broker(
            &env,
            Configured {
                max_record_kib: None,
                service_managed: false,
            },
        )
        .await,
    );
    plain.create_stream::<Blob>(1).await.unwrap();
    let stream = plain.stream_name::<Blob>();
    plain.write(&blob(0, 10)).await.unwrap();
    match plain.write(&blob(1, 1500)).await {
        Err(Error::RecordTooLarge {
            table,
            stream: s,
            limit,
            ..
        }) => {
            assert_eq!(
                (table, s.as_str(), limit),
                ("blobs", stream.as_str(), 1 << 20)
            );
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(
        read_back(&env, &stream).await.len(),
        1,
        "the large one was never sent"
    );

    // The same stream configured for large records of up to 2 MiB.
    let large = Client::with_broker(
        env.config(),
        broker(
            &env,
            Configured {
                max_record_kib: Some(2048),
                service_managed: false,
            },
        )
        .await,
    );
    let small: Vec<_> = (10..16).map(|n| blob(n, 10)).collect();
    let mut acks = Vec::new();
    for (i, e) in small.iter().enumerate() {
        acks.push(large.enqueue(e).await.unwrap());
        if i == 2 {
            acks.push(large.enqueue(&blob(99, 1500)).await.unwrap());
        }
    }
    large.flush().await.unwrap();
    let mut results = Vec::new();
    for ack in acks {
        results.push(ack.await);
    }
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "{results:?}");
    assert!(
        results[3].is_err(),
        "the large event is the one refused: {results:?}"
    );
    let why = failed[0].to_string();
    assert!(why.contains("retrying cannot help"), "{why}");
    assert!(!failed[0].is_retryable(), "{why}");
    let stats = large.stats();
    assert_eq!(stats.records_retried, 0, "{stats:?}");
    assert_eq!(read_back(&env, &stream).await.len(), 1 + small.len());

    // Over the largest record any stream takes: refused at once, never sent. Such an event is
    // also over the 4 MB of a JSON object COPY reads (copy-parameters-data-format), which the
    // encoder checks first.
    let err = large.write(&blob(100, 10 * 1024 + 1)).await.unwrap_err();
    assert!(
        matches!(err, Error::Encode(_)) && err.to_string().contains("at most 4194304 bytes"),
        "{err}"
    );
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(read_back(&env, &stream).await.len(), 1 + small.len());
}

/// On a stream whose records Kinesis places itself, no aggregate could stay within a shard: an
/// aggregating writer sends plain records (page `service-managed-pk-kpl-aggregation`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_managed_stream_gets_plain_records() {
    let env = common::TestEnv::named("svc_managed").await;
    let config = env.config().into_builder().with_aggregation(true).build();
    let client = Client::with_broker(
        config.unwrap(),
        broker(
            &env,
            Configured {
                max_record_kib: None,
                service_managed: true,
            },
        )
        .await,
    );
    client.create_stream::<Blob>(2).await.unwrap();
    for n in 0..300 {
        drop(client.enqueue(&blob(n, 1)).await.unwrap());
    }
    client.flush().await.unwrap();
    let records = read_back(&env, &client.stream_name::<Blob>()).await;
    assert_eq!(records.len(), 300);
    assert!(records.iter().all(|r| !is_aggregated(&r.data)));
}
