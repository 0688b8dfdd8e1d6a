//! Checkpoints (SPEC.md §15.3): the message a vault's Ed25519 key signs over the chain head,
//! signature checks with only the public key, and how public keys are shown.
//!
//! The signing side is [`super::LedgerSigningKey`]; where checkpoints are stored and when they
//! are written is the store's business.

use aws_lc_rs::{digest, signature};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::jcs;
use crate::timestamp::Timestamp;

/// The `type` member of every version-1 checkpoint message.
pub const CHECKPOINT_TYPE: &str = "aegis-checkpoint/1";

/// The bytes a checkpoint signs: the JCS serialisation of
/// `{"type":"aegis-checkpoint/1","vault_id":<uuid>,"entry_id":<n>,"hash":<hex>,"ts":<rfc3339>}`
/// (the vault id hyphenated lowercase, the hash lowercase hex).
///
/// `entry_id` is a JSON number, so ids beyond 2^53 would be rounded (RFC 8785); no chain gets
/// near that.
pub fn checkpoint_message(
    vault_id: &uuid::Uuid,
    entry_id: u64,
    hash: &[u8; 32],
    ts: Timestamp,
) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("type".to_owned(), Value::from(CHECKPOINT_TYPE));
    object.insert(
        "vault_id".to_owned(),
        Value::from(vault_id.hyphenated().to_string()),
    );
    object.insert("entry_id".to_owned(), Value::from(entry_id));
    object.insert("hash".to_owned(), Value::from(hex::encode(hash)));
    object.insert("ts".to_owned(), Value::from(ts.to_rfc3339()));
    jcs::serialize_object(&object).into_bytes()
}

/// Whether `signature` is a valid Ed25519 signature of `message` under `public_key`.
pub fn verify_checkpoint(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// A public key as `aegis ledger pubkey` prints it: `ed25519:` and unpadded base64url.
pub fn format_public_key(public_key: &[u8; 32]) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(public_key))
}

/// Reads a key printed by [`format_public_key`]; `None` unless it is `ed25519:` followed by
/// the unpadded base64url of exactly 32 bytes.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let encoded = text.trim().strip_prefix(PUBLIC_KEY_PREFIX)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    bytes.try_into().ok()
}

/// The key id shown beside a public key: the first 8 bytes of its SHA-256, as hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let hash = digest::digest(&digest::SHA256, public_key);
    hex::encode(&hash.as_ref()[..8])
}

const PUBLIC_KEY_PREFIX: &str = "ed25519:";
