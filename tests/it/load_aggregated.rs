//! Events written as KPL aggregates (many events per Kinesis record) are de-aggregated by the
//! loader: every event becomes one row.

use crate::{common, seed};

use redtrack::{Client, RedTrackEvent};
use seed::TestEvent;

/// A client of `env` with KPL aggregation on.
async fn aggregating_client(env: &common::TestEnv) -> Client {
    let config = env.config().into_builder().with_aggregation(true).build();
    Client::new(config.unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_load_one_row_per_event() {
    let env = common::TestEnv::named("kpl").await;
    let client = aggregating_client(&env).await;
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
    let loader = env.loader::<TestEvent>().await;
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

/// 17 columns of up to 65,535 bytes: an event of up to ~1.1 MB.
#[derive(Debug, Clone, RedTrackEvent)]
#[redtrack(table = "kpl_wide")]
struct Wide {
    seq: i32,
    #[redtrack(type = "varchar(65535)")]
    c00: String,
    #[redtrack(type = "varchar(65535)")]
    c01: String,
    #[redtrack(type = "varchar(65535)")]
    c02: String,
    #[redtrack(type = "varchar(65535)")]
    c03: String,
    #[redtrack(type = "varchar(65535)")]
    c04: String,
    #[redtrack(type = "varchar(65535)")]
    c05: String,
    #[redtrack(type = "varchar(65535)")]
    c06: String,
    #[redtrack(type = "varchar(65535)")]
    c07: String,
    #[redtrack(type = "varchar(65535)")]
    c08: String,
    #[redtrack(type = "varchar(65535)")]
    c09: String,
    #[redtrack(type = "varchar(65535)")]
    c10: String,
    #[redtrack(type = "varchar(65535)")]
    c11: String,
    #[redtrack(type = "varchar(65535)")]
    c12: String,
    #[redtrack(type = "varchar(65535)")]
    c13: String,
    #[redtrack(type = "varchar(65535)")]
    c14: String,
    #[redtrack(type = "varchar(65535)")]
    c15: String,
    #[redtrack(type = "varchar(65535)")]
    c16: String,
}

impl Wide {
    fn columns(&mut self) -> [&mut String; 17] {
        [
            &mut self.c00,
            &mut self.c01,
            &mut self.c02,
            &mut self.c03,
            &mut self.c04,
            &mut self.c05,
            &mut self.c06,
            &mut self.c07,
            &mut self.c08,
            &mut self.c09,
            &mut self.c10,
            &mut self.c11,
            &mut self.c12,
            &mut self.c13,
            &mut self.c14,
            &mut self.c15,
            &mut self.c16,
        ]
    }

    /// An event whose JSON is exactly `json_bytes` long.
    fn of_size(seq: i32, json_bytes: usize) -> Wide {
        let mut e = Wide {
            seq,
            c00: String::new(),
            c01: String::new(),
            c02: String::new(),
            c03: String::new(),
            c04: String::new(),
            c05: String::new(),
            c06: String::new(),
            c07: String::new(),
            c08: String::new(),
            c09: String::new(),
            c10: String::new(),
            c11: String::new(),
            c12: String::new(),
            c13: String::new(),
            c14: String::new(),
            c15: String::new(),
            c16: String::new(),
        };
        let mut rest = json_bytes - e.to_json().unwrap().len();
        for c in e.columns() {
            let n = rest.min(65_535);
            *c = "w".repeat(n);
            rest -= n;
        }
        assert_eq!(rest, 0, "{json_bytes} bytes fit in 17 columns");
        assert_eq!(e.to_json().unwrap().len(), json_bytes);
        e
    }
}

/// With aggregation on, an event that fits a Kinesis record only without the aggregate's framing
/// (a few bytes under 1 MiB) is sent as a plain record among the aggregates, and loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_too_large_for_an_aggregate_are_sent_plain_and_load() {
    const KEY: usize = redtrack::identity::RecordId::TEXT_LEN; // the key: the record's identity
    let env = common::TestEnv::named("kplw").await;
    let client = aggregating_client(&env).await;
    client.create_stream::<Wide>(1).await.unwrap();
    let mut acks = Vec::new();
    for seq in 0..60 {
        // Every 20th event is 1 MiB less 8 bytes as a plain record; the rest are small.
        let json = if seq % 20 == 7 {
            (1 << 20) - 8 - KEY
        } else {
            200 + seq as usize
        };
        acks.push(client.enqueue(&Wide::of_size(seq, json)).await.unwrap());
    }
    client.flush().await.unwrap();
    for ack in acks {
        ack.await.expect("every event is acknowledged");
    }
    // One byte more than a record holds is still refused at once.
    let err = client
        .write(&Wide::of_size(99, (1 << 20) + 1 - KEY))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            redtrack::Error::RecordTooLarge {
                table: "kpl_wide",
                ..
            }
        ),
        "{err}"
    );

    let loader = env.loader::<Wide>().await;
    let report = loader.load::<Wide>().await.unwrap();
    assert_eq!(report.records, 60);
    assert!(report.kinesis_records < 60, "{report:?}");
    let pg = env.pg().await;
    let rows = pg
        .query("SELECT seq FROM kpl_wide ORDER BY seq", &[])
        .await
        .unwrap();
    let got: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, (0..60).collect::<Vec<_>>(), "each event once");
    let big = pg
        .query_one(
            "SELECT count(*) FROM kpl_wide WHERE octet_length(c00 || c01 || c02 || c03 || c04 \
             || c05 || c06 || c07 || c08 || c09 || c10 || c11 || c12 || c13 || c14 || c15 \
             || c16) > 1000000",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        big.get::<_, i64>(0),
        3,
        "the three large events arrived whole"
    );
}
