//! `policy replay` (SPEC.md §13.3): how a policy set would have decided the request entries of
//! the ledger, compared with what the gate recorded.
//!
//! What is compared is the verdict of the *policy step*: step 7 (a rule matched, or default
//! deny) together with the matched rule's own rate limit (SPEC.md §13.2 puts that limiter in
//! step 8, and dry-run records its refusals as `would_block` too). Grants, scopes, domains,
//! credential and agent limits and inspection are not re-evaluated.
//!
//! - **Old verdict**, read from the entry: *blocked* when the outcome is `would_block`, when the
//!   code is `policy_denied`, or when the code is `rate_limited` and `detail.limiter` is
//!   `policy`; *allowed* for every other entry that reached step 7 (`allowed`, and refusals or
//!   failures of step 8 or later: other limiters, `too_many_concurrent_requests`,
//!   `body_blocked`, `body_too_large` after the checks, `request_timeout`, upstream failures,
//!   `ledger_unavailable`, `rate_limit_unavailable`, cancellations). An old `would_block` was
//!   forwarded, but the policy said no, so its policy verdict is blocked.
//! - A `rate_limited` entry that does not name its limiter cannot be told apart: the policy
//!   step let it through, and some limiter of step 8 refused it. It is reported as a change only
//!   when the new policy refuses it outright (no rule matches, or a policy is required), and
//!   otherwise counted as unchanged and in [`ReplayReport::limiter_unknown`].
//! - **New verdict**: [`PolicySet::evaluate`] with the entry's agent, service, method, forwarded
//!   path and time (`ts`, the append time, which trails the decision by at most a ledger
//!   batch); `NoPolicy` is blocked only under `gate.require_policy`; a matched rule with a rate
//!   limit is checked against a fresh window per (agent name, rule digest), fed in entry order
//!   (which is time order). A request counts in that window when the window admits it, unless
//!   the entry was refused by another limiter (those limits are unchanged, so it would still
//!   be refused and consume nothing, SPEC.md §12.1).
//! - **Not comparable**: `request` entries refused before step 7 (codes of steps 0–6 of
//!   SPEC.md §10.1; `body_too_large`, `shutting_down` and `internal_error` count as before step 7
//!   only when no credential was recorded, since the checks of steps 1–6 had not passed),
//!   anonymous requests (policies do not apply to them, §11.3 and §13.2), entries with a code
//!   this module does not know, and entries whose service, method or path is missing,
//!   unreadable or cut at the ledger's path limit.
//!
//! `request_end` and `system` entries are ignored: in strict durability a request is a
//! `request` entry plus a `request_end` (§15.4), and the `request` entry carries the decision,
//! so each request counts once. Reading the ledger and printing are the CLI's job.

use std::collections::{BTreeMap, HashMap};

use crate::checks::route::parse_route;
use crate::ledger::{EntryKind, LedgerEntry, MAX_PATH_BYTES, Outcome};
use crate::policy::digest::RuleDigest;
use crate::policy::replay::recorded::{OldPolicy, OldVerdict, recorded_verdict};
use crate::policy::rule::Rule;
use crate::policy::set::{AgentPolicy, Decision, PolicySet};
use crate::rate_window::Window;
use crate::timestamp::Timestamp;

/// Replays ledger entries, one at a time in id order, against a policy set.
#[derive(Debug)]
pub struct Replay<'a> {
    set: &'a PolicySet,
    require_policy: bool,
    windows: HashMap<(String, RuleDigest), Window>,
    report: ReplayReport<'a>,
}

/// What a replay found: the totals and every change.
#[derive(Debug, Default)]
pub struct ReplayReport<'a> {
    /// Comparable requests whose policy verdict is the same.
    pub unchanged: u64,
    /// Requests the policy step let through that the new policies refuse.
    pub allowed_to_blocked: u64,
    /// Requests the policy step refused that the new policies let through.
    pub blocked_to_allowed: u64,
    /// `rate_limited` entries without `detail.limiter`, counted in `unchanged` unless the new
    /// policies refuse them outright (see the module documentation).
    pub limiter_unknown: u64,
    /// Requests that cannot be compared, by reason.
    pub not_comparable: BTreeMap<NotComparable, u64>,
    /// Every changed request, in id order.
    pub changes: Vec<Change<'a>>,
}

/// One request whose policy verdict changed.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// Ledger id of the `request` entry.
    pub id: u64,
    /// Its time.
    pub ts: Timestamp,
    /// The agent.
    pub agent: String,
    /// The service.
    pub service: String,
    /// The method.
    pub method: String,
    /// The forwarded path (after the service segment, without the query string).
    pub path: String,
    /// The recorded outcome.
    pub old_outcome: Outcome,
    /// The recorded denial code, if any.
    pub old_code: Option<String>,
    /// Which way it changed.
    pub direction: Direction,
    /// What the new policies say.
    pub new: Verdict,
    /// Why.
    pub decided_by: DecidedBy<'a>,
}

/// Which way a verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Let through before, refused now.
    AllowedToBlocked,
    /// Refused before, let through now.
    BlockedToAllowed,
}

impl Direction {
    /// `allowed_to_blocked` or `blocked_to_allowed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowedToBlocked => "allowed_to_blocked",
            Self::BlockedToAllowed => "blocked_to_allowed",
        }
    }
}

/// The new policy step's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A rule matched (within its rate limit), or the agent has no policy.
    Allowed,
    /// No rule matched, or a policy is required and the agent has none: `policy_denied`.
    Denied,
    /// The matched rule's rate limit refused it: `rate_limited`.
    RateLimited,
}

impl Verdict {
    /// Whether the request would be refused.
    pub fn is_blocked(self) -> bool {
        !matches!(self, Self::Allowed)
    }

    /// The denial code the gate would record, for refusals.
    pub fn denial_code(self) -> Option<&'static str> {
        match self {
            Self::Allowed => None,
            Self::Denied => Some("policy_denied"),
            Self::RateLimited => Some("rate_limited"),
        }
    }
}

/// What decided the new verdict.
#[derive(Debug, Clone, Copy)]
pub enum DecidedBy<'a> {
    /// This rule matched (and, for [`Verdict::RateLimited`], its rate limit refused).
    Rule(&'a Rule),
    /// The agent's policy has no matching rule.
    NoRuleMatched(&'a AgentPolicy),
    /// The agent has no policy file: grants only.
    NoPolicy,
    /// The agent has no policy file and `gate.require_policy` is on.
    PolicyRequired,
}

impl DecidedBy<'_> {
    /// `rule_matched`, `no_rule_matched`, `no_policy` or `policy_required`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rule(_) => "rule_matched",
            Self::NoRuleMatched(_) => "no_rule_matched",
            Self::NoPolicy => "no_policy",
            Self::PolicyRequired => "policy_required",
        }
    }
}

/// Why a request entry cannot be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotComparable {
    /// Refused at steps 0–6, before the policy step.
    BeforePolicyStep,
    /// An anonymous request: policies do not apply to it.
    Anonymous,
    /// A denial code that does not say at which step it was refused.
    UnknownStep,
    /// Service, method or path missing or not a gate route.
    Incomplete,
    /// The path reached the ledger's length limit and may have been cut.
    PathTruncated,
}

impl NotComparable {
    /// Every reason, in report order.
    pub const ALL: &'static [Self] = &[
        Self::BeforePolicyStep,
        Self::Anonymous,
        Self::UnknownStep,
        Self::Incomplete,
        Self::PathTruncated,
    ];

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforePolicyStep => "before_policy_step",
            Self::Anonymous => "anonymous",
            Self::UnknownStep => "unknown_step",
            Self::Incomplete => "incomplete",
            Self::PathTruncated => "path_truncated",
        }
    }

    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::BeforePolicyStep => "refused before the policy step",
            Self::Anonymous => "anonymous",
            Self::UnknownStep => "refused at an unknown step",
            Self::Incomplete => "no service, method or path",
            Self::PathTruncated => "path cut at 2048 bytes",
        }
    }
}

impl<'a> Replay<'a> {
    /// Starts a replay against `set`; `require_policy` is `gate.require_policy`.
    pub fn new(set: &'a PolicySet, require_policy: bool) -> Self {
        Self {
            set,
            require_policy,
            windows: HashMap::new(),
            report: ReplayReport::default(),
        }
    }

    /// Takes the next entry (entries must come in id order). Only `request` entries count.
    pub fn observe(&mut self, entry: &LedgerEntry) {
        let content = entry.content();
        if content.kind() != EntryKind::Request {
            return;
        }
        match self.compare(entry) {
            Ok(()) => {}
            Err(reason) => *self.report.not_comparable.entry(reason).or_default() += 1,
        }
    }

    /// The report so far.
    pub fn report(&self) -> &ReplayReport<'a> {
        &self.report
    }

    /// Ends the replay.
    pub fn finish(self) -> ReplayReport<'a> {
        self.report
    }

    fn compare(&mut self, entry: &LedgerEntry) -> Result<(), NotComparable> {
        let content = entry.content();
        let old = recorded_verdict(content)?;
        let agent = content.agent().ok_or(NotComparable::Anonymous)?;
        let (Some(service), Some(method), Some(recorded_path)) =
            (content.service(), content.method(), content.path())
        else {
            return Err(NotComparable::Incomplete);
        };
        if recorded_path.len() >= MAX_PATH_BYTES {
            return Err(NotComparable::PathTruncated);
        }
        // The ledger records the request target (`/service/path`); policies match the
        // forwarded path, which the route parser splits off exactly as the gate did.
        let route = parse_route(method, recorded_path).map_err(|_| NotComparable::Incomplete)?;
        if route.service != service {
            return Err(NotComparable::Incomplete);
        }
        let (new, decided_by) = self.decide(agent, service, method, route.path, entry.ts(), old);
        let direction = match old.policy {
            OldPolicy::Allowed if new.is_blocked() => Some(Direction::AllowedToBlocked),
            OldPolicy::Blocked if !new.is_blocked() => Some(Direction::BlockedToAllowed),
            OldPolicy::LimiterUnknown => {
                self.report.limiter_unknown += 1;
                (new == Verdict::Denied).then_some(Direction::AllowedToBlocked)
            }
            _ => None,
        };
        let Some(direction) = direction else {
            self.report.unchanged += 1;
            return Ok(());
        };
        match direction {
            Direction::AllowedToBlocked => self.report.allowed_to_blocked += 1,
            Direction::BlockedToAllowed => self.report.blocked_to_allowed += 1,
        }
        self.report.changes.push(Change {
            id: entry.id(),
            ts: entry.ts(),
            agent: agent.to_owned(),
            service: service.to_owned(),
            method: method.to_owned(),
            path: route.path.to_owned(),
            old_outcome: old.outcome,
            old_code: content.denial_code().map(str::to_owned),
            direction,
            new,
            decided_by,
        });
        Ok(())
    }

    /// The new policy step for one request, with the matched rule's rate limit simulated.
    fn decide(
        &mut self,
        agent: &str,
        service: &str,
        method: &str,
        path: &str,
        at: Timestamp,
        old: OldVerdict,
    ) -> (Verdict, DecidedBy<'a>) {
        let set: &'a PolicySet = self.set;
        let rule = match set.evaluate(agent, service, method, path.as_bytes(), at) {
            Decision::NoPolicy if self.require_policy => {
                return (Verdict::Denied, DecidedBy::PolicyRequired);
            }
            Decision::NoPolicy => return (Verdict::Allowed, DecidedBy::NoPolicy),
            Decision::Deny(policy) => return (Verdict::Denied, DecidedBy::NoRuleMatched(policy)),
            Decision::Allow(rule) => rule,
        };
        let Some(rate) = rule.rate_limit() else {
            return (Verdict::Allowed, DecidedBy::Rule(rule));
        };
        let now_ms = u64::try_from(at.as_millis()).unwrap_or(0);
        let window = self
            .windows
            .entry((agent.to_owned(), *rule.digest()))
            .or_insert_with(|| Window::from_rate(rate));
        if window.check(now_ms).is_err() {
            return (Verdict::RateLimited, DecidedBy::Rule(rule));
        }
        if old.consumes_quota {
            window.record(now_ms);
        }
        (Verdict::Allowed, DecidedBy::Rule(rule))
    }
}

mod recorded;

#[cfg(test)]
mod tests;
