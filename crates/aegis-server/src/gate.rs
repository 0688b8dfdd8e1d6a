//! The gate listener: accepts connections (plain HTTP/1.1, or TLS with HTTP/1.1 and HTTP/2 by
//! ALPN), serves `/_aegis/` itself, hands every other request to the pipeline as an `Intent`,
//! and shuts down gracefully: stop accepting, drain in-flight requests within the grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use aegis_core::denial::Denial;
use aegis_engine::health::health_report;
use aegis_engine::peer::PeerAddr;
use aegis_engine::pipeline::new_request_id;
use aegis_engine::{Intent, Pipeline, ProxyBody, Via};

use crate::error::ServeError;
use aegis_engine::metrics::Format;

use crate::respond::{denial_response, json_response, text_response};

/// How the gate listener behaves.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// TLS configuration; `None` serves plain HTTP/1.1.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Time for an agent to send a complete request head.
    pub header_read_timeout: Duration,
    /// Largest request head accepted.
    pub max_header_bytes: usize,
    /// Facts shown by `/_aegis/health`.
    pub health: HealthInfo,
}

pub use aegis_engine::health::HealthInfo;

/// What happened during shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections that finished within the grace period.
    pub drained: bool,
    /// Requests handled in total.
    pub requests: u64,
}

/// Binds the gate's address.
///
/// # Errors
/// [`ServeError::PortInUse`] when the port is taken, [`ServeError::Bind`] otherwise.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            ServeError::PortInUse { port: addr.port() }
        } else {
            ServeError::Bind {
                addr: addr.to_string(),
                reason: e.to_string(),
            }
        }
    })
}

/// Serves until `stop` fires, then stops accepting, tells the pipeline to refuse new requests,
/// and waits up to the grace period for in-flight requests, or until `force` fires (a second
/// signal).
pub async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    options: GateOptions,
    stop: CancellationToken,
    force: CancellationToken,
) -> ShutdownReport {
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let requests = Arc::new(AtomicU64::new(0));
    let acceptor = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Reap finished connections so the set only holds live ones.
        while connections.try_join_next().is_some() {}
        let pipeline = pipeline.clone();
        let options_for_conn = options.clone();
        let counter = requests.clone();
        let service = service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            let pipeline = pipeline.clone();
            let health = options_for_conn.health.clone();
            counter.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, Infallible>(handle(&pipeline, &health, request).await) }
        });
        let watcher = graceful.watcher();
        match &acceptor {
            None => {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(options.header_read_timeout)
                    .max_buf_size(options.max_header_bytes.max(8192));
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                connections.spawn(async move {
                    let _ = watcher.watch(connection).await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let handshake_deadline = options.header_read_timeout;
                let max_header_bytes = options.max_header_bytes.max(8192);
                connections.spawn(async move {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(handshake_deadline, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(handshake_deadline)
                        .max_buf_size(max_header_bytes);
                    builder
                        .http2()
                        .timer(TokioTimer::new())
                        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX))
                        .keep_alive_interval(Some(Duration::from_secs(30)))
                        .keep_alive_timeout(Duration::from_secs(20));
                    let connection = builder.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                });
            }
        }
    }
    drop(listener);
    pipeline.begin_drain();
    let drained = tokio::select! {
        outcome = tokio::time::timeout(options.shutdown_grace, graceful.shutdown()) => outcome.is_ok(),
        () = force.cancelled() => false,
    };
    // Whatever is still running is cancelled: dropping a connection drops its requests, whose
    // ledger entries are then recorded as cut off.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    ShutdownReport {
        drained,
        requests: requests.load(Ordering::Relaxed),
    }
}

async fn handle(
    pipeline: &Pipeline,
    health: &HealthInfo,
    request: http::Request<Incoming>,
) -> http::Response<ProxyBody> {
    let request_id = new_request_id();
    let path = request.uri().path();
    if path == "/_aegis" || path.starts_with("/_aegis/") {
        return reserved(pipeline, health, &request, &request_id);
    }
    let intent = Intent {
        request_id: request_id.clone(),
        via: Via::Gate,
        request,
    };
    match pipeline.handle(intent).await {
        Ok(response) => response,
        // The pipeline has logged the decision.
        Err(denial) => denial_response(&denial, &request_id),
    }
}

/// `/_aegis/health` and `/_aegis/metrics` (when metrics are on); every other reserved path is
/// `404 not_found`. Neither is written to the ledger.
fn reserved<B>(
    pipeline: &Pipeline,
    health: &HealthInfo,
    request: &http::Request<B>,
    request_id: &str,
) -> http::Response<ProxyBody> {
    let path = request.uri().path();
    if path == "/_aegis/metrics"
        && let Some(metrics) = pipeline.metrics()
    {
        let accept = request
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let format = Format::from_accept(accept);
        return text_response(format.content_type(), metrics.encode(format), request_id);
    }
    if path != "/_aegis/health" {
        return denial_response(&Denial::NotFound, request_id);
    }
    let (ready, body) = health_report(pipeline, health);
    let status = if ready {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body, request_id)
}
