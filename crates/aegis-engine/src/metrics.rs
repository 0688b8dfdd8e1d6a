//! The process's Prometheus metrics (SPEC.md §17.2): the families of the table, with bounded
//! label values, updated once per request when its decision is final, and read at scrape time
//! from the parts that keep their own counters (snapshot holder, ledger writer, webhooks).
//!
//! [`Metrics::encode`] writes the Prometheus text format 0.0.4 or OpenMetrics 1.0. Nothing here
//! can hold a secret: label values are service, agent and credential names, fixed codes and
//! numbers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use aegis_core::inspect::Finding;
use aegis_core::ledger::{EntryContent, Outcome};
use aegis_core::snapshot::Snapshot;
use aegis_core::timestamp::Timestamp;
use aegis_store::ledger_writer::LedgerWriter;

use crate::holder::SnapshotHolder;

/// Upper bounds, in seconds, of every duration histogram (SPEC.md §17.2).
pub const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Label value for a service that is not one of the vault's.
const UNKNOWN: &str = "_unknown";
/// Label value for a request without an identified agent.
const ANONYMOUS: &str = "_anonymous";

/// Which exposition format a scrape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Prometheus,
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics only when it names it.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    agent: String,
    method: &'static str,
    status_class: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceOutcome {
    service: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimiterLabel {
    limiter: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InspectionLabels {
    detector: &'static str,
    action: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A metric whose family is written even before it has a series, so a scrape always lists
/// every family of SPEC.md §17.2 (with its `# HELP` and `# TYPE`).
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(
        &self,
        encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// What a finding led to, for `aegis_body_inspection_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectionAction {
    /// `warn` mode: forwarded and recorded.
    Warned,
    /// `block` (or a secret in `redact`) mode: refused.
    Blocked,
    /// `redact` mode: masked and forwarded.
    Redacted,
}

impl InspectionAction {
    fn label(self) -> &'static str {
        match self {
            Self::Warned => "warned",
            Self::Blocked => "blocked",
            Self::Redacted => "redacted",
        }
    }
}

/// Counts a webhook dispatcher publishes (deliveries by event and result, outbox depth).
pub trait WebhookCounts: std::fmt::Debug + Send + Sync {
    /// `(event, result, count)` for every pair seen so far; `result` is `delivered`, `retry`
    /// or `failed`.
    fn deliveries(&self) -> Vec<(&'static str, &'static str, u64)>;
    /// Outbox rows not yet delivered or failed.
    fn outbox_depth(&self) -> u64;
}

impl WebhookCounts for crate::webhook_stats::WebhookStats {
    fn deliveries(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.read()
    }

    fn outbox_depth(&self) -> u64 {
        crate::webhook_stats::WebhookStats::outbox_depth(self)
    }
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    blocked: Family<ReasonLabel, Counter>,
    request_duration: HistogramFamily<ServiceOutcome>,
    upstream_duration: HistogramFamily<ServiceLabel>,
    request_bytes: Family<ServiceLabel, Counter>,
    response_bytes: Family<ServiceLabel, Counter>,
    inflight: Gauge,
    rate_limited: Family<LimiterLabel, Counter>,
    inspection: Family<InspectionLabels, Counter>,
    redactions: Family<ServiceLabel, Counter>,
    unscanned: Family<ServiceLabel, Counter>,
    live: Arc<LiveSources>,
}

/// The parts read at scrape time.
#[derive(Debug)]
struct LiveSources {
    holder: Arc<SnapshotHolder>,
    ledger: OnceLock<LedgerWriter>,
    webhooks: OnceLock<Arc<dyn WebhookCounts>>,
}

impl Metrics {
    /// Registers every family; `holder` supplies the snapshot gauges and reload counts.
    pub fn new(holder: Arc<SnapshotHolder>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "aegis_gate_requests",
            "Requests decided, by service, agent, method, status class and outcome",
            Listed(requests.clone()),
        );
        let blocked = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "aegis_gate_blocked",
            "Requests refused, by denial code",
            Listed(blocked.clone()),
        );
        let request_duration: HistogramFamily<ServiceOutcome> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "aegis_gate_request_duration",
            "Time from accept to the last response byte (to the denial for refusals)",
            Unit::Seconds,
            Listed(request_duration.clone()),
        );
        let upstream_duration: HistogramFamily<ServiceLabel> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "aegis_upstream_duration",
            "Time from sending a request upstream to its response head",
            Unit::Seconds,
            Listed(upstream_duration.clone()),
        );
        let request_bytes = Family::<ServiceLabel, Counter>::default();
        registry.register_with_unit(
            "aegis_gate_request",
            "Request body bytes received from agents",
            Unit::Bytes,
            Listed(request_bytes.clone()),
        );
        let response_bytes = Family::<ServiceLabel, Counter>::default();
        registry.register_with_unit(
            "aegis_gate_response",
            "Response body bytes sent to agents",
            Unit::Bytes,
            Listed(response_bytes.clone()),
        );
        let inflight = Gauge::default();
        registry.register(
            "aegis_gate_inflight_requests",
            "Requests being handled now",
            Listed(inflight.clone()),
        );
        let rate_limited = Family::<LimiterLabel, Counter>::default();
        registry.register(
            "aegis_gate_rate_limited",
            "Requests refused by a rate limit, by limiter",
            Listed(rate_limited.clone()),
        );
        let inspection = Family::<InspectionLabels, Counter>::default();
        registry.register(
            "aegis_body_inspection",
            "Inspection findings, by detector and what they led to",
            Listed(inspection.clone()),
        );
        let redactions = Family::<ServiceLabel, Counter>::default();
        registry.register(
            "aegis_gate_response_redactions",
            "Vault secrets replaced in responses",
            Listed(redactions.clone()),
        );
        let unscanned = Family::<ServiceLabel, Counter>::default();
        registry.register(
            "aegis_gate_unscanned_responses",
            "Responses passed without echo redaction (an encoding that cannot be decoded)",
            Listed(unscanned.clone()),
        );
        let live = Arc::new(LiveSources {
            holder,
            ledger: OnceLock::new(),
            webhooks: OnceLock::new(),
        });
        registry.register_collector(Box::new(live.clone()));
        Self {
            registry,
            requests,
            blocked,
            request_duration,
            upstream_duration,
            request_bytes,
            response_bytes,
            inflight,
            rate_limited,
            inspection,
            redactions,
            unscanned,
            live,
        }
    }

    /// Publishes the ledger writer's queue depth, commit times and backpressure.
    pub fn with_ledger(self, writer: LedgerWriter) -> Self {
        let _ = self.live.ledger.set(writer);
        self
    }

    /// Publishes a webhook dispatcher's counts (set once).
    pub fn set_webhooks(&self, counts: Arc<dyn WebhookCounts>) {
        let _ = self.live.webhooks.set(counts);
    }

    /// Writes every metric in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut open_metrics = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry).is_err() {
            // Writing to a String cannot fail; an encoder error leaves what was written.
            tracing::error!("metrics encoding failed");
        }
        match format {
            Format::OpenMetrics => open_metrics,
            Format::Prometheus => to_prometheus_text(&open_metrics),
        }
    }

    /// The snapshot in force, for bounding label values.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.live.holder.load()
    }

    /// A request is being handled: the in-flight gauge counts it until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InflightGuard {
        self.inflight.inc();
        InflightGuard(self.clone())
    }

    /// The upstream answered `service`'s request after `took`.
    /// `service` is the forwarding credential's, so one of the vault's.
    pub(crate) fn upstream_answered(&self, service: &str, took: Duration) {
        self.upstream_duration
            .get_or_create(&ServiceLabel {
                service: service.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// `count` vault secrets were replaced in a response of `service`.
    pub(crate) fn redacted(&self, snapshot: &Snapshot, service: &str, count: u64) {
        if count > 0 {
            self.redactions
                .get_or_create(&ServiceLabel {
                    service: service_label(snapshot, Some(service)),
                })
                .inc_by(count);
        }
    }

    /// A response of `service` went back without echo redaction.
    pub(crate) fn unscanned(&self, snapshot: &Snapshot, service: &str) {
        self.unscanned
            .get_or_create(&ServiceLabel {
                service: service_label(snapshot, Some(service)),
            })
            .inc();
    }

    /// A request's decision is final (`entry` is what the ledger gets): counts it, times it,
    /// and counts its bytes, refusal, limiter and findings.
    pub(crate) fn request_done(
        &self,
        snapshot: &Snapshot,
        entry: &EntryContent,
        took: Duration,
        limiter: Option<&'static str>,
        findings: (&[Finding], Option<InspectionAction>),
    ) {
        let service = service_label(snapshot, entry.service());
        let outcome = outcome_label(entry.outcome());
        self.requests
            .get_or_create(&RequestLabels {
                service: service.clone(),
                agent: entry.agent().unwrap_or(ANONYMOUS).to_owned(),
                method: method_label(entry.method()),
                status_class: status_class(entry.status_code()),
                outcome,
            })
            .inc();
        if let Some(bytes) = entry.bytes_in().filter(|b| *b > 0) {
            self.request_bytes
                .get_or_create(&ServiceLabel {
                    service: service.clone(),
                })
                .inc_by(bytes);
        }
        if let Some(bytes) = entry.bytes_out().filter(|b| *b > 0) {
            self.response_bytes
                .get_or_create(&ServiceLabel {
                    service: service.clone(),
                })
                .inc_by(bytes);
        }
        if entry.outcome() == Some(Outcome::Blocked)
            && let Some(code) = entry.denial_code()
        {
            self.blocked
                .get_or_create(&ReasonLabel {
                    reason: denial_reason(code),
                })
                .inc();
        }
        if entry.denial_code() == Some("rate_limited")
            && entry.outcome() == Some(Outcome::Blocked)
            && let Some(limiter) = limiter
        {
            self.rate_limited
                .get_or_create(&LimiterLabel { limiter })
                .inc();
        }
        if let (found, Some(action)) = findings {
            for finding in found {
                self.inspection
                    .get_or_create(&InspectionLabels {
                        detector: finding.detector.name(),
                        action: action.label(),
                    })
                    .inc();
            }
        }
        self.request_duration
            .get_or_create(&ServiceOutcome { service, outcome })
            .observe(took.as_secs_f64());
    }
}

/// Holds a request in `aegis_gate_inflight_requests`.
#[derive(Debug)]
pub(crate) struct InflightGuard(Arc<Metrics>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.dec();
    }
}

/// A vault service, or `_unknown` for anything else (unknown names must not grow the series).
fn service_label(snapshot: &Snapshot, service: Option<&str>) -> String {
    match service {
        Some(name) if !snapshot.candidates(name).is_empty() => name.to_owned(),
        _ => UNKNOWN.to_owned(),
    }
}

/// The outcome's ledger name; an entry without one (never a request's) counts as `error`.
fn outcome_label(outcome: Option<Outcome>) -> &'static str {
    outcome.map_or("error", Outcome::as_str)
}

fn method_label(method: Option<&str>) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    method
        .and_then(|m| STANDARD.iter().find(|s| **s == m))
        .copied()
        .unwrap_or("_other")
}

/// The status class; a request cut off before any status counts as `5xx`.
fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        _ => "5xx",
    }
}

/// The denial codes of SPEC.md §22.1 a request can be refused with; anything else (which the
/// pipeline does not produce) is `_other`, so the label set stays fixed.
fn denial_reason(code: &str) -> &'static str {
    const CODES: [&str; 26] = [
        "agent_auth_failed",
        "agent_auth_required",
        "bad_request",
        "body_blocked",
        "body_too_large",
        "credential_ambiguous",
        "credential_expired",
        "credential_not_granted",
        "domain_blocked",
        "headers_too_large",
        "internal_error",
        "ledger_unavailable",
        "not_found",
        "origin_denied",
        "policy_denied",
        "rate_limited",
        "request_timeout",
        "scope_denied",
        "shutting_down",
        "too_many_concurrent_requests",
        "unknown_service",
        "upstream_timeout",
        "upstream_tls",
        "upstream_unreachable",
        "uri_too_long",
        "vault_sealed",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("_other")
}

impl Collector for LiveSources {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snapshot = self.holder.load();
        let counter = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64| {
            let metric = ConstCounter::new(value);
            let descriptor = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(descriptor)
        };
        let gauge = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: i64| {
            let metric = ConstGauge::new(value);
            let descriptor = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(descriptor)
        };
        {
            let mut family = encoder.encode_descriptor(
                "aegis_snapshot_reloads",
                "Snapshot rebuilds, by result",
                None,
                MetricType::Counter,
            )?;
            for (result, count) in [
                ("ok", self.holder.reloads_ok()),
                ("rejected", self.holder.reloads_rejected()),
            ] {
                let labels = [("result", result)];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut encoder,
            "aegis_snapshot_generation",
            "Store generation of the snapshot in force",
            snapshot.generation(),
        )?;
        let (expiring, expired) = expiry_counts(&snapshot);
        gauge(
            &mut encoder,
            "aegis_credentials_expiring",
            "Credentials expiring within 7 days",
            expiring,
        )?;
        gauge(
            &mut encoder,
            "aegis_credentials_expired",
            "Credentials past their expiry",
            expired,
        )?;
        gauge(
            &mut encoder,
            "aegis_vault_sealed",
            "1 while the vault is sealed",
            i64::from(snapshot.is_sealed()),
        )?;
        if let Some(writer) = self.ledger.get() {
            gauge(
                &mut encoder,
                "aegis_ledger_queue_depth",
                "Ledger entries queued or reserved, not yet written",
                i64::try_from(writer.queue_depth()).unwrap_or(i64::MAX),
            )?;
            let stats = writer.stats();
            let (sum, count, buckets) = stats.commit_times.read();
            let mut histogram = encoder.encode_descriptor(
                "aegis_ledger_write",
                "Time per ledger batch commit",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum, count, &buckets, None,
            )?;
            counter(
                &mut encoder,
                "aegis_ledger_backpressure",
                "Times a request waited for room in the ledger queue",
                stats.backpressure.load(Ordering::Relaxed),
            )?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "aegis_webhook_deliveries",
                "Webhook delivery attempts, by event and result",
                None,
                MetricType::Counter,
            )?;
            let depth = match self.webhooks.get() {
                Some(webhooks) => {
                    for (event, result, count) in webhooks.deliveries() {
                        let labels = [("event", event), ("result", result)];
                        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                    }
                    webhooks.outbox_depth()
                }
                None => 0,
            };
            gauge(
                &mut encoder,
                "aegis_webhook_outbox_depth",
                "Webhook deliveries waiting in the outbox",
                i64::try_from(depth).unwrap_or(i64::MAX),
            )?;
        }
        counter(
            &mut encoder,
            "aegis_rate_limit_backend_fallback",
            "Rate-limit decisions taken in memory because the shared backend failed",
            // No shared rate-limit backend exists yet, so nothing ever falls back.
            0,
        )?;
        let mut info = encoder.encode_descriptor(
            "aegis_build_info",
            "Build of this process; always 1",
            None,
            MetricType::Gauge,
        )?;
        let labels = [("version", env!("CARGO_PKG_VERSION"))];
        ConstGauge::new(1_i64).encode(info.encode_family(&labels)?)?;
        Ok(())
    }
}

/// Credentials expiring within 7 days, and those already expired.
fn expiry_counts(snapshot: &Snapshot) -> (i64, i64) {
    let now = Timestamp::from_system_time(SystemTime::now());
    let soon = now.plus_days(7);
    let (mut expiring, mut expired) = (0, 0);
    for credential in snapshot.credentials() {
        match credential.expires_at {
            Some(at) if at <= now => expired += 1,
            Some(at) if at <= soon => expiring += 1,
            _ => {}
        }
    }
    (expiring, expired)
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: no `# UNIT` or `# EOF` lines, and a
/// counter family named after its samples (`…_total`), as Prometheus parsers expect.
fn to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let lines: Vec<&str> = open_metrics.lines().collect();
    let counters: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    for line in lines {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            (counters.contains(name) && !name.ends_with("_total"))
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use aegis_core::inspect::Detector;

    use super::*;

    #[test]
    fn counters_are_renamed_and_openmetrics_lines_dropped() {
        let open = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 2\n\
                    # HELP a_time Time.\n# TYPE a_time_seconds histogram\n# UNIT a_time_seconds seconds\n\
                    a_time_seconds_bucket{le=\"+Inf\"} 1\n# EOF\n";
        let text = to_prometheus_text(open);
        assert!(text.contains("# TYPE a_requests_total counter\n"), "{text}");
        assert!(
            text.contains("# HELP a_requests_total Requests.\n"),
            "{text}"
        );
        assert!(!text.contains("# UNIT"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("a_time_seconds_bucket{le=\"+Inf\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn labels_stay_within_their_lists() {
        assert_eq!(method_label(Some("GET")), "GET");
        assert_eq!(method_label(Some("BREW")), "_other");
        assert_eq!(method_label(None), "_other");
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(None), "5xx");
        assert_eq!(denial_reason("rate_limited"), "rate_limited");
        assert_eq!(denial_reason("made_up"), "_other");
    }

    #[test]
    fn accept_selects_openmetrics_only_when_named() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn every_detector_name_is_a_fixed_label() {
        // The inspection family's `detector` values come from `Detector::name`, a fixed list.
        assert_eq!(Detector::VaultSecret.name(), "vault_secret");
    }
}
