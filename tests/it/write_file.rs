//! The file broker with several writer processes at once, a reader reading while they write, and
//! a split in the middle: every line whole, every event present once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use redtrack::broker::{AnyBroker, Broker, ShardReader, StartingPosition};
use redtrack::{BrokerKind, Client, Config, RedTrackEvent};

#[derive(RedTrackEvent)]
#[redtrack(table = "file_events")]
pub struct FileEvent {
    #[redtrack(type = "varchar(32)")]
    pub id: String,
    /// Makes lines long enough that a torn write would show.
    #[redtrack(type = "varchar(2000)")]
    pub padding: String,
}

const PROCESSES: usize = 4;
const PER_PROCESS: usize = 3_000;
const CHILD_ENV: &str = "REDTRACK_TEST_FILE_WRITER";
const DIR_ENV: &str = "REDTRACK_TEST_FILE_DIR";

fn config(dir: &Path) -> Config {
    Config::builder()
        .cluster("local")
        .database("files")
        .broker(BrokerKind::File(dir.to_path_buf()))
        .with_linger(Duration::from_millis(1))
        .build()
        .unwrap()
}

/// The body of one writer process (run by `four_writer_processes`; does nothing on its own).
#[test]
#[ignore = "a child process of four_writer_processes"]
fn file_writer_child() {
    let (Ok(me), Ok(dir)) = (std::env::var(CHILD_ENV), std::env::var(DIR_ENV)) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let client = Client::new(config(&PathBuf::from(dir))).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (client, me) = (client.clone(), me.clone());
            tasks.push(tokio::spawn(async move {
                for i in (t..PER_PROCESS).step_by(8) {
                    let e = FileEvent {
                        id: format!("p{me}-{i}"),
                        padding: "x".repeat(100 + i % 1500),
                    };
                    client.write(&e).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        client.close().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_writer_processes() {
    let dir = std::env::temp_dir().join(format!("redtrack-write-file-{}", rand::random::<u64>()));
    let config = config(&dir);
    let client = Client::new(config.clone()).await.unwrap();
    client.create_stream::<FileEvent>(2).await.unwrap();
    let stream = client.stream_name::<FileEvent>();
    let broker = AnyBroker::from_config(&config).await.unwrap();

    let mut children: Vec<_> = (0..PROCESSES)
        .map(|k| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "write_file::file_writer_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD_ENV, k.to_string())
                .env(DIR_ENV, &dir)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();

    // Read while they write; split the shards once some records are in.
    let mut readers = BTreeMap::new();
    let mut seen: Vec<String> = Vec::new();
    let mut split = false;
    loop {
        let running = children.iter_mut().any(|c| c.try_wait().unwrap().is_none());
        for shard in broker.list_shards(&stream).await.unwrap() {
            if !readers.contains_key(&shard.shard_id) {
                let r = broker
                    .read_shard(&stream, &shard.shard_id, StartingPosition::TrimHorizon)
                    .await
                    .unwrap();
                readers.insert(shard.shard_id.clone(), (r, false));
            }
        }
        for (r, ended) in readers.values_mut() {
            while !*ended {
                let batch = r.next_batch(500).await.unwrap();
                let n = batch.records.len();
                for rec in batch.records {
                    let v: serde_json::Value = serde_json::from_slice(&rec.data)
                        .unwrap_or_else(|e| panic!("a torn line: {e}"));
                    let id = v["id"].as_str().unwrap().to_owned();
                    let pad = v["padding"].as_str().unwrap();
                    assert!(pad.bytes().all(|b| b == b'x'));
                    seen.push(id);
                }
                *ended = batch.shard_end;
                if n == 0 {
                    break;
                }
            }
        }
        if !split && seen.len() > PROCESSES * PER_PROCESS / 4 {
            assert_eq!(client.split_shards::<FileEvent>().await.unwrap(), 2);
            split = true;
        }
        // `running` was taken before this pass, so once it is false the pass saw everything.
        if !running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    assert!(split);
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    let want: BTreeSet<String> = (0..PROCESSES)
        .flat_map(|k| (0..PER_PROCESS).map(move |i| format!("p{k}-{i}")))
        .collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), want);
    let shards = broker.list_shards(&stream).await.unwrap();
    assert_eq!(shards.iter().filter(|s| s.is_closed()).count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
