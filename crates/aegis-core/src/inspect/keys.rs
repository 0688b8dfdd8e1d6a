//! Key-format detectors (SPEC §14.2): one Aho-Corasick DFA over the known prefixes, each
//! candidate confirmed by a linear check of at most [`WINDOW`] bytes from its start.
//!
//! A candidate must start a token: the byte before it is not `[A-Za-z0-9_-]` (nor `.` for a
//! JWT), or it follows a JSON `\n`, `\r` or `\t` escape. Fixed-length formats must also end
//! one: the byte after them is neither alphanumeric nor of their own class. Formats of a
//! minimum length need only that many characters of their class, so their check never reads
//! further than the minimum. Each check stops at the first byte that cannot belong to its
//! format, which is what keeps an adversarial body (prefix after prefix) linear with a small
//! constant.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regex::bytes::Regex;

use super::Detector;
use super::stream::Findings;

/// The most bytes a candidate's confirmation reads from its start.
pub(super) const WINDOW: usize = 2048;

/// Records every key-format finding starting in `buf[from..limit]` (`buf[0]` is at absolute
/// offset `base`) and returns where the prefix search resumes: `limit`, or past a prefix that
/// starts before it and ends after it. A candidate's check reads up to [`WINDOW`] bytes from its
/// start, and the two bytes before it.
///
/// Prefixes are found leftmost-first without overlaps, so the search must resume exactly where
/// a search over the whole body would; a prefix could only hide a candidate that starts inside
/// it, and no prefix ends in a byte that a token start may follow (PEM aside, which would have
/// to start inside `sk-`, `ghp_` and the like).
pub(super) fn scan(
    buf: &[u8],
    base: u64,
    from: usize,
    limit: usize,
    findings: &mut Findings,
) -> usize {
    let Some(rest) = buf.get(from..) else {
        return limit;
    };
    let keys = &*KEYS;
    let mut resume = limit;
    for found in keys.prefixes.find_iter(rest) {
        let start = from + found.start();
        if start >= limit {
            break;
        }
        resume = resume.max(from + found.end());
        let Some(&(_, format)) = PREFIXES.get(found.pattern().as_usize()) else {
            continue;
        };
        if !starts_token(buf, start, format) {
            continue;
        }
        let window = buf
            .get(start..buf.len().min(start + WINDOW))
            .unwrap_or_default();
        if let Some(detector) = confirm(keys, window, found.len(), format) {
            findings.key(base + start as u64, detector);
        }
    }
    resume
}

/// What a prefix announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Aws,
    Github,
    GithubPat,
    Slack,
    Stripe,
    /// `sk-`: OpenAI, or Anthropic when `ant-` follows.
    Sk,
    Google,
    Pem,
    Jwt,
}

struct Keys {
    prefixes: AhoCorasick,
    pem: Regex,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let patterns: Vec<&str> = PREFIXES.iter().map(|(p, _)| *p).collect();
    // A full DFA, no prefilter: JWT prefixes start with `e`, so a byte-frequency prefilter
    // would fire on most English text. The patterns are fixed, short and few: building
    // cannot fail.
    let prefixes = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .kind(Some(AhoCorasickKind::DFA))
        .prefilter(false)
        .build(&patterns)
        .expect("the fixed key prefixes always compile");
    // A fixed, valid pattern.
    let pem = Regex::new(r"\A-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----")
        .expect("the fixed PEM pattern compiles");
    Keys { prefixes, pem }
});

const PREFIXES: &[(&str, Format)] = &[
    ("AKIA", Format::Aws),
    ("ASIA", Format::Aws),
    ("ghp_", Format::Github),
    ("gho_", Format::Github),
    ("ghu_", Format::Github),
    ("ghs_", Format::Github),
    ("ghr_", Format::Github),
    ("github_pat_", Format::GithubPat),
    ("xoxa-", Format::Slack),
    ("xoxb-", Format::Slack),
    ("xoxp-", Format::Slack),
    ("xoxr-", Format::Slack),
    ("sk_live_", Format::Stripe),
    ("rk_live_", Format::Stripe),
    ("sk-", Format::Sk),
    ("AIza", Format::Google),
    ("-----BEGIN ", Format::Pem),
    // `{"`, `{ "` and `{\n` in base64url: a JSON object's first characters.
    ("eyJ", Format::Jwt),
    ("eyA", Format::Jwt),
    ("ewo", Format::Jwt),
];

/// Whether the candidate at `start` begins a token.
fn starts_token(buf: &[u8], start: usize, format: Format) -> bool {
    if format == Format::Pem {
        return true;
    }
    let Some(before) = start.checked_sub(1).and_then(|i| buf.get(i)) else {
        return true;
    };
    if !(is_token_byte(*before) || (format == Format::Jwt && *before == b'.')) {
        return true;
    }
    // A JSON string escape (`\n`, `\r`, `\t`) just before the candidate.
    matches!(before, b'n' | b'r' | b't')
        && start
            .checked_sub(2)
            .and_then(|i| buf.get(i))
            .is_some_and(|b| *b == b'\\')
}

fn confirm(keys: &Keys, window: &[u8], prefix: usize, format: Format) -> Option<Detector> {
    let body = window.get(prefix..).unwrap_or_default();
    match format {
        Format::Aws => exactly(body, 16, is_upper_alnum).then_some(Detector::AwsAccessKey),
        Format::Github => exactly(body, 36, is_alnum).then_some(Detector::GithubToken),
        Format::GithubPat => exactly(body, 82, is_word).then_some(Detector::GithubToken),
        Format::Slack => at_least(body, 10, is_slack).then_some(Detector::SlackToken),
        Format::Stripe => at_least(body, 24, is_alnum).then_some(Detector::StripeLiveKey),
        Format::Sk => match body.strip_prefix(b"ant-") {
            Some(rest) => at_least(rest, 32, is_base64url).then_some(Detector::AnthropicKey),
            None => at_least(body, 32, is_base64url).then_some(Detector::OpenaiKey),
        },
        Format::Google => exactly(body, 35, is_base64url).then_some(Detector::GoogleApiKey),
        Format::Pem => keys.pem.is_match(window).then_some(Detector::PrivateKeyPem),
        Format::Jwt => is_jwt(window).then_some(Detector::Jwt),
    }
}

/// `count` bytes of the class, then a byte that is neither of it nor alphanumeric (or the end).
fn exactly(body: &[u8], count: usize, class: fn(u8) -> bool) -> bool {
    let run = run_len(body, count + 1, class);
    run == count
        && body
            .get(count)
            .is_none_or(|b| !class(*b) && !b.is_ascii_alphanumeric())
}

/// At least `count` bytes of the class.
fn at_least(body: &[u8], count: usize, class: fn(u8) -> bool) -> bool {
    run_len(body, count, class) == count
}

/// How many of the first bytes (at most `max`) are of the class.
fn run_len(body: &[u8], max: usize, class: fn(u8) -> bool) -> usize {
    body.iter().take(max).take_while(|b| class(**b)).count()
}

/// Header `.` payload `.` signature (possibly empty) in base64url, the header a JSON object
/// with an `alg` member. A payload reaching the end of the window counts as complete: the
/// window is the same however the body is chunked, and nothing else looks like that.
fn is_jwt(window: &[u8]) -> bool {
    let header = run_len(window, window.len(), is_base64url);
    // `{"alg":"x"}` is 15 characters.
    if header < 15 || window.get(header) != Some(&b'.') {
        return false;
    }
    let after = window.get(header + 1..).unwrap_or_default();
    let payload = run_len(after, after.len(), is_base64url);
    let complete = payload == after.len() || after.get(payload) == Some(&b'.');
    if payload == 0 || !complete {
        return false;
    }
    let Ok(decoded) = URL_SAFE_NO_PAD.decode(window.get(..header).unwrap_or_default()) else {
        return false;
    };
    if !decoded.windows(5).any(|w| w == b"\"alg\"") {
        return false;
    }
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&decoded)
        .is_ok_and(|object| object.contains_key("alg"))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_slack(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
