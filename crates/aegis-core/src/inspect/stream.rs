//! [`Scanner`]: vault-secret and key-format inspection of a body that arrives in chunks.
//!
//! Two cursors move over one held buffer. Vault-secret matching is leftmost-longest, so (as
//! for the echo [`crate::redact::Redactor`]) a match starting at `p` is decided once the bytes
//! up to `p + max_pattern_len` are known; matches starting before `len - (max_pattern_len - 1)`
//! are recorded and the search resumes after the last one. A key-format candidate starting at
//! `p` is decided once its whole confirmation window (`keys::WINDOW` bytes from `p`, and the two
//! bytes before `p` for the token boundary) is known. Only what either cursor may still need is
//! kept, so memory is bounded by the window plus one chunk, and the findings equal those of
//! [`super::scan`] over the whole body however it is chunked.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Detector, Finding, Location, MAX_FINDINGS, keys};
use crate::redact::RedactionSet;

/// Streaming inspection of one body for vault secrets and key formats.
pub struct Scanner {
    vault: Arc<RedactionSet>,
    /// Bytes from absolute offset `base` on that a cursor may still need.
    held: Zeroizing<Vec<u8>>,
    base: u64,
    /// Vault-secret matching resumes here.
    vault_from: u64,
    /// Key-format candidates starting before this have been decided.
    keys_from: u64,
    findings: Findings,
}

impl Scanner {
    /// Starts scanning a body against the vault's secrets (and every key format).
    pub fn new(vault: Arc<RedactionSet>) -> Self {
        Self {
            vault,
            held: Zeroizing::new(Vec::new()),
            base: 0,
            vault_from: 0,
            keys_from: 0,
            findings: Findings::default(),
        }
    }

    /// Feeds the next chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.held.extend_from_slice(chunk);
        self.advance(false);
    }

    /// Whether anything has been found so far (decided findings only).
    pub fn has_findings(&self) -> bool {
        self.findings.total > 0
    }

    /// Ends the body and returns its findings in `location`: at most [`MAX_FINDINGS`], the
    /// earliest first.
    pub fn finish(mut self, location: &Location) -> Vec<Finding> {
        self.advance(true);
        std::mem::take(&mut self.findings).into_sorted(location)
    }

    fn advance(&mut self, end: bool) {
        let len = self.held.len();
        let offset = |abs: u64| usize::try_from(abs - self.base).unwrap_or(len).min(len);
        let keep = self.vault.max_pattern_len().saturating_sub(1);
        let settled = if end { len } else { len.saturating_sub(keep) };
        let vault_from = offset(self.vault_from);
        if settled > vault_from {
            let next = scan_vault(
                &self.vault,
                &self.held,
                self.base,
                vault_from,
                settled,
                &mut self.findings,
            );
            self.vault_from = self.base + next as u64;
        }
        let limit = if end {
            len
        } else {
            len.saturating_sub(keys::WINDOW)
        };
        let keys_from = offset(self.keys_from);
        if limit > keys_from {
            keys::scan(&self.held, self.base, keys_from, limit, &mut self.findings);
            self.keys_from = self.base + limit as u64;
        }
        // Key candidates look at up to two bytes before them (the token boundary).
        let needed = self
            .vault_from
            .min(self.keys_from.saturating_sub(2))
            .max(self.base);
        let drop = offset(needed);
        self.held.drain(..drop);
        self.base += drop as u64;
    }
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("held", &self.held.len())
            .field("base", &self.base)
            .field("findings", &self.findings.total)
            .finish_non_exhaustive()
    }
}

/// Findings of one location as they are decided: the [`MAX_FINDINGS`] earliest of each kind
/// (whatever order they are decided in) and how many there were.
#[derive(Debug, Default)]
pub(super) struct Findings {
    vault: Vec<u64>,
    keys: Vec<(u64, Detector)>,
    total: u64,
}

impl Findings {
    pub(super) fn vault(&mut self, offset: u64) {
        self.total += 1;
        keep_earliest(&mut self.vault, offset);
    }

    pub(super) fn key(&mut self, offset: u64, detector: Detector) {
        self.total += 1;
        keep_earliest(&mut self.keys, (offset, detector));
    }

    /// How many findings were recorded, kept or not.
    #[cfg(test)]
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    pub(super) fn into_sorted(self, location: &Location) -> Vec<Finding> {
        let mut all: Vec<Finding> = self
            .vault
            .into_iter()
            .map(|offset| (offset, Detector::VaultSecret))
            .chain(self.keys)
            .map(|(offset, detector)| Finding {
                offset,
                detector,
                location: location.clone(),
            })
            .collect();
        all.sort();
        all.truncate(MAX_FINDINGS);
        all
    }
}

/// Keeps the [`MAX_FINDINGS`] smallest values pushed, in any order.
fn keep_earliest<T: Ord>(kept: &mut Vec<T>, value: T) {
    if kept.len() < MAX_FINDINGS {
        kept.push(value);
        return;
    }
    if let Some(largest) = kept.iter_mut().max()
        && value < *largest
    {
        *largest = value;
    }
}

/// Records every vault-secret match in `buf[from..]` starting before `settled` (`buf[0]` is at
/// absolute offset `base`) and returns where matching resumes: past the last match, or at
/// `settled`.
pub(super) fn scan_vault(
    vault: &RedactionSet,
    buf: &[u8],
    base: u64,
    from: usize,
    settled: usize,
    findings: &mut Findings,
) -> usize {
    let Some(rest) = buf.get(from..) else {
        return settled;
    };
    let mut consumed = from;
    for (start, end) in vault.find_spans(rest) {
        if from + start >= settled {
            break;
        }
        findings.vault(base + (from + start) as u64);
        consumed = from + end;
    }
    consumed.max(settled)
}
