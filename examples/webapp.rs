//! A web application that tracks an event per request, as the original's example application
//! did: `GET /?message=hi` writes a `test_events` row with the client's IP and the time.
//!
//! ```text
//! eval "$(scripts/services up)"
//! cargo run --example webapp            # listens on 127.0.0.1:3000 (or $PORT)
//! curl '127.0.0.1:3000/?message=hello'
//! cargo run --example redtrack -- load --table test_events
//! ```
//!
//! `write` returns once Kinesis acknowledged the event, so a 200 means the event is stored; a
//! bad value (none here) would be a 400 naming the column, a broker failure a 503.
mod seed;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use redtrack::{Client, Config, Error};
use seed::TestEvent;

#[derive(serde::Deserialize)]
struct Params {
    message: Option<String>,
}

async fn track(
    State(client): State<Client>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<Params>,
) -> (StatusCode, String) {
    let event = TestEvent {
        client_ip: peer.ip().to_string(),
        timestamp: i32::try_from(chrono::Utc::now().timestamp()).unwrap_or(i32::MAX),
        message: params.message,
    };
    match client.write(&event).await {
        Ok(()) => (StatusCode::OK, "tracked\n".into()),
        Err(e @ Error::Encode(_)) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
        Err(e) => {
            tracing::error!(error = %e, "tracking failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "tracking is unavailable\n".into(),
            )
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let client = Client::new(Config::from_env()?).await?;
    client.create_stream::<TestEvent>(1).await?;
    let app = Router::new()
        .route("/", get(track))
        .with_state(client.clone());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Every accepted event was acknowledged before its response; close() makes it explicit.
    client.close().await?;
    Ok(())
}
