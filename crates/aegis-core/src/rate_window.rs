//! The bounded sliding-window limiter of SPEC §12.1: at most N admitted requests in any window
//! of length `period`, with fixed-size state whatever N is.
//!
//! The period is cut into [`SUB_BUCKETS`] sub-buckets of `period / 64` each; sub-bucket `b`
//! holds the times `t` (in ms) with `t * 64 / period == b` (integer division, so periods not
//! divisible by 64 and very short periods are exact). A request is counted for the whole
//! sub-bucket it fell in. A window `(t - period, t]` ending in sub-bucket `B` can reach back into
//! sub-bucket `B - 64`, so the limiter counts the 65 sub-buckets `B - 64 ..= B`: a request may
//! be refused up to `period / 64` early, but is never admitted beyond N (a token bucket or GCRA
//! with burst N would admit up to 2N − 1, which the spec forbids).
//!
//! [`Window::check`] only reads and [`Window::record`] only writes, so a caller can ask every
//! applicable limiter first and record in all of them only when all admit ([`admit_all`]).
//! Time is always an argument; nothing here reads the clock. Keys, backends and Redis live in
//! aegis-engine.

use std::num::{NonZeroU32, NonZeroU64};

use crate::rate::Rate;

/// One limiter's state: `limit` requests per `period_ms`, in 65 fixed counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    limit: u32,
    period_ms: u64,
    /// The newest sub-bucket that has been recorded into (or cleared up to).
    newest: u64,
    /// `counts[b % SLOTS]` is the number of admitted requests in sub-bucket `b`, for
    /// `b` in `newest - 64 ..= newest`; older sub-buckets have been cleared.
    counts: [u32; SLOTS],
}

/// How long a refused request should wait, in milliseconds; always at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetryAfterMs(u64);

/// The number of sub-buckets one period is divided into.
pub const SUB_BUCKETS: u64 = 64;

impl Window {
    /// Builds an empty limiter admitting at most `limit` requests in any `period_ms` window.
    pub fn new(limit: NonZeroU32, period_ms: NonZeroU64) -> Self {
        Self {
            limit: limit.get(),
            period_ms: period_ms.get(),
            newest: 0,
            counts: [0; SLOTS],
        }
    }

    /// Builds an empty limiter for a parsed [`Rate`] such as `100/min`.
    pub fn from_rate(rate: Rate) -> Self {
        // Rate::new admits counts 1..=1 000 000 and units of one second to one day, so neither
        // falls back; the fallbacks only keep this total without an unwrap.
        let limit = NonZeroU32::new(rate.count()).unwrap_or(NonZeroU32::MIN);
        let period = u64::try_from(rate.period().as_millis()).unwrap_or(u64::MAX);
        Self::new(limit, NonZeroU64::new(period).unwrap_or(NonZeroU64::MIN))
    }

    /// The most requests admitted in any window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window length in milliseconds.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Says whether a request at `now_ms` would be admitted, without recording it.
    ///
    /// # Errors
    /// [`RetryAfterMs`] when `limit` requests are already counted in the window: the time
    /// until the oldest counted sub-bucket leaves it, after which this request would be
    /// admitted if nothing else arrives.
    pub fn check(&self, now_ms: u64) -> Result<(), RetryAfterMs> {
        let current = self.effective_bucket(now_ms);
        let oldest = current.saturating_sub(SUB_BUCKETS);
        // Sub-buckets newer than `self.newest` hold nothing yet; older than `newest - 64` were
        // cleared, so only the overlap of both ranges can hold counts.
        let mut counted: u64 = 0;
        let mut oldest_counted = None;
        for bucket in oldest.max(self.newest.saturating_sub(SUB_BUCKETS))..=self.newest {
            let count = self.counts[slot(bucket)];
            if count > 0 {
                oldest_counted.get_or_insert(bucket);
                counted += u64::from(count);
            }
        }
        if counted < u64::from(self.limit) {
            return Ok(());
        }
        // `counted >= limit >= 1`, so some sub-bucket was counted; `oldest_counted + 65` is
        // the first sub-bucket whose window no longer reaches it (saturating only for times
        // hundreds of millions of years away).
        let leaves = oldest_counted
            .unwrap_or(current)
            .saturating_add(SLOTS as u64);
        let wait = self.bucket_start(leaves).saturating_sub(now_ms);
        Err(RetryAfterMs(wait.max(1)))
    }

    /// Counts one admitted request at `now_ms`. Call it only after [`Window::check`] admitted
    /// the request (in every limiter that applies); it does not check the limit itself.
    pub fn record(&mut self, now_ms: u64) {
        let current = self.effective_bucket(now_ms);
        if current > self.newest {
            // Clear every sub-bucket that now leaves the window: at most all 65 slots.
            let stale = (current - self.newest).min(SLOTS as u64);
            for bucket in (current - stale + 1)..=current {
                self.counts[slot(bucket)] = 0;
            }
            self.newest = current;
        }
        let counter = &mut self.counts[slot(current)];
        *counter = counter.saturating_add(1);
    }

    /// Checks and, when admitted, records a request at `now_ms`: the single-limiter shortcut.
    ///
    /// # Errors
    /// [`RetryAfterMs`] as in [`Window::check`]; a refused request is not recorded.
    pub fn admit(&mut self, now_ms: u64) -> Result<(), RetryAfterMs> {
        self.check(now_ms)?;
        self.record(now_ms);
        Ok(())
    }

    /// The sub-bucket a request at `now_ms` is counted in. A time older than the newest
    /// recorded sub-bucket (a clock step back, or callers racing) is counted in the newest
    /// one instead, which keeps it in the window longer: conservative, never over N.
    fn effective_bucket(&self, now_ms: u64) -> u64 {
        self.bucket_of(now_ms).max(self.newest)
    }

    /// `now_ms * 64 / period_ms`, computed without overflow.
    fn bucket_of(&self, now_ms: u64) -> u64 {
        let bucket = u128::from(now_ms) * u128::from(SUB_BUCKETS) / u128::from(self.period_ms);
        u64::try_from(bucket).unwrap_or(u64::MAX)
    }

    /// The first millisecond of sub-bucket `bucket`: `ceil(bucket * period_ms / 64)`.
    fn bucket_start(&self, bucket: u64) -> u64 {
        let scaled = u128::from(bucket) * u128::from(self.period_ms);
        let start = scaled.div_ceil(u128::from(SUB_BUCKETS));
        u64::try_from(start).unwrap_or(u64::MAX)
    }
}

impl RetryAfterMs {
    /// Wraps a wait computed elsewhere (a shared backend's answer); 0 becomes 1.
    pub fn from_millis(ms: u64) -> Self {
        Self(ms.max(1))
    }

    /// The wait in milliseconds (at least 1).
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// The wait in whole seconds, rounded up, for a `Retry-After` header (at least 1).
    pub fn as_secs_rounded_up(self) -> u64 {
        retry_after_secs_rounded_up(self.0)
    }
}

/// Checks every limiter that applies at `now_ms` and records the request in all of them only
/// when all admit (SPEC §12.1: a refused request consumes no quota from any limiter).
///
/// # Errors
/// The longest [`RetryAfterMs`] among the refusing limiters; nothing is recorded then.
pub fn admit_all(windows: &mut [&mut Window], now_ms: u64) -> Result<(), RetryAfterMs> {
    let longest = windows
        .iter()
        .filter_map(|window| window.check(now_ms).err())
        .max();
    if let Some(wait) = longest {
        return Err(wait);
    }
    for window in windows.iter_mut() {
        window.record(now_ms);
    }
    Ok(())
}

/// Converts a wait in milliseconds to whole seconds for `Retry-After`, rounding up, at least 1.
pub fn retry_after_secs_rounded_up(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// Slots in the ring: the 64 sub-buckets of one period plus the one a window can reach into.
const SLOTS: usize = SUB_BUCKETS as usize + 1;

fn slot(bucket: u64) -> usize {
    // The remainder is below SLOTS (65), so it always fits in usize.
    (bucket % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::rate::RateUnit;

    fn window(limit: u32, period_ms: u64) -> Window {
        Window::new(
            NonZeroU32::new(limit).expect("test limit is non-zero"),
            NonZeroU64::new(period_ms).expect("test period is non-zero"),
        )
    }

    #[test]
    fn burst_admits_exactly_limit_and_refuses_the_next() {
        let mut w = window(5, 60_000);
        for _ in 0..5 {
            assert_eq!(w.admit(1_000), Ok(()));
        }
        let refused = w.admit(1_000).expect_err("sixth request is over the limit");
        assert!(refused.as_millis() > 0);
        assert!(w.check(1_000).is_err());
    }

    #[test]
    fn admission_resumes_once_the_window_has_passed() {
        let mut w = window(3, 1_000);
        for _ in 0..3 {
            w.admit(10_000).expect("within limit");
        }
        let wait = w.admit(10_500).expect_err("still inside the window");
        let at = 10_500 + wait.as_millis();
        assert!(
            w.check(at - 1).is_err(),
            "admitted before the announced retry-after"
        );
        assert_eq!(w.admit(at), Ok(()));
        // Conservative by at most one sub-bucket: a full period plus 1/64 later always admits.
        let mut w = window(3, 1_000);
        for _ in 0..3 {
            w.admit(10_000).expect("within limit");
        }
        assert_eq!(w.admit(10_000 + 1_000 + 16), Ok(()));
    }

    #[test]
    fn refused_requests_consume_nothing() {
        let mut w = window(2, 1_000);
        w.admit(0).expect("first");
        w.admit(0).expect("second");
        let before = w.clone();
        for t in 0..500 {
            assert!(w.admit(t).is_err());
        }
        assert_eq!(w, before);
    }

    #[test]
    fn admit_all_records_in_none_when_one_refuses() {
        let mut loose = window(10, 1_000);
        let mut tight = window(1, 60_000);
        tight.admit(0).expect("first");
        let loose_before = loose.clone();
        let wait = admit_all(&mut [&mut loose, &mut tight], 5).expect_err("tight refuses");
        assert_eq!(loose, loose_before);
        assert_eq!(wait, tight.check(5).expect_err("tight refuses"));
        let mut fresh = window(1, 60_000);
        assert_eq!(admit_all(&mut [&mut loose, &mut fresh], 5), Ok(()));
        assert!(fresh.check(6).is_err());
        assert!(loose.check(6).is_ok());
    }

    #[test]
    fn admit_all_reports_the_longest_wait() {
        let mut short = window(1, 1_000);
        let mut long = window(1, 3_600_000);
        short.admit(0).expect("first");
        long.admit(0).expect("first");
        let wait = admit_all(&mut [&mut short, &mut long], 1).expect_err("both refuse");
        assert_eq!(wait, long.check(1).expect_err("long refuses"));
        assert!(wait.as_millis() > 3_600_000 - 1);
    }

    #[test]
    fn one_second_period_uses_fractional_sub_buckets() {
        // 1000 / 64 = 15.625 ms per sub-bucket.
        let w = window(1, 1_000);
        assert_eq!(w.bucket_of(15), 0);
        assert_eq!(w.bucket_of(16), 1);
        assert_eq!(w.bucket_of(31), 1);
        assert_eq!(w.bucket_of(32), 2);
        assert_eq!(w.bucket_start(1), 16);
        assert_eq!(w.bucket_start(2), 32);
        assert_eq!(w.bucket_start(64), 1_000);
        let mut w = window(1, 1_000);
        w.admit(15).expect("first");
        // Sub-bucket 0 is counted until sub-bucket 65 starts at ceil(65 * 15.625) = 1016 ms.
        assert_eq!(w.check(20).map_err(RetryAfterMs::as_millis), Err(996));
        assert!(w.check(1_015).is_err());
        assert!(w.check(1_016).is_ok());
    }

    #[test]
    fn periods_shorter_than_sixty_four_ms_work() {
        let mut w = window(2, 10);
        w.admit(3).expect("first");
        w.admit(4).expect("second");
        let wait = w.check(5).expect_err("third in the same window");
        assert!(w.check(5 + wait.as_millis()).is_ok());
        assert!(w.check(5 + wait.as_millis() - 1).is_err());
    }

    #[test]
    fn time_stepping_back_is_counted_conservatively() {
        let mut w = window(2, 1_000);
        w.admit(5_000).expect("first");
        w.admit(4_000)
            .expect("older time counts in the newest sub-bucket");
        assert!(w.check(4_500).is_err());
        assert!(w.check(5_999).is_err());
    }

    #[test]
    fn huge_times_do_not_overflow() {
        let mut w = window(1, 1);
        w.admit(u64::MAX - 1).expect("first");
        assert!(w.check(u64::MAX).is_err());
        let mut w = window(1, 86_400_000);
        w.admit(u64::MAX).expect("first");
        let wait = w.check(u64::MAX).expect_err("second");
        assert!(wait.as_millis() >= 1);
    }

    #[test]
    fn from_rate_uses_count_and_period() {
        let rate = Rate::new(100, RateUnit::Minute).expect("valid rate");
        let w = Window::from_rate(rate);
        assert_eq!(w.limit(), 100);
        assert_eq!(w.period_ms(), 60_000);
    }

    #[test]
    fn retry_after_seconds_round_up_to_at_least_one() {
        assert_eq!(retry_after_secs_rounded_up(0), 1);
        assert_eq!(retry_after_secs_rounded_up(1), 1);
        assert_eq!(retry_after_secs_rounded_up(1_000), 1);
        assert_eq!(retry_after_secs_rounded_up(1_001), 2);
        assert_eq!(RetryAfterMs(59_999).as_secs_rounded_up(), 60);
        assert_eq!(RetryAfterMs::from_millis(0).as_millis(), 1);
    }

    /// Arrival gaps: mostly small so windows fill up, sometimes a long pause.
    fn gaps() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::vec(
            prop_oneof![
                6 => 0u64..20,
                3 => 0u64..2_000,
                1 => 0u64..200_000,
            ],
            1..400,
        )
    }

    fn periods() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(1_000u64),
            Just(60_000),
            Just(3_600_000),
            1u64..200,
            200u64..100_000,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Compares against a brute-force log of admitted timestamps.
        #[test]
        fn never_admits_more_than_limit_in_any_window(
            limit in 1u32..=50,
            period in periods(),
            start in 0u64..10_000_000_000,
            gaps in gaps(),
        ) {
            let mut w = window(limit, period);
            let mut log: VecDeque<u64> = VecDeque::new();
            let early = period.div_ceil(SUB_BUCKETS);
            let mut now = start;
            for gap in gaps {
                now += gap;
                match w.admit(now) {
                    Ok(()) => {
                        log.push_back(now);
                        // Admitted in (now - period, now]:
                        let in_window = log.iter().filter(|&&t| t + period > now).count();
                        prop_assert!(in_window <= limit as usize,
                            "{in_window} admitted in the window ending at {now}");
                    }
                    Err(wait) => {
                        prop_assert!(wait.as_millis() > 0);
                        prop_assert!(wait.as_millis() <= period + early + 1);
                        // Refused at most period/64 early: the log holds `limit` requests in
                        // a window of length period + ceil(period / 64) ending now.
                        let recent = log.iter().filter(|&&t| t + period + early > now).count();
                        prop_assert!(recent >= limit as usize,
                            "refused at {now} with only {recent} recent admissions");
                        // Waiting exactly the announced time admits, with no other traffic.
                        let mut later = w.clone();
                        prop_assert_eq!(later.admit(now + wait.as_millis()), Ok(()));
                        // And it is not a gross overestimate: one ms earlier still refused,
                        // unless the wait was the minimum.
                        if wait.as_millis() > 1 {
                            prop_assert!(w.check(now + wait.as_millis() - 1).is_err());
                        }
                    }
                }
            }
        }

        #[test]
        fn check_agrees_with_admit_and_does_not_mutate(
            limit in 1u32..=20,
            period in periods(),
            gaps in gaps(),
        ) {
            let mut w = window(limit, period);
            let mut now = 0u64;
            for gap in gaps {
                now += gap;
                let before = w.clone();
                let checked = w.check(now);
                prop_assert_eq!(&w, &before);
                prop_assert_eq!(w.admit(now), checked);
                if checked.is_err() {
                    prop_assert_eq!(&w, &before);
                }
            }
        }
    }
}
