//! The audit ledger's pure half: entries (SPEC.md §15.1), their frozen version-1 byte encoding
//! and SHA-256 hash chain (§15.2), chain verification, and the Ed25519 checkpoint key and
//! messages (§15.3).
//!
//! Storing entries, batching appends, reading the clock and drawing ids belong to the writer in
//! `aegis-store`; nothing here performs IO. The pieces:
//!
//! - [`EntryContent`] is what a request or command reports (fields 3–21); its constructors apply
//!   the truncation rules, so no [`LedgerEntry`] can hold a query string or an oversize field.
//! - [`LedgerEntry::chained`] adds the id, the time and the hashes the writer assigns.
//! - [`encode`], [`genesis`], [`chain_hash`] and [`verify_chain`] are the §15.2 chain.
//! - [`checkpoint_message`], [`LedgerSigningKey`] and [`verify_checkpoint`] are §15.3.
//! - [`jcs`] is the RFC 8785 JSON canonicalisation used for `detail` and checkpoints.
//! - [`bundle`] builds and verifies signed, self-contained exports of entries (§15.6).

pub mod bundle;
mod chain;
mod checkpoint;
mod columns;
mod encode;
mod entry;
mod entry_serde;
pub mod jcs;
mod kinds;
mod signing_key;

pub use chain::{
    ChainAnchor, ChainError, Chained, VerifiedChain, chain_hash, genesis, verify_chain,
    verify_chain_from,
};
pub use checkpoint::{
    CHECKPOINT_TYPE, checkpoint_message, format_public_key, key_id, parse_public_key,
    verify_checkpoint,
};
pub use columns::{DetailNotObject, EntryColumns};
pub use encode::{ENCODING_VERSION, encode};
pub use entry::{
    EntryContent, LedgerEntry, MAX_DETAIL_BYTES, MAX_METHOD_BYTES, MAX_PATH_BYTES,
    MAX_SERVICE_BYTES, MAX_TARGET_HOST_BYTES, MAX_TEXT_BYTES,
};
pub use entry_serde::{EntryParseError, FIELD_NAMES};
pub use kinds::{EntryKind, Outcome, SystemEvent, Via};
pub use signing_key::{
    LedgerKeyError, LedgerSigningKey, SEED_ENVELOPE_VERSION, unwrap_seed, wrap_seed,
};

#[cfg(test)]
mod tests;
