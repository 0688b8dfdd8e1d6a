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

/// Removes hop-by-hop headers and every header named in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes what the agent may not send upstream: credentials of its own, Aegis's control
/// headers, hop-by-hop headers and `Host` (the client sets it from the target).
pub(crate) fn strip_agent_headers(headers: &mut HeaderMap, credential: &Credential) {
    strip_hop_by_hop(headers);
    for name in [
        header::AUTHORIZATION,
        header::PROXY_AUTHORIZATION,
        header::HOST,
    ] {
        headers.remove(name);
    }
    headers.remove("x-api-key");
    headers.remove("x-target-host");
    if credential.scopes != aegis_core::scopes::Scopes::All {
        // An upstream that honours these would turn a read into a write behind the scope check.
        for name in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            headers.remove(name);
        }
    }
    if let Some(name) = &credential.header_name {
        headers.remove(name.as_str());
    }
    let aegis: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-aegis-"))
        .cloned()
        .collect();
    for name in aegis {
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
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }
}
