//! `TargetHost`: the value of an `X-Target-Host` header (SPEC §9.5), parsed and normalised
//! exactly like the hosts of allowlist entries.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::Host;
use super::host::{self, check_forbidden_chars, parse_host, split_host_port};
use crate::field_error::{FieldError, shown};

/// The host (and optional port) a request asks to reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetHost {
    host: Host,
    port: Option<u16>,
}

impl TargetHost {
    /// Parses `host` or `host:port`: at most 255 bytes, no scheme, userinfo, path, query,
    /// fragment, backslash, `%`, whitespace, control character, empty label or wildcard; IP
    /// literals as dotted quads or bracketed IPv6.
    ///
    /// # Errors
    /// [`FieldError::TargetHost`] naming the problem.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        Self::parse_inner(text).map_err(|problem| FieldError::TargetHost {
            found: shown(text),
            problem,
        })
    }

    /// The normalised host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port, when one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Builds a target from parts that are already valid.
    pub(super) fn from_parts(host: Host, port: Option<u16>) -> Self {
        Self { host, port }
    }

    fn parse_inner(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err(host::EMPTY);
        }
        if text.len() > MAX_TARGET_LEN {
            return Err(TOO_LONG);
        }
        if text.contains("://") {
            return Err(SCHEME);
        }
        check_forbidden_chars(text)?;
        if text.contains('*') {
            return Err(WILDCARD);
        }
        let (raw, port) = split_host_port(text)?;
        Ok(Self {
            host: parse_host(raw)?,
            port,
        })
    }
}

impl fmt::Display for TargetHost {
    /// The normalised `host[:port]`, IPv6 in brackets; it parses back to the same target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl FromStr for TargetHost {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl Serialize for TargetHost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The longest accepted header value, in bytes.
const MAX_TARGET_LEN: usize = 255;

const TOO_LONG: &str = "the value is longer than 255 bytes; send host or host:port only";
const SCHEME: &str = "a scheme is not allowed; send host or host:port only, such as \
                      api.example.com or api.example.com:8443";
const WILDCARD: &str = "'*' is not allowed in a target host; send the full host name";
