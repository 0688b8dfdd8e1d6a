//! Key-format detectors (SPEC §14.2): one Aho-Corasick DFA over the known prefixes, each
//! candidate confirmed by a linear check of at most [`WINDOW`] bytes from its start: each check
//! is the hand-written equivalent of an anchored regex such as `\AAKIA[A-Z0-9]{16}`, because a
//! regex call per candidate costs more than the search itself on a body full of near misses.
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
///
/// The search starts with the SIMD-prefiltered automaton, which skips clean text at many GB/s
/// but pays a restart per candidate; when candidates come denser than one per
/// [`DENSE_SPACING`] bytes it goes on with the plain DFA (one table step per byte whatever the
/// content). Both report the same leftmost-first matches, so the findings do not change.
pub(super) fn scan(
    buf: &[u8],
    base: u64,
    from: usize,
    limit: usize,
    findings: &mut Findings,
) -> usize {
    let keys = &*KEYS;
    let mut at = from;
    let mut resume = limit;
    let mut candidates = 0usize;
    let mut dense = false;
    'search: while let Some(rest) = buf.get(at..) {
        let searcher = if dense { &keys.dense } else { &keys.sparse };
        for found in searcher.find_iter(rest) {
            let start = at + found.start();
            if start >= limit {
                break 'search;
            }
            let end = at + found.end();
            resume = resume.max(end);
            if let Some(&(_, format)) = PREFIXES.get(found.pattern().as_usize())
                && starts_token(buf, start, format)
            {
                let window = buf
                    .get(start..buf.len().min(start + WINDOW))
                    .unwrap_or_default();
                if let Some(detector) = confirm(window, found.len(), format) {
                    findings.key(base + start as u64, detector);
                }
            }
            candidates += 1;
            if !dense && candidates > DENSE_AFTER && candidates * DENSE_SPACING > end - from {
                dense = true;
                at = end;
                continue 'search;
            }
        }
        break;
    }
    resume
}

/// Candidates seen before the search may switch to the plain DFA...
const DENSE_AFTER: usize = 32;
/// ...when they have come at least this often (one per this many bytes).
const DENSE_SPACING: usize = 64;

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
    /// Behind the packed (SIMD) prefilter: for text with few candidates.
    sparse: AhoCorasick,
    /// A DFA without prefilter: for text dense with candidates.
    dense: AhoCorasick,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let patterns: Vec<&str> = PREFIXES.iter().map(|(p, _)| *p).collect();
    // The packed (SIMD) prefilter suits these few short patterns: clean text is skipped at
    // many GB/s (benches/inspect.rs). Fixed patterns: building cannot fail.
    let build = |prefilter: bool| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(prefilter)
            .build(&patterns)
            .expect("the fixed key prefixes always compile")
    };
    Keys {
        sparse: build(true),
        dense: build(false),
    }
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

fn confirm(window: &[u8], prefix: usize, format: Format) -> Option<Detector> {
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
        Format::Pem => is_pem_line(body).then_some(Detector::PrivateKeyPem),
        Format::Jwt => is_jwt(window).then_some(Detector::Jwt),
    }
}

/// After `-----BEGIN `: up to 48 of `[A-Z0-9 ]` ending in `PRIVATE KEY`, then `-----` (what
/// `\A(?:[A-Z0-9]+ )*PRIVATE KEY-----` matches, without a regex call per candidate).
fn is_pem_line(body: &[u8]) -> bool {
    let run = run_len(body, 48, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    let label = body.get(..run).unwrap_or_default();
    label.ends_with(b"PRIVATE KEY")
        && body
            .get(run..)
            .is_some_and(|rest| rest.starts_with(b"-----"))
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
