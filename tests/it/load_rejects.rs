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
