//! Durations and sizes as written in configuration and flags (`500ms`, `30s`, `10MiB`).
//!
//! Only the spellings of SPEC.md §1.3 are accepted; anything else is an error that says what
//! was expected. Rates (`N/min`) live in `rate`, not here.

use std::time::Duration;

/// A value that is not a duration or size in the accepted syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text is not `<integer><unit>` with a known unit.
    #[error("expected a duration like 500ms, 30s, 10m, 2h or 7d, found '{found}'")]
    Duration {
        /// What was given.
        found: String,
    },
    /// The text is not an integer byte count or `<integer>KiB|MiB|GiB`.
    #[error("expected a size like 65536, 64KiB, 100MiB or 1GiB, found '{found}'")]
    Size {
        /// What was given.
        found: String,
    },
}

/// Parses a duration: an integer followed by `ms`, `s`, `m`, `h` or `d`.
///
/// # Errors
/// [`UnitError::Duration`] for a missing or unknown unit, a non-integer amount or an overflow.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let err = || UnitError::Duration {
        found: text.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(err)?;
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let amount: u64 = digits.parse().map_err(|_| err())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    let millis = amount.checked_mul(millis_per_unit).ok_or_else(err)?;
    Ok(Duration::from_millis(millis))
}

/// Formats a duration in the largest unit that divides it exactly (`90s` → `90s`, `120s` → `2m`).
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    const UNITS: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    if millis == 0 {
        return "0s".to_owned();
    }
    for (size, suffix) in UNITS {
        if millis.is_multiple_of(size) {
            return format!("{}{suffix}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// Parses a size: integer bytes, or an integer followed by `KiB`, `MiB` or `GiB`.
///
/// # Errors
/// [`UnitError::Size`] for an unknown unit, a non-integer amount or an overflow.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Size {
        found: text.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let amount: u64 = digits.parse().map_err(|_| err())?;
    let multiplier: u64 = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(err()),
    };
    amount.checked_mul(multiplier).ok_or_else(err)
}

/// Formats a byte count with the largest binary unit that divides it exactly.
pub fn format_size(bytes: u64) -> String {
    for (shift, suffix) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        let unit = 1u64 << shift;
        if bytes != 0 && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn durations_in_every_unit_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn durations_without_a_known_unit_are_rejected() {
        for bad in [
            "",
            "30",
            "s",
            "1.5s",
            "-1s",
            "10 min",
            "3w",
            "1sec",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn sizes_in_every_unit_parse() {
        assert_eq!(parse_size("65536"), Ok(65_536));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    }

    #[test]
    fn sizes_with_decimal_units_or_junk_are_rejected() {
        for bad in ["", "MiB", "10MB", "10kb", "1.5MiB", "-1", "99999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn formatted_durations_parse_back(millis in 0u64..10_000_000_000) {
            let duration = Duration::from_millis(millis);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }

        #[test]
        fn formatted_sizes_parse_back(bytes in 0u64..(1u64 << 50)) {
            prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }

        #[test]
        fn duration_parser_never_panics(text in "\\PC{0,12}") {
            let _ = parse_duration(&text);
        }
    }
}
