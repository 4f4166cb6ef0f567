//! A shard split while writing and loading: no loss, no duplicate. The closed parents are
//! drained to their ends and the children read from their first records.

use crate::seed;

use std::time::Duration;

use redtrack::Client;
use seed::TestEvent;

fn event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: "10.9.9.9".into(),
        timestamp: i,
        message: None,
    }
}

crate::each_backend! {
    async fn shard_split_while_writing_and_loading(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(2).await.unwrap();
        let loader = env.loader::<TestEvent>().await;

        const TOTAL: i32 = 3000;
        let writer = {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..TOTAL {
                    drop(client.enqueue(&event(i)).await.unwrap());
                    if i % 100 == 99 {
                        client.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(15)).await;
                    }
                }
                client.flush().await.unwrap();
            })
        };
        // Load while writing; split once some events are in.
        let mut split = false;
        let mut loaded = 0;
        while !writer.is_finished() {
            loaded += loader.load::<TestEvent>().await.unwrap().records;
            if !split && loaded > 300 {
                assert_eq!(client.split_shards::<TestEvent>().await.unwrap(), 2);
                split = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        writer.await.unwrap();
        assert!(split, "the split happened while writing");
        loop {
            let r = loader.load::<TestEvent>().await.unwrap();
            loaded += r.records;
            if r.records == 0 && !r.more {
                break;
            }
        }
        assert_eq!(loaded, TOTAL as u64);

        let (n, distinct) = env.count_distinct("test_events", "timestamp").await;
        assert_eq!((n, distinct), (TOTAL as i64, TOTAL as i64));

        let status = loader.status::<TestEvent>().await.unwrap();
        assert_eq!(status.len(), 6, "two parents and four children: {status:?}");
        for s in &status {
            if s.shard.is_closed() {
                assert!(s.done, "closed parent {} not drained", s.shard.shard_id);
            }
        }
    }
}

crate::each_backend! {
    /// A split after the parents' last load: the next load finds the parents closed with nothing
    /// new, records them as read to their ends, and no later load reads them again.
    async fn parents_split_after_their_last_load_are_done_after_the_next(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(2).await.unwrap();
        let loader = env.loader::<TestEvent>().await;
        for i in 0..50 {
            drop(client.enqueue(&event(i)).await.unwrap());
        }
        client.flush().await.unwrap();
        assert_eq!(loader.load::<TestEvent>().await.unwrap().records, 50);
        assert_eq!(client.split_shards::<TestEvent>().await.unwrap(), 2);

        let r = loader.load::<TestEvent>().await.unwrap();
        assert_eq!(r.records, 0, "{r:?}");
        let status = loader.status::<TestEvent>().await.unwrap();
        for s in status.iter().filter(|s| s.shard.is_closed()) {
            assert!(s.done, "closed parent {} not done: {status:?}", s.shard.shard_id);
        }
        let r = loader.load::<TestEvent>().await.unwrap();
        assert_eq!(r.shards, 4, "only the children are read: {r:?}");
    }
}
