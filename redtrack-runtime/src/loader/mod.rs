//! The load path: drain every shard of a table's stream from its checkpoint, stage the events,
//! COPY them into the warehouse and record the loaded ranges in `kinesis_loads`, in one
//! transaction.
//!
//! OWNER: issue 5.

use crate::config::Config;
use crate::error::Result;
use crate::event::RedTrackEvent;

/// What one load pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Events loaded into the table.
    pub records: u64,
}

/// Loads events from the broker into the warehouse.
#[derive(Debug)]
pub struct Loader {
    config: Config,
}

impl Loader {
    /// Connects to the broker, the stage and the warehouse.
    pub async fn new(config: Config) -> Result<Loader> {
        Ok(Loader { config })
    }

    /// Creates `kinesis_loads` and `E`'s table unless they exist; idempotent.
    pub async fn setup<E: RedTrackEvent>(&self) -> Result<()> {
        let _ = &self.config;
        todo!("issue 5")
    }

    /// One pass over every shard of `E`'s stream.
    pub async fn load<E: RedTrackEvent>(&self) -> Result<LoadReport> {
        todo!("issue 5")
    }
}
