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
use tracing::Instrument as _;

use aegis_core::checks::origin::OriginPolicy;
use aegis_core::checks::{self, CheckSettings, PolicyVerdict, RequestHead};
use aegis_core::config::PolicyMode;
use aegis_core::credential::InspectionMode;
use aegis_core::denial::Denial;
use aegis_core::domain::{Host, Scheme};
use aegis_core::timestamp::Timestamp;
use aegis_store::ledger_writer::{DurableError, LedgerWriter};

use crate::audit::{AuditedBody, RequestAudit};
use crate::body::{CappedBody, Encoding, IdleBody, RedactingBody};
use crate::holder::SnapshotHolder;
use crate::inject;
use crate::inspect;
use crate::limits::{InFlight, Limit, LimitKey, Limits};
use crate::metrics::Metrics;
use crate::upstream::{BoxError, OutboundBody, UpstreamClient};

/// Response bodies as they go back to the agent.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Uncompressed responses whose declared `Content-Length` is at most this are read whole,
/// redacted in one pass and sent with their new length: the agent gets head and body in one
/// write instead of a chunked stream (most API answers are this small).
const WHOLE_RESPONSE_MAX: u64 = 64 * 1024;

/// Which front door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The HTTP gate (Host/Origin rules apply).
    Gate,
    /// The MCP server.
    Mcp,
}

/// One request as a front door describes it.
pub struct Intent<B> {
    /// The request id (UUIDv7) assigned at accept.
    pub request_id: String,
    /// The front door.
    pub via: Via,
    /// Method, target, headers and the body stream.
    pub request: http::Request<B>,
}

impl<B> std::fmt::Debug for Intent<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers carry the agent token and possibly secrets: only the request id is shown.
        f.debug_struct("Intent")
            .field("request_id", &self.request_id)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
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
    /// Inspection buffer per request (`block`/`redact` modes).
    pub max_inspect_bytes: u64,
    /// Whether bodies over the inspection buffer pass with only their prefix scanned.
    pub pass_oversize_inspection: bool,
    /// In-flight requests per identified agent; 0 = no cap.
    pub max_concurrent_per_agent: u32,
}

/// The pipeline: snapshot, limits, upstream client.
#[derive(Debug)]
pub struct Pipeline {
    holder: Arc<SnapshotHolder>,
    limits: Limits,
    client: UpstreamClient,
    settings: PipelineSettings,
    draining: AtomicBool,
    metrics: Option<Arc<Metrics>>,
    ledger: Option<LedgerWriter>,
    /// Strict durability: entries are committed before the request goes on (SPEC.md §15.4).
    strict: bool,
    instance: String,
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
            metrics: None,
            ledger: None,
            strict: false,
            instance: String::new(),
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

    /// Counts every decision, its timing and bytes in `metrics` (SPEC.md §17.2).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics the pipeline counts in, when they are on.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Records every decision in the ledger through `writer`; `instance` names this process.
    /// With `strict`, a request's `request` entry is committed before it is forwarded and a
    /// denial's entry before the denial is answered (SPEC.md §15.4).
    pub fn with_ledger(mut self, writer: LedgerWriter, instance: String, strict: bool) -> Self {
        self.ledger = Some(writer);
        self.strict = strict;
        self.instance = instance;
        self
    }

    /// Runs one request through every step, forwards it, and records the decision in the
    /// ledger (a refusal at once; an allowed request when its response has been relayed).
    ///
    /// # Errors
    /// The [`Denial`] of the step that refused, or of the upstream failure;
    /// [`Denial::LedgerUnavailable`] when the decision could not be recorded in time.
    pub async fn handle<B>(&self, intent: Intent<B>) -> Result<http::Response<ProxyBody>, Denial>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let method = intent.request.method().as_str().to_owned();
        let target = intent
            .request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut audit = RequestAudit::new(
            &intent.request_id,
            ledger_via(intent.via),
            &self.instance,
            &method,
            &target,
            self.metrics.as_ref(),
        );
        // Nothing inside a request logs above debug (its decision line carries the request id
        // itself), so the span costs nothing at the default info level.
        let span = tracing::debug_span!("request", request_id = intent.request_id.as_str());
        let handled = self.handle_inner(intent, &mut audit).instrument(span).await;
        match handled {
            Ok(response) => {
                if !audit.wants_completion() {
                    audit.skip_completion();
                    return Ok(response);
                }
                let status = response.status().as_u16();
                Ok(response.map(|body| AuditedBody::new(body, audit, status).boxed_unsync()))
            }
            Err(denial) => {
                self.record_denial(&mut audit, &method, &target, &denial)
                    .await?;
                Err(denial)
            }
        }
    }

    /// Records a request its front door refused before it could become an [`Intent`] (an MCP
    /// tool call whose arguments do not make a request): one `blocked` entry, like the one for a
    /// gate request refused at step 1 (so, like it, without an agent: authentication is step 2).
    ///
    /// # Errors
    /// [`Denial::LedgerUnavailable`] when the entry could not be recorded in time.
    pub async fn record_refusal(
        &self,
        via: Via,
        request_id: &str,
        method: &str,
        target: &str,
        denial: &Denial,
    ) -> Result<(), Denial> {
        let mut audit = RequestAudit::new(
            request_id,
            ledger_via(via),
            &self.instance,
            method,
            target,
            self.metrics.as_ref(),
        );
        self.record_denial(&mut audit, method, target, denial).await
    }

    /// Writes the entry of a refused or failed request (through its reserved slot when it has
    /// one), with the service taken from the route when the checks had not named it yet.
    async fn record_denial(
        &self,
        audit: &mut RequestAudit,
        method: &str,
        target: &str,
        denial: &Denial,
    ) -> Result<(), Denial> {
        // Only on this path, so allowed requests parse their route once.
        if !audit.has_service()
            && let Ok(route) = checks::route::parse_route(method, target)
        {
            audit.service(route.service);
        }
        let entry = audit.denied(denial);
        if let Some(slot) = audit.slot.take() {
            slot.commit(entry);
        } else if let Some(writer) = &self.ledger {
            let recorded = if self.strict {
                writer.record_durable(entry).await.is_ok()
            } else {
                writer.record(entry).await.is_ok()
            };
            if !recorded {
                return Err(Denial::LedgerUnavailable);
            }
        }
        Ok(())
    }

    async fn handle_inner<B>(
        &self,
        intent: Intent<B>,
        audit: &mut RequestAudit,
    ) -> Result<http::Response<ProxyBody>, Denial>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // Step 0: admission.
        if self.is_draining() {
            return Err(Denial::ShuttingDown);
        }
        let snapshot = self.holder.load();
        if snapshot.is_sealed() {
            return Err(Denial::VaultSealed);
        }
        let (mut parts, body) = intent.request.into_parts();
        if intent.via == Via::Gate {
            self.check_origin(&parts)?;
        }
        // Step 1 (size part): a declared length over the limit is refused before reading.
        let declared_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|len| len > self.settings.max_body_bytes) {
            return Err(Denial::BodyTooLarge {
                limit: self.settings.max_body_bytes,
                setting: "gate.max_body_bytes",
            });
        }
        // Steps 1–6.
        let now = Timestamp::from_system_time(SystemTime::now());
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let head = RequestHead {
            method: parts.method.as_str(),
            target,
            target_host: header_bytes(&parts.headers, "x-target-host"),
            credential: header_bytes(&parts.headers, "x-aegis-credential"),
            agent_token: header_bytes(&parts.headers, "x-aegis-agent"),
        };
        let admission = match checks::admit(&snapshot, &head, self.settings.checks, now) {
            Ok(admission) => admission,
            Err(refusal) => {
                if let Some(agent) = refusal.agent.and_then(|i| snapshot.agent(i)) {
                    audit.agent(agent.agent().name.as_str());
                }
                if matches!(
                    refusal.denial,
                    Denial::AgentAuthRequired | Denial::AgentAuthFailed
                ) {
                    audit.peer(crate::peer::peer_label(&parts.extensions));
                }
                return Err(refusal.denial);
            }
        };
        if let Some(agent) = admission.agent_index().and_then(|i| snapshot.agent(i)) {
            audit.agent(agent.agent().name.as_str());
        }
        let credential = snapshot
            .credential(admission.credential_index())
            .ok_or(Denial::Internal)?;
        audit.admitted(
            admission.service(),
            credential.name.as_str(),
            &admission.target().to_string(),
        );
        // Step 8: rate limits (credential, agent), all or none; then the in-flight cap.
        let agent = admission
            .agent_index()
            .and_then(|i| snapshot.agent(i))
            .map(|a| a.agent());
        // Step 7's verdict: a dry-run refusal is recorded and the request goes on.
        let dry_run = self.settings.checks.policy_mode == PolicyMode::DryRun;
        let mut rule_limit = None;
        match (admission.policy(), agent) {
            (PolicyVerdict::WouldBlock(denial), _) => audit.would_block(denial.code(), None),
            (PolicyVerdict::Allowed(rule), Some(agent)) => {
                rule_limit = rule.rate_limit.map(|rate| {
                    let limit = Limit {
                        key: LimitKey::Rule(agent.id, rule.digest),
                        rate,
                    };
                    (limit, rule.name.as_str())
                });
            }
            _ => {}
        }
        // Step 8: rate limits (credential, agent, policy rule), all or none; in dry-run the
        // rule's limit is only consulted and recorded. Then the in-flight cap.
        let mut applying: Vec<Limit> = credential
            .rate_limit
            .map(|rate| Limit {
                key: LimitKey::Credential(credential.id),
                rate,
            })
            .into_iter()
            .chain(agent.and_then(|a| {
                a.rate_limit.map(|rate| Limit {
                    key: LimitKey::Agent(a.id),
                    rate,
                })
            }))
            .collect();
        if let Some((limit, _)) = rule_limit
            && !dry_run
        {
            applying.push(limit);
        }
        if !applying.is_empty() || rule_limit.is_some() {
            let now_ms = u64::try_from(now.as_millis()).unwrap_or(0);
            self.limits.prune(&snapshot, || rule_limits(&snapshot));
            if let Err(refused) = self.limits.admit(&applying, now_ms)? {
                let rule = rule_limit
                    .filter(|_| matches!(refused.key, LimitKey::Rule(..)))
                    .map(|(_, name)| name);
                audit.limited_by(refused.key.kind(), rule);
                if let Some(limit) = applying.iter().find(|l| l.key == refused.key) {
                    audit.rate_limit(limit.rate.to_string());
                }
                return Err(refused.into());
            }
            if let Some((limit, name)) = rule_limit
                && dry_run
                && self.limits.admit(&[limit], now_ms)?.is_err()
            {
                audit.would_block("rate_limited", Some(name));
                audit.limited_by("policy", Some(name));
            }
        }
        let in_flight = agent
            .map(|a| {
                self.limits
                    .enter(a.id, self.settings.max_concurrent_per_agent)
            })
            .transpose()?;
        // Step 9: inspection of what would be forwarded.
        inject::strip_agent_headers(&mut parts.headers, credential);
        let mode = credential.body_inspection;
        audit.inspection_mode(mode);
        let exceeded = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let streamed = IdleBody::new(
            CappedBody::new(
                Box::pin(body),
                self.settings.max_body_bytes,
                exceeded.clone(),
                audit.bytes_in.clone(),
            ),
            self.settings.idle_body,
            stalled.clone(),
        );
        let outbound_body: OutboundBody = if mode == InspectionMode::Off {
            streamed.boxed_unsync()
        } else {
            self.inspect(
                snapshot.redaction(),
                mode,
                admission.path_and_query(),
                &parts.headers,
                streamed,
                audit,
            )
            .await
            .map_err(|denial| self.body_failure(denial, &exceeded, &stalled))?
        };

        // The decision's ledger slot is reserved before the secret is revealed; in strict
        // durability the `request` entry is committed first.
        if let Some(writer) = &self.ledger {
            if self.strict {
                let committed = writer.record_durable(audit.started()).await;
                // Queued but unconfirmed still lands in the ledger: what follows is its end.
                audit.started = !matches!(committed, Err(DurableError::NotQueued));
                committed.map_err(|_| Denial::LedgerUnavailable)?;
            }
            let slot = writer
                .reserve_slot()
                .await
                .map_err(|_| Denial::LedgerUnavailable)?;
            audit.slot = Some(slot);
        }
        let mut permit = admission.into_permit();
        let secret = snapshot.secrets().reveal(&permit).ok_or(Denial::Internal)?;
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
        let mut outbound = http::Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(outbound_body)
            .map_err(|_| Denial::Internal)?;
        *outbound.headers_mut() = std::mem::take(&mut parts.headers);

        let sent_at = std::time::Instant::now();
        let response = self
            .client
            .send(outbound)
            .await
            .map_err(|denial| self.body_failure(denial, &exceeded, &stalled))?;
        if let Some(metrics) = &self.metrics {
            metrics.upstream_answered(credential.service.as_str(), sent_at.elapsed());
        }
        let injected = Some(permit.credential_index());
        let shaped = self.shape_response(
            response,
            credential,
            &snapshot,
            injected,
            &intent.request_id,
            &audit.redactions,
        );
        if !shaped.whole {
            return Ok(hold_until_done(shaped.response, in_flight));
        }
        let (head, body) = shaped.response.into_parts();
        let collected = body.collect().await.map_err(|_| {
            if shaped.stalled.load(Ordering::SeqCst) {
                Denial::UpstreamTimeout
            } else {
                Denial::UpstreamUnreachable
            }
        })?;
        let raw = collected.to_bytes();
        let (redacted, count) = snapshot.redaction().redact(&raw, injected);
        audit.redactions.fetch_add(count as u64, Ordering::Relaxed);
        let bytes = match redacted {
            // Nothing to replace (the usual case): the bytes go out as they came, uncopied.
            std::borrow::Cow::Borrowed(_) => raw.clone(),
            std::borrow::Cow::Owned(owned) => Bytes::from(owned),
        };
        let response = http::Response::from_parts(head, full_body(bytes));
        Ok(hold_until_done(response, in_flight))
    }

    /// Step 9 (SPEC.md §14): scans the URL and the forwarded headers, then the body as the
    /// credential's mode says, records the findings and returns the body to forward.
    async fn inspect<B>(
        &self,
        set: &Arc<aegis_core::redact::RedactionSet>,
        mode: InspectionMode,
        path_and_query: &str,
        headers: &HeaderMap,
        streamed: B,
        audit: &mut RequestAudit,
    ) -> Result<OutboundBody, Denial>
    where
        B: Body<Data = Bytes, Error = BoxError> + Send + Unpin + 'static,
    {
        let head = inspect::scan_head(set, path_and_query, headers);
        audit.findings(&head);
        let warn = mode == InspectionMode::Warn;
        if !warn && let Some(first) = head.first() {
            return Err(inspect::blocked(first));
        }
        let encoding = request_encoding(headers);
        if warn {
            // zstd is decoded only once buffered; streamed, it is unscannable.
            let Some(encoding) = encoding.filter(|e| *e != Encoding::Zstd) else {
                audit.findings(&[inspect::body_finding(
                    aegis_core::inspect::Detector::UnscannableEncoding,
                    0,
                )]);
                return Ok(streamed.boxed_unsync());
            };
            let findings = inspect::SharedFindings::default();
            audit.streamed_findings(findings.clone());
            let body = inspect::InspectingBody::new(streamed, set.clone(), encoding, findings);
            return Ok(body.boxed_unsync());
        }
        let Some(encoding) = encoding else {
            audit.findings(&[inspect::body_finding(
                aegis_core::inspect::Detector::UnscannableEncoding,
                0,
            )]);
            return Err(inspect::unscannable());
        };
        let limit = self.settings.max_inspect_bytes;
        let pass = self.settings.pass_oversize_inspection;
        let (bytes, rest) = match inspect::buffer(streamed, limit, pass).await? {
            inspect::Buffered::Whole(bytes) => (bytes, None),
            inspect::Buffered::Prefix(bytes, rest) => (bytes, Some(rest)),
        };
        let redact = mode == InspectionMode::Redact;
        let inspected = match inspect::inspect_buffered(set, bytes, encoding, redact, limit, pass) {
            Ok(inspected) => inspected,
            Err((denial, findings)) => {
                audit.findings(&findings);
                return Err(denial);
            }
        };
        audit.findings(&inspected.findings);
        if inspected.truncated || rest.is_some() {
            audit.inspection_truncated();
        }
        Ok(match rest {
            None => full_body(inspected.body),
            Some(rest) => {
                let first =
                    http_body_util::Full::new(inspected.body).map_err(|never| match never {});
                futures_chain(first, rest).boxed_unsync()
            }
        })
    }

    /// Step 0 for the gate: `Host` and `:authority` (which must agree when both are present),
    /// `Origin`, `Sec-Fetch-Site`, and no absolute-form targets on HTTP/1.
    fn check_origin(&self, parts: &http::request::Parts) -> Result<(), Denial> {
        let host_header = header_bytes(&parts.headers, "host");
        let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
        if parts.version < http::Version::HTTP_2 && parts.uri.scheme().is_some() {
            return Err(Denial::bad_request(
                "only origin-form request targets (/service/path) are accepted",
            ));
        }
        if let (Some(host), Some(authority)) = (host_header, authority)
            && !host.eq_ignore_ascii_case(authority)
        {
            return Err(Denial::OriginDenied {
                reason: "Host and :authority disagree".to_owned(),
            });
        }
        self.settings.origin.check(
            host_header.or(authority),
            header_bytes(&parts.headers, "origin"),
            header_bytes(&parts.headers, "sec-fetch-site"),
        )
    }

    /// Turns a failure into `body_too_large` or `request_timeout` when the agent's body caused
    /// it, whatever error the client reported.
    fn body_failure(&self, denial: Denial, exceeded: &AtomicBool, stalled: &AtomicBool) -> Denial {
        if exceeded.load(Ordering::SeqCst) {
            Denial::BodyTooLarge {
                limit: self.settings.max_body_bytes,
                setting: "gate.max_body_bytes",
            }
        } else if stalled.load(Ordering::SeqCst) {
            Denial::RequestTimeout
        } else {
            denial
        }
    }

    /// Builds the agent's response: a fresh head (status and filtered headers only, so nothing
    /// the upstream put in the status line or extensions passes), hop-by-hop, origin-scoped and
    /// (unless allowed) `Set-Cookie` headers removed, header values and body redacted, and the
    /// request id added.
    fn shape_response(
        &self,
        response: http::Response<hyper::body::Incoming>,
        credential: &aegis_core::credential::Credential,
        snapshot: &aegis_core::snapshot::Snapshot,
        injected: Option<usize>,
        request_id: &str,
        redactions: &Arc<AtomicU64>,
    ) -> Shaped {
        let (upstream, body) = response.into_parts();
        let declared_length = upstream
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut headers = upstream.headers;
        // Read the coding before anything is stripped: `Connection: content-encoding` must not
        // hide it.
        let encodings: Vec<&HeaderValue> =
            headers.get_all(header::CONTENT_ENCODING).iter().collect();
        let encoding = match encodings.as_slice() {
            [] => Some(Encoding::Identity),
            [one] => Encoding::from_header(one.to_str().ok()),
            _ => None,
        }
        // A streamed zstd response cannot be decoded (the gate never asks for one).
        .filter(|e| *e != Encoding::Zstd);
        inject::strip_upstream_headers(&mut headers, credential.pass_cookies);
        let idle = self.settings.idle_body;
        let relay_stalled = Arc::new(AtomicBool::new(false));
        let whole = self.settings.response_redaction
            && encoding == Some(Encoding::Identity)
            && declared_length.is_some_and(|len| len <= WHOLE_RESPONSE_MAX);
        let body: ProxyBody = if whole {
            // Read raw and redacted in one pass by the caller (see `WHOLE_RESPONSE_MAX`).
            redact_headers(&mut headers, snapshot.redaction(), injected, redactions);
            headers.remove(header::CONTENT_LENGTH);
            IdleBody::new(body, idle, relay_stalled.clone()).boxed_unsync()
        } else if self.settings.response_redaction {
            let set = snapshot.redaction().clone();
            redact_headers(&mut headers, &set, injected, redactions);
            let decode = match encoding {
                Some(encoding) => {
                    headers.remove(header::CONTENT_ENCODING);
                    encoding
                }
                // A coding we cannot decode: the bytes pass as they are (the coding header
                // stays), still through the redactor, which catches any plain echo.
                None => {
                    self.count_unscanned(snapshot, credential);
                    Encoding::Identity
                }
            };
            headers.remove(header::CONTENT_LENGTH);
            let redacting = RedactingBody::new(body, decode, set, injected, redactions.clone());
            IdleBody::new(redacting, idle, relay_stalled.clone()).boxed_unsync()
        } else {
            self.count_unscanned(snapshot, credential);
            IdleBody::new(body, idle, relay_stalled.clone()).boxed_unsync()
        };
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-aegis-request-id", id);
        }
        let mut response = http::Response::new(body);
        *response.status_mut() = upstream.status;
        *response.headers_mut() = headers;
        Shaped {
            response,
            whole,
            stalled: relay_stalled,
        }
    }
}

impl Pipeline {
    /// A response of `credential`'s service goes back without (full) echo redaction.
    fn count_unscanned(
        &self,
        snapshot: &aegis_core::snapshot::Snapshot,
        credential: &aegis_core::credential::Credential,
    ) {
        if let Some(metrics) = &self.metrics {
            metrics.unscanned(snapshot, credential.service.as_str());
        }
    }
}

/// The agent's response as [`Pipeline::shape_response`] built it.
struct Shaped {
    response: http::Response<ProxyBody>,
    /// Small and uncompressed: to be read whole before the head is sent.
    whole: bool,
    /// Set when the upstream's body stalled past the idle deadline.
    stalled: Arc<AtomicBool>,
}

/// The ledger's name for a front door.
fn ledger_via(via: Via) -> aegis_core::ledger::Via {
    match via {
        Via::Gate => aegis_core::ledger::Via::Gate,
        Via::Mcp => aegis_core::ledger::Via::Mcp,
    }
}

/// Keeps the agent's in-flight place until the response body has been sent (or dropped).
fn hold_until_done(
    response: http::Response<ProxyBody>,
    in_flight: Option<InFlight>,
) -> http::Response<ProxyBody> {
    match in_flight {
        None => response,
        Some(guard) => response.map(|body| {
            Guarded {
                inner: body,
                _guard: guard,
            }
            .boxed_unsync()
        }),
    }
}

/// A body that holds a guard for as long as it lives.
struct Guarded<B> {
    inner: B,
    _guard: InFlight,
}

impl<B: Body + Unpin> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The limits of every policy rule that has one, keyed per agent: what
/// [`Limits::prune`] keeps.
fn rule_limits(snapshot: &aegis_core::snapshot::Snapshot) -> Vec<Limit> {
    let policies = snapshot.policies();
    let mut live = Vec::new();
    for indexed in snapshot.agents() {
        let agent = indexed.agent();
        let Some(policy) = policies.policy(agent.name.as_str()) else {
            continue;
        };
        live.extend(policy.rules().iter().filter_map(|rule| {
            rule.rate_limit().map(|rate| Limit {
                key: LimitKey::Rule(agent.id, *rule.digest().as_bytes()),
                rate,
            })
        }));
    }
    live
}

fn header_bytes<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

/// The request body's content coding, `None` when the gate cannot decode it (an unknown
/// coding, or several stacked).
fn request_encoding(headers: &HeaderMap) -> Option<Encoding> {
    let codings: Vec<&HeaderValue> = headers.get_all(header::CONTENT_ENCODING).iter().collect();
    match codings.as_slice() {
        [] => Some(Encoding::Identity),
        [one] => Encoding::from_header(one.to_str().ok()),
        _ => None,
    }
}

fn full_body(bytes: Bytes) -> OutboundBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The scanned prefix followed by the rest of the stream.
fn futures_chain<A, B>(first: A, rest: B) -> Chain<A, B> {
    Chain {
        first: Some(first),
        rest,
    }
}

/// Two bodies one after the other.
struct Chain<A, B> {
    first: Option<A>,
    rest: B,
}

impl<A, B> Body for Chain<A, B>
where
    A: Body<Data = Bytes, Error = BoxError> + Unpin,
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(first) = this.first.as_mut() {
            match std::pin::Pin::new(first).poll_frame(cx) {
                std::task::Poll::Ready(None) => this.first = None,
                other => return other,
            }
        }
        std::pin::Pin::new(&mut this.rest).poll_frame(cx)
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

/// `scheme://host[:port]/path?query` for the permit's target, written into one string that
/// the URI then takes over without a copy.
fn upstream_uri(permit: &aegis_core::permit::Permit) -> Result<http::Uri, Denial> {
    use std::fmt::Write as _;
    let (scheme, default_port) = match permit.scheme() {
        Scheme::Https => ("https://", 443),
        Scheme::Http => ("http://", 80),
    };
    let path_and_query = permit.path_and_query();
    let mut uri = String::with_capacity(scheme.len() + 64 + path_and_query.len());
    uri.push_str(scheme);
    // Writing into a String cannot fail.
    let _ = match permit.target().host() {
        Host::Ipv6(addr) => write!(uri, "[{addr}]"),
        other => write!(uri, "{other}"),
    };
    if permit.port() != default_port {
        let _ = write!(uri, ":{}", permit.port());
    }
    uri.push_str(path_and_query);
    http::Uri::try_from(uri)
        .map_err(|_| Denial::bad_request("the request target cannot be forwarded"))
}

/// A new UUIDv7 request id.
pub fn new_request_id() -> String {
    let millis = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let random = ID_RANDOM.with_borrow_mut(IdRandom::take);
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// Random bytes one request id takes.
const ID_RANDOM_BYTES: usize = 10;

/// Request ids whose random bytes one draw from the system generator provides.
const IDS_PER_DRAW: usize = 64;

thread_local! {
    /// This thread's store of random bytes for request ids.
    static ID_RANDOM: std::cell::RefCell<IdRandom> = const {
        std::cell::RefCell::new(IdRandom {
            bytes: [0; ID_RANDOM_BYTES * IDS_PER_DRAW],
            used: ID_RANDOM_BYTES * IDS_PER_DRAW,
        })
    };
}

/// Random bytes drawn for many request ids at once. A request id is no secret (the agent gets
/// it back and the logs show it), but it must not repeat: every id takes bytes no other id
/// took. One draw per id cost more than the rest of making it.
struct IdRandom {
    bytes: [u8; ID_RANDOM_BYTES * IDS_PER_DRAW],
    used: usize,
}

impl IdRandom {
    /// The next id's bytes, drawing more from the system generator when none are left.
    fn take(&mut self) -> [u8; ID_RANDOM_BYTES] {
        if self.used + ID_RANDOM_BYTES > self.bytes.len() {
            // aws-lc aborts rather than report a failing generator, so this never fails in
            // practice; were it to, the store would keep its old bytes and ids would repeat.
            let _ = aegis_core::crypto::random_bytes(&mut self.bytes);
            self.used = 0;
        }
        let mut taken = [0u8; ID_RANDOM_BYTES];
        taken.copy_from_slice(&self.bytes[self.used..self.used + ID_RANDOM_BYTES]);
        self.used += ID_RANDOM_BYTES;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_lowercase_uuid_v7_across_many_draws() {
        let ids: Vec<String> = (0..IDS_PER_DRAW * 5 + 3)
            .map(|_| new_request_id())
            .collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "a request id repeated");
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 7, "{id}");
            assert_eq!(
                id,
                &parsed.hyphenated().to_string(),
                "lowercase, hyphenated"
            );
        }
        // The random part differs between ids made in the same millisecond.
        let randoms: std::collections::HashSet<[u8; 10]> = ids
            .iter()
            .map(|id| {
                let bytes = *uuid::Uuid::parse_str(id).expect("a UUID").as_bytes();
                let mut tail = [0u8; 10];
                tail.copy_from_slice(&bytes[6..]);
                tail
            })
            .collect();
        assert_eq!(randoms.len(), ids.len());
    }
}
