//! PII detectors for `redact` mode (SPEC §14.2, §14.3): US social security numbers, payment
//! card numbers, IBANs and bank account numbers, found in a whole (buffered) body and masked in
//! place without changing its length.
//!
//! Candidates come from linear-time `regex` searches and are confirmed by checksums and tables:
//! SSN area/group/serial rules, a card network prefix and the Luhn check, an IBAN country's
//! length and mod 97. Matches never overlap; the earliest wins. PII runs only on buffered bodies
//! (`redact` mode buffers), so there is no streaming form.

use std::sync::LazyLock;

use regex::bytes::Regex;

use super::{Detector, Finding, Location, MAX_FINDINGS};

/// One PII match: which detector and the byte span (never the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PiiMatch {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What found it.
    pub detector: Detector,
}

/// Every PII match in `body`, in order, non-overlapping.
pub fn find(body: &[u8]) -> Vec<PiiMatch> {
    let patterns = &*PATTERNS;
    let mut all = Vec::new();
    find_ssns(patterns, body, &mut all);
    find_cards(patterns, body, &mut all);
    find_ibans(patterns, body, &mut all);
    find_accounts(patterns, body, &mut all);
    all.sort();
    let mut kept: Vec<PiiMatch> = Vec::with_capacity(all.len());
    for found in all {
        if kept.last().is_none_or(|last| found.start >= last.end) {
            kept.push(found);
        }
    }
    kept
}

/// Masks every match in place (SPEC §14.3): SSN digits become `*`; card and account numbers
/// keep their last four digits; an IBAN keeps its first and last four characters. Separators
/// are kept, so the length does not change.
pub fn mask(body: &mut [u8], matches: &[PiiMatch]) {
    for found in matches {
        let Some(span) = body.get_mut(found.start..found.end) else {
            continue;
        };
        match found.detector {
            Detector::UsSsn => mask_keeping(span, 0, 0, |b| b.is_ascii_digit()),
            Detector::Iban => mask_keeping(span, 4, 4, |b| b.is_ascii_alphanumeric()),
            _ => mask_keeping(span, 0, 4, |b| b.is_ascii_digit()),
        }
    }
}

/// The findings of `matches` in the body: at most [`MAX_FINDINGS`], the earliest first.
pub fn findings(matches: &[PiiMatch]) -> Vec<Finding> {
    matches
        .iter()
        .take(MAX_FINDINGS)
        .map(|found| Finding {
            offset: found.start as u64,
            detector: found.detector,
            location: Location::Body,
        })
        .collect()
}

struct Patterns {
    ssn: Regex,
    digits: Regex,
    iban: Regex,
    account: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    // Fixed, valid patterns: compiling them cannot fail.
    let compile = |pattern: &str| Regex::new(pattern).expect("fixed PII patterns compile");
    Patterns {
        ssn: compile(r"(?-u)[0-9]{3}-[0-9]{2}-[0-9]{4}"),
        digits: compile(r"(?-u)[0-9]+(?:[ -][0-9]+)*"),
        iban: compile(r"(?-u)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"),
        account: compile(r"(?i-u)acc(?:oun)?t"),
    }
});

fn find_ssns(patterns: &Patterns, body: &[u8], out: &mut Vec<PiiMatch>) {
    for found in patterns.ssn.find_iter(body) {
        let (start, end) = (found.start(), found.end());
        if !isolated(body, start, end, |b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        let text = found.as_bytes();
        let area = number(text.get(0..3));
        let group = number(text.get(4..6));
        let serial = number(text.get(7..11));
        if area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 {
            out.push(PiiMatch {
                start,
                end,
                detector: Detector::UsSsn,
            });
        }
    }
}

fn find_cards(patterns: &Patterns, body: &[u8], out: &mut Vec<PiiMatch>) {
    for found in patterns.digits.find_iter(body) {
        let (start, end) = (found.start(), found.end());
        if !isolated(body, start, end, |b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let text = found.as_bytes();
        // Single separators of one kind between groups, or none.
        let spaced = text.contains(&b' ');
        let hyphened = text.contains(&b'-');
        if spaced && hyphened {
            continue;
        }
        let digits: Vec<u8> = text
            .iter()
            .filter(|b| b.is_ascii_digit())
            .map(|b| b - b'0')
            .collect();
        if (13..=19).contains(&digits.len()) && known_network(&digits) && luhn(&digits) {
            out.push(PiiMatch {
                start,
                end,
                detector: Detector::PaymentCard,
            });
        }
    }
}

fn find_ibans(patterns: &Patterns, body: &[u8], out: &mut Vec<PiiMatch>) {
    let mut at = 0;
    while let Some(found) = patterns.iban.find_at(body, at) {
        let start = found.start();
        at = found.end().max(start + 1);
        if start > 0 && body.get(start - 1).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        let text = found.as_bytes();
        let Some(length) = iban_length(text.get(0..2).unwrap_or_default()) else {
            continue;
        };
        // Take exactly the country's number of characters, spaces between them allowed.
        let mut chars = Vec::with_capacity(length);
        let mut end = start;
        for (i, b) in text.iter().enumerate() {
            if *b == b' ' {
                continue;
            }
            chars.push(*b);
            if chars.len() == length {
                end = start + i + 1;
                break;
            }
        }
        if chars.len() != length || body.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        if iban_checksum_ok(&chars) {
            out.push(PiiMatch {
                start,
                end,
                detector: Detector::Iban,
            });
            at = end;
        }
    }
}

fn find_accounts(patterns: &Patterns, body: &[u8], out: &mut Vec<PiiMatch>) {
    for keyword in patterns.account.find_iter(body) {
        let after = keyword.end();
        let reach = body.len().min(after + ACCOUNT_REACH);
        let mut i = after;
        while i < reach {
            if !body.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
                continue;
            }
            let run = body
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if (10..=17).contains(&run) {
                out.push(PiiMatch {
                    start: i,
                    end: i + run,
                    detector: Detector::BankAccount,
                });
                break;
            }
            i += run;
        }
    }
}

/// Whether the bytes either side of `start..end` are outside `class` (or the ends).
fn isolated(body: &[u8], start: usize, end: usize, class: fn(u8) -> bool) -> bool {
    let before = start.checked_sub(1).and_then(|i| body.get(i));
    before.is_none_or(|b| !class(*b)) && body.get(end).is_none_or(|b| !class(*b))
}

fn number(digits: Option<&[u8]>) -> u32 {
    digits
        .unwrap_or_default()
        .iter()
        .fold(0, |n, d| n * 10 + u32::from(d.wrapping_sub(b'0')))
}

/// Replaces every `class` byte of `span` with `*` except the first `head` and last `tail`.
fn mask_keeping(span: &mut [u8], head: usize, tail: usize, class: fn(u8) -> bool) {
    let total = span.iter().filter(|b| class(**b)).count();
    let mut seen = 0;
    for b in span.iter_mut() {
        if class(*b) {
            if seen >= head && seen + tail < total {
                *b = b'*';
            }
            seen += 1;
        }
    }
}

/// Visa, Mastercard, American Express, Discover, Diners Club, JCB and UnionPay prefixes, with
/// their lengths.
fn known_network(digits: &[u8]) -> bool {
    let prefix = |n: usize| {
        digits
            .iter()
            .take(n)
            .fold(0u32, |acc, d| acc * 10 + u32::from(*d))
    };
    let len = digits.len();
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    (p1 == 4 && matches!(len, 13 | 16 | 19))
        || (((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16)
        || ((p2 == 34 || p2 == 37) && len == 15)
        || ((p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)) && len >= 16)
        || (((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && len >= 14)
        || ((3528..=3589).contains(&p4) && len >= 16)
        || (p2 == 62 && len >= 16)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Mod 97 of the IBAN with its first four characters moved to the end and letters as 10–35.
fn iban_checksum_ok(chars: &[u8]) -> bool {
    let (head, tail) = chars.split_at(chars.len().min(4));
    let mut rem: u32 = 0;
    for b in tail.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if value >= 10 {
            (rem * 100 + value) % 97
        } else {
            (rem * 10 + value) % 97
        };
    }
    rem == 1
}

/// The IBAN length of a country code (the SWIFT registry).
fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(code, _)| code.as_bytes() == country)
        .map(|(_, len)| *len)
}

/// How far after `account`/`acct` the number may start.
const ACCOUNT_REACH: usize = 32;

const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];
