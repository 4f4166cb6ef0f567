//! # redtrack
//!
//! Event tracking into Amazon Redshift through Amazon Kinesis. Annotate a struct with
//! `#[derive(RedTrackEvent)]`, write events with [`Client::write`], load them with
//! [`Loader::load`]. See the README for the architecture and guarantees.
#![forbid(unsafe_code)]

pub use redtrack_derive::RedTrackEvent;
pub use redtrack_runtime::*;
