//! Signed ledger bundles (SPEC.md §15.6): a self-contained export of entries with a manifest
//! signed by the vault's ledger key, which verifies offline with only the public key.
//!
//! A bundle is one JSON object `{"format", "manifest", "signature", "entries"}`:
//!
//! - `format` is [`BUNDLE_FORMAT`];
//! - `manifest` says where the entries come from and binds them: `content_digest` is SHA-256
//!   over each entry's RFC 8785 (JCS) serialisation followed by one `\n`, in order;
//! - `signature` is `ed25519:` and the unpadded base64url of an Ed25519 signature over the JCS
//!   serialisation of `manifest`;
//! - `entries` are the entries as [`LedgerEntry::to_json`] writes them.
//!
//! [`Bundle::build`] makes one from entries and a [`LedgerSigningKey`]; [`verify_bundle`]
//! checks one and lists every problem it finds. Reading the entries from the store, the clock
//! and writing the file are the caller's job: nothing here performs IO.

mod verify;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::{ChainError, chain_hash, genesis, verify_chain};
use super::checkpoint::{format_public_key, key_id, parse_public_key};
use super::entry::LedgerEntry;
use super::entry_serde::{parse_hash, parse_ts};
use super::jcs;
use super::signing_key::LedgerSigningKey;
use crate::timestamp::Timestamp;

pub use verify::{BundleProblem, BundleReport, verify_bundle};

/// The `format` member of every version-1 bundle.
pub const BUNDLE_FORMAT: &str = "aegis-ledger-bundle/1";

/// What an export selected; recorded in the manifest's `filters`.
///
/// `service`, `agent`, `since` and `until` are always written (null when unset); `blocked` and
/// `system` only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFilters {
    /// Only entries of this service.
    pub service: Option<String>,
    /// Only entries of this agent.
    pub agent: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries at or before this time.
    pub until: Option<Timestamp>,
    /// Only refused requests.
    pub blocked: bool,
    /// Only system events.
    pub system: bool,
}

impl BundleFilters {
    /// Whether nothing is filtered out, so the selection is a contiguous piece of the chain.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An entry id and its hash: the ledger's head when the bundle was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleHead {
    /// Id of the last entry in the ledger.
    pub id: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

/// Where a bundle's entries come from: everything in the manifest except what is computed
/// from the entries and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOrigin {
    /// The vault whose chain the entries belong to.
    pub vault_id: uuid::Uuid,
    /// That vault's name.
    pub vault_name: String,
    /// Whether the entries are an unbroken piece of the chain (no filter applied); then
    /// verification also checks every `prev_hash` link and the ends of the piece.
    pub contiguous: bool,
    /// What the export selected.
    pub filters: BundleFilters,
    /// The ledger's head when the entries were read.
    pub ledger_head: BundleHead,
    /// When the bundle was made (the caller reads the clock).
    pub created_at: Timestamp,
}

/// A bundle's manifest with every field parsed (SPEC.md §15.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleManifest {
    /// The vault whose chain the entries belong to.
    pub vault_id: uuid::Uuid,
    /// That vault's name.
    pub vault_name: String,
    /// Id of the first entry.
    pub first_id: u64,
    /// Id of the last entry.
    pub last_id: u64,
    /// Number of entries.
    pub count: u64,
    /// Whether the entries are an unbroken piece of the chain.
    pub contiguous: bool,
    /// What the export selected.
    pub filters: BundleFilters,
    /// SHA-256 over each entry's JCS serialisation followed by `\n`.
    pub content_digest: [u8; 32],
    /// The first entry's `prev_hash` (`chain.prev_hash`).
    pub chain_prev_hash: [u8; 32],
    /// The last entry's hash (`chain.head_hash`).
    pub chain_head_hash: [u8; 32],
    /// The ledger's head when the bundle was made.
    pub ledger_head: BundleHead,
    /// When the bundle was made.
    pub created_at: Timestamp,
    /// The Ed25519 key the manifest is signed with.
    pub public_key: [u8; 32],
    /// The key id of `public_key` (SPEC.md §15.3).
    pub key_id: String,
}

/// Why a bundle could not be built. The entries are checked before they are signed, so a
/// damaged ledger is never vouched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// There is nothing to put in the bundle.
    #[error("no ledger entries to put in the bundle")]
    Empty,
    /// An entry does not hash correctly, or a contiguous selection has a broken link.
    #[error("{0}")]
    Chain(#[from] ChainError),
}

impl BundleError {
    /// A stable, machine-readable code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "bundle_empty",
            Self::Chain(_) => "ledger_broken",
        }
    }
}

/// A signed bundle ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    manifest: BundleManifest,
    signature: [u8; 64],
    /// Each entry as compact JSON, fields in table order.
    entries: Vec<String>,
}

impl Bundle {
    /// Builds and signs a bundle of `entries` (in chain order).
    ///
    /// # Errors
    /// [`BundleError::Empty`] without entries; [`BundleError::Chain`] when an entry's hash does
    /// not match its content, ids do not increase, or (for a contiguous origin) the entries do
    /// not link up or entry 1 does not start at the vault's genesis.
    pub fn build(
        entries: &[LedgerEntry],
        origin: BundleOrigin,
        key: &LedgerSigningKey,
    ) -> Result<Self, BundleError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(BundleError::Empty);
        };
        check_entries(entries, &origin)?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut texts = Vec::with_capacity(entries.len());
        for entry in entries {
            ctx.update(entry_digest_line(&entry.to_json()).as_bytes());
            // LedgerEntry's Serialize writes the object of `to_json` (which is always an object)
            // field by field, so serialising it to a string cannot fail.
            texts.push(serde_json::to_string(entry).expect("an entry always serialises"));
        }
        let public_key = key.public_key();
        let manifest = BundleManifest {
            vault_id: origin.vault_id,
            vault_name: origin.vault_name,
            first_id: first.id(),
            last_id: last.id(),
            count: entries.len() as u64,
            contiguous: origin.contiguous,
            filters: origin.filters,
            content_digest: finish(ctx),
            chain_prev_hash: *first.prev_hash(),
            chain_head_hash: *last.hash(),
            ledger_head: origin.ledger_head,
            created_at: origin.created_at,
            public_key,
            key_id: key_id(&public_key),
        };
        let signature = key.sign(manifest_message(&manifest.to_value()).as_bytes());
        Ok(Self {
            manifest,
            signature,
            entries: texts,
        })
    }

    /// The signed manifest.
    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    /// `content_digest` as written in the manifest: `sha256:` and lowercase hex.
    pub fn content_digest_text(&self) -> String {
        format_digest(&self.manifest.content_digest)
    }

    /// The bundle file's text: one JSON object, with each entry on its own line so the file
    /// reads and diffs well.
    pub fn to_text(&self) -> String {
        let size: usize = self.entries.iter().map(|e| e.len() + 2).sum();
        let mut out = String::with_capacity(size + 2048);
        out.push_str("{\"format\":");
        out.push_str(&Value::from(BUNDLE_FORMAT).to_string());
        out.push_str(",\n\"manifest\":");
        out.push_str(&self.manifest.to_text());
        out.push_str(",\n\"signature\":");
        out.push_str(&Value::from(format_signature(&self.signature)).to_string());
        out.push_str(",\n\"entries\":[\n");
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(entry);
        }
        out.push_str("\n]}\n");
        out
    }
}

impl BundleManifest {
    /// The manifest as a JSON value (what the signature covers, in its JCS form).
    pub fn to_value(&self) -> Value {
        // serde_json::to_value fails only for maps with non-string keys; RawManifest is plain
        // structs of strings, numbers and booleans.
        serde_json::to_value(self.to_raw()).expect("a manifest always converts to JSON")
    }

    /// The manifest as compact JSON text, members in the order of SPEC.md §15.6.
    pub fn to_text(&self) -> String {
        // As for `to_value`: nothing in RawManifest can fail to serialise.
        serde_json::to_string(&self.to_raw()).expect("a manifest always serialises")
    }

    fn to_raw(&self) -> RawManifest {
        RawManifest {
            vault_id: self.vault_id.hyphenated().to_string(),
            vault_name: self.vault_name.clone(),
            first_id: self.first_id,
            last_id: self.last_id,
            count: self.count,
            contiguous: self.contiguous,
            filters: RawFilters {
                service: self.filters.service.clone(),
                agent: self.filters.agent.clone(),
                since: self.filters.since.map(Timestamp::to_rfc3339),
                until: self.filters.until.map(Timestamp::to_rfc3339),
                blocked: self.filters.blocked,
                system: self.filters.system,
            },
            content_digest: format_digest(&self.content_digest),
            chain: RawChain {
                prev_hash: hex::encode(self.chain_prev_hash),
                head_hash: hex::encode(self.chain_head_hash),
            },
            ledger_head: RawHead {
                id: self.ledger_head.id,
                hash: hex::encode(self.ledger_head.hash),
            },
            created_at: self.created_at.to_rfc3339(),
            public_key: format_public_key(&self.public_key),
            key_id: self.key_id.clone(),
        }
    }

    /// Reads a manifest as found in a bundle.
    ///
    /// # Errors
    /// A problem naming the member that is missing, unexpected or malformed.
    pub fn from_value(value: &Value) -> Result<Self, BundleProblem> {
        let raw =
            RawManifest::deserialize(value).map_err(|e| BundleProblem::ManifestUnreadable {
                reason: e.to_string(),
            })?;
        let field = |field: &'static str| BundleProblem::ManifestField { field };
        let time = |text: &str, name| parse_ts(text).map_err(|_| field(name));
        let hash = |text: &str, name| parse_hash(text, "hash").map_err(|_| field(name));
        Ok(Self {
            vault_id: uuid::Uuid::parse_str(&raw.vault_id).map_err(|_| field("vault_id"))?,
            vault_name: raw.vault_name,
            first_id: raw.first_id,
            last_id: raw.last_id,
            count: raw.count,
            contiguous: raw.contiguous,
            filters: BundleFilters {
                service: raw.filters.service,
                agent: raw.filters.agent,
                since: raw
                    .filters
                    .since
                    .map(|t| time(&t, "filters.since"))
                    .transpose()?,
                until: raw
                    .filters
                    .until
                    .map(|t| time(&t, "filters.until"))
                    .transpose()?,
                blocked: raw.filters.blocked,
                system: raw.filters.system,
            },
            content_digest: parse_digest(&raw.content_digest)
                .ok_or_else(|| field("content_digest"))?,
            chain_prev_hash: hash(&raw.chain.prev_hash, "chain.prev_hash")?,
            chain_head_hash: hash(&raw.chain.head_hash, "chain.head_hash")?,
            ledger_head: BundleHead {
                id: raw.ledger_head.id,
                hash: hash(&raw.ledger_head.hash, "ledger_head.hash")?,
            },
            created_at: time(&raw.created_at, "created_at")?,
            public_key: parse_public_key(&raw.public_key).ok_or_else(|| field("public_key"))?,
            key_id: raw.key_id,
        })
    }
}

/// A digest as manifests write it: `sha256:` and lowercase hex.
pub fn format_digest(digest: &[u8; 32]) -> String {
    format!("{DIGEST_PREFIX}{}", hex::encode(digest))
}

/// A signature as bundles write it: `ed25519:` and unpadded base64url.
pub fn format_signature(signature: &[u8; 64]) -> String {
    format!("{SIGNATURE_PREFIX}{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The line an entry contributes to `content_digest`: its JCS serialisation and `\n`.
fn entry_digest_line(entry: &Value) -> String {
    let mut line = jcs::serialize(entry);
    line.push('\n');
    line
}

/// The bytes the manifest signature covers.
fn manifest_message(manifest: &Value) -> String {
    jcs::serialize(manifest)
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex_text = text.strip_prefix(DIGEST_PREFIX)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    (hex::encode(out) == hex_text).then_some(out)
}

fn parse_signature(text: &str) -> Option<[u8; 64]> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.strip_prefix(SIGNATURE_PREFIX)?)
        .ok()?;
    bytes.try_into().ok()
}

/// Refuses to sign entries that do not verify: every hash must match its entry and ids must
/// increase; a contiguous selection must also link up and start at genesis when it holds
/// entry 1.
fn check_entries(entries: &[LedgerEntry], origin: &BundleOrigin) -> Result<(), ChainError> {
    if origin.contiguous {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.id() == 1 && *first.prev_hash() != genesis(&origin.vault_id) {
            return Err(ChainError::PrevHashMismatch { id: 1 });
        }
        verify_chain(entries.iter(), *first.prev_hash())?;
        return Ok(());
    }
    let mut previous: Option<u64> = None;
    for entry in entries {
        if chain_hash(entry.prev_hash(), entry) != *entry.hash() {
            return Err(ChainError::HashMismatch { id: entry.id() });
        }
        if let Some(before) = previous
            && entry.id() <= before
        {
            return Err(ChainError::IdOutOfSequence {
                id: entry.id(),
                expected: before + 1,
            });
        }
        previous = Some(entry.id());
    }
    Ok(())
}

fn finish(ctx: digest::Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The manifest exactly as it appears in JSON, members in SPEC order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    vault_id: String,
    vault_name: String,
    first_id: u64,
    last_id: u64,
    count: u64,
    contiguous: bool,
    filters: RawFilters,
    content_digest: String,
    chain: RawChain,
    ledger_head: RawHead,
    created_at: String,
    public_key: String,
    key_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilters {
    service: Option<String>,
    agent: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    blocked: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    system: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    prev_hash: String,
    head_hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    id: u64,
    hash: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

const DIGEST_PREFIX: &str = "sha256:";
const SIGNATURE_PREFIX: &str = "ed25519:";

#[cfg(test)]
mod tests;
