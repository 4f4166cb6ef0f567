//! Records another producer wrote (the Ruby gem, a Lambda, a KPL application) never block a
//! table: every record that is not a valid UTF-8 JSON object of the table's columns is rejected
//! on its own, before COPY, kept in `redtrack_load_rejects` with its shard, sequence number and
//! raw bytes (escaped), and counted against `max_errors`; the rest loads. Each test runs on every
//! backend (PostgreSQL, and the Redshift stand-in provisioned and Serverless), with the same
//! meaning.

use crate::common;

use bytes::Bytes;
use common::Backend;
use redtrack::broker::aggregate::Aggregator;
use redtrack::broker::{AnyBroker, Broker, PutOutcome, PutRecord};
use redtrack::{Client, Error, Loader, RedTrackEvent};

/// The table of the issue's report.
#[derive(Debug, Clone, RedTrackEvent)]
#[redtrack(table = "foreign_events")]
pub struct Foreign {
    pub id: i32,
    #[redtrack(type = "varchar(16)")]
    pub name: Option<String>,
}

fn raw(data: &[u8]) -> PutRecord {
    PutRecord {
        partition_key: "k".into(),
        data: Bytes::copy_from_slice(data),
    }
}

/// Puts `records` in one call; their sequence numbers, in order.
async fn put(env: &common::TestEnv, records: &[PutRecord]) -> Vec<(String, String)> {
    let broker = AnyBroker::from_config(&env.config()).await.unwrap();
    let stream = env.stream_name("foreign_events");
    broker
        .put_records(&stream, records)
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            PutOutcome::Stored {
                shard_id,
                sequence_number,
            } => (shard_id, sequence_number.into_string()),
            other => panic!("not stored: {other:?}"),
        })
        .collect()
}

fn lenient(env: &common::TestEnv, max_errors: u64) -> redtrack::Config {
    env.config()
        .into_builder()
        .with_max_errors(max_errors)
        .build()
        .unwrap()
}

crate::each_backend! {
    /// The issue's reproducer: a Latin-1 byte in a foreign producer's record.
    async fn a_latin1_byte_from_another_producer_is_one_kept_reject(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<Foreign>(1).await.unwrap();
        client
            .write(&Foreign {
                id: 0,
                name: Some("redtrack".into()),
            })
            .await
            .unwrap();
        let seqs = put(
            &env,
            &[
                raw(b"{\"id\":1,\"name\":\"Montr\xe9al\"}"),
                raw(br#"{"id":2,"name":"ok"}"#),
            ],
        )
        .await;
        let loader = Loader::new(lenient(&env, 5)).await.unwrap();
        loader.setup::<Foreign>().await.unwrap();
        let report = loader.load::<Foreign>().await.unwrap();
        assert_eq!((report.records, report.rejected), (2, 1), "{report:?}");
        assert_eq!(env.ids("foreign_events").await, [0, 2]);

        let pg = env.pg().await;
        let row = pg
            .query_one(
                "SELECT shard_id, sequence_number, raw_record, reason FROM redtrack_load_rejects",
                &[],
            )
            .await
            .unwrap();
        let (shard, seq, raw_record, reason): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((shard, seq), seqs[0].clone());
        assert_eq!(raw_record, r#"{"id":1,"name":"Montr\xE9al"}"#);
        assert!(reason.contains("UTF-8"), "{reason}");
        // Loaded once: the next load finds nothing, the reject stays one.
        assert_eq!(loader.load::<Foreign>().await.unwrap().records, 0);
        assert_eq!(loader.rejects::<Foreign>(10).await.unwrap().len(), 1);
    }
}

crate::each_backend! {
    /// Every kind of record that is not a valid UTF-8 JSON object of the table's columns, each
    /// rejected on its own with a reason and its column; the good records around them load.
    async fn every_kind_of_foreign_record_is_rejected_per_record(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<Foreign>(1).await.unwrap();
        let mut agg = Aggregator::new(50 * 1024);
        assert!(agg.try_push("a", br#"{"id":20,"name":"in an aggregate"}"#));
        assert!(agg.try_push("b", br#"{"id":"twenty-one"}"#));
        let aggregate = agg.finish().unwrap();
        let bad: Vec<(&[u8], &str, &str)> = vec![
            (b"{\"id\":3,\"name\":\"\xff\xfe\"}", "", "UTF-8"),
            (br#"{"id":4,"name":"\ud800"}"#, "name", "Unicode"),
            (br#"{"id":5,"name":"a\u0000b"}"#, "name", "U+0000"),
            (br#"[{"id":6}]"#, "", "not a JSON object"),
            (br#""{\"id\":7}""#, "", "not a JSON object"),
            (b"42", "", "not a JSON object"),
            (br#"{"id":"8"}"#, "id", "integer"),
            (br#"{"id":9.5}"#, "id", "integer"),
            (br#"{"id":true}"#, "id", "integer"),
            (br#"{"id":2147483648}"#, "id", "range"),
            (br#"{"id":11,"name":"seventeen bytes!!"}"#, "name", "16"),
            (r#"{"id":12,"name":"ééééééééé"}"#.as_bytes(), "name", "16"),
            (b"", "", "empty"),
            (br#"{"name":"no id"}"#, "id", "NOT NULL"),
            (br#"{"id":null}"#, "id", "NOT NULL"),
            (br#"{"id":16,"name":"x""#, "", "JSON"),
        ];
        let mut records: Vec<PutRecord> = vec![raw(br#"{"id":1,"name":"first"}"#)];
        records.extend(bad.iter().map(|(b, _, _)| raw(b)));
        records.push(aggregate.clone());
        records.push(raw(
            r#"{"id":100,"name":"éééééééé","extra":[1,{"x":null}]}"#.as_bytes(),
        ));
        records.push(raw(br#"{"data":"{\"id\":101,\"name\":\"enveloped\"}"}"#));
        put(&env, &records).await;
        let n_bad = bad.len() as u64 + 1; // and the aggregate's second user record

        // One fewer than the bad records allows: the load fails, nothing loads, no range recorded.
        let strict = Loader::new(lenient(&env, n_bad - 1))
            .await
            .unwrap();
        strict.setup::<Foreign>().await.unwrap();
        match strict.load::<Foreign>().await {
            Err(Error::LoadRejected {
                rejected,
                max_errors,
                ..
            }) => assert_eq!((rejected, max_errors), (n_bad, n_bad - 1)),
            other => panic!("expected LoadRejected, got {other:?}"),
        }
        assert!(env.ids("foreign_events").await.is_empty());

        let loader = Loader::new(lenient(&env, n_bad)).await.unwrap();
        let report = loader.load::<Foreign>().await.unwrap();
        assert_eq!(report.rejected, n_bad, "{:#?}", report.rejects);
        assert_eq!(env.ids("foreign_events").await, [1, 20, 100, 101]);
        for (data, column, reason) in &bad {
            let text = String::from_utf8_lossy(data);
            let r = report
                .rejects
                .iter()
                .find(|r| r.raw.as_deref() == Some(*data))
                .unwrap_or_else(|| panic!("no reject for {text}: {:#?}", report.rejects));
            assert_eq!(r.column, *column, "{text}: {r:?}");
            assert!(r.reason.contains(reason), "{text}: {r:?}");
            assert!(r.source.is_some(), "{text}: {r:?}");
        }
        let in_aggregate = report
            .rejects
            .iter()
            .find(|r| r.raw.as_deref() == Some(&br#"{"id":"twenty-one"}"#[..]))
            .expect("the aggregate's bad user record");
        assert_eq!(in_aggregate.source.as_ref().unwrap().sub_sequence_number, 1);
        let kept: i64 = env
            .pg()
            .await
            .query_one(
                "SELECT count(*) FROM redtrack_load_rejects WHERE status = 'rejected'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(kept as u64, n_bad);
    }
}

crate::each_backend! {
    /// With max_errors 0 (the default) one bad record fails the load with an error that names the
    /// shard, the sequence number, why, and what to do; nothing loads.
    async fn with_max_errors_zero_the_error_names_shard_sequence_number_and_what_to_do(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<Foreign>(1).await.unwrap();
        let seqs = put(
            &env,
            &[
                raw(br#"{"id":1}"#),
                raw(br#"{"id":"two"}"#),
                raw(br#"{"id":3}"#),
            ],
        )
        .await;
        let loader = Loader::new(env.config()).await.unwrap();
        loader.setup::<Foreign>().await.unwrap();
        let err = loader.load::<Foreign>().await.unwrap_err();
        assert!(matches!(err, Error::LoadRejected { .. }), "{err:?}");
        let text = err.to_string();
        let (shard, seq) = &seqs[1];
        for needle in [
            shard.as_str(),
            seq.as_str(),
            "id",
            "with_max_errors",
            "redrive",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from: {text}");
        }
        assert!(env.ids("foreign_events").await.is_empty());
    }
}

/// One nullable column of every type, for [`the_check_and_copy_agree`].
#[derive(Debug, Clone, RedTrackEvent)]
#[redtrack(table = "every_type")]
pub struct EveryType {
    pub id: i32,
    pub small: Option<i16>,
    pub int: Option<i32>,
    pub big: Option<i64>,
    #[redtrack(type = "decimal(5,2)")]
    pub dec: Option<rust_decimal::Decimal>,
    pub real: Option<f32>,
    pub dbl: Option<f64>,
    pub flag: Option<bool>,
    #[redtrack(type = "char(4)")]
    pub ch: Option<String>,
    #[redtrack(type = "varchar(8)")]
    pub vc: Option<String>,
    pub day: Option<chrono::NaiveDate>,
    pub ts: Option<chrono::NaiveDateTime>,
    pub tstz: Option<chrono::DateTime<chrono::Utc>>,
    pub t: Option<chrono::NaiveTime>,
    pub sup: Option<serde_json::Value>,
}

/// Candidate JSON values per column of [`EveryType`]: each valid, invalid or at an edge.
const CANDIDATES: &[(&str, &[&str])] = &[
    (
        "small",
        &[
            "0", "-1", "32767", "32768", "-32769", "1.0", "1e2", "\"12\"", "true", "-0",
        ],
    ),
    (
        "int",
        &[
            "2147483647",
            "2147483648",
            "-2147483648",
            "12",
            "1.5",
            "\"x\"",
            "[1]",
        ],
    ),
    (
        "big",
        &[
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "1e3",
        ],
    ),
    (
        "dec",
        &[
            "999.99",
            "\"999.99\"",
            "999.995",
            "\"1e2\"",
            "0.001",
            "-999.994",
            "\"abc\"",
            "\"\"",
            "1000",
            "\"-0.5\"",
            "12.345",
        ],
    ),
    (
        "real",
        &[
            "3.4e38", "3.5e38", "1e-50", "1.5", "\"1.5\"", "-0.0", "1e-45", "0",
        ],
    ),
    (
        "dbl",
        &[
            "1e308",
            "1e309",
            "-1e-400",
            "2.5",
            "-1.7976931348623157e308",
        ],
    ),
    ("flag", &["true", "false", "\"t\"", "1", "\"true\""]),
    (
        "ch",
        &[
            "\"abcd\"",
            "\"abcde\"",
            "\"é\"",
            "\"a\\u0000\"",
            "12",
            "\"ab\\\"c\"",
            "\"\"",
            "\"\\t\"",
        ],
    ),
    (
        "vc",
        &[
            "\"12345678\"",
            "\"123456789\"",
            "\"ééé\"",
            "\"éééé\"",
            "\"\\u00e9\"",
            "\"\\ud800\"",
            "123",
            "true",
            "[1,2]",
            "{\"a\":1}",
            "\"\\n\\t\"",
            "\"\\ud83d\\ude00\"",
            "\"\"",
        ],
    ),
    (
        "day",
        &[
            "\"2024-02-29\"",
            "\"2023-02-29\"",
            "\"2024-02-29 10:00:00\"",
            "\"2024-02-29T10:00:00Z\"",
            "\"0001-01-01\"",
            "\"4713-01-01 BC\"",
            "\"10000-01-01\"",
            "\"2024-1-1\"",
            "\"\"",
            "20240229",
        ],
    ),
    (
        "ts",
        &[
            "\"2024-02-29 23:59:59.999999\"",
            "\"4713-01-01 00:00:00 BC\"",
            "\"294276-12-31 23:59:59\"",
            "\"2024-02-29T10:11:12Z\"",
            "\"2024-02-29T10:11:12.5+05:30\"",
            "\"2024-02-29 10:11\"",
            "\"2024-02-29\"",
            "\"2024-01-01 00:00:00+00\"",
            "\"2024-01-01 10:00:00.1234567\"",
            "\"2024-01-01 24:00:00\"",
            "\"1700000000\"",
            "1700000000",
        ],
    ),
    (
        "tstz",
        &[
            "\"2024-02-29 23:59:59.5+00\"",
            "\"2024-02-29T10:11:12Z\"",
            "\"2024-02-29T10:11:12-08:00\"",
            "\"2024-02-29 10:11:12\"",
            "\"2024-02-29\"",
            "\"2024-02-30 00:00:00+00\"",
            "\"1 BC\"",
        ],
    ),
    (
        "t",
        &[
            "\"23:59:59.123456\"",
            "\"23:59\"",
            "\"24:00\"",
            "\"10:00:00+01\"",
            "\"10:00:00\"",
            "\"10\"",
        ],
    ),
    (
        "sup",
        &[
            "{\"a\":[1,\"x\",null]}",
            "\"s\"",
            "[1]",
            "null",
            "{\"\\u0000\":1}",
            "1.5",
            "{\"k\":\"\\ud800\"}",
        ],
    ),
];

/// What the loader's check lets through, COPY loads: random records of every column type and
/// edge go through the real COPY of every backend with room for every record to fail, and every
/// reject must be the loader's own (none by COPY); every backend loads the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_and_copy_agree_on_every_backend() {
    const N: i32 = 1000;
    let records: Vec<Vec<u8>> = (0..N)
        .map(|id| {
            let mut pairs = vec![format!("\"id\":{id}")];
            for (column, values) in CANDIDATES {
                if rand::random_range(0..3) > 0 {
                    let v = values[rand::random_range(0..values.len())];
                    pairs.push(format!("\"{column}\":{v}"));
                }
            }
            format!("{{{}}}", pairs.join(",")).into_bytes()
        })
        .collect();
    let mut loaded_by_backend = Vec::new();
    for backend in [
        Backend::Postgres,
        Backend::RedshiftProvisioned,
        Backend::RedshiftServerless,
    ] {
        let env = common::TestEnv::on(backend, "agree").await;
        let broker = AnyBroker::from_config(&env.config()).await.unwrap();
        let stream = env.stream_name("every_type");
        broker.create_stream(&stream, 1).await.unwrap();
        for chunk in records.chunks(100) {
            let batch: Vec<PutRecord> = chunk.iter().map(|r| raw(r)).collect();
            broker.put_records(&stream, &batch).await.unwrap();
        }
        let loader = Loader::new(lenient(&env, N as u64)).await.unwrap();
        loader.setup::<EveryType>().await.unwrap();
        let report = loader.load::<EveryType>().await.unwrap();
        let by_copy: Vec<_> = report
            .rejects
            .iter()
            .filter(|r| r.source.is_none())
            .collect();
        assert!(
            by_copy.is_empty(),
            "{backend:?}: COPY rejected what the check let through: {by_copy:#?}"
        );
        assert!(report.records > 0 && report.rejected > 0, "{report:?}");
        let loaded = env.ids("every_type").await;
        assert_eq!(loaded.len() as u64, report.records);
        loaded_by_backend.push(loaded);
    }
    assert_eq!(loaded_by_backend[0], loaded_by_backend[1]);
    assert_eq!(loaded_by_backend[0], loaded_by_backend[2]);
}
