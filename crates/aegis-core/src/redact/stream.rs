//! [`Redactor`]: echo redaction of a body that arrives in chunks.
//!
//! Leftmost-longest matching decides a match at offset `p` once the bytes up to
//! `p + max_pattern_len` are known: no pattern starting at or before `p` can reach further.
//! So after each chunk the redactor replaces every match starting at least `max_pattern_len`
//! bytes before the end of what it holds, releases everything before the last
//! `max_pattern_len - 1` bytes that is not part of an undecided match, and carries only that
//! tail into the next chunk. The output is byte for byte what [`RedactionSet::redact`] gives for
//! the whole body, however it is chunked. Each push scans the held tail plus the chunk, so the
//! cost is linear in the body for chunks of at least `max_pattern_len` bytes.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{RedactionSet, WITHHELD};

/// Streaming echo redaction of one response body.
pub struct Redactor {
    set: Arc<RedactionSet>,
    injected: Option<usize>,
    /// Bytes received but not yet released: at most `max_pattern_len - 1` between calls.
    held: Zeroizing<Vec<u8>>,
    /// Whether a withholding set (see [`RedactionSet::is_withholding`]) has dropped input.
    withheld: bool,
}

impl Redactor {
    /// Starts redacting a body; `injected` is the owner of the credential injected into the
    /// request, whose matches are labelled with its name.
    pub fn new(set: Arc<RedactionSet>, injected: Option<usize>) -> Self {
        Self {
            set,
            injected,
            held: Zeroizing::new(Vec::new()),
            withheld: false,
        }
    }

    /// Feeds the next chunk, appending to `out` every byte that is now safe to release (with
    /// matches replaced), and returns the number of replacements made. Holds back at most
    /// `max_pattern_len() - 1` bytes, and never a byte that could start an undecided match.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> usize {
        if self.set.is_withholding() {
            self.withheld |= !chunk.is_empty();
            return 0;
        }
        if self.set.is_empty() {
            out.extend_from_slice(&self.held);
            self.held.clear();
            out.extend_from_slice(chunk);
            return 0;
        }
        if chunk.is_empty() {
            return 0;
        }
        self.held.extend_from_slice(chunk);
        let len = self.held.len();
        let keep = self.set.max_pattern_len().saturating_sub(1);
        // Matches starting before `len - keep` are decided: all their candidates fit in `held`.
        let settled = len.saturating_sub(keep);
        let (consumed, count) = if settled == 0 {
            (0, 0)
        } else {
            self.set
                .replace_settled(&self.held, settled, self.injected, out)
        };
        // No match starts in `consumed..settled` (it would have been decided and replaced), so
        // those bytes go out; the rest may begin a match that later bytes complete.
        let release = consumed.max(settled);
        out.extend_from_slice(self.held.get(consumed..release).unwrap_or_default());
        self.held.drain(..release);
        count
    }

    /// Ends the body: replaces matches in the held tail, appends it to `out` and returns the
    /// number of replacements. The redactor is then empty and could start a new body.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> usize {
        if std::mem::take(&mut self.withheld) {
            out.extend_from_slice(WITHHELD);
            return 1;
        }
        let len = self.held.len();
        let (consumed, count) = self
            .set
            .replace_settled(&self.held, len, self.injected, out);
        out.extend_from_slice(self.held.get(consumed..).unwrap_or_default());
        self.held.clear();
        count
    }

    /// How many bytes are held back, waiting for the next chunk or [`Redactor::finish`].
    pub fn held_len(&self) -> usize {
        self.held.len()
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("set", &self.set)
            .field("injected", &self.injected)
            .field("held", &self.held.len())
            .finish()
    }
}
