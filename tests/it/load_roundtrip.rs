//! Events of both seed tables (and the types they lack) written to Kinesis over several shards,
//! then loaded through the S3 stage into PostgreSQL: exactly as many rows, with the values
//! written.

use crate::{common, seed};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use redtrack::{Client, Loader, RedTrackEvent};
use rust_decimal::Decimal;
use seed::{TestAllTypes, TestEvent};

/// The types the seed tables lack.
#[derive(Debug, Clone, PartialEq, RedTrackEvent)]
#[redtrack(table = "more_types")]
pub struct MoreTypes {
    pub id: i64,
    pub at_tz: DateTime<Utc>,
    pub at_time: Option<NaiveTime>,
    pub payload: Option<serde_json::Value>,
    pub text: Option<String>,
}

fn test_event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: format!("10.0.{}.{}", i / 256, i % 256),
        timestamp: 1_700_000_000 + i,
        message: (i % 3 != 0).then(|| format!("message {i} ✓ \"quoted\" \\ back")),
    }
}

fn all_types(i: i32) -> TestAllTypes {
    let some = i % 2 == 0;
    TestAllTypes {
        test_smallint: some.then_some((i % 30_000) as i16 - 15_000),
        test_integer: i,
        test_bigint: some.then_some(i64::MAX - i as i64),
        test_decimal: some.then(|| Decimal::new(i as i64 * 101 - 5000, 2)),
        test_real: some.then_some(i as f32 * 0.5),
        test_double: some.then_some(i as f64 / 3.0),
        test_bool: some.then_some(i % 4 == 0),
        test_char: some.then(|| format!("c{i}")),
        test_varchar: format!("v{i} é"),
        test_date: some.then(|| {
            NaiveDate::from_ymd_opt(2024, 1 + (i % 12) as u32, 1 + (i % 28) as u32).unwrap()
        }),
        test_timestamp: some.then(|| {
            NaiveDate::from_ymd_opt(2025, 6, 1)
                .unwrap()
                .and_hms_micro_opt(12, (i % 60) as u32, 7, (i as u32 * 7919) % 1_000_000)
                .unwrap()
        }),
    }
}

fn more_types(i: i32) -> MoreTypes {
    MoreTypes {
        id: i as i64,
        at_tz: DateTime::<Utc>::from_timestamp(1_700_000_000 + i as i64, 123_456_000).unwrap(),
        at_time: (i % 2 == 0)
            .then(|| NaiveTime::from_hms_micro_opt(1, 2, (i % 60) as u32, 5).unwrap()),
        payload: (i % 2 == 1)
            .then(|| serde_json::json!({"i": i, "list": [1, "two", null], "nested": {"ok": true}})),
        text: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_seed_tables_round_trip() {
    let env = common::TestEnv::named("rt").await;
    let client = Client::new(env.config()).await.unwrap();
    client.create_stream::<TestEvent>(3).await.unwrap();
    client.create_stream::<TestAllTypes>(2).await.unwrap();
    client.create_stream::<MoreTypes>(1).await.unwrap();
    const N: i32 = 600;
    for i in 0..N {
        drop(client.enqueue(&test_event(i)).await.unwrap());
        drop(client.enqueue(&all_types(i)).await.unwrap());
        drop(client.enqueue(&more_types(i)).await.unwrap());
    }
    client.flush().await.unwrap();

    let loader = Loader::new(env.config()).await.unwrap();
    for _ in 0..2 {
        loader.setup::<TestEvent>().await.unwrap();
        loader.setup::<TestAllTypes>().await.unwrap();
        loader.setup::<MoreTypes>().await.unwrap();
    }
    let r = loader.load::<TestEvent>().await.unwrap();
    assert_eq!(r.records, N as u64);
    assert_eq!(r.rejected, 0);
    assert_eq!(r.ranges.len(), 3, "every shard had records: {:?}", r.ranges);
    assert_eq!(
        loader.records_read(),
        r.kinesis_records,
        "progress counts what was read"
    );
    assert_eq!(
        loader.load::<TestAllTypes>().await.unwrap().records,
        N as u64
    );
    assert_eq!(loader.load::<MoreTypes>().await.unwrap().records, N as u64);
    // A second pass finds nothing new.
    assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 0);

    let pg = env.pg().await;
    pg.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
    let rows = pg
        .query(
            "SELECT client_ip, timestamp, message FROM test_events ORDER BY timestamp",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<TestEvent> = rows
        .iter()
        .map(|r| TestEvent {
            client_ip: r.get(0),
            timestamp: r.get(1),
            message: r.get(2),
        })
        .collect();
    let want: Vec<TestEvent> = (0..N).map(test_event).collect();
    assert_eq!(got, want);

    let rows = pg
        .query(
            "SELECT test_smallint, test_integer, test_bigint, test_decimal::text, test_real, \
             test_double, test_bool, rtrim(test_char), test_varchar, test_date, test_timestamp \
             FROM test_all_types ORDER BY test_integer",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<TestAllTypes> = rows
        .iter()
        .map(|r| TestAllTypes {
            test_smallint: r.get(0),
            test_integer: r.get(1),
            test_bigint: r.get(2),
            test_decimal: r.get::<_, Option<String>>(3).map(|s| s.parse().unwrap()),
            test_real: r.get(4),
            test_double: r.get(5),
            test_bool: r.get(6),
            test_char: r.get(7),
            test_varchar: r.get(8),
            test_date: r.get(9),
            test_timestamp: r.get::<_, Option<NaiveDateTime>>(10),
        })
        .collect();
    let want: Vec<TestAllTypes> = (0..N).map(all_types).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }

    let rows = pg
        .query(
            "SELECT id, at_tz, at_time, payload, text FROM more_types ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<MoreTypes> = rows
        .iter()
        .map(|r| MoreTypes {
            id: r.get(0),
            at_tz: r.get(1),
            at_time: r.get(2),
            payload: r.get(3),
            text: r.get(4),
        })
        .collect();
    let want: Vec<MoreTypes> = (0..N).map(more_types).collect();
    assert_eq!(got, want);

    // kinesis_loads holds one range per shard, in the original's columns.
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM kinesis_loads WHERE table_name = 'test_events' \
             AND stream_name = $1 AND load_timestamp IS NOT NULL",
            &[&env.stream_name("test_events")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    let cps = loader.checkpoints::<TestEvent>().await.unwrap();
    assert_eq!(cps.len(), 3);
    let status = loader.status::<TestEvent>().await.unwrap();
    assert!(status.iter().all(|s| s.checkpoint.is_some() && !s.done));
}
