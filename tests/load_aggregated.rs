//! Events written as KPL aggregates (many events per Kinesis record) are de-aggregated by the
//! loader: every event becomes one row.

mod common;
#[path = "../examples/seed/mod.rs"]
mod seed;

use redtrack::{Client, Loader};
use seed::TestEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_load_one_row_per_event() {
    let env = common::TestEnv::named("kpl").await;
    let config = env
        .config()
        .into_builder()
        .with_aggregation(true)
        .build()
        .unwrap();
    let client = Client::new(config).await.unwrap();
    client.create_stream::<TestEvent>(2).await.unwrap();
    for i in 0..1000 {
        drop(
            client
                .enqueue(&TestEvent {
                    client_ip: "10.7.7.7".into(),
                    timestamp: i,
                    message: Some(format!("aggregated {i}")),
                })
                .await
                .unwrap(),
        );
    }
    client.flush().await.unwrap();
    let loader = Loader::new(env.config()).await.unwrap();
    loader.setup::<TestEvent>().await.unwrap();
    let report = loader.load::<TestEvent>().await.unwrap();
    assert_eq!(report.records, 1000);
    assert!(
        report.kinesis_records < 1000,
        "events were aggregated: {} Kinesis records",
        report.kinesis_records
    );
    let pg = env.pg().await;
    let row = pg
        .query_one(
            "SELECT count(*), count(DISTINCT timestamp) FROM test_events WHERE message LIKE 'aggregated %'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1000, 1000));
}
