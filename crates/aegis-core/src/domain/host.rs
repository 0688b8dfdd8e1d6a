//! Hosts as they appear in allowlist entries and `X-Target-Host`: normalised host names, IPv4
//! dotted quads and bracketed IPv6 literals, plus the `host[:port]` split shared by both.
//!
//! Errors here are short problem texts; the caller wraps them in the `FieldError` variant of
//! the field being parsed.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::fmt;

use idna::AsciiDenyList;
use idna::uts46::{DnsLength, Hyphens, Uts46};

/// A host name normalised as in SPEC §7.2: IDNA (UTS #46) to ASCII, lowercase, one trailing
/// dot removed. Holds one or more non-empty labels of `a-z 0-9 - _`, at most 253 bytes in all,
/// and never ends in a numeric label (so it can never be mistaken for an IPv4 address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hostname(String);

/// The host of a target: a normalised name or a parsed IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name.
    Name(Hostname),
    /// An IPv4 address, written as a dotted quad.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, written in brackets.
    Ipv6(Ipv6Addr),
}

impl Hostname {
    /// The normalised name, such as `xn--bcher-kva.example`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels from left to right.
    pub fn labels(&self) -> std::str::Split<'_, char> {
        self.0.split('.')
    }

    /// How many labels the name has.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Whether the last labels of `self` are exactly the labels of `suffix` (whole labels, not
    /// a string suffix); a name ends with itself.
    pub fn ends_with_labels(&self, suffix: &Hostname) -> bool {
        let mut own = self.0.rsplit('.');
        suffix
            .0
            .rsplit('.')
            .all(|label| own.next().is_some_and(|mine| mine == label))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Host {
    /// The host as written in an authority: IPv6 addresses in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name.as_str()),
            Self::Ipv4(addr) => write!(f, "{addr}"),
            Self::Ipv6(addr) => write!(f, "[{addr}]"),
        }
    }
}

/// The host part of `host[:port]`, before it is interpreted.
pub(super) enum RawHost<'a> {
    /// The text between `[` and `]`.
    Bracketed(&'a str),
    /// Anything else: a name, a wildcard pattern or an IPv4 address.
    Plain(&'a str),
}

/// Rejects characters no host may contain, wherever it comes from: whitespace and control
/// characters, userinfo, path/query/fragment delimiters, backslashes and `%`.
pub(super) fn check_forbidden_chars(text: &str) -> Result<(), &'static str> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(WHITESPACE);
    }
    if text.contains('@') {
        return Err(USERINFO);
    }
    if text.contains(['/', '?', '#']) {
        return Err(PATH);
    }
    if text.contains('\\') {
        return Err(BACKSLASH);
    }
    if text.contains('%') {
        return Err(PERCENT);
    }
    Ok(())
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
pub(super) fn split_host_port(text: &str) -> Result<(RawHost<'_>, Option<u16>), &'static str> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(UNCLOSED_BRACKET)?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(after.strip_prefix(':').ok_or(AFTER_BRACKET)?)?),
        };
        return Ok((RawHost::Bracketed(inside), port));
    }
    match text.rsplit_once(':') {
        None => Ok((RawHost::Plain(text), None)),
        Some((host, _)) if host.contains(':') => Err(UNBRACKETED_IPV6),
        Some((host, port)) => Ok((RawHost::Plain(host), Some(parse_port(port)?))),
    }
}

/// Parses a host that is not a wildcard: a bracketed IPv6 literal, a dotted quad or a name.
pub(super) fn parse_host(raw: RawHost<'_>) -> Result<Host, &'static str> {
    match raw {
        RawHost::Bracketed(inside) => parse_ipv6(inside).map(Host::Ipv6),
        RawHost::Plain("") => Err(EMPTY),
        RawHost::Plain(text) if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            parse_dotted_quad(text)
                .map(Host::Ipv4)
                .ok_or(NOT_DOTTED_QUAD)
        }
        RawHost::Plain(text) => normalise_hostname(text).map(Host::Name),
    }
}

/// Parses the inside of `[...]` as an IPv6 address.
pub(super) fn parse_ipv6(text: &str) -> Result<Ipv6Addr, &'static str> {
    text.parse().map_err(|_| BAD_IPV6)
}

/// Normalises a host name: IDNA (UTS #46) to ASCII, lowercase, one trailing dot removed, then
/// checks labels, lengths and that the name does not end in a numeric label.
pub(super) fn normalise_hostname(text: &str) -> Result<Hostname, &'static str> {
    if text.is_empty() {
        return Err(EMPTY);
    }
    if text.contains('*') {
        return Err(MISPLACED_STAR);
    }
    let ascii = Uts46::new()
        .to_ascii(
            text.as_bytes(),
            HOST_DENY_LIST,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map_err(|_| BAD_IDNA)?;
    let mut name = ascii.to_ascii_lowercase();
    if name.ends_with('.') {
        name.pop();
    }
    if name.is_empty() {
        return Err(EMPTY);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NAME_TOO_LONG);
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err(EMPTY_LABEL);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(LABEL_TOO_LONG);
        }
        if !label.bytes().all(is_name_byte) {
            return Err(BAD_CHAR);
        }
        last = label;
    }
    if is_numeric_label(last) {
        return Err(NOT_DOTTED_QUAD);
    }
    Ok(Hostname(name))
}

/// Parses exactly four decimal numbers from 0 to 255 separated by dots, without leading zeros.
pub(super) fn parse_dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        let well_formed = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'));
        if !well_formed {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    match parts.next() {
        None => Some(Ipv4Addr::from(octets)),
        Some(_) => None,
    }
}

/// Parses a port: 1 to 65535 in decimal, without sign or leading zeros.
fn parse_port(text: &str) -> Result<u16, &'static str> {
    let well_formed = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    if !well_formed {
        return Err(BAD_PORT);
    }
    text.parse::<u16>().map_err(|_| BAD_PORT)
}

/// Whether a label reads as a number to URL parsers (decimal or `0x` hex), which would make the
/// whole host an IPv4 address in some non-dotted-quad form.
fn is_numeric_label(label: &str) -> bool {
    let all_digits = label.bytes().all(|b| b.is_ascii_digit());
    let hex = label
        .strip_prefix("0x")
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_hexdigit()));
    all_digits || hex
}

/// Bytes allowed in a normalised label.
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
}

/// ASCII that IDNA processing must refuse: space and controls, and every printable character
/// other than letters, digits, `-`, `.` and `_`.
const HOST_DENY_LIST: AsciiDenyList = AsciiDenyList::new(true, "!\"#$%&'()*+,/:;<=>?@[\\]^`{|}~");

/// The longest normalised name, in bytes, without the trailing dot.
const MAX_NAME_LEN: usize = 253;

/// The longest label, in bytes.
const MAX_LABEL_LEN: usize = 63;

pub(super) const EMPTY: &str = "the host is missing; expected a host such as api.example.com";
pub(super) const WHITESPACE: &str =
    "whitespace and control characters are not allowed; expected a host such as api.example.com";
pub(super) const USERINFO: &str =
    "userinfo ('@') is not allowed; expected a host such as api.example.com";
pub(super) const PATH: &str = "paths, queries and fragments ('/', '?', '#') are not allowed; \
                               expected a host such as api.example.com";
pub(super) const BACKSLASH: &str =
    "backslashes are not allowed; expected a host such as api.example.com";
pub(super) const PERCENT: &str = "'%' is not allowed; write the host without percent-encoding \
                                  and IPv6 addresses without a zone";
pub(super) const MISPLACED_STAR: &str = "'*' is only allowed as a whole first label: \
                                         *.example.com (one extra label) or **.example.com \
                                         (one or more)";
const UNCLOSED_BRACKET: &str = "'[' has no closing ']'; write IPv6 addresses like [2001:db8::1]";
const AFTER_BRACKET: &str = "only ':' and a port may follow the closing ']', as in [::1]:8443";
const UNBRACKETED_IPV6: &str = "IPv6 addresses must be written in brackets, such as [2001:db8::1]";
const BAD_PORT: &str = "the port must be a number from 1 to 65535 without leading zeros";
const BAD_IPV6: &str =
    "the text in brackets is not an IPv6 address; expected an address such as [2001:db8::1]";
const NOT_DOTTED_QUAD: &str = "this looks like an IPv4 address but is not a dotted quad; write \
                               four numbers from 0 to 255 without leading zeros, such as \
                               127.0.0.1";
const BAD_IDNA: &str = "the host is not a valid host name or internationalised domain name";
const NAME_TOO_LONG: &str = "the host name is longer than 253 characters";
const LABEL_TOO_LONG: &str = "a label of the host name is longer than 63 characters";
const EMPTY_LABEL: &str =
    "the host name has an empty label; expected dot-separated labels such as api.example.com";
const BAD_CHAR: &str =
    "the host name may hold only letters, digits, '-' and '_' in dot-separated labels";
