//! Criterion benchmarks for the policy step: `PolicySet::evaluate` with 100 rules per agent, and
//! compiling such a set. Run with `cargo bench -p aegis-core --bench policy`.
//!
//! Agents `agent-NN` each hold 100 rules spread over 10 services (10 rules per service, every
//! rule with two path patterns, every other rule with a time window in Europe/Berlin). Agent
//! `crowded` holds 100 rules all for one service, so a denial there tries every rule: the worst
//! case. The target is well under the 2 µs budget of a whole admission decision.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;

use aegis_core::policy::{Decision, PolicySet};
use aegis_core::timestamp::Timestamp;
use criterion::{Criterion, criterion_group, criterion_main};

/// How many agents with spread-out rules the set holds.
const AGENTS: usize = 10;
/// Rules per agent.
const RULES: usize = 100;
/// Services per spread-out agent.
const SERVICES: usize = 10;
/// 2026-03-02T10:00:00Z, a Monday: 11:00 in Berlin, inside the `08:00`–`18:00` windows.
const NOW_MILLIS: i64 = 1_772_445_600_000;

fn evaluate(c: &mut Criterion) {
    let set = PolicySet::compile(&sources()).expect("bench policies compile");
    let now = Timestamp::from_millis(NOW_MILLIS);
    let cases = [
        Case::new(
            "allow_first_rule_of_service",
            "agent-05",
            "svc-3",
            "/v1/items/30/detail",
            Expect::Allow("r-030"),
        ),
        Case::new(
            "allow_last_rule_of_service",
            "agent-05",
            "svc-3",
            "/v1/items/39/detail",
            Expect::Allow("r-039"),
        ),
        Case::new(
            "deny_no_rule_matched",
            "agent-05",
            "svc-3",
            "/v2/nothing/here",
            Expect::Deny,
        ),
        Case::new(
            "deny_unknown_service_for_agent",
            "agent-05",
            "svc-99",
            "/v1/items/1",
            Expect::Deny,
        ),
        Case::new(
            "crowded_deny_tries_100_rules",
            "crowded",
            "svc-0",
            "/nowhere",
            Expect::Deny,
        ),
        Case::new(
            "no_policy_for_agent",
            "agent-unlisted",
            "svc-3",
            "/v1/items/30",
            Expect::NoPolicy,
        ),
    ];
    let mut group = c.benchmark_group("policy_evaluate_100_rules");
    for case in cases {
        let decision = set.evaluate(case.agent, case.service, "GET", case.path.as_bytes(), now);
        match (case.expected, decision) {
            (Expect::NoPolicy, Decision::NoPolicy) | (Expect::Deny, Decision::Deny(_)) => {}
            (Expect::Allow(rule), Decision::Allow(found)) => {
                assert_eq!(found.name(), rule, "{}", case.name);
            }
            (_, other) => panic!("{}: unexpected decision {other:?}", case.name),
        }
        group.bench_function(case.name, |b| {
            b.iter(|| {
                black_box(set.evaluate(
                    black_box(case.agent),
                    black_box(case.service),
                    black_box("GET"),
                    black_box(case.path.as_bytes()),
                    black_box(now),
                ))
            });
        });
    }
    group.finish();

    let files = sources();
    c.bench_function("policy_compile_11_files_1100_rules", |b| {
        b.iter(|| black_box(PolicySet::compile(black_box(&files)).is_ok()));
    });
}

/// One timed request and the decision it must get.
struct Case {
    name: &'static str,
    agent: &'static str,
    service: &'static str,
    path: &'static str,
    expected: Expect,
}

/// The decision a case must get.
#[derive(Clone, Copy)]
enum Expect {
    Allow(&'static str),
    Deny,
    NoPolicy,
}

impl Case {
    fn new(
        name: &'static str,
        agent: &'static str,
        service: &'static str,
        path: &'static str,
        expected: Expect,
    ) -> Self {
        Self {
            name,
            agent,
            service,
            path,
            expected,
        }
    }
}

/// The policy files of the benchmark.
fn sources() -> Vec<(String, String)> {
    let mut files = Vec::with_capacity(AGENTS + 1);
    for agent in 0..AGENTS {
        let mut text = format!("agent: agent-{agent:02}\nrules:\n");
        for rule in 0..RULES {
            let service = rule / SERVICES;
            write_rule(&mut text, rule, service);
        }
        files.push((format!("agent-{agent:02}.yaml"), text));
    }
    let mut crowded = String::from("agent: crowded\nrules:\n");
    for rule in 0..RULES {
        write_rule(&mut crowded, rule, 0);
    }
    files.push(("crowded.yaml".to_owned(), crowded));
    files
}

fn write_rule(text: &mut String, rule: usize, service: usize) {
    let _ = write!(
        text,
        "  - name: r-{rule:03}\n    service: svc-{service}\n    methods: [GET, HEAD]\n    \
         paths: [\"/v1/items/{rule}(/[a-z]+)?\", \"/v1/other/{rule}/[0-9]+\"]\n    rate_limit: {}/min\n",
        rule + 1
    );
    if rule % 2 == 1 {
        text.push_str(
            "    time_window: { start: \"08:00\", end: \"18:00\", timezone: Europe/Berlin, \
             days: [mon, tue, wed, thu, fri] }\n",
        );
    }
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
