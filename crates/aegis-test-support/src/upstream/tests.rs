//! Tests of the upstream and the CA through real TLS clients: hyper over tokio-rustls, and curl.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use super::*;
use crate::TestCa;

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

impl Proto {
    fn alpn(self) -> &'static [u8] {
        match self {
            Self::H1 => b"http/1.1",
            Self::H2 => b"h2",
        }
    }
}

fn empty() -> RespBody {
    full(Bytes::new())
}

/// A request for `path` shaped for `proto`: origin-form for HTTP/1.1 (so the raw target is
/// what goes on the wire), absolute for HTTP/2 (`:scheme` and `:authority`).
fn request(up: &HttpsUpstream, proto: Proto, method: &str, path: &str) -> http::request::Builder {
    let uri = match proto {
        Proto::H1 => path.to_owned(),
        Proto::H2 => up.url(path),
    };
    let builder = Request::builder().method(method).uri(uri);
    match proto {
        Proto::H1 => builder.header("host", up.host()),
        Proto::H2 => builder.version(http::Version::HTTP_2),
    }
}

/// Sends one request on a fresh connection: TLS trusting `ca` when given, plain otherwise.
async fn send(
    up: &HttpsUpstream,
    ca: Option<&TestCa>,
    proto: Proto,
    req: Request<RespBody>,
) -> Response<Incoming> {
    let tcp = tokio::net::TcpStream::connect(up.addr())
        .await
        .expect("connect to upstream");
    let Some(ca) = ca else {
        return exchange(TokioIo::new(tcp), proto, req).await;
    };
    let mut config = (*ca.client_config()).clone();
    config.alpn_protocols = vec![proto.alpn().to_vec()];
    let name = ServerName::try_from("localhost").expect("valid server name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with upstream");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(proto.alpn()));
    exchange(TokioIo::new(tls), proto, req).await
}

async fn exchange<I>(io: I, proto: Proto, req: Request<RespBody>) -> Response<Incoming>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    match proto {
        Proto::H1 => {
            let (mut sender, conn) = http1::handshake(io).await.expect("HTTP/1.1 handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("HTTP/1.1 response")
        }
        Proto::H2 => {
            let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("HTTP/2 handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("HTTP/2 response")
        }
    }
}

async fn body_bytes(resp: Response<Incoming>) -> Bytes {
    resp.into_body()
        .collect()
        .await
        .expect("read response body")
        .to_bytes()
}

async fn body_json(resp: Response<Incoming>) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(resp).await).expect("response body is JSON")
}

#[tokio::test]
async fn echo_records_raw_target_and_headers_over_h1_and_h2() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    let target = "/a%2Fb/c?x=1&y=%20";
    for (i, proto) in [Proto::H1, Proto::H2].into_iter().enumerate() {
        let req = request(&up, proto, "POST", target)
            .header("authorization", "Bearer sk_test_secret")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .body(full(Bytes::from_static(b"hello")))
            .expect("build request");
        let resp = send(&up, Some(&ca), proto, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/json");
        // Recorded before the response was sent.
        let recorded = up.last_request().expect("request recorded");
        assert_eq!(up.request_count(), i + 1);

        let echoed = body_json(resp).await;
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["target"], target);
        assert_eq!(echoed["body_len"], 5);
        assert_eq!(
            echoed["headers"]["authorization"],
            serde_json::json!(["Bearer sk_test_secret"])
        );
        assert_eq!(
            echoed["headers"]["x-multi"],
            serde_json::json!(["one", "two"])
        );

        assert_eq!(recorded.method, "POST");
        assert_eq!(recorded.target, target);
        assert_eq!(recorded.path(), "/a%2Fb/c");
        assert_eq!(recorded.query(), Some("x=1&y=%20"));
        assert_eq!(recorded.body, b"hello");
        assert_eq!(recorded.body_len, 5);
        assert_eq!(
            recorded.header("Authorization").as_deref(),
            Some("Bearer sk_test_secret")
        );
        assert_eq!(recorded.header_all("x-multi"), ["one", "two"]);
        match proto {
            Proto::H1 => {
                assert_eq!(recorded.version, "HTTP/1.1");
                assert_eq!(recorded.header("host"), Some(up.host()));
            }
            Proto::H2 => {
                assert_eq!(recorded.version, "HTTP/2.0");
                assert_eq!(recorded.authority, Some(up.host()));
            }
        }
    }
    assert_eq!(up.wait_for_requests(2, DEADLINE).await.len(), 2);
}

#[tokio::test]
async fn bytes_route_streams_exactly_n_pattern_bytes() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    for proto in [Proto::H1, Proto::H2] {
        let req = request(&up, proto, "GET", "/v1/bytes/1048576")
            .body(empty())
            .expect("build request");
        let resp = send(&up, Some(&ca), proto, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        if proto == Proto::H1 {
            assert_eq!(resp.headers()["content-length"], "1048576");
        }
        let mut body = resp.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("response frame");
            if let Some(data) = frame.data_ref() {
                assert!(
                    PatternBody::matches_at(received, data),
                    "pattern at {received}"
                );
                received += data.len() as u64;
            }
        }
        assert_eq!(received, 1_048_576);
    }
    // An odd length ends mid-pattern.
    let req = request(&up, Proto::H1, "GET", "/bytes/70000")
        .body(empty())
        .expect("build request");
    let body = body_bytes(send(&up, Some(&ca), Proto::H1, req).await).await;
    assert_eq!(body.len(), 70_000);
    assert!(PatternBody::matches_at(0, &body));
}

#[tokio::test]
async fn upload_counts_a_streamed_body_without_storing_it() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    const LEN: u64 = 5 * 1024 * 1024;
    let mut expected = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut pattern = PatternBody::new(LEN);
    while let Some(frame) = pattern.frame().await {
        if let Ok(data) = frame.expect("pattern frame").into_data() {
            expected.update(&data);
        }
    }
    let expected = hex(expected.finish().as_ref());

    for proto in [Proto::H1, Proto::H2] {
        let req = request(&up, proto, "PUT", "/files/upload")
            .body(
                PatternBody::new(LEN)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("build request");
        let resp = send(&up, Some(&ca), proto, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let reply = body_json(resp).await;
        assert_eq!(reply["body_len"], LEN);
        assert_eq!(reply["sha256"], expected.as_str());
        let recorded = up.last_request().expect("upload recorded");
        assert_eq!(recorded.body_len, LEN);
        assert!(recorded.body.is_empty());
    }
}

#[tokio::test]
async fn redirect_is_answered_not_followed() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    let req = request(&up, Proto::H2, "GET", "/redirect")
        .body(empty())
        .expect("build request");
    let resp = send(&up, Some(&ca), Proto::H2, req).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], REDIRECT_LOCATION);
    assert_eq!(up.request_count(), 1);
}

#[tokio::test]
async fn echo_auth_returns_the_secret_in_body_and_header_plain_and_gzip() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    let expected = "auth=Bearer tok123; key=k-456; query=api_key=q789&x=%20";
    for path in ["/svc/echo-auth", "/svc/echo-auth-gzip"] {
        let req = request(&up, Proto::H1, "GET", &format!("{path}?api_key=q789&x=%20"))
            .header("authorization", "Bearer tok123")
            .header("x-api-key", "k-456")
            .body(empty())
            .expect("build request");
        let resp = send(&up, Some(&ca), Proto::H1, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-echo-auth"], "Bearer tok123");
        let gzipped = resp.headers().get("content-encoding").is_some();
        let body = body_bytes(resp).await;
        let text = if gzipped {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut text)
                .expect("gunzip body");
            text
        } else {
            String::from_utf8(body.to_vec()).expect("UTF-8 body")
        };
        assert_eq!(gzipped, path.ends_with("gzip"));
        assert_eq!(text, expected);
    }
}

#[tokio::test]
async fn echo_body_streams_back_and_records_it() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    for proto in [Proto::H1, Proto::H2] {
        let req = request(&up, proto, "POST", "/echo-body")
            .header("content-type", "application/x-test")
            .body(
                PatternBody::new(200_000)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("build request");
        let resp = send(&up, Some(&ca), proto, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/x-test");
        let body = body_bytes(resp).await;
        assert_eq!(body.len(), 200_000);
        assert!(PatternBody::matches_at(0, &body));
        let recorded = up.last_request().expect("echo-body recorded");
        assert_eq!(recorded.body_len, 200_000);
        assert_eq!(recorded.body, body);
    }
}

#[tokio::test]
async fn status_slow_and_cookies() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    let get = |path: &str| {
        request(&up, Proto::H1, "GET", path)
            .body(empty())
            .expect("build request")
    };

    let resp = send(&up, Some(&ca), Proto::H1, get("/x/status/503")).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_bytes(resp).await, "status 503");

    let resp = send(&up, Some(&ca), Proto::H1, get("/status/204")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(body_bytes(resp).await.is_empty());

    let resp = send(&up, Some(&ca), Proto::H1, get("/status/abc")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = send(&up, Some(&ca), Proto::H1, get("/slow/20")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_bytes(resp).await, "slow done");

    let resp = send(&up, Some(&ca), Proto::H1, get("/set-cookie")).await;
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/; HttpOnly"]);

    assert_eq!(up.request_count(), 5);
}

#[tokio::test]
async fn plain_variant_serves_h1_and_h2c() {
    let up = HttpsUpstream::start_plain().await;
    assert!(!up.is_tls());
    assert!(up.url("/echo").starts_with("http://localhost:"));
    for proto in [Proto::H1, Proto::H2] {
        let req = request(&up, proto, "GET", "/echo?q=1")
            .body(empty())
            .expect("build request");
        let resp = send(&up, None, proto, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_json(resp).await["target"], "/echo?q=1");
    }
    let versions: Vec<_> = up.requests().into_iter().map(|r| r.version).collect();
    assert_eq!(versions, ["HTTP/1.1", "HTTP/2.0"]);
}

#[tokio::test]
async fn client_config_trusts_only_its_own_ca() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let up = HttpsUpstream::start(&other).await;
    let tcp = tokio::net::TcpStream::connect(up.addr())
        .await
        .expect("connect to upstream");
    let name = ServerName::try_from("localhost").expect("valid server name");
    let handshake = TlsConnector::from(ca.client_config())
        .connect(name, tcp)
        .await;
    assert!(
        handshake.is_err(),
        "a foreign CA's certificate was accepted"
    );
    assert_eq!(up.request_count(), 0);
}

#[tokio::test]
async fn certificate_is_valid_for_the_loopback_ip() {
    let ca = TestCa::new();
    let up = HttpsUpstream::start(&ca).await;
    let tcp = tokio::net::TcpStream::connect(up.addr())
        .await
        .expect("connect to upstream");
    let name = ServerName::try_from("127.0.0.1").expect("valid server name");
    let tls = TlsConnector::from(ca.client_config())
        .connect(name, tcp)
        .await
        .expect("TLS handshake by IP address");
    // The CA's client config offers h2 first.
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn dropping_the_upstream_closes_its_port() {
    let up = HttpsUpstream::start_plain().await;
    let addr = up.addr();
    drop(up);
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "port {addr} still accepts after drop");
}

/// A synchronous test with a blocking client: the upstream runs on its own thread.
#[test]
fn curl_with_cacert_file_reaches_the_upstream_over_h1_and_h2() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("create temp dir");
    let ca_file = ca.write_ca_pem(dir.path());
    let up = HttpsUpstream::start_blocking(&ca);
    for (flag, version) in [("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2.0")] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", flag, "--cacert"])
            .arg(&ca_file)
            .arg(up.url("/curl/echo?via=curl"))
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let echoed: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("curl printed JSON");
        assert_eq!(echoed["target"], "/curl/echo?via=curl");
        let recorded = up.last_request().expect("curl request recorded");
        assert_eq!(recorded.version, version);
    }
}

#[test]
fn write_server_pair_writes_a_usable_private_pair() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("create temp dir");
    let (cert_path, key_path) = ca.write_server_pair(dir.path(), &["localhost", "127.0.0.1"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)
            .expect("key file metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cert_pem = std::fs::read(&cert_path).expect("read certificate");
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .expect("certificate PEM parses");
    assert_eq!(certs.len(), 1, "leaf only, no chain");
    let key = PrivateKeyDer::from_pem_file(&key_path).expect("key PEM parses");
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("certificate and key match");

    let issued = ca.issue(&["example.test"]);
    assert_eq!(issued.cert_pem.matches("BEGIN CERTIFICATE").count(), 1);
    assert!(issued.key_pem.contains("BEGIN PRIVATE KEY"));
    assert!(ca.ca_cert_pem().contains("BEGIN CERTIFICATE"));
}

#[test]
fn routes_ignore_any_prefix() {
    assert!(matches!(Route::parse("/echo-auth"), Route::EchoAuth));
    assert!(matches!(
        Route::parse("/github/v1/echo-auth"),
        Route::EchoAuth
    ));
    assert!(matches!(
        Route::parse("/x/echo-auth-gzip"),
        Route::EchoAuthGzip
    ));
    assert!(matches!(Route::parse("/p/echo-body"), Route::EchoBody));
    assert!(matches!(Route::parse("/p/status/418"), Route::Status(s) if s.as_u16() == 418));
    assert!(matches!(Route::parse("/status/100"), Route::Bad(_)));
    assert!(matches!(Route::parse("/p/bytes/10"), Route::Bytes(10)));
    assert!(matches!(Route::parse("/p/slow/5"), Route::Slow(5)));
    assert!(matches!(Route::parse("/upload"), Route::Upload));
    assert!(matches!(Route::parse("/v1/upload-big"), Route::Upload));
    assert!(matches!(Route::parse("/p/redirect"), Route::Redirect));
    assert!(matches!(Route::parse("/p/set-cookie"), Route::SetCookie));
    assert!(matches!(Route::parse("/echo"), Route::Echo));
    assert!(matches!(Route::parse("/echo-auth/"), Route::Echo));
    assert!(matches!(Route::parse("/"), Route::Echo));
}

#[test]
fn pattern_body_matches_offsets() {
    assert!(PatternBody::matches_at(0, b"0123"));
    assert!(PatternBody::matches_at(14, b"ef01"));
    assert!(!PatternBody::matches_at(1, b"0"));
}
