//! Bad rows with MAXERROR: with MAXERROR 0 the load fails whole, naming the first bad row; with
//! room for them, the rejects are reported, kept in `redtrack_load_rejects`, and the rest load.
//! Also: the original gem's `{"data": "<json>"}` envelope loads like plain JSON. On every backend,
//! alike: the loader's check of each record rejects them before COPY.

use crate::seed;

use bytes::Bytes;
use redtrack::broker::{AnyBroker, Broker, PutRecord};
use redtrack::{Client, Error, Loader};
use seed::TestEvent;

crate::each_backend! {
    async fn maxerror_rejects_are_reported_and_kept(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(1).await.unwrap();
        for i in 0..50 {
            drop(
                client
                    .enqueue(&TestEvent {
                        client_ip: "1.1.1.1".into(),
                        timestamp: i,
                        message: None,
                    })
                    .await
                    .unwrap(),
            );
        }
        client.flush().await.unwrap();
        let raw = |s: &str| PutRecord {
            partition_key: "k".into(),
            data: Bytes::from(s.to_owned()),
        };
        let broker = AnyBroker::from_config(&env.config()).await.unwrap();
        let stream = env.stream_name("test_events");
        let records = vec![
            raw(r#"{"client_ip":"2.2.2.2","timestamp":"soon"}"#),
            raw("this is not json"),
            raw(&format!(
                r#"{{"client_ip":"{}","timestamp":1001}}"#,
                "x".repeat(40)
            )),
            raw(r#"{"data":"{\"client_ip\":\"9.9.9.9\",\"timestamp\":99,\"extra\":1}"}"#),
            // On Redshift a NULL for a NOT NULL column fails the whole COPY whatever MAXERROR
            // says (c_loading_default_values): the loader's check rejects this record alone
            // before COPY, on every backend.
            raw(r#"{"timestamp":1000}"#),
        ];
        let bad = records.len() as u64 - 1;
        broker.put_records(&stream, &records).await.unwrap();

        let strict = Loader::new(env.config()).await.unwrap();
        strict.setup::<TestEvent>().await.unwrap();
        match strict.load::<TestEvent>().await {
            Err(Error::LoadRejected {
                table, max_errors, ..
            }) => {
                assert_eq!(table, "test_events");
                assert_eq!(max_errors, 0);
            }
            other => panic!("expected LoadRejected, got {other:?}"),
        }
        let pg = env.pg().await;
        let n: i64 = pg
            .query_one("SELECT count(*) FROM test_events", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "a rejected load loads nothing");
        let n: i64 = pg
            .query_one("SELECT count(*) FROM kinesis_loads", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "a rejected load records no range");
        // ...but its first bad row is kept, so `errors --table` can show why it failed.
        let failed = strict.rejects::<TestEvent>(100).await.unwrap();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0]
                .row
                .reason
                .starts_with("load failed, nothing loaded"),
            "{failed:?}"
        );
        assert!(!failed[0].row.file.is_empty(), "{failed:?}");

        // With room for exactly the bad rows: reported, kept, the rest loaded.
        let lenient = Loader::new(
            env.config()
                .into_builder()
                .with_max_errors(bad)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        let report = lenient.load::<TestEvent>().await.unwrap();
        assert_eq!(
            report.records, 51,
            "50 plain events and one in the gem's envelope"
        );
        assert_eq!(report.rejected, bad);
        let mut reasons: Vec<(String, String, String)> = report
            .rejects
            .iter()
            .map(|r| (r.column.clone(), r.value.clone(), r.reason.to_lowercase()))
            .collect();
        reasons.sort();
        // (column, raw value, words of the reason: PostgreSQL's or Redshift's)
        let want: Vec<(&str, String, &[&str])> = vec![
            ("", "this is not json".into(), &["json"]), // not JSON: no column
            ("client_ip", String::new(), &["not null"]), // missing: no value
            ("client_ip", "x".repeat(40), &["too long", "length exceeds"]),
            ("timestamp", "soon".into(), &["integer"]),
        ];
        assert_eq!(reasons.len(), want.len(), "{reasons:?}");
        for (got, want) in reasons.iter().zip(&want) {
            assert_eq!(got.0, want.0, "{reasons:?}");
            assert_eq!(got.1, want.1, "the raw value of {}: {reasons:?}", want.0);
            assert!(want.2.iter().any(|w| got.2.contains(w)), "{reasons:?}");
        }
        assert!(report.rejects.iter().all(|r| !r.file.is_empty()));
        let kept = lenient.rejects::<TestEvent>(100).await.unwrap();
        assert_eq!(
            kept.len() as u64,
            bad + 1,
            "the failed load's one and this load's rejects: {kept:?}"
        );
        assert!(kept.iter().any(|k| k.row.value == "soon"));
        assert!(kept.iter().any(|k| k.row.value == "this is not json"));
        let envelope: i64 = pg
            .query_one(
                "SELECT count(*) FROM test_events WHERE client_ip = '9.9.9.9'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(envelope, 1);
        assert_eq!(lenient.load::<TestEvent>().await.unwrap().records, 0);
    }
}

/// A stage whose file URLs would not fit in `sys_load_error_detail.file_name` (256 bytes) is
/// refused before anything is read or staged, naming the table and the limit: a reject could no
/// longer be matched to its file.
#[tokio::test]
async fn staged_file_names_must_fit_the_load_error_tables() {
    let env = crate::common::TestEnv::on(crate::common::Backend::RedshiftServerless, "fname").await;
    let config = env
        .config()
        .into_builder()
        .stage(redtrack::StageLocation::S3 {
            bucket: env.bucket(),
            prefix: format!("{}/{}", env.prefix(), "p".repeat(150)),
        })
        .build()
        .unwrap();
    let client = Client::new(config.clone()).await.unwrap();
    client.create_stream::<TestEvent>(1).await.unwrap();
    client
        .write(&TestEvent {
            client_ip: "1.1.1.1".into(),
            timestamp: 1,
            message: None,
        })
        .await
        .unwrap();
    let loader = Loader::new(config).await.unwrap();
    loader.setup::<TestEvent>().await.unwrap();
    let e = loader.load::<TestEvent>().await.unwrap_err().to_string();
    assert!(e.contains("`test_events`"), "{e}");
    assert!(e.contains("at most 256 bytes"), "{e}");
    assert!(e.contains("sys_load_error_detail.file_name"), "{e}");
}

crate::each_backend! {
    /// `with_max_errors(n)`: up to n rows rejected in all, staging rejects (not JSON) and COPY
    /// rejects (a bad value) together; one more fails the load and loads nothing. At n+1, n and
    /// n-1, on PostgreSQL and on Redshift, whose COPY fails once its errors reach MAXERROR
    /// (copy-parameters-data-load) and is sent MAXERROR n+1 less the staging rejects.
    async fn maxerror_boundaries_with_staging_and_copy_rejects(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(1).await.unwrap();
        let broker = AnyBroker::from_config(&env.config()).await.unwrap();
        let stream = env.stream_name("test_events");
        let mut seq = 0;
        let mut batch = |staging: usize, copy: usize| {
            let mut records = Vec::new();
            for _ in 0..staging {
                records.push(PutRecord {
                    partition_key: "k".into(),
                    data: Bytes::from(format!("not json {seq}")),
                });
                seq += 1;
            }
            for _ in 0..copy {
                records.push(PutRecord {
                    partition_key: "k".into(),
                    data: Bytes::from(format!(
                        r#"{{"client_ip":"9.9.9.9","timestamp":"bad {seq}"}}"#
                    )),
                });
                seq += 1;
            }
            for _ in 0..5 {
                records.push(PutRecord {
                    partition_key: "k".into(),
                    data: Bytes::from(format!(r#"{{"client_ip":"1.1.1.1","timestamp":{seq}}}"#)),
                });
                seq += 1;
            }
            records
        };
        let loader = |n: u64| {
            Loader::new(env.config().into_builder().with_max_errors(n).build().unwrap())
        };
        env.loader::<TestEvent>().await;

        // n+1: 2 staging + 2 COPY rejects with n = 3 fail the load, nothing loaded.
        broker.put_records(&stream, &batch(2, 2)).await.unwrap();
        match loader(3).await.unwrap().load::<TestEvent>().await {
            Err(Error::LoadRejected {
                rejected,
                max_errors,
                ..
            }) => {
                assert_eq!(max_errors, 3);
                assert!(rejected >= 4, "{rejected}");
            }
            other => panic!("4 rejects with MAXERROR 3 must fail: {other:?}"),
        }
        assert_eq!(env.count_distinct("test_events", "timestamp").await.0, 0);

        // n: the same 4 rejects with n = 4 load the rest.
        let r = loader(4).await.unwrap().load::<TestEvent>().await.unwrap();
        assert_eq!((r.records, r.rejected), (5, 4), "{r:?}");

        // n-1: 1 staging + 2 COPY rejects with n = 4.
        broker.put_records(&stream, &batch(1, 2)).await.unwrap();
        let r = loader(4).await.unwrap().load::<TestEvent>().await.unwrap();
        assert_eq!((r.records, r.rejected), (5, 3), "{r:?}");
        assert_eq!(env.count_distinct("test_events", "timestamp").await, (10, 10));
    }
}
