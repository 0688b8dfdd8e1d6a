//! The ledger entry of one request (SPEC.md §15.1): filled in as the pipeline learns who asked
//! for what, queued through a reserved slot before the secret is revealed, and completed when
//! the response has been relayed (or the request was abandoned).
//!
//! In strict durability (§15.4) the `request` entry is committed before the request is
//! forwarded ([`RequestAudit::started`]); from then on every later entry of the request is its
//! `request_end`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame};

use aegis_core::credential::InspectionMode;
use aegis_core::denial::{Denial, Outcome as DenialOutcome};
use aegis_core::inspect::{Finding, MAX_FINDINGS};
use aegis_core::ledger::{EntryContent, Outcome, Via};
use aegis_store::ledger_writer::LedgerSlot;

use crate::inspect::SharedFindings;
use crate::metrics::{InflightGuard, InspectionAction, Metrics};
use crate::upstream::BoxError;

/// What is known about a request so far. Dropped with its slot still reserved (the request was
/// abandoned), it records the request as cut off.
#[derive(Debug)]
pub(crate) struct RequestAudit {
    started_at: Instant,
    /// What a refusal's webhook event needs besides the entry (SPEC.md §18.1): the refusing
    /// limit for `rate_limited`, the peer for agent-auth refusals.
    refusal_detail: serde_json::Map<String, serde_json::Value>,
    /// The entry so far; taken (not cloned) when the final entry is built.
    base: Option<EntryContent>,
    /// The reserved slot, once the request is about to be forwarded.
    pub(crate) slot: Option<LedgerSlot>,
    /// Whether the `request` entry has been queued on its own (strict durability), so what
    /// follows is the `request_end`.
    pub(crate) started: bool,
    /// The policy rule behind a dry-run `would_block` or a rule-limit refusal (`policy_rule`).
    policy_rule: Option<String>,
    /// Which limiter refused a `rate_limited` request: `credential`, `agent` or `policy`.
    limiter: Option<&'static str>,
    /// Inspection findings known so far (SPEC.md §14.1), at most `MAX_FINDINGS`.
    findings: Vec<Finding>,
    /// `warn` mode: the findings the streaming scanner leaves when the request body ends.
    streamed_findings: Option<SharedFindings>,
    /// Only a prefix of the body was scanned (`gate.oversize_inspection: pass`).
    inspection_truncated: bool,
    /// The credential's inspection mode, once the request reached step 9.
    inspection_mode: Option<InspectionMode>,
    /// Request body bytes read from the agent so far.
    pub(crate) bytes_in: Arc<AtomicU64>,
    /// Vault secrets replaced in this request's response so far.
    pub(crate) redactions: Arc<AtomicU64>,
    /// Where the final decision is counted; `None` when metrics are off.
    metrics: Option<Arc<Metrics>>,
    /// Holds the request in the in-flight gauge until the audit is dropped.
    _inflight: Option<InflightGuard>,
    /// Whether the final decision has been counted and logged.
    observed: bool,
}

impl RequestAudit {
    /// Starts the record of a request: id, front door, method and path (never the query).
    pub(crate) fn new(
        request_id: &str,
        via: Via,
        instance: &str,
        method: &str,
        target: &str,
        metrics: Option<&Arc<Metrics>>,
    ) -> Self {
        let base = EntryContent::request(Outcome::Allowed, via, instance)
            .with_request_id(request_id)
            .with_method(method)
            .with_path(target.as_bytes());
        Self {
            started_at: Instant::now(),
            refusal_detail: serde_json::Map::new(),
            base: Some(base),
            slot: None,
            started: false,
            policy_rule: None,
            limiter: None,
            findings: Vec::new(),
            streamed_findings: None,
            inspection_truncated: false,
            inspection_mode: None,
            bytes_in: Arc::new(AtomicU64::new(0)),
            redactions: Arc::new(AtomicU64::new(0)),
            _inflight: metrics.map(Metrics::enter),
            metrics: metrics.cloned(),
            observed: false,
        }
    }

    /// Whether the final decision must be seen even without a ledger slot (metrics, logs).
    pub(crate) fn wants_completion(&self) -> bool {
        self.slot.is_some() || self.metrics.is_some() || tracing::enabled!(tracing::Level::INFO)
    }

    /// Nothing will watch this request's end: no slot, no metrics, no log line.
    pub(crate) fn skip_completion(&mut self) {
        self.observed = true;
    }

    /// The credential's inspection mode, for what its findings led to.
    pub(crate) fn inspection_mode(&mut self, mode: InspectionMode) {
        self.inspection_mode = Some(mode);
    }

    /// Applies a builder step to the entry so far.
    fn edit(&mut self, step: impl FnOnce(EntryContent) -> EntryContent) {
        if let Some(base) = self.base.take() {
            self.base = Some(step(base));
        }
    }

    /// Takes the entry so far to finish it (a bare request entry if it was already taken,
    /// which the pipeline never does).
    fn take_base(&mut self) -> EntryContent {
        self.base
            .take()
            .unwrap_or_else(|| EntryContent::request(Outcome::Error, Via::Gate, ""))
    }

    /// Adds what the checks decided: service, credential and target host.
    pub(crate) fn admitted(&mut self, service: &str, credential: &str, target_host: &str) {
        self.edit(|base| {
            base.with_service(service)
                .with_credential(credential)
                .with_target_host(target_host)
        });
    }

    /// Names the authenticated agent (never its token).
    pub(crate) fn agent(&mut self, agent: &str) {
        self.edit(|base| base.with_agent(agent));
    }

    /// Dry-run (SPEC.md §13.2): the policy step, or the rule's limit (`rule`), would have
    /// refused with `code`; the request goes on and its entry says `would_block`.
    pub(crate) fn would_block(&mut self, code: &str, rule: Option<&str>) {
        self.edit(|base| {
            base.with_outcome(Outcome::WouldBlock)
                .with_denial_code(code)
        });
        self.policy_rule = rule.map(str::to_owned);
    }

    /// Names the limiter that refused (or, in dry-run, would have refused) the request, and the
    /// policy rule when it was a rule's limit.
    pub(crate) fn limited_by(&mut self, limiter: &'static str, rule: Option<&str>) {
        self.limiter = Some(limiter);
        if let Some(rule) = rule {
            self.policy_rule = Some(rule.to_owned());
        }
    }

    /// The limit that refused a `rate_limited` request, e.g. `10/min` (`limit` in `detail`).
    pub(crate) fn rate_limit(&mut self, limit: String) {
        self.refusal_detail.insert("limit".into(), limit.into());
    }

    /// Where an agent-auth refusal came from: `loopback` or the remote address (`peer`).
    pub(crate) fn peer(&mut self, peer: String) {
        self.refusal_detail.insert("peer".into(), peer.into());
    }

    /// Adds inspection findings (detector, location, offset; never the text).
    pub(crate) fn findings(&mut self, findings: &[Finding]) {
        let room = MAX_FINDINGS.saturating_sub(self.findings.len());
        self.findings.extend(findings.iter().take(room).cloned());
    }

    /// `warn` mode: the body's findings arrive when its stream ends.
    pub(crate) fn streamed_findings(&mut self, findings: SharedFindings) {
        self.streamed_findings = Some(findings);
    }

    /// Only the first `max_inspect_bytes` of the body were scanned.
    pub(crate) fn inspection_truncated(&mut self) {
        self.inspection_truncated = true;
    }

    /// The detail of the final entry: inspection findings, the policy rule and limiter behind a
    /// refusal or a dry-run `would_block`, and whether the response was cut off.
    fn detail(&self, cut_off: bool) -> Option<serde_json::Map<String, serde_json::Value>> {
        let streamed = self
            .streamed_findings
            .as_ref()
            .and_then(|shared| shared.get())
            .map_or(&[][..], Vec::as_slice);
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .chain(streamed)
            .take(MAX_FINDINGS)
            .map(|finding| {
                serde_json::json!({
                    "detector": finding.detector.name(),
                    "location": bounded_location(finding),
                    "offset": finding.offset,
                })
            })
            .collect();
        let redactions = self.redactions.load(Ordering::Relaxed);
        if !cut_off
            && redactions == 0
            && self.policy_rule.is_none()
            && self.limiter.is_none()
            && findings.is_empty()
            && !self.inspection_truncated
        {
            return None;
        }
        let mut detail = serde_json::Map::new();
        if !findings.is_empty() {
            detail.insert("findings".into(), findings.into());
            // What the findings led to (`body_inspection`'s action, SPEC.md §18.1).
            if let Some(mode) = self.inspection_mode {
                detail.insert("inspection".into(), mode.as_str().into());
            }
        }
        if self.inspection_truncated {
            detail.insert("inspection_truncated".into(), true.into());
        }
        if let Some(rule) = &self.policy_rule {
            detail.insert("policy_rule".into(), rule.as_str().into());
        }
        if let Some(limiter) = self.limiter {
            detail.insert("limiter".into(), limiter.into());
        }
        if redactions > 0 {
            detail.insert("response_redactions".into(), redactions.into());
        }
        if cut_off {
            // The agent went away or the relay failed before the end of the body.
            detail.insert("response_incomplete".into(), true.into());
        }
        Some(detail)
    }

    /// Whether the service is already known.
    pub(crate) fn has_service(&self) -> bool {
        self.base.as_ref().is_some_and(|b| b.service().is_some())
    }

    /// The service segment, when the route parsed but the request was refused earlier.
    pub(crate) fn service(&mut self, service: &str) {
        self.edit(|base| base.with_service(service));
    }

    /// The strict-mode `request` entry, committed before anything is forwarded: who, what and
    /// the decision, without status, latency or byte counts (the `request_end` has those).
    pub(crate) fn started(&self) -> EntryContent {
        self.base
            .clone()
            .unwrap_or_else(|| EntryContent::request(Outcome::Allowed, Via::Gate, ""))
    }

    /// The entry for a refusal or failure (the `request_end` once the request has started).
    pub(crate) fn denied(&mut self, denial: &Denial) -> EntryContent {
        let outcome = match denial.outcome() {
            DenialOutcome::Blocked => Outcome::Blocked,
            DenialOutcome::Error => Outcome::Error,
        };
        let base = self.take_base();
        let entry = base
            .with_outcome(outcome)
            .with_status_code(denial.status())
            .with_denial_code(denial.code())
            .with_latency_ms(elapsed_ms(self.started_at));
        let mut detail = self.detail(false).unwrap_or_default();
        if let Denial::RateLimited { retry_after_secs } = denial {
            detail.insert("retry_after_s".into(), (*retry_after_secs).max(1).into());
        }
        detail.extend(std::mem::take(&mut self.refusal_detail));
        if detail.is_empty() {
            self.finish(entry)
        } else {
            self.finish(entry.with_detail(detail))
        }
    }

    /// Makes `entry` the `request_end` when the `request` entry went ahead on its own, and
    /// counts and logs the decision (once).
    fn finish(&mut self, entry: EntryContent) -> EntryContent {
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let entry = if bytes_in > 0 {
            entry.with_bytes_in(bytes_in)
        } else {
            entry
        };
        if !self.observed {
            self.observed = true;
            self.observe(&entry);
        }
        if self.started {
            entry.into_request_end()
        } else {
            entry
        }
    }

    /// The decision's metrics and its log line (SPEC.md §17).
    fn observe(&self, entry: &EntryContent) {
        log_decision(entry);
        let Some(metrics) = &self.metrics else {
            return;
        };
        let snapshot = metrics.snapshot();
        let streamed = self
            .streamed_findings
            .as_ref()
            .and_then(|shared| shared.get())
            .map_or(&[][..], Vec::as_slice);
        let findings = if streamed.is_empty() {
            &self.findings[..]
        } else {
            streamed
        };
        let action = (!findings.is_empty()).then(|| {
            if entry.denial_code() == Some("body_blocked") {
                InspectionAction::Blocked
            } else if self.inspection_mode == Some(InspectionMode::Redact) {
                InspectionAction::Redacted
            } else {
                InspectionAction::Warned
            }
        });
        let redactions = self.redactions.load(Ordering::Relaxed);
        if let Some(service) = entry.service() {
            metrics.redacted(&snapshot, service, redactions);
        }
        metrics.request_done(
            &snapshot,
            entry,
            self.started_at.elapsed(),
            self.limiter,
            (findings, action),
        );
    }

    /// The entry for an allowed request whose response has been relayed (or cut off).
    pub(crate) fn completed(&mut self, status: u16, bytes_out: u64, cut_off: bool) -> EntryContent {
        let entry = self
            .take_base()
            .with_status_code(status)
            .with_latency_ms(elapsed_ms(self.started_at))
            .with_bytes_out(bytes_out);
        match self.detail(cut_off) {
            Some(detail) => self.finish(entry.with_detail(detail)),
            None => self.finish(entry),
        }
    }

    /// What to record if the request is abandoned before it completes.
    fn abandoned(&mut self) -> EntryContent {
        let base = self.take_base();
        self.finish(
            base.with_outcome(Outcome::Error)
                .with_denial_code("shutting_down")
                .with_latency_ms(elapsed_ms(self.started_at)),
        )
    }
}

impl Drop for RequestAudit {
    fn drop(&mut self) {
        // Still holding its slot, or not yet counted: the request went away before it
        // completed.
        if let Some(slot) = self.slot.take() {
            let entry = self.abandoned();
            slot.commit(entry);
        } else if !self.observed && self.base.is_some() {
            let _ = self.abandoned();
        }
    }
}

/// One line per decision: `info` for decisions, `warn` for failures (SPEC.md §17.1). Never a
/// header value, a query string or a body: the entry holds none.
fn log_decision(entry: &EntryContent) {
    let outcome = entry.outcome().map_or("error", Outcome::as_str);
    macro_rules! decision {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                target: "aegis::request",
                request_id = entry.request_id(),
                agent = entry.agent(),
                service = entry.service(),
                credential = entry.credential(),
                method = entry.method(),
                target_host = entry.target_host(),
                path = entry.path(),
                status = entry.status_code(),
                outcome,
                code = entry.denial_code(),
                latency_ms = entry.latency_ms(),
                $message
            )
        };
    }
    let failed = outcome == "error";
    if let Some(sink) = crate::decision_log::sink() {
        // The same level filter as the `tracing` line below.
        if failed && tracing::enabled!(target: "aegis::request", tracing::Level::WARN) {
            sink.write(tracing::Level::WARN, entry, outcome, "request failed");
        } else if !failed && tracing::enabled!(target: "aegis::request", tracing::Level::INFO) {
            sink.write(tracing::Level::INFO, entry, outcome, "request");
        }
        return;
    }
    if failed {
        decision!(warn, "request failed");
    } else {
        decision!(info, "request");
    }
}

/// A finding's location for the ledger, with a header name cut to 64 bytes: twenty findings
/// under long agent-chosen header names must not push `detail` past its 4 KiB bound (which would
/// replace it, findings and all, with a truncation marker).
fn bounded_location(finding: &Finding) -> String {
    let mut location = finding.location.to_string();
    let mut end = location.len().min(LOCATION_MAX_BYTES);
    while !location.is_char_boundary(end) {
        end -= 1;
    }
    location.truncate(end);
    location
}

/// `header:` and 64 bytes of the name.
const LOCATION_MAX_BYTES: usize = 7 + 64;

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A response body that completes the request's ledger entry when it ends or is dropped.
pub(crate) struct AuditedBody<B: Body> {
    inner: B,
    audit: RequestAudit,
    status: u16,
    bytes_out: u64,
    finished: bool,
}

impl<B: Body> AuditedBody<B> {
    /// Wraps the response body of an allowed request.
    pub(crate) fn new(inner: B, audit: RequestAudit, status: u16) -> Self {
        Self {
            inner,
            audit,
            status,
            bytes_out: 0,
            finished: false,
        }
    }

    fn complete(&mut self) {
        if self.audit.observed && self.audit.slot.is_none() {
            return;
        }
        let whole = self.finished || self.inner.is_end_stream();
        let entry = self.audit.completed(self.status, self.bytes_out, !whole);
        if let Some(slot) = self.audit.slot.take() {
            slot.commit(entry);
        }
    }
}

impl<B> Body for AuditedBody<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes_out += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                this.finished = true;
                this.complete();
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
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

impl<B: Body> Drop for AuditedBody<B> {
    fn drop(&mut self) {
        // Ended normally (finished), or the agent went away / the stream failed.
        self.complete();
    }
}

#[cfg(test)]
mod tests {
    use aegis_core::inspect::{Detector, Location};

    use super::*;

    #[test]
    fn twenty_findings_under_long_header_names_stay_in_the_detail() {
        let mut audit = RequestAudit::new("id", Via::Gate, "i", "GET", "/svc/x", None);
        let findings: Vec<Finding> = (0..25)
            .map(|i| Finding {
                offset: i,
                detector: Detector::AwsAccessKey,
                location: Location::Header(format!("x-{}-{i}", "n".repeat(500))),
            })
            .collect();
        audit.findings(&findings);
        let entry = audit.denied(&Denial::BodyBlocked {
            detector: "aws_access_key",
            location: "header:x".to_owned(),
        });
        let kept = entry.detail()["findings"]
            .as_array()
            .expect("findings")
            .len();
        assert_eq!(kept, MAX_FINDINGS);
        let location = entry.detail()["findings"][0]["location"]
            .as_str()
            .expect("location");
        assert_eq!(location.len(), LOCATION_MAX_BYTES);
    }
}
