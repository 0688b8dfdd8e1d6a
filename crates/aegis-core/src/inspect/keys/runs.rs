//! The key-format candidate scan: token runs, 64 bytes at a time.
//!
//! Every token format spans at least [`MIN_TOKEN_RUN`] token bytes (`[A-Za-z0-9_-]`) from its
//! first, and a candidate must start a token (or follow a JSON `\n`, `\r`, `\t` escape, whose
//! letter itself starts a run). So the only positions worth a look are the starts of runs of at
//! least that many token bytes, and the `-----B` of a PEM line, which needs no boundary. Both
//! are found with bit masks: each block's bytes are classified into three masks (token byte,
//! `-`, `B`) with vector compares (SSE2 on x86_64; byte by byte elsewhere),
//! the run lengths come from four shift-and steps over the block and the next, and only the
//! marked positions are looked at, each with one table load and a few compares before its
//! format's check. The masks cost the same per byte whatever the text holds: short tokens never
//! reach a check, and a long run is looked at once, at its start. Only the checks depend on the
//! text, at most one per run start or PEM prefix.

#[cfg(target_arch = "x86_64")]
use super::sse;
use super::{Format, PREFIXES, UNKNOWN_RUN, check, is_escape_letter, is_pem_line, is_token_byte};
use crate::inspect::Detector;
use crate::inspect::stream::Findings;

/// Records every key-format finding starting in `buf[from..limit]` (`buf[0]` is at absolute
/// offset `base`), like checking every prefix occurrence there.
pub(super) fn scan(buf: &[u8], base: u64, from: usize, limit: usize, findings: &mut Findings) {
    if from >= limit {
        return;
    }
    // A candidate at `from` right after a JSON escape: its run starts before the range.
    if from >= 2
        && buf.get(from - 2) == Some(&b'\\')
        && buf.get(from - 1).is_some_and(|b| is_escape_letter(*b))
    {
        // Its run is not measured here: assume it long enough.
        at_token(buf, base, from, UNKNOWN_RUN, limit, findings);
    }
    let mut token_before = from
        .checked_sub(1)
        .and_then(|i| buf.get(i))
        .is_some_and(|b| is_token_byte(*b));
    let mut at = from;
    let mut current = masks_at(buf, at);
    while at < limit {
        let next = masks_at(buf, at + BLOCK);
        let in_range = match limit - at {
            BLOCK.. => u64::MAX,
            n => (1u64 << n) - 1,
        };
        let tokens = wide(current.tokens, next.tokens);
        // Bit i: positions i..i + MIN_TOKEN_RUN are all token bytes (runs of 2, 4, 8, 15).
        let mut long = tokens & tokens >> 1;
        long &= long >> 2;
        long &= long >> 4;
        long &= long >> (MIN_TOKEN_RUN - 8);
        let starts = current.tokens & !(current.tokens << 1 | u64::from(token_before));
        let mut runs = starts & low(long) & in_range;
        while runs != 0 {
            let i = runs.trailing_zeros() as usize;
            runs &= runs - 1;
            // Most runs (words, ids, base64) start with a byte no prefix starts with.
            if !buf.get(at + i).is_some_and(|b| worth_a_look(*b)) {
                continue;
            }
            // The run's length, as far as the two blocks tell; one reaching their end may go on.
            let run = match (!(tokens >> i)).trailing_zeros() as usize {
                seen if seen < 2 * BLOCK - i => seen,
                _ => UNKNOWN_RUN,
            };
            at_run(buf, base, at + i, run, limit, findings);
        }
        // A PEM prefix is marked by its `-B`: bit i when position i + 5 is a `B` after a `-`.
        let pem = (wide(current.bees, next.bees) & wide(current.dashes, next.dashes) << 1) >> 5;
        let mut pems = low(pem) & in_range;
        while pems != 0 {
            let i = pems.trailing_zeros() as usize;
            pems &= pems - 1;
            at_pem(buf, base, at + i, findings);
        }
        token_before = current.tokens >> 63 != 0;
        current = next;
        at += BLOCK;
    }
}

/// Looks at the start of a token run of `run` bytes ([`UNKNOWN_RUN`] when it goes on past the
/// two blocks): a token prefix there, or, when the run begins with the letter of a JSON
/// escape, one just after it.
fn at_run(buf: &[u8], base: u64, at: usize, run: usize, limit: usize, findings: &mut Findings) {
    at_token(buf, base, at, run, limit, findings);
    if at > 0
        && buf.get(at - 1) == Some(&b'\\')
        && buf.get(at).is_some_and(|b| is_escape_letter(*b))
    {
        let rest = match run {
            UNKNOWN_RUN => UNKNOWN_RUN,
            known => known - 1,
        };
        at_token(buf, base, at + 1, rest, limit, findings);
    }
}

/// Checks for a PEM prefix at `at` (its `-B` is marked): two 8-byte compares, then its check.
fn at_pem(buf: &[u8], base: u64, at: usize, findings: &mut Findings) {
    let word = |offset: usize| {
        buf.get(at + offset..)
            .and_then(|rest| rest.first_chunk::<8>())
            .map(|w| u64::from_le_bytes(*w))
    };
    // What `check` would do for a PEM candidate (no token boundary to look at), without its
    // dispatch: hostile text may hold one such prefix every few dozen bytes.
    if word(0) == Some(PEM_HEAD)
        && word(PEM.len() - 8) == Some(PEM_TAIL)
        && is_pem_line(buf.get(at + PEM.len()..).unwrap_or_default())
    {
        findings.key(base + at as u64, Detector::PrivateKeyPem);
    }
}

/// The 128 positions of a block and the next, as one mask.
fn wide(block: u64, next: u64) -> u128 {
    u128::from(block) | u128::from(next) << BLOCK
}

/// The first block's half of a [`wide`] mask.
fn low(mask: u128) -> u64 {
    // Truncation intended: the low 64 bits.
    mask as u64
}

/// Bit masks over the 64 positions of a block (bit `i` for position `i`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Masks {
    /// Token bytes (`[A-Za-z0-9_-]`).
    tokens: u64,
    /// `-`.
    dashes: u64,
    /// `B`.
    bees: u64,
}

/// The masks of `buf[at..at + BLOCK]`, positions past the end counting as none of the three.
fn masks_at(buf: &[u8], at: usize) -> Masks {
    if let Some(block) = buf.get(at..).and_then(|rest| rest.first_chunk::<BLOCK>()) {
        return classify(block);
    }
    let rest = buf.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Masks::default();
    }
    let mut block = [0u8; BLOCK];
    block[..rest.len()].copy_from_slice(rest);
    classify(&block)
}

/// Classifies a block with SSE2 (part of every x86_64 CPU): per 16 bytes, one load, seven
/// compares and three byte masks.
#[cfg(target_arch = "x86_64")]
fn classify(block: &[u8; BLOCK]) -> Masks {
    use safe_arch::{bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i};
    let mut masks = Masks::default();
    for (k, sixteen) in block.chunks_exact(16).enumerate() {
        let Some(sixteen) = sixteen.first_chunk::<16>() else {
            continue;
        };
        let x = load_unaligned_m128i(sixteen);
        // Letters of either case in one range: `b | 0x20` folds `A-Z` onto `a-z`.
        let letter = sse::in_range(bitor_m128i(x, sse::splat(0x20)), b'a', 25);
        let digit = sse::in_range(x, b'0', 9);
        let dashes = cmp_eq_mask_i8_m128i(x, sse::splat(b'-'));
        let tokens = bitor_m128i(
            bitor_m128i(letter, digit),
            bitor_m128i(dashes, cmp_eq_mask_i8_m128i(x, sse::splat(b'_'))),
        );
        let bees = cmp_eq_mask_i8_m128i(x, sse::splat(b'B'));
        let shift = 16 * k;
        masks.tokens |= u64::from(sse::byte_bits(tokens)) << shift;
        masks.dashes |= u64::from(sse::byte_bits(dashes)) << shift;
        masks.bees |= u64::from(sse::byte_bits(bees)) << shift;
    }
    masks
}

/// Classifies a block byte by byte (targets without SSE2, and the tests' reference), gathered
/// eight positions at a time by multiplication.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_portable(block: &[u8; BLOCK]) -> Masks {
    let mut flags = [0u8; BLOCK];
    for (flag, &byte) in flags.iter_mut().zip(block) {
        *flag = u8::from(is_token_byte(byte))
            | u8::from(byte == b'-') << 1
            | u8::from(byte == b'B') << 2;
    }
    let mut masks = Masks::default();
    for (i, eight) in flags.chunks_exact(8).enumerate() {
        let word = eight
            .first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w));
        masks.tokens |= gather(word) << (8 * i);
        masks.dashes |= gather(word >> 1) << (8 * i);
        masks.bees |= gather(word >> 2) << (8 * i);
    }
    masks
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(block: &[u8; BLOCK]) -> Masks {
    classify_portable(block)
}

/// Bit 0 of each of the eight bytes of `word`, as eight bits: the multiplication sums byte
/// `j`'s bit into bit `56 + j`.
fn gather(word: u64) -> u64 {
    ((word & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Checks the token prefix starting at `at`, if there is one (PEM is found by its mark) and
/// the token run from `at` (`run` bytes, or [`UNKNOWN_RUN`]) is long enough for its format.
fn at_token(buf: &[u8], base: u64, at: usize, run: usize, limit: usize, findings: &mut Findings) {
    let Some(rest) = buf.get(at..).filter(|_| at < limit) else {
        return;
    };
    // The first 8 bytes in one load, compared with the masked heads of the prefixes that
    // start with the same byte.
    let word = match rest.get(..8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().unwrap_or_default()),
        None => {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(word)
        }
    };
    let &(first, end) = BY_FIRST_BYTE
        .get(usize::from(word as u8))
        .unwrap_or(&(0, 0));
    let entries = ENTRIES
        .get(usize::from(first)..usize::from(end))
        .unwrap_or_default();
    for entry in entries {
        if word & entry.mask == entry.head
            && (entry.prefix.len() <= 8 || rest.starts_with(entry.prefix))
        {
            if run >= usize::from(entry.min_span) {
                check(
                    buf,
                    base,
                    at,
                    entry.prefix.len(),
                    entry.format,
                    run,
                    findings,
                );
            }
            // No prefix is a prefix of another: at most one matches.
            return;
        }
    }
}

/// Whether a run starting with `b` is worth a look: a token prefix starts with it, or it is
/// the letter of a JSON escape that a prefix may follow.
fn worth_a_look(b: u8) -> bool {
    BY_FIRST_BYTE
        .get(usize::from(b))
        .is_some_and(|&(first, end)| first < end)
        || is_escape_letter(b)
}

/// A token prefix as [`at_token`] compares it: its first (up to) 8 bytes little-endian and the
/// mask keeping that many, the whole prefix, and what it announces.
#[derive(Clone, Copy)]
struct Entry {
    head: u64,
    mask: u64,
    prefix: &'static [u8],
    /// [`Format::min_span`] (at most 93).
    min_span: u8,
    format: Format,
}

/// The token prefixes (PEM left out), grouped by first byte...
static ENTRIES: [Entry; PREFIXES.len()] = entries().0;
/// ...and for each byte the range of `ENTRIES` whose prefixes start with it.
static BY_FIRST_BYTE: [(u8, u8); 256] = entries().1;

const fn entries() -> ([Entry; PREFIXES.len()], [(u8, u8); 256]) {
    let unused = Entry {
        head: 0,
        mask: u64::MAX,
        prefix: b"",
        min_span: 0,
        format: Format::Pem,
    };
    let mut entries = [unused; PREFIXES.len()];
    let mut ranges = [(0u8, 0u8); 256];
    let mut filled = 0;
    let mut byte = 0;
    while byte < 256 {
        let start = filled;
        let mut i = 0;
        while i < PREFIXES.len() {
            let (prefix, format) = PREFIXES[i];
            let bytes = prefix.as_bytes();
            if !matches!(format, Format::Pem) && bytes[0] as usize == byte {
                let (mut head, mut mask, mut j) = (0u64, 0u64, 0);
                while j < bytes.len() && j < 8 {
                    head |= (bytes[j] as u64) << (8 * j);
                    mask |= 0xff << (8 * j);
                    j += 1;
                }
                entries[filled] = Entry {
                    head,
                    mask,
                    prefix: bytes,
                    min_span: format.min_span() as u8,
                    format,
                };
                filled += 1;
            }
            i += 1;
        }
        // Fewer than 256 prefixes: the offsets fit in a byte.
        ranges[byte] = (start as u8, filled as u8);
        byte += 1;
    }
    (entries, ranges)
}

/// Positions per block.
const BLOCK: usize = 64;
/// The fewest token bytes any token format spans from its first byte: a Slack token (`xoxb-`
/// and 10) or a JWT header (15 base64url characters). Every format's class is made of token
/// bytes, so a candidate followed by fewer is no key.
pub(super) const MIN_TOKEN_RUN: usize = 15;
const PEM: &[u8] = b"-----BEGIN ";
/// [`PEM`]'s first and last 8 bytes, loaded little-endian.
const PEM_HEAD: u64 = u64::from_le_bytes(*b"-----BEG");
const PEM_TAIL: u64 = u64::from_le_bytes(*b"--BEGIN ");

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The vector classification equals the portable one on any block, so every target
        /// finds the same candidates.
        #[test]
        fn both_classifications_agree(bytes in prop::collection::vec(any::<u8>(), BLOCK)) {
            let block: [u8; BLOCK] = bytes.try_into().unwrap_or([0; BLOCK]);
            prop_assert_eq!(classify(&block), classify_portable(&block));
        }
    }

    #[test]
    fn the_masks_mark_token_bytes_dashes_and_bees() {
        let mut block = [b' '; BLOCK];
        block[..12].copy_from_slice(b"aZ09_-B.@[`{");
        block[63] = b'-';
        let masks = classify(&block);
        assert_eq!(masks.tokens, 0b111_1111 | 1 << 63);
        assert_eq!(masks.dashes, 1 << 5 | 1 << 63);
        assert_eq!(masks.bees, 1 << 6);
        assert_eq!(masks, classify_portable(&block));
    }
}
