//! The streamable HTTP transport (SPEC.md §16.1, §16.3): `/mcp` on a loopback listener, rmcp's
//! session handling behind a front that authenticates every HTTP request, binds each session
//! to the agent that created it, and caps the number of sessions. `Host`/`Origin` validation
//! and the message size limit are rmcp's, configured from `mcp.*`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::SecretString;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use aegis_core::denial::Denial;
use aegis_engine::Pipeline;
use aegis_engine::pipeline::new_request_id;

use crate::identity::AgentIdentity;
use crate::server::{AegisMcp, McpSettings};
use crate::tool_error::denial_object;

/// Settings of the HTTP transport (`mcp.*`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The address the listener is bound to (accepted as a `Host`).
    pub bind: IpAddr,
    /// Extra accepted `Host` values.
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values; any other `Origin` is refused.
    pub allowed_origins: Vec<String>,
    /// Concurrent sessions; further `initialize` requests get 429.
    pub max_sessions: usize,
    /// Largest JSON-RPC message accepted (413 above).
    pub max_request_bytes: usize,
}

/// Serves `/mcp` on `listener` until `stop` fires.
pub async fn serve_http(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    settings: Arc<McpSettings>,
    http: HttpSettings,
    stop: CancellationToken,
) {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(SESSION_IDLE);
    let sessions = Arc::new(sessions);
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    hosts.push(http.bind.to_string());
    if let IpAddr::V6(addr) = http.bind {
        hosts.push(format!("[{addr}]"));
    }
    hosts.extend(http.allowed_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(http.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(http.max_request_bytes)
        .with_cancellation_token(stop.child_token());
    let factory_pipeline = pipeline.clone();
    let factory_settings = settings.clone();
    let service = StreamableHttpService::new(
        move || {
            Ok(AegisMcp::new(
                factory_pipeline.clone(),
                factory_settings.clone(),
                AgentIdentity::anonymous(),
            ))
        },
        sessions.clone(),
        config,
    );
    let front = Arc::new(Front {
        service,
        sessions,
        owners: Mutex::new(HashMap::new()),
        pipeline,
        settings,
        max_sessions: http.max_sessions,
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let front = front.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let front = front.clone();
                async move { Ok::<_, Infallible>(front.handle(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

type HttpResponse = http::Response<BoxBody<Bytes, Infallible>>;

/// Authentication, session ownership and the session cap in front of rmcp's service.
struct Front {
    service: StreamableHttpService<AegisMcp, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
    /// Session id → digest of the token that created it (`None`: anonymous).
    owners: Mutex<HashMap<String, Option<[u8; 32]>>>,
    pipeline: Arc<Pipeline>,
    settings: Arc<McpSettings>,
    max_sessions: usize,
}

impl Front {
    async fn handle(&self, mut request: http::Request<Incoming>) -> HttpResponse {
        if request.uri().path() != "/mcp" {
            return error_response(http::StatusCode::NOT_FOUND, &Denial::NotFound);
        }
        let identity = match presented_token(request.headers()) {
            Some(token) => AgentIdentity::from_token(token),
            None => AgentIdentity::anonymous(),
        };
        let snapshot = self.pipeline.holder().load();
        if let Err(denial) = identity.authenticate(&snapshot, self.settings.require_agent_auth) {
            let mut response = error_response(http::StatusCode::UNAUTHORIZED, &denial);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Aegis-Agent"),
            );
            return response;
        }
        let digest = identity.digest();
        let session = request
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(id) = &session
            && !self.is_owner(id, digest.as_ref())
        {
            return error_response(http::StatusCode::FORBIDDEN, &Denial::AgentAuthFailed);
        }
        if session.is_none()
            && request.method() == http::Method::POST
            && self.sessions.sessions.read().await.len() >= self.max_sessions
        {
            let limit = u32::try_from(self.max_sessions).unwrap_or(u32::MAX);
            return error_response(
                http::StatusCode::TOO_MANY_REQUESTS,
                &Denial::TooManyConcurrentRequests { limit },
            );
        }
        let deleting = request.method() == http::Method::DELETE;
        request.extensions_mut().insert(identity);
        let response = self.service.handle(request).await;
        match session {
            None => {
                if let Some(id) = response
                    .headers()
                    .get(SESSION_HEADER)
                    .and_then(|v| v.to_str().ok())
                {
                    self.bind_session(id.to_owned(), digest).await;
                }
            }
            Some(id) if deleting && response.status().is_success() => {
                self.owners_map().remove(&id);
            }
            Some(_) => {}
        }
        response
    }

    /// Whether the identity with `digest` may use session `id` (unknown ids pass: rmcp
    /// answers them itself).
    fn is_owner(&self, id: &str, digest: Option<&[u8; 32]>) -> bool {
        match self.owners_map().get(id) {
            None => true,
            Some(None) => digest.is_none(),
            Some(Some(owner)) => digest.is_some_and(|d| bool::from(owner.ct_eq(d))),
        }
    }

    /// Records the session's owner, forgetting owners of sessions rmcp has closed.
    async fn bind_session(&self, id: String, digest: Option<[u8; 32]>) {
        let live: Vec<String> = self
            .sessions
            .sessions
            .read()
            .await
            .keys()
            .map(|k| k.to_string())
            .collect();
        let mut owners = self.owners_map();
        owners.retain(|known, _| live.iter().any(|l| l == known));
        owners.insert(id, digest);
    }

    fn owners_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<[u8; 32]>>> {
        // A poisoned map only means a panic elsewhere mid-insert; its entries are still whole.
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `Authorization: Bearer <token>`, else `X-Aegis-Agent`.
fn presented_token(headers: &http::HeaderMap) -> Option<SecretString> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(SecretString::from(token.trim()));
    }
    headers
        .get("x-aegis-agent")
        .map(|v| SecretString::from(String::from_utf8_lossy(v.as_bytes()).as_ref()))
}

fn error_response(status: http::StatusCode, denial: &Denial) -> HttpResponse {
    let body = denial_object(denial, &new_request_id()).to_string();
    let mut response = http::Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

const SESSION_HEADER: &str = "mcp-session-id";

/// Sessions idle this long are closed (SPEC.md §16.3).
const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// Time for a client to send a complete request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
