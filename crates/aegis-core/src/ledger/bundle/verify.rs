//! Offline verification of a bundle (SPEC.md §15.6): every check runs and every problem is
//! reported, so one look at the list says what was changed.
//!
//! The checks, in the order problems are listed: the bundle's shape and format; the public key
//! (against `--public-key` when given) and the manifest signature; the content digest; the
//! count and id range; entry order; each entry's hash from its own `prev_hash`; and, for a
//! contiguous bundle, that no id is missing, every `prev_hash` is the previous entry's hash, the
//! first entry starts at `chain.prev_hash` (the vault's genesis for entry 1) and the last ends
//! at `chain.head_hash`. Filtered bundles skip the contiguity checks.

use aws_lc_rs::digest;
use serde::Deserialize as _;
use serde_json::Value;

use super::{
    BUNDLE_FORMAT, BundleManifest, entry_digest_line, finish, manifest_message, parse_signature,
};
use crate::ledger::{LedgerEntry, chain_hash, genesis, key_id, verify_checkpoint};

/// One thing wrong with a bundle. The text is what `aegis ledger verify-bundle` prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleProblem {
    /// A top-level member is missing or has the wrong JSON type.
    #[error("bundle member {member} is missing or malformed")]
    Structure {
        /// `format`, `manifest`, `signature` or `entries`.
        member: &'static str,
    },
    /// The bundle has a top-level member a version-1 bundle does not have.
    #[error("bundle has an unexpected member {member:?}")]
    UnexpectedMember {
        /// Its name.
        member: String,
    },
    /// The format is not `aegis-ledger-bundle/1`; nothing else is checked then.
    #[error("unknown format {found:?}; expected aegis-ledger-bundle/1")]
    UnknownFormat {
        /// The format found.
        found: String,
    },
    /// The manifest lacks a member, has an extra one, or a member has the wrong type.
    #[error("manifest unreadable: {reason}")]
    ManifestUnreadable {
        /// What the JSON reader reported.
        reason: String,
    },
    /// A manifest member has the right type but not the right form (a hash that is not hex).
    #[error("manifest {field} is malformed")]
    ManifestField {
        /// The member, dotted for nested ones (`chain.head_hash`).
        field: &'static str,
    },
    /// The manifest's public key is not the one the user trusts.
    #[error("public key differs from --public-key")]
    PublicKeyDiffers,
    /// `key_id` is not the key id of `public_key`.
    #[error("manifest key_id does not match its public_key")]
    KeyIdMismatch,
    /// `signature` is not `ed25519:` and the base64url of 64 bytes.
    #[error("signature is not ed25519:<base64url of 64 bytes>")]
    SignatureUnreadable,
    /// The signature does not verify over the manifest under the key used.
    #[error("manifest signature invalid")]
    SignatureInvalid,
    /// The entries are not the ones the manifest's `content_digest` was computed over.
    #[error("content digest mismatch")]
    DigestMismatch,
    /// The manifest's `count` is not the number of entries.
    #[error("count mismatch: manifest {manifest}, entries {entries}")]
    CountMismatch {
        /// `count` in the manifest.
        manifest: u64,
        /// Entries in the bundle.
        entries: u64,
    },
    /// The lowest entry id is not the manifest's `first_id`.
    #[error("first_id mismatch: manifest {manifest}, entries {entries}")]
    FirstIdMismatch {
        /// `first_id` in the manifest.
        manifest: u64,
        /// Lowest id among the entries.
        entries: u64,
    },
    /// The highest entry id is not the manifest's `last_id`.
    #[error("last_id mismatch: manifest {manifest}, entries {entries}")]
    LastIdMismatch {
        /// `last_id` in the manifest.
        manifest: u64,
        /// Highest id among the entries.
        entries: u64,
    },
    /// `entries` is empty.
    #[error("the bundle holds no entries")]
    NoEntries,
    /// From this position on, entries are not in ascending id order.
    #[error("entry order changed at position {position}")]
    OrderChanged {
        /// 1-based position of the first entry out of place.
        position: usize,
    },
    /// Two entries carry the same id.
    #[error("entry {id} appears more than once")]
    DuplicateEntry {
        /// The repeated id.
        id: u64,
    },
    /// A contiguous bundle lacks the entries `first`..=`last`.
    #[error("missing entries {first}–{last}")]
    MissingEntries {
        /// First missing id.
        first: u64,
        /// Last missing id.
        last: u64,
    },
    /// An entry is not a well-formed ledger entry.
    #[error("{}: unreadable: {reason}", place(*.id, *.position))]
    EntryUnreadable {
        /// Its id, when that much could be read.
        id: Option<u64>,
        /// 1-based position in `entries`.
        position: usize,
        /// What the JSON reader reported.
        reason: String,
    },
    /// The entry's `hash` is not the hash of its content from its own `prev_hash`.
    #[error("entry {id} (position {position}): hash mismatch")]
    HashMismatch {
        /// The entry.
        id: u64,
        /// 1-based position in `entries`.
        position: usize,
    },
    /// In a contiguous bundle, the entry's `prev_hash` is not the previous entry's hash.
    #[error("entry {id} (position {position}): prev_hash mismatch")]
    PrevHashMismatch {
        /// The entry.
        id: u64,
        /// 1-based position in `entries`.
        position: usize,
    },
    /// In a contiguous bundle, the first entry's `prev_hash` is not `chain.prev_hash`.
    #[error("entry {id} (position 1): prev_hash differs from chain.prev_hash")]
    ChainStartMismatch {
        /// The first entry.
        id: u64,
    },
    /// In a contiguous bundle, entry 1 does not start at the vault's genesis value.
    #[error("entry 1 (position 1): prev_hash is not the genesis value of vault {vault_id}")]
    GenesisMismatch {
        /// The manifest's vault id.
        vault_id: uuid::Uuid,
    },
    /// In a contiguous bundle, the last entry's hash is not `chain.head_hash`.
    #[error("last entry hash differs from chain.head_hash")]
    ChainHeadMismatch,
}

/// What verification found: the manifest when it could be read, and every problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The manifest, when it was readable.
    pub manifest: Option<BundleManifest>,
    /// Number of entries in the bundle.
    pub entries: usize,
    /// Every problem found, in the order described in the module documentation.
    pub problems: Vec<BundleProblem>,
}

impl BundleReport {
    /// Whether the bundle passed every check.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.manifest.is_some()
    }
}

/// Checks a bundle parsed from its file. With `trusted_key` (the vault's key, obtained some
/// other way) the signature is checked under that key; without it under the embedded key, which
/// proves integrity but not origin.
pub fn verify_bundle(bundle: &Value, trusted_key: Option<&[u8; 32]>) -> BundleReport {
    let mut report = BundleReport {
        manifest: None,
        entries: 0,
        problems: Vec::new(),
    };
    let problems = &mut report.problems;
    let format = bundle.get("format").and_then(Value::as_str);
    let manifest_value = bundle.get("manifest").filter(|v| v.is_object());
    let signature = bundle.get("signature").and_then(Value::as_str);
    let entries = bundle.get("entries").and_then(Value::as_array);
    let shape = [
        ("format", format.is_some()),
        ("manifest", manifest_value.is_some()),
        ("signature", signature.is_some()),
        ("entries", entries.is_some()),
    ];
    for (member, present) in shape {
        if !present {
            problems.push(BundleProblem::Structure { member });
        }
    }
    if let Some(object) = bundle.as_object() {
        for name in object.keys() {
            if !TOP_LEVEL.contains(&name.as_str()) {
                problems.push(BundleProblem::UnexpectedMember {
                    member: name.chars().take(64).collect(),
                });
            }
        }
    }
    let (Some(format), Some(manifest_value), Some(signature), Some(entries)) =
        (format, manifest_value, signature, entries)
    else {
        return report;
    };
    if format != BUNDLE_FORMAT {
        problems.push(BundleProblem::UnknownFormat {
            found: format.chars().take(64).collect(),
        });
        return report;
    }
    report.entries = entries.len();

    let manifest = BundleManifest::from_value(manifest_value)
        .map_err(|problem| problems.push(problem))
        .ok();
    check_signature(
        manifest.as_ref(),
        manifest_value,
        signature,
        trusted_key,
        problems,
    );
    if let Some(m) = &manifest {
        check_counts(m, entries, problems);
    }
    if entries.is_empty() {
        problems.push(BundleProblem::NoEntries);
    }
    check_order(manifest.as_ref(), entries, problems);
    let parsed = check_entries(entries, problems);
    if let Some(m) = manifest.as_ref().filter(|m| m.contiguous) {
        check_links(m, &parsed, problems);
    }
    report.manifest = manifest;
    report
}

/// The key, then the signature over the manifest.
fn check_signature(
    manifest: Option<&BundleManifest>,
    manifest_value: &Value,
    signature: &str,
    trusted_key: Option<&[u8; 32]>,
    problems: &mut Vec<BundleProblem>,
) {
    let embedded = manifest.map(|m| m.public_key);
    if let (Some(trusted), Some(embedded)) = (trusted_key, embedded)
        && *trusted != embedded
    {
        problems.push(BundleProblem::PublicKeyDiffers);
    }
    if let Some(m) = manifest
        && m.key_id != key_id(&m.public_key)
    {
        problems.push(BundleProblem::KeyIdMismatch);
    }
    let Some(signature) = parse_signature(signature) else {
        problems.push(BundleProblem::SignatureUnreadable);
        return;
    };
    // Without a readable key there is nothing to check the signature with; the manifest
    // problem already says why.
    if let Some(key) = trusted_key.copied().or(embedded) {
        let message = manifest_message(manifest_value);
        if !verify_checkpoint(&key, message.as_bytes(), &signature) {
            problems.push(BundleProblem::SignatureInvalid);
        }
    }
}

/// The digest over the entries as found, then the count.
fn check_counts(manifest: &BundleManifest, entries: &[Value], problems: &mut Vec<BundleProblem>) {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for entry in entries {
        ctx.update(entry_digest_line(entry).as_bytes());
    }
    if finish(ctx) != manifest.content_digest {
        problems.push(BundleProblem::DigestMismatch);
    }
    let found = entries.len() as u64;
    if manifest.count != found {
        problems.push(BundleProblem::CountMismatch {
            manifest: manifest.count,
            entries: found,
        });
    }
}

/// Ids must ascend; for a contiguous bundle they must also leave no gap. Uses each entry's
/// `id` as written, so an entry that is otherwise unreadable still counts here.
fn check_order(
    manifest: Option<&BundleManifest>,
    entries: &[Value],
    problems: &mut Vec<BundleProblem>,
) {
    let ids: Vec<(usize, u64)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((i + 1, e.get("id")?.as_u64()?)))
        .collect();
    let mut sorted: Vec<u64> = ids.iter().map(|(_, id)| *id).collect();
    sorted.sort_unstable();
    if let Some(((position, _), _)) = ids.iter().zip(&sorted).find(|((_, id), s)| id != *s) {
        problems.push(BundleProblem::OrderChanged {
            position: *position,
        });
    }
    let mut repeated: Vec<u64> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    repeated.dedup();
    problems.extend(
        repeated
            .into_iter()
            .map(|id| BundleProblem::DuplicateEntry { id }),
    );
    let Some(manifest) = manifest else { return };
    if let (Some(&lowest), Some(&highest)) = (sorted.first(), sorted.last()) {
        if lowest != manifest.first_id {
            problems.push(BundleProblem::FirstIdMismatch {
                manifest: manifest.first_id,
                entries: lowest,
            });
        }
        if highest != manifest.last_id {
            problems.push(BundleProblem::LastIdMismatch {
                manifest: manifest.last_id,
                entries: highest,
            });
        }
    }
    if manifest.contiguous {
        for w in sorted.windows(2) {
            if w[1] > w[0] + 1 {
                problems.push(BundleProblem::MissingEntries {
                    first: w[0] + 1,
                    last: w[1] - 1,
                });
            }
        }
    }
}

/// Reads every entry and checks its hash from its own `prev_hash`; returns what was readable,
/// by position.
fn check_entries(entries: &[Value], problems: &mut Vec<BundleProblem>) -> Vec<Option<LedgerEntry>> {
    entries
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let position = i + 1;
            match LedgerEntry::deserialize(raw) {
                Ok(entry) => {
                    if chain_hash(entry.prev_hash(), &entry) != *entry.hash() {
                        problems.push(BundleProblem::HashMismatch {
                            id: entry.id(),
                            position,
                        });
                    }
                    Some(entry)
                }
                Err(err) => {
                    problems.push(BundleProblem::EntryUnreadable {
                        id: raw.get("id").and_then(Value::as_u64),
                        position,
                        reason: err.to_string().chars().take(MAX_REASON_CHARS).collect(),
                    });
                    None
                }
            }
        })
        .collect()
}

/// For a contiguous bundle: the links between neighbours and the two ends.
fn check_links(
    manifest: &BundleManifest,
    parsed: &[Option<LedgerEntry>],
    problems: &mut Vec<BundleProblem>,
) {
    if let Some(Some(first)) = parsed.first() {
        if *first.prev_hash() != manifest.chain_prev_hash {
            problems.push(BundleProblem::ChainStartMismatch { id: first.id() });
        }
        if first.id() == 1 && *first.prev_hash() != genesis(&manifest.vault_id) {
            problems.push(BundleProblem::GenesisMismatch {
                vault_id: manifest.vault_id,
            });
        }
    }
    for (i, pair) in parsed.windows(2).enumerate() {
        if let [Some(before), Some(entry)] = pair
            && entry.prev_hash() != before.hash()
        {
            problems.push(BundleProblem::PrevHashMismatch {
                id: entry.id(),
                position: i + 2,
            });
        }
    }
    if let Some(Some(last)) = parsed.last()
        && *last.hash() != manifest.chain_head_hash
    {
        problems.push(BundleProblem::ChainHeadMismatch);
    }
}

/// "entry 342 (position 242)", or "entry at position 242" when the id is unreadable.
fn place(id: Option<u64>, position: usize) -> String {
    match id {
        Some(id) => format!("entry {id} (position {position})"),
        None => format!("entry at position {position}"),
    }
}

/// The members of a version-1 bundle.
const TOP_LEVEL: [&str; 4] = ["format", "manifest", "signature", "entries"];
/// Longest JSON reader message kept in a problem.
const MAX_REASON_CHARS: usize = 160;
