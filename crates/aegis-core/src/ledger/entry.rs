//! Ledger entries (SPEC.md §15.1) and the truncation rules applied when they are built.
//!
//! [`EntryContent`] holds fields 3–21, the part a request or command reports; its setters are
//! the only way to fill a field, and they enforce the limits below. [`LedgerEntry`] adds the id,
//! time and hashes that the store's writer assigns. Encoding and hashing live in `encode.rs` and
//! `chain.rs`.
//!
//! Truncation rules (all lengths in UTF-8 bytes, always cut at a character boundary, so a
//! truncated field is at most the limit and never ends in half a character):
//!
//! | field | rule |
//! |---|---|
//! | `service` | [`MAX_SERVICE_BYTES`] |
//! | `method` | [`MAX_METHOD_BYTES`] |
//! | `target_host` | [`MAX_TARGET_HOST_BYTES`] |
//! | `path` | everything from the first `?` removed, then [`MAX_PATH_BYTES`] |
//! | other text | [`MAX_TEXT_BYTES`] (a guard: every name Aegis issues is far shorter) |
//! | `detail` | JCS form at most [`MAX_DETAIL_BYTES`], else replaced (see [`EntryContent::with_detail`]) |
//!
//! Text is taken as bytes; invalid UTF-8 becomes U+FFFD before the length is measured.

use serde_json::{Map, Value};

use super::jcs;
use super::kinds::{EntryKind, Outcome, SystemEvent, Via};
use crate::timestamp::Timestamp;

/// Longest `service` kept, in bytes.
pub const MAX_SERVICE_BYTES: usize = 64;
/// Longest `method` kept, in bytes.
pub const MAX_METHOD_BYTES: usize = 16;
/// Longest `target_host` kept, in bytes.
pub const MAX_TARGET_HOST_BYTES: usize = 255;
/// Longest `path` kept (after the query string is removed), in bytes.
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest JCS serialisation of `detail` kept, in bytes.
pub const MAX_DETAIL_BYTES: usize = 4096;
/// Longest value kept for every other text field (`request_id`, `instance`, `actor`, `agent`,
/// `credential`, `denial_code`), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Fields 3–21 of an entry: what happened, reported by the gate, MCP server or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContent {
    pub(super) kind: EntryKind,
    pub(super) outcome: Option<Outcome>,
    pub(super) event: Option<SystemEvent>,
    pub(super) request_id: Option<String>,
    pub(super) via: Via,
    pub(super) instance: String,
    pub(super) actor: Option<String>,
    pub(super) agent: Option<String>,
    pub(super) credential: Option<String>,
    pub(super) service: Option<String>,
    pub(super) method: Option<String>,
    pub(super) target_host: Option<String>,
    pub(super) path: Option<String>,
    pub(super) status_code: Option<u16>,
    pub(super) denial_code: Option<String>,
    pub(super) latency_ms: Option<u64>,
    pub(super) bytes_in: Option<u64>,
    pub(super) bytes_out: Option<u64>,
    pub(super) detail: Map<String, Value>,
    /// The JCS form of `detail`, kept beside it because it is what gets hashed.
    pub(super) detail_jcs: String,
}

/// A complete entry as stored: content plus id, time and the chain hashes (fields 1–23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub(super) id: u64,
    pub(super) ts: Timestamp,
    pub(super) content: EntryContent,
    pub(super) prev_hash: [u8; 32],
    pub(super) hash: [u8; 32],
}

impl EntryContent {
    /// An entry of any kind with every optional field null and an empty `detail`.
    pub fn new(kind: EntryKind, via: Via, instance: impl AsRef<[u8]>) -> Self {
        Self {
            kind,
            outcome: None,
            event: None,
            request_id: None,
            via,
            instance: bounded_text(instance.as_ref(), MAX_TEXT_BYTES),
            actor: None,
            agent: None,
            credential: None,
            service: None,
            method: None,
            target_host: None,
            path: None,
            status_code: None,
            denial_code: None,
            latency_ms: None,
            bytes_in: None,
            bytes_out: None,
            detail: Map::new(),
            detail_jcs: String::from("{}"),
        }
    }

    /// A `request` entry recording a decision.
    pub fn request(outcome: Outcome, via: Via, instance: impl AsRef<[u8]>) -> Self {
        Self::new(EntryKind::Request, via, instance).with_outcome(outcome)
    }

    /// A `request_end` entry completing a strict-mode request (§15.4).
    pub fn request_end(outcome: Outcome, via: Via, instance: impl AsRef<[u8]>) -> Self {
        Self::new(EntryKind::RequestEnd, via, instance).with_outcome(outcome)
    }

    /// A `system` entry recording an event.
    pub fn system(event: SystemEvent, via: Via, instance: impl AsRef<[u8]>) -> Self {
        Self::new(EntryKind::System, via, instance).with_event(event)
    }

    /// The `request_end` entry completing this `request` entry (strict durability, §15.4):
    /// the same fields, kind `request_end`.
    #[must_use]
    pub fn into_request_end(mut self) -> Self {
        self.kind = EntryKind::RequestEnd;
        self
    }

    /// Sets `outcome` (field 4).
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Sets `event` (field 5).
    #[must_use]
    pub fn with_event(mut self, event: SystemEvent) -> Self {
        self.event = Some(event);
        self
    }

    /// Sets `request_id` (field 6), the request's UUIDv7 as text.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl AsRef<[u8]>) -> Self {
        self.request_id = Some(bounded_text(request_id.as_ref(), MAX_TEXT_BYTES));
        self
    }

    /// Sets `actor` (field 9), the user behind a CLI or admin action.
    #[must_use]
    pub fn with_actor(mut self, actor: impl AsRef<[u8]>) -> Self {
        self.actor = Some(bounded_text(actor.as_ref(), MAX_TEXT_BYTES));
        self
    }

    /// Sets `agent` (field 10).
    #[must_use]
    pub fn with_agent(mut self, agent: impl AsRef<[u8]>) -> Self {
        self.agent = Some(bounded_text(agent.as_ref(), MAX_TEXT_BYTES));
        self
    }

    /// Sets `credential` (field 11).
    #[must_use]
    pub fn with_credential(mut self, credential: impl AsRef<[u8]>) -> Self {
        self.credential = Some(bounded_text(credential.as_ref(), MAX_TEXT_BYTES));
        self
    }

    /// Sets `service` (field 12), truncated to [`MAX_SERVICE_BYTES`].
    #[must_use]
    pub fn with_service(mut self, service: impl AsRef<[u8]>) -> Self {
        self.service = Some(bounded_text(service.as_ref(), MAX_SERVICE_BYTES));
        self
    }

    /// Sets `method` (field 13), truncated to [`MAX_METHOD_BYTES`].
    #[must_use]
    pub fn with_method(mut self, method: impl AsRef<[u8]>) -> Self {
        self.method = Some(bounded_text(method.as_ref(), MAX_METHOD_BYTES));
        self
    }

    /// Sets `target_host` (field 14): the normalised host, or the raw header when it was
    /// invalid, truncated to [`MAX_TARGET_HOST_BYTES`].
    #[must_use]
    pub fn with_target_host(mut self, host: impl AsRef<[u8]>) -> Self {
        self.target_host = Some(bounded_text(host.as_ref(), MAX_TARGET_HOST_BYTES));
        self
    }

    /// Sets `path` (field 15) from the raw request target: everything from the first `?` is
    /// dropped (the query string never reaches the ledger), invalid UTF-8 becomes U+FFFD, and
    /// the rest is truncated to [`MAX_PATH_BYTES`].
    #[must_use]
    pub fn with_path(mut self, raw_path: &[u8]) -> Self {
        let without_query = match raw_path.iter().position(|&byte| byte == b'?') {
            Some(at) => &raw_path[..at],
            None => raw_path,
        };
        self.path = Some(bounded_text(without_query, MAX_PATH_BYTES));
        self
    }

    /// Sets `status_code` (field 16), the status returned to the agent.
    #[must_use]
    pub fn with_status_code(mut self, status: u16) -> Self {
        self.status_code = Some(status);
        self
    }

    /// Sets `denial_code` (field 17), a code from SPEC.md §22.1.
    #[must_use]
    pub fn with_denial_code(mut self, code: impl AsRef<[u8]>) -> Self {
        self.denial_code = Some(bounded_text(code.as_ref(), MAX_TEXT_BYTES));
        self
    }

    /// Sets `latency_ms` (field 18).
    #[must_use]
    pub fn with_latency_ms(mut self, latency_ms: u64) -> Self {
        self.latency_ms = Some(latency_ms);
        self
    }

    /// Sets `bytes_in` (field 19), request body bytes received from the agent.
    #[must_use]
    pub fn with_bytes_in(mut self, bytes: u64) -> Self {
        self.bytes_in = Some(bytes);
        self
    }

    /// Sets `bytes_out` (field 20), response body bytes sent to the agent.
    #[must_use]
    pub fn with_bytes_out(mut self, bytes: u64) -> Self {
        self.bytes_out = Some(bytes);
        self
    }

    /// Sets `detail` (field 21). When its JCS serialisation is longer than
    /// [`MAX_DETAIL_BYTES`], it is replaced by `{"truncated":true,"original_bytes":<n>}`, `n`
    /// being the length that was refused; nothing of the original is kept, so a partial object
    /// can never be mistaken for the whole.
    ///
    /// Numbers are hashed as RFC 8785 prescribes, as IEEE doubles: integers beyond ±2^53 lose
    /// precision in the hash (the stored map keeps them as given).
    #[must_use]
    pub fn with_detail(mut self, detail: Map<String, Value>) -> Self {
        let text = jcs::serialize_object(&detail);
        if text.len() <= MAX_DETAIL_BYTES {
            self.detail = detail;
            self.detail_jcs = text;
        } else {
            let mut marker = Map::new();
            marker.insert("truncated".to_owned(), Value::Bool(true));
            marker.insert("original_bytes".to_owned(), Value::from(text.len()));
            self.detail_jcs = jcs::serialize_object(&marker);
            self.detail = marker;
        }
        self
    }

    /// Field 3.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// Field 4.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Field 5.
    pub fn event(&self) -> Option<SystemEvent> {
        self.event
    }

    /// Field 6.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Field 7.
    pub fn via(&self) -> Via {
        self.via
    }

    /// Field 8, the id of the process that wrote the entry.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Field 9.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// Field 10.
    pub fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    /// Field 11.
    pub fn credential(&self) -> Option<&str> {
        self.credential.as_deref()
    }

    /// Field 12.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// Field 13.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Field 14.
    pub fn target_host(&self) -> Option<&str> {
        self.target_host.as_deref()
    }

    /// Field 15, never containing a query string.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Field 16.
    pub fn status_code(&self) -> Option<u16> {
        self.status_code
    }

    /// Field 17.
    pub fn denial_code(&self) -> Option<&str> {
        self.denial_code.as_deref()
    }

    /// Field 18.
    pub fn latency_ms(&self) -> Option<u64> {
        self.latency_ms
    }

    /// Field 19.
    pub fn bytes_in(&self) -> Option<u64> {
        self.bytes_in
    }

    /// Field 20.
    pub fn bytes_out(&self) -> Option<u64> {
        self.bytes_out
    }

    /// Field 21, always an object.
    pub fn detail(&self) -> &Map<String, Value> {
        &self.detail
    }

    /// The RFC 8785 serialisation of `detail`: what is hashed, and what the store should keep.
    pub fn detail_jcs(&self) -> &str {
        &self.detail_jcs
    }

    /// The hash this content gets as entry `id`, appended at `ts` after the entry whose hash
    /// is `prev_hash`: what [`LedgerEntry::chained`] stores, without moving the content into
    /// an entry (a store can write borrowed content and keep it for a retry).
    pub fn chain_hash_at(&self, id: u64, ts: Timestamp, prev_hash: &[u8; 32]) -> [u8; 32] {
        super::chain::hash_view(prev_hash, &self.view_at(id, ts))
    }
}

impl LedgerEntry {
    /// Appends `content` to a chain whose head is `prev_hash`, as the writer does: assigns `id`
    /// and `ts` and computes `hash = SHA-256(prev_hash ‖ encode(entry))`.
    pub fn chained(id: u64, ts: Timestamp, content: EntryContent, prev_hash: [u8; 32]) -> Self {
        let hash = content.chain_hash_at(id, ts, &prev_hash);
        Self {
            id,
            ts,
            content,
            prev_hash,
            hash,
        }
    }

    /// Rebuilds an entry read back from storage or a bundle with the hashes it was stored with,
    /// without recomputing them: [`super::verify_chain`] decides whether they are right.
    pub fn from_stored(
        id: u64,
        ts: Timestamp,
        content: EntryContent,
        prev_hash: [u8; 32],
        hash: [u8; 32],
    ) -> Self {
        Self {
            id,
            ts,
            content,
            prev_hash,
            hash,
        }
    }

    /// Field 1, the position in the vault's chain (1, 2, 3, …).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Field 2, the append time.
    pub fn ts(&self) -> Timestamp {
        self.ts
    }

    /// Fields 3–21.
    pub fn content(&self) -> &EntryContent {
        &self.content
    }

    /// Field 22, the hash of the previous entry (the genesis value for entry 1).
    pub fn prev_hash(&self) -> &[u8; 32] {
        &self.prev_hash
    }

    /// Field 23, this entry's hash as stored.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

/// Decodes `bytes` as UTF-8 (invalid sequences become U+FFFD) and keeps at most `max` bytes,
/// cutting at a character boundary.
pub(super) fn bounded_text(bytes: &[u8], max: usize) -> String {
    // Decoding never shrinks: every input byte yields at least one output byte, and the only
    // effect of cutting the input is a U+FFFD for a sequence that starts after input byte `max`
    // (a sequence is at most 4 bytes), whose output starts after output byte `max` and is cut
    // below anyway. So decoding a prefix of `max + 4` bytes gives the same result as decoding
    // everything, whatever the input size.
    let prefix = &bytes[..bytes.len().min(max.saturating_add(4))];
    let mut text = String::from_utf8_lossy(prefix).into_owned();
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
