//! Denials as HTTP responses (SPEC.md §10.2): the one place the gate maps a `Denial` to a status,
//! headers and the JSON error body.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http_body_util::{BodyExt as _, Full};

use aegis_core::denial::Denial;
use aegis_engine::ProxyBody;

/// Builds the response for a denial: status, `application/json` body with code, message and
/// request id, `Cache-Control: no-store`, the request id header, `Retry-After` on 429 and
/// `WWW-Authenticate` on 401.
pub fn denial_response(denial: &Denial, request_id: &str) -> http::Response<ProxyBody> {
    let body = serde_json::json!({
        "error": {
            "code": denial.code(),
            "message": denial.to_string(),
            "request_id": request_id,
        }
    });
    let status = http::StatusCode::from_u16(denial.status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &body, request_id);
    let headers = response.headers_mut();
    if let Some(secs) = denial.retry_after_secs() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if denial.status() == 401 {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Aegis-Agent"),
        );
    }
    if matches!(denial, Denial::ShuttingDown) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A JSON response with the given status.
pub fn json_response(
    status: http::StatusCode,
    body: &serde_json::Value,
    request_id: &str,
) -> http::Response<ProxyBody> {
    let mut response = http::Response::new(full(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-aegis-request-id", id);
    }
    response
}

/// A `200` text response (the metrics page) with the given content type.
pub fn text_response(
    content_type: &'static str,
    text: String,
    request_id: &str,
) -> http::Response<ProxyBody> {
    let mut response = http::Response::new(full(text));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-aegis-request-id", id);
    }
    response
}

fn full(text: String) -> ProxyBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_and_auth_denials_carry_their_headers() {
        let limited = denial_response(
            &Denial::RateLimited {
                retry_after_secs: 3,
            },
            "id-1",
        );
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "3");
        assert_eq!(limited.headers()["x-aegis-request-id"], "id-1");
        let auth = denial_response(&Denial::AgentAuthRequired, "id-2");
        assert_eq!(auth.status(), 401);
        assert_eq!(auth.headers()["www-authenticate"], "Aegis-Agent");
        assert_eq!(auth.headers()["cache-control"], "no-store");
    }
}
