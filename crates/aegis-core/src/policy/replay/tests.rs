//! The replay's comparison rules on entries built in memory: the outcomes a gate without
//! policies cannot produce (`policy_denied`, `would_block`, named limiters) are covered here.

use serde_json::{Map, Value, json};

use super::*;
use crate::ledger::{EntryContent, Via};

const GET_ONLY: &str = "agent: bot\nrules:\n  - name: read\n    service: svc\n    methods: [GET]\n";
const ONE_PER_HOUR: &str = "agent: bot\nrules:\n  - name: hourly\n    service: svc\n    methods: [GET]\n    rate_limit: 1/hour\n";
const TWO_PER_HOUR: &str = "agent: bot\nrules:\n  - service: svc\n    rate_limit: 2/hour\n";

fn set(text: &str) -> PolicySet {
    PolicySet::compile(&[("bot.yaml".to_owned(), text.to_owned())])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// An entry the gate writes for a request that passed the checks of steps 1–6.
fn checked(agent: &str, method: &str, target: &str) -> EntryContent {
    let service = target.split('/').nth(1).expect("service segment");
    EntryContent::request(Outcome::Allowed, Via::Gate, "test")
        .with_request_id("r")
        .with_agent(agent)
        .with_credential("cred")
        .with_service(service)
        .with_method(method)
        .with_path(target.as_bytes())
}

fn refused(content: EntryContent, outcome: Outcome, code: &str) -> EntryContent {
    content.with_outcome(outcome).with_denial_code(code)
}

fn limiter(content: EntryContent, name: &str) -> EntryContent {
    let mut detail = Map::new();
    detail.insert("limiter".to_owned(), Value::String(name.to_owned()));
    content.with_detail(detail)
}

/// An entry refused before the checks passed: no credential recorded.
fn early(agent: Option<&str>, code: &str, outcome: Outcome) -> EntryContent {
    let entry = EntryContent::request(outcome, Via::Gate, "test")
        .with_service("svc")
        .with_method("GET")
        .with_path(b"/svc/x")
        .with_denial_code(code);
    match agent {
        Some(agent) => entry.with_agent(agent),
        None => entry,
    }
}

/// Replays the entries with ids 1, 2, … one second apart.
fn replay(set: &PolicySet, require_policy: bool, entries: Vec<EntryContent>) -> ReplayReport<'_> {
    let mut replay = Replay::new(set, require_policy);
    for (i, content) in entries.into_iter().enumerate() {
        let id = u64::try_from(i).expect("small") + 1;
        let ts =
            Timestamp::from_millis(1_767_225_600_000 + i64::try_from(id).expect("small") * 1000);
        replay.observe(&LedgerEntry::chained(id, ts, content, [0; 32]));
    }
    replay.finish()
}

fn totals(report: &ReplayReport<'_>) -> (u64, u64, u64, u64) {
    (
        report.unchanged,
        report.allowed_to_blocked,
        report.blocked_to_allowed,
        report.not_comparable.values().sum(),
    )
}

fn change_ids(report: &ReplayReport<'_>) -> Vec<u64> {
    report.changes.iter().map(|c| c.id).collect()
}

#[test]
fn a_get_only_policy_turns_past_posts_into_allowed_to_blocked() {
    let set = set(GET_ONLY);
    let report = replay(
        &set,
        false,
        vec![
            checked("bot", "GET", "/svc/items/1"),
            checked("bot", "POST", "/svc/items"),
            checked("other", "POST", "/svc/items"),
        ],
    );
    assert_eq!(totals(&report), (2, 1, 0, 0));
    let change = &report.changes[0];
    assert_eq!(
        (change.id, change.method.as_str(), change.path.as_str()),
        (2, "POST", "/items")
    );
    assert_eq!(change.direction, Direction::AllowedToBlocked);
    assert_eq!(change.new, Verdict::Denied);
    assert_eq!(change.new.denial_code(), Some("policy_denied"));
    assert_eq!(
        (change.old_outcome, change.old_code.as_deref()),
        (Outcome::Allowed, None)
    );
    assert!(matches!(change.decided_by, DecidedBy::NoRuleMatched(p) if p.file() == "bot.yaml"));
}

#[test]
fn policies_match_the_forwarded_path_not_the_recorded_target() {
    let set = set("agent: bot\nrules:\n  - service: svc\n    paths: [\"/api/read.*\"]\n");
    let report = replay(
        &set,
        false,
        vec![
            checked("bot", "GET", "/svc/api/read/1"),
            checked("bot", "GET", "/svc/x/api/read"),
            checked("bot", "GET", "/svc"),
        ],
    );
    assert_eq!(totals(&report), (1, 2, 0, 0));
    let paths: Vec<&str> = report.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/x/api/read", "/"]);
}

#[test]
fn old_policy_denials_and_would_blocks_count_as_blocked() {
    let set = set(GET_ONLY);
    let report = replay(
        &set,
        false,
        vec![
            refused(
                checked("bot", "GET", "/svc/a"),
                Outcome::Blocked,
                "policy_denied",
            ),
            refused(
                checked("bot", "POST", "/svc/a"),
                Outcome::Blocked,
                "policy_denied",
            ),
            refused(
                checked("bot", "GET", "/svc/a"),
                Outcome::WouldBlock,
                "policy_denied",
            ),
            refused(
                checked("bot", "POST", "/svc/a"),
                Outcome::WouldBlock,
                "policy_denied",
            ),
        ],
    );
    assert_eq!(totals(&report), (2, 0, 2, 0));
    assert_eq!(change_ids(&report), [1, 3]);
    assert_eq!(report.changes[1].old_outcome, Outcome::WouldBlock);
    assert!(matches!(report.changes[0].decided_by, DecidedBy::Rule(r) if r.name() == "read"));
}

#[test]
fn a_rule_rate_limit_is_simulated_per_agent_and_rule_in_time_order() {
    let set = set(ONE_PER_HOUR);
    let report = replay(
        &set,
        false,
        vec![
            checked("bot", "GET", "/svc/a"),
            checked("bot", "GET", "/svc/b"),
            checked("bot", "GET", "/svc/c"),
        ],
    );
    assert_eq!(totals(&report), (1, 2, 0, 0));
    assert_eq!(change_ids(&report), [2, 3]);
    assert_eq!(report.changes[0].new, Verdict::RateLimited);
    assert_eq!(report.changes[0].new.denial_code(), Some("rate_limited"));
    assert!(matches!(report.changes[0].decided_by, DecidedBy::Rule(r) if r.name() == "hourly"));
}

#[test]
fn requests_refused_by_other_limiters_consume_no_simulated_quota() {
    let set = set(TWO_PER_HOUR);
    let credential_limited = limiter(
        refused(
            checked("bot", "GET", "/svc/a"),
            Outcome::Blocked,
            "rate_limited",
        ),
        "credential",
    );
    let report = replay(
        &set,
        false,
        vec![
            checked("bot", "GET", "/svc/a"),
            credential_limited,
            checked("bot", "GET", "/svc/a"),
            checked("bot", "GET", "/svc/a"),
        ],
    );
    assert_eq!(totals(&report), (3, 1, 0, 0), "{:?}", report.changes);
    assert_eq!(change_ids(&report), [4]);
    assert_eq!(report.limiter_unknown, 0);
}

#[test]
fn a_policy_limiter_refusal_is_blocked_and_an_unnamed_limiter_is_only_changed_by_a_denial() {
    let set = set(GET_ONLY);
    let rate_limited = |method| {
        refused(
            checked("bot", method, "/svc/a"),
            Outcome::Blocked,
            "rate_limited",
        )
    };
    let report = replay(
        &set,
        false,
        vec![
            limiter(rate_limited("GET"), "policy"),
            limiter(rate_limited("GET"), "agent"),
            rate_limited("GET"),
            rate_limited("POST"),
        ],
    );
    assert_eq!(totals(&report), (2, 1, 1, 0));
    assert_eq!(change_ids(&report), [1, 4]);
    assert_eq!(report.changes[0].direction, Direction::BlockedToAllowed);
    assert_eq!(report.changes[1].direction, Direction::AllowedToBlocked);
    assert_eq!(report.limiter_unknown, 2);
}

#[test]
fn refusals_and_failures_after_the_policy_step_are_compared_as_allowed() {
    let set = set(GET_ONLY);
    let after = [
        ("body_blocked", Outcome::Blocked),
        ("body_too_large", Outcome::Blocked),
        ("too_many_concurrent_requests", Outcome::Blocked),
        ("upstream_timeout", Outcome::Error),
        ("upstream_unreachable", Outcome::Error),
        ("request_timeout", Outcome::Error),
        ("shutting_down", Outcome::Error),
        ("internal_error", Outcome::Error),
    ];
    let entries = after
        .iter()
        .map(|(code, outcome)| refused(checked("bot", "POST", "/svc/a"), *outcome, code))
        .collect();
    let report = replay(&set, false, entries);
    assert_eq!(totals(&report), (0, 8, 0, 0));
}

#[test]
fn early_refusals_anonymous_requests_and_unknown_codes_are_not_comparable() {
    let set = set(GET_ONLY);
    let mut entries: Vec<EntryContent> = [
        "bad_request",
        "uri_too_long",
        "headers_too_large",
        "body_too_large",
        "origin_denied",
        "unknown_service",
        "agent_auth_required",
        "agent_auth_failed",
        "vault_sealed",
    ]
    .iter()
    .map(|code| early(None, code, Outcome::Blocked))
    .collect();
    entries.push(early(None, "shutting_down", Outcome::Error));
    for code in [
        "credential_not_granted",
        "credential_ambiguous",
        "credential_expired",
        "scope_denied",
        "domain_blocked",
    ] {
        entries.push(early(Some("bot"), code, Outcome::Blocked));
    }
    let before_policy = entries.len();
    entries.push(early(Some("bot"), "internal_error", Outcome::Error));
    entries.push(early(Some("bot"), "some_future_code", Outcome::Blocked));
    entries.push(refused(
        checked("bot", "GET", "/svc/a"),
        Outcome::Blocked,
        "some_future_code",
    ));
    entries.push(EntryContent::request(Outcome::Allowed, Via::Gate, "test").with_agent("bot"));
    let long = format!("/svc/{}", "a".repeat(MAX_PATH_BYTES));
    entries.push(checked("bot", "GET", &long));
    entries.push(
        checked("bot", "GET", "/svc/a")
            .with_agent("")
            .with_path(b"/svc/../x"),
    );
    let anonymous = EntryContent::request(Outcome::Allowed, Via::Gate, "test")
        .with_credential("cred")
        .with_service("svc")
        .with_method("POST")
        .with_path(b"/svc/a");
    entries.push(anonymous);
    let report = replay(&set, false, entries);
    assert_eq!(
        totals(&report),
        (0, 0, 0, u64::try_from(before_policy).expect("small") + 7)
    );
    let by_reason: Vec<(&str, u64)> = report
        .not_comparable
        .iter()
        .map(|(reason, n)| (reason.as_str(), *n))
        .collect();
    assert_eq!(
        by_reason,
        [
            (
                "before_policy_step",
                u64::try_from(before_policy).expect("small")
            ),
            ("anonymous", 1),
            ("unknown_step", 3),
            ("incomplete", 2),
            ("path_truncated", 1),
        ]
    );
}

#[test]
fn only_request_entries_count_so_a_strict_pair_counts_once() {
    let set = set(GET_ONLY);
    let start = checked("bot", "POST", "/svc/a");
    let end = start
        .clone()
        .into_request_end()
        .with_status_code(200)
        .with_latency_ms(3);
    let system = EntryContent::system(crate::ledger::SystemEvent::GateStarted, Via::System, "t");
    let report = replay(&set, false, vec![system, start, end]);
    assert_eq!(totals(&report), (0, 1, 0, 0));
    assert_eq!(change_ids(&report), [2]);
}

#[test]
fn agents_without_a_policy_are_allowed_unless_a_policy_is_required() {
    let set = set(GET_ONLY);
    let entries = || vec![checked("other", "DELETE", "/svc/a")];
    let report = replay(&set, false, entries());
    assert_eq!(totals(&report), (1, 0, 0, 0));
    let report = replay(&set, true, entries());
    assert_eq!(totals(&report), (0, 1, 0, 0));
    assert!(matches!(
        report.changes[0].decided_by,
        DecidedBy::PolicyRequired
    ));
    assert_eq!(report.changes[0].decided_by.as_str(), "policy_required");
}

#[test]
fn names_are_stable() {
    let names: Vec<&str> = NotComparable::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "before_policy_step",
            "anonymous",
            "unknown_step",
            "incomplete",
            "path_truncated"
        ]
    );
    assert_eq!(
        json!(Direction::AllowedToBlocked.as_str()),
        "allowed_to_blocked"
    );
}
