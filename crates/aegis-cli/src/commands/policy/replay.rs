//! `aegis policy replay --since <t> [--until <t>] [--agent <a>]` (SPEC.md §13.3): the current
//! policy files against the request entries of the ledger, in id order.
//!
//! The comparison (what counts as blocked before and after, what cannot be compared, how rule
//! rate limits are simulated) is `aegis_core::policy::replay`'s; this module reads the ledger
//! with the filters and time parser of `ledger show` and prints the totals and every change.

use std::time::SystemTime;

use aegis_core::policy::replay::{Change, DecidedBy, NotComparable, Replay, ReplayReport, Verdict};
use aegis_core::timestamp::Timestamp;
use aegis_store::ledger::LedgerFilter;
use serde_json::{Value, json};

use super::{compile, count, policies_dir};
use crate::cli::PolicyReplayArgs;
use crate::commands::ledger::{each_entry, time_flag};
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// Runs `aegis policy replay`.
pub(super) async fn replay(ctx: &Context, args: &PolicyReplayArgs) -> Result<(), CliError> {
    let now = Timestamp::from_system_time(SystemTime::now());
    let since = time_flag("since", &args.since, now)?;
    let until = args
        .until
        .as_deref()
        .map(|text| time_flag("until", text, now))
        .transpose()?;
    if until.is_some_and(|until| until < since) {
        return Err(CliError::usage("--until is before --since")
            .with_hint("give the earlier time to --since"));
    }
    let dir = policies_dir(ctx)?;
    let set = compile(&dir)?;
    let store = ctx.vault_store().await?;
    let filter = LedgerFilter {
        agent: args.agent.as_ref().map(ToString::to_string),
        since: Some(since),
        until,
        ..LedgerFilter::default()
    };
    let mut replay = Replay::new(&set, ctx.loaded.config.gate.require_policy);
    each_entry(&store, &filter, |entry| replay.observe(entry)).await?;
    let report = replay.finish();
    match report.limiter_unknown {
        0 => {}
        1 => output::warn(
            "1 rate_limited entry does not record which limiter refused it; it counts as \
             unchanged unless the policy refuses it now",
        ),
        n => output::warn(format!(
            "{n} rate_limited entries do not record which limiter refused them; they count as \
             unchanged unless the policy refuses them now"
        )),
    }
    if ctx.json {
        let agent = args.agent.as_ref().map(|a| a.as_str());
        output::json(&json!({
            "since": since.to_rfc3339(),
            "until": until.map(Timestamp::to_rfc3339),
            "agent": agent,
            "policies_dir": dir.display().to_string(),
            "files": set.file_count(),
            "rules": set.rule_count(),
            "requests": requests(&report),
            "totals": {
                "unchanged": report.unchanged,
                "allowed_to_blocked": report.allowed_to_blocked,
                "blocked_to_allowed": report.blocked_to_allowed,
                "not_comparable": not_comparable(&report),
            },
            "not_comparable": NotComparable::ALL
                .iter()
                .map(|reason| {
                    let n = report.not_comparable.get(reason).copied().unwrap_or(0);
                    (reason.as_str().to_owned(), Value::from(n))
                })
                .collect::<serde_json::Map<_, _>>(),
            "limiter_unknown": report.limiter_unknown,
            "changes": report.changes.iter().map(change_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    output::line(format!(
        "replayed {} against {} ({})",
        count(to_usize(requests(&report)), "request"),
        count(set.file_count(), "policy file"),
        count(set.rule_count(), "rule"),
    ));
    output::block(&[
        ("unchanged", report.unchanged.to_string()),
        ("allowed → blocked", report.allowed_to_blocked.to_string()),
        ("blocked → allowed", report.blocked_to_allowed.to_string()),
        ("not comparable", not_comparable_text(&report)),
    ]);
    if report.changes.is_empty() {
        output::line("no changes");
        return Ok(());
    }
    output::line("");
    let rows = report
        .changes
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.ts.to_rfc3339(),
                c.agent.clone(),
                c.service.clone(),
                c.method.clone(),
                c.path.clone(),
                old_text(c),
                new_text(c.new),
                decided_text(c),
            ]
        })
        .collect();
    output::table(
        &[
            "id", "time", "agent", "service", "method", "path", "old", "new", "rule",
        ],
        rows,
    );
    Ok(())
}

fn requests(report: &ReplayReport<'_>) -> u64 {
    report.unchanged
        + report.allowed_to_blocked
        + report.blocked_to_allowed
        + not_comparable(report)
}

fn not_comparable(report: &ReplayReport<'_>) -> u64 {
    report.not_comparable.values().sum()
}

/// `0`, or `4 (3 refused before the policy step, 1 anonymous)`.
fn not_comparable_text(report: &ReplayReport<'_>) -> String {
    let total = not_comparable(report);
    let parts: Vec<String> = NotComparable::ALL
        .iter()
        .filter_map(|reason| {
            let n = report.not_comparable.get(reason)?;
            Some(format!("{n} {}", reason.describe()))
        })
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", parts.join(", "))
    }
}

/// `allowed`, or the outcome with its code: `blocked (policy_denied)`.
fn old_text(change: &Change<'_>) -> String {
    match &change.old_code {
        Some(code) => format!("{} ({code})", change.old_outcome.as_str()),
        None => change.old_outcome.as_str().to_owned(),
    }
}

fn new_text(verdict: Verdict) -> String {
    match verdict.denial_code() {
        Some(code) => format!("blocked ({code})"),
        None => "allowed".to_owned(),
    }
}

/// The deciding rule and its place, as `policy test` names it.
fn decided_text(change: &Change<'_>) -> String {
    match change.decided_by {
        DecidedBy::Rule(rule) => {
            let place = format!("{} ({})", rule.name(), rule.location());
            match (change.new, rule.rate_limit()) {
                (Verdict::RateLimited, Some(rate)) => format!("{place}, rate limit {rate}"),
                _ => place,
            }
        }
        DecidedBy::NoRuleMatched(policy) => format!("no rule matched ({})", policy.file()),
        DecidedBy::NoPolicy => "no policy for agent (grants only)".to_owned(),
        DecidedBy::PolicyRequired => "no policy for agent (gate.require_policy is on)".to_owned(),
    }
}

fn change_json(change: &Change<'_>) -> Value {
    let (rule, file) = match change.decided_by {
        DecidedBy::Rule(rule) => (
            json!({
                "name": rule.name(),
                "file": rule.file(),
                "line": rule.line(),
                "digest": rule.digest().to_hex(),
                "rate_limit": rule.rate_limit().map(|r| r.to_string()),
            }),
            json!(rule.file()),
        ),
        DecidedBy::NoRuleMatched(policy) => (Value::Null, json!(policy.file())),
        DecidedBy::NoPolicy | DecidedBy::PolicyRequired => (Value::Null, Value::Null),
    };
    let new_outcome = if change.new.is_blocked() {
        "blocked"
    } else {
        "allowed"
    };
    json!({
        "id": change.id,
        "ts": change.ts.to_rfc3339(),
        "agent": change.agent,
        "service": change.service,
        "method": change.method,
        "path": change.path,
        "change": change.direction.as_str(),
        "old": { "outcome": change.old_outcome.as_str(), "denial_code": change.old_code },
        "new": { "outcome": new_outcome, "denial_code": change.new.denial_code() },
        "decided_by": change.decided_by.as_str(),
        "rule": rule,
        "file": file,
    })
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
