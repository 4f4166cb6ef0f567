//! Items redtrack's own tests and checks reach into (the crash tests' pause hook, the checkpoint
//! queries). Not public API: no stability promises, hidden from the docs.

#[cfg(feature = "test-hooks")]
pub use crate::hooks::{Phase, PAUSE_ENV, PAUSE_MARKER};
