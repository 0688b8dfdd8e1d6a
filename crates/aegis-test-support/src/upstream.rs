//! A real HTTPS upstream on `127.0.0.1:0` that records every request and answers by path.
//!
//! [`HttpsUpstream::start`] serves TLS (certificate for `localhost` and `127.0.0.1`, issued by a
//! [`TestCa`]) and speaks HTTP/1.1 or HTTP/2 as chosen by ALPN; [`HttpsUpstream::start_plain`]
//! serves the same routes over plain TCP (HTTP/1.1, or HTTP/2 with prior knowledge) for
//! `--allow-http` tests. The server runs on its own thread and Tokio runtime, so it keeps
//! answering while a test blocks on a child process (`assert_cmd`) or runs on a current-thread
//! runtime; dropping the [`HttpsUpstream`] stops it and closes the port before `drop` returns.
//!
//! # Routes
//!
//! Routes are chosen from the path the upstream receives (no query), looking only at its last
//! one or two segments, so any prefix is irrelevant: `/echo-auth`, `/v1/echo-auth` and
//! `/github/x/echo-auth` are the same route. Rules, first match wins:
//!
//! | path ends with           | answer                                                           |
//! |--------------------------|------------------------------------------------------------------|
//! | `/status/<n>`            | status `n` (200..=999), text body `status <n>` (none for 204/304) |
//! | `/bytes/<n>`             | 200, `n` bytes of [`PATTERN`] cycled, streamed in 64 KiB chunks, `content-length: n` |
//! | `/slow/<ms>`             | waits `ms` milliseconds, then 200 `slow done`                     |
//! | `/echo-body`             | 200, the request body streamed back as it arrives, same `content-type` |
//! | `/echo-auth`             | 200 text `auth=<authorization>; key=<x-api-key>; query=<raw query>`, header `x-echo-auth: <authorization>` |
//! | `/echo-auth-gzip`        | the same, body gzip-compressed with `content-encoding: gzip`     |
//! | `/redirect`              | 302, `location: https://elsewhere.example/landing?x=1`           |
//! | `/set-cookie`            | 200 with two `set-cookie` headers (`a=1; Path=/`, `b=2; Path=/; HttpOnly`) |
//! | `/upload…` (last segment starts with `upload`) | counts the body without storing it, 200 JSON `{"body_len": n, "sha256": "<hex>"}` |
//! | anything else (`/echo`)  | 200 JSON `{"method", "target", "headers": {name: [values]}, "body_len"}`, secrets verbatim |
//!
//! A malformed number (`/status/abc`, `/bytes/-1`) gets 400. Missing headers echo as empty text.
//!
//! # Recording
//!
//! Every request is recorded as a [`RecordedRequest`] before its response is sent (for
//! `/echo-body`, once the request body has ended, before the end of the response body), so a
//! test may read [`HttpsUpstream::last_request`] as soon as its response has arrived. Bodies are
//! kept up to 32 MiB (`body_len` always counts every byte); `/upload…` keeps only the length.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::TestCa;

/// The byte pattern `/bytes/<n>` and [`PatternBody`] repeat.
pub const PATTERN: &[u8; 16] = b"0123456789abcdef";

/// Size of each chunk `/bytes/<n>` and [`PatternBody`] produce.
pub const PATTERN_CHUNK: usize = 64 * 1024;

/// Request bodies are recorded up to this many bytes.
const RECORD_BODY_CAP: usize = 32 * 1024 * 1024;

/// Where `/redirect` points.
pub const REDIRECT_LOCATION: &str = "https://elsewhere.example/landing?x=1";

/// Boxed error type of streamed bodies.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of every route.
type RespBody = UnsyncBoxBody<Bytes, BoxError>;

/// One request as the upstream received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// The request target exactly as received: path and query, percent-encoding untouched
    /// (for an HTTP/1.1 absolute-form request line, the whole absolute URI).
    pub target: String,
    /// `HTTP/1.1` or `HTTP/2.0` (`HTTP/1.0` for such clients).
    pub version: String,
    /// The URI authority when the request carried one: HTTP/2 `:authority`, or an HTTP/1.1
    /// absolute-form target. HTTP/1.1 requests normally carry a `host` header instead.
    pub authority: Option<String>,
    /// Headers, names lowercase, every occurrence; values of one name keep their order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body (first 32 MiB; always empty for `/upload…`).
    pub body: Vec<u8>,
    /// Number of body bytes received.
    pub body_len: u64,
}

impl RecordedRequest {
    /// The first value of header `name` (any case), as lossy UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of header `name` (any case), in order, as lossy UTF-8.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The path part of [`RecordedRequest::target`] (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The raw query (after the first `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The recorded body as lossy UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn from_parts(parts: &http::request::Parts) -> Self {
        let target = match (parts.version, parts.uri.path_and_query()) {
            (Version::HTTP_2, Some(pq)) => pq.as_str().to_owned(),
            (Version::HTTP_2, None) => "/".to_owned(),
            _ => parts.uri.to_string(),
        };
        Self {
            method: parts.method.as_str().to_owned(),
            target,
            version: format!("{:?}", parts.version),
            authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            body_len: 0,
        }
    }

    /// Appends received bytes, keeping at most [`RECORD_BODY_CAP`] of them.
    fn append_body(&mut self, data: &[u8]) {
        self.body_len += data.len() as u64;
        let room = RECORD_BODY_CAP.saturating_sub(self.body.len());
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// State shared by the handle and the server.
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    count: watch::Sender<usize>,
    chunk: Bytes,
}

impl Shared {
    fn new() -> Self {
        let chunk: Vec<u8> = PATTERN
            .iter()
            .copied()
            .cycle()
            .take(PATTERN_CHUNK)
            .collect();
        Self {
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            chunk: Bytes::from(chunk),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: RecordedRequest) {
        let mut requests = self.lock();
        requests.push(request);
        self.count.send_replace(requests.len());
    }
}

/// A running upstream; stops when dropped.
pub struct HttpsUpstream {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for HttpsUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsUpstream")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl HttpsUpstream {
    /// Starts an HTTPS upstream with a certificate from `ca` for `localhost` and `127.0.0.1`.
    ///
    /// # Panics
    /// When the port cannot be bound or the server thread cannot start.
    pub async fn start(ca: &TestCa) -> Self {
        Self::start_blocking(ca)
    }

    /// [`HttpsUpstream::start`] for synchronous tests.
    ///
    /// # Panics
    /// When the port cannot be bound or the server thread cannot start.
    pub fn start_blocking(ca: &TestCa) -> Self {
        Self::spawn(Some(ca.server_config(&["localhost", "127.0.0.1"])))
    }

    /// [`HttpsUpstream::start_blocking`] with the server's ALPN list replaced: `[b"http/1.1"]`
    /// makes it an HTTP/1.1-only server that a client offering `h2` must fall back from.
    ///
    /// # Panics
    /// When the port cannot be bound or the server thread cannot start.
    pub fn start_blocking_with_alpn(ca: &TestCa, protocols: &[&[u8]]) -> Self {
        let mut config = (*ca.server_config(&["localhost", "127.0.0.1"])).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Self::spawn(Some(Arc::new(config)))
    }

    /// Starts the same server over plain HTTP (no TLS), for `--allow-http` tests.
    ///
    /// # Panics
    /// When the port cannot be bound or the server thread cannot start.
    pub async fn start_plain() -> Self {
        Self::start_plain_blocking()
    }

    /// [`HttpsUpstream::start_plain`] for synchronous tests.
    ///
    /// # Panics
    /// When the port cannot be bound or the server thread cannot start.
    pub fn start_plain_blocking() -> Self {
        Self::spawn(None)
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream port");
        listener
            .set_nonblocking(true)
            .expect("make upstream listener non-blocking");
        let addr = listener.local_addr().expect("upstream local address");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build upstream runtime");
        let shared = Arc::new(Shared::new());
        let (shutdown, stop) = oneshot::channel();
        let is_tls = tls.is_some();
        let server_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("upstream-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stop => {}
                        () = accept_loop(listener, tls, server_shared) => {}
                    }
                });
                // Dropping the runtime here cancels every connection task and closes the port.
            })
            .expect("spawn upstream thread");
        Self {
            addr,
            tls: is_tls,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `localhost:<port>`, the host a test registers as a credential's domain.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port())
    }

    /// Whether this upstream speaks TLS (false for [`HttpsUpstream::start_plain`]).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `https://localhost:<port><path>` (`http://` for the plain variant); `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.host())
    }

    /// Every request recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().clone()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().last().cloned()
    }

    /// Number of requests recorded so far.
    pub fn request_count(&self) -> usize {
        self.shared.lock().len()
    }

    /// Waits until at least `n` requests are recorded and returns them all.
    ///
    /// # Panics
    /// When `deadline` passes first; the message says how many arrived.
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> Vec<RecordedRequest> {
        let mut count = self.shared.count.subscribe();
        let reached = matches!(
            tokio::time::timeout(deadline, count.wait_for(|c| *c >= n)).await,
            Ok(Ok(_))
        );
        assert!(
            reached,
            "gave up after {deadline:?} waiting for {n} upstream request(s); got {}",
            self.request_count()
        );
        self.requests()
    }
}

impl Drop for HttpsUpstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    match acceptor {
                        None => serve_io(tcp, None, shared).await,
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                            serve_io(stream, alpn, shared).await;
                        }
                    }
                });
            }
            // Out of descriptors or an aborted handshake: let other tasks run, then go on.
            Err(_) => tokio::task::yield_now().await,
        }
    }
}

async fn serve_io<I>(io: I, alpn: Option<Vec<u8>>, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let builder = match alpn.as_deref() {
        Some(b"h2") => builder.http2_only(),
        Some(b"http/1.1") => builder.http1_only(),
        _ => builder,
    };
    // Client errors (resets, bad requests) end the connection; nothing to report.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

/// What a path asks for.
enum Route {
    Echo,
    EchoBody,
    EchoAuth,
    EchoAuthGzip,
    Status(StatusCode),
    Bytes(u64),
    Slow(u64),
    Redirect,
    SetCookie,
    Upload,
    Bad(String),
}

impl Route {
    fn parse(path: &str) -> Self {
        let mut segments = path.rsplit('/');
        let last = segments.next().unwrap_or_default();
        let before = segments.next().unwrap_or_default();
        match before {
            "status" => {
                return match last.parse::<u16>().ok().filter(|n| *n >= 200) {
                    Some(n) => StatusCode::from_u16(n)
                        .map_or_else(|_| Self::Bad(format!("bad status {last}")), Self::Status),
                    None => Self::Bad(format!("bad status {last}")),
                };
            }
            "bytes" => {
                return last
                    .parse()
                    .map_or_else(|_| Self::Bad(format!("bad length {last}")), Self::Bytes);
            }
            "slow" => {
                return last
                    .parse()
                    .map_or_else(|_| Self::Bad(format!("bad delay {last}")), Self::Slow);
            }
            _ => {}
        }
        match last {
            "echo-body" => Self::EchoBody,
            "echo-auth" => Self::EchoAuth,
            "echo-auth-gzip" => Self::EchoAuthGzip,
            "redirect" => Self::Redirect,
            "set-cookie" => Self::SetCookie,
            s if s.starts_with("upload") => Self::Upload,
            _ => Self::Echo,
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let (parts, mut body) = req.into_parts();
    let mut record = RecordedRequest::from_parts(&parts);
    let route = Route::parse(parts.uri.path());

    match route {
        Route::EchoBody => {
            let mut response = if body.is_end_stream() {
                shared.record(record);
                Response::new(full(Bytes::new()))
            } else {
                Response::new(
                    TeeBody {
                        inner: body,
                        shared,
                        pending: Some(record),
                    }
                    .map_err(BoxError::from)
                    .boxed_unsync(),
                )
            };
            if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, content_type.clone());
            }
            return Ok(response);
        }
        Route::Upload => {
            let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            let complete = loop {
                match body.frame().await {
                    None => break true,
                    Some(Err(_)) => break false,
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            record.body_len += data.len() as u64;
                            digest.update(data);
                        }
                    }
                }
            };
            let body_len = record.body_len;
            shared.record(record);
            if !complete {
                return Ok(text(StatusCode::BAD_REQUEST, "request body failed"));
            }
            let sha256 = hex(digest.finish().as_ref());
            return Ok(json(
                &serde_json::json!({ "body_len": body_len, "sha256": sha256 }),
            ));
        }
        _ => {}
    }

    let complete = loop {
        match body.frame().await {
            None => break true,
            Some(Err(_)) => break false,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    record.append_body(data);
                }
            }
        }
    };
    shared.record(record.clone());
    if !complete {
        return Ok(text(StatusCode::BAD_REQUEST, "request body failed"));
    }

    let response = match route {
        Route::Echo => json(&echo_json(&record)),
        Route::EchoAuth => {
            let mut response = text(StatusCode::OK, echo_auth_text(&parts));
            add_echo_auth_header(&mut response, &parts.headers);
            response
        }
        Route::EchoAuthGzip => {
            let mut response = match gzip(echo_auth_text(&parts).as_bytes()) {
                Ok(compressed) => {
                    let mut response = Response::new(full(Bytes::from(compressed)));
                    let headers = response.headers_mut();
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    response
                }
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "gzip failed"),
            };
            add_echo_auth_header(&mut response, &parts.headers);
            response
        }
        Route::Status(status) => {
            if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
                let mut response = Response::new(full(Bytes::new()));
                *response.status_mut() = status;
                response
            } else {
                text(status, format!("status {}", status.as_u16()))
            }
        }
        Route::Bytes(len) => {
            let mut response = Response::new(
                PatternBody::from_chunk(shared.chunk.clone(), len)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            response
        }
        Route::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, "slow done")
        }
        Route::Redirect => {
            let mut response = text(StatusCode::FOUND, "redirecting");
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_static(REDIRECT_LOCATION));
            response
        }
        Route::SetCookie => {
            let mut response = text(StatusCode::OK, "cookies set");
            let headers = response.headers_mut();
            headers.append(SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
            headers.append(
                SET_COOKIE,
                HeaderValue::from_static("b=2; Path=/; HttpOnly"),
            );
            response
        }
        Route::Bad(message) => text(StatusCode::BAD_REQUEST, message),
        // Answered above.
        Route::EchoBody | Route::Upload => text(StatusCode::INTERNAL_SERVER_ERROR, "unreachable"),
    };
    Ok(response)
}

fn full(bytes: Bytes) -> RespBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<RespBody> {
    let mut response = Response::new(full(Bytes::from(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(value: &serde_json::Value) -> Response<RespBody> {
    let mut response = Response::new(full(Bytes::from(value.to_string())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn echo_json(record: &RecordedRequest) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &record.headers {
        let entry = headers
            .entry(name.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = entry {
            values.push(String::from_utf8_lossy(value).into_owned().into());
        }
    }
    serde_json::json!({
        "method": record.method,
        "target": record.target,
        "headers": headers,
        "body_len": record.body_len,
    })
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn echo_auth_text(parts: &http::request::Parts) -> String {
    format!(
        "auth={}; key={}; query={}",
        header_text(&parts.headers, "authorization"),
        header_text(&parts.headers, "x-api-key"),
        parts.uri.query().unwrap_or_default()
    )
}

fn add_echo_auth_header(response: &mut Response<RespBody>, request_headers: &HeaderMap) {
    if let Some(auth) = request_headers.get(http::header::AUTHORIZATION) {
        response.headers_mut().insert("x-echo-auth", auth.clone());
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The request body streamed back while being recorded (`/echo-body`).
struct TeeBody {
    inner: Incoming,
    shared: Arc<Shared>,
    pending: Option<RecordedRequest>,
}

impl TeeBody {
    fn finish(&mut self) {
        if let Some(record) = self.pending.take() {
            self.shared.record(record);
        }
    }
}

impl Body for TeeBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(record)) = (frame.data_ref(), this.pending.as_mut()) {
                    record.append_body(data);
                }
                // Record before hyper learns the body is over, so the record precedes the end of
                // the response.
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.finish();
                Poll::Ready(other)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TeeBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A body of `len` bytes of [`PATTERN`] cycled, generated in [`PATTERN_CHUNK`]-sized chunks as
/// it is polled, in constant memory. Use it to stream large uploads in tests.
#[derive(Clone, Debug)]
pub struct PatternBody {
    chunk: Bytes,
    remaining: u64,
}

impl PatternBody {
    /// A body of exactly `len` bytes.
    pub fn new(len: u64) -> Self {
        let chunk: Vec<u8> = PATTERN
            .iter()
            .copied()
            .cycle()
            .take(PATTERN_CHUNK)
            .collect();
        Self::from_chunk(Bytes::from(chunk), len)
    }

    fn from_chunk(chunk: Bytes, len: u64) -> Self {
        Self {
            chunk,
            remaining: len,
        }
    }

    /// Whether `data` is exactly the pattern bytes found at stream offset `offset`.
    pub fn matches_at(offset: u64, data: &[u8]) -> bool {
        data.iter().enumerate().all(|(i, b)| {
            let at = (offset + i as u64) % PATTERN.len() as u64;
            PATTERN.get(usize::try_from(at).unwrap_or_default()) == Some(b)
        })
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        // PATTERN_CHUNK is a multiple of the pattern length, so every chunk starts at offset 0.
        let take = usize::try_from(this.remaining).map_or(PATTERN_CHUNK, |r| r.min(PATTERN_CHUNK));
        this.remaining -= take as u64;
        Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..take)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests;
