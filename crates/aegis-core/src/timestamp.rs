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
        let nanos = i128::from(self.0) * 1_000_000;
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|at| at.format(format).ok())
            .unwrap_or_else(|| format!("@{}ms", self.0))
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
