//! Key material of a vault: the master key, Argon2id key derivation, HKDF subkeys, the key-check
//! value, credential secret envelopes (AES-256-GCM) and row MACs (HMAC-SHA256).
//!
//! Primitives come from aws-lc-rs and `argon2`; this module only composes them in the layout of
//! SPEC.md §6. Nothing here touches files or the clock; where key material is stored is the
//! store's business.

use std::fmt;

use aws_lc_rs::{aead, hkdf, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Length in bytes of a master key and of every derived key.
pub const KEY_LEN: usize = 32;
/// Version byte that opens every secret envelope.
pub const ENVELOPE_VERSION: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const CREDENTIAL_AAD_LABEL: &[u8] = b"aegis/v1/cred";
const WEBHOOK_AAD_LABEL: &[u8] = b"aegis/v1/webhook";

/// Why a key could not be parsed, derived or used. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The master key text is neither 43 base64url characters nor 64 hex characters.
    #[error("the master key must be 43 base64url characters or 64 hex characters")]
    MalformedMasterKey,
    /// The stored or configured Argon2id parameters are out of range.
    #[error("invalid key-derivation parameters: {0}")]
    KdfParams(String),
    /// Argon2id or HKDF refused to run.
    #[error("key derivation failed")]
    Derivation,
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A ciphertext did not authenticate: wrong key, wrong row, wrong field or tampered bytes.
    #[error("ciphertext failed authentication")]
    Decrypt,
    /// An envelope is too short or has an unknown version byte.
    #[error("ciphertext has an unknown layout")]
    Envelope,
    /// Encryption failed (only on absurd sizes).
    #[error("encryption failed")]
    Encrypt,
}

/// The 32-byte root secret of a vault; zeroised on drop, never printed.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// Draws a fresh master key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`CryptoError::Random`] when the system generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(bytes.as_mut()).map_err(|_| CryptoError::Random)?;
        Ok(Self(bytes))
    }

    /// Parses a key written as 43 characters of unpadded base64url or 64 hex characters;
    /// surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`CryptoError::MalformedMasterKey`], which never echoes the text.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode_to_slice(text, bytes.as_mut())
                .map_err(|_| CryptoError::MalformedMasterKey)?;
            return Ok(Self(bytes));
        }
        if text.len() == 43 {
            let decoded = Zeroizing::new(
                URL_SAFE_NO_PAD
                    .decode(text)
                    .map_err(|_| CryptoError::MalformedMasterKey)?,
            );
            if decoded.len() == KEY_LEN {
                bytes.copy_from_slice(&decoded);
                return Ok(Self(bytes));
            }
        }
        Err(CryptoError::MalformedMasterKey)
    }

    /// Builds a key from raw bytes (used by Shamir reconstruction and tests).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key as it is shown to the operator once: 43 characters of unpadded base64url.
    pub fn to_encoded(&self) -> SecretString {
        SecretString::from(URL_SAFE_NO_PAD.encode(self.0.as_ref()))
    }

    /// The raw bytes, for key derivation only.
    fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// Argon2id cost parameters, stored with each vault so later config changes don't lock it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB (at least 19456).
    pub memory_kib: u32,
    /// Number of passes (at least 2).
    pub iterations: u32,
    /// Lanes, 1 to 16.
    pub parallelism: u32,
}

impl KdfParams {
    /// The lowest memory cost accepted (OWASP's Argon2id floor).
    pub const MIN_MEMORY_KIB: u32 = 19_456;

    /// Checks the parameters against the ranges of SPEC.md §5.
    ///
    /// # Errors
    /// [`CryptoError::KdfParams`] naming the parameter that is out of range.
    pub fn validate(self) -> Result<Self, CryptoError> {
        if self.memory_kib < Self::MIN_MEMORY_KIB {
            return Err(CryptoError::KdfParams(format!(
                "memory_kib must be at least {}",
                Self::MIN_MEMORY_KIB
            )));
        }
        if self.iterations < 2 {
            return Err(CryptoError::KdfParams(
                "iterations must be at least 2".into(),
            ));
        }
        if !(1..=16).contains(&self.parallelism) {
            return Err(CryptoError::KdfParams(
                "parallelism must be from 1 to 16".into(),
            ));
        }
        Ok(self)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            memory_kib: 65_536,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// Which secret field of a credential an envelope belongs to; part of the AAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    /// The current secret.
    Secret,
    /// The secret kept during a rotation grace period.
    PreviousSecret,
}

impl SecretField {
    /// The field name bound into the AAD.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::PreviousSecret => "previous_secret",
        }
    }
}

/// The subkeys of one vault, derived once per process from the master key.
pub struct VaultKeys {
    vault_id: [u8; 16],
    credential: aead::LessSafeKey,
    row_integrity: hmac::Key,
    key_check: Zeroizing<[u8; KEY_LEN]>,
    ledger_signing: Zeroizing<[u8; KEY_LEN]>,
    webhook_secrets: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for VaultKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKeys([REDACTED])")
    }
}

impl VaultKeys {
    /// Runs Argon2id(master, salt, params) into the KEK and expands the per-purpose subkeys with
    /// HKDF-SHA256 (salt = vault id, info = `aegis/v1/<purpose>`). Costs ~100 ms of CPU at the
    /// default parameters: call it off async worker threads.
    ///
    /// # Errors
    /// [`CryptoError::KdfParams`] for out-of-range parameters, [`CryptoError::Derivation`] when
    /// the primitives refuse (e.g. a salt shorter than 8 bytes).
    pub fn derive(
        master: &MasterKey,
        salt: &[u8],
        params: KdfParams,
        vault_id: [u8; 16],
    ) -> Result<Self, CryptoError> {
        let params = params.validate()?;
        let argon_params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(master.as_bytes(), salt, kek.as_mut())
            .map_err(|_| CryptoError::Derivation)?;
        Self::from_kek(&kek, vault_id)
    }

    fn from_kek(kek: &[u8; KEY_LEN], vault_id: [u8; 16]) -> Result<Self, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &vault_id).extract(kek);
        let expand = |purpose: &str| -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
            let info = format!("aegis/v1/{purpose}");
            let info_parts = [info.as_bytes()];
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            prk.expand(&info_parts, SubkeyLen)
                .and_then(|okm| okm.fill(out.as_mut()))
                .map_err(|_| CryptoError::Derivation)?;
            Ok(out)
        };
        let credential_bytes = expand("credential-encryption")?;
        let credential = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, credential_bytes.as_ref())
                .map_err(|_| CryptoError::Derivation)?,
        );
        let row_bytes = expand("row-integrity")?;
        let row_integrity = hmac::Key::new(hmac::HMAC_SHA256, row_bytes.as_ref());
        Ok(Self {
            vault_id,
            credential,
            row_integrity,
            key_check: expand("key-check")?,
            ledger_signing: expand("ledger-signing")?,
            webhook_secrets: expand("webhook-secrets")?,
        })
    }

    /// The key-check value stored with the vault at creation.
    pub fn key_check_value(&self) -> [u8; KEY_LEN] {
        *self.key_check
    }

    /// Compares this key's check value with the stored one in constant time.
    pub fn matches_key_check(&self, stored: &[u8]) -> bool {
        stored.len() == KEY_LEN && bool::from(self.key_check.as_ref().ct_eq(stored))
    }

    /// Encrypts one secret field of one credential into a versioned envelope
    /// (`0x01 ‖ nonce ‖ ciphertext ‖ tag`) bound to this vault, the credential and the field.
    ///
    /// # Errors
    /// [`CryptoError::Random`] or [`CryptoError::Encrypt`].
    pub fn seal_secret(
        &self,
        credential_id: [u8; 16],
        field: SecretField,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_envelope(
            &self.credential,
            &self.credential_aad(credential_id, field),
            plaintext,
        )
    }

    /// Decrypts an envelope made by [`VaultKeys::seal_secret`] for the same credential and field.
    ///
    /// # Errors
    /// [`CryptoError::Envelope`] for a malformed blob, [`CryptoError::Decrypt`] when it does not
    /// authenticate (wrong key, copied from another row or field, or tampered).
    pub fn open_secret(
        &self,
        credential_id: [u8; 16],
        field: SecretField,
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_envelope(
            &self.credential,
            &self.credential_aad(credential_id, field),
            envelope,
        )
    }

    /// Encrypts a webhook's signing secret with the `webhook-secrets` subkey, bound to this
    /// vault and the webhook's id (AAD `"aegis/v1/webhook" ‖ vault id ‖ webhook id`).
    ///
    /// # Errors
    /// [`CryptoError::Random`], [`CryptoError::Encrypt`] or [`CryptoError::Derivation`].
    pub fn seal_webhook_secret(
        &self,
        webhook_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_envelope(
            &self.webhook_key()?,
            &self.webhook_aad(webhook_id),
            plaintext,
        )
    }

    /// Decrypts an envelope made by [`VaultKeys::seal_webhook_secret`] for the same webhook.
    ///
    /// # Errors
    /// [`CryptoError::Envelope`] for a malformed blob, [`CryptoError::Decrypt`] when it does not
    /// authenticate.
    pub fn open_webhook_secret(
        &self,
        webhook_id: &str,
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_envelope(
            &self.webhook_key()?,
            &self.webhook_aad(webhook_id),
            envelope,
        )
    }

    /// HMAC-SHA256 of a row's canonical encoding (which itself includes the vault and row ids).
    pub fn row_mac(&self, canonical: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.row_integrity, canonical);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Checks a stored row MAC in constant time.
    pub fn verify_row_mac(&self, canonical: &[u8], stored: &[u8]) -> bool {
        hmac::verify(&self.row_integrity, canonical, stored).is_ok()
    }

    /// The subkey that wraps the ledger signing key (used by the ledger).
    pub fn ledger_signing_key(&self) -> &[u8; KEY_LEN] {
        &self.ledger_signing
    }

    /// The subkey that encrypts webhook secrets at rest (used by webhooks).
    pub fn webhook_secrets_key(&self) -> &[u8; KEY_LEN] {
        &self.webhook_secrets
    }

    fn webhook_key(&self) -> Result<aead::LessSafeKey, CryptoError> {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, self.webhook_secrets.as_ref())
            .map_err(|_| CryptoError::Derivation)?;
        Ok(aead::LessSafeKey::new(unbound))
    }

    fn webhook_aad(&self, webhook_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(WEBHOOK_AAD_LABEL.len() + 16 + webhook_id.len());
        aad.extend_from_slice(WEBHOOK_AAD_LABEL);
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(webhook_id.as_bytes());
        aad
    }

    fn credential_aad(&self, credential_id: [u8; 16], field: SecretField) -> Vec<u8> {
        let mut aad = Vec::with_capacity(CREDENTIAL_AAD_LABEL.len() + 32 + 16);
        aad.extend_from_slice(CREDENTIAL_AAD_LABEL);
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(&credential_id);
        aad.extend_from_slice(field.as_str().as_bytes());
        aad
    }
}

/// Encrypts `plaintext` under `key` into `0x01 ‖ nonce ‖ ciphertext ‖ tag`, fresh nonce each time.
fn seal_envelope(
    key: &aead::LessSafeKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&nonce);
    let mut body = Zeroizing::new(plaintext.to_vec());
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(aad),
        &mut *body,
    )
    .map_err(|_| CryptoError::Encrypt)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens an envelope made by [`seal_envelope`] with the same key and AAD.
fn open_envelope(
    key: &aead::LessSafeKey,
    aad: &[u8],
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if envelope.len() < 1 + NONCE_LEN + TAG_LEN || envelope[0] != ENVELOPE_VERSION {
        return Err(CryptoError::Envelope);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&envelope[1..1 + NONCE_LEN]);
    let mut body = Zeroizing::new(envelope[1 + NONCE_LEN..].to_vec());
    let plain_len = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut body,
        )
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Errors
/// [`CryptoError::Random`] when the system generator fails.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    rand::fill(buf).map_err(|_| CryptoError::Random)
}

/// A random 16-byte identifier in UUID v4 form.
///
/// # Errors
/// [`CryptoError::Random`] when the system generator fails.
pub fn random_uuid() -> Result<uuid::Uuid, CryptoError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    bytes.zeroize();
    Ok(id)
}

/// HKDF output length marker for 32-byte subkeys.
struct SubkeyLen;

impl hkdf::KeyType for SubkeyLen {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// Cheapest parameters the validator accepts, to keep tests fast.
    const FAST: KdfParams = KdfParams {
        memory_kib: KdfParams::MIN_MEMORY_KIB,
        iterations: 2,
        parallelism: 1,
    };

    fn keys(master: &MasterKey, vault: [u8; 16]) -> VaultKeys {
        VaultKeys::derive(master, b"0123456789abcdef", FAST, vault).expect("derive")
    }

    #[test]
    fn master_key_round_trips_through_base64url_and_hex() {
        let key = MasterKey::generate().expect("random");
        let text = key.to_encoded();
        assert_eq!(text.expose_secret().len(), 43);
        let again = MasterKey::parse(&format!("  {}\n", text.expose_secret())).expect("parse");
        assert_eq!(again.as_bytes(), key.as_bytes());
        let hex_text = hex::encode(key.as_bytes());
        assert_eq!(
            MasterKey::parse(&hex_text).expect("hex").as_bytes(),
            key.as_bytes()
        );
    }

    #[test]
    fn malformed_master_keys_are_rejected_without_echo() {
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &"g".repeat(64),
            &"=".repeat(43),
        ] {
            let err = MasterKey::parse(bad).expect_err("must fail");
            assert_eq!(err, CryptoError::MalformedMasterKey);
        }
        assert_eq!(
            format!("{:?}", MasterKey::from_bytes([7; 32])),
            "MasterKey([REDACTED])"
        );
    }

    #[test]
    fn seal_then_open_returns_the_plaintext_and_nonces_differ() {
        let keys = keys(&MasterKey::from_bytes([1; 32]), [9; 16]);
        let a = keys
            .seal_secret([2; 16], SecretField::Secret, b"sk-live-123")
            .expect("seal");
        let b = keys
            .seal_secret([2; 16], SecretField::Secret, b"sk-live-123")
            .expect("seal");
        assert_ne!(a, b, "fresh nonce per encryption");
        assert_eq!(a[0], ENVELOPE_VERSION);
        let plain = keys
            .open_secret([2; 16], SecretField::Secret, &a)
            .expect("open");
        assert_eq!(plain.as_slice(), b"sk-live-123");
    }

    #[test]
    fn envelope_bound_to_row_field_and_vault() {
        let master = MasterKey::from_bytes([1; 32]);
        let keys_a = keys(&master, [9; 16]);
        let blob = keys_a
            .seal_secret([2; 16], SecretField::Secret, b"secret")
            .expect("seal");
        assert_eq!(
            keys_a
                .open_secret([3; 16], SecretField::Secret, &blob)
                .err(),
            Some(CryptoError::Decrypt)
        );
        assert_eq!(
            keys_a
                .open_secret([2; 16], SecretField::PreviousSecret, &blob)
                .err(),
            Some(CryptoError::Decrypt)
        );
        let keys_b = keys(&master, [8; 16]);
        assert_eq!(
            keys_b
                .open_secret([2; 16], SecretField::Secret, &blob)
                .err(),
            Some(CryptoError::Decrypt)
        );
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            keys_a
                .open_secret([2; 16], SecretField::Secret, &tampered)
                .err(),
            Some(CryptoError::Decrypt)
        );
    }

    #[test]
    fn webhook_secret_is_bound_to_its_webhook() {
        let keys = keys(&MasterKey::from_bytes([1; 32]), [9; 16]);
        let blob = keys
            .seal_webhook_secret("wh_abcdefghij", b"whsec_x")
            .expect("seal");
        let plain = keys
            .open_webhook_secret("wh_abcdefghij", &blob)
            .expect("open");
        assert_eq!(plain.as_slice(), b"whsec_x");
        assert_eq!(
            keys.open_webhook_secret("wh_bbcdefghij", &blob).err(),
            Some(CryptoError::Decrypt)
        );
        assert!(
            keys.open_secret([2; 16], SecretField::Secret, &blob)
                .is_err()
        );
    }

    #[test]
    fn wrong_master_key_fails_the_key_check() {
        let right = keys(&MasterKey::from_bytes([1; 32]), [9; 16]);
        let wrong = keys(&MasterKey::from_bytes([2; 32]), [9; 16]);
        let kcv = right.key_check_value();
        assert!(right.matches_key_check(&kcv));
        assert!(!wrong.matches_key_check(&kcv));
        assert!(!right.matches_key_check(&kcv[..31]));
    }

    #[test]
    fn row_mac_detects_any_change() {
        let keys = keys(&MasterKey::from_bytes([1; 32]), [9; 16]);
        let mac = keys.row_mac(b"row-encoding");
        assert!(keys.verify_row_mac(b"row-encoding", &mac));
        assert!(!keys.verify_row_mac(b"row-encodinG", &mac));
    }

    #[test]
    fn out_of_range_kdf_parameters_are_rejected() {
        let low_memory = KdfParams {
            memory_kib: 1024,
            ..FAST
        };
        assert!(matches!(
            low_memory.validate(),
            Err(CryptoError::KdfParams(_))
        ));
        let one_pass = KdfParams {
            iterations: 1,
            ..FAST
        };
        assert!(one_pass.validate().is_err());
        let many_lanes = KdfParams {
            parallelism: 17,
            ..FAST
        };
        assert!(many_lanes.validate().is_err());
    }
}
