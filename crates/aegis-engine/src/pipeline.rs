//! The one request pipeline (DESIGN.md §3). Front doors (the HTTP gate, later the MCP server)
//! hand it an [`Intent`]; it runs the checks in order on the snapshot in force, applies the
//! limits, mints the permit, injects the secret, forwards, and streams the response back through
//! the echo redactor. Every refusal is a [`Denial`]; the front door maps it to its protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http_body::Body;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;

use aegis_core::checks::origin::OriginPolicy;
use aegis_core::checks::{self, CheckSettings, RequestHead};
use aegis_core::denial::Denial;
use aegis_core::domain::{Host, Scheme};
use aegis_core::timestamp::Timestamp;

use crate::body::{CappedBody, Encoding, IdleBody, RedactingBody};
use crate::holder::SnapshotHolder;
use crate::inject;
use crate::limits::Limits;
use crate::upstream::{BoxError, UpstreamClient};

/// Response bodies as they go back to the agent.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Which front door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The HTTP gate (Host/Origin rules apply).
    Gate,
    /// The MCP server.
    Mcp,
}

/// One request as a front door describes it.
#[derive(Debug)]
pub struct Intent<B> {
    /// The request id (UUIDv7) assigned at accept.
    pub request_id: String,
    /// The front door.
    pub via: Via,
    /// Method, target, headers and the body stream.
    pub request: http::Request<B>,
}

/// Settings of the pipeline that come from configuration.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Header-check settings (agent auth).
    pub checks: CheckSettings,
    /// Host and Origin rules for the gate.
    pub origin: OriginPolicy,
    /// Largest request body accepted.
    pub max_body_bytes: u64,
    /// Whether responses are scanned for echoed secrets.
    pub response_redaction: bool,
    /// Longest gap between body bytes, in either direction.
    pub idle_body: std::time::Duration,
}

/// The pipeline: snapshot, limits, upstream client.
#[derive(Debug)]
pub struct Pipeline {
    holder: Arc<SnapshotHolder>,
    limits: Limits,
    client: UpstreamClient,
    settings: PipelineSettings,
    draining: AtomicBool,
    redactions: Arc<AtomicU64>,
}

impl Pipeline {
    /// Assembles a pipeline around a snapshot holder and an upstream client.
    pub fn new(
        holder: Arc<SnapshotHolder>,
        client: UpstreamClient,
        settings: PipelineSettings,
    ) -> Self {
        Self {
            holder,
            limits: Limits::default(),
            client,
            settings,
            draining: AtomicBool::new(false),
            redactions: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The snapshot holder (health reporting, reload task).
    pub fn holder(&self) -> &Arc<SnapshotHolder> {
        &self.holder
    }

    /// Refuses new requests with `shutting_down` from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the gate is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Echo redactions made since start.
    pub fn redactions(&self) -> u64 {
        self.redactions.load(Ordering::Relaxed)
    }

    /// Runs one request through every step and forwards it.
    ///
    /// # Errors
    /// The [`Denial`] of the step that refused, or of the upstream failure.
    pub async fn handle<B>(&self, intent: Intent<B>) -> Result<http::Response<ProxyBody>, Denial>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if self.is_draining() {
            return Err(Denial::ShuttingDown);
        }
        let (mut parts, body) = intent.request.into_parts();
        if intent.via == Via::Gate {
            let host = parts
                .headers
                .get(header::HOST)
                .map(HeaderValue::as_bytes)
                .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
            self.settings.origin.check(
                host,
                parts.headers.get(header::ORIGIN).map(HeaderValue::as_bytes),
                parts
                    .headers
                    .get("sec-fetch-site")
                    .map(HeaderValue::as_bytes),
            )?;
            if parts.uri.scheme().is_some() && parts.version < http::Version::HTTP_2 {
                return Err(Denial::bad_request(
                    "only origin-form request targets (/service/path) are accepted",
                ));
            }
        }
        let snapshot = self.holder.load();
        let now = Timestamp::from_system_time(SystemTime::now());
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let head = RequestHead {
            method: parts.method.as_str(),
            target,
            target_host: parts
                .headers
                .get("x-target-host")
                .map(HeaderValue::as_bytes),
            credential: parts
                .headers
                .get("x-aegis-credential")
                .map(HeaderValue::as_bytes),
            agent_token: parts
                .headers
                .get("x-aegis-agent")
                .map(HeaderValue::as_bytes),
        };
        let admission = checks::admit(&snapshot, &head, self.settings.checks, now)?;
        let declared_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|len| len > self.settings.max_body_bytes) {
            return Err(Denial::BodyTooLarge {
                limit: self.settings.max_body_bytes,
            });
        }
        let credential = snapshot
            .credential(admission.credential_index())
            .ok_or(Denial::Internal)?;
        if let Some(rate) = credential.rate_limit {
            let now_ms = u64::try_from(now.as_millis()).unwrap_or(0);
            self.limits.admit_credential(credential.id, rate, now_ms)?;
        }

        let mut permit = admission.into_permit();
        let secret = snapshot.secrets().reveal(&permit).ok_or(Denial::Internal)?;
        inject::strip_agent_headers(&mut parts.headers, credential);
        if let Some(rewritten) = inject::inject(
            &mut parts.headers,
            permit.path_and_query(),
            credential,
            secret,
        )
        .map_err(|_| Denial::Internal)?
        {
            permit.set_path_and_query(rewritten);
        }
        if self.settings.response_redaction {
            parts.headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, deflate, br"),
            );
        }
        let uri = upstream_uri(&permit)?;
        let exceeded = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let mut outbound = http::Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(
                IdleBody::new(
                    CappedBody::new(
                        Box::pin(body),
                        self.settings.max_body_bytes,
                        exceeded.clone(),
                    ),
                    self.settings.idle_body,
                    stalled.clone(),
                )
                .boxed_unsync(),
            )
            .map_err(|_| Denial::Internal)?;
        *outbound.headers_mut() = std::mem::take(&mut parts.headers);

        let response = self.client.send(outbound).await.map_err(|denial| {
            if exceeded.load(Ordering::SeqCst) {
                Denial::BodyTooLarge {
                    limit: self.settings.max_body_bytes,
                }
            } else if stalled.load(Ordering::SeqCst) {
                Denial::RequestTimeout
            } else {
                denial
            }
        })?;
        let injected = Some(permit.credential_index());
        Ok(self.shape_response(
            response,
            credential,
            &snapshot,
            injected,
            &intent.request_id,
        ))
    }

    /// Removes hop-by-hop and (unless allowed) `Set-Cookie` headers, redacts header values and
    /// the body, and adds the request id.
    fn shape_response(
        &self,
        response: http::Response<hyper::body::Incoming>,
        credential: &aegis_core::credential::Credential,
        snapshot: &aegis_core::snapshot::Snapshot,
        injected: Option<usize>,
        request_id: &str,
    ) -> http::Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        inject::strip_hop_by_hop(&mut parts.headers);
        if !credential.pass_cookies {
            parts.headers.remove(header::SET_COOKIE);
        }
        let idle = self.settings.idle_body;
        let relay_stalled = Arc::new(AtomicBool::new(false));
        let body: ProxyBody = if self.settings.response_redaction {
            let set = snapshot.redaction().clone();
            redact_headers(&mut parts.headers, &set, injected, &self.redactions);
            let encoding = Encoding::from_header(
                parts
                    .headers
                    .get(header::CONTENT_ENCODING)
                    .and_then(|v| v.to_str().ok()),
            );
            match encoding {
                Some(encoding) => {
                    parts.headers.remove(header::CONTENT_ENCODING);
                    parts.headers.remove(header::CONTENT_LENGTH);
                    let redacting =
                        RedactingBody::new(body, encoding, set, injected, self.redactions.clone());
                    IdleBody::new(redacting, idle, relay_stalled).boxed_unsync()
                }
                // An encoding we cannot decode passes through unscanned.
                None => IdleBody::new(body, idle, relay_stalled).boxed_unsync(),
            }
        } else {
            IdleBody::new(body, idle, relay_stalled).boxed_unsync()
        };
        if let Ok(id) = HeaderValue::from_str(request_id) {
            parts.headers.insert("x-aegis-request-id", id);
        }
        http::Response::from_parts(parts, body)
    }
}

fn redact_headers(
    headers: &mut HeaderMap,
    set: &aegis_core::redact::RedactionSet,
    injected: Option<usize>,
    counter: &AtomicU64,
) {
    if set.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        let (redacted, count) = set.redact(value.as_bytes(), injected);
        if count > 0 {
            counter.fetch_add(count as u64, Ordering::Relaxed);
            if let Ok(replacement) = HeaderValue::from_bytes(&redacted) {
                *value = replacement;
            } else {
                *value = HeaderValue::from_static("[REDACTED]");
            }
        }
    }
}

/// `scheme://host[:port]/path?query` for the permit's target.
fn upstream_uri(permit: &aegis_core::permit::Permit) -> Result<http::Uri, Denial> {
    let scheme = match permit.scheme() {
        Scheme::Https => "https",
        Scheme::Http => "http",
    };
    let host = match permit.target().host() {
        Host::Ipv6(addr) => format!("[{addr}]"),
        other => other.to_string(),
    };
    let default_port = match permit.scheme() {
        Scheme::Https => 443,
        Scheme::Http => 80,
    };
    let authority = if permit.port() == default_port {
        host
    } else {
        format!("{host}:{}", permit.port())
    };
    format!("{scheme}://{authority}{}", permit.path_and_query())
        .parse()
        .map_err(|_| Denial::bad_request("the request target cannot be forwarded"))
}

/// A new UUIDv7 request id.
pub fn new_request_id() -> String {
    let millis = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let mut random = [0u8; 10];
    let _ = aegis_core::crypto::random_bytes(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}
