//! Redshift's and Kinesis' limits, as named constants. Each names the AWS page it follows.
//!
//! Redshift pages are under `https://docs.aws.amazon.com/redshift/latest/dg/<page>.html`;
//! Kinesis pages under `https://docs.aws.amazon.com/streams/latest/dev/<page>.html` (developer
//! guide) and `https://docs.aws.amazon.com/kinesis/latest/APIReference/<page>.html` (API).

use std::time::Duration;

// ---------------------------------------------------------------- Redshift: types

/// The longest `VARCHAR`, in **bytes** (not characters): `VARCHAR(65535)`, also written
/// `VARCHAR(MAX)`. Page: `r_Character_types`.
pub const MAX_VARCHAR_BYTES: u32 = 65535;

/// The longest `CHAR`, in bytes: `CHAR(4096)`. Page: `r_Character_types`.
pub const MAX_CHAR_BYTES: u32 = 4096;

/// The length of a `VARCHAR` (and of `TEXT`, `BPCHAR`, which Redshift converts to
/// `VARCHAR(256)` and `CHAR(256)`) written without one, in bytes. Page: `r_Character_types`.
pub const DEFAULT_VARCHAR_BYTES: u32 = 256;

/// The length of a `CHAR` written without one, in bytes. Page: `r_Character_types`.
pub const DEFAULT_CHAR_BYTES: u32 = 1;

/// The largest precision of `DECIMAL(p, s)`, in digits (the scale is at most the precision).
/// Page: `r_Numeric_types201`.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// The precision of a `DECIMAL` written without one. Page: `r_Numeric_types201`.
pub const DEFAULT_DECIMAL_PRECISION: u8 = 18;

/// The scale of a `DECIMAL` written without one. Page: `r_Numeric_types201`.
pub const DEFAULT_DECIMAL_SCALE: u8 = 0;

/// The largest precision stored in 64 bits; above it a `DECIMAL` takes 128 bits, which the
/// `MOSTLY8/16/32` encodings do not cover. Pages: `r_Numeric_types201`, `c_MostlyN_encoding`.
pub const MAX_64BIT_DECIMAL_PRECISION: u8 = 18;

/// The earliest year of `DATE` and `TIMESTAMP`: 4713 BC, which is year -4712 in the proleptic
/// Gregorian calendar's astronomical numbering (chrono's). Page: `r_Datetime_types`.
pub const MIN_YEAR: i32 = -4712;

/// The latest year of `DATE` and `TIMESTAMP`: 294276 AD. Page: `r_Datetime_types`.
pub const MAX_YEAR: i32 = 294_276;

/// The longest string inside a `SUPER` value, in bytes. Page: `limitations-super`.
pub const MAX_SUPER_STRING_BYTES: usize = 65535;

/// The largest `SUPER` value, in bytes (16 MB). Page: `limitations-super`.
pub const MAX_SUPER_BYTES: usize = 16 * 1024 * 1024;

/// The largest JSON object `COPY ... FORMAT AS JSON` reads as one row, in bytes (4 MB).
/// Page: `copy-parameters-data-format`.
pub const MAX_JSON_OBJECT_BYTES: usize = 4 * 1024 * 1024;

// ---------------------------------------------------------------- Redshift: tables and COPY

/// The width of `sys_load_error_detail.file_name` (and `stl_load_errors.filename`), in bytes: a
/// staged file's URL longer than this is cut there, and a rejected row could no longer be
/// matched to its file. Page: `SYS_LOAD_ERROR_DETAIL`.
pub const MAX_LOAD_ERROR_FILE_NAME_BYTES: usize = 256;

/// The longest identifier (table or column name), in bytes of UTF-8. Page: `r_names`.
pub const MAX_IDENTIFIER_BYTES: usize = 127;

/// The most columns one table can have. Page: `r_CREATE_TABLE_NEW`.
pub const MAX_COLUMNS: usize = 1600;

/// The most columns of a compound sort key. Page: `r_CREATE_TABLE_NEW`.
pub const MAX_COMPOUND_SORTKEY_COLUMNS: usize = 400;

/// The most columns of an interleaved sort key. Page: `r_CREATE_TABLE_NEW`.
pub const MAX_INTERLEAVED_SORTKEY_COLUMNS: usize = 8;

/// The largest `MAXERROR` of a `COPY`. Page: `copy-parameters-data-load`.
pub const MAX_MAXERROR: u64 = 100_000;

// ---------------------------------------------------------------- Kinesis

/// The largest record of a stream by default, in bytes: its data plus its partition key
/// (1 MiB). A stream may be configured for more (up to [`MAX_RECORD_BYTES_LARGE`]): read its
/// own limit (`MaxRecordSizeInKiB` of `DescribeStreamSummary`) rather than assume this one.
/// Pages: `API_PutRecords`, `service-sizes-and-limits`, `large-records`.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The largest record any stream can be configured to take, in bytes (10 MiB, 10,240 KiB).
/// Pages: `large-records`, `API_UpdateMaxRecordSize`.
pub const MAX_RECORD_BYTES_LARGE: usize = 10 * 1024 * 1024;

/// How long a stream keeps its records unless configured otherwise (24 hours). Page:
/// `kinesis-extended-retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The most records in one `PutRecords` call. Page: `API_PutRecords`.
pub const MAX_RECORDS_PER_PUT: usize = 500;

/// The most bytes (data plus partition keys) in one `PutRecords` request: 10 MiB, as the
/// current `API_PutRecords` page states it ("Each record in the request can be as large as
/// 10 MiB, up to a limit of 10 MiB for the entire request, including partition keys"; earlier
/// versions of the page said 1 MiB and 5 MiB). The batcher never builds a larger call, and
/// builds smaller ones for a stream whose endpoint refused a call as too large.
pub const MAX_BYTES_PER_PUT: usize = 10 * 1024 * 1024;

/// The longest partition key, in **UTF-16 code units** as Kinesis counts them (a character
/// outside the Basic Multilingual Plane, such as an emoji, counts twice); the shortest is 1.
/// Page: `API_PutRecordsRequestEntry`.
pub const MAX_PARTITION_KEY_UTF16_UNITS: usize = 256;

/// The most records one `GetRecords` call returns. Page: `API_GetRecords`.
pub const MAX_RECORDS_PER_GET: usize = 10_000;

/// The least time between two `GetRecords` calls on one shard: Kinesis allows 5 per second per
/// shard. Pages: `API_GetRecords`, `service-sizes-and-limits`.
pub const MIN_GET_RECORDS_INTERVAL: Duration = Duration::from_millis(200);

/// The most shards one `ListShards` page holds (the least is 1). Page: `API_ListShards`.
pub const MAX_SHARDS_PER_LIST: i32 = 10_000;

/// The longest sequence number, in decimal digits. Sequence numbers are compared numerically
/// and are too long for any integer type. Page: `API_Record`.
pub const MAX_SEQUENCE_NUMBER_DIGITS: usize = 129;

/// The longest stream name, in characters (`[a-zA-Z0-9_.-]`). Page: `API_CreateStream`.
pub const MAX_STREAM_NAME_CHARS: usize = 128;
