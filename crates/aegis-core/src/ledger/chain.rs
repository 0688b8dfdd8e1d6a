//! The hash chain (SPEC.md §15.2): the genesis value, the per-entry hash and the walk that
//! `aegis ledger verify` runs.
//!
//! Checkpoint signatures are checked with [`super::verify_checkpoint`]; the walk here needs no
//! key at all.

use aws_lc_rs::digest;

use super::encode::{Sink, View, encode_view};
use super::entry::LedgerEntry;
use crate::timestamp::Timestamp;

/// The hash the walk ends on, and how many entries it checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedChain {
    /// Number of entries verified.
    pub count: u64,
    /// Hash of the last entry verified (the starting `prev_hash` when there were none).
    pub head: [u8; 32],
}

/// Where a walk starts: the hash the first entry must point at and, when known, that entry's
/// id minus one (`0` at genesis, the anchor's entry id after an archive, §15.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainAnchor {
    /// Id of the entry whose hash is `hash`; the first walked entry must be `id + 1`.
    pub id: u64,
    /// The `prev_hash` the first walked entry must carry.
    pub hash: [u8; 32],
}

/// Why a chain failed verification; each names the first entry where it broke.
///
/// The text is what `aegis ledger verify` prints after `error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The entry's stored hash is not the hash of its own content and `prev_hash`: the entry
    /// or its hash was altered.
    #[error("ledger chain broken at entry {id}: hash mismatch")]
    HashMismatch {
        /// The entry.
        id: u64,
    },
    /// The entry's `prev_hash` is not the previous entry's hash (or the starting hash): an
    /// entry before it was altered, inserted or removed.
    #[error("ledger chain broken at entry {id}: prev_hash mismatch")]
    PrevHashMismatch {
        /// The entry.
        id: u64,
    },
    /// Ids jump: entries `first`..=`last` are absent before entry `id`.
    #[error("ledger chain broken at entry {id}: missing entries {first}–{last}")]
    MissingEntries {
        /// The entry found after the gap.
        id: u64,
        /// First missing id.
        first: u64,
        /// Last missing id.
        last: u64,
    },
    /// The entry is older than the one before it.
    #[error("ledger chain broken at entry {id}: timestamp out of order")]
    TimestampOutOfOrder {
        /// The entry.
        id: u64,
    },
    /// The entry links and hashes correctly but its id does not follow the previous one (a
    /// repeated or decreasing id, which only a faulty writer produces).
    #[error("ledger chain broken at entry {id}: id out of sequence, expected {expected}")]
    IdOutOfSequence {
        /// The entry.
        id: u64,
        /// The id that should have come next.
        expected: u64,
    },
    /// A checkpoint over this entry does not verify under the vault's public key (reported by
    /// the caller that checks checkpoints with [`super::verify_checkpoint`]).
    #[error("ledger chain broken at entry {id}: checkpoint {id} signature invalid")]
    CheckpointSignatureInvalid {
        /// The entry the checkpoint signs.
        id: u64,
    },
}

impl ChainError {
    /// The entry at which the chain broke.
    pub fn entry_id(&self) -> u64 {
        match self {
            Self::HashMismatch { id }
            | Self::PrevHashMismatch { id }
            | Self::MissingEntries { id, .. }
            | Self::TimestampOutOfOrder { id }
            | Self::IdOutOfSequence { id, .. }
            | Self::CheckpointSignatureInvalid { id } => *id,
        }
    }
}

impl ChainAnchor {
    /// The start of a vault's chain: id 0 and the genesis hash.
    pub fn genesis(vault_id: &uuid::Uuid) -> Self {
        Self {
            id: 0,
            hash: genesis(vault_id),
        }
    }
}

/// The `prev_hash` of entry 1: `SHA-256("aegis-ledger-genesis/1" ‖ vault id as 16 raw bytes)`.
pub fn genesis(vault_id: &uuid::Uuid) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(GENESIS_LABEL);
    ctx.update(vault_id.as_bytes());
    finish(ctx)
}

/// `SHA-256(prev ‖ encode(entry))`, the hash an entry must carry when it follows `prev`.
pub fn chain_hash(prev: &[u8; 32], entry: &LedgerEntry) -> [u8; 32] {
    hash_view(prev, &entry.view())
}

/// Something that sits in the chain: an entry, or its stored columns. The walk needs only its
/// position, time, the two stored hashes and the hash its content should have.
pub trait Chained {
    /// Field 1.
    fn id(&self) -> u64;
    /// Field 2.
    fn ts(&self) -> Timestamp;
    /// Field 22 as stored.
    fn prev_hash(&self) -> &[u8; 32];
    /// Field 23 as stored.
    fn stored_hash(&self) -> &[u8; 32];
    /// `SHA-256(prev_hash ‖ encode(fields 1–21))` from the stored `prev_hash`.
    fn recompute_hash(&self) -> [u8; 32];
}

impl Chained for LedgerEntry {
    fn id(&self) -> u64 {
        self.id
    }

    fn ts(&self) -> Timestamp {
        self.ts
    }

    fn prev_hash(&self) -> &[u8; 32] {
        &self.prev_hash
    }

    fn stored_hash(&self) -> &[u8; 32] {
        &self.hash
    }

    fn recompute_hash(&self) -> [u8; 32] {
        chain_hash(&self.prev_hash, self)
    }
}

/// The chain hash of borrowed fields. The encoding is gathered first and hashed in one call:
/// fed field by field, its sixty-odd small pieces cost more in digest calls than the hashing.
pub(super) fn hash_view(prev: &[u8; 32], view: &View<'_>) -> [u8; 32] {
    let mut encoded = Vec::with_capacity(512);
    encoded.put(prev);
    encode_view(view, &mut encoded);
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&encoded);
    finish(ctx)
}

/// Walks `entries` in order from `start_prev` (the genesis value, or the stored `prev_hash` of
/// the first entry for `--last N`), without constraining the first entry's id.
///
/// # Errors
/// The first break found, as [`verify_chain_from`] describes.
pub fn verify_chain<'a, E: Chained + 'a>(
    entries: impl Iterator<Item = &'a E>,
    start_prev: [u8; 32],
) -> Result<VerifiedChain, ChainError> {
    walk(entries, start_prev, None)
}

/// Walks `entries` in order from `anchor`: the first entry must have id `anchor.id + 1` and
/// point at `anchor.hash`.
///
/// # Errors
/// The first break found. For each entry the checks run in this order: an id beyond the
/// expected one is [`ChainError::MissingEntries`]; a `prev_hash` other than the previous hash
/// is [`ChainError::PrevHashMismatch`]; a stored hash other than the recomputed one is
/// [`ChainError::HashMismatch`]; a lower or repeated id is [`ChainError::IdOutOfSequence`]; a
/// time before the previous entry's is [`ChainError::TimestampOutOfOrder`].
pub fn verify_chain_from<'a, E: Chained + 'a>(
    entries: impl Iterator<Item = &'a E>,
    anchor: ChainAnchor,
) -> Result<VerifiedChain, ChainError> {
    walk(entries, anchor.hash, anchor.id.checked_add(1))
}

fn walk<'a, E: Chained + 'a>(
    entries: impl Iterator<Item = &'a E>,
    start_prev: [u8; 32],
    first_id: Option<u64>,
) -> Result<VerifiedChain, ChainError> {
    let mut head = start_prev;
    let mut expected_id = first_id;
    let mut last_ts: Option<Timestamp> = None;
    let mut count: u64 = 0;
    for entry in entries {
        let id = entry.id();
        if let Some(expected) = expected_id
            && id > expected
        {
            return Err(ChainError::MissingEntries {
                id,
                first: expected,
                last: id - 1,
            });
        }
        if *entry.prev_hash() != head {
            return Err(ChainError::PrevHashMismatch { id });
        }
        if entry.recompute_hash() != *entry.stored_hash() {
            return Err(ChainError::HashMismatch { id });
        }
        if let Some(expected) = expected_id
            && id < expected
        {
            return Err(ChainError::IdOutOfSequence { id, expected });
        }
        if last_ts.is_some_and(|last| entry.ts() < last) {
            return Err(ChainError::TimestampOutOfOrder { id });
        }
        head = *entry.stored_hash();
        expected_id = id.checked_add(1);
        last_ts = Some(entry.ts());
        count += 1;
    }
    Ok(VerifiedChain { count, head })
}

fn finish(ctx: digest::Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

const GENESIS_LABEL: &[u8] = b"aegis-ledger-genesis/1";
