//! Items the derive's generated code uses. Not public API: no stability promises.
//!
//! OWNER: issue 2.
pub use crate::encode::{EncodeError, EncodeErrorKind};
pub use crate::event::RedTrackEvent;
pub use crate::schema::{Column, DistStyle, SortKey, SqlType, TableSchema};
