//! Three loaders on the same table at once, many rounds, while writers write: no duplicate, no
//! loss. Loads that lose the race fail with a retryable conflict and load nothing.

use crate::seed;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redtrack::{Client, Error, Loader};
use seed::TestEvent;

fn event(i: i32) -> TestEvent {
    TestEvent {
        client_ip: "10.1.2.3".into(),
        timestamp: i,
        message: Some(format!("concurrent {i}")),
    }
}

crate::each_backend! {
    async fn three_loaders_while_writers_write(env: TestEnv) {
        let client = Client::new(env.config()).await.unwrap();
        client.create_stream::<TestEvent>(3).await.unwrap();
        env.loader::<TestEvent>().await;

        const WRITERS: i32 = 2;
        const PER_WRITER: i32 = 2000;
        let done = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..PER_WRITER {
                        drop(client.enqueue(&event(w * PER_WRITER + i)).await.unwrap());
                        if i % 50 == 49 {
                            client.flush().await.unwrap();
                            tokio::time::sleep(Duration::from_millis(40)).await;
                        }
                    }
                    client.flush().await.unwrap();
                })
            })
            .collect();

        let loaders: Vec<_> = (0..3)
            .map(|_| {
                let config = env.config();
                let done = done.clone();
                tokio::spawn(async move {
                    let loader = Loader::new(config).await.unwrap();
                    let (mut loads, mut conflicts) = (0u32, 0u32);
                    while !done.load(Ordering::SeqCst) {
                        match loader.load::<TestEvent>().await {
                            Ok(_) => loads += 1,
                            Err(Error::LoadConflict { .. }) => conflicts += 1,
                            Err(e) => panic!("a loader failed: {e}"),
                        }
                    }
                    (loads, conflicts)
                })
            })
            .collect();

        for w in writers {
            w.await.unwrap();
        }
        // Let the loaders race over the tail for a while too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        done.store(true, Ordering::SeqCst);
        let mut total_loads = 0;
        for l in loaders {
            let (loads, conflicts) = l.await.unwrap();
            eprintln!("loader: {loads} loads, {conflicts} conflicts");
            total_loads += loads;
        }
        assert!(total_loads >= 3, "the loaders made progress");

        // Drain what is left.
        let loader = Loader::new(env.config()).await.unwrap();
        loop {
            let r = loader.load::<TestEvent>().await.unwrap();
            if r.records == 0 && !r.more {
                break;
            }
        }
        let (n, distinct) = env.count_distinct("test_events", "timestamp").await;
        assert_eq!(distinct, n, "no duplicates");
        assert_eq!(n, (WRITERS * PER_WRITER) as i64, "no loss");
    }
}
