//! `aegis_proxy_request`: the tool's arguments become the request the gate would have built
//! (SPEC.md §16.2), and the pipeline's response becomes the tool's result object.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Map, Value};

use aegis_core::denial::Denial;
use aegis_core::names::ServiceName;
use aegis_engine::ProxyBody;

use crate::identity::AgentIdentity;

/// A parsed `aegis_proxy_request` call.
#[derive(Debug)]
pub(crate) struct ProxyCall {
    service: ServiceName,
    path: String,
    method: http::Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Bytes>,
    target_host: Option<String>,
    credential: Option<String>,
}

impl ProxyCall {
    /// Reads the tool's arguments. Messages name the argument, never its value.
    pub(crate) fn parse(arguments: Option<&Map<String, Value>>) -> Result<Self, Denial> {
        let empty = Map::new();
        let args = arguments.unwrap_or(&empty);
        for key in args.keys() {
            if !KNOWN_ARGUMENTS.contains(&key.as_str()) {
                return Err(Denial::bad_request(format!(
                    "unknown argument {key}; aegis_proxy_request takes {}",
                    KNOWN_ARGUMENTS[..KNOWN_ARGUMENTS.len() - 1].join(", ")
                )));
            }
        }
        let service = required_string(args, "service")?;
        let service = ServiceName::parse(service).map_err(|_| {
            Denial::bad_request("service is not a valid service name (see aegis_list_services)")
        })?;
        let path = required_string(args, "path")?;
        if !path.starts_with('/') {
            return Err(Denial::bad_request("path must start with /"));
        }
        let method = match optional_string(args, "method")? {
            None => http::Method::GET,
            Some(text) => http::Method::from_bytes(text.to_ascii_uppercase().as_bytes())
                .map_err(|_| Denial::bad_request("method is not an HTTP method"))?,
        };
        let headers = match args.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => forwarded_headers(map)?,
            Some(_) => {
                return Err(Denial::bad_request(
                    "headers must be an object of string values",
                ));
            }
        };
        let body = match optional_string(args, "body")? {
            None => None,
            Some(text) => Some(match optional_string(args, "body_encoding")? {
                None | Some("utf8") => Bytes::copy_from_slice(text.as_bytes()),
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(Bytes::from)
                    .map_err(|_| Denial::bad_request("body is not valid base64"))?,
                Some(_) => {
                    return Err(Denial::bad_request("body_encoding must be utf8 or base64"));
                }
            }),
        };
        let target_host = match optional_string(args, "target_host")? {
            Some(host) => Some(host),
            None => optional_string(args, "targetHost")?,
        }
        .map(str::to_owned);
        let credential = optional_string(args, "credential")?.map(str::to_owned);
        Ok(Self {
            service,
            path: path.to_owned(),
            method,
            headers,
            body,
            target_host,
            credential,
        })
    }

    /// The request as the gate would hand it to the pipeline: `/{service}{path}`, the agent's
    /// headers, `X-Target-Host`, `X-Aegis-Credential` and the identity's `X-Aegis-Agent`.
    pub(crate) fn into_request(
        self,
        identity: &AgentIdentity,
    ) -> Result<http::Request<Full<Bytes>>, Denial> {
        let target = format!("/{}{}", self.service.as_str(), self.path);
        let uri: http::Uri = target
            .parse()
            .map_err(|_| Denial::bad_request("path is not a valid request target"))?;
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        if let Some(host) = self.target_host {
            let value = HeaderValue::from_str(&host)
                .map_err(|_| Denial::bad_request("target_host is not a valid host"))?;
            headers.insert("x-target-host", value);
        }
        if let Some(name) = self.credential {
            let value = HeaderValue::from_str(&name)
                .map_err(|_| Denial::bad_request("credential is not a valid credential name"))?;
            headers.insert("x-aegis-credential", value);
        }
        if let Some(value) = identity.agent_header()? {
            headers.insert("x-aegis-agent", value);
        }
        let body = self.body.unwrap_or_default();
        if !body.is_empty() {
            headers
                .entry(header::CONTENT_TYPE)
                .or_insert(HeaderValue::from_static("application/json"));
        }
        if !body.is_empty() || self.method == http::Method::POST || self.method == http::Method::PUT
        {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = self.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// Reads the response (at most `max_bytes` of body kept; the rest is read and discarded so the
/// request completes and its ledger entry says so) into the tool's result object.
///
/// # Errors
/// `upstream_unreachable` when the upstream's body broke off.
pub(crate) async fn response_object(
    response: http::Response<ProxyBody>,
    request_id: &str,
    max_bytes: u64,
) -> Result<Value, Denial> {
    let (head, mut body) = response.into_parts();
    let limit = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Denial::UpstreamUnreachable)?;
        if let Ok(data) = frame.into_data() {
            let room = limit.saturating_sub(kept.len());
            if data.len() > room {
                truncated = true;
            }
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    let mut headers = Map::new();
    for name in head.headers.keys() {
        let values: Vec<String> = head
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    let (body, encoding) = encode_body(kept, truncated);
    Ok(serde_json::json!({
        "status": head.status.as_u16(),
        "headers": headers,
        "body": body,
        "body_encoding": encoding,
        "truncated": truncated,
        "request_id": request_id,
    }))
}

/// UTF-8 text as it is, anything else base64. A truncated body cut inside a UTF-8 sequence is
/// cut back to the last whole character, so text stays text.
fn encode_body(mut bytes: Vec<u8>, truncated: bool) -> (String, &'static str) {
    if truncated
        && let Err(err) = std::str::from_utf8(&bytes)
        && err.error_len().is_none()
    {
        bytes.truncate(err.valid_up_to());
    }
    match String::from_utf8(bytes) {
        Ok(text) => (text, "utf8"),
        Err(err) => (
            base64::engine::general_purpose::STANDARD.encode(err.as_bytes()),
            "base64",
        ),
    }
}

/// The agent's headers minus everything SPEC.md §16.2 drops: `Host` (it must never choose the
/// TLS server name), framing, hop-by-hop, and every header §9.7 strips.
fn forwarded_headers(map: &Map<String, Value>) -> Result<Vec<(HeaderName, HeaderValue)>, Denial> {
    let mut out = Vec::new();
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(Denial::bad_request(format!(
                "header {name} must have a string value"
            )));
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Denial::bad_request("a header name is not a valid HTTP header name"))?;
        if is_dropped(&name) {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            Denial::bad_request(format!(
                "header {name} has a value that is not valid in HTTP"
            ))
        })?;
        out.push((name, value));
    }
    Ok(out)
}

fn is_dropped(name: &HeaderName) -> bool {
    let name = name.as_str();
    DROPPED_HEADERS.contains(&name) || name.starts_with("x-aegis-")
}

/// The method and `/{service}{path}` target a call's arguments describe, as well as they can
/// be read, for the ledger entry of a call refused before it became a request.
pub(crate) fn described(arguments: Option<&Map<String, Value>>) -> (String, String) {
    let text = |key: &str| {
        arguments
            .and_then(|args| args.get(key))
            .and_then(Value::as_str)
    };
    let method = text("method").map_or_else(|| "GET".to_owned(), str::to_ascii_uppercase);
    let target = match (text("service"), text("path")) {
        (Some(service), Some(path)) if path.starts_with('/') => format!("/{service}{path}"),
        (Some(service), _) => format!("/{service}"),
        _ => "/".to_owned(),
    };
    (method, target)
}

fn required_string<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, Denial> {
    optional_string(args, key)?.ok_or_else(|| Denial::bad_request(format!("{key} is required")))
}

fn optional_string<'a>(args: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Denial> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Denial::bad_request(format!("{key} must be a string"))),
    }
}

/// Arguments the tool accepts; `targetHost` (last) is the earlier tool's spelling.
const KNOWN_ARGUMENTS: &[&str] = &[
    "service",
    "path",
    "method",
    "headers",
    "body",
    "body_encoding",
    "target_host",
    "credential",
    "targetHost",
];

/// Lower-case names of headers never taken from the tool's `headers` argument.
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-target-host",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test arguments are objects"),
        }
    }

    #[test]
    fn the_request_is_the_gate_form_with_dropped_headers_and_the_agent_token() {
        let call = ProxyCall::parse(Some(&args(serde_json::json!({
            "service": "github",
            "path": "/repos/x?state=open",
            "method": "post",
            "headers": {
                "Host": "evil.example",
                "Authorization": "Bearer stolen",
                "X-Aegis-Agent": "aegis_forged",
                "Connection": "close",
                "Accept": "application/json"
            },
            "body": "{}",
            "targetHost": "api.github.com",
        }))))
        .expect("parse");
        let identity = AgentIdentity::from_token("aegis_token".to_owned().into());
        let request = call.into_request(&identity).expect("request");
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "/github/repos/x?state=open");
        let headers = request.headers();
        assert!(headers.get("host").is_none());
        assert!(headers.get("authorization").is_none());
        assert!(headers.get("connection").is_none());
        assert_eq!(headers["x-aegis-agent"], "aegis_token");
        assert!(headers["x-aegis-agent"].is_sensitive());
        assert_eq!(headers["x-target-host"], "api.github.com");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["content-length"], "2");
        assert_eq!(headers["accept"], "application/json");
    }

    #[test]
    fn bad_arguments_are_bad_requests_that_name_the_argument_not_the_value() {
        for (value, needle) in [
            (serde_json::json!({"path": "/x"}), "service is required"),
            (
                serde_json::json!({"service": "a/b", "path": "/x"}),
                "service",
            ),
            (
                serde_json::json!({"service": "a", "path": "x"}),
                "start with /",
            ),
            (
                serde_json::json!({"service": "a", "path": "/x", "url": "s3cr3t"}),
                "unknown argument url",
            ),
            (
                serde_json::json!({"service": "a", "path": "/x", "body": "%%", "body_encoding": "base64"}),
                "base64",
            ),
            (
                serde_json::json!({"service": "a", "path": "/x", "headers": {"X": 1}}),
                "header x",
            ),
        ] {
            let denial = ProxyCall::parse(Some(&args(value))).expect_err("refused");
            assert_eq!(denial.code(), "bad_request");
            let message = denial.to_string();
            assert!(message.to_lowercase().contains(needle), "{message}");
            assert!(!message.contains("s3cr3t"));
        }
    }

    #[test]
    fn a_cut_body_stays_text_when_it_was_text_and_binary_is_base64() {
        let text = "héllo".as_bytes().to_vec();
        assert_eq!(
            encode_body(text[..2].to_vec(), true),
            ("h".to_owned(), "utf8")
        );
        assert_eq!(encode_body(vec![0xff, 0x00], false).1, "base64");
    }
}
