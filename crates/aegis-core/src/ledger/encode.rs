//! The frozen canonical byte encoding of an entry, version 1 (SPEC.md §15.2).
//!
//! `0x01`, then fields 1–21 in table order, each as `0x00` when null, otherwise `0x01` followed
//! by: 8 bytes big-endian for any integer (`status_code` included), a 4-byte big-endian length
//! and the UTF-8 bytes for a string (`ts` as RFC 3339, enums as their snake_case names), and
//! for `detail` its RFC 8785 serialisation encoded as a string. Every value carries its own
//! length, so the encoding is injective. Changing anything here needs a new version byte and
//! new test vectors (`tests/vectors/ledger_v1.json`).

use aws_lc_rs::digest;

use super::entry::LedgerEntry;

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

/// Where encoded bytes go: a buffer, or straight into a running digest.
pub(super) trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for digest::Context {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Writes the encoding of `entry` into `sink` without building it first.
pub(super) fn encode_into(entry: &LedgerEntry, sink: &mut impl Sink) {
    let c = &entry.content;
    sink.put(&[ENCODING_VERSION]);
    put_int(sink, Some(entry.id));
    put_str(sink, Some(&entry.ts.to_rfc3339()));
    put_str(sink, Some(c.kind.as_str()));
    put_str(sink, c.outcome.map(|o| o.as_str()));
    put_str(sink, c.event.map(|e| e.as_str()));
    put_str(sink, c.request_id.as_deref());
    put_str(sink, Some(c.via.as_str()));
    put_str(sink, Some(&c.instance));
    put_str(sink, c.actor.as_deref());
    put_str(sink, c.agent.as_deref());
    put_str(sink, c.credential.as_deref());
    put_str(sink, c.service.as_deref());
    put_str(sink, c.method.as_deref());
    put_str(sink, c.target_host.as_deref());
    put_str(sink, c.path.as_deref());
    put_int(sink, c.status_code.map(u64::from));
    put_str(sink, c.denial_code.as_deref());
    put_int(sink, c.latency_ms);
    put_int(sink, c.bytes_in);
    put_int(sink, c.bytes_out);
    put_str(sink, Some(&c.detail_jcs));
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
