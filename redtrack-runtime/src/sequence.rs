//! Sequence numbers: where a record sits in its shard.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A record's position in its shard: a Kinesis sequence number (decimal digits, up to 129 of
/// them, too long for any integer type; page `API_Record` of the Kinesis API reference), or
/// the file broker's byte offset.
///
/// Ordered **numerically**: leading zeros are ignored, then the longer number is the larger.
/// Stored as text (in `kinesis_loads` too), so equality is numeric as well (`"0010" == "10"`).
///
/// ```
/// use redtrack_runtime::SequenceNumber;
/// let a = SequenceNumber::from("9");
/// let b = SequenceNumber::from("10");
/// assert!(a < b); // "9" > "10" as text
/// assert_eq!(SequenceNumber::from("0010"), b);
/// assert_eq!(b, "10");
/// ```
#[derive(Clone, Default)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// The sequence number written as `digits` (not checked: a broker hands out what it has).
    pub fn new(digits: impl Into<String>) -> SequenceNumber {
        SequenceNumber(digits.into())
    }

    /// The text, as the broker wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The digits without leading zeros: what equality, order and hash look at.
    fn significant(&self) -> &str {
        self.0.trim_start_matches('0')
    }
}

/// Compares two sequence numbers given as text, as [`SequenceNumber`] orders them: numerically,
/// leading zeros ignored.
///
/// ```
/// use std::cmp::Ordering;
/// use redtrack_runtime::broker::cmp_sequence_numbers;
/// assert_eq!(cmp_sequence_numbers("9", "10"), Ordering::Less);
/// ```
pub fn cmp_sequence_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_sequence_numbers(&self.0, &other.0)
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.significant() == other.significant()
    }
}

impl Eq for SequenceNumber {}

impl Hash for SequenceNumber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl PartialEq<str> for SequenceNumber {
    fn eq(&self, other: &str) -> bool {
        cmp_sequence_numbers(&self.0, other).is_eq()
    }
}

impl PartialEq<&str> for SequenceNumber {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<String> for SequenceNumber {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

impl PartialEq<SequenceNumber> for String {
    fn eq(&self, other: &SequenceNumber) -> bool {
        *other == *self.as_str()
    }
}

impl PartialEq<SequenceNumber> for &str {
    fn eq(&self, other: &SequenceNumber) -> bool {
        *other == **self
    }
}

impl std::ops::Deref for SequenceNumber {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SequenceNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<String> for SequenceNumber {
    fn from(digits: String) -> SequenceNumber {
        SequenceNumber(digits)
    }
}

impl From<&str> for SequenceNumber {
    fn from(digits: &str) -> SequenceNumber {
        SequenceNumber(digits.to_owned())
    }
}

impl From<u64> for SequenceNumber {
    fn from(n: u64) -> SequenceNumber {
        SequenceNumber(itoa::Buffer::new().format(n).to_owned())
    }
}

impl From<SequenceNumber> for String {
    fn from(s: SequenceNumber) -> String {
        s.0
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl serde::Serialize for SequenceNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert_eq!(cmp_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(cmp_sequence_numbers("0010", "10"), Ordering::Equal);
        let long = "49590338271490256608559692538361571095921575989136588898";
        assert_eq!(
            cmp_sequence_numbers(
                long,
                "49590338271490256608559692538361571095921575989136588899"
            ),
            Ordering::Less
        );
        assert_eq!(cmp_sequence_numbers(long, "5"), Ordering::Greater);
    }

    #[test]
    fn the_type_orders_hashes_and_compares_as_the_numbers_do() {
        let mut v: Vec<SequenceNumber> = ["100", "9", "0010", "10"]
            .into_iter()
            .map(SequenceNumber::from)
            .collect();
        v.sort();
        assert_eq!(v, ["9", "0010", "10", "100"]);
        let set: std::collections::HashSet<_> = v.into_iter().collect();
        assert_eq!(set.len(), 3, "0010 and 10 are one number");
        assert_eq!(SequenceNumber::from(42u64), "42");
        assert_eq!(format!("{:?}", SequenceNumber::from("7")), "\"7\"");
    }
}
