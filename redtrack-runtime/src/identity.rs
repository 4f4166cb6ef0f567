//! Record identities: the 128-bit id every event redtrack's [`Client`](crate::Client) writes
//! carries, kept by every retry, so that the loader can drop the twin a retry stores when Kinesis
//! stored a PutRecords call whose answer was lost.
//!
//! # Where the id travels
//!
//! An id is written as 25 characters of text, [`RecordId::PREFIX`] (`~rt`) followed by the id's
//! 16 bytes in unpadded base64url: `~rtAZM0k3pQx9L2b8c1d4e5fg` (say). The form is strict (exact
//! length, prefix, alphabet, canonical last character), so text from elsewhere is not taken for
//! an id by chance.
//!
//! - **An event without a `#[redtrack(partition_key)]` field**: the id *is* the record's
//!   partition key (Kinesis' `PartitionKey`, or the user record's key inside a KPL aggregate).
//!   The client always gave such events a random key; the id is a random key too, so events
//!   still spread evenly over the shards, and the record's data is the event's JSON, byte for
//!   byte as before. Cost on the wire: none (25 characters instead of the former 32).
//! - **An event with a `partition_key` field**: the key is the user's (it decides the shard),
//!   so the id goes in a KPL tag ([`TAG_KEY`], value the id's text) of the event's user record:
//!   in its aggregate when aggregation is on, else in an aggregate of its own (one user record).
//!   A KCL consumer, Firehose or a Lambda with the KPL de-aggregation library unpack exactly the
//!   event's JSON and its partition key (they do not expose tags; pages `kpl-with-firehose` and
//!   `kinesis-record-deaggregation` of the Kinesis Data Streams developer guide,
//!   `https://docs.aws.amazon.com/streams/latest/dev/<page>.html`); a reader that does not
//!   de-aggregate, such as the Ruby gem's loader, sees the KPL's binary framing (turn
//!   identities off with `ConfigBuilder::with_record_identity(false)` for such readers).
//!
//! Either way the stored row's columns are those of the event, unchanged: the id is never in
//! the JSON that COPY reads.
//!
//! # The id
//!
//! A client numbers the records it writes: an id is a random 64-bit prefix, drawn once per
//! [`Client`](crate::Client), followed by a 64-bit count of the client's records. Ids of
//! different clients differ unless two clients draw the same prefix (probability about n² / 2⁶⁵
//! for n clients). Numbering lets the loader remember the ids it loaded as runs: a block of
//! 4096 consecutive ids takes a 512-byte bitmap, an eighth of a byte per event, where ids one
//! by one would take 16 bytes each.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The key of the KPL tag that carries a record's id when its partition key is the user's.
pub const TAG_KEY: &str = "redtrack.id";

/// One event's identity (see the [module docs](self)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(u128);

impl RecordId {
    /// What every id's text starts with.
    pub const PREFIX: &'static str = "~rt";

    /// The length of an id's text, in bytes (and characters): the prefix and 22 base64url
    /// characters.
    pub const TEXT_LEN: usize = 25;

    /// A random id (a client numbers its records instead: [`RecordIds`]).
    pub fn new() -> RecordId {
        RecordId(rand::random())
    }

    /// The id with these 128 bits.
    pub const fn from_u128(bits: u128) -> RecordId {
        RecordId(bits)
    }

    /// The id's 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The id's 16 bytes, most significant first.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The id of these 16 bytes, most significant first.
    pub const fn from_bytes(bytes: [u8; 16]) -> RecordId {
        RecordId(u128::from_be_bytes(bytes))
    }

    /// The id's text: `~rt` and 22 base64url characters (a partition key, or a tag's value).
    pub fn to_text(self) -> String {
        let mut out = String::with_capacity(Self::TEXT_LEN);
        out.push_str(Self::PREFIX);
        URL_SAFE_NO_PAD.encode_string(self.to_bytes(), &mut out);
        out
    }

    /// The id written as `text`, or `None` if `text` is not exactly an id's text.
    ///
    /// ```
    /// use redtrack_runtime::identity::RecordId;
    /// let id = RecordId::new();
    /// assert_eq!(RecordId::parse(&id.to_text()), Some(id));
    /// assert_eq!(RecordId::parse("0123456789abcdef0123456789abcdef"), None);
    /// ```
    pub fn parse(text: &str) -> Option<RecordId> {
        let b64 = text.strip_prefix(Self::PREFIX)?;
        if text.len() != Self::TEXT_LEN {
            return None;
        }
        // Room for the decoder's estimate (3 bytes per 4 characters, rounded up).
        let mut buf = [0u8; 18];
        match URL_SAFE_NO_PAD.decode_slice(b64, &mut buf) {
            Ok(16) => {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&buf[..16]);
                Some(RecordId::from_bytes(bytes))
            }
            _ => None,
        }
    }
}

impl Default for RecordId {
    /// A new id ([`RecordId::new`]).
    fn default() -> Self {
        RecordId::new()
    }
}

/// Hands out a client's record ids: a random 64-bit prefix, then 0, 1, 2, ... (see the
/// [module docs](self)). Cheap to share between threads.
#[derive(Debug)]
pub struct RecordIds {
    prefix: u128,
    next: AtomicU64,
}

impl RecordIds {
    /// A source with a fresh random prefix.
    pub fn new() -> RecordIds {
        RecordIds {
            prefix: u128::from(rand::random::<u64>()) << 64,
            next: AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> RecordId {
        RecordId(self.prefix | u128::from(self.next.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Default for RecordIds {
    fn default() -> Self {
        RecordIds::new()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_has_its_form() {
        for bits in [
            0u128,
            1,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            let id = RecordId::from_u128(bits);
            let text = id.to_text();
            assert_eq!(text.len(), RecordId::TEXT_LEN, "{text}");
            assert!(text.starts_with("~rt"));
            assert_eq!(RecordId::parse(&text), Some(id), "{text}");
        }
        let a = RecordId::new();
        assert_ne!(a, RecordId::new());
        assert_eq!(a.to_string(), a.to_text());
    }

    #[test]
    fn a_source_numbers_its_ids_after_a_random_prefix() {
        let (a, b) = (RecordIds::new(), RecordIds::new());
        let (a0, a1) = (a.next_id(), a.next_id());
        assert_eq!(a0.as_u128() >> 64, a1.as_u128() >> 64);
        assert_eq!((a0.as_u128() as u64, a1.as_u128() as u64), (0, 1));
        assert_ne!(a0, b.next_id(), "another source, another prefix");
    }

    #[test]
    fn other_text_is_not_an_id() {
        let good = RecordId::from_u128(42).to_text();
        for bad in [
            String::new(),
            "~rt".to_owned(),
            // Today's random keys and md5 hex keys: 32 hex digits.
            "0123456789abcdef0123456789abcdef".to_owned(),
            // A UUID.
            "123e4567-e89b-12d3-a456-426614174000".to_owned(),
            format!("{good}x"),
            good[..24].to_owned(),
            good.replacen("~rt", "~rT", 1),
            // Standard base64's alphabet and padding are not base64url.
            format!("~rt{}", &"+/AAAAAAAAAAAAAAAAAAAAAA"[..22]),
            format!("~rt{}", &"AAAAAAAAAAAAAAAAAAAA=="[..22]),
            // 22 characters hold 132 bits: the 4 that are not the id's must be zero.
            format!("~rt{}", &"AAAAAAAAAAAAAAAAAAAAAB"[..22]),
        ] {
            assert_eq!(RecordId::parse(&bad), None, "{bad:?}");
        }
    }
}
