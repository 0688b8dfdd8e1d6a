//! How a credential is attached to the outbound request: the auth type, the header name for
//! `header` auth and the query parameter for `query` auth (SPEC §7.1, §9.7).
//!
//! Only the names are here; building the injected header or query string from the secret is
//! aegis-engine's job.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::field_error::{FieldError, shown};

/// The injection method of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthType {
    /// `Authorization: Bearer <secret>` (the default).
    #[default]
    Bearer,
    /// `<header_name>: <secret>`.
    Header,
    /// `Authorization: Basic <base64(user:pass)>`.
    Basic,
    /// `?<query_param>=<secret>` appended to the query string.
    Query,
}

/// The header a `header` credential is injected into: an RFC 9110 token that is not one of the
/// headers Aegis itself controls. Compared, hashed and ordered case-insensitively.
#[derive(Debug, Clone)]
pub struct InjectHeaderName(String);

/// The query parameter a `query` credential is injected as: 1 to 64 RFC 3986 unreserved
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryParam(String);

impl AuthType {
    /// Parses `bearer`, `header`, `basic` or `query` (lowercase only).
    ///
    /// # Errors
    /// [`FieldError::AuthType`] for anything else.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text {
            "bearer" => Ok(Self::Bearer),
            "header" => Ok(Self::Header),
            "basic" => Ok(Self::Basic),
            "query" => Ok(Self::Query),
            _ => Err(FieldError::AuthType { found: shown(text) }),
        }
    }

    /// The lowercase spelling used in flags, config and output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Header => "header",
            Self::Basic => "basic",
            Self::Query => "query",
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthType {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl Serialize for AuthType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl InjectHeaderName {
    /// Parses a `--header-name`: a header token of at most 256 bytes that is not `Host`,
    /// `Content-Length`, `Transfer-Encoding`, `Connection`, a hop-by-hop header (`Keep-Alive`,
    /// `TE`, `Trailer`, `Upgrade`, `Proxy-Connection`) or `X-Aegis-*`, in any case. `Cookie` is
    /// allowed.
    ///
    /// # Errors
    /// [`FieldError::HeaderName`] saying whether the token is malformed or reserved.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let err = |problem| FieldError::HeaderName {
            found: shown(text),
            problem,
        };
        if text.is_empty() || text.len() > MAX_HEADER_NAME_LEN {
            return Err(err(
                "expected 1 to 256 characters, such as X-Api-Key or Private-Token",
            ));
        }
        if !text.bytes().all(is_tchar) {
            return Err(err(
                "expected an http header token: letters, digits and !#$%&'*+-.^_`|~ only, \
                 such as X-Api-Key",
            ));
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with(AEGIS_PREFIX) {
            return Err(err(
                "X-Aegis-* headers are reserved for aegis; choose another header",
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(err(
                "this header is controlled by the http connection or by aegis and cannot carry \
                 a credential; choose another header",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The header name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for InjectHeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for InjectHeaderName {}

impl Hash for InjectHeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in self.0.bytes() {
            state.write_u8(byte.to_ascii_lowercase());
        }
        state.write_usize(self.0.len());
    }
}

impl PartialOrd for InjectHeaderName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InjectHeaderName {
    fn cmp(&self, other: &Self) -> Ordering {
        let left = self.0.bytes().map(|b| b.to_ascii_lowercase());
        let right = other.0.bytes().map(|b| b.to_ascii_lowercase());
        left.cmp(right)
    }
}

impl fmt::Display for InjectHeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InjectHeaderName {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl Serialize for InjectHeaderName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl QueryParam {
    /// Parses a `--query-param`: 1 to 64 characters from `A-Z a-z 0-9 - . _ ~`.
    ///
    /// # Errors
    /// [`FieldError::QueryParam`] when empty, too long or holding another character.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_QUERY_PARAM_LEN
            && text.bytes().all(is_unreserved);
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(FieldError::QueryParam { found: shown(text) })
        }
    }

    /// The parameter name, which needs no percent-encoding.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for QueryParam {
    /// `key`, the default of `--query-param`.
    fn default() -> Self {
        Self(DEFAULT_QUERY_PARAM.to_owned())
    }
}

impl fmt::Display for QueryParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for QueryParam {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl Serialize for QueryParam {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// RFC 3986 `unreserved`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

/// Headers a credential may never be injected into, lowercase (SPEC §7.1).
const RESERVED_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// The lowercase prefix of Aegis's own headers.
const AEGIS_PREFIX: &str = "x-aegis-";

/// The longest accepted header name, in bytes.
const MAX_HEADER_NAME_LEN: usize = 256;

/// The longest accepted query parameter name, in bytes.
const MAX_QUERY_PARAM_LEN: usize = 64;

/// The parameter used for `query` auth when none is given.
const DEFAULT_QUERY_PARAM: &str = "key";

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn auth_types_parse_lowercase_only() {
        for (text, auth) in [
            ("bearer", AuthType::Bearer),
            ("header", AuthType::Header),
            ("basic", AuthType::Basic),
            ("query", AuthType::Query),
        ] {
            assert_eq!(AuthType::parse(text), Ok(auth));
            assert_eq!(auth.to_string(), text);
        }
        for bad in ["", "Bearer", "BASIC", "oauth", " bearer"] {
            let err = AuthType::parse(bad).map_err(|e| e.code());
            assert_eq!(err, Err("invalid_auth_type"), "{bad:?}");
        }
        assert_eq!(AuthType::default(), AuthType::Bearer);
    }

    #[test]
    fn ordinary_header_names_are_accepted_as_written() {
        for good in [
            "X-Api-Key",
            "Private-Token",
            "Cookie",
            "cookie",
            "api_key",
            "X-Auth~1",
        ] {
            let name = InjectHeaderName::parse(good).map(|n| n.as_str().to_owned());
            assert_eq!(name, Ok(good.to_owned()));
        }
    }

    #[test]
    fn connection_and_framing_headers_are_rejected_in_any_case() {
        for bad in [
            "Host",
            "HOST",
            "Content-Length",
            "transfer-encoding",
            "Connection",
            "Keep-Alive",
            "TE",
            "te",
            "Trailer",
            "Upgrade",
            "Proxy-Connection",
        ] {
            let err = InjectHeaderName::parse(bad).map_err(|e| e.to_string());
            assert!(
                err.as_ref()
                    .is_err_and(|m| m.contains("cannot carry a credential")),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn aegis_headers_are_rejected_in_any_case() {
        for bad in ["X-Aegis-Agent", "x-aegis-token", "X-AEGIS-"] {
            let err = InjectHeaderName::parse(bad).map_err(|e| e.to_string());
            assert!(
                err.as_ref()
                    .is_err_and(|m| m.contains("reserved for aegis")),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn malformed_header_tokens_are_rejected() {
        let long = "X".repeat(257);
        for bad in [
            "", "X Api", "X-Api:", "X-Api\n", "é", "(x)", "a/b", "a\"b", &long,
        ] {
            let err = InjectHeaderName::parse(bad).map_err(|e| e.code());
            assert_eq!(err, Err("invalid_header_name"), "{bad:?}");
        }
    }

    #[test]
    fn header_names_compare_case_insensitively() {
        let upper = InjectHeaderName::parse("X-Api-Key");
        let lower = InjectHeaderName::parse("x-api-key");
        assert!(upper.is_ok());
        assert_eq!(upper, lower);
        let hash = |name: &InjectHeaderName| {
            let mut hasher = DefaultHasher::new();
            name.hash(&mut hasher);
            hasher.finish()
        };
        if let (Ok(upper), Ok(lower)) = (&upper, &lower) {
            assert_eq!(hash(upper), hash(lower));
            assert_eq!(upper.cmp(lower), Ordering::Equal);
        }
    }

    #[test]
    fn query_params_use_the_unreserved_set() {
        for good in ["key", "api_key", "access-token", "a.b~c", &"k".repeat(64)] {
            let param = QueryParam::parse(good).map(|p| p.to_string());
            assert_eq!(param, Ok(good.to_owned()));
        }
        let long = "k".repeat(65);
        for bad in ["", "a b", "a=b", "a&b", "a%20", "a+b", "ключ", &long] {
            let err = QueryParam::parse(bad).map_err(|e| e.code());
            assert_eq!(err, Err("invalid_query_param"), "{bad:?}");
        }
        assert_eq!(QueryParam::default().as_str(), "key");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = AuthType::parse(&text);
            let _ = InjectHeaderName::parse(&text);
            let _ = QueryParam::parse(&text);
        }

        #[test]
        fn valid_header_tokens_roundtrip(text in "Y[A-Za-z0-9!#$%&'*+.^_`|~-]{0,60}") {
            let name = InjectHeaderName::parse(&text).map(|n| n.to_string());
            prop_assert_eq!(name, Ok(text));
        }

        #[test]
        fn accepted_header_names_are_never_reserved(text in "[A-Za-z-]{1,20}") {
            if let Ok(name) = InjectHeaderName::parse(&text) {
                let lower = name.as_str().to_ascii_lowercase();
                prop_assert!(!lower.starts_with("x-aegis-"));
                prop_assert!(!RESERVED_HEADERS.contains(&lower.as_str()));
            }
        }

        #[test]
        fn valid_query_params_roundtrip(text in "[A-Za-z0-9._~-]{1,64}") {
            let param = QueryParam::parse(&text).map(|p| p.to_string());
            prop_assert_eq!(param, Ok(text));
        }
    }
}
