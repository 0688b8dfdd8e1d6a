//! The dense candidate scan: for text where key prefixes come every few bytes.
//!
//! Each position is marked by two table loads, one for its byte and one for the byte before:
//! a token candidate is a prefix's first byte after a byte that may precede a token start
//! (anything but a token byte, or the `n`, `r`, `t` of a JSON escape), and a PEM candidate
//! (which needs no token boundary) is announced by the `-B` of `-----BEGIN `. Marks are gathered
//! 64 positions at a time into a bit mask without a branch per byte; only marked positions are
//! looked at, each with a few byte compares before its format's check. Cost per byte is the
//! same for clean and hostile text, and per candidate bounded by its check.

use super::{Format, PREFIXES, check};
use crate::inspect::stream::Findings;

/// Records every key-format finding starting in `buf[from..limit]`, like [`super::scan`].
pub(super) fn scan(buf: &[u8], base: u64, from: usize, limit: usize, findings: &mut Findings) {
    // A PEM candidate at `s` is marked at `s + PEM_MARK`; token candidates at their start.
    let end = limit.saturating_add(PEM_MARK).min(buf.len());
    let mut at = from;
    if at == 0 {
        // No byte before the body's first: it starts a token.
        at_token(buf, base, 0, limit, findings);
        at = 1;
    }
    // Each block's candidates are looked at once the next block's marks are known, so that a
    // token run crossing into it is measured whole.
    let mut pending: Option<(usize, Marks)> = None;
    while let Some(block) = at
        .checked_sub(1)
        .and_then(|before| buf.get(before..before + BLOCK + 1))
        .filter(|_| at + BLOCK <= end)
    {
        let marks = block.try_into().map_or(Marks::default(), block_marks);
        if let Some((start, previous)) = pending.take() {
            visit(
                buf,
                base,
                from,
                limit,
                start,
                &previous,
                marks.token_bytes,
                findings,
            );
        }
        pending = Some((at, marks));
        at += BLOCK;
    }
    if let Some((start, previous)) = pending {
        // What follows the last block is not measured: assume a long run.
        visit(buf, base, from, limit, start, &previous, u64::MAX, findings);
    }
    while at < end {
        let byte = buf.get(at).copied().unwrap_or(0);
        let before = buf.get(at - 1).copied().unwrap_or(0);
        if CURRENT[usize::from(byte)] & BEFORE[usize::from(before)] != 0 {
            at_mark(buf, base, from, limit, at, findings);
        }
        at += 1;
    }
}

/// Looks at the candidates of the block starting at `at`, given the token bytes of the 64
/// positions after it (all ones when unknown).
#[allow(clippy::too_many_arguments)]
fn visit(
    buf: &[u8],
    base: u64,
    from: usize,
    limit: usize,
    at: usize,
    marks: &Marks,
    next_token_bytes: u64,
    findings: &mut Findings,
) {
    let ahead = u128::from(marks.token_bytes) | u128::from(next_token_bytes) << BLOCK;
    let mut tokens = marks.tokens;
    while tokens != 0 {
        let i = tokens.trailing_zeros() as usize;
        tokens &= tokens - 1;
        // Every format spans at least MIN_TOKEN_RUN token bytes from its first: a shorter run
        // is no key. Runs reaching past the next block are at least 65 bytes long.
        let run = (!(ahead >> i)).trailing_zeros() as usize;
        if run >= MIN_TOKEN_RUN {
            at_mark(buf, base, from, limit, at + i, findings);
        }
    }
    let mut pems = marks.pems;
    while pems != 0 {
        let i = pems.trailing_zeros() as usize;
        pems &= pems - 1;
        at_mark(buf, base, from, limit, at + i, findings);
    }
}

/// Bit masks over the 64 positions of a block (bit `i` for position `i`).
#[derive(Default)]
struct Marks {
    /// Token candidates: a prefix's first byte after a byte a token may follow.
    tokens: u64,
    /// The `B` of a `-B`, which may end the start of a PEM prefix.
    pems: u64,
    /// Token bytes (`[A-Za-z0-9_-]`).
    token_bytes: u64,
}

/// The marks of positions `1..=64` of `block` (bit `i` for position `i + 1`), computed with
/// comparisons only, which the compiler turns into vector instructions, and gathered eight
/// at a time by multiplications.
fn block_marks(block: &[u8; BLOCK + 1]) -> Marks {
    let (befores, bytes) = (block.first_chunk::<BLOCK>(), block.last_chunk::<BLOCK>());
    let (Some(befores), Some(bytes)) = (befores, bytes) else {
        return Marks::default();
    };
    let mut flags = [0u8; BLOCK];
    for ((flag, &before), &byte) in flags.iter_mut().zip(befores).zip(bytes) {
        let token_before = is_token(before);
        let may_start = !token_before || before == b'n' || before == b'r' || before == b't';
        let first = byte == b'A'
            || byte == b'g'
            || byte == b'x'
            || byte == b's'
            || byte == b'r'
            || byte == b'e';
        let pem = byte == b'B' && before == b'-';
        *flag = u8::from(first && may_start) | u8::from(pem) << 1 | u8::from(token_before) << 2;
    }
    let mut marks = Marks::default();
    let mut token_befores = 0u64;
    for (i, eight) in flags.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(eight.try_into().unwrap_or_default());
        marks.tokens |= gather(word) << (8 * i);
        marks.pems |= gather(word >> 1) << (8 * i);
        token_befores |= gather(word >> 2) << (8 * i);
    }
    // Position i's byte is position i + 1's byte before: one classification serves both.
    let last = u64::from(bytes.last().is_some_and(|b| is_token(*b)));
    marks.token_bytes = token_befores >> 1 | last << 63;
    marks
}

/// Bit 0 of each of the eight bytes of `word`, as eight bits: the multiplication sums byte
/// `j`'s bit into bit `56 + j`.
fn gather(word: u64) -> u64 {
    ((word & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// `[A-Za-z0-9_-]`, in comparisons the compiler vectorises.
fn is_token(b: u8) -> bool {
    (b | 0x20).wrapping_sub(b'a') < 26 || b.wrapping_sub(b'0') < 10 || b == b'_' || b == b'-'
}

/// Looks at a marked position: the `B` of a PEM prefix, or a token candidate.
fn at_mark(buf: &[u8], base: u64, from: usize, limit: usize, at: usize, findings: &mut Findings) {
    if buf.get(at) == Some(&b'B') {
        let Some(start) = at
            .checked_sub(PEM_MARK)
            .filter(|s| (from..limit).contains(s))
        else {
            return;
        };
        if buf.get(start..).is_some_and(|rest| rest.starts_with(PEM)) {
            check(buf, base, start, PEM.len(), Format::Pem, findings);
        }
    } else if at < limit {
        at_token(buf, base, at, limit, findings);
    }
}

/// Checks the token prefix starting at `at`, if there is one (PEM is found by its mark).
fn at_token(buf: &[u8], base: u64, at: usize, limit: usize, findings: &mut Findings) {
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
    let candidates = ORDER
        .get(usize::from(first)..usize::from(end))
        .unwrap_or_default();
    for &id in candidates {
        let (Some(&(head, mask)), Some(&(prefix, format))) = (HEADS.get(id), PREFIXES.get(id))
        else {
            continue;
        };
        if word & mask == head && (prefix.len() <= 8 || rest.starts_with(prefix.as_bytes())) {
            check(buf, base, at, prefix.len(), format, findings);
            // No prefix is a prefix of another: at most one matches.
            return;
        }
    }
}

/// Positions gathered per bit mask.
const BLOCK: usize = 64;
/// The fewest token bytes any token format spans from its first byte: a Slack token (`xoxb-`
/// and 10) or a JWT header (15 base64url characters). Every format's class is made of token
/// bytes, so a candidate followed by fewer is no key.
pub(super) const MIN_TOKEN_RUN: usize = 15;
const PEM: &[u8] = b"-----BEGIN ";
/// Where in [`PEM`] its mark (`-B`, the only such pair in it) ends.
const PEM_MARK: usize = 5;

/// Each prefix's first (up to) 8 bytes, little-endian, and the mask keeping that many.
static HEADS: [(u64, u64); PREFIXES.len()] = heads();

/// The ids of the token prefixes (PEM left out), grouped by first byte...
static ORDER: [usize; PREFIXES.len()] = order().0;
/// ...and for each byte the range of `ORDER` whose prefixes start with it.
static BY_FIRST_BYTE: [(u8, u8); 256] = order().1;

/// Per byte: bit 0 if some token prefix starts with it, bit 1 if it is `B`.
static CURRENT: [u8; 256] = current_table();
/// Per byte: bit 0 if a token may start after it, bit 1 if it is `-`.
static BEFORE: [u8; 256] = before_table();

const fn heads() -> [(u64, u64); PREFIXES.len()] {
    let mut heads = [(0u64, 0u64); PREFIXES.len()];
    let mut i = 0;
    while i < PREFIXES.len() {
        let bytes = PREFIXES[i].0.as_bytes();
        let mut j = 0;
        while j < bytes.len() && j < 8 {
            heads[i].0 |= (bytes[j] as u64) << (8 * j);
            heads[i].1 |= 0xff << (8 * j);
            j += 1;
        }
        i += 1;
    }
    heads
}

const fn order() -> ([usize; PREFIXES.len()], [(u8, u8); 256]) {
    let mut order = [0usize; PREFIXES.len()];
    let mut ranges = [(0u8, 0u8); 256];
    let mut filled = 0;
    let mut byte = 0;
    while byte < 256 {
        let start = filled;
        let mut i = 0;
        while i < PREFIXES.len() {
            let (prefix, format) = PREFIXES[i];
            if !matches!(format, Format::Pem) && prefix.as_bytes()[0] as usize == byte {
                order[filled] = i;
                filled += 1;
            }
            i += 1;
        }
        // Fewer than 256 prefixes: the offsets fit in a byte.
        ranges[byte] = (start as u8, filled as u8);
        byte += 1;
    }
    (order, ranges)
}

const fn current_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < PREFIXES.len() {
        let (prefix, format) = PREFIXES[i];
        if !matches!(format, Format::Pem) {
            table[prefix.as_bytes()[0] as usize] |= 1;
        }
        i += 1;
    }
    table[b'B' as usize] |= 2;
    table
}

const fn before_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let token = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        // `n`, `r`, `t` may end a JSON escape: `check` looks at the byte before them.
        if !token || byte == b'n' || byte == b'r' || byte == b't' {
            table[b] |= 1;
        }
        b += 1;
    }
    table[b'-' as usize] |= 2;
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_prefix_starts_with_a_marked_byte_and_pem_has_one_mark() {
        for (prefix, format) in PREFIXES {
            if *format == Format::Pem {
                assert_eq!(*prefix, "-----BEGIN ");
                let marks = PEM
                    .windows(2)
                    .filter(|w| CURRENT[usize::from(w[1])] & BEFORE[usize::from(w[0])] & 2 != 0)
                    .count();
                assert_eq!(marks, 1);
                assert_eq!(&PEM[PEM_MARK - 1..=PEM_MARK], b"-B");
            } else {
                assert_eq!(
                    CURRENT[usize::from(prefix.as_bytes()[0])] & 1,
                    1,
                    "{prefix}"
                );
            }
        }
        for byte in [b' ', b'"', b'.', b'\n', b'n', b'r', b't', b'=', b':'] {
            assert_eq!(BEFORE[usize::from(byte)] & 1, 1);
        }
        for byte in [b'a', b'Z', b'0', b'_', b'-'] {
            assert_eq!(BEFORE[usize::from(byte)] & 1, 0);
        }
    }
}
