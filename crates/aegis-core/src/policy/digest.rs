//! Rule digests (SPEC.md §12.1): SHA-256 of a rule's canonical form, so a rule that did not
//! change keeps its rate-limit state across reloads and an edited rule starts fresh.
//!
//! The canonical form covers what a rule *decides*, not how it is labelled or where it sits:
//! renaming a rule, moving it within its file or to another file, reordering its lists, or
//! writing a legacy spelling keeps the digest; changing its service, methods, paths, rate or
//! window changes it. Version 1 is these bytes, in this order, where `str(x)` is the byte length
//! of `x` as a 32-bit big-endian integer followed by the bytes:
//!
//! ```text
//! 0x01                                   version
//! str("aegis-policy-rule")               domain separation
//! str(service)
//! methods   0x00 when absent (any method), else 0x01, count (u32 BE), str(m) for each method,
//!           upper-case, sorted bytewise, duplicates removed
//! paths     0x00 when absent (any path), else 0x01, count (u32 BE), str(p) for each pattern as
//!           written, sorted bytewise, duplicates removed
//! rate      0x00 when absent, else 0x01, str(canonical rate such as "300/hour")
//! window    0x00 when absent, else 0x01, str(start "HH:MM"), str(end "HH:MM"),
//!           str(IANA zone name in the database's spelling), one byte of days
//!           (bit 0 Monday … bit 6 Sunday; 0x7f when `days` is absent)
//! ```
//!
//! The limiter key of a rule is `rule:<agent id>:<lowercase hex digest>`.

use std::fmt;

use aws_lc_rs::digest;

use crate::policy::time_window::TimeWindow;
use crate::rate::Rate;

/// SHA-256 of a rule's canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleDigest([u8; 32]);

impl RuleDigest {
    /// Hashes a canonical form.
    pub fn of(canonical: &[u8]) -> Self {
        let hash = digest::digest(&digest::SHA256, canonical);
        let mut out = [0u8; 32];
        out.copy_from_slice(hash.as_ref());
        Self(out)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The rate-limiter key of this rule for one agent: `rule:<agent id>:<digest>`.
    pub fn limiter_key(&self, agent_id: &uuid::Uuid) -> String {
        format!("rule:{agent_id}:{}", self.to_hex())
    }
}

impl fmt::Display for RuleDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RuleDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RuleDigest({})", self.to_hex())
    }
}

/// The parts of a rule the canonical form covers.
pub(crate) struct CanonicalParts<'a> {
    pub(crate) service: &'a str,
    pub(crate) methods: Option<&'a [String]>,
    pub(crate) paths: Option<&'a [String]>,
    pub(crate) rate_limit: Option<Rate>,
    pub(crate) window: Option<&'a TimeWindow>,
}

/// The version-1 canonical form described in the module documentation.
pub(crate) fn canonical_form(parts: &CanonicalParts<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(CANONICAL_VERSION);
    put_str(&mut out, DOMAIN);
    put_str(&mut out, parts.service);
    put_set(&mut out, parts.methods);
    put_set(&mut out, parts.paths);
    match parts.rate_limit {
        None => out.push(0),
        Some(rate) => {
            out.push(1);
            put_str(&mut out, &rate.to_string());
        }
    }
    match parts.window {
        None => out.push(0),
        Some(window) => {
            out.push(1);
            put_str(&mut out, &window.start().to_string());
            put_str(&mut out, &window.end().to_string());
            put_str(&mut out, window.timezone());
            out.push(window.days().bits());
        }
    }
    out
}

/// Version byte of the canonical form.
const CANONICAL_VERSION: u8 = 1;
/// Domain-separation string of the canonical form.
const DOMAIN: &str = "aegis-policy-rule";

fn put_str(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_set(out: &mut Vec<u8>, items: Option<&[String]>) {
    let Some(items) = items else {
        out.push(0);
        return;
    };
    let mut sorted: Vec<&str> = items.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    out.push(1);
    let count = u32::try_from(sorted.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for item in sorted {
        put_str(out, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::time_window::{ClockTime, DaySet, Zone};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_canonical_form_is_the_documented_bytes() {
        let methods = strings(&["POST", "GET", "GET"]);
        let form = canonical_form(&CanonicalParts {
            service: "jira",
            methods: Some(&methods),
            paths: None,
            rate_limit: Rate::parse("20/min").ok().map(|p| p.rate()),
            window: None,
        });
        let mut expected = vec![1u8];
        expected.extend_from_slice(&17u32.to_be_bytes());
        expected.extend_from_slice(b"aegis-policy-rule");
        expected.extend_from_slice(&4u32.to_be_bytes());
        expected.extend_from_slice(b"jira");
        expected.push(1);
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.extend_from_slice(&3u32.to_be_bytes());
        expected.extend_from_slice(b"GET");
        expected.extend_from_slice(&4u32.to_be_bytes());
        expected.extend_from_slice(b"POST");
        expected.push(0);
        expected.push(1);
        expected.extend_from_slice(&6u32.to_be_bytes());
        expected.extend_from_slice(b"20/min");
        expected.push(0);
        assert_eq!(form, expected);
    }

    #[test]
    fn a_fixed_rule_has_a_fixed_digest() {
        // Computed independently (Python's hashlib over the documented layout). Changing the
        // form resets every rule limiter on upgrade, so it must be a deliberate, versioned change.
        let form = canonical_form(&CanonicalParts {
            service: "slack",
            methods: Some(&strings(&["POST"])),
            paths: Some(&strings(&[r"/api/chat\.postMessage"])),
            rate_limit: Rate::parse("20/min").ok().map(|p| p.rate()),
            window: None,
        });
        assert_eq!(
            RuleDigest::of(&form).to_hex(),
            "c5585090f693a9b3e87fe842ee273d6f266d88c10d0f8ee3fda579562f3f5922"
        );
    }

    #[test]
    fn list_order_and_duplicates_do_not_change_the_form() {
        let a = strings(&["/b", "/a"]);
        let b = strings(&["/a", "/b", "/a"]);
        let form = |paths: &[String]| {
            canonical_form(&CanonicalParts {
                service: "s",
                methods: None,
                paths: Some(paths),
                rate_limit: None,
                window: None,
            })
        };
        assert_eq!(form(&a), form(&b));
    }

    #[test]
    fn absent_lists_differ_from_present_ones() {
        let none = canonical_form(&CanonicalParts {
            service: "s",
            methods: None,
            paths: None,
            rate_limit: None,
            window: None,
        });
        let empty_methods = canonical_form(&CanonicalParts {
            service: "s",
            methods: Some(&[]),
            paths: None,
            rate_limit: None,
            window: None,
        });
        assert_ne!(none, empty_methods);
    }

    #[test]
    fn windows_are_part_of_the_form() {
        let zone = Zone::lookup("Europe/Berlin").expect("zone");
        let window = |start: &str| {
            TimeWindow::new(
                ClockTime::parse(start).expect("start"),
                ClockTime::parse("06:00").expect("end"),
                &zone,
                DaySet::EVERY_DAY,
            )
            .expect("window")
        };
        let (w1, w2) = (window("22:00"), window("23:00"));
        let form = |w: &TimeWindow| {
            canonical_form(&CanonicalParts {
                service: "s",
                methods: None,
                paths: None,
                rate_limit: None,
                window: Some(w),
            })
        };
        assert_ne!(form(&w1), form(&w2));
        assert!(form(&w1).ends_with(b"Europe/Berlin\x7f"));
    }

    #[test]
    fn limiter_keys_name_agent_and_digest() {
        let digest = RuleDigest::of(b"x");
        let agent = uuid::Uuid::from_bytes([7; 16]);
        assert_eq!(
            digest.limiter_key(&agent),
            format!("rule:{agent}:{}", digest.to_hex())
        );
    }
}
