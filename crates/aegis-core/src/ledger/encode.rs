//! The frozen canonical byte encoding of an entry, version 1 (SPEC.md §15.2).
//!
//! `0x01`, then fields 1–21 in table order, each as `0x00` when null, otherwise `0x01` followed
//! by: 8 bytes big-endian for any integer (`status_code` included), a 4-byte big-endian length
//! and the UTF-8 bytes for a string (`ts` as RFC 3339, enums as their snake_case names), and
//! for `detail` its RFC 8785 serialisation encoded as a string. Every value carries its own
//! length, so the encoding is injective. Changing anything here needs a new version byte and
//! new test vectors (`tests/vectors/ledger_v1.json`).

use super::entry::{EntryContent, LedgerEntry};
use super::kinds::{EntryKind, Outcome, SystemEvent, Via};
use crate::timestamp::Timestamp;

/// The version byte that opens every encoded entry.
pub const ENCODING_VERSION: u8 = 0x01;

const NULL: u8 = 0x00;
const PRESENT: u8 = 0x01;

/// The canonical encoding of fields 1–21 of `entry` (the stored hashes are not part of it).
pub fn encode(entry: &LedgerEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + entry.content.detail_jcs.len());
    encode_into(entry, &mut out);
    out
}

/// Where encoded bytes go.
pub(super) trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Borrowed fields 1–21 of an entry, whichever form it is held in.
#[derive(Debug, Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) id: u64,
    pub(super) ts: Timestamp,
    pub(super) kind: EntryKind,
    pub(super) outcome: Option<Outcome>,
    pub(super) event: Option<SystemEvent>,
    pub(super) request_id: Option<&'a str>,
    pub(super) via: Via,
    pub(super) instance: &'a str,
    pub(super) actor: Option<&'a str>,
    pub(super) agent: Option<&'a str>,
    pub(super) credential: Option<&'a str>,
    pub(super) service: Option<&'a str>,
    pub(super) method: Option<&'a str>,
    pub(super) target_host: Option<&'a str>,
    pub(super) path: Option<&'a str>,
    pub(super) status_code: Option<u16>,
    pub(super) denial_code: Option<&'a str>,
    pub(super) latency_ms: Option<u64>,
    pub(super) bytes_in: Option<u64>,
    pub(super) bytes_out: Option<u64>,
    pub(super) detail_jcs: &'a str,
}

impl LedgerEntry {
    pub(super) fn view(&self) -> View<'_> {
        self.content.view_at(self.id, self.ts)
    }
}

impl EntryContent {
    /// The content's fields as entry `id` appended at `ts`.
    pub(super) fn view_at(&self, id: u64, ts: Timestamp) -> View<'_> {
        let c = self;
        View {
            id,
            ts,
            kind: c.kind,
            outcome: c.outcome,
            event: c.event,
            request_id: c.request_id.as_deref(),
            via: c.via,
            instance: &c.instance,
            actor: c.actor.as_deref(),
            agent: c.agent.as_deref(),
            credential: c.credential.as_deref(),
            service: c.service.as_deref(),
            method: c.method.as_deref(),
            target_host: c.target_host.as_deref(),
            path: c.path.as_deref(),
            status_code: c.status_code,
            denial_code: c.denial_code.as_deref(),
            latency_ms: c.latency_ms,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            detail_jcs: &c.detail_jcs,
        }
    }
}

/// Writes the encoding of `entry` into `sink` without building it first.
pub(super) fn encode_into(entry: &LedgerEntry, sink: &mut impl Sink) {
    encode_view(&entry.view(), sink);
}

/// Writes the encoding of the fields in `v` into `sink`.
pub(super) fn encode_view(v: &View<'_>, sink: &mut impl Sink) {
    sink.put(&[ENCODING_VERSION]);
    put_int(sink, Some(v.id));
    match v.ts.rfc3339_bytes() {
        Some(bytes) => put_str(sink, Some(std::str::from_utf8(&bytes).unwrap_or_default())),
        None => put_str(sink, Some(&v.ts.to_rfc3339())),
    }
    put_str(sink, Some(v.kind.as_str()));
    put_str(sink, v.outcome.map(|o| o.as_str()));
    put_str(sink, v.event.map(|e| e.as_str()));
    put_str(sink, v.request_id);
    put_str(sink, Some(v.via.as_str()));
    put_str(sink, Some(v.instance));
    put_str(sink, v.actor);
    put_str(sink, v.agent);
    put_str(sink, v.credential);
    put_str(sink, v.service);
    put_str(sink, v.method);
    put_str(sink, v.target_host);
    put_str(sink, v.path);
    put_int(sink, v.status_code.map(u64::from));
    put_str(sink, v.denial_code);
    put_int(sink, v.latency_ms);
    put_int(sink, v.bytes_in);
    put_int(sink, v.bytes_out);
    put_str(sink, Some(v.detail_jcs));
}

fn put_int(sink: &mut impl Sink, value: Option<u64>) {
    match value {
        None => sink.put(&[NULL]),
        Some(n) => {
            sink.put(&[PRESENT]);
            sink.put(&n.to_be_bytes());
        }
    }
}

fn put_str(sink: &mut impl Sink, value: Option<&str>) {
    match value {
        None => sink.put(&[NULL]),
        Some(text) => {
            // Every text field is bounded when the entry is built (the largest is `detail`, at
            // most MAX_DETAIL_BYTES), so the length always fits in four bytes.
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            sink.put(&[PRESENT]);
            sink.put(&len.to_be_bytes());
            sink.put(text.as_bytes());
        }
    }
}
