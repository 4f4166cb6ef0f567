//! The runtime of redtrack. Use it through the `redtrack` facade crate, which also re-exports
//! the `#[derive(RedTrackEvent)]` macro.
//!
//! Data flows one way: the derive's output depends on [`schema`] and [`encode`]; the
//! [`client`] writes through a [`broker`]; the [`loader`] reads from a broker, stages files in a
//! [`stage`] and copies them into a [`warehouse`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod broker;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod config;
pub mod encode;
pub mod error;
pub mod event;
pub mod loader;
pub mod migrate;
pub mod schema;
pub mod stage;
pub mod warehouse;

mod aws;
mod hooks;
mod json_scan;
pub(crate) mod retry;
mod sequence;
mod text;
mod threads;

#[cfg(test)]
mod layering_tests;

#[doc(hidden)]
pub mod __private;
#[doc(hidden)]
pub mod __test;

pub use client::Client;
pub use config::{BrokerKind, Config, ConfigBuilder, StageLocation};
pub use encode::{EncodeError, EncodeErrorKind};
pub use error::{Error, RejectedRow, Result};
pub use event::RedTrackEvent;
pub use loader::{LoadReport, Loader};
pub use schema::{Column, Dialect, DistStyle, SortKey, SqlType, TableSchema};
pub use sequence::SequenceNumber;
