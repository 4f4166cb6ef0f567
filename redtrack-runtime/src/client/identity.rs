//! The write side of record identities ([`crate::identity`]): the id each record gets, and
//! where it travels (the partition key, or a KPL tag). A retry resends the same record, so it
//! keeps the id.

use bytes::Bytes;

use crate::broker::aggregate::Aggregator;
use crate::broker::{PutRecord, MAX_RECORD_BYTES};
use crate::identity::{RecordId, RecordIds, TAG_KEY};

/// An encoded event on its way to the batcher.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The record as it is sent when it is not aggregated.
    pub(crate) record: PutRecord,
    /// The id to put in the KPL tag of the event's user record when the batcher aggregates it
    /// (its partition key is the user's).
    pub(crate) id_tag: Option<RecordId>,
    /// The record's size on the wire at its largest, partition key and any framing it needs
    /// included (checked against Kinesis' 1 MiB).
    pub(crate) bytes: usize,
}

/// The record of an event's JSON `json`, with the user's partition key if the event has one.
///
/// With identities (`ids`): an event without a key gets the next id as its key; an event with
/// one gets it in a KPL tag, in the batcher's aggregate when `aggregate` is on, else in an
/// aggregate of its own made here. Without: a random key, or the user's, and plain JSON.
pub(crate) fn outgoing(
    json: Vec<u8>,
    user_key: Option<String>,
    ids: Option<&RecordIds>,
    aggregate: bool,
) -> Outgoing {
    match (user_key, ids) {
        (None, Some(ids)) => plain(ids.next_id().to_text(), json),
        (None, None) => plain(random_partition_key(), json),
        (Some(key), None) => plain(key, json),
        (Some(key), Some(ids)) => {
            let id: RecordId = ids.next_id();
            let text = id.to_text();
            let tags = [(TAG_KEY, Some(text.as_str()))];
            let bytes = Aggregator::single_size_with_tags(&key, &json, &tags);
            if aggregate {
                // The batcher packs it with the others, tag and all.
                Outgoing {
                    record: PutRecord {
                        partition_key: key,
                        data: Bytes::from(json),
                    },
                    id_tag: Some(id),
                    bytes,
                }
            } else {
                let mut one = Aggregator::new(MAX_RECORD_BYTES);
                one.try_push_with_tags(&key, &json, &tags);
                let record = one.finish().unwrap_or(PutRecord {
                    // Never: a first record always goes in.
                    partition_key: key,
                    data: Bytes::from(json),
                });
                Outgoing {
                    record,
                    id_tag: None,
                    bytes,
                }
            }
        }
    }
}

fn plain(partition_key: String, json: Vec<u8>) -> Outgoing {
    Outgoing {
        bytes: json.len() + partition_key.len(),
        record: PutRecord {
            partition_key,
            data: Bytes::from(json),
        },
        id_tag: None,
    }
}

/// A random partition key (32 hex digits), spreading events evenly over the shards: what the
/// client sends without record identities.
fn random_partition_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::aggregate::deaggregate;

    const JSON: &[u8] = br#"{"a":1}"#;

    fn ids() -> RecordIds {
        RecordIds::new()
    }

    #[test]
    fn without_a_user_key_the_id_is_the_partition_key() {
        let ids = ids();
        for aggregate in [false, true] {
            let out = outgoing(JSON.to_vec(), None, Some(&ids), aggregate);
            assert!(RecordId::parse(&out.record.partition_key).is_some());
            assert_eq!(&out.record.data[..], JSON, "the data is the event");
            assert_eq!(out.bytes, JSON.len() + RecordId::TEXT_LEN);
            assert!(out.id_tag.is_none());
        }
        let a = outgoing(JSON.to_vec(), None, Some(&ids), false)
            .record
            .partition_key;
        let b = outgoing(JSON.to_vec(), None, Some(&ids), false)
            .record
            .partition_key;
        assert_ne!(a, b);
    }

    #[test]
    fn with_a_user_key_the_id_is_a_tag_and_the_key_stays() {
        let ids = ids();
        let out = outgoing(JSON.to_vec(), Some("user-7".into()), Some(&ids), false);
        assert_eq!(out.record.partition_key, "user-7");
        assert_eq!(
            out.record.data.len() + out.record.partition_key.len(),
            out.bytes
        );
        let users = deaggregate(&out.record.partition_key, &out.record.data).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].partition_key, "user-7");
        assert_eq!(&users[0].data[..], JSON);
        let [(key, Some(value))] = &users[0].tags[..] else {
            panic!("{:?}", users[0].tags)
        };
        assert_eq!(key, TAG_KEY);
        assert!(RecordId::parse(value).is_some());

        // Aggregated by the batcher: the record stays plain here, the id goes with it.
        let out = outgoing(JSON.to_vec(), Some("user-7".into()), Some(&ids), true);
        assert_eq!(&out.record.data[..], JSON);
        assert!(out.id_tag.is_some());
    }

    #[test]
    fn without_identities_records_are_as_before() {
        let out = outgoing(JSON.to_vec(), None, None, false);
        assert_eq!(out.record.partition_key.len(), 32);
        assert!(out
            .record
            .partition_key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(&out.record.data[..], JSON);
        let out = outgoing(JSON.to_vec(), Some("k".into()), None, false);
        assert_eq!(
            (out.record.partition_key.as_str(), &out.record.data[..]),
            ("k", JSON)
        );
    }
}

#[cfg(test)]
mod wire_cost {
    use super::*;

    /// The bytes an identity adds to one event on the wire (data plus partition key), as the
    /// README states them.
    #[test]
    fn what_an_identity_costs_on_the_wire() {
        let json = vec![b'x'; 100];
        let ids = RecordIds::new();
        let size = |o: &Outgoing| o.record.data.len() + o.record.partition_key.len();
        // No partition_key field: 25 characters of key instead of 32.
        let on = outgoing(json.clone(), None, Some(&ids), false);
        let off = outgoing(json.clone(), None, None, false);
        assert_eq!(size(&on) as i64 - size(&off) as i64, -7);
        // A partition_key field of 10 characters: the KPL framing and the tag.
        let key = || Some("user-12345".to_owned());
        let on = outgoing(json.clone(), key(), Some(&ids), false);
        let off = outgoing(json.clone(), key(), None, false);
        assert_eq!(size(&on) - size(&off), 81);
        // Aggregated, the user record's tag: 43 bytes (a 25-character key instead of 32 saves
        // 7 when the event has no partition_key field).
        let tagged = Aggregator::single_size_with_tags(
            "user-12345",
            &json,
            &[(TAG_KEY, Some(&ids.next_id().to_text()))],
        );
        assert_eq!(tagged - Aggregator::single_size("user-12345", &json), 43);
    }
}
