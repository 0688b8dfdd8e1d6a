//! `credential_expiry` (SPEC.md §18.1): the stages a credential crosses on its way to expiry
//! (7 days left, 1 day left, expired), each notified once, and the event's data.

use serde_json::{Map, Value};

use crate::credential::Credential;
use crate::timestamp::Timestamp;

/// How close to expiry a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExpiryStage {
    /// At most 7 days left.
    Week,
    /// At most 1 day left.
    Day,
    /// Expired.
    Expired,
}

impl ExpiryStage {
    /// Every stage, earliest first.
    pub const ALL: [Self; 3] = [Self::Week, Self::Day, Self::Expired];

    /// The stored name (`7d`, `1d`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "7d",
            Self::Day => "1d",
            Self::Expired => "expired",
        }
    }

    /// This stage and the earlier ones: notifying a stage also settles those before it.
    pub fn up_to(self) -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(move |s| *s <= self)
    }
}

/// The stage a credential expiring at `expires_at` is in at `now`; `None` with more than 7 days
/// left.
pub fn stage(expires_at: Timestamp, now: Timestamp) -> Option<ExpiryStage> {
    let left = now.millis_until(expires_at);
    if left <= 0 {
        Some(ExpiryStage::Expired)
    } else if left <= DAY_MS {
        Some(ExpiryStage::Day)
    } else if left <= 7 * DAY_MS {
        Some(ExpiryStage::Week)
    } else {
        None
    }
}

/// Whole days left (rounded down; 0 once expired).
pub fn days_left(expires_at: Timestamp, now: Timestamp) -> i64 {
    now.millis_until(expires_at).max(0) / DAY_MS
}

/// The event's data: `credential`, `service`, `expires_at`, `days_left`, `expired`.
pub fn expiry_data(
    credential: &Credential,
    expires_at: Timestamp,
    now: Timestamp,
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("credential".into(), credential.name.as_str().into());
    data.insert("service".into(), credential.service.as_str().into());
    data.insert("expires_at".into(), expires_at.to_rfc3339().into());
    data.insert("days_left".into(), days_left(expires_at, now).into());
    data.insert("expired".into(), (now >= expires_at).into());
    data
}

const DAY_MS: i64 = 24 * 3600 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_the_time_left() {
        let now = Timestamp::from_millis(0);
        let at = |days: f64| Timestamp::from_millis((days * DAY_MS as f64) as i64);
        assert_eq!(stage(at(8.0), now), None);
        assert_eq!(stage(at(7.0), now), Some(ExpiryStage::Week));
        assert_eq!(stage(at(1.5), now), Some(ExpiryStage::Week));
        assert_eq!(stage(at(1.0), now), Some(ExpiryStage::Day));
        assert_eq!(stage(at(0.0), now), Some(ExpiryStage::Expired));
        assert_eq!(stage(at(-3.0), now), Some(ExpiryStage::Expired));
        assert_eq!(days_left(at(6.9), now), 6);
        assert_eq!(days_left(at(-1.0), now), 0);
    }

    #[test]
    fn a_stage_settles_the_earlier_ones() {
        let settled: Vec<_> = ExpiryStage::Day.up_to().collect();
        assert_eq!(settled, vec![ExpiryStage::Week, ExpiryStage::Day]);
    }
}
