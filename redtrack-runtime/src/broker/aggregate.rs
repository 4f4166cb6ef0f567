//! The Kinesis Producer Library's aggregated record format: many user records in one Kinesis
//! record, so a shard carries far more than 1000 events/s and PUT payload units are not wasted.
//!
//! A KPL aggregated record is
//!
//! ```text
//! F3 89 9A C2 | protobuf AggregatedRecord | MD5(protobuf AggregatedRecord) (16 bytes)
//! ```
//!
//! with the protobuf messages (proto2):
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;
//! }
//! message Tag { required string key = 1; optional string value = 2; }
//! ```
//!
//! The writer packs records with [`Aggregator`]; the loader unpacks every stored record with
//! [`deaggregate`], which passes plain (non-aggregated) records through unchanged.

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use crate::error::{Error, Result};

/// The four bytes every KPL aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// The length of the MD5 trailer.
const DIGEST_LEN: usize = 16;

/// The default maximum size of one aggregated record, partition key included (the KPL's
/// `AggregationMaxSize` default). Smaller than Kinesis' 1 MiB so aggregates spread over shards.
pub const DEFAULT_AGGREGATE_MAX_BYTES: usize = 50 * 1024;

/// The protobuf `AggregatedRecord`.
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<Record>,
}

/// The protobuf `Record` (one user record).
#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", required, tag = "3")]
    data: Bytes,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<Tag>,
}

/// The encoded size of a `partition_key_table` entry of an `AggregatedRecord`.
fn key_entry_len(partition_key: &str) -> usize {
    use prost::encoding::{encoded_len_varint, key_len};
    key_len(1) + encoded_len_varint(partition_key.len() as u64) + partition_key.len()
}

/// The encoded size of a `records` entry of an `AggregatedRecord`: a [`Record`] with this
/// partition key index, `data_len` bytes of data and these tags (no explicit hash key), framed.
fn record_entry_len(index: usize, data_len: usize, tags: &[(&str, Option<&str>)]) -> usize {
    use prost::encoding::{encoded_len_varint, key_len};
    let string = |tag: u32, s: &str| key_len(tag) + encoded_len_varint(s.len() as u64) + s.len();
    let mut record = key_len(1)
        + encoded_len_varint(index as u64)
        + key_len(3)
        + encoded_len_varint(data_len as u64)
        + data_len;
    for (key, value) in tags {
        let tag = string(1, key) + value.map_or(0, |v| string(2, v));
        record += key_len(4) + encoded_len_varint(tag as u64) + tag;
    }
    key_len(3) + encoded_len_varint(record as u64) + record
}

/// The protobuf `Tag`: redtrack's writer puts a record's identity in one
/// ([`crate::identity::TAG_KEY`]) when the record's partition key is the user's.
#[derive(Clone, PartialEq, prost::Message)]
struct Tag {
    #[prost(string, required, tag = "1")]
    key: String,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// One user record unpacked from a Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's own partition key.
    pub partition_key: String,
    /// Its explicit hash key, if the producer set one.
    pub explicit_hash_key: Option<String>,
    /// Its bytes (one event's JSON, for redtrack's writers).
    pub data: Bytes,
    /// Its tags, `(key, value)`, in order (the KPL itself writes none; redtrack's writer puts a
    /// record identity in one, see [`crate::identity`]).
    pub tags: Vec<(String, Option<String>)>,
}

/// Whether `data` starts with the KPL magic bytes (and is long enough to hold a digest).
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() >= MAGIC.len() + DIGEST_LEN && data[..MAGIC.len()] == MAGIC
}

/// Unpacks one Kinesis record into its user records.
///
/// A record without the magic bytes is a plain record: it comes back as one user record with the
/// Kinesis record's partition key. A record with the magic bytes whose digest or protobuf is
/// wrong is an error ([`Error::CorruptRecord`]): redtrack never writes such a record, and loading
/// its bytes as an event would put garbage in the table.
pub fn deaggregate(partition_key: &str, data: &Bytes) -> Result<Vec<UserRecord>> {
    if !is_aggregated(data) {
        return Ok(vec![UserRecord {
            partition_key: partition_key.to_owned(),
            explicit_hash_key: None,
            data: data.clone(),
            tags: Vec::new(),
        }]);
    }
    let body = data.slice(MAGIC.len()..data.len() - DIGEST_LEN);
    let digest = &data[data.len() - DIGEST_LEN..];
    if Md5::digest(&body).as_slice() != digest {
        return Err(corrupt("the MD5 trailer does not match the protobuf body"));
    }
    let agg = AggregatedRecord::decode(body)
        .map_err(|e| corrupt(&format!("the protobuf body does not decode: {e}")))?;
    agg.records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let pk = usize::try_from(r.partition_key_index)
                .ok()
                .and_then(|k| agg.partition_key_table.get(k))
                .ok_or_else(|| {
                    corrupt(&format!(
                        "user record {i} names partition key {} of {}",
                        r.partition_key_index,
                        agg.partition_key_table.len()
                    ))
                })?;
            let ehk = match r.explicit_hash_key_index {
                None => None,
                Some(k) => Some(
                    usize::try_from(k)
                        .ok()
                        .and_then(|k| agg.explicit_hash_key_table.get(k))
                        .cloned()
                        .ok_or_else(|| {
                            corrupt(&format!(
                                "user record {i} names explicit hash key {k} of {}",
                                agg.explicit_hash_key_table.len()
                            ))
                        })?,
                ),
            };
            Ok(UserRecord {
                partition_key: pk.clone(),
                explicit_hash_key: ehk,
                data: r.data,
                tags: r.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            })
        })
        .collect()
}

fn corrupt(what: &str) -> Error {
    Error::CorruptRecord(format!("KPL aggregated record: {what}"))
}

/// Packs user records into one KPL aggregated record, keeping it under a size limit.
///
/// ```
/// use redtrack_runtime::broker::aggregate::{deaggregate, Aggregator};
///
/// let mut agg = Aggregator::new(50 * 1024);
/// assert!(agg.try_push("k1", br#"{"a":1}"#));
/// assert!(agg.try_push("k2", br#"{"a":2}"#));
/// let record = agg.finish().expect("two records");
/// let users = deaggregate(&record.partition_key, &record.data).unwrap();
/// assert_eq!(users.len(), 2);
/// assert_eq!(users[1].partition_key, "k2");
/// ```
#[derive(Debug)]
pub struct Aggregator {
    max_bytes: usize,
    keys: Vec<String>,
    records: Vec<Record>,
    /// The encoded size of the protobuf body so far.
    body_len: usize,
}

impl Aggregator {
    /// An empty aggregator whose records stay within `max_bytes` (magic, body, digest and the
    /// Kinesis partition key together); at most [`super::MAX_RECORD_BYTES`].
    pub fn new(max_bytes: usize) -> Aggregator {
        Aggregator {
            max_bytes: max_bytes.min(super::MAX_RECORD_BYTES),
            keys: Vec::new(),
            records: Vec::new(),
            body_len: 0,
        }
    }

    /// How many user records are packed so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is packed yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The size of the Kinesis record [`Aggregator::finish`] would return now (data plus the
    /// partition key), in bytes.
    pub fn size(&self) -> usize {
        self.keys.first().map_or(0, String::len) + MAGIC.len() + self.body_len + DIGEST_LEN
    }

    /// The size [`Aggregator::size`] would have with this user record added (the first one
    /// sets the Kinesis record's partition key).
    pub fn size_with(&self, partition_key: &str, data: &[u8]) -> usize {
        self.size_with_tags(partition_key, data, &[])
    }

    /// [`Aggregator::size_with`] of a user record with these tags, `(key, value)`.
    pub fn size_with_tags(
        &self,
        partition_key: &str,
        data: &[u8],
        tags: &[(&str, Option<&str>)],
    ) -> usize {
        let (key_len, index, new_key) = match self.keys.iter().position(|k| k == partition_key) {
            Some(i) => (0, i, 0),
            None => (
                partition_key.len(),
                self.keys.len(),
                key_entry_len(partition_key),
            ),
        };
        let outer_key = self.keys.first().map_or(key_len, String::len);
        outer_key
            + MAGIC.len()
            + self.body_len
            + new_key
            + record_entry_len(index, data.len(), tags)
            + DIGEST_LEN
    }

    /// The size of a record holding just this one user record, for checking at write time
    /// whether an event fits at all.
    pub fn single_size(partition_key: &str, data: &[u8]) -> usize {
        Aggregator::single_size_with_tags(partition_key, data, &[])
    }

    /// [`Aggregator::single_size`] of a user record with these tags, `(key, value)`.
    pub fn single_size_with_tags(
        partition_key: &str,
        data: &[u8],
        tags: &[(&str, Option<&str>)],
    ) -> usize {
        let body = key_entry_len(partition_key) + record_entry_len(0, data.len(), tags);
        partition_key.len() + MAGIC.len() + body + DIGEST_LEN
    }

    /// Adds a user record if the aggregate stays within the size limit; returns whether it did.
    /// The first record is always taken (its own size is checked at write time).
    pub fn try_push(&mut self, partition_key: &str, data: &[u8]) -> bool {
        self.try_push_with_tags(partition_key, data, &[])
    }

    /// [`Aggregator::try_push`] of a user record with these tags, `(key, value)`.
    pub fn try_push_with_tags(
        &mut self,
        partition_key: &str,
        data: &[u8],
        tags: &[(&str, Option<&str>)],
    ) -> bool {
        let before = (self.keys.len(), self.records.len(), self.body_len);
        self.push_unchecked(partition_key, data, tags);
        if self.records.len() > 1 && self.size() > self.max_bytes {
            self.keys.truncate(before.0);
            self.records.truncate(before.1);
            self.body_len = before.2;
            return false;
        }
        true
    }

    fn push_unchecked(&mut self, partition_key: &str, data: &[u8], tags: &[(&str, Option<&str>)]) {
        let index = match self.keys.iter().position(|k| k == partition_key) {
            Some(i) => i,
            None => {
                self.keys.push(partition_key.to_owned());
                self.body_len += key_entry_len(partition_key);
                self.keys.len() - 1
            }
        };
        self.body_len += record_entry_len(index, data.len(), tags);
        self.records.push(Record {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: Bytes::copy_from_slice(data),
            tags: tags
                .iter()
                .map(|(key, value)| Tag {
                    key: (*key).to_owned(),
                    value: value.map(str::to_owned),
                })
                .collect(),
        });
    }

    /// The aggregated Kinesis record (partition key: the first user record's), or `None` if
    /// nothing was packed. The aggregator is empty again afterwards.
    pub fn finish(&mut self) -> Option<super::PutRecord> {
        if self.records.is_empty() {
            return None;
        }
        let agg = AggregatedRecord {
            partition_key_table: std::mem::take(&mut self.keys),
            explicit_hash_key_table: Vec::new(),
            records: std::mem::take(&mut self.records),
        };
        self.body_len = 0;
        let partition_key = agg.partition_key_table[0].clone();
        let mut out = Vec::with_capacity(MAGIC.len() + agg.encoded_len() + DIGEST_LEN);
        out.extend_from_slice(&MAGIC);
        agg.encode_raw(&mut out);
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.extend_from_slice(&digest);
        Some(super::PutRecord {
            partition_key,
            data: Bytes::from(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(tag << 3 | 2), out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    /// Builds an aggregated record byte by byte from the published format, without prost.
    fn by_hand() -> Vec<u8> {
        let mut body = Vec::new();
        field_bytes(1, b"pk-a", &mut body);
        field_bytes(1, b"pk-b", &mut body);
        field_bytes(2, b"12345", &mut body);
        for (pk, ehk, data) in [
            (0u64, None, &b"{\"n\":1}"[..]),
            (1, Some(0u64), b"{\"n\":2}"),
            (0, None, b""),
        ] {
            let mut rec = Vec::new();
            rec.push(1 << 3); // field 1, varint
            varint(pk, &mut rec);
            if let Some(e) = ehk {
                rec.push(2 << 3);
                varint(e, &mut rec);
            }
            field_bytes(3, data, &mut rec);
            let mut tag = Vec::new();
            field_bytes(1, b"t", &mut tag);
            field_bytes(4, &tag, &mut rec);
            field_bytes(3, &rec, &mut body);
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(&Md5::digest(&body));
        out
    }

    #[test]
    fn decodes_a_record_built_by_hand() {
        let data = Bytes::from(by_hand());
        assert!(is_aggregated(&data));
        let users = deaggregate("outer", &data).unwrap();
        assert_eq!(
            users,
            vec![
                UserRecord {
                    partition_key: "pk-a".into(),
                    explicit_hash_key: None,
                    data: Bytes::from_static(b"{\"n\":1}"),
                    tags: vec![("t".into(), None)],
                },
                UserRecord {
                    partition_key: "pk-b".into(),
                    explicit_hash_key: Some("12345".into()),
                    data: Bytes::from_static(b"{\"n\":2}"),
                    tags: vec![("t".into(), None)],
                },
                UserRecord {
                    partition_key: "pk-a".into(),
                    explicit_hash_key: None,
                    data: Bytes::new(),
                    tags: vec![("t".into(), None)],
                },
            ]
        );
    }

    #[test]
    fn rejects_a_bad_digest_and_bad_indexes() {
        let mut raw = by_hand();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(matches!(
            deaggregate("k", &Bytes::from(raw)),
            Err(Error::CorruptRecord(_))
        ));

        let mut body = Vec::new();
        let mut rec = vec![1 << 3];
        varint(7, &mut rec);
        field_bytes(3, b"x", &mut rec);
        field_bytes(3, &rec, &mut body);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(&Md5::digest(&body));
        assert!(matches!(
            deaggregate("k", &Bytes::from(out)),
            Err(Error::CorruptRecord(_))
        ));
    }

    #[test]
    fn plain_records_pass_through() {
        let data = Bytes::from_static(b"{\"a\":1}");
        let users = deaggregate("k", &data).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].partition_key, "k");
        assert_eq!(users[0].data, data);
    }

    #[test]
    fn round_trips_and_respects_the_size_limit() {
        let mut agg = Aggregator::new(2_000);
        let mut taken = 0;
        loop {
            let key = format!("key-{}", taken % 3);
            let predicted = agg.size_with(&key, &[b'x'; 100]);
            if !agg.try_push(&key, &[b'x'; 100]) {
                assert!(predicted > 2_000);
                break;
            }
            assert_eq!(agg.size(), predicted);
            taken += 1;
            assert!(agg.size() <= 2_000);
        }
        assert!(taken > 10);
        let predicted = agg.size();
        let rec = agg.finish().unwrap();
        assert_eq!(rec.data.len() + rec.partition_key.len(), predicted);
        assert!(agg.is_empty());
        let users = deaggregate(&rec.partition_key, &rec.data).unwrap();
        assert_eq!(users.len(), taken);
        assert_eq!(users[4].partition_key, "key-1");
        assert_eq!(&users[4].data[..], &[b'x'; 100][..]);
        assert_eq!(Aggregator::single_size("k", b"abc"), {
            let mut a = Aggregator::new(1 << 20);
            a.try_push("k", b"abc");
            let r = a.finish().unwrap();
            r.data.len() + r.partition_key.len()
        });
    }

    #[test]
    fn tags_round_trip_and_their_size_is_predicted() {
        let long = "v".repeat(200);
        let tags = [
            ("redtrack.id", Some("~rtAAAAAAAAAAAAAAAAAAAAAA")),
            ("no-value", None),
            ("long", Some(long.as_str())),
        ];
        let mut a = Aggregator::new(usize::MAX);
        a.try_push_with_tags("key", b"{}", &tags);
        assert_eq!(
            a.size(),
            Aggregator::single_size_with_tags("key", b"{}", &tags)
        );
        a.try_push("other", br#"{"a":1}"#);
        let predicted = a.size();
        let r = a.finish().unwrap();
        assert_eq!(r.data.len() + r.partition_key.len(), predicted);
        let users = deaggregate(&r.partition_key, &r.data).unwrap();
        assert_eq!(
            users[0].tags,
            tags.map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
        );
        assert_eq!(&users[0].data[..], b"{}");
        assert!(users[1].tags.is_empty());
    }

    /// The sizes computed without encoding match what prost encodes, across varint widths of
    /// the data length, the key length and the key index.
    #[test]
    fn predicted_sizes_match_the_encoding() {
        for len in [0, 1, 127, 128, 16_383, 16_384, 100_000, (1 << 20) - 40] {
            let key = "k".repeat(len % 300 + 1);
            let data = vec![b'd'; len];
            let mut a = Aggregator::new(usize::MAX);
            a.try_push(&key, &data);
            assert_eq!(a.size(), Aggregator::single_size(&key, &data), "{len}");
            for i in 0..130 {
                a.try_push(&format!("other-{i}"), &data[..len.min(10)]);
            }
            let predicted = a.size();
            let r = a.finish().unwrap();
            assert_eq!(r.data.len() + r.partition_key.len(), predicted, "{len}");
        }
    }
}
