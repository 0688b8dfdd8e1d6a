//! Which webhook events a committed ledger entry raises (SPEC.md §18.1), and the 60-second
//! coalescing of `rate_limit_exceeded` and `agent_auth_failure`.
//!
//! The data of each event is read from the entry alone (its fields and `detail`), so what a
//! receiver learns is never more than what the ledger holds.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::WebhookEvent;
use crate::ledger::{EntryKind, LedgerEntry, Outcome};

/// Longest a coalescing window lasts, in milliseconds.
pub const COALESCE_WINDOW_MS: i64 = 60_000;

/// One event raised by an entry, before coalescing.
#[derive(Debug, Clone, PartialEq)]
pub struct RaisedEvent {
    /// Which event.
    pub event: WebhookEvent,
    /// Its `data` object (without `suppressed`, which coalescing adds).
    pub data: Map<String, Value>,
    /// The key events are coalesced by (limiter or peer), for the coalesced kinds.
    pub coalesce_key: Option<String>,
}

/// The events `entry` raises, in a fixed order: `blocked_request`, `rate_limit_exceeded`,
/// `agent_auth_failure`, `body_inspection`.
pub fn raised_by(entry: &LedgerEntry) -> Vec<RaisedEvent> {
    let content = entry.content();
    if content.kind() != EntryKind::Request {
        return Vec::new();
    }
    let detail = content.detail();
    let mut out = Vec::new();
    let text = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    let code = content.denial_code();
    if content.outcome() == Some(Outcome::Blocked) {
        let mut data = Map::new();
        data.insert("request_id".into(), text(content.request_id()));
        data.insert("ledger_id".into(), entry.id().into());
        data.insert("agent".into(), text(content.agent()));
        data.insert("credential".into(), text(content.credential()));
        data.insert("service".into(), text(content.service()));
        data.insert("method".into(), text(content.method()));
        data.insert("target_host".into(), text(content.target_host()));
        data.insert("path".into(), text(content.path()));
        data.insert(
            "status".into(),
            content.status_code().map_or(Value::Null, Value::from),
        );
        data.insert("denial_code".into(), text(code));
        out.push(RaisedEvent {
            event: WebhookEvent::BlockedRequest,
            data,
            coalesce_key: None,
        });
    }
    let refused = matches!(content.outcome(), Some(Outcome::Blocked));
    if refused && code == Some("rate_limited") {
        let field = |name: &str| detail.get(name).cloned().unwrap_or(Value::Null);
        let mut data = Map::new();
        data.insert("request_id".into(), text(content.request_id()));
        data.insert("agent".into(), text(content.agent()));
        data.insert("credential".into(), text(content.credential()));
        data.insert("service".into(), text(content.service()));
        data.insert("limiter".into(), field("limiter"));
        data.insert("limit".into(), field("limit"));
        data.insert("retry_after_s".into(), field("retry_after_s"));
        let key = [
            detail.get("limiter").and_then(Value::as_str),
            content.agent(),
            content.credential(),
            detail.get("policy_rule").and_then(Value::as_str),
        ]
        .map(|part| part.unwrap_or("-"))
        .join("|");
        out.push(RaisedEvent {
            event: WebhookEvent::RateLimitExceeded,
            data,
            coalesce_key: Some(key),
        });
    }
    let reason = match code {
        Some("agent_auth_required") => Some("missing"),
        Some("agent_auth_failed") => Some("invalid"),
        _ => None,
    };
    if let (true, Some(reason)) = (refused, reason) {
        let peer = detail
            .get("peer")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let mut data = Map::new();
        data.insert("request_id".into(), text(content.request_id()));
        data.insert("service".into(), text(content.service()));
        data.insert("reason".into(), reason.into());
        data.insert("peer".into(), peer.as_str().into());
        out.push(RaisedEvent {
            event: WebhookEvent::AgentAuthFailure,
            data,
            coalesce_key: Some(peer),
        });
    }
    if let Some(findings) = detail
        .get("findings")
        .filter(|f| f.as_array().is_some_and(|list| !list.is_empty()))
    {
        let action = inspection_action(content.outcome(), code, detail);
        let mut data = Map::new();
        data.insert("request_id".into(), text(content.request_id()));
        data.insert("agent".into(), text(content.agent()));
        data.insert("credential".into(), text(content.credential()));
        data.insert("service".into(), text(content.service()));
        data.insert("action".into(), action.into());
        data.insert("findings".into(), findings.clone());
        out.push(RaisedEvent {
            event: WebhookEvent::BodyInspection,
            data,
            coalesce_key: None,
        });
    }
    out
}

/// `block`, `redact` or `warn`: what inspection did with the request.
fn inspection_action(
    outcome: Option<Outcome>,
    code: Option<&str>,
    detail: &Map<String, Value>,
) -> &'static str {
    if outcome == Some(Outcome::Blocked) && code == Some("body_blocked") {
        return "block";
    }
    match detail.get("inspection").and_then(Value::as_str) {
        Some("redact") => "redact",
        Some("block") => "block",
        _ => "warn",
    }
}

/// Per (event, key) windows of [`COALESCE_WINDOW_MS`]: the first event of a window is sent,
/// the rest are counted and reported as `suppressed` by the first event of the next window.
#[derive(Debug, Default)]
pub struct Coalescer {
    windows: HashMap<(WebhookEvent, String), Window>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    started_ms: i64,
    folded: u64,
}

/// What one [`Coalescer::admit`] changed, to put back with [`Coalescer::undo`] when the ledger
/// batch that raised the event is rolled back (its events were never queued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    key: (WebhookEvent, String),
    before: Option<Window>,
}

impl Coalescer {
    /// Decides one event at `now_ms`: `Some(suppressed)` to send it with that count, `None` to
    /// fold it into the current window; and what the decision changed.
    pub fn admit(
        &mut self,
        event: WebhookEvent,
        key: &str,
        now_ms: i64,
    ) -> (Option<u64>, Admission) {
        if self.windows.len() > MAX_WINDOWS {
            self.windows
                .retain(|_, w| now_ms - w.started_ms < COALESCE_WINDOW_MS || w.folded > 0);
        }
        let admission = Admission {
            key: (event, key.to_owned()),
            before: self.windows.get(&(event, key.to_owned())).copied(),
        };
        (self.decide(event, key, now_ms), admission)
    }

    /// Puts back what `admission` changed (undo admissions newest first).
    pub fn undo(&mut self, admission: Admission) {
        match admission.before {
            Some(window) => {
                self.windows.insert(admission.key, window);
            }
            None => {
                self.windows.remove(&admission.key);
            }
        }
    }

    fn decide(&mut self, event: WebhookEvent, key: &str, now_ms: i64) -> Option<u64> {
        match self.windows.get_mut(&(event, key.to_owned())) {
            Some(window) if now_ms - window.started_ms < COALESCE_WINDOW_MS => {
                window.folded += 1;
                None
            }
            Some(window) => {
                let suppressed = window.folded;
                *window = Window {
                    started_ms: now_ms,
                    folded: 0,
                };
                Some(suppressed)
            }
            None => {
                self.windows.insert(
                    (event, key.to_owned()),
                    Window {
                        started_ms: now_ms,
                        folded: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// Windows kept before expired ones (with nothing folded) are dropped.
const MAX_WINDOWS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{EntryContent, Via};
    use crate::timestamp::Timestamp;

    fn chained(content: EntryContent) -> LedgerEntry {
        LedgerEntry::chained(7, Timestamp::from_millis(1), content, [0; 32])
    }

    fn blocked(code: &str) -> EntryContent {
        EntryContent::request(Outcome::Blocked, Via::Gate, "gate-1")
            .with_request_id("r1")
            .with_service("github")
            .with_status_code(403)
            .with_denial_code(code)
    }

    #[test]
    fn a_blocked_request_raises_blocked_request_with_its_ledger_id() {
        let events = raised_by(&chained(
            blocked("domain_blocked").with_path(b"/x?q=secret"),
        ));
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.event, WebhookEvent::BlockedRequest);
        assert_eq!(event.data["ledger_id"], 7);
        assert_eq!(event.data["denial_code"], "domain_blocked");
        assert_eq!(event.data["path"], "/x");
        assert_eq!(event.data["status"], 403);
    }

    #[test]
    fn rate_limited_raises_both_events_with_limit_details() {
        let mut detail = Map::new();
        detail.insert("limiter".into(), "agent".into());
        detail.insert("limit".into(), "2/min".into());
        detail.insert("retry_after_s".into(), 30.into());
        let entry = chained(
            blocked("rate_limited")
                .with_agent("bot")
                .with_detail(detail),
        );
        let events = raised_by(&entry);
        let kinds: Vec<_> = events.iter().map(|e| e.event).collect();
        assert_eq!(
            kinds,
            vec![
                WebhookEvent::BlockedRequest,
                WebhookEvent::RateLimitExceeded
            ]
        );
        assert_eq!(events[1].data["limit"], "2/min");
        assert_eq!(events[1].data["retry_after_s"], 30);
        assert_eq!(events[1].coalesce_key.as_deref(), Some("agent|bot|-|-"));
    }

    #[test]
    fn auth_failures_name_the_reason_and_peer() {
        let mut detail = Map::new();
        detail.insert("peer".into(), "loopback".into());
        let events = raised_by(&chained(blocked("agent_auth_required").with_detail(detail)));
        assert_eq!(events[1].event, WebhookEvent::AgentAuthFailure);
        assert_eq!(events[1].data["reason"], "missing");
        assert_eq!(events[1].data["peer"], "loopback");
        let events = raised_by(&chained(blocked("agent_auth_failed")));
        assert_eq!(events[1].data["reason"], "invalid");
        assert_eq!(events[1].data["peer"], "unknown");
    }

    #[test]
    fn findings_raise_body_inspection_with_the_action() {
        let mut detail = Map::new();
        detail.insert(
            "findings".into(),
            serde_json::json!([{"detector": "aws_key", "location": "body", "offset": 3}]),
        );
        detail.insert("inspection".into(), "warn".into());
        let allowed =
            EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_detail(detail.clone());
        let events = raised_by(&chained(allowed));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, WebhookEvent::BodyInspection);
        assert_eq!(events[0].data["action"], "warn");
        let events = raised_by(&chained(
            blocked("body_blocked").with_detail(detail.clone()),
        ));
        assert_eq!(events[1].data["action"], "block");
        detail.insert("inspection".into(), "redact".into());
        let masked = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_detail(detail);
        assert_eq!(raised_by(&chained(masked))[0].data["action"], "redact");
    }

    #[test]
    fn allowed_requests_and_system_entries_raise_nothing() {
        let allowed = EntryContent::request(Outcome::Allowed, Via::Gate, "g");
        assert!(raised_by(&chained(allowed)).is_empty());
        let system =
            EntryContent::system(crate::ledger::SystemEvent::GateStarted, Via::System, "g");
        assert!(raised_by(&chained(system)).is_empty());
    }

    #[test]
    fn coalescing_sends_one_per_window_and_counts_the_rest() {
        let mut c = Coalescer::default();
        let e = WebhookEvent::RateLimitExceeded;
        let mut admit = |event, key, at| c.admit(event, key, at).0;
        assert_eq!(admit(e, "k", 0), Some(0));
        assert_eq!(admit(e, "k", 10), None);
        assert_eq!(admit(e, "k", 59_999), None);
        assert_eq!(admit(e, "other", 20), Some(0));
        assert_eq!(admit(WebhookEvent::AgentAuthFailure, "k", 30), Some(0));
        assert_eq!(admit(e, "k", 60_000), Some(2));
        assert_eq!(admit(e, "k", 60_001), None);
    }

    #[test]
    fn an_undone_admission_is_decided_again_the_same_way() {
        let mut c = Coalescer::default();
        let e = WebhookEvent::AgentAuthFailure;
        let (sent, first) = c.admit(e, "peer", 0);
        assert_eq!(sent, Some(0));
        let (folded, second) = c.admit(e, "peer", 5);
        assert_eq!(folded, None);
        c.undo(second);
        c.undo(first);
        assert_eq!(
            c.admit(e, "peer", 6).0,
            Some(0),
            "the rolled-back event is sent"
        );
        assert_eq!(c.admit(e, "peer", 7).0, None);
    }
}
