//! `aegis policy replay` end to end (SPEC.md §13.3): traffic through a real gate started without
//! policies, then policy files written afterwards and replayed against what the ledger recorded.
//!
//! The gate never sees these policy files, so every recorded outcome is what a gate without
//! policies produces; `policy_denied`, `would_block` and named limiters are covered by the unit
//! tests of `aegis_core::policy::replay`.

use std::time::Duration;

use super::support::{Gate, TestEnv, World, assert_error, curl, initialised};

const SECRET: &str = "sk-replay-test-secret-0123456789";

/// bot may only read; its reads are limited to one an hour when `RATE` is appended.
const GET_ONLY: &str = "agent: bot\nrules:\n  - name: read\n    service: svc\n    methods: [GET]\n";
const RATE: &str = "    rate_limit: 1/hour\n";

/// A world with credential `svc` for service `svc`, agents `bot` and `other` granted it, and
/// their tokens.
fn world(config: &str) -> (World, String, String) {
    let w = World::new();
    w.append_config(config);
    w.add_bearer("svc", "svc", SECRET);
    let mut tokens = Vec::new();
    for name in ["bot", "other"] {
        let run = w.ok(&["agent", "add", "--name", name, "--json"]);
        tokens.push(run.json()["token"].as_str().expect("token").to_owned());
        w.ok(&["agent", "grant", "--agent", name, "--credential", "svc"]);
    }
    let other = tokens.pop().expect("other");
    let bot = tokens.pop().expect("bot");
    (w, bot, other)
}

/// Sends `method path` through the gate with the agent token (when given) and extra headers.
fn send(gate: &Gate, method: &str, path: &str, token: Option<&str>, extra: &[&str]) -> u16 {
    let url = format!("{}{path}", gate.base);
    let header = token.map(|t| format!("X-Aegis-Agent: {t}"));
    let mut args = vec!["-X", method];
    if let Some(h) = &header {
        args.extend(["-H", h.as_str()]);
    }
    for h in extra {
        args.extend(["-H", h]);
    }
    args.push(&url);
    curl(&args).status
}

/// Stops the gate cleanly so every entry is in the ledger.
fn stop(mut gate: Gate) {
    gate.terminate();
    assert_eq!(
        gate.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        gate.output()
    );
}

/// The mixed traffic most tests replay: bot reads twice and writes once (the write with a query
/// string), `other` and an anonymous caller read, and bot is refused twice before step 7.
fn mixed_traffic(w: &World, bot: &str, other: &str) {
    let gate = w.gate(&[]);
    assert_eq!(send(&gate, "GET", "/svc/items/1", Some(bot), &[]), 200);
    assert_eq!(
        send(&gate, "POST", "/svc/items?token=sk-hidden", Some(bot), &[]),
        200
    );
    assert_eq!(send(&gate, "GET", "/svc/items/2", Some(bot), &[]), 200);
    assert_eq!(send(&gate, "GET", "/svc/items/3", Some(other), &[]), 200);
    assert_eq!(send(&gate, "GET", "/svc/items/4", None, &[]), 200);
    assert_eq!(send(&gate, "GET", "/nope/x", Some(bot), &[]), 404);
    let evil = ["X-Target-Host: evil.example"];
    assert_eq!(send(&gate, "GET", "/svc/x", Some(bot), &evil), 403);
    stop(gate);
}

/// Writes `policies/<name>` (replacing any file of that name).
fn write_policy(env: &TestEnv, name: &str, text: &str) {
    let dir = env.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir policies");
    std::fs::write(dir.join(name), text).expect("write policy");
}

/// `aegis policy replay --policies-dir policies <args>`; must succeed.
fn replay(env: &TestEnv, args: &[&str]) -> super::support::Run {
    let mut all = vec!["policy", "replay", "--policies-dir", "policies"];
    all.extend_from_slice(args);
    let run = env.run(&all, "");
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run
}

/// The request entry of `method path` (the recorded target, without the query): id and time.
fn entry(env: &TestEnv, method: &str, path: &str) -> (u64, String) {
    let show = env.run(["ledger", "show", "--limit", "1000", "--json"], "");
    assert_eq!(show.code, 0, "{}", show.stderr);
    let entries = show.json();
    let found: Vec<&serde_json::Value> = entries
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["kind"] == "request" && e["method"] == method && e["path"] == path)
        .collect();
    assert_eq!(found.len(), 1, "one {method} {path} entry: {entries}");
    (
        found[0]["id"].as_u64().expect("id"),
        found[0]["ts"].as_str().expect("ts").to_owned(),
    )
}

#[test]
fn a_get_only_policy_would_have_blocked_the_post_and_early_refusals_are_not_comparable() {
    let (w, bot, other) = world("");
    mixed_traffic(&w, &bot, &other);
    write_policy(&w.env, "bot.yaml", GET_ONLY);
    let run = replay(&w.env, &["--since", "1h"]);
    let (id, ts) = entry(&w.env, "POST", "/svc/items");
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        format!(
            "replayed 7 requests against 1 policy file (1 rule)
unchanged:          3
allowed → blocked:  1
blocked → allowed:  0
not comparable:     3 (2 refused before the policy step, 1 anonymous)

 ID  TIME                      AGENT  SERVICE  METHOD  PATH    OLD      NEW                      RULE
 {id:<2}  {ts}  bot    svc      POST    /items  allowed  blocked (policy_denied)  no rule matched (bot.yaml)
"
        )
    );
    assert!(!run.stdout.contains("sk-hidden"));
}

#[test]
fn a_rule_rate_limit_is_simulated_so_the_second_read_in_the_hour_is_blocked() {
    let (w, bot, other) = world("");
    mixed_traffic(&w, &bot, &other);
    write_policy(&w.env, "bot.yaml", &format!("{GET_ONLY}{RATE}"));
    let run = replay(&w.env, &["--since", "1h", "--json"]);
    let body = run.json();
    assert_eq!(
        body["totals"],
        serde_json::json!({
            "unchanged": 2, "allowed_to_blocked": 2, "blocked_to_allowed": 0, "not_comparable": 3,
        })
    );
    let changes: Vec<(&str, &str, &str, &str)> = body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["method"].as_str().expect("method"),
                c["path"].as_str().expect("path"),
                c["new"]["denial_code"].as_str().expect("code"),
                c["decided_by"].as_str().expect("decided_by"),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("POST", "/items", "policy_denied", "no_rule_matched"),
            ("GET", "/items/2", "rate_limited", "rule_matched"),
        ]
    );
    let limited = &body["changes"][1];
    assert_eq!(limited["rule"]["name"], "read");
    assert_eq!(limited["rule"]["file"], "bot.yaml");
    assert_eq!(limited["rule"]["line"], 3);
    assert_eq!(limited["rule"]["rate_limit"], "1/hour");

    let text = replay(&w.env, &["--since", "1h"]);
    let (id, ts) = entry(&w.env, "GET", "/svc/items/2");
    let row = text
        .stdout
        .lines()
        .find(|l| l.contains("/items/2"))
        .expect("row of the second read");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>().join(" "),
        format!(
            "{id} {ts} bot svc GET /items/2 allowed blocked (rate_limited) read (bot.yaml:3), rate limit 1/hour"
        )
    );
}

#[test]
fn agent_and_time_filters_choose_the_entries_and_json_has_every_field() {
    let (w, bot, other) = world("");
    mixed_traffic(&w, &bot, &other);
    write_policy(&w.env, "bot.yaml", GET_ONLY);
    write_policy(
        &w.env,
        "other.yaml",
        "agent: other\nrules:\n  - service: svc\n    methods: [POST]\n",
    );

    let run = replay(&w.env, &["--since", "1h", "--agent", "other", "--json"]);
    let (id, ts) = entry(&w.env, "GET", "/svc/items/3");
    let mut body = run.json();
    assert!(body["since"].is_string() && body["until"].is_null());
    body["since"] = serde_json::json!("<since>");
    assert!(
        body["policies_dir"]
            .as_str()
            .is_some_and(|d| d.ends_with("policies"))
    );
    body["policies_dir"] = serde_json::json!("<dir>");
    let digest_free = serde_json::json!({
        "since": "<since>",
        "until": null,
        "agent": "other",
        "policies_dir": "<dir>",
        "files": 2,
        "rules": 2,
        "requests": 1,
        "totals": {
            "unchanged": 0, "allowed_to_blocked": 1, "blocked_to_allowed": 0, "not_comparable": 0,
        },
        "not_comparable": {
            "before_policy_step": 0, "anonymous": 0, "unknown_step": 0, "incomplete": 0,
            "path_truncated": 0,
        },
        "limiter_unknown": 0,
        "changes": [{
            "id": id,
            "ts": ts,
            "agent": "other",
            "service": "svc",
            "method": "GET",
            "path": "/items/3",
            "change": "allowed_to_blocked",
            "old": { "outcome": "allowed", "denial_code": null },
            "new": { "outcome": "blocked", "denial_code": "policy_denied" },
            "decided_by": "no_rule_matched",
            "rule": null,
            "file": "other.yaml",
        }],
    });
    assert_eq!(body, digest_free);

    // bot alone: its three requests through step 7 and the domain_blocked refusal. The
    // unknown_service refusal came before agent authentication, so it records no agent.
    let body = replay(&w.env, &["--since", "1h", "--agent", "bot", "--json"]).json();
    assert_eq!(body["requests"], 4);
    assert_eq!(body["totals"]["allowed_to_blocked"], 1);
    assert_eq!(body["not_comparable"]["before_policy_step"], 1);
    assert_eq!(body["not_comparable"]["anonymous"], 0);

    // A window before the traffic holds nothing.
    let run = replay(
        &w.env,
        &["--since", "2020-01-01", "--until", "2020-01-02T00:00:00Z"],
    );
    assert_eq!(
        run.stdout,
        "replayed 0 requests against 2 policy files (2 rules)
unchanged:          0
allowed → blocked:  0
blocked → allowed:  0
not comparable:     0
no changes
"
    );
}

#[test]
fn in_strict_durability_a_request_and_its_end_count_once() {
    let (w, bot, _) = world("ledger:\n  durability: strict\n");
    let gate = w.gate(&[]);
    assert_eq!(send(&gate, "GET", "/svc/a", Some(&bot), &[]), 200);
    assert_eq!(send(&gate, "DELETE", "/svc/a", Some(&bot), &[]), 200);
    stop(gate);
    let show = w
        .ok(&["ledger", "show", "--limit", "1000", "--json"])
        .json();
    let ends = show
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["kind"] == "request_end")
        .count();
    assert_eq!(
        ends, 2,
        "strict mode wrote a request_end per request: {show}"
    );
    write_policy(&w.env, "bot.yaml", GET_ONLY);
    let body = replay(&w.env, &["--since", "1h", "--json"]).json();
    assert_eq!(body["requests"], 2);
    assert_eq!(body["totals"]["unchanged"], 1);
    assert_eq!(body["totals"]["allowed_to_blocked"], 1);
    assert_eq!(body["changes"][0]["method"], "DELETE");
}

#[test]
fn replay_refuses_bad_times_invalid_policies_and_a_missing_directory() {
    let env = initialised();
    let run = env.run(["policy", "replay", "--policies-dir", "policies"], "");
    assert_error(&run, 2, "required arguments were not provided");
    let run = env.run(["policy", "replay", "--since", "1h"], "");
    assert_error(&run, 2, "gate.policies_dir is not set");
    let run = env.run(
        [
            "policy",
            "replay",
            "--since",
            "1h",
            "--policies-dir",
            "nowhere",
        ],
        "",
    );
    assert_error(&run, 2, "does not exist");
    write_policy(&env, "bot.yaml", "agent: bot\nrules: []\n");
    let run = env.run(
        [
            "policy",
            "replay",
            "--since",
            "1h",
            "--policies-dir",
            "policies",
        ],
        "",
    );
    assert_error(&run, 2, "bot.yaml:2:8: rules");
    write_policy(&env, "bot.yaml", GET_ONLY);
    let run = env.run(
        [
            "policy",
            "replay",
            "--since",
            "soon",
            "--policies-dir",
            "policies",
        ],
        "",
    );
    assert_error(&run, 2, "--since: invalid time 'soon'");
    let run = env.run(
        [
            "policy",
            "replay",
            "--since",
            "1h",
            "--until",
            "2h",
            "--policies-dir",
            "policies",
        ],
        "",
    );
    assert_error(&run, 2, "--until is before --since");
}
