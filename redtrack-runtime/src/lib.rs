//! The runtime of redtrack. Use it through the `redtrack` facade crate, which also re-exports
//! the `#[derive(RedTrackEvent)]` macro.
//!
//! Data flows one way: the derive's output depends on [`schema`] (the `redtrack-schema` crate)
//! and [`encode`]; the [`client`] writes through a [`broker`]; the [`loader`] reads from a
//! broker, stages files in a [`stage`] and copies them into a [`warehouse`]. The broker, the
//! stage and the warehouse are traits, and the client and the loader use them only through
//! those, so any of them can be one of your own. The shared helpers ([`error`] and a few private
//! ones) import nothing above them; a test keeps it so.
//!
//! Cargo features: `cli` (default) builds [`cli`], the command line as a library, with clap,
//! indicatif and tracing-subscriber; `test-hooks` is for redtrack's own crash tests only.
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
pub mod identity;
pub mod loader;
pub mod migrate;
pub mod schema;
pub mod stage;
pub mod warehouse;

mod aws;
mod hooks;
mod json_scan;
mod retry;
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
pub use config::{BrokerKind, Config, ConfigBuilder, RedshiftIam, StageLocation};
pub use encode::{EncodeError, EncodeErrorKind};
pub use error::{Error, RejectedRow, Result};
pub use event::RedTrackEvent;
pub use loader::{LoadReport, Loader};
pub use schema::{Column, Dialect, DistStyle, Encoding, SortKey, SqlType, TableSchema};
pub use sequence::SequenceNumber;
