//! Entries as JSON (SPEC.md §15.5–§15.6): all 23 fields in table order, hashes as lowercase
//! hex, `ts` as RFC 3339, enums by name, nulls written out.
//!
//! Reading JSON back goes through the same setters as building an entry, so an entry that was
//! altered to carry a query string or an oversize field is normalised and then fails its hash
//! check instead of being accepted as written.

use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::entry::{EntryContent, LedgerEntry};
use super::kinds::{EntryKind, Outcome, SystemEvent, Via};
use crate::timestamp::Timestamp;

/// The names of the 23 fields of §15.1 in table order (the CSV header).
pub const FIELD_NAMES: [&str; 23] = [
    "id",
    "ts",
    "kind",
    "outcome",
    "event",
    "request_id",
    "via",
    "instance",
    "actor",
    "agent",
    "credential",
    "service",
    "method",
    "target_host",
    "path",
    "status_code",
    "denial_code",
    "latency_ms",
    "bytes_in",
    "bytes_out",
    "detail",
    "prev_hash",
    "hash",
];

/// Why a JSON entry could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryParseError {
    /// `ts` is not an RFC 3339 UTC time with milliseconds as the ledger writes it.
    #[error("ts {found:?} is not a ledger time like 2026-03-01T09:30:00.125Z")]
    Timestamp {
        /// The text found.
        found: String,
    },
    /// `prev_hash` or `hash` is not 64 hex characters.
    #[error("{field} is not 64 hex characters")]
    Hash {
        /// `prev_hash` or `hash`.
        field: &'static str,
    },
}

impl LedgerEntry {
    /// The entry as a JSON object with all 23 fields (for exports and bundle digests).
    pub fn to_json(&self) -> Value {
        let c = &self.content;
        let text = |v: Option<&str>| v.map_or(Value::Null, Value::from);
        let int = |v: Option<u64>| v.map_or(Value::Null, Value::from);
        let values: [Value; 23] = [
            Value::from(self.id),
            Value::from(self.ts.to_rfc3339()),
            Value::from(c.kind.as_str()),
            text(c.outcome.map(Outcome::as_str)),
            text(c.event.map(SystemEvent::as_str)),
            text(c.request_id.as_deref()),
            Value::from(c.via.as_str()),
            Value::from(c.instance.as_str()),
            text(c.actor.as_deref()),
            text(c.agent.as_deref()),
            text(c.credential.as_deref()),
            text(c.service.as_deref()),
            text(c.method.as_deref()),
            text(c.target_host.as_deref()),
            text(c.path.as_deref()),
            int(c.status_code.map(u64::from)),
            text(c.denial_code.as_deref()),
            int(c.latency_ms),
            int(c.bytes_in),
            int(c.bytes_out),
            Value::Object(c.detail.clone()),
            Value::from(hex::encode(self.prev_hash)),
            Value::from(hex::encode(self.hash)),
        ];
        let object: Map<String, Value> = FIELD_NAMES
            .iter()
            .map(|name| (*name).to_owned())
            .zip(values)
            .collect();
        Value::Object(object)
    }

    /// Reads an entry written by [`LedgerEntry::to_json`] (or its `Serialize` form) back,
    /// keeping the stored hashes; [`super::verify_chain`] then decides whether they hold.
    ///
    /// # Errors
    /// [`EntryParseError`] for a time or hash in the wrong format.
    fn from_raw(raw: RawEntry) -> Result<Self, EntryParseError> {
        let ts = parse_ts(&raw.ts)?;
        let prev_hash = parse_hash(&raw.prev_hash, "prev_hash")?;
        let hash = parse_hash(&raw.hash, "hash")?;
        let mut c = EntryContent::new(raw.kind, raw.via, raw.instance);
        c.outcome = raw.outcome;
        c.event = raw.event;
        if let Some(v) = raw.request_id {
            c = c.with_request_id(v);
        }
        if let Some(v) = raw.actor {
            c = c.with_actor(v);
        }
        if let Some(v) = raw.agent {
            c = c.with_agent(v);
        }
        if let Some(v) = raw.credential {
            c = c.with_credential(v);
        }
        if let Some(v) = raw.service {
            c = c.with_service(v);
        }
        if let Some(v) = raw.method {
            c = c.with_method(v);
        }
        if let Some(v) = raw.target_host {
            c = c.with_target_host(v);
        }
        if let Some(v) = raw.path {
            c = c.with_path(v.as_bytes());
        }
        if let Some(v) = raw.denial_code {
            c = c.with_denial_code(v);
        }
        c.status_code = raw.status_code;
        c.latency_ms = raw.latency_ms;
        c.bytes_in = raw.bytes_in;
        c.bytes_out = raw.bytes_out;
        let c = c.with_detail(raw.detail);
        Ok(Self::from_stored(raw.id, ts, c, prev_hash, hash))
    }
}

impl Serialize for LedgerEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Value::Object(object) = self.to_json() else {
            return Err(serde::ser::Error::custom("entry is not an object"));
        };
        let mut state = serializer.serialize_struct("LedgerEntry", FIELD_NAMES.len())?;
        for name in FIELD_NAMES {
            state.serialize_field(name, object.get(name).unwrap_or(&Value::Null))?;
        }
        state.end()
    }
}

impl<'de> Deserialize<'de> for LedgerEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEntry::deserialize(deserializer)?;
        Self::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// An entry exactly as it appears in JSON, before normalisation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: u64,
    ts: String,
    kind: EntryKind,
    outcome: Option<Outcome>,
    event: Option<SystemEvent>,
    request_id: Option<String>,
    via: Via,
    instance: String,
    actor: Option<String>,
    agent: Option<String>,
    credential: Option<String>,
    service: Option<String>,
    method: Option<String>,
    target_host: Option<String>,
    path: Option<String>,
    status_code: Option<u16>,
    denial_code: Option<String>,
    latency_ms: Option<u64>,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    detail: Map<String, Value>,
    prev_hash: String,
    hash: String,
}

/// Reads `ts` in exactly the form the writer produces (also used for bundle manifests).
pub(super) fn parse_ts(text: &str) -> Result<Timestamp, EntryParseError> {
    let bad = || EntryParseError::Timestamp {
        found: text.chars().take(64).collect(),
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
    let millis =
        i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).map_err(|_| bad())?;
    let ts = Timestamp::from_millis(millis);
    // Only the exact form the writer produces is accepted, so the hash covers what was read.
    if ts.to_rfc3339() == text {
        Ok(ts)
    } else {
        Err(bad())
    }
}

/// Reads a 64-character hex hash; `field` names it in the error.
pub(super) fn parse_hash(text: &str, field: &'static str) -> Result<[u8; 32], EntryParseError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| EntryParseError::Hash { field })?;
    Ok(out)
}
