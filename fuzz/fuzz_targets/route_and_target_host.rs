//! Fuzzes the parsers that see attacker-controlled text first: the gate's request target
//! (`checks::route::parse_route`), `X-Target-Host` (`TargetHost::parse`) and allowlist entries
//! (`DomainEntry::parse`).
//!
//! The input is split at its first newline into a method and a target (both lossily decoded
//! from UTF-8); the whole input is also fed to the two host parsers. Invariants checked:
//!
//! - nothing panics;
//! - an accepted route has a service in service-name syntax that is the target's first
//!   segment, and a forwarded path that starts with `/`, never contains `//` and never has a
//!   dot segment (`.` or `..` after one round of percent-decoding, ignoring `;…`);
//! - an accepted `TargetHost` displays as text that parses back to an equal value, and that
//!   text is accepted as an exact allowlist entry that matches it;
//! - an accepted `DomainEntry` displays as text that parses back to an equal value, and a
//!   wildcard entry (`*.x.y` or `**.x.y`) never matches its own suffix host `x.y`, while
//!   `*.x.y` does match a host with exactly one more label.
#![no_main]

use std::borrow::Cow;

use aegis_core::checks::route::{self, is_service_syntax};
use aegis_core::domain::{DomainEntry, HostPattern, TargetHost};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_route(&text);
    check_target_host(&text);
    check_domain_entry(&text);
});

/// Route invariants for `METHOD\nTARGET` (or `GET` and the whole text without a newline).
fn check_route(text: &str) {
    let (method, target) = text.split_once('\n').unwrap_or(("GET", text));
    let Ok(route) = route::parse_route(method, target) else {
        return;
    };
    assert!(
        is_service_syntax(route.service),
        "service {:?}",
        route.service
    );
    assert!(
        target.starts_with(&format!("/{}", route.service)),
        "service {:?} is not the first segment of {target:?}",
        route.service
    );
    assert!(route.path.starts_with('/'), "path {:?}", route.path);
    assert!(!route.path.contains("//"), "path {:?} has //", route.path);
    for segment in route.path.split('/') {
        assert!(
            !is_dot_segment(segment),
            "path {:?} has dot segment {segment:?}",
            route.path
        );
    }
}

/// `TargetHost` round-trips through its display form.
fn check_target_host(text: &str) {
    let Ok(target) = TargetHost::parse(text) else {
        return;
    };
    let shown = target.to_string();
    let again = TargetHost::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} displayed as {shown:?}, which fails: {e}"));
    assert_eq!(again, target, "{text:?} displayed as {shown:?}");
    let entry = DomainEntry::parse(&shown)
        .unwrap_or_else(|e| panic!("target {shown:?} is not an allowlist entry: {e}"));
    assert!(
        entry.matches(&target),
        "entry {entry} does not match its own target {shown:?}"
    );
}

/// `DomainEntry` round-trips, and wildcards never match their own suffix.
fn check_domain_entry(text: &str) {
    let Ok(entry) = DomainEntry::parse(text) else {
        return;
    };
    let shown = entry.to_string();
    let again = DomainEntry::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} displayed as {shown:?}, which fails: {e}"));
    assert_eq!(again, entry, "{text:?} displayed as {shown:?}");
    let (suffix, one_label) = match entry.pattern() {
        HostPattern::OneLabel(suffix) => (suffix, true),
        HostPattern::ManyLabels(suffix) => (suffix, false),
        _ => return,
    };
    let port = entry.effective_port();
    for host in [format!("{suffix}"), format!("{suffix}:{port}")] {
        if let Ok(target) = TargetHost::parse(&host) {
            assert!(
                !entry.matches(&target),
                "wildcard {entry} matches its own suffix {host:?}"
            );
        }
    }
    if one_label && let Ok(child) = TargetHost::parse(&format!("a.{suffix}:{port}")) {
        assert!(entry.matches(&child), "{entry} does not match {child}");
    }
}

/// `.` or `..` after one round of percent-decoding, ignoring everything from `;` on: the rule
/// `parse_route` promises to enforce, restated independently here.
fn is_dot_segment(segment: &str) -> bool {
    let decoded = percent_decode_once(segment);
    let before_params = decoded.split(|&b| b == b';').next().unwrap_or(&[]);
    matches!(before_params, b"." | b"..")
}

fn percent_decode_once(text: &str) -> Cow<'_, [u8]> {
    if !text.contains('%') {
        return Cow::Borrowed(text.as_bytes());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(&[high, low]) = bytes.get(i + 1..i + 3)
            && let (Some(high), Some(low)) = (hex_digit(high), hex_digit(low))
        {
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
