//! The flat, stored form of an entry: one value per column of the ledger table, owned, so the
//! store can move them into its insert and read them back without rebuilding `detail` as a
//! JSON object.
//!
//! [`EntryColumns`] is what `ledger verify` walks: it hashes `detail` exactly as stored, so a
//! row whose `detail` was rewritten (even into equivalent JSON) no longer matches its hash.

use super::chain::Chained;
use super::encode::View;
use super::entry::LedgerEntry;
use super::kinds::{EntryKind, Outcome, SystemEvent, Via};
use crate::timestamp::Timestamp;

/// Every field of an entry (SPEC.md §15.1, fields 1–23) as the store keeps it.
///
/// Built by [`LedgerEntry::into_columns`] from a chained entry, or by the store from a row;
/// [`EntryColumns::to_entry`] turns it back into a [`LedgerEntry`] for display and export.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // one field per column of the §15.1 table, named as there
pub struct EntryColumns {
    pub id: u64,
    pub ts: Timestamp,
    pub kind: EntryKind,
    pub outcome: Option<Outcome>,
    pub event: Option<SystemEvent>,
    pub request_id: Option<String>,
    pub via: Via,
    pub instance: String,
    pub actor: Option<String>,
    pub agent: Option<String>,
    pub credential: Option<String>,
    pub service: Option<String>,
    pub method: Option<String>,
    pub target_host: Option<String>,
    pub path: Option<String>,
    pub status_code: Option<u16>,
    pub denial_code: Option<String>,
    pub latency_ms: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    /// The RFC 8785 serialisation of `detail`, as hashed.
    pub detail_jcs: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl LedgerEntry {
    /// Moves the entry's fields out into their stored form (no copies).
    pub fn into_columns(self) -> EntryColumns {
        let c = self.content;
        EntryColumns {
            id: self.id,
            ts: self.ts,
            kind: c.kind,
            outcome: c.outcome,
            event: c.event,
            request_id: c.request_id,
            via: c.via,
            instance: c.instance,
            actor: c.actor,
            agent: c.agent,
            credential: c.credential,
            service: c.service,
            method: c.method,
            target_host: c.target_host,
            path: c.path,
            status_code: c.status_code,
            denial_code: c.denial_code,
            latency_ms: c.latency_ms,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            detail_jcs: c.detail_jcs,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// Why stored columns cannot be turned back into an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored detail of ledger entry {id} is not a JSON object")]
pub struct DetailNotObject {
    /// The entry.
    pub id: u64,
}

impl EntryColumns {
    /// Rebuilds the entry with its stored hashes, parsing `detail` back into an object. The
    /// stored texts are taken as they are (they were bounded when the entry was written).
    ///
    /// # Errors
    /// [`DetailNotObject`] when `detail` is not a JSON object.
    pub fn to_entry(&self) -> Result<LedgerEntry, DetailNotObject> {
        let detail: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.detail_jcs).map_err(|_| DetailNotObject { id: self.id })?;
        let mut content = super::EntryContent::new(self.kind, self.via, "");
        content.instance.clone_from(&self.instance);
        content.outcome = self.outcome;
        content.event = self.event;
        content.request_id.clone_from(&self.request_id);
        content.actor.clone_from(&self.actor);
        content.agent.clone_from(&self.agent);
        content.credential.clone_from(&self.credential);
        content.service.clone_from(&self.service);
        content.method.clone_from(&self.method);
        content.target_host.clone_from(&self.target_host);
        content.path.clone_from(&self.path);
        content.status_code = self.status_code;
        content.denial_code.clone_from(&self.denial_code);
        content.latency_ms = self.latency_ms;
        content.bytes_in = self.bytes_in;
        content.bytes_out = self.bytes_out;
        content.detail = detail;
        // Kept byte for byte: the entry must hash as stored, not as re-serialised.
        content.detail_jcs.clone_from(&self.detail_jcs);
        Ok(LedgerEntry::from_stored(
            self.id,
            self.ts,
            content,
            self.prev_hash,
            self.hash,
        ))
    }

    pub(super) fn view(&self) -> View<'_> {
        View {
            id: self.id,
            ts: self.ts,
            kind: self.kind,
            outcome: self.outcome,
            event: self.event,
            request_id: self.request_id.as_deref(),
            via: self.via,
            instance: &self.instance,
            actor: self.actor.as_deref(),
            agent: self.agent.as_deref(),
            credential: self.credential.as_deref(),
            service: self.service.as_deref(),
            method: self.method.as_deref(),
            target_host: self.target_host.as_deref(),
            path: self.path.as_deref(),
            status_code: self.status_code,
            denial_code: self.denial_code.as_deref(),
            latency_ms: self.latency_ms,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            detail_jcs: &self.detail_jcs,
        }
    }
}

impl Chained for EntryColumns {
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
        super::chain::hash_view(&self.prev_hash, &self.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{EntryContent, chain_hash, verify_chain};

    fn sample() -> LedgerEntry {
        let mut detail = serde_json::Map::new();
        detail.insert("b".into(), 2.into());
        detail.insert("a".into(), "x".into());
        let content = EntryContent::request(Outcome::Blocked, Via::Gate, "gate-1")
            .with_request_id("01900000-0000-7000-8000-000000000001")
            .with_service("github")
            .with_method("POST")
            .with_path(b"/repos/x?token=1")
            .with_status_code(403)
            .with_denial_code("domain_blocked")
            .with_latency_ms(3)
            .with_detail(detail);
        LedgerEntry::chained(
            7,
            Timestamp::from_millis(1_700_000_000_123),
            content,
            [9; 32],
        )
    }

    #[test]
    fn columns_hash_like_the_entry_and_round_trip() {
        let entry = sample();
        let columns = entry.clone().into_columns();
        assert_eq!(columns.recompute_hash(), *entry.hash());
        assert_eq!(columns.recompute_hash(), chain_hash(&[9; 32], &entry));
        assert_eq!(columns.to_entry().expect("object"), entry);
    }

    #[test]
    fn a_reformatted_detail_no_longer_matches() {
        let mut columns = sample().into_columns();
        columns.detail_jcs = columns.detail_jcs.replace(',', ", ");
        assert_ne!(columns.recompute_hash(), columns.hash);
        let err = verify_chain(std::iter::once(&columns), [9; 32]).expect_err("tampered");
        assert_eq!(err.entry_id(), 7);
    }

    #[test]
    fn detail_that_is_not_an_object_is_refused() {
        let mut columns = sample().into_columns();
        columns.detail_jcs = "[1]".into();
        assert_eq!(columns.to_entry(), Err(DetailNotObject { id: 7 }));
    }
}
