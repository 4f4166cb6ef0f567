//! Items the derive's generated code uses. Not public API: no stability promises.
pub use crate::encode::value::{
    BigIntValue, BooleanValue, DateValue, DecimalValue, DoubleValue, IntegerValue,
    PartitionKeyValue, RealValue, SmallIntValue, SuperValue, TextValue, TimeValue,
    TimestampTzValue, TimestampValue,
};
pub use crate::encode::write::{
    encode_or_rollback, write_bool, write_char, write_date, write_decimal, write_float, write_int,
    write_null, write_super, write_super_not_null, write_time, write_timestamp, write_timestamptz,
    write_varchar,
};
pub use crate::encode::{EncodeError, EncodeErrorKind};
pub use crate::event::RedTrackEvent;
pub use crate::schema::{Column, Dialect, DistStyle, SortKey, SqlType, TableSchema};

/// `Result`, `Option`, `Vec` and `String` by absolute path, so user items of those names never
/// clash with generated code.
pub use std::{option::Option, result::Result, string::String, vec::Vec};
