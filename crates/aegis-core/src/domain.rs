//! Domain allowlists (SPEC §7.2) and target hosts (SPEC §9.5): parsing entries such as
//! `*.example.com`, `http://localhost:8080` or `[::1]:8443`, and matching a target against them.
//!
//! Host names are normalised (IDNA UTS #46 to ASCII, lowercase, one trailing dot removed) when
//! parsed, so matching compares whole labels of normalised names and never string suffixes. IP
//! literals only ever match an entry with the same parsed address. There are no regexes here,
//! and resolving or connecting to hosts is aegis-engine's job, not this module's.

mod host;
mod list;
mod target;

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::field_error::{FieldError, shown};

pub use self::host::{Host, Hostname};
pub use self::list::DomainList;
pub use self::target::TargetHost;

use self::host::{RawHost, check_forbidden_chars, normalise_hostname, parse_host, split_host_port};

/// One allowlist entry: `[https://|http://] host-part [:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainEntry {
    scheme: Scheme,
    pattern: HostPattern,
    port: Option<u16>,
}

/// The scheme requests to an entry's hosts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// TLS (the default when no scheme is written).
    #[default]
    Https,
    /// Plain HTTP; only on credentials with `--allow-http`.
    Http,
}

/// Which hosts an entry covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this name.
    Exact(Hostname),
    /// `*.suffix`: exactly one extra label in front of the suffix.
    OneLabel(Hostname),
    /// `**.suffix`: one or more extra labels in front of the suffix.
    ManyLabels(Hostname),
    /// Exactly this IPv4 address.
    Ipv4(core::net::Ipv4Addr),
    /// Exactly this IPv6 address.
    Ipv6(core::net::Ipv6Addr),
}

impl DomainEntry {
    /// Parses one allowlist entry and normalises its host.
    ///
    /// The scheme is `https://` (default) or `http://`, in any case; whether `http://` is
    /// permitted is decided by [`DomainList`], which knows about `--allow-http`.
    ///
    /// # Errors
    /// [`FieldError::DomainEntry`] naming the problem: empty input, whitespace or control
    /// characters, userinfo, a path, query or fragment, a backslash, `%`, another scheme, an
    /// empty label, a misplaced or bare `*`, a wildcard suffix of fewer than two labels, an
    /// IPv4 address not in dotted-quad form, an unbracketed or invalid IPv6 address, or a port
    /// outside 1..=65535.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        Self::parse_inner(text).map_err(|problem| FieldError::DomainEntry {
            found: shown(text),
            problem,
        })
    }

    /// The scheme requests to this entry use.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The hosts this entry covers.
    pub fn pattern(&self) -> &HostPattern {
        &self.pattern
    }

    /// The port as written, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The port requests to this entry use: the written one, else 443 (https) or 80 (http).
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// Whether the entry is a `*.` or `**.` pattern rather than one host.
    pub fn is_wildcard(&self) -> bool {
        matches!(
            self.pattern,
            HostPattern::OneLabel(_) | HostPattern::ManyLabels(_)
        )
    }

    /// The target this entry names when it is not a wildcard (the default target of §9.5).
    pub fn to_target(&self) -> Option<TargetHost> {
        let host = match &self.pattern {
            HostPattern::Exact(name) => Host::Name(name.clone()),
            HostPattern::Ipv4(addr) => Host::Ipv4(*addr),
            HostPattern::Ipv6(addr) => Host::Ipv6(*addr),
            HostPattern::OneLabel(_) | HostPattern::ManyLabels(_) => return None,
        };
        Some(TargetHost::from_parts(host, self.port))
    }

    /// Whether a target is covered: its host matches the pattern and its port, defaulting to
    /// this entry's scheme default when absent, equals [`Self::effective_port`].
    pub fn matches(&self, target: &TargetHost) -> bool {
        let port = target.port().unwrap_or(self.scheme.default_port());
        port == self.effective_port() && self.pattern.matches(target.host())
    }

    fn parse_inner(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err(host::EMPTY);
        }
        check_no_whitespace(text)?;
        let (scheme, rest) = split_scheme(text)?;
        check_forbidden_chars(rest)?;
        let (raw, port) = split_host_port(rest)?;
        let pattern = match raw {
            RawHost::Plain("*" | "**") => return Err(BARE_STAR),
            RawHost::Plain(plain) => {
                if let Some(suffix) = plain.strip_prefix("**.") {
                    HostPattern::ManyLabels(wildcard_suffix(suffix)?)
                } else if let Some(suffix) = plain.strip_prefix("*.") {
                    HostPattern::OneLabel(wildcard_suffix(suffix)?)
                } else if plain.contains('*') {
                    return Err(host::MISPLACED_STAR);
                } else {
                    HostPattern::from_host(parse_host(RawHost::Plain(plain))?)
                }
            }
            bracketed @ RawHost::Bracketed(_) => HostPattern::from_host(parse_host(bracketed)?),
        };
        Ok(Self {
            scheme,
            pattern,
            port,
        })
    }
}

impl fmt::Display for DomainEntry {
    /// The canonical form: `http://` only for plain-HTTP entries, the port only when written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme == Scheme::Http {
            f.write_str("http://")?;
        }
        write!(f, "{}", self.pattern)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl FromStr for DomainEntry {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl Serialize for DomainEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Scheme {
    /// 443 for https, 80 for http.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Https => 443,
            Self::Http => 80,
        }
    }

    /// `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HostPattern {
    /// Whether a host is covered, comparing whole labels; names never match IP patterns and
    /// addresses never match name patterns.
    pub fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Exact(pattern), Host::Name(name)) => pattern == name,
            (Self::OneLabel(suffix), Host::Name(name)) => {
                name.label_count() == suffix.label_count() + 1 && name.ends_with_labels(suffix)
            }
            (Self::ManyLabels(suffix), Host::Name(name)) => {
                name.label_count() > suffix.label_count() && name.ends_with_labels(suffix)
            }
            (Self::Ipv4(pattern), Host::Ipv4(addr)) => pattern == addr,
            (Self::Ipv6(pattern), Host::Ipv6(addr)) => pattern == addr,
            _ => false,
        }
    }

    fn from_host(host: Host) -> Self {
        match host {
            Host::Name(name) => Self::Exact(name),
            Host::Ipv4(addr) => Self::Ipv4(addr),
            Host::Ipv6(addr) => Self::Ipv6(addr),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => write!(f, "{name}"),
            Self::OneLabel(suffix) => write!(f, "*.{suffix}"),
            Self::ManyLabels(suffix) => write!(f, "**.{suffix}"),
            Self::Ipv4(addr) => write!(f, "{addr}"),
            Self::Ipv6(addr) => write!(f, "[{addr}]"),
        }
    }
}

/// Rejects whitespace and control characters before anything else looks at the text.
fn check_no_whitespace(text: &str) -> Result<(), &'static str> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(host::WHITESPACE)
    } else {
        Ok(())
    }
}

/// Splits off `https://` or `http://` (any case); any other `scheme://` is an error.
fn split_scheme(text: &str) -> Result<(Scheme, &str), &'static str> {
    for (prefix, scheme) in [("https://", Scheme::Https), ("http://", Scheme::Http)] {
        let split = (text.get(..prefix.len()), text.get(prefix.len()..));
        if let (Some(head), Some(rest)) = split
            && head.eq_ignore_ascii_case(prefix)
        {
            return Ok((scheme, rest));
        }
    }
    if text.contains("://") {
        return Err(OTHER_SCHEME);
    }
    Ok((Scheme::Https, text))
}

/// Normalises the suffix of a wildcard, which must be a name of at least two labels.
fn wildcard_suffix(suffix: &str) -> Result<Hostname, &'static str> {
    if suffix.is_empty() {
        return Err(SHORT_SUFFIX);
    }
    let name = normalise_hostname(suffix)?;
    if name.label_count() < 2 {
        return Err(SHORT_SUFFIX);
    }
    Ok(name)
}

const BARE_STAR: &str = "a bare '*' is not allowed; write *.example.com (one extra label) or **.example.com \
     (one or more)";
const SHORT_SUFFIX: &str =
    "a wildcard needs a suffix of at least two labels, such as *.example.com";
const OTHER_SCHEME: &str = "only https:// and http:// are allowed as a scheme";

#[cfg(test)]
mod tests;
