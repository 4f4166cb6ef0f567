//! The data-loss rule: whether records after a shard's checkpoint may have been trimmed (older
//! than the stream's retention) before any load read them.
//!
//! When the oldest record still in a shard lies beyond the checkpoint, the records between are
//! gone, and Kinesis' sequence numbers, which are not contiguous, cannot tell whether there were
//! any. What the bookkeeping knows decides it, exactly where it can:
//!
//! 1. A load that stopped at a limit saw the record after its checkpoint (`next_sequence_number`):
//!    that record is the first still there, or it was lost.
//! 2. A load that reached the shard's tip found nothing after its checkpoint at that moment
//!    (`caught_up_at`): every later record arrived after it, and Kinesis keeps a record for at
//!    least the stream's retention. If less than the retention has passed since, nothing
//!    unloaded can have expired: only loaded records did (a quiet shard, page
//!    `kinesis-extended-retention`).
//! 3. Otherwise (the loader did not look for longer than the retention, or the row is the Ruby
//!    gem's) records may have been written and trimmed unread: reported as data loss.
//!
//! Idle loads keep `caught_up_at` fresh on quiet shards (see [`refresh_due`]), so a loader that
//! runs at least once per retention period never reports a loss that did not happen.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::checkpoint::Position;
use crate::broker::SequenceNumber;

/// How much sooner than its retention a record is assumed possibly trimmed, for the clocks of
/// different hosts: a tenth of the retention, at most a minute.
fn margin(retention: Duration) -> Duration {
    (retention / 10).min(Duration::from_secs(60))
}

/// Whether records after `position`'s checkpoint may have been trimmed before any load read
/// them, now that the oldest record of the shard is `first_available`, on a stream keeping
/// records for `retention` (`None`: forever), at `now` (UTC).
pub(crate) fn may_have_lost(
    position: &Position,
    first_available: &SequenceNumber,
    retention: Option<Duration>,
    now: NaiveDateTime,
) -> bool {
    if *first_available <= position.sequence_number {
        return false;
    }
    if let Some(next) = &position.next {
        return first_available > next;
    }
    match (position.caught_up_at, retention) {
        (Some(seen), Some(retention)) => {
            let since = (now - seen).to_std().unwrap_or(Duration::ZERO);
            since + margin(retention) >= retention
        }
        _ => true,
    }
}

/// Whether an idle load should record that it found the shard caught up again: the recorded
/// time is missing, or older than an eighth of the retention. Writes stay rare (eight per
/// retention period per quiet shard) and the rule above keeps most of its reach.
pub(crate) fn refresh_due(
    position: &Position,
    retention: Option<Duration>,
    now: NaiveDateTime,
) -> bool {
    match (position.caught_up_at, retention) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(seen), Some(retention)) => {
            (now - seen).to_std().unwrap_or(Duration::ZERO) >= retention / 8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(h: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + h * 3600, 0)
            .unwrap()
            .naive_utc()
    }

    fn pos(cp: &str, seen: Option<i64>, next: Option<&str>) -> Position {
        Position {
            sequence_number: cp.into(),
            caught_up_at: seen.map(at),
            next: next.map(SequenceNumber::from),
        }
    }

    #[test]
    fn the_checkpoint_still_there_is_no_loss() {
        let p = pos("100", None, None);
        assert!(!may_have_lost(&p, &"100".into(), Some(HOUR), at(99)));
        assert!(!may_have_lost(&p, &"50".into(), Some(HOUR), at(99)));
    }

    #[test]
    fn a_known_next_record_decides_exactly() {
        let p = pos("100", None, Some("150"));
        assert!(!may_have_lost(&p, &"150".into(), Some(HOUR), at(99)));
        assert!(may_have_lost(&p, &"151".into(), Some(HOUR), at(0)));
    }

    #[test]
    fn caught_up_within_the_retention_is_no_loss() {
        let p = pos("100", Some(0), None);
        let day = 24 * HOUR;
        assert!(!may_have_lost(&p, &"900".into(), Some(day), at(23)));
        assert!(may_have_lost(&p, &"900".into(), Some(day), at(24)));
        // Within the margin before the retention: possibly trimmed already.
        let late = at(24) - chrono::Duration::seconds(30);
        assert!(may_have_lost(&p, &"900".into(), Some(day), late));
    }

    #[test]
    fn unknown_is_reported() {
        assert!(may_have_lost(
            &pos("100", None, None),
            &"900".into(),
            Some(HOUR),
            at(0)
        ));
        // A stream that never trims lost what is missing.
        assert!(may_have_lost(
            &pos("100", Some(0), None),
            &"900".into(),
            None,
            at(0)
        ));
    }

    #[test]
    fn refreshes_an_eighth_of_the_retention_apart() {
        let day = Some(24 * HOUR);
        assert!(refresh_due(&pos("1", None, None), day, at(0)));
        assert!(!refresh_due(&pos("1", Some(0), None), day, at(2)));
        assert!(refresh_due(&pos("1", Some(0), None), day, at(3)));
        assert!(!refresh_due(&pos("1", None, None), None, at(3)));
    }
}
