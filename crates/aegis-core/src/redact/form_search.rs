//! [`FormSearcher`]: leftmost-longest search for many secret forms at once, by hashed anchors.
//!
//! Every form is at least `min_len` bytes long, so with a gram width `W` and a stride `S` such
//! that `W + S - 1 <= min_len`, every occurrence of a form contains a `W`-byte window that
//! starts at a multiple of `S` (`W = S = 8` when every form has 15 bytes or more; narrower
//! grams or `S = 4` for shorter ones). The searcher registers, for each form, the `S`
//! consecutive windows starting at its *anchor* offset (chosen where the form's grams are rarest
//! among all forms, so forms sharing a prefix such as `sk-proj-` do not pile up on one gram),
//! and probes the text only at every `S`-th position, four probes per branch: one unaligned
//! 8-byte load, a multiply, a shift and one bit of a fixed 512 KiB bitmap. A set bit sends the
//! probe to a bucket of `(gram, group, offset)` entries; a matching gram names a candidate
//! start, verified by an exact compare. Forms sharing a gram at the same offset (secrets alike
//! but for a few bytes) are one group, whose members are keyed by a hash of their first bytes,
//! so a hit costs one hash and a binary search however many forms share the gram. Clean text
//! costs about three instructions per byte whatever its content (benches/scan_instructions.rs).
//!
//! Not bounded as tightly: a form that repeats itself (`abab…ab` + one other byte) has several
//! entries that all hit in text made of its period, each verified up to the form's length.
//! Real secrets are not periodic; the cost stays linear in the text times the form's length.
//!
//! Candidates are found out of start order (a form anchored at offset `k` is seen `k` bytes
//! after its start), so verified matches wait in a small pending list until the probes have
//! passed `start + delay` (the largest anchor offset): then nothing starting at or before them
//! remains to be found, and the leftmost, longest one is final. The matches are exactly those of
//! a leftmost-longest Aho-Corasick search over the forms (the tests check it against one and
//! against a naive search).
//!
//! The forms, the grams and the group keys are kept in zeroized memory. The bitmap and the
//! bucket index hold a few bits of hash per gram, from which no form can be rebuilt.

use std::fmt;

use zeroize::Zeroizing;

/// A set of byte patterns (the forms), searched for leftmost-longest without overlaps.
pub(super) struct FormSearcher {
    /// Every pattern's bytes, one after another.
    bytes: Zeroizing<Vec<u8>>,
    /// `(start in bytes, length)` of each pattern, by pattern id.
    spans: Vec<(usize, usize)>,
    /// Gram width `W` (1 to 8 bytes) and the mask keeping a load's first `W` bytes.
    width: usize,
    mask: u64,
    /// Probe every `stride`-th position.
    stride: usize,
    /// One bit per hash value (the top [`BITMAP_BITS_LOG2`] bits of the gram's hash). Its
    /// size is fixed so that probing needs no bounds check and no variable shift.
    bitmap: Box<[u64; BITMAP_WORDS]>,
    /// Entries of bucket `b` are `buckets[b]..buckets[b + 1]` of `grams` and `targets`.
    buckets: Vec<u32>,
    bucket_shift: u32,
    /// The registered grams (loaded little-endian, masked), bucket by bucket.
    grams: Zeroizing<Vec<u64>>,
    /// `(group id, offset of the gram in the group's patterns)` beside each gram.
    targets: Vec<(u32, u32)>,
    /// The patterns having one gram at one offset, by group id.
    groups: Vec<Group>,
    /// Each group's pattern ids, sorted by the key hash beside them in `member_keys`: the
    /// hash of the pattern's first `key_len` bytes.
    members: Vec<u32>,
    member_keys: Zeroizing<Vec<u64>>,
    /// The largest offset of a registered gram: a match starting at `s` is found by the time
    /// the probes reach `s + delay`.
    delay: usize,
}

/// The patterns sharing one registered gram at one offset.
struct Group {
    /// Their range in `members` and `member_keys`.
    members: std::ops::Range<u32>,
    /// The shortest one's length: each is keyed by the hash of that many of its first bytes.
    key_len: u32,
}

/// One match: `bytes[start..end]` is pattern `pattern`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct FormMatch {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) pattern: usize,
}

/// Why a [`FormSearcher`] could not be built: its tables would exceed 32-bit indices.
#[derive(Debug)]
pub(super) struct TooLarge;

impl FormSearcher {
    /// Compiles `patterns` (each at least one byte long; ids are their positions).
    pub(super) fn new(patterns: &[&[u8]]) -> Result<Self, TooLarge> {
        let min_len = patterns.iter().map(|p| p.len()).min().unwrap_or(0);
        if min_len == 0 {
            return Err(TooLarge);
        }
        // The widest gram (up to 8 bytes) and then the longest stride (up to 8) that every
        // pattern holds `stride` grams of; short forms (8 to 10 bytes) get a narrower gram
        // rather than a stride that would slow every search.
        let (width, stride) = match min_len {
            15.. => (8, 8),
            11..=14 => (8, 4),
            8..=10 => (min_len - 3, 4),
            _ => (1, min_len),
        };
        let mask = u64::MAX >> (8 * (8 - width));
        let total: usize = patterns.iter().map(|p| p.len()).sum();
        let mut bytes = Zeroizing::new(Vec::with_capacity(total));
        let mut spans = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            spans.push((bytes.len(), pattern.len()));
            bytes.extend_from_slice(pattern);
        }
        let entries = patterns.len().checked_mul(stride).ok_or(TooLarge)?;
        if u32::try_from(entries).is_err() || u32::try_from(total).is_err() {
            return Err(TooLarge);
        }
        let anchors = choose_anchors(patterns, width, mask, stride);
        // Built on the heap (a 512 KiB array would pass through the stack).
        let mut bitmap: Box<[u64; BITMAP_WORDS]> = vec![0u64; BITMAP_WORDS]
            .into_boxed_slice()
            .try_into()
            .expect("the vector has BITMAP_WORDS words");
        // Every registered gram as `gram << 64 | offset << 32 | pattern`, sorted, so that the
        // patterns sharing a gram at the same offset (forms of secrets with a common part) sit
        // together and become one entry: a probe then costs one lookup however many share it.
        let mut packed: Zeroizing<Vec<u128>> = Zeroizing::new(Vec::with_capacity(entries));
        for (id, (pattern, &anchor)) in patterns.iter().zip(anchors.iter()).enumerate() {
            for offset in anchor..anchor + stride {
                let gram = load(pattern, offset) & mask;
                packed.push(u128::from(gram) << 64 | (offset as u128) << 32 | id as u128);
            }
        }
        packed.sort_unstable();
        let mut entry_grams: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::new());
        let mut entry_targets = Vec::new();
        let mut groups = Vec::new();
        let mut members = Vec::with_capacity(entries);
        let mut member_keys: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(entries));
        let mut keyed: Zeroizing<Vec<u128>> = Zeroizing::new(Vec::new());
        let mut delay = 0;
        for run in packed.chunk_by(|a, b| a >> 32 == b >> 32) {
            let Some(&first) = run.first() else {
                continue;
            };
            // Both fit in u32: `entries` and `total` were checked above.
            let (gram, offset) = ((first >> 64) as u64, (first >> 32) as u32);
            let ids = run.iter().map(|&p| p as u32);
            let key_len = ids
                .clone()
                .filter_map(|id| spans.get(id as usize).map(|&(_, len)| len))
                .min()
                .unwrap_or(0);
            keyed.clear();
            for id in ids {
                let pattern = spans
                    .get(id as usize)
                    .and_then(|&(from, _)| bytes.get(from..from + key_len))
                    .unwrap_or_default();
                keyed.push(u128::from(key_hash(pattern)) << 64 | u128::from(id));
            }
            keyed.sort_unstable();
            let start = members.len() as u32;
            for &k in keyed.iter() {
                member_keys.push((k >> 64) as u64);
                members.push(k as u32);
            }
            groups.push(Group {
                members: start..members.len() as u32,
                key_len: key_len as u32,
            });
            entry_grams.push(gram);
            entry_targets.push(((groups.len() - 1) as u32, offset));
            delay = delay.max(offset as usize);
        }
        // Counting sort of the entries by bucket.
        let bucket_count = entry_grams.len().next_power_of_two().max(16);
        let bucket_shift = 64 - bucket_count.trailing_zeros();
        let mut counts = vec![0u32; bucket_count + 1];
        for &gram in entry_grams.iter() {
            let hash = hash(gram);
            let bit = bitmap_bit(hash);
            bitmap[bit / 64 % BITMAP_WORDS] |= 1 << (bit % 64);
            if let Some(count) = counts.get_mut((hash >> bucket_shift) as usize + 1) {
                *count += 1;
            }
        }
        for b in 1..counts.len() {
            counts[b] += counts[b - 1];
        }
        let buckets = counts.clone();
        let mut next = counts;
        let mut grams = Zeroizing::new(vec![0u64; entry_grams.len()]);
        let mut targets = vec![(0u32, 0u32); entry_grams.len()];
        for (&gram, &target) in entry_grams.iter().zip(&entry_targets) {
            let bucket = (hash(gram) >> bucket_shift) as usize;
            let slot = next[bucket] as usize;
            next[bucket] += 1;
            grams[slot] = gram;
            targets[slot] = target;
        }
        Ok(Self {
            bytes,
            spans,
            width,
            mask,
            stride,
            bitmap,
            buckets,
            bucket_shift,
            grams,
            targets,
            groups,
            members,
            member_keys,
            delay,
        })
    }

    /// Leftmost-longest, non-overlapping matches in `haystack`, left to right.
    pub(super) fn find_iter<'a>(&'a self, haystack: &'a [u8]) -> Matches<'a> {
        Matches {
            searcher: self,
            haystack,
            probe: 0,
            cursor: 0,
            pending: Vec::new(),
        }
    }

    /// Probes `haystack` at `from`, `from + stride`, … up to `stop` (inclusive, and only where
    /// a whole load fits), returning the first position whose bitmap bit is set.
    fn next_hit(&self, haystack: &[u8], from: usize, stop: usize) -> Option<usize> {
        let mut at = match self.stride {
            8 => self.probe_fours::<8>(haystack, from, stop),
            4 => self.probe_fours::<4>(haystack, from, stop),
            _ => from,
        };
        let last = stop.min(haystack.len().saturating_sub(8));
        if haystack.len() >= 8 {
            while at <= last {
                let window = haystack.get(at..at + 8).and_then(|w| w.try_into().ok());
                let gram = u64::from_le_bytes(window.unwrap_or_default()) & self.mask;
                if self.is_marked(gram) {
                    return Some(at);
                }
                at += self.stride;
            }
        }
        // Near the end a load no longer fits, but a narrower gram may: pad with zeros.
        while at <= stop && at + self.width <= haystack.len() {
            if self.is_marked(self.gram_at(haystack, at)) {
                return Some(at);
            }
            at += self.stride;
        }
        None
    }

    /// Probes four positions `S` apart per step, with one branch for the four, from `from` on
    /// while the step's last probe is at most `stop` and its load fits. Returns the position
    /// where the first step holding a marked probe starts (the caller probes on from there
    /// one by one), or where the steps ended.
    fn probe_fours<const S: usize>(&self, haystack: &[u8], from: usize, stop: usize) -> usize {
        let mut at = from;
        while let Some(block) = haystack
            .get(at..at + 3 * S + 8)
            .filter(|_| at + 3 * S <= stop)
        {
            let marks = self.mark(block, 0)
                | self.mark(block, S)
                | self.mark(block, 2 * S)
                | self.mark(block, 3 * S);
            if marks != 0 {
                break;
            }
            at += 4 * S;
        }
        at
    }

    /// Non-zero if the bitmap bit of the gram at `block[offset..]` is set.
    fn mark(&self, block: &[u8], offset: usize) -> u64 {
        let word = block
            .get(offset..offset + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .unwrap_or_default();
        let bit = bitmap_bit(hash(u64::from_le_bytes(word) & self.mask));
        self.bitmap[bit / 64 % BITMAP_WORDS] & (1 << (bit % 64))
    }

    fn is_marked(&self, gram: u64) -> bool {
        let bit = bitmap_bit(hash(gram));
        self.bitmap[bit / 64 % BITMAP_WORDS] & (1 << (bit % 64)) != 0
    }

    fn gram_at(&self, haystack: &[u8], at: usize) -> u64 {
        load(haystack, at) & self.mask
    }

    /// Verifies every candidate that the gram at `at` names and that starts at or after
    /// `cursor`, adding the matches to `pending`.
    fn verify(&self, haystack: &[u8], at: usize, cursor: usize, pending: &mut Vec<FormMatch>) {
        let gram = self.gram_at(haystack, at);
        let bucket = (hash(gram) >> self.bucket_shift) as usize;
        let (Some(&first), Some(&end)) = (self.buckets.get(bucket), self.buckets.get(bucket + 1))
        else {
            return;
        };
        let range = first as usize..end as usize;
        let grams = self.grams.get(range.clone()).unwrap_or_default();
        let targets = self.targets.get(range).unwrap_or_default();
        for (&candidate, &(group, offset)) in grams.iter().zip(targets) {
            if candidate != gram {
                continue;
            }
            let Some(start) = at.checked_sub(offset as usize).filter(|s| *s >= cursor) else {
                continue;
            };
            let Some(group) = self.groups.get(group as usize) else {
                continue;
            };
            let range = group.members.start as usize..group.members.end as usize;
            let ids = self.members.get(range.clone()).unwrap_or_default();
            let keys = self.member_keys.get(range).unwrap_or_default();
            if let [id] = ids {
                self.confirm(haystack, start, *id, pending);
                continue;
            }
            // Many patterns share this gram here: only those whose first `key_len` bytes
            // hash like the text's can match.
            let Some(text) = haystack.get(start..start + group.key_len as usize) else {
                continue;
            };
            let key = key_hash(text);
            let first = keys.partition_point(|&k| k < key);
            for (&k, &id) in keys.iter().zip(ids).skip(first) {
                if k != key {
                    break;
                }
                self.confirm(haystack, start, id, pending);
            }
        }
    }

    /// Adds pattern `id` at `start` to `pending` if the text holds it there.
    fn confirm(&self, haystack: &[u8], start: usize, id: u32, pending: &mut Vec<FormMatch>) {
        let Some(&(from, len)) = self.spans.get(id as usize) else {
            return;
        };
        let pattern = self.bytes.get(from..from + len).unwrap_or_default();
        if haystack.get(start..start + len) == Some(pattern) {
            pending.push(FormMatch {
                start,
                end: start + len,
                pattern: id as usize,
            });
        }
    }
}

impl fmt::Debug for FormSearcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormSearcher")
            .field("patterns", &self.spans.len())
            .field("width", &self.width)
            .field("stride", &self.stride)
            .field("bitmap_bits", &(BITMAP_WORDS * 64))
            .finish_non_exhaustive()
    }
}

/// The matches of one haystack, left to right (see [`FormSearcher::find_iter`]).
pub(super) struct Matches<'a> {
    searcher: &'a FormSearcher,
    haystack: &'a [u8],
    /// The next position to probe; every position before it (on the stride) has been probed.
    probe: usize,
    /// No further match may start before this: the end of the last match returned.
    cursor: usize,
    /// Verified matches not yet known to be leftmost-longest.
    pending: Vec<FormMatch>,
}

impl Iterator for Matches<'_> {
    type Item = FormMatch;

    fn next(&mut self) -> Option<FormMatch> {
        let searcher = self.searcher;
        loop {
            let exhausted = self.probe >= self.haystack.len();
            // The leftmost pending match, the longest of those starting there.
            let first = self
                .pending
                .iter()
                .copied()
                .min_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
            if let Some(found) = first {
                // Every match starting at or before `found.start` is seen once the probes
                // have passed `found.start + delay`.
                if exhausted || self.probe > found.start + searcher.delay {
                    self.cursor = found.end;
                    self.pending.retain(|m| m.start >= found.end);
                    return Some(found);
                }
            } else if exhausted {
                return None;
            }
            let stop = first.map_or(usize::MAX, |m| m.start + searcher.delay);
            match searcher.next_hit(self.haystack, self.probe, stop) {
                Some(at) => {
                    searcher.verify(self.haystack, at, self.cursor, &mut self.pending);
                    self.probe = at + searcher.stride;
                }
                None => {
                    // No probe up to `stop` is marked: skip to the first position past it
                    // on the stride (or to the end).
                    self.probe = match first {
                        Some(m) => {
                            let past = m.start + searcher.delay + 1;
                            let steps = past.saturating_sub(self.probe).div_ceil(searcher.stride);
                            self.probe + steps * searcher.stride
                        }
                        None => self.haystack.len(),
                    };
                }
            }
        }
    }
}

impl fmt::Debug for FormMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{} #{}", self.start, self.end, self.pattern)
    }
}

/// For each pattern, the offset of the first of its `stride` registered grams: where the sum
/// of how often those grams occur among all patterns is smallest (the leftmost such place).
/// Counts go through a small lossy table keyed by hash, so they are estimates and hold no gram.
fn choose_anchors(patterns: &[&[u8]], width: usize, mask: u64, stride: usize) -> Vec<usize> {
    let total: usize = patterns.iter().map(|p| p.len()).sum();
    let size = total.next_power_of_two().clamp(1 << 10, 1 << 22);
    let shift = 64 - size.trailing_zeros();
    let mut counts = vec![0u16; size];
    let slot = |gram: u64| (hash(gram) >> shift) as usize;
    for pattern in patterns {
        for offset in 0..=pattern.len().saturating_sub(width) {
            if let Some(count) = counts.get_mut(slot(load(pattern, offset) & mask)) {
                *count = count.saturating_add(1);
            }
        }
    }
    patterns
        .iter()
        .map(|pattern| {
            let last = pattern.len().saturating_sub(width + stride - 1);
            let cost: Vec<u32> = (0..pattern.len().saturating_sub(width) + 1)
                .map(|offset| {
                    let count = counts.get(slot(load(pattern, offset) & mask));
                    u32::from(count.copied().unwrap_or(0))
                })
                .collect();
            (0..=last)
                .min_by_key(|&anchor| {
                    cost.get(anchor..anchor + stride)
                        .unwrap_or_default()
                        .iter()
                        .sum::<u32>()
                })
                .unwrap_or(0)
        })
        .collect()
}

/// Up to 8 bytes of `bytes` from `at`, little-endian, zero-padded past the end.
fn load(bytes: &[u8], at: usize) -> u64 {
    if let Some(eight) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
        return u64::from_le_bytes(*eight);
    }
    let mut word = [0u8; 8];
    let tail = bytes.get(at..).unwrap_or_default();
    let n = tail.len().min(8);
    word[..n].copy_from_slice(&tail[..n]);
    u64::from_le_bytes(word)
}

/// The bitmap bit of a gram's hash: its top bits.
fn bitmap_bit(hash: u64) -> usize {
    (hash >> (64 - BITMAP_BITS_LOG2)) as usize
}

/// A 64-bit hash of a pattern's first bytes (8 at a time), to tell apart the patterns of
/// one group.
fn key_hash(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut h = bytes.len() as u64;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        h = (h.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    // The last 8 bytes (overlapping the chunks before) rather than a copy of the remainder:
    // a copy stalls the load that follows it.
    let tail = match bytes.len().checked_sub(8) {
        Some(from) => load(bytes, from),
        None => load(chunks.remainder(), 0),
    };
    (h.rotate_left(23) ^ tail).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Fibonacci hashing: the top bits of the product are well mixed.
fn hash(gram: u64) -> u64 {
    gram.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// 2^22 bits = 512 KiB, half of this machine's L2: with 1,000 secrets (~17,000 forms, 8 grams
/// each) about 3% of the bits are set, so a clean probe goes on at once 97% of the time.
const BITMAP_BITS_LOG2: u32 = 22;
const BITMAP_WORDS: usize = 1 << (BITMAP_BITS_LOG2 - 6);

#[cfg(test)]
mod tests;
