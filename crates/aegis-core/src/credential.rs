//! The credential model of SPEC.md §7.1: metadata, its cross-field rules, and the canonical byte
//! encoding covered by the row MAC.
//!
//! The secret itself is not part of [`Credential`]: it travels separately as an encrypted
//! envelope (`crypto`) or, once decrypted, in zeroising containers held by the snapshot.

use std::fmt;

use crate::auth::{AuthType, InjectHeaderName, QueryParam};
use crate::domain::DomainList;
use crate::names::{CredentialName, ServiceName};
use crate::rate::Rate;
use crate::scopes::Scopes;
use crate::timestamp::Timestamp;

/// The largest secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Secrets shorter than this are excluded from exact-match detection (SPEC.md §7.1).
pub const MIN_DETECTABLE_SECRET_BYTES: usize = 8;
/// Version byte of the canonical row encoding.
const ROW_ENCODING_VERSION: u8 = 1;

/// How outbound request bodies are inspected for this credential (SPEC.md §14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectionMode {
    /// No inspection.
    Off,
    /// Findings are recorded, the request goes on.
    Warn,
    /// Findings refuse the request (the default).
    #[default]
    Block,
    /// Secrets refuse the request; PII is masked.
    Redact,
}

impl InspectionMode {
    /// Parses `off`, `warn`, `block` or `redact`.
    ///
    /// # Errors
    /// A message listing the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "off" => Ok(Self::Off),
            "warn" => Ok(Self::Warn),
            "block" => Ok(Self::Block),
            "redact" => Ok(Self::Redact),
            other => Err(format!(
                "invalid inspection mode '{other}': expected off, warn, block or redact"
            )),
        }
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Warn => "warn",
            Self::Block => "block",
            Self::Redact => "redact",
        }
    }
}

impl fmt::Display for InspectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A credential's metadata: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Random id, never reused; part of the AAD and the row MAC.
    pub id: uuid::Uuid,
    /// Unique name in the vault.
    pub name: CredentialName,
    /// Routing name (first path segment at the gate).
    pub service: ServiceName,
    /// Hosts this credential may be sent to.
    pub domains: DomainList,
    /// How the secret is injected.
    pub auth_type: AuthType,
    /// Header carrying the secret, for `header` auth only.
    pub header_name: Option<InjectHeaderName>,
    /// Query parameter carrying the secret, for `query` auth only.
    pub query_param: Option<QueryParam>,
    /// Methods this credential may be used with.
    pub scopes: Scopes,
    /// When the credential stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Limit shared by every agent using this credential.
    pub rate_limit: Option<Rate>,
    /// Outbound body inspection mode.
    pub body_inspection: InspectionMode,
    /// Whether `http://` allowlist entries are permitted.
    pub allow_http: bool,
    /// Whether upstream `Set-Cookie` headers reach the agent.
    pub pass_cookies: bool,
    /// When the credential was added.
    pub created_at: Timestamp,
    /// Last metadata or secret change.
    pub updated_at: Timestamp,
    /// Last secret rotation.
    pub rotated_at: Option<Timestamp>,
    /// End of the rotation grace period, while a previous secret is kept.
    pub previous_until: Option<Timestamp>,
}

/// Why a credential's fields do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialRuleError {
    /// `header` auth without `--header-name`.
    #[error("--header-name is required with --auth-type header")]
    HeaderNameMissing,
    /// `--header-name` with another auth type.
    #[error("--header-name is only valid with --auth-type header")]
    HeaderNameNotAllowed,
    /// `--query-param` with another auth type.
    #[error("--query-param is only valid with --auth-type query")]
    QueryParamNotAllowed,
    /// An `http://` entry on a credential without `allow_http`.
    #[error("--domains has an http:// entry; add --allow-http to permit plain HTTP")]
    HttpNotAllowed,
    /// An empty secret.
    #[error("the secret is empty")]
    SecretEmpty,
    /// A secret over 16 KiB.
    #[error("the secret is longer than 16 KiB")]
    SecretTooLong,
    /// A `basic` secret that is not `user:pass`.
    #[error("a basic-auth secret must have the form user:pass with a non-empty user")]
    BasicSecretShape,
}

impl Credential {
    /// Checks the rules that span several fields (auth type versus header name and query
    /// parameter, http entries versus `allow_http`).
    ///
    /// # Errors
    /// The first [`CredentialRuleError`] found.
    pub fn check_rules(&self) -> Result<(), CredentialRuleError> {
        match (self.auth_type, &self.header_name) {
            (AuthType::Header, None) => return Err(CredentialRuleError::HeaderNameMissing),
            (AuthType::Header, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(CredentialRuleError::HeaderNameNotAllowed),
        }
        if self.query_param.is_some() && self.auth_type != AuthType::Query {
            return Err(CredentialRuleError::QueryParamNotAllowed);
        }
        if !self.allow_http && self.domains.has_http() {
            return Err(CredentialRuleError::HttpNotAllowed);
        }
        Ok(())
    }

    /// Whether the credential has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The query parameter used for `query` auth (`key` unless set).
    pub fn effective_query_param(&self) -> &str {
        self.query_param.as_ref().map_or("key", QueryParam::as_str)
    }

    /// The canonical byte encoding covered by the row MAC: a version byte, then every
    /// security-relevant field, length-prefixed, in a fixed order, bound to the vault id.
    pub fn canonical_encoding(&self, vault_id: &uuid::Uuid) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(ROW_ENCODING_VERSION);
        let mut field = |bytes: &[u8]| {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        };
        field(b"credential");
        field(vault_id.as_bytes());
        field(self.id.as_bytes());
        field(self.name.as_str().as_bytes());
        field(self.service.as_str().as_bytes());
        field(self.domains.to_string().as_bytes());
        field(self.auth_type.to_string().as_bytes());
        field(
            self.header_name
                .as_ref()
                .map_or("", |h| h.as_str())
                .as_bytes(),
        );
        field(
            self.query_param
                .as_ref()
                .map_or("", |q| q.as_str())
                .as_bytes(),
        );
        field(self.scopes.to_string().as_bytes());
        field(
            &self
                .expires_at
                .map_or(i64::MIN, Timestamp::as_millis)
                .to_be_bytes(),
        );
        field(
            self.rate_limit
                .map(|r| r.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
        field(self.body_inspection.as_str().as_bytes());
        field(&[u8::from(self.allow_http), u8::from(self.pass_cookies)]);
        field(
            &self
                .previous_until
                .map_or(i64::MIN, Timestamp::as_millis)
                .to_be_bytes(),
        );
        out
    }
}

/// A credential lifetime from `--ttl`: whole days, 1 to 36 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TtlDays(u32);

impl TtlDays {
    /// The longest lifetime accepted (about a century).
    pub const MAX: u32 = 36_500;

    /// Parses a positive whole number of days.
    ///
    /// # Errors
    /// A message saying a whole number of days from 1 to 36500 was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "invalid TTL '{text}': expected a whole number of days from 1 to {}",
                Self::MAX
            )
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let days: u32 = text.parse().map_err(|_| err())?;
        if days == 0 || days > Self::MAX {
            return Err(err());
        }
        Ok(Self(days))
    }

    /// The number of days.
    pub fn days(self) -> u32 {
        self.0
    }

    /// The expiry instant counted from `now`.
    pub fn expires_from(self, now: Timestamp) -> Timestamp {
        now.plus_days(self.0)
    }
}

/// Checks a secret against the size rules and, for `basic` auth, the `user:pass` shape.
///
/// # Errors
/// [`CredentialRuleError::SecretEmpty`], [`CredentialRuleError::SecretTooLong`] or
/// [`CredentialRuleError::BasicSecretShape`]. The error never contains the secret.
pub fn check_secret(auth_type: AuthType, secret: &str) -> Result<(), CredentialRuleError> {
    if secret.is_empty() {
        return Err(CredentialRuleError::SecretEmpty);
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err(CredentialRuleError::SecretTooLong);
    }
    if auth_type == AuthType::Basic {
        match secret.split_once(':') {
            Some((user, _)) if !user.is_empty() => {}
            _ => return Err(CredentialRuleError::BasicSecretShape),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ttl_rejects_zero_negative_and_non_numbers() {
        for bad in [
            "0",
            "-1",
            "",
            "abc",
            "1.5",
            "7d",
            " 7",
            "36501",
            "99999999999",
        ] {
            assert!(TtlDays::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(TtlDays::parse("30").map(TtlDays::days), Ok(30));
    }

    #[test]
    fn basic_secrets_need_a_user() {
        assert!(check_secret(AuthType::Basic, "user:pass").is_ok());
        assert!(check_secret(AuthType::Basic, "user:").is_ok());
        assert_eq!(
            check_secret(AuthType::Basic, ":pass"),
            Err(CredentialRuleError::BasicSecretShape)
        );
        assert_eq!(
            check_secret(AuthType::Basic, "nocolon"),
            Err(CredentialRuleError::BasicSecretShape)
        );
        assert_eq!(
            check_secret(AuthType::Bearer, ""),
            Err(CredentialRuleError::SecretEmpty)
        );
        let long = "x".repeat(MAX_SECRET_BYTES + 1);
        assert_eq!(
            check_secret(AuthType::Bearer, &long),
            Err(CredentialRuleError::SecretTooLong)
        );
    }

    #[test]
    fn inspection_modes_round_trip() {
        for mode in [
            InspectionMode::Off,
            InspectionMode::Warn,
            InspectionMode::Block,
            InspectionMode::Redact,
        ] {
            assert_eq!(InspectionMode::parse(mode.as_str()), Ok(mode));
        }
        assert!(InspectionMode::parse("BLOCK").is_err());
    }

    proptest! {
        #[test]
        fn ttl_accepts_exactly_the_days_in_range(days in 0u64..100_000) {
            let parsed = TtlDays::parse(&days.to_string());
            prop_assert_eq!(parsed.is_ok(), (1..=u64::from(TtlDays::MAX)).contains(&days));
            if let Ok(ttl) = parsed {
                prop_assert_eq!(u64::from(ttl.days()), days);
            }
        }

        #[test]
        fn ttl_parser_never_panics(text in "\\PC{0,12}") {
            let _ = TtlDays::parse(&text);
        }
    }
}
