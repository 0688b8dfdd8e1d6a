//! The vault's ledger signing key (SPEC.md §15.3): an Ed25519 key pair from a random 32-byte
//! seed, and the seed's at-rest envelope under the `ledger-signing` subkey.
//!
//! Envelope layout, version 1: `0x01 ‖ nonce (12) ‖ AES-256-GCM ciphertext of the seed (32) ‖
//! tag (16)`, with AAD `"aegis/v1/ledger-key" ‖ vault id (16 raw bytes)`, so an envelope copied
//! to another vault does not open. The subkey is `crypto::VaultKeys::ledger_signing_key()`.
//! Storing the envelope and the public key is the store's job.

use std::fmt;

use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{aead, rand, signature};
use zeroize::Zeroizing;

use super::checkpoint::key_id;

/// Version byte that opens a wrapped seed.
pub const SEED_ENVELOPE_VERSION: u8 = 0x01;

/// Why a signing key could not be made, wrapped or unwrapped. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerKeyError {
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The crypto library refused the seed or a key.
    #[error("the ledger signing key was rejected by the crypto library")]
    KeyRejected,
    /// Encryption of the seed failed.
    #[error("wrapping the ledger signing key failed")]
    Encrypt,
    /// The wrapped seed has the wrong length or an unknown version byte.
    #[error("the wrapped ledger signing key has an unknown layout")]
    Envelope,
    /// The wrapped seed did not authenticate: wrong master key, another vault's key, or tampered.
    #[error(
        "the wrapped ledger signing key failed authentication; is this the vault's master key?"
    )]
    Decrypt,
}

/// A vault's Ed25519 checkpoint key. The seed is zeroised on drop and never printed.
pub struct LedgerSigningKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    pair: signature::Ed25519KeyPair,
}

impl LedgerSigningKey {
    /// Generates a key from 32 fresh random bytes.
    ///
    /// # Errors
    /// [`LedgerKeyError::Random`] or [`LedgerKeyError::KeyRejected`].
    pub fn generate() -> Result<Self, LedgerKeyError> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rand::fill(seed.as_mut()).map_err(|_| LedgerKeyError::Random)?;
        Self::from_seed(seed)
    }

    /// Rebuilds the key from its seed (as returned by [`unwrap_seed`]).
    ///
    /// # Errors
    /// [`LedgerKeyError::KeyRejected`] if the crypto library refuses the seed.
    pub fn from_seed(seed: Zeroizing<[u8; SEED_LEN]>) -> Result<Self, LedgerKeyError> {
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| LedgerKeyError::KeyRejected)?;
        Ok(Self { seed, pair })
    }

    /// Unwraps a stored envelope and rebuilds the key.
    ///
    /// # Errors
    /// As [`unwrap_seed`] and [`LedgerSigningKey::from_seed`].
    pub fn unwrap(
        subkey: &[u8; 32],
        vault_id: &uuid::Uuid,
        envelope: &[u8],
    ) -> Result<Self, LedgerKeyError> {
        Self::from_seed(unwrap_seed(subkey, vault_id, envelope)?)
    }

    /// Wraps this key's seed for storage (see [`wrap_seed`]).
    ///
    /// # Errors
    /// As [`wrap_seed`].
    pub fn wrap(
        &self,
        subkey: &[u8; 32],
        vault_id: &uuid::Uuid,
    ) -> Result<Vec<u8>, LedgerKeyError> {
        wrap_seed(subkey, vault_id, &self.seed)
    }

    /// Signs `message` (a checkpoint message or a bundle manifest's JCS form).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    /// The 32-byte public key, stored in clear beside the chain.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }
}

impl fmt::Debug for LedgerSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerSigningKey")
            .field("key_id", &key_id(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// Encrypts a signing-key seed under the vault's `ledger-signing` subkey with a fresh random
/// nonce, in the layout described in the module documentation.
///
/// # Errors
/// [`LedgerKeyError::Random`] or [`LedgerKeyError::Encrypt`].
pub fn wrap_seed(
    subkey: &[u8; 32],
    vault_id: &uuid::Uuid,
    seed: &[u8; SEED_LEN],
) -> Result<Vec<u8>, LedgerKeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce).map_err(|_| LedgerKeyError::Random)?;
    let key = aead_key(subkey).map_err(|_| LedgerKeyError::Encrypt)?;
    let mut body = Zeroizing::new(seed.to_vec());
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(aad(vault_id)),
        &mut *body,
    )
    .map_err(|_| LedgerKeyError::Encrypt)?;
    let mut out = Vec::with_capacity(ENVELOPE_LEN);
    out.push(SEED_ENVELOPE_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts an envelope made by [`wrap_seed`] for the same vault.
///
/// # Errors
/// [`LedgerKeyError::Envelope`] for a malformed envelope, [`LedgerKeyError::Decrypt`] when it
/// does not authenticate.
pub fn unwrap_seed(
    subkey: &[u8; 32],
    vault_id: &uuid::Uuid,
    envelope: &[u8],
) -> Result<Zeroizing<[u8; SEED_LEN]>, LedgerKeyError> {
    if envelope.len() != ENVELOPE_LEN || envelope[0] != SEED_ENVELOPE_VERSION {
        return Err(LedgerKeyError::Envelope);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&envelope[1..1 + NONCE_LEN]);
    let key = aead_key(subkey).map_err(|_| LedgerKeyError::Decrypt)?;
    let mut body = Zeroizing::new(envelope[1 + NONCE_LEN..].to_vec());
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad(vault_id)),
            &mut body,
        )
        .map_err(|_| LedgerKeyError::Decrypt)?;
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    if plain.len() != SEED_LEN {
        return Err(LedgerKeyError::Envelope);
    }
    seed.copy_from_slice(plain);
    Ok(seed)
}

fn aead_key(subkey: &[u8; 32]) -> Result<aead::LessSafeKey, aws_lc_rs::error::Unspecified> {
    aead::UnboundKey::new(&aead::AES_256_GCM, subkey).map(aead::LessSafeKey::new)
}

fn aad(vault_id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEED_AAD_LABEL.len() + 16);
    aad.extend_from_slice(SEED_AAD_LABEL);
    aad.extend_from_slice(vault_id.as_bytes());
    aad
}

const SEED_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const ENVELOPE_LEN: usize = 1 + NONCE_LEN + SEED_LEN + TAG_LEN;
const SEED_AAD_LABEL: &[u8] = b"aegis/v1/ledger-key";
