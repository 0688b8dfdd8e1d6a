//! The pooled upstream client: rustls (aws-lc-rs) with the system roots plus an optional extra
//! CA bundle, HTTP/1.1 and HTTP/2 by ALPN, connect and response-header deadlines, no redirects,
//! no retries, no proxy environment variables. The only place Aegis opens upstream connections.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use aegis_core::denial::Denial;

use crate::error::EngineError;

/// Request bodies as they are sent upstream.
pub type OutboundBody = UnsyncBoxBody<Bytes, BoxError>;
/// Errors carried by streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Settings for upstream connections.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Extra PEM bundle trusted besides the system roots.
    pub extra_ca: Option<std::path::PathBuf>,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
    /// From request sent to response headers received.
    pub response_headers_timeout: Duration,
    /// Idle pooled connections are closed after this.
    pub pool_idle_timeout: Duration,
}

/// A pooled HTTPS (and, for `--allow-http` credentials, HTTP) client.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, OutboundBody>,
    response_headers_timeout: Duration,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClient")
    }
}

impl UpstreamClient {
    /// Builds the client and its TLS configuration.
    ///
    /// # Errors
    /// [`EngineError::UpstreamCa`] for an unreadable or empty CA file, [`EngineError::Tls`] when
    /// rustls refuses the configuration.
    pub fn new(settings: &UpstreamSettings) -> Result<Self, EngineError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(native.certs);
        if let Some(path) = &settings.extra_ca {
            let added = add_pem_bundle(&mut roots, path)?;
            if added == 0 {
                return Err(EngineError::UpstreamCa {
                    path: path.display().to_string(),
                    reason: "it holds no PEM certificate".to_owned(),
                });
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| EngineError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(64)
            .retry_canceled_requests(false)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        Ok(Self {
            client,
            response_headers_timeout: settings.response_headers_timeout,
        })
    }

    /// Sends one request and waits for the response head. The `response_headers` deadline
    /// runs from the moment the request body has been sent (or dropped), so a long upload that
    /// keeps moving is not cut off; a stalled one is bounded by the body's idle deadline.
    ///
    /// # Errors
    /// [`Denial::UpstreamTimeout`], [`Denial::UpstreamTls`] or [`Denial::UpstreamUnreachable`].
    pub async fn send(
        &self,
        request: http::Request<OutboundBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, Denial> {
        let sent = Arc::new(tokio::sync::Notify::new());
        let request = request.map(|body| {
            http_body_util::BodyExt::boxed_unsync(SentSignal {
                inner: body,
                sent: sent.clone(),
            })
        });
        let exchange = self.client.request(request);
        tokio::pin!(exchange);
        let finished_early = tokio::select! {
            outcome = &mut exchange => Some(outcome),
            () = sent.notified() => None,
        };
        let outcome = match finished_early {
            Some(outcome) => outcome,
            None => match tokio::time::timeout(self.response_headers_timeout, exchange).await {
                Err(_) => return Err(Denial::UpstreamTimeout),
                Ok(outcome) => outcome,
            },
        };
        outcome.map_err(|err| {
            let denial = classify(&err);
            tracing::debug!(code = denial.code(), error = %error_chain(&err), "upstream request failed");
            denial
        })
    }
}

/// Passes a request body through and signals once it has been sent: at its end, on its error,
/// or when the client drops it (which it does once the body is written).
struct SentSignal {
    inner: OutboundBody,
    sent: Arc<tokio::sync::Notify>,
}

impl http_body::Body for SentSignal {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None | Some(Err(_)))) {
            self.sent.notify_one();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for SentSignal {
    fn drop(&mut self) {
        self.sent.notify_one();
    }
}

/// Maps a client error to its denial by walking the source chain (no string matching on the
/// top-level message).
fn classify(err: &hyper_util::client::legacy::Error) -> Denial {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if current.downcast_ref::<rustls::Error>().is_some() {
            return Denial::UpstreamTls;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Denial::UpstreamTimeout;
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return Denial::UpstreamTls;
            }
        }
        source = current.source();
    }
    Denial::UpstreamUnreachable
}

/// The error and its sources on one line, for the debug log (no request data is in them).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

fn add_pem_bundle(roots: &mut rustls::RootCertStore, path: &Path) -> Result<usize, EngineError> {
    let fail = |reason: String| EngineError::UpstreamCa {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    Ok(added)
}
