//! Rates such as `100/min`: the syntax of SPEC §1.3 plus the old spellings of §27.
//!
//! The canonical spellings are `N/sec`, `N/min`, `N/hour` and `N/day` with N from 1 to
//! 1 000 000. `N/second`, `N/minute`, `N/hr` and any upper- or mixed-case spelling are also
//! accepted; [`Rate::parse`] then returns a [`ParsedRate`] that reports the spelling as legacy so
//! the CLI can print one `warning:` line naming the canonical form. How a rate is enforced
//! (the sliding window of §12) lives in aegis-engine, not here.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::field_error::{FieldError, shown};

/// At most `count` admitted requests in any window of one `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    count: u32,
    unit: RateUnit,
}

/// The window length of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateUnit {
    /// One second (`sec`).
    Second,
    /// One minute (`min`).
    Minute,
    /// One hour (`hour`).
    Hour,
    /// One day of 86 400 seconds (`day`).
    Day,
}

/// The outcome of [`Rate::parse`]: the rate, and whether it was written in a legacy spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRate {
    rate: Rate,
    legacy: Option<String>,
}

impl Rate {
    /// The smallest accepted count.
    pub const MIN_COUNT: u32 = 1;
    /// The largest accepted count.
    pub const MAX_COUNT: u32 = 1_000_000;

    /// Builds a rate from its parts.
    ///
    /// # Errors
    /// [`FieldError::Rate`] when `count` is outside 1..=1 000 000.
    pub fn new(count: u32, unit: RateUnit) -> Result<Self, FieldError> {
        if (Self::MIN_COUNT..=Self::MAX_COUNT).contains(&count) {
            Ok(Self { count, unit })
        } else {
            Err(FieldError::Rate {
                found: format!("{count}/{}", unit.as_str()),
            })
        }
    }

    /// Parses `N/unit`, accepting canonical and legacy unit spellings (see [`ParsedRate`]).
    ///
    /// Surrounding whitespace is ignored; whitespace inside, a sign, leading zeros, a missing or
    /// unknown unit and N outside 1..=1 000 000 are errors.
    ///
    /// # Errors
    /// [`FieldError::Rate`] for anything that is not a rate.
    pub fn parse(text: &str) -> Result<ParsedRate, FieldError> {
        let err = || FieldError::Rate { found: shown(text) };
        let trimmed = text.trim();
        let (digits, unit_text) = trimmed.split_once('/').ok_or_else(err)?;
        let count = parse_count(digits).ok_or_else(err)?;
        let (unit, is_canonical) = parse_unit(unit_text).ok_or_else(err)?;
        let rate = Self::new(count, unit).map_err(|_| err())?;
        Ok(ParsedRate {
            rate,
            legacy: (!is_canonical).then(|| shown(trimmed)),
        })
    }

    /// Parses a rate that must already be in canonical spelling, as stored by Aegis itself.
    ///
    /// # Errors
    /// [`FieldError::Rate`] for anything that is not a canonically spelled rate.
    pub fn parse_canonical(text: &str) -> Result<Self, FieldError> {
        match Self::parse(text) {
            Ok(parsed) if !parsed.is_legacy() && parsed.rate.to_string() == text => Ok(parsed.rate),
            _ => Err(FieldError::Rate { found: shown(text) }),
        }
    }

    /// How many requests a window admits.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The window unit.
    pub fn unit(&self) -> RateUnit {
        self.unit
    }

    /// The window length.
    pub fn period(&self) -> Duration {
        self.unit.period()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit.as_str())
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl RateUnit {
    /// The window length of this unit.
    pub fn period(self) -> Duration {
        Duration::from_secs(match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        })
    }

    /// The canonical spelling: `sec`, `min`, `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Second => "sec",
            Self::Minute => "min",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

impl fmt::Display for RateUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ParsedRate {
    /// The rate, whatever its spelling.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Whether the text used a legacy spelling (`N/minute`, `N/hr`, `N/SEC`, ...).
    pub fn is_legacy(&self) -> bool {
        self.legacy.is_some()
    }

    /// For a legacy spelling, the one-line warning naming the canonical form, without the
    /// `warning: ` prefix: `rate '10/minute' uses an old spelling; write '10/min' instead`.
    pub fn legacy_warning(&self) -> Option<String> {
        self.legacy.as_ref().map(|written| {
            format!(
                "rate '{written}' uses an old spelling; write '{}' instead",
                self.rate
            )
        })
    }
}

/// Parses N: ASCII digits only, no sign, no leading zero, at most seven digits.
fn parse_count(digits: &str) -> Option<u32> {
    let valid = !digits.is_empty()
        && digits.len() <= 7
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'));
    if valid { digits.parse().ok() } else { None }
}

/// Maps a unit spelling to the unit and whether the spelling was canonical.
fn parse_unit(text: &str) -> Option<(RateUnit, bool)> {
    let canonical = match text {
        "sec" => Some(RateUnit::Second),
        "min" => Some(RateUnit::Minute),
        "hour" => Some(RateUnit::Hour),
        "day" => Some(RateUnit::Day),
        _ => None,
    };
    if let Some(unit) = canonical {
        return Some((unit, true));
    }
    let unit = match text.to_ascii_lowercase().as_str() {
        "sec" | "second" => RateUnit::Second,
        "min" | "minute" => RateUnit::Minute,
        "hour" | "hr" => RateUnit::Hour,
        "day" => RateUnit::Day,
        _ => return None,
    };
    Some((unit, false))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parsed(text: &str) -> Result<(String, bool), FieldError> {
        Rate::parse(text).map(|p| (p.rate().to_string(), p.is_legacy()))
    }

    #[test]
    fn canonical_spellings_parse_without_a_warning() {
        for (text, secs) in [
            ("1/sec", 1),
            ("100/min", 60),
            ("300/hour", 3_600),
            ("1000000/day", 86_400),
        ] {
            let parsed = Rate::parse(text);
            assert_eq!(parsed.as_ref().map(ParsedRate::is_legacy), Ok(false));
            assert_eq!(
                parsed.as_ref().map(|p| p.rate().to_string()),
                Ok(text.to_owned())
            );
            assert_eq!(
                parsed.map(|p| p.rate().period()),
                Ok(Duration::from_secs(secs))
            );
        }
    }

    #[test]
    fn legacy_spellings_parse_and_are_reported() {
        for (text, canonical) in [
            ("5/second", "5/sec"),
            ("20/minute", "20/min"),
            ("7/hr", "7/hour"),
            ("10/MIN", "10/min"),
            ("10/Minute", "10/min"),
            ("3/HR", "3/hour"),
            ("2/Day", "2/day"),
            ("9/SECOND", "9/sec"),
        ] {
            assert_eq!(parsed(text), Ok((canonical.to_owned(), true)), "{text}");
        }
    }

    #[test]
    fn legacy_warning_names_the_canonical_spelling() {
        let warning = Rate::parse("10/minute").map(|p| p.legacy_warning());
        assert_eq!(
            warning,
            Ok(Some(
                "rate '10/minute' uses an old spelling; write '10/min' instead".to_owned()
            ))
        );
        let none = Rate::parse("10/min").map(|p| p.legacy_warning());
        assert_eq!(none, Ok(None));
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(parsed(" 10/min "), Ok(("10/min".to_owned(), false)));
    }

    #[test]
    fn malformed_rates_are_rejected() {
        for bad in [
            "",
            "abc",
            "0/min",
            "1000001/min",
            "-5/min",
            "+5/min",
            "10",
            "10/",
            "/min",
            "10 /min",
            "10/ min",
            "10/m in",
            "1 0/min",
            "10/mins",
            "10/minutes",
            "10/s",
            "10/h",
            "10/week",
            "010/min",
            "1.5/min",
            "10/min/x",
            "99999999999/min",
            "١٠/min",
        ] {
            let err = Rate::parse(bad);
            assert_eq!(
                err.map_err(|e| e.code()).err(),
                Some("invalid_rate"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejection_message_says_what_is_expected() {
        let message = Rate::parse("abc").map_err(|e| e.to_string()).err();
        assert_eq!(
            message.as_deref(),
            Some(
                "invalid rate 'abc': expected N/sec, N/min, N/hour or N/day with N from 1 to \
                 1000000"
            )
        );
    }

    #[test]
    fn canonical_parse_refuses_legacy_spellings() {
        assert!(Rate::parse_canonical("10/min").is_ok());
        assert!(Rate::parse_canonical("10/minute").is_err());
        assert!(Rate::parse_canonical(" 10/min").is_err());
    }

    #[test]
    fn new_enforces_the_count_range() {
        assert!(Rate::new(0, RateUnit::Second).is_err());
        assert!(Rate::new(1_000_001, RateUnit::Day).is_err());
        assert_eq!(
            Rate::new(1_000_000, RateUnit::Hour).map(|r| r.count()),
            Ok(1_000_000)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = Rate::parse(&text);
        }

        #[test]
        fn display_reparses_to_the_same_rate(
            count in 1u32..=1_000_000,
            unit in prop_oneof![
                Just(RateUnit::Second),
                Just(RateUnit::Minute),
                Just(RateUnit::Hour),
                Just(RateUnit::Day),
            ],
        ) {
            let rate = Rate::new(count, unit);
            prop_assert!(rate.is_ok());
            if let Ok(rate) = rate {
                let again = Rate::parse_canonical(&rate.to_string());
                prop_assert_eq!(again, Ok(rate));
            }
        }

        #[test]
        fn counts_out_of_range_are_rejected(count in 1_000_001u64..100_000_000) {
            let text = format!("{count}/min");
            prop_assert!(Rate::parse(&text).is_err());
        }

        #[test]
        fn any_ascii_case_of_a_known_unit_is_accepted(
            count in 1u32..=1_000_000,
            unit in prop::sample::select(&["sec", "second", "min", "minute", "hour", "hr", "day"]),
            mask in prop::collection::vec(any::<bool>(), 6),
        ) {
            let written: String = unit
                .chars()
                .zip(mask.iter().cycle())
                .map(|(c, upper)| if *upper { c.to_ascii_uppercase() } else { c })
                .collect();
            let parsed = Rate::parse(&format!("{count}/{written}"));
            let is_canonical = written == unit && ["sec", "min", "hour", "day"].contains(&unit);
            prop_assert_eq!(parsed.map(|p| p.is_legacy()), Ok(!is_canonical));
        }

        #[test]
        fn non_ascii_lookalike_units_are_rejected(count in 1u32..=1_000, unit in "(?i)(sec|min)") {
            let text = format!("{count}/{unit}");
            prop_assert_eq!(Rate::parse(&text).is_ok(), unit.is_ascii());
        }
    }
}
