//! The guide below is the repository's README; the API reference follows it.
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Derives [`RedTrackEvent`](trait@crate::RedTrackEvent) for a struct with named fields: the
/// struct is the table's schema, checked against Redshift's rules at compile time.
#[doc(inline)]
pub use redtrack_derive::RedTrackEvent;
pub use redtrack_runtime::*;
