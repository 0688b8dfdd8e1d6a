//! When a delivery is tried again (SPEC.md §18.3): 2xx is success; network errors, timeouts,
//! 408, 429 and 5xx are retried with exponential backoff and full jitter (base 10 s, factor 2,
//! cap 1 h) until 24 h after the event; any other status fails the delivery at once.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// What one attempt's result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Delivered,
    /// Worth trying again later.
    Retry,
    /// Will not get better: fail now.
    Failed,
}

/// Classifies an attempt: `None` for a network error or timeout, else the response status.
pub fn classify(status: Option<u16>) -> Verdict {
    match status {
        None | Some(408 | 429 | 500..=599) => Verdict::Retry,
        Some(200..=299) => Verdict::Delivered,
        Some(_) => Verdict::Failed,
    }
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Mark it delivered.
    Delivered,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Mark it failed (and record `webhook_delivery_failed`).
    Failed,
}

/// Backoff settings; [`RetryPolicy::default`] is the one of SPEC.md §18.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay ceiling of the first retry.
    pub base: Duration,
    /// Longest delay ceiling.
    pub cap: Duration,
    /// How long after the event retries stop.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay after `failures` failed attempts (1 for the first):
    /// `min(cap, base × 2^(failures − 1))`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(32);
        self.base
            .saturating_mul(1u32 << exponent.min(31))
            .min(self.cap)
    }

    /// Full jitter: a delay uniform in `[0, ceiling]`, drawn from `random`.
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(failures).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(random % ceiling.saturating_add(1))
    }

    /// The next step after an attempt with `verdict`, the `failures` so far including this one,
    /// for an event created at `created_at`, at time `now`.
    pub fn next_step(
        &self,
        verdict: Verdict,
        failures: u32,
        created_at: Timestamp,
        now: Timestamp,
        random: u64,
    ) -> NextStep {
        match verdict {
            Verdict::Delivered => NextStep::Delivered,
            Verdict::Failed => NextStep::Failed,
            Verdict::Retry => {
                let at = now.plus(self.delay(failures, random));
                if at >= created_at.plus(self.give_up_after) {
                    NextStep::Failed
                } else {
                    NextStep::RetryAt(at)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn statuses_are_classified_as_documented() {
        assert_eq!(classify(None), Verdict::Retry);
        for status in [200, 201, 204, 299] {
            assert_eq!(classify(Some(status)), Verdict::Delivered, "{status}");
        }
        for status in [408, 429, 500, 502, 503, 599] {
            assert_eq!(classify(Some(status)), Verdict::Retry, "{status}");
        }
        for status in [301, 302, 307, 400, 401, 403, 404, 410, 422] {
            assert_eq!(classify(Some(status)), Verdict::Failed, "{status}");
        }
    }

    #[test]
    fn ceilings_double_from_ten_seconds_up_to_an_hour() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_secs(10));
        assert_eq!(policy.ceiling(2), Duration::from_secs(20));
        assert_eq!(policy.ceiling(3), Duration::from_secs(40));
        assert_eq!(policy.ceiling(9), Duration::from_secs(2560).min(policy.cap));
        assert_eq!(policy.ceiling(100), Duration::from_secs(3600));
    }

    #[test]
    fn retries_stop_24_hours_after_the_event() {
        let policy = RetryPolicy::default();
        let created = Timestamp::from_millis(0);
        let early = Timestamp::from_millis(1000);
        assert!(matches!(
            policy.next_step(Verdict::Retry, 1, created, early, 5),
            NextStep::RetryAt(_)
        ));
        let late = Timestamp::from_millis(24 * 3600 * 1000 - 1);
        assert_eq!(
            policy.next_step(Verdict::Retry, 20, created, late, u64::MAX),
            NextStep::Failed
        );
        assert_eq!(
            policy.next_step(Verdict::Failed, 1, created, early, 0),
            NextStep::Failed
        );
        assert_eq!(
            policy.next_step(Verdict::Delivered, 1, created, early, 0),
            NextStep::Delivered
        );
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_its_ceiling(failures in 1u32..200, random in any::<u64>()) {
            let policy = RetryPolicy::default();
            prop_assert!(policy.delay(failures, random) <= policy.ceiling(failures));
            prop_assert!(policy.ceiling(failures) <= policy.cap);
        }
    }
}
