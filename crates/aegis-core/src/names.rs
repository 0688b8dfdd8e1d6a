//! Identifier newtypes parsed once at the edge: credential, vault, agent and service names.
//!
//! Credential, vault and agent names share `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`; service names
//! use `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$` and are case-sensitive, and anything starting with
//! `_` is reserved for Aegis (SPEC §7.1). Uniqueness within a vault is the store's job.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::field_error::{FieldError, NameKind, shown};

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses a name, accepting `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$` only.
            ///
            /// # Errors
            /// [`FieldError::Name`] when the text does not match.
            pub fn parse(text: &str) -> Result<Self, FieldError> {
                if is_valid_name(text, b".-_") {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(FieldError::Name {
                        kind: $kind,
                        found: shown(text),
                    })
                }
            }

            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = FieldError;

            fn from_str(text: &str) -> Result<Self, FieldError> {
                Self::parse(text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a credential, unique within its vault.
    CredentialName,
    NameKind::Credential
);

name_type!(
    /// The name of a vault (SPEC §8.1).
    VaultName,
    NameKind::Vault
);

name_type!(
    /// The name of a registered agent (SPEC §11).
    AgentName,
    NameKind::Agent
);

/// The routing name that selects credentials: the first path segment of a gate request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(String);

impl ServiceName {
    /// Parses a service name, accepting `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$` only.
    ///
    /// # Errors
    /// [`FieldError::ReservedServiceName`] for names starting with `_`,
    /// [`FieldError::ServiceName`] for anything else that does not match.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        if text.starts_with('_') {
            return Err(FieldError::ReservedServiceName { found: shown(text) });
        }
        if is_valid_name(text, b"-_") {
            Ok(Self(text.to_owned()))
        } else {
            Err(FieldError::ServiceName { found: shown(text) })
        }
    }

    /// The name as written; service names are case-sensitive.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ServiceName {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for ServiceName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Checks 1 to [`MAX_NAME_LEN`] bytes: an ASCII letter or digit, then letters, digits or `extra`.
fn is_valid_name(text: &str, extra: &[u8]) -> bool {
    let bytes = text.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= MAX_NAME_LEN
        && first.is_ascii_alphanumeric()
        && rest
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(b))
}

/// The longest name accepted, in bytes (all accepted characters are ASCII).
const MAX_NAME_LEN: usize = 64;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn credential_names_in_the_syntax_are_accepted() {
        for good in ["gh", "G", "0", "github-prod", "a.b_c-d", &"x".repeat(64)] {
            let name = CredentialName::parse(good);
            assert_eq!(name.map(|n| n.to_string()), Ok(good.to_owned()));
        }
    }

    #[test]
    fn credential_names_outside_the_syntax_are_rejected() {
        let long = "x".repeat(65);
        for bad in [
            "", "-a", ".a", "_a", "a b", "a/b", "a@b", "é", " a", "a\n", &long,
        ] {
            let err = CredentialName::parse(bad);
            assert!(
                matches!(
                    err,
                    Err(FieldError::Name {
                        kind: NameKind::Credential,
                        ..
                    })
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn vault_and_agent_names_follow_the_credential_rule() {
        assert!(VaultName::parse("team.prod-1").is_ok());
        assert!(AgentName::parse("triage_bot").is_ok());
        let err = VaultName::parse("-v");
        assert_eq!(err.map_err(|e| e.code()), Err("invalid_vault_name"));
        let err = AgentName::parse("");
        assert_eq!(err.map_err(|e| e.code()), Err("invalid_agent_name"));
    }

    #[test]
    fn service_names_are_case_sensitive_and_allow_underscores() {
        let upper = ServiceName::parse("GitHub_API");
        let lower = ServiceName::parse("github_api");
        assert!(upper.is_ok());
        assert!(lower.is_ok());
        assert_ne!(upper, lower);
    }

    #[test]
    fn service_names_with_a_dot_are_rejected() {
        let err = ServiceName::parse("api.github");
        assert_eq!(err.map_err(|e| e.code()), Err("invalid_service_name"));
    }

    #[test]
    fn service_names_starting_with_underscore_are_reserved() {
        for reserved in ["_aegis", "_", "_x"] {
            let err = ServiceName::parse(reserved);
            assert!(matches!(err, Err(FieldError::ReservedServiceName { .. })));
            let message = err.map_err(|e| e.to_string()).err().unwrap_or_default();
            assert!(
                message.contains("names starting with '_' are reserved"),
                "{message}"
            );
        }
    }

    #[test]
    fn names_serialize_as_plain_strings() {
        let name = ServiceName::parse("slack").map(|n| serialized(&n));
        assert_eq!(name, Ok("slack".to_owned()));
        let name = CredentialName::parse("gh.prod").map(|n| serialized(&n));
        assert_eq!(name, Ok("gh.prod".to_owned()));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = CredentialName::parse(&text);
            let _ = ServiceName::parse(&text);
        }

        #[test]
        fn valid_credential_names_roundtrip(text in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}") {
            let name = CredentialName::parse(&text);
            prop_assert_eq!(name.map(|n| n.to_string()), Ok(text));
        }

        #[test]
        fn valid_service_names_roundtrip(text in "[A-Za-z0-9][A-Za-z0-9_-]{0,63}") {
            let name = ServiceName::parse(&text);
            prop_assert_eq!(name.map(|n| n.as_str().to_owned()), Ok(text));
        }

        #[test]
        fn names_longer_than_64_bytes_are_rejected(text in "[a-z]{65,100}") {
            prop_assert!(CredentialName::parse(&text).is_err());
            prop_assert!(ServiceName::parse(&text).is_err());
        }
    }

    /// Serializes a value through serde's `fmt::Formatter` serializer.
    fn serialized<T: Serialize>(value: &T) -> String {
        struct Via<'a, T>(&'a T);
        impl<T: Serialize> fmt::Display for Via<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.serialize(f)
            }
        }
        Via(value).to_string()
    }
}
