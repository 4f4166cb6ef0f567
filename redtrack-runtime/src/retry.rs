//! Retry decisions, in one place: which Kinesis error codes are worth retrying, and the
//! exponential backoff with jitter between attempts.

use std::time::Duration;

use rand::Rng;

/// The first retry waits about this long.
pub(crate) const BASE_DELAY: Duration = Duration::from_millis(50);

/// No retry waits longer than this.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(5);

/// Whether a Kinesis error code (of a whole call or of one PutRecords record) is transient:
/// throttling, KMS throttling, internal failures and unavailability.
pub(crate) fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "KMSThrottlingException"
            | "LimitExceededException"
            | "InternalFailure"
            | "InternalFailureException"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "ThrottlingException"
            | "Throttling"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "InvalidResponse"
    )
}

/// The longest the delays between `max_attempts` attempts can add up to: each of the
/// `max_attempts - 1` delays at its cap ([`Backoff::next_delay`] waits at most that).
pub(crate) fn max_total_delay(max_attempts: u32) -> Duration {
    (1..max_attempts.max(1))
        .map(delay_cap)
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// The cap of the delay after attempt `attempt` (1-based): `BASE_DELAY * 2^(attempt-1)`, at
/// most [`MAX_DELAY`].
fn delay_cap(attempt: u32) -> Duration {
    BASE_DELAY
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(MAX_DELAY)
}

/// Exponential backoff with "equal jitter": attempt `n` waits between half and all of
/// `BASE_DELAY * 2^n`, capped at [`MAX_DELAY`].
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    attempt: u32,
    max_attempts: u32,
}

impl Backoff {
    /// A backoff allowing `max_attempts` attempts in all (so `max_attempts - 1` delays).
    pub(crate) fn new(max_attempts: u32) -> Backoff {
        Backoff {
            attempt: 1,
            max_attempts: max_attempts.max(1),
        }
    }

    /// How many attempts were made so far (1 before any retry).
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt, or `None` if the attempts are used up.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if self.attempt >= self.max_attempts {
            return None;
        }
        let exp = delay_cap(self.attempt);
        self.attempt += 1;
        let half = exp / 2;
        let jitter = rand::rng().random_range(0..=half.as_micros() as u64);
        Some(half + Duration::from_micros(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_ends() {
        let mut b = Backoff::new(20);
        let mut last_cap = Duration::ZERO;
        for n in 0..19 {
            let d = b.next_delay().unwrap();
            let cap = BASE_DELAY.saturating_mul(1 << n.min(16)).min(MAX_DELAY);
            assert!(d >= cap / 2 && d <= cap, "{d:?} vs {cap:?}");
            assert!(cap >= last_cap);
            last_cap = cap;
        }
        assert_eq!(b.next_delay(), None);
        assert_eq!(Backoff::new(1).next_delay(), None);
    }

    #[test]
    fn the_total_delay_bounds_every_backoff() {
        for n in [1, 2, 5, 8, 20] {
            let mut b = Backoff::new(n);
            let mut total = Duration::ZERO;
            while let Some(d) = b.next_delay() {
                total += d;
            }
            assert!(total <= max_total_delay(n), "{n}: {total:?}");
        }
        assert_eq!(max_total_delay(1), Duration::ZERO);
        // 50 + 100 + ... + 3200 ms.
        assert_eq!(max_total_delay(8), Duration::from_millis(6_350));
        // Then 5 s per attempt.
        assert_eq!(max_total_delay(10), Duration::from_millis(16_350));
    }

    #[test]
    fn classifies_codes() {
        assert!(is_retryable_code("ProvisionedThroughputExceededException"));
        assert!(is_retryable_code("KMSThrottlingException"));
        assert!(is_retryable_code("InternalFailure"));
        assert!(!is_retryable_code("ResourceNotFoundException"));
        assert!(!is_retryable_code("KMSAccessDeniedException"));
        assert!(!is_retryable_code("ValidationException"));
    }
}
