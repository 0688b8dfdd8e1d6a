//! Points in time as Aegis stores and prints them: milliseconds since the Unix epoch, shown as
//! RFC 3339 UTC with millisecond precision (`2026-03-01T09:30:00.125Z`).
//!
//! Reading the clock is the caller's job; this module only converts.

use std::fmt;

use time::OffsetDateTime;
use time::macros::format_description;

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Builds a timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Converts a `SystemTime` reading (taken by the caller) into a timestamp.
    pub fn from_system_time(at: std::time::SystemTime) -> Self {
        let millis = match at.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Self(millis)
    }

    /// This instant plus a number of whole days (saturating).
    pub fn plus_days(self, days: u32) -> Self {
        Self(self.0.saturating_add(i64::from(days) * 86_400_000))
    }

    /// This instant plus a duration (saturating).
    pub fn plus(self, duration: std::time::Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// Milliseconds from `self` until `later` (negative when `later` is earlier).
    pub fn millis_until(self, later: Timestamp) -> i64 {
        later.0.saturating_sub(self.0)
    }

    /// RFC 3339 text, UTC, millisecond precision.
    pub fn to_rfc3339(self) -> String {
        if let Some(bytes) = self.rfc3339_bytes() {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        let nanos = i128::from(self.0) * 1_000_000;
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|at| at.format(format).ok())
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }

    /// The text of [`Timestamp::to_rfc3339`] in a stack buffer, for years 0000–9999 (every
    /// instant Aegis writes); `None` outside them. The ledger hashes this for every entry, so
    /// it avoids both the allocation and the format interpreter.
    pub fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        let seconds = self.0.div_euclid(1000);
        let millis = u32::try_from(self.0.rem_euclid(1000)).ok()?;
        let at = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
        let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
        let (hour, minute, second) = at.to_hms();
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                // `value % 10` is a single digit.
                out[i] = b'0' + u8::try_from(value % 10).unwrap_or(0);
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, u32::from(u8::from(at.month())));
        put(8, 2, u32::from(at.day()));
        put(11, 2, u32::from(hour));
        put(14, 2, u32::from(minute));
        put(17, 2, u32::from(second));
        put(20, 3, millis);
        Some(out)
    }
}

/// Parses a time filter (`--since`, `--until`, SPEC.md §1.3): an RFC 3339 timestamp, a date
/// `YYYY-MM-DD` (00:00 UTC), or an age such as `90m`, `24h`, `7d` counted back from `now`.
///
/// # Errors
/// A message saying which forms are accepted.
pub fn parse_time_filter(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    let err = || {
        format!(
            "invalid time '{text}': expected an RFC 3339 timestamp, a date YYYY-MM-DD or an age like 90m, 24h, 7d"
        )
    };
    if let Ok(age) = crate::units::parse_duration(text) {
        return Ok(Timestamp::from_millis(now.as_millis().saturating_sub(
            i64::try_from(age.as_millis()).unwrap_or(i64::MAX),
        )));
    }
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        let millis = at.unix_timestamp_nanos() / 1_000_000;
        return i64::try_from(millis)
            .map(Timestamp::from_millis)
            .map_err(|_| err());
    }
    let date_format = format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, date_format) {
        let at = date.midnight().assume_utc();
        return Ok(Timestamp::from_millis(
            at.unix_timestamp().saturating_mul(1000),
        ));
    }
    Err(err())
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_fast_form_matches_the_formatter(millis in -62_135_596_800_000i64..253_402_300_800_000) {
            let at = Timestamp::from_millis(millis);
            let nanos = i128::from(millis) * 1_000_000;
            let format = format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            let expected = OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .expect("in range")
                .format(format)
                .expect("formats");
            let fast = at.rfc3339_bytes().expect("year 0000-9999");
            proptest::prop_assert_eq!(std::str::from_utf8(&fast).expect("ascii"), expected.as_str());
        }
    }

    #[test]
    fn years_beyond_9999_fall_back_to_the_formatter() {
        let far = Timestamp::from_millis(253_402_300_800_000);
        assert_eq!(far.rfc3339_bytes(), None);
        assert!(far.to_rfc3339().starts_with("+10000") || far.to_rfc3339().starts_with('@'));
    }

    #[test]
    fn formats_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_772_357_400_125).to_rfc3339(),
            "2026-03-01T09:30:00.125Z"
        );
    }

    #[test]
    fn time_filters_accept_rfc3339_dates_and_ages() {
        let now = Timestamp::from_millis(1_772_357_400_125);
        assert_eq!(
            parse_time_filter("2026-03-01T09:30:00.125Z", now),
            Ok(Timestamp::from_millis(1_772_357_400_125))
        );
        assert_eq!(
            parse_time_filter("2026-03-01", now),
            Ok(Timestamp::from_millis(1_772_323_200_000))
        );
        assert_eq!(
            parse_time_filter("90m", now),
            Ok(Timestamp::from_millis(1_772_357_400_125 - 90 * 60_000))
        );
        for bad in ["yesterday", "2026-13-01", "7", "", "2026-03-01 09:30"] {
            assert!(parse_time_filter(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn day_arithmetic_adds_whole_days() {
        let start = Timestamp::from_millis(1_000);
        assert_eq!(start.plus_days(2).as_millis(), 1_000 + 2 * 86_400_000);
        assert_eq!(start.millis_until(start.plus_days(1)), 86_400_000);
    }
}
