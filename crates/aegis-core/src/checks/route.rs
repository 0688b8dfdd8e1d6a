//! Step 1 of the pipeline: the request target (SPEC.md §9.4). Splits `/{service}/{path}?{query}`
//! and refuses every form that could make the forwarded path mean something else upstream.
//!
//! The forwarded path and query are slices of the target as received: no decoding, no
//! re-encoding. Decoding happens only on a copy, to look for dot segments.

use crate::denial::Denial;

/// The longest request target accepted (8 KiB).
pub const MAX_TARGET_BYTES: usize = 8 * 1024;

/// A parsed origin-form target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    /// The first path segment, in service-name syntax.
    pub service: &'a str,
    /// Everything after `/{service}` up to the query, `/` when nothing follows.
    pub path: &'a str,
    /// The raw query string without `?`, when present.
    pub query: Option<&'a str>,
}

impl Route<'_> {
    /// The path and query as they are forwarded.
    pub fn path_and_query(&self) -> String {
        match self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.to_owned(),
        }
    }
}

/// Checks the method and target and splits the route.
///
/// # Errors
/// [`Denial::UriTooLong`] over 8 KiB, otherwise [`Denial::BadRequest`] naming the rule.
pub fn parse_route<'a>(method: &str, target: &'a str) -> Result<Route<'a>, Denial> {
    if method.eq_ignore_ascii_case("CONNECT") || method.eq_ignore_ascii_case("TRACE") {
        return Err(Denial::bad_request(format!(
            "method {method} is not supported"
        )));
    }
    if target.len() > MAX_TARGET_BYTES {
        return Err(Denial::UriTooLong);
    }
    if !target.starts_with('/') {
        return Err(Denial::bad_request(
            "only origin-form request targets (/service/path) are accepted",
        ));
    }
    check_characters(target)?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if path.contains("//") {
        return Err(Denial::bad_request("path contains an empty segment (//)"));
    }
    for segment in path.split('/').skip(1) {
        if is_dot_segment(segment) {
            return Err(Denial::bad_request("path contains a dot segment"));
        }
    }
    let rest = &path[1..];
    let (service, forwarded) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if !is_service_syntax(service) {
        return Err(Denial::bad_request(
            "the first path segment is not a valid service name",
        ));
    }
    Ok(Route {
        service,
        path: forwarded,
        query,
    })
}

/// Whether the text is in service-name syntax (`[A-Za-z0-9][A-Za-z0-9_-]{0,63}`).
pub fn is_service_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// Refuses control characters, backslashes (raw or `%5C`), `%00` and malformed escapes.
fn check_characters(target: &str) -> Result<(), Denial> {
    let bytes = target.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x20 || b == 0x7f {
            return Err(Denial::bad_request(
                "request target contains a control character",
            ));
        }
        if b == b'\\' {
            return Err(Denial::bad_request("request target contains a backslash"));
        }
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(malformed_escape)?;
            let value = decode_hex_pair(hex[0], hex[1]).ok_or_else(malformed_escape)?;
            if value == 0 {
                return Err(Denial::bad_request("request target contains %00"));
            }
            if value == b'\\' {
                return Err(Denial::bad_request(
                    "request target contains an encoded backslash",
                ));
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    Ok(())
}

fn malformed_escape() -> Denial {
    Denial::bad_request("request target contains invalid percent-encoding")
}

/// A segment that, after one round of percent-decoding and ignoring anything from `;` on, is
/// `.` or `..`.
fn is_dot_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut decoded = [0u8; 3];
    let mut len = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = if bytes[i] == b'%' {
            let value = bytes
                .get(i + 1..i + 3)
                .and_then(|h| decode_hex_pair(h[0], h[1]))
                .unwrap_or(0);
            i += 3;
            value
        } else {
            i += 1;
            bytes[i - 1]
        };
        if b == b';' {
            break;
        }
        if len == decoded.len() {
            return false;
        }
        decoded[len] = b;
        len += 1;
    }
    matches!(&decoded[..len], b"." | b"..")
}

fn decode_hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    Some(digit(high)? << 4 | digit(low)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn route(target: &str) -> Result<Route<'_>, Denial> {
        parse_route("GET", target)
    }

    #[test]
    fn splits_service_path_and_query_byte_exact() {
        let r = route("/github/repos/a%2Fb/issues?state=open&x=%20").expect("valid");
        assert_eq!(r.service, "github");
        assert_eq!(r.path, "/repos/a%2Fb/issues");
        assert_eq!(r.query, Some("state=open&x=%20"));
        assert_eq!(r.path_and_query(), "/repos/a%2Fb/issues?state=open&x=%20");
        let bare = route("/slack").expect("valid");
        assert_eq!((bare.path, bare.query), ("/", None));
        let trailing = route("/slack/").expect("valid");
        assert_eq!(trailing.path, "/");
        assert_eq!(
            route("/slack?x=1").expect("valid").path_and_query(),
            "/?x=1"
        );
    }

    #[test]
    fn traversal_in_every_spelling_is_refused() {
        for target in [
            "/svc/../admin",
            "/svc/a/..",
            "/svc/./x",
            "/svc/a/%2e%2e/b",
            "/svc/a/%2E%2E/b",
            "/svc/a/.%2e/b",
            "/svc/a/..;x/b",
            "/svc/a/.;jsessionid=1/b",
            "/../svc/x",
            "/%2e%2e/svc",
        ] {
            assert_eq!(
                route(target).map_err(|d| d.code()),
                Err("bad_request"),
                "{target}"
            );
        }
        // Dots that are not whole segments are fine.
        assert!(route("/svc/a..b/.well-known/x.json").is_ok());
    }

    #[test]
    fn forbidden_characters_and_forms_are_refused() {
        for target in [
            "/svc/a\\b",
            "/svc/a%5Cb",
            "/svc/a%5cb",
            "/svc/a%00b",
            "/svc/a\u{0}b",
            "/svc/a\tb",
            "/svc/a%zzb",
            "/svc/a%4",
            "/svc//x",
            "//svc/x",
            "https://api.example.com/x",
            "api.example.com:443",
            "*",
            "/_bad/x",
            "/sv.c/x",
            "/",
        ] {
            assert_eq!(
                route(target).map_err(|d| d.code()),
                Err("bad_request"),
                "{target:?}"
            );
        }
        assert_eq!(
            parse_route("CONNECT", "/svc/x").map_err(|d| d.code()),
            Err("bad_request")
        );
        assert_eq!(
            parse_route("TRACE", "/svc/x").map_err(|d| d.code()),
            Err("bad_request")
        );
    }

    #[test]
    fn targets_over_8_kib_are_uri_too_long() {
        let long = format!("/svc/{}", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(route(&long), Err(Denial::UriTooLong));
    }

    proptest! {
        #[test]
        fn never_panics(target in "\\PC{0,64}") {
            let _ = route(&target);
        }

        #[test]
        fn accepted_paths_never_contain_a_dot_segment(segments in proptest::collection::vec("[a-z.%2eE;]{0,6}", 0..6)) {
            let target = format!("/svc/{}", segments.join("/"));
            if let Ok(r) = route(&target) {
                for segment in r.path.split('/') {
                    prop_assert!(!is_dot_segment(segment), "{target}");
                }
                prop_assert_eq!(format!("/svc{}", r.path), target.clone());
            }
        }
    }
}
