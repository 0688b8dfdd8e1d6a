//! Key-format detectors (SPEC §14.2): every occurrence of a known prefix is a candidate, each
//! confirmed by a linear check of at most [`WINDOW`] bytes from its start: each check is the
//! hand-written equivalent of an anchored regex such as `\AAKIA[A-Z0-9]{16}`, because a regex
//! call per candidate costs more than the search itself on a body full of near misses.
//!
//! A candidate must start a token: the byte before it is not `[A-Za-z0-9_-]` (nor `.` for a
//! JWT), or it follows a JSON `\n`, `\r` or `\t` escape. Fixed-length formats must also end
//! one: the byte after them is neither alphanumeric nor of their own class. Formats of a
//! minimum length need only that many characters of their class, so their check never reads
//! further than the minimum. Each check stops at the first byte that cannot belong to its
//! format, and every class is made of token bytes, so two candidates' checks read the same
//! bytes only when one follows a JSON escape or a JWT's `.`: total work is linear in the body.
//!
//! Candidates are found by the [`runs`] scan: the starts of runs of token bytes long enough to
//! hold a key of the format their prefix announces ([`Format::min_span`]), and the `-----B` of
//! PEM lines, marked 64 bytes at a time at a cost per byte that does not depend on the text.
//! What does depend on it is the checks: text made of runs just long enough for their prefix
//! (`AKIA` and 16 token bytes, failing at the last) makes every run one check, at most one per
//! `min_span + 1` bytes; a JWT shape costs a little more, as its header is searched for an
//! encoded `"alg"` (and decoded only when it holds one). benches/inspect.rs measures those
//! cases beside clean text.

mod runs;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Detector;
use super::stream::Findings;

/// The most bytes a candidate's confirmation reads from its start.
pub(super) const WINDOW: usize = 2048;

/// Records every key-format finding starting in `buf[from..limit]` (`buf[0]` is at absolute
/// offset `base`). A candidate's check reads up to [`WINDOW`] bytes from its start, and the two
/// bytes before it; everything starting before `limit` is decided, so the next call may start
/// at `limit`.
pub(super) fn scan(buf: &[u8], base: u64, from: usize, limit: usize, findings: &mut Findings) {
    runs::scan(buf, base, from, limit, findings);
}

/// Confirms the candidate `format` whose `prefix`-byte prefix starts at `buf[start]`, and
/// records it if it is one. `run` is the length of the token run from `start` when the caller
/// has it from its masks, [`UNKNOWN_RUN`] when not.
fn check(
    buf: &[u8],
    base: u64,
    start: usize,
    prefix: usize,
    format: Format,
    run: usize,
    findings: &mut Findings,
) {
    if !starts_token(buf, start, format) {
        return;
    }
    let window = buf
        .get(start..buf.len().min(start + WINDOW))
        .unwrap_or_default();
    if let Some(detector) = confirm(window, prefix, format, run) {
        findings.key(base + start as u64, detector);
    }
}

/// A token run whose length the caller does not know: [`check`] measures it when it needs it.
pub(super) const UNKNOWN_RUN: usize = usize::MAX;

/// What a prefix announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The known prefixes and what each announces; no prefix is a prefix of another.
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

impl Format {
    /// The fewest token bytes (`[A-Za-z0-9_-]`) a key of this format spans from its first
    /// byte: its prefix and the shortest body its check accepts (PEM lines hold spaces).
    const fn min_span(self) -> usize {
        match self {
            Self::Aws => 4 + 16,
            Self::Github => 4 + 36,
            Self::GithubPat => 11 + 82,
            Self::Slack => 5 + 10,
            Self::Stripe => 8 + 24,
            Self::Sk => 3 + 32,
            Self::Google => 4 + 35,
            Self::Jwt => 15,
            Self::Pem => 0,
        }
    }
}

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
    is_escape_letter(*before)
        && start
            .checked_sub(2)
            .and_then(|i| buf.get(i))
            .is_some_and(|b| *b == b'\\')
}

/// The check of [`check`], on the window from the candidate's start. The formats whose class
/// is the token class (`sk-`, `AIza`, a JWT header) are decided by the token run's length.
fn confirm(window: &[u8], prefix: usize, format: Format, run: usize) -> Option<Detector> {
    let body = window.get(prefix..).unwrap_or_default();
    let token_run = || match run {
        UNKNOWN_RUN => run_len(window, window.len(), BASE64URL),
        known => known.min(window.len()),
    };
    match format {
        Format::Aws => exactly(body, 16, UPPER_ALNUM).then_some(Detector::AwsAccessKey),
        Format::Github => exactly(body, 36, ALNUM).then_some(Detector::GithubToken),
        Format::GithubPat => exactly(body, 82, WORD).then_some(Detector::GithubToken),
        Format::Slack => at_least(body, 10, SLACK).then_some(Detector::SlackToken),
        Format::Stripe => at_least(body, 24, ALNUM).then_some(Detector::StripeLiveKey),
        // `sk-ant-` and 32, or `sk-` and 32, of the token class: a run of 39 or 35.
        Format::Sk => match body.starts_with(b"ant-") {
            true => (token_run() >= 7 + 32).then_some(Detector::AnthropicKey),
            false => (token_run() >= 3 + 32).then_some(Detector::OpenaiKey),
        },
        // `AIza` and exactly 35, the byte after them not of the token class.
        Format::Google => (token_run() == 4 + 35).then_some(Detector::GoogleApiKey),
        Format::Pem => is_pem_line(body).then_some(Detector::PrivateKeyPem),
        Format::Jwt => is_jwt(window, token_run()).then_some(Detector::Jwt),
    }
}

/// After `-----BEGIN `: up to 48 of `[A-Z0-9 ]` ending in `PRIVATE KEY`, then `-----` (what
/// `\A(?:[A-Z0-9]+ )*PRIVATE KEY-----` matches, without a regex call per candidate).
fn is_pem_line(body: &[u8]) -> bool {
    let run = run_len(body, 48, PEM_LABEL);
    let label = body.get(..run).unwrap_or_default();
    label.ends_with(b"PRIVATE KEY")
        && body
            .get(run..)
            .is_some_and(|rest| rest.starts_with(b"-----"))
}

/// `count` bytes of the class, then a byte that is neither of it nor alphanumeric (or the end).
fn exactly(body: &[u8], count: usize, class: u8) -> bool {
    let run = run_len(body, count + 1, class);
    run == count && body.get(count).is_none_or(|b| !is(*b, class | ALNUM))
}

/// At least `count` bytes of the class.
fn at_least(body: &[u8], count: usize, class: u8) -> bool {
    run_len(body, count, class) == count
}

/// How many of the first bytes (at most `max`) are of the class.
fn run_len(body: &[u8], max: usize, class: u8) -> usize {
    let limit = max.min(body.len());
    let mut run = 0;
    // Sixteen bytes per step, read past `max` when the body goes on (the count is capped).
    while run < limit {
        let rest = body.get(run..).unwrap_or_default();
        let ones = (!class_bits(rest, class)).trailing_zeros() as usize;
        run += ones;
        if ones < 16 {
            break;
        }
    }
    run.min(limit)
}

/// Bit `i` set when `chunk[i]` (of its first 16 bytes) is of the class: sixteen bytes per
/// step with SSE2, so that a check costs the same few instructions whether its run is 2 or 16
/// bytes long.
#[cfg(target_arch = "x86_64")]
fn class_bits(chunk: &[u8], class: u8) -> u32 {
    use safe_arch::{bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, zeroed_m128i};
    let x = match chunk.first_chunk::<16>() {
        Some(sixteen) => load_unaligned_m128i(sixteen),
        None => {
            let mut bytes = [0u8; 16];
            bytes[..chunk.len()].copy_from_slice(chunk);
            load_unaligned_m128i(&bytes)
        }
    };
    let mut mask = zeroed_m128i();
    if class & UPPER != 0 {
        mask = bitor_m128i(mask, sse::in_range(x, b'A', 25));
    }
    if class & LOWER != 0 {
        mask = bitor_m128i(mask, sse::in_range(x, b'a', 25));
    }
    if class & DIGIT != 0 {
        mask = bitor_m128i(mask, sse::in_range(x, b'0', 9));
    }
    for (bit, byte) in [(UNDERSCORE, b'_'), (DASH, b'-'), (SPACE, b' ')] {
        if class & bit != 0 {
            mask = bitor_m128i(mask, cmp_eq_mask_i8_m128i(x, sse::splat(byte)));
        }
    }
    sse::byte_bits(mask)
}

/// The SSE2 pieces the class checks here and the block scan in [`runs`] share.
#[cfg(target_arch = "x86_64")]
mod sse {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, m128i, min_u8_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        sub_i8_m128i,
    };

    /// `b` in all sixteen lanes (the intrinsics take `i8`, bit for bit).
    pub(super) fn splat(b: u8) -> m128i {
        set_splat_i8_m128i(i8::from_ne_bytes([b]))
    }

    /// All ones in the lanes where `low <= byte <= low + span` (unsigned), as
    /// `min(byte - low, span) == byte - low`.
    pub(super) fn in_range(x: m128i, low: u8, span: u8) -> m128i {
        let off = sub_i8_m128i(x, splat(low));
        cmp_eq_mask_i8_m128i(min_u8_m128i(off, splat(span)), off)
    }

    /// The sixteen lanes of a compare result as bits (a movemask sets no other).
    pub(super) fn byte_bits(mask: m128i) -> u32 {
        u32::from_ne_bytes(move_mask_i8_m128i(mask).to_ne_bytes()) & 0xffff
    }
}

/// Bit `i` set when `chunk[i]` (of its first 16 bytes) is of the class.
#[cfg(not(target_arch = "x86_64"))]
fn class_bits(chunk: &[u8], class: u8) -> u32 {
    chunk
        .iter()
        .take(16)
        .enumerate()
        .fold(0, |bits, (i, b)| bits | u32::from(is(*b, class)) << i)
}

/// Header `.` payload `.` signature (possibly empty) in base64url, the header (the first
/// `header` bytes of the window, a token run) a JSON object with an `alg` member. A payload
/// reaching the end of the window counts as complete: the window is the same however the body
/// is chunked, and nothing else looks like that.
fn is_jwt(window: &[u8], header: usize) -> bool {
    // `{"alg":"x"}` is 15 characters.
    if header < 15 || window.get(header) != Some(&b'.') {
        return false;
    }
    let after = window.get(header + 1..).unwrap_or_default();
    let payload = run_len(after, after.len(), BASE64URL);
    let complete = payload == after.len() || after.get(payload) == Some(&b'.');
    if payload == 0 || !complete {
        return false;
    }
    let header = window.get(..header).unwrap_or_default();
    mentions_alg(header) && has_alg_header(header)
}

/// Whether base64url text can decode to bytes holding `"alg"`, read off the text itself: at a
/// decoded offset `3k`, `3k + 1` or `3k + 2`, those five bytes are encoded by six characters
/// that no other byte touches, from character `4k`, `4k + 2` or `4k + 3`. A header without one
/// of them is let go without being decoded, however hostile text lines such headers up.
fn mentions_alg(header: &[u8]) -> bool {
    const AT: [(usize, &[u8; 6]); 3] = [(0, b"ImFsZy"), (2, b"JhbGci"), (3, b"iYWxnI")];
    (0..header.len()).step_by(4).any(|group| {
        AT.iter().any(|&(offset, encoded)| {
            header
                .get(group + offset..group + offset + 6)
                .is_some_and(|chars| chars == encoded)
        })
    })
}

/// Whether a JWT header decodes to a JSON object with an `alg` member. Decoded on the stack
/// (a header is at most a window long) and parsed without building the object: no allocation
/// unless a key holds an escape. Out of line: rarely reached.
#[inline(never)]
fn has_alg_header(header: &[u8]) -> bool {
    let mut decoded = [0u8; WINDOW / 4 * 3];
    let Ok(len) = URL_SAFE_NO_PAD.decode_slice(header, &mut decoded) else {
        return false;
    };
    let decoded = decoded.get(..len).unwrap_or_default();
    if !decoded.windows(5).any(|w| w == b"\"alg\"") {
        return false;
    }
    let mut parser = serde_json::Deserializer::from_slice(decoded);
    let has_alg = serde::Deserializer::deserialize_map(&mut parser, jwt_header::HasAlg);
    has_alg.is_ok_and(|found| found) && parser.end().is_ok()
}

/// Reading a JWT header's members without keeping them.
mod jwt_header {
    use std::fmt;

    use serde::de::{self, IgnoredAny, MapAccess, Visitor};

    /// Visits a JSON object: whether one of its keys is `alg` (every value is read and dropped,
    /// so invalid JSON anywhere fails the visit).
    pub(super) struct HasAlg;

    impl<'de> Visitor<'de> for HasAlg {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(IsAlg(alg)) = map.next_key()? {
                map.next_value::<IgnoredAny>()?;
                found |= alg;
            }
            Ok(found)
        }
    }

    /// A key, as whether it is `alg` (borrowed from the input when it holds no escape).
    struct IsAlg(bool);

    impl<'de> de::Deserialize<'de> for IsAlg {
        fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_str(KeyVisitor).map(IsAlg)
        }
    }

    struct KeyVisitor;

    impl Visitor<'_> for KeyVisitor {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }

        fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
            Ok(key == "alg")
        }
    }
}

/// The letter of a JSON string escape (`\n`, `\r`, `\t`) after which a key may start.
fn is_escape_letter(b: u8) -> bool {
    matches!(b, b'n' | b'r' | b't')
}

fn is_token_byte(b: u8) -> bool {
    is(b, BASE64URL)
}

/// Whether `b` is of the class (a union of the bits of [`CLASSES`]).
fn is(b: u8, class: u8) -> bool {
    CLASSES[usize::from(b)] & class != 0
}

// Byte classes, one bit each, and the unions the formats are made of.
const UPPER: u8 = 1;
const LOWER: u8 = 2;
const DIGIT: u8 = 4;
const UNDERSCORE: u8 = 8;
const DASH: u8 = 16;
const SPACE: u8 = 32;
const ALNUM: u8 = UPPER | LOWER | DIGIT;
const UPPER_ALNUM: u8 = UPPER | DIGIT;
const WORD: u8 = ALNUM | UNDERSCORE;
const SLACK: u8 = ALNUM | DASH;
const BASE64URL: u8 = ALNUM | UNDERSCORE | DASH;
/// `[A-Z0-9 ]`: the words of a PEM label.
const PEM_LABEL: u8 = UPPER | DIGIT | SPACE;

/// The class bits of every byte.
static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = if byte.is_ascii_uppercase() {
            UPPER
        } else if byte.is_ascii_lowercase() {
            LOWER
        } else if byte.is_ascii_digit() {
            DIGIT
        } else if byte == b'_' {
            UNDERSCORE
        } else if byte == b'-' {
            DASH
        } else if byte == b' ' {
            SPACE
        } else {
            0
        };
        b += 1;
    }
    table
}

#[cfg(test)]
mod tests;
