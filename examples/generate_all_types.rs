//! Writes `test_all_types` events with every column type (and NULLs), for trying loads.
//!
//! ```text
//! eval "$(scripts/services up)"
//! cargo run --example generate_all_types -- [EVENTS] [START]   # default 10000 from 0
//! ```
mod sample;
mod seed;

use redtrack::{Client, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: u32 = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let start: u32 = args.next().map_or(Ok(0), |n| n.parse())?;
    let client = Client::new(Config::from_env()?).await?;
    client.create_stream::<seed::TestAllTypes>(2).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..32u32 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut i = start + w;
            while i < start + count {
                client.write(&sample::all_types(i)).await?;
                i += 32;
            }
            Ok::<_, redtrack::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    client.close().await?;
    println!(
        "wrote {count} test_all_types events ({start}..{})",
        start + count
    );
    Ok(())
}
