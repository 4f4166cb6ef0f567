//! `kinesis_loads` queries compare sequence numbers numerically (up to 129 digits, stored as
//! text), in SQL, with bound parameters: the latest checkpoint per shard and the overlap check.
//! A `kinesis_loads` of the Ruby gem (its six columns, its rows) keeps working: `setup` adds
//! redtrack's columns and the loader goes on from the gem's checkpoints.

use crate::seed;

use redtrack::__test::{read_checkpoints, OVERLAP_SQL};
use redtrack::broker::{AnyBroker, Broker, ShardReader, StartingPosition};
use redtrack::{Client, Loader};
use seed::TestEvent;

crate::each_backend! {
    async fn sequence_numbers_compare_numerically(env: TestEnv) {
        env.loader::<TestEvent>().await;
        // The loader's own statements, through the warehouse (the stand-in on Redshift).
        let pg = env.warehouse().await;
        let long = format!("1{}", "0".repeat(128)); // 129 digits
        let rows: &[(&str, &str, &str)] = &[
            ("a", "9", "99"),
            ("a", "100", "250"), // longer, so larger, though "250" < "99" as text
            ("b", "0098", "0099"),
            ("b", "5", &long),
            ("c", "1", "9"),
        ];
        for (shard, start, end) in rows {
            pg.execute(
                "INSERT INTO kinesis_loads VALUES ('s', $1, 't', $2, $3, '2024-01-01 00:00:00')",
                &[shard, start, end],
            )
            .await
            .unwrap();
        }
        let cps = read_checkpoints(&pg, "s").await.unwrap();
        assert_eq!(cps["a"].sequence_number, "250");
        assert_eq!(cps["b"].sequence_number, long);
        assert_eq!(cps["c"].sequence_number, "9");
        assert!(read_checkpoints(&pg, "other").await.unwrap().is_empty());

        let overlaps = |shard: &'static str, first: &'static str, last: &'static str| {
            let pg = &pg;
            async move {
                !pg.query(OVERLAP_SQL, &[&"s", &shard, &first, &last])
                    .await
                    .unwrap()
                    .is_empty()
            }
        };
        assert!(!overlaps("a", "251", "1000").await);
        assert!(overlaps("a", "250", "1000").await);
        assert!(overlaps("a", "10", "20").await);
        assert!(!overlaps("a", "1", "8").await);
        assert!(!overlaps("c", "10", "99").await, "10 > 9 numerically");
        assert!(overlaps("b", "6", "7").await, "inside 5..=10^128");
        assert!(!overlaps("b", "1", "4").await);
    }

    /// A gem deployment's `kinesis_loads`, made by the gem in the warehouse, with the gem's rows.
    async fn a_gem_deployments_kinesis_loads_goes_on_from_its_checkpoints(env: TestEnv) {
        let pg = env.pg().await;
        // The gem's table: its six columns and nothing else.
        env.warehouse()
            .await
            .batch_execute(
                "CREATE TABLE kinesis_loads (stream_name VARCHAR(256), shard_id VARCHAR(256), \
                 table_name VARCHAR(256), starting_sequence_number VARCHAR(256), \
                 ending_sequence_number VARCHAR(256), load_timestamp TIMESTAMP)",
            )
            .await
            .unwrap();
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(1).await.unwrap();
        for i in 0..10 {
            client
                .write(&TestEvent {
                    client_ip: "10.1.1.1".into(),
                    timestamp: i,
                    message: None,
                })
                .await
                .unwrap();
        }
        let stream = env.stream_name("test_events");
        let broker = AnyBroker::from_config(&env.config()).await.unwrap();
        let shard = broker.list_shards(&stream).await.unwrap().remove(0);
        let mut reader = broker
            .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
            .await
            .unwrap();
        let seqs: Vec<String> = reader
            .next_batch(100)
            .await
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.sequence_number.into_string())
            .collect();
        assert_eq!(seqs.len(), 10);
        // The gem loaded the first four events.
        pg.execute(
            "INSERT INTO kinesis_loads VALUES ($1, $2, 'test_events', $3, $4, now())",
            &[&stream, &shard.shard_id, &seqs[0], &seqs[3]],
        )
        .await
        .unwrap();

        let loader = Loader::new(env.config()).await.unwrap();
        // Before setup, the loader says what to do instead of failing on a missing column.
        let err = loader.load::<TestEvent>().await.unwrap_err().to_string();
        assert!(err.contains("run setup"), "{err}");
        loader.setup::<TestEvent>().await.unwrap();
        loader.setup::<TestEvent>().await.unwrap();
        let report = loader.load::<TestEvent>().await.unwrap();
        assert_eq!(report.records, 6, "{report:?}");
        let rows = pg
            .query(
                "SELECT starting_sequence_number, caught_up_at IS NOT NULL FROM kinesis_loads \
                 ORDER BY load_timestamp",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "the gem's row stays, redtrack's follows");
        assert_eq!(rows[0].get::<_, String>(0), seqs[0]);
        assert!(!rows[0].get::<_, bool>(1), "the gem's row has no caught_up_at");
        assert!(rows[1].get::<_, bool>(1), "this load reached the shard's tip");
        let (n, distinct) = env.count_distinct("test_events", "timestamp").await;
        assert_eq!((n, distinct), (6, 6));
    }
}
