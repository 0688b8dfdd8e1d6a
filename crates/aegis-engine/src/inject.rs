//! The outbound request head (SPEC.md §9.7): every header the agent may not steer is removed,
//! then the secret is injected the credential's way. The only module that exposes a secret to
//! build a request.

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use aegis_core::auth::AuthType;
use aegis_core::credential::Credential;

use crate::error::EngineError;

/// Headers that belong to one connection and are never forwarded, in either direction.
pub(crate) const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

/// Removes what the agent may not send upstream: credentials of its own, Aegis's control
/// headers, hop-by-hop headers and `Host` (the client sets it from the target).
pub(crate) fn strip_agent_headers(headers: &mut HeaderMap, credential: &Credential) {
    let scoped = credential.scopes != aegis_core::scopes::Scopes::All;
    let own = credential.header_name.as_ref().map(|name| name.as_str());
    strip(headers, |name| {
        let text = name.as_str();
        *name == header::AUTHORIZATION
            || *name == header::PROXY_AUTHORIZATION
            || *name == header::HOST
            || text == "x-api-key"
            || text == "x-target-host"
            || text.starts_with("x-aegis-")
            // An upstream that honours these would turn a read into a write behind the scope
            // check.
            || (scoped
                && matches!(
                    text,
                    "x-http-method-override" | "x-http-method" | "x-method-override"
                ))
            || own.is_some_and(|own| text.eq_ignore_ascii_case(own))
    });
}

/// Removes from an upstream's response what does not go back to the agent: hop-by-hop headers,
/// what would bind the gate's origin to the upstream's (`Alt-Svc`, HSTS, `Clear-Site-Data`) and,
/// unless the credential passes cookies, `Set-Cookie`.
pub(crate) fn strip_upstream_headers(headers: &mut HeaderMap, pass_cookies: bool) {
    strip(headers, |name| {
        *name == header::ALT_SVC
            || *name == header::STRICT_TRANSPORT_SECURITY
            || name.as_str() == "clear-site-data"
            || (!pass_cookies && *name == header::SET_COOKIE)
    });
}

/// Removes the hop-by-hop headers, every header named in `Connection` and those `also` picks,
/// in one pass over the names present (a request holds a handful; the lists to check are
/// longer).
fn strip(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(&name.as_str()) || listed.contains(name) || also(name))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Injects the secret into the headers (bearer, header, basic) or returns the rewritten path and
/// query (query auth).
///
/// # Errors
/// [`EngineError::MalformedSecret`] when the secret cannot be a header value.
pub(crate) fn inject(
    headers: &mut HeaderMap,
    path_and_query: &str,
    credential: &Credential,
    secret: &SecretString,
) -> Result<Option<String>, EngineError> {
    match credential.auth_type {
        AuthType::Bearer => {
            let text = Zeroizing::new(format!("Bearer {}", secret.expose_secret()));
            headers.insert(header::AUTHORIZATION, sensitive(&text)?);
            Ok(None)
        }
        AuthType::Header => {
            let name = credential
                .header_name
                .as_ref()
                .and_then(|h| HeaderName::from_bytes(h.as_str().as_bytes()).ok())
                .ok_or(EngineError::MalformedSecret)?;
            headers.insert(name, sensitive(secret.expose_secret())?);
            Ok(None)
        }
        AuthType::Basic => {
            let encoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(secret.expose_secret()),
            );
            let text = Zeroizing::new(format!("Basic {}", encoded.as_str()));
            headers.insert(header::AUTHORIZATION, sensitive(&text)?);
            Ok(None)
        }
        AuthType::Query => Ok(Some(with_query_secret(
            path_and_query,
            credential.effective_query_param(),
            secret,
        ))),
    }
}

/// Removes every parameter whose percent-decoded name equals `param`, then appends
/// `param=<secret percent-encoded>`; other parameters keep their bytes and order.
fn with_query_secret(path_and_query: &str, param: &str, secret: &SecretString) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut out = String::with_capacity(path_and_query.len() + param.len() + 64);
    out.push_str(path);
    out.push('?');
    if let Some(query) = query {
        for pair in query.split('&') {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            if percent_decode(name) == param.as_bytes() {
                continue;
            }
            if !pair.is_empty() {
                out.push_str(pair);
                out.push('&');
            }
        }
    }
    out.push_str(param);
    out.push('=');
    for b in secret.expose_secret().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(value) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    out
}

fn sensitive(text: &str) -> Result<HeaderValue, EngineError> {
    let mut value = HeaderValue::from_str(text).map_err(|_| EngineError::MalformedSecret)?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_injection_replaces_same_named_params_and_keeps_the_rest() {
        let secret = SecretString::from("s3cr&t/+=");
        assert_eq!(
            with_query_secret("/v1/x?a=1&key=agent&b=%20&k%65y=2", "key", &secret),
            "/v1/x?a=1&b=%20&key=s3cr%26t%2F%2B%3D"
        );
        assert_eq!(
            with_query_secret("/v1/x", "api_key", &secret),
            "/v1/x?api_key=s3cr%26t%2F%2B%3D"
        );
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip(&mut headers, |_| false);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    fn credential(scopes: &str, header_name: Option<&str>) -> Credential {
        use aegis_core::domain::DomainList;
        use aegis_core::names::{CredentialName, ServiceName};
        Credential {
            id: uuid::Uuid::from_bytes([7; 16]),
            name: CredentialName::parse("c").expect("name"),
            service: ServiceName::parse("s").expect("service"),
            domains: DomainList::parse("api.example.com", false).expect("domains"),
            auth_type: if header_name.is_some() {
                AuthType::Header
            } else {
                AuthType::Bearer
            },
            header_name: header_name
                .map(|name| aegis_core::auth::InjectHeaderName::parse(name).expect("header")),
            query_param: None,
            scopes: aegis_core::scopes::Scopes::parse(scopes).expect("scopes"),
            expires_at: None,
            rate_limit: None,
            body_inspection: aegis_core::credential::InspectionMode::Off,
            allow_http: false,
            pass_cookies: false,
            created_at: aegis_core::timestamp::Timestamp::from_millis(0),
            updated_at: aegis_core::timestamp::Timestamp::from_millis(0),
            rotated_at: None,
            previous_until: None,
        }
    }

    /// A header map of `pairs`, in order, repeated names appended.
    fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for &(name, value) in pairs {
            headers.append(name, HeaderValue::from_static(value));
        }
        headers
    }

    fn agent_headers() -> HeaderMap {
        header_map(&[
            ("host", "localhost:3100"),
            ("authorization", "Bearer agent"),
            ("proxy-authorization", "Basic x"),
            ("x-api-key", "agent"),
            ("x-target-host", "api.example.com"),
            ("x-aegis-credential", "c"),
            ("x-aegis-agent", "token"),
            ("x-http-method-override", "DELETE"),
            ("x-http-method", "DELETE"),
            ("x-method-override", "DELETE"),
            ("private-token", "agent"),
            ("connection", "x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("content-type", "application/json"),
            ("user-agent", "curl"),
            ("x-aegisless", "1"),
        ])
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn upstream_headers_lose_hop_by_hop_origin_bindings_and_cookies_unless_passed() {
        let upstream = || {
            header_map(&[
                ("alt-svc", "h3=\":443\""),
                ("strict-transport-security", "max-age=1"),
                ("clear-site-data", "\"*\""),
                ("set-cookie", "a=1"),
                ("transfer-encoding", "chunked"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("content-type", "application/json"),
                ("x-request-id", "r"),
            ])
        };
        let mut headers = upstream();
        strip_upstream_headers(&mut headers, false);
        assert_eq!(names(&headers), ["content-type", "x-request-id"]);
        let mut headers = upstream();
        strip_upstream_headers(&mut headers, true);
        assert_eq!(
            names(&headers),
            ["content-type", "set-cookie", "x-request-id"]
        );
    }

    #[test]
    fn agent_headers_are_stripped_in_one_pass_whatever_their_kind() {
        let mut headers = agent_headers();
        strip_agent_headers(&mut headers, &credential("read", Some("Private-Token")));
        assert_eq!(
            names(&headers),
            ["content-type", "user-agent", "x-aegisless"]
        );
        // Unscoped, a method override is the agent's business; another credential's header name
        // is an ordinary header.
        let mut headers = agent_headers();
        strip_agent_headers(&mut headers, &credential("*", None));
        assert_eq!(
            names(&headers),
            [
                "content-type",
                "private-token",
                "user-agent",
                "x-aegisless",
                "x-http-method",
                "x-http-method-override",
                "x-method-override",
            ]
        );
    }
}
