//! The old side of a replay: what a recorded `request` entry says about the policy step, or why
//! it says nothing (see the rules in `policy/replay.rs`).

use crate::ledger::{EntryContent, Outcome};
use crate::policy::replay::NotComparable;

/// What the recorded entry says about the policy step.
#[derive(Debug, Clone, Copy)]
pub(super) struct OldVerdict {
    pub(super) outcome: Outcome,
    pub(super) policy: OldPolicy,
    /// Whether the request would count in a rule window the new policy admits it to: not when
    /// a credential or agent limit (or an unnamed one) refused it.
    pub(super) consumes_quota: bool,
}

/// The policy step's verdict as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OldPolicy {
    /// The policy step let the request through.
    Allowed,
    /// The policy step, or the matched rule's rate limit, refused it (or would have, in dry-run).
    Blocked,
    /// `rate_limited` without `detail.limiter`: allowed by step 7, refused by some limiter.
    LimiterUnknown,
}

/// Reads the old policy verdict from an entry, or says why it has none.
pub(super) fn recorded_verdict(content: &EntryContent) -> Result<OldVerdict, NotComparable> {
    let outcome = content.outcome().ok_or(NotComparable::Incomplete)?;
    let verdict = |policy, consumes_quota| {
        Ok(OldVerdict {
            outcome,
            policy,
            consumes_quota,
        })
    };
    match outcome {
        Outcome::Allowed => return verdict(OldPolicy::Allowed, true),
        Outcome::WouldBlock => return verdict(OldPolicy::Blocked, true),
        Outcome::Blocked | Outcome::Error => {}
    }
    let code = content.denial_code().ok_or(NotComparable::UnknownStep)?;
    let checks_passed = content.credential().is_some();
    match code {
        "policy_denied" => verdict(OldPolicy::Blocked, true),
        "rate_limited" => match content.detail().get("limiter").and_then(|v| v.as_str()) {
            Some("policy") => verdict(OldPolicy::Blocked, true),
            Some(_) => verdict(OldPolicy::Allowed, false),
            None => verdict(OldPolicy::LimiterUnknown, false),
        },
        code if AFTER_POLICY_CODES.contains(&code) => verdict(OldPolicy::Allowed, true),
        code if AMBIGUOUS_CODES.contains(&code) && checks_passed => {
            verdict(OldPolicy::Allowed, true)
        }
        "internal_error" => Err(NotComparable::UnknownStep),
        code if BEFORE_POLICY_CODES.contains(&code) || AMBIGUOUS_CODES.contains(&code) => {
            Err(NotComparable::BeforePolicyStep)
        }
        _ => Err(NotComparable::UnknownStep),
    }
}

/// Codes of steps 0–6 (SPEC.md §10.1), plus `not_found` for reserved endpoints.
const BEFORE_POLICY_CODES: &[&str] = &[
    "shutting_down",
    "vault_sealed",
    "origin_denied",
    "bad_request",
    "uri_too_long",
    "headers_too_large",
    "body_too_large",
    "unknown_service",
    "not_found",
    "agent_auth_required",
    "agent_auth_failed",
    "credential_not_granted",
    "credential_ambiguous",
    "credential_expired",
    "scope_denied",
    "domain_blocked",
];

/// Codes that only arise after the policy step: step 8 and later, and forwarding failures.
const AFTER_POLICY_CODES: &[&str] = &[
    "too_many_concurrent_requests",
    "rate_limit_unavailable",
    "body_blocked",
    "request_timeout",
    "ledger_unavailable",
    "upstream_unreachable",
    "upstream_tls",
    "upstream_timeout",
];

/// Codes of an early step that can also arise after the checks: `body_too_large` (declared
/// length at step 1, or the body at step 9), `shutting_down` (admission at step 0, or a request
/// cut off by shutdown) and `internal_error`. A recorded credential means steps 1–6 passed.
const AMBIGUOUS_CODES: &[&str] = &["body_too_large", "shutting_down", "internal_error"];
