//! `FieldError`: why a value typed by a person or an agent (a flag, a config value, a header)
//! was refused by one of the parsers of this crate.
//!
//! Each variant has a stable snake_case [`FieldError::code`]. Messages quote the offending input
//! (names, hosts, rates: never secrets) with control characters escaped and long input cut
//! short, so a message is always one printable line.

use std::fmt;

/// A value that does not have the syntax its field requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A credential, vault or agent name outside `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
    #[error(
        "invalid {kind} '{found}': expected 1 to 64 characters from letters, digits, '.', '_' \
         and '-', starting with a letter or digit"
    )]
    Name {
        /// Which kind of name was being parsed.
        kind: NameKind,
        /// What was given (escaped and shortened).
        found: String,
    },
    /// A service name outside `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
    #[error(
        "invalid service name '{found}': expected 1 to 64 characters from letters, digits, '_' \
         and '-', starting with a letter or digit"
    )]
    ServiceName {
        /// What was given (escaped and shortened).
        found: String,
    },
    /// A service name starting with `_`, which is reserved for Aegis itself.
    #[error(
        "invalid service name '{found}': names starting with '_' are reserved for aegis; \
         start the name with a letter or digit"
    )]
    ReservedServiceName {
        /// What was given (escaped and shortened).
        found: String,
    },
    /// A rate that is not `N/sec`, `N/min`, `N/hour` or `N/day` with N in range.
    #[error(
        "invalid rate '{found}': expected N/sec, N/min, N/hour or N/day with N from 1 to 1000000"
    )]
    Rate {
        /// What was given (escaped and shortened).
        found: String,
    },
    /// A scope list that is empty or holds something other than `read`, `write` and `*`.
    #[error(
        "invalid scopes '{found}': expected a comma-separated list of read, write and *, \
         such as read or read,write"
    )]
    Scopes {
        /// What was given (escaped and shortened).
        found: String,
    },
    /// One domain allowlist entry (SPEC §7.2) is malformed.
    #[error("invalid domain entry '{found}': {problem}")]
    DomainEntry {
        /// What was given (escaped and shortened).
        found: String,
        /// What is wrong with it and what is expected instead.
        problem: &'static str,
    },
    /// A comma-separated domain list is empty, has an empty item or contradicts itself.
    #[error("invalid domain list '{found}': {problem}")]
    DomainList {
        /// What was given (escaped and shortened).
        found: String,
        /// What is wrong with it and what is expected instead.
        problem: &'static str,
    },
    /// An `http://` entry on a credential that does not allow plain HTTP.
    #[error(
        "domain entry '{found}' uses plain http, which needs --allow-http on the credential; \
         add --allow-http or write the entry without http://"
    )]
    HttpNotAllowed {
        /// The offending entry (escaped and shortened).
        found: String,
    },
    /// An `X-Target-Host` value (SPEC §9.5) is malformed.
    #[error("invalid target host '{found}': {problem}")]
    TargetHost {
        /// What was given (escaped and shortened).
        found: String,
        /// What is wrong with it and what is expected instead.
        problem: &'static str,
    },
    /// An auth type other than `bearer`, `header`, `basic` or `query`.
    #[error("invalid auth type '{found}': expected bearer, header, basic or query")]
    AuthType {
        /// What was given (escaped and shortened).
        found: String,
    },
    /// A `--header-name` that is not a header token or names a header Aegis controls.
    #[error("invalid header name '{found}': {problem}")]
    HeaderName {
        /// What was given (escaped and shortened).
        found: String,
        /// What is wrong with it and what is expected instead.
        problem: &'static str,
    },
    /// A `--query-param` that is empty, too long or not from the RFC 3986 unreserved set.
    #[error(
        "invalid query parameter '{found}': expected 1 to 64 characters from letters, digits, \
         '-', '.', '_' and '~'"
    )]
    QueryParam {
        /// What was given (escaped and shortened).
        found: String,
    },
}

impl FieldError {
    /// The stable, machine-readable code of this error; never renamed or reused.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Name { kind, .. } => match kind {
                NameKind::Credential => "invalid_credential_name",
                NameKind::Vault => "invalid_vault_name",
                NameKind::Agent => "invalid_agent_name",
            },
            Self::ServiceName { .. } => "invalid_service_name",
            Self::ReservedServiceName { .. } => "reserved_service_name",
            Self::Rate { .. } => "invalid_rate",
            Self::Scopes { .. } => "invalid_scopes",
            Self::DomainEntry { .. } => "invalid_domain_entry",
            Self::DomainList { .. } => "invalid_domain_list",
            Self::HttpNotAllowed { .. } => "http_not_allowed",
            Self::TargetHost { .. } => "invalid_target_host",
            Self::AuthType { .. } => "invalid_auth_type",
            Self::HeaderName { .. } => "invalid_header_name",
            Self::QueryParam { .. } => "invalid_query_param",
        }
    }
}

/// The kinds of names that share the credential-name syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// A credential name (SPEC §7.1).
    Credential,
    /// A vault name (SPEC §8.1).
    Vault,
    /// An agent name (SPEC §11).
    Agent,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Credential => "credential name",
            Self::Vault => "vault name",
            Self::Agent => "agent name",
        })
    }
}

/// Renders user input for an error message: control and non-space whitespace characters are
/// escaped, and anything past [`MAX_SHOWN_CHARS`] characters is replaced by `...`.
pub(crate) fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS + 8));
    for (index, c) in text.chars().enumerate() {
        if index == MAX_SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        if c == '\'' || c == '\\' || c.is_control() || (c.is_whitespace() && c != ' ') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// How many characters of user input an error message quotes before cutting it short.
const MAX_SHOWN_CHARS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_lowercase_and_name_what_is_expected() {
        let err = FieldError::Rate {
            found: shown("abc"),
        };
        assert_eq!(
            err.to_string(),
            "invalid rate 'abc': expected N/sec, N/min, N/hour or N/day with N from 1 to 1000000"
        );
        assert_eq!(err.code(), "invalid_rate");
    }

    #[test]
    fn name_errors_carry_a_code_per_kind() {
        let err = FieldError::Name {
            kind: NameKind::Agent,
            found: shown("-x"),
        };
        assert_eq!(err.code(), "invalid_agent_name");
        assert!(err.to_string().starts_with("invalid agent name '-x'"));
    }

    #[test]
    fn shown_input_escapes_control_characters_and_quotes() {
        assert_eq!(shown("a\nb\tc'd"), "a\\nb\\tc\\'d");
        assert_eq!(shown("a\u{0}b"), "a\\u{0}b");
        assert_eq!(shown("plain text"), "plain text");
    }

    #[test]
    fn shown_input_is_cut_short() {
        let long = "x".repeat(500);
        let text = shown(&long);
        assert_eq!(text.len(), MAX_SHOWN_CHARS + 3);
        assert!(text.ends_with("..."));
    }
}
