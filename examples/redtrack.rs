//! The `redtrack` command line for the seed example's tables: an application builds its own
//! binary like this one from the event types it registers.
//!
//! ```text
//! cargo run --example redtrack -- setup --shards 2
//! cargo run --example redtrack -- load --table test_events
//! cargo run --example redtrack -- status
//! cargo run --example redtrack -- --help
//! ```
mod seed;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    redtrack::cli::Cli::new("redtrack")
        .register::<seed::TestEvent>()
        .register::<seed::TestAllTypes>()
        .run()
        .await
}
