//! Agents and their tokens (SPEC.md §11): the agent model, the `aegis_…` token format, the
//! SHA-256 token digest that is all the store keeps, and the canonical row encodings of agents
//! and grants covered by their row MACs (§6.5).
//!
//! Authenticating a presented token against a snapshot is `checks::agent`'s job; storing rows is
//! aegis-store's.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, random_bytes};
use crate::names::AgentName;
use crate::rate::Rate;
use crate::timestamp::Timestamp;

/// Every agent token starts with this prefix.
pub const TOKEN_PREFIX: &str = "aegis_";
/// Length of a token in characters: the prefix and 43 base64url characters.
pub const TOKEN_LEN: usize = 49;

/// A registered agent as stored (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Random id, never reused.
    pub id: uuid::Uuid,
    /// Unique name within the vault.
    pub name: AgentName,
    /// SHA-256 of the agent's current token.
    pub token_digest: TokenDigest,
    /// Per-agent rate across all credentials, when set.
    pub rate_limit: Option<Rate>,
    /// When the agent was added.
    pub created_at: Timestamp,
    /// When the token was last (re)generated.
    pub token_created_at: Timestamp,
}

/// A freshly generated agent token: shown once, then only its digest is kept.
pub struct AgentToken(SecretString);

/// `SHA-256(token)`: what the store keeps and the snapshot indexes agents by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl Agent {
    /// The canonical byte encoding covered by the agent's row MAC: version, kind, vault id, row
    /// id, name, token digest and rate limit, each length-prefixed.
    pub fn canonical_encoding(&self, vault_id: &uuid::Uuid) -> Vec<u8> {
        let rate = self.rate_limit.map(|r| r.to_string()).unwrap_or_default();
        encode(&[
            b"agent",
            vault_id.as_bytes(),
            self.id.as_bytes(),
            self.name.as_str().as_bytes(),
            self.token_digest.as_bytes(),
            rate.as_bytes(),
        ])
    }
}

/// The canonical byte encoding covered by a grant's row MAC: version, kind, vault id, agent id
/// and credential id.
pub fn grant_encoding(
    vault_id: &uuid::Uuid,
    agent: &uuid::Uuid,
    credential: &uuid::Uuid,
) -> Vec<u8> {
    encode(&[
        b"grant",
        vault_id.as_bytes(),
        agent.as_bytes(),
        credential.as_bytes(),
    ])
}

impl AgentToken {
    /// Draws a new token: `aegis_` and 32 random bytes in unpadded base64url.
    ///
    /// # Errors
    /// [`CryptoError::Random`] when the system generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random_bytes(bytes.as_mut())?;
        let mut text = String::with_capacity(TOKEN_LEN);
        text.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut text);
        Ok(Self(SecretString::from(text)))
    }

    /// The token's digest, as stored.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(self.0.expose_secret().as_bytes())
    }

    /// The token text, for the one place it is shown (printed once or written to a 0600 file).
    pub fn reveal_once(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentToken([REDACTED])")
    }
}

impl TokenDigest {
    /// SHA-256 of a presented or generated token.
    pub fn of(token: &[u8]) -> Self {
        let hash = digest::digest(&digest::SHA256, token);
        let mut out = [0u8; 32];
        out.copy_from_slice(hash.as_ref());
        Self(out)
    }

    /// A digest read back from the store.
    ///
    /// # Errors
    /// [`InvalidDigest`] when the slice is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, InvalidDigest> {
        bytes.try_into().map(Self).map_err(|_| InvalidDigest)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not a secret, but there is no reason to spread it through logs either.
        f.write_str("TokenDigest(..)")
    }
}

/// A stored token digest that is not 32 bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a token digest must be 32 bytes")]
pub struct InvalidDigest;

/// Whether `token` has the shape of an agent token (prefix, length, alphabet). Says nothing
/// about whether it is known.
pub fn is_well_formed(token: &[u8]) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(TOKEN_PREFIX.as_bytes())
        && token[TOKEN_PREFIX.len()..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Version byte of the agent and grant row encodings.
const ROW_ENCODING_VERSION: u8 = 1;

/// The length-prefixed row encoding under a row MAC (agents, grants, webhooks).
pub(crate) fn encode(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(ROW_ENCODING_VERSION);
    for field in fields {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape_and_differ() {
        let a = AgentToken::generate().expect("random");
        let b = AgentToken::generate().expect("random");
        assert_eq!(a.reveal_once().len(), TOKEN_LEN);
        assert!(a.reveal_once().starts_with("aegis_"));
        assert!(is_well_formed(a.reveal_once().as_bytes()));
        assert_ne!(a.reveal_once(), b.reveal_once());
        assert!(!a.digest().matches(&b.digest()));
        assert!(
            a.digest()
                .matches(&TokenDigest::of(a.reveal_once().as_bytes()))
        );
    }

    #[test]
    fn token_debug_output_is_redacted() {
        let token = AgentToken::generate().expect("random");
        let shown = format!("{token:?} {:?}", token.digest());
        assert!(!shown.contains(token.reveal_once()));
        assert!(!shown.contains(&hex::encode(token.digest().as_bytes())));
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        for bad in [
            &b""[..],
            b"aegis_",
            b"aegis_short",
            b"AEGIS_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"aegis_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=",
            b"aegis_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
        assert!(is_well_formed(
            b"aegis_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
    }

    #[test]
    fn row_encodings_bind_every_field() {
        let agent = Agent {
            id: uuid::Uuid::from_bytes([1; 16]),
            name: AgentName::parse("bot").expect("name"),
            token_digest: TokenDigest::of(b"t"),
            rate_limit: None,
            created_at: Timestamp::from_millis(0),
            token_created_at: Timestamp::from_millis(0),
        };
        let vault = uuid::Uuid::from_bytes([9; 16]);
        let base = agent.canonical_encoding(&vault);
        let mut renamed = agent.clone();
        renamed.name = AgentName::parse("bot2").expect("name");
        let mut retokened = agent.clone();
        retokened.token_digest = TokenDigest::of(b"u");
        assert_ne!(base, renamed.canonical_encoding(&vault));
        assert_ne!(base, retokened.canonical_encoding(&vault));
        assert_ne!(base, agent.canonical_encoding(&uuid::Uuid::nil()));
        let (a, c) = (
            uuid::Uuid::from_bytes([1; 16]),
            uuid::Uuid::from_bytes([2; 16]),
        );
        assert_ne!(
            grant_encoding(&vault, &a, &c),
            grant_encoding(&vault, &c, &a)
        );
    }
}
