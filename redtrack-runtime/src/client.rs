//! The write path: `Client::write(&event)` to the broker of the event's table.
//!
//! OWNER: issue 4.

use crate::config::Config;
use crate::error::Result;
use crate::event::RedTrackEvent;

/// Writes events to their tables' streams. Cheap to clone; clones share one batcher.
#[derive(Debug, Clone)]
pub struct Client {
    config: Config,
}

impl Client {
    /// Connects to the configured broker.
    pub async fn new(config: Config) -> Result<Client> {
        Ok(Client { config })
    }

    /// Creates the stream of `E`'s table with `shards` shards unless it exists; idempotent.
    pub async fn create_stream<E: RedTrackEvent>(&self, shards: u32) -> Result<()> {
        let _ = (shards, &self.config);
        todo!("issue 4")
    }

    /// Encodes `event` and returns once the broker acknowledged it.
    pub async fn write<E: RedTrackEvent>(&self, event: &E) -> Result<()> {
        let _ = event;
        todo!("issue 4")
    }

    /// Returns once every record accepted so far was acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        todo!("issue 4")
    }
}
