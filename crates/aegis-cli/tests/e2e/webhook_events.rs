//! Which gate decisions raise which webhook events (SPEC.md §18.1), with their data and the
//! 60-second coalescing, and a webhook added while the gate runs.

use std::time::{Duration, Instant};

use aegis_test_support::Delivery;

use super::mcp::{Mcp, add_agent};
use super::support::curl;
use super::webhooks::{
    WAIT, add_expiring, add_webhook, blocked_request, query, world_with_receiver,
};

fn events_of(seen: &[Delivery]) -> Vec<String> {
    seen.iter()
        .filter_map(|d| d.header("x-aegis-event").map(str::to_owned))
        .collect()
}

#[test]
fn auth_failures_and_rate_limits_raise_their_events_once_per_window() {
    let (w, receiver) = world_with_receiver();
    w.add(
        &[
            "--name",
            "svc",
            "--service",
            "svc",
            "--domains",
            &w.upstream.host(),
            "--rate-limit",
            "1/min",
        ],
        "svc-credential-secret-value",
    );
    let token = w.env.run(["agent", "add", "--name", "bot", "--json"], "");
    assert_eq!(token.code, 0, "{}", token.stderr);
    let token = token.json()["token"].as_str().expect("token").to_owned();
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "svc"]);
    add_webhook(
        &w,
        &receiver.url("/hook"),
        "rate_limit_exceeded,agent_auth_failure",
    );
    let gate = w.gate(&["--require-agent-auth"]);
    let url = format!("{}/svc/echo", gate.base);
    let with_token = format!("X-Aegis-Agent: {token}");
    assert_eq!(curl(&[&url]).status, 401, "no token");
    assert_eq!(curl(&["-H", "X-Aegis-Agent: wrong", &url]).status, 401);
    assert_eq!(curl(&["-H", &with_token, &url]).status, 200);
    for _ in 0..2 {
        assert_eq!(curl(&["-H", &with_token, &url]).status, 429);
    }
    // One auth event (the peer's second failure is folded), one rate-limit event.
    let seen = receiver.wait_until("the auth and rate-limit events", WAIT, |d| d.len() >= 2);
    let mut events = events_of(&seen);
    events.sort();
    assert_eq!(events, ["agent_auth_failure", "rate_limit_exceeded"]);
    let auth = seen
        .iter()
        .find(|d| d.header("x-aegis-event") == Some("agent_auth_failure"))
        .expect("auth event")
        .json();
    assert_eq!(auth["data"]["reason"], "missing");
    assert_eq!(auth["data"]["peer"], "loopback");
    assert_eq!(auth["data"]["service"], "svc");
    assert_eq!(auth["data"]["suppressed"], 0);
    let limited = seen
        .iter()
        .find(|d| d.header("x-aegis-event") == Some("rate_limit_exceeded"))
        .expect("rate-limit event")
        .json();
    assert_eq!(limited["data"]["agent"], "bot");
    assert_eq!(limited["data"]["credential"], "svc");
    assert_eq!(limited["data"]["limiter"], "credential");
    assert_eq!(limited["data"]["limit"], "1/min");
    assert!(
        limited["data"]["retry_after_s"]
            .as_u64()
            .is_some_and(|s| s >= 1)
    );
    assert_eq!(limited["data"]["suppressed"], 0);
    assert!(
        !receiver
            .deliveries()
            .iter()
            .any(|d| String::from_utf8_lossy(&d.body).contains(&token))
    );
    // Every refusal is in the ledger; the folded ones raised nothing more.
    aegis_test_support::wait_for("the four refusals in the ledger", WAIT, || {
        let blocked = w.ok(&["ledger", "show", "--blocked", "--json"]).json();
        (blocked.as_array().map(Vec::len) == Some(4)).then_some(())
    });
    assert_eq!(
        query(&w, "SELECT count(*) FROM webhook_outbox"),
        ["2"],
        "the folded refusals queued nothing"
    );
    assert_eq!(receiver.deliveries().len(), 2);
}

#[test]
fn a_webhook_added_while_the_gate_runs_receives_events_within_seconds() {
    let (w, receiver) = world_with_receiver();
    let gate = w.gate(&[]);
    blocked_request(&gate);
    add_webhook(&w, &receiver.url("/hook"), "blocked_request");
    let added = Instant::now();
    let seen = loop {
        blocked_request(&gate);
        let seen = receiver.deliveries();
        if !seen.is_empty() {
            break seen;
        }
        assert!(
            added.elapsed() < WAIT,
            "no delivery after the webhook was added"
        );
        std::thread::park_timeout(Duration::from_millis(50)); // poll interval, not a guess
    };
    println!("first delivery {:?} after webhook add", added.elapsed());
    assert!(
        added.elapsed() < Duration::from_secs(5),
        "{:?}",
        added.elapsed()
    );
    assert_eq!(seen[0].header("x-aegis-event"), Some("blocked_request"));
}

#[test]
fn inspection_findings_raise_body_inspection_with_the_action_taken() {
    let (w, receiver) = world_with_receiver();
    let host = w.upstream.host();
    w.add(
        &[
            "--name",
            "strict",
            "--service",
            "strict",
            "--domains",
            &host,
        ],
        "strict-credential-secret",
    );
    w.add(
        &[
            "--name",
            "lenient",
            "--service",
            "lenient",
            "--domains",
            &host,
            "--body-inspection",
            "warn",
        ],
        "lenient-credential-secret",
    );
    add_webhook(&w, &receiver.url("/hook"), "body_inspection");
    let gate = w.gate(&[]);
    let key = format!("AK{}{}", "IA", "Z7Q2M4N6P8R1T3V5");
    let body = format!("{{\"note\":\"{key}\"}}");
    let post = |service: &str| {
        curl(&[
            "--data-binary",
            &body,
            "-H",
            "Content-Type: application/json",
            &format!("{}/{service}/paste", gate.base),
        ])
    };
    assert_eq!(post("strict").status, 403);
    assert_eq!(post("lenient").status, 200);
    let seen = receiver.wait_until("both inspection events", WAIT, |d| d.len() >= 2);
    let mut actions: Vec<(String, String)> = seen
        .iter()
        .map(|d| {
            let body = d.json();
            assert_eq!(body["event"], "body_inspection");
            let findings = body["data"]["findings"].as_array().expect("findings");
            assert_eq!(findings[0]["detector"], "aws_access_key", "{body}");
            assert!(findings[0]["offset"].is_u64());
            (
                body["data"]["credential"].as_str().unwrap_or("").to_owned(),
                body["data"]["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            ("lenient".to_owned(), "warn".to_owned()),
            ("strict".to_owned(), "block".to_owned())
        ]
    );
    assert!(
        !seen
            .iter()
            .any(|d| String::from_utf8_lossy(&d.body).contains(&key)),
        "the finding's text never leaves the gate"
    );
}

#[test]
fn the_mcp_server_delivers_the_events_of_its_decisions() {
    let (w, receiver) = world_with_receiver();
    w.add_bearer("gh", "github", "sk-mcp-webhook-secret-0123456789");
    let token = add_agent(&w, "bot");
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);
    add_webhook(&w, &receiver.url("/hook"), "blocked_request");
    let seen = w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[("AEGIS_AGENT_TOKEN", token.as_str())]).await;
        let (is_error, result) = mcp
            .call(
                "aegis_proxy_request",
                serde_json::json!({"service": "nosuch", "path": "/x"}),
            )
            .await;
        assert!(is_error, "{result}");
        let seen = tokio::task::block_in_place(|| {
            receiver.wait_until("the MCP server's delivery", WAIT, |d| !d.is_empty())
        });
        mcp.stop().await;
        seen
    });
    let body = seen[0].json();
    assert_eq!(body["event"], "blocked_request");
    assert!(
        body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("mcp-")),
        "{body}"
    );
    // The route is checked before the agent (step 1 before 2), so no agent is named.
    assert_eq!(body["data"]["denial_code"], "unknown_service");
}

#[test]
fn the_gate_notifies_expiring_credentials_at_start_once_per_stage() {
    let (w, receiver) = world_with_receiver();
    add_expiring(&w, "soon", "github", "api.github.com", "1");
    add_webhook(&w, &receiver.url("/hook"), "credential_expiry");
    let mut gate = w.gate(&[]);
    let seen = receiver.wait_until("the expiry event", WAIT, |d| !d.is_empty());
    let body = seen[0].json();
    assert_eq!(body["event"], "credential_expiry");
    assert!(
        body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("gate-")),
        "{body}"
    );
    assert_eq!(body["data"]["credential"], "soon");
    assert_eq!(body["data"]["days_left"], 0, "{body}");
    gate.terminate();
    assert_eq!(gate.wait_exit(WAIT), 0);
    // The stage is recorded: checking again (as the next start or hour does) queues nothing.
    let again = w.ok(&["webhook", "check-expiry", "--json"]).json();
    assert_eq!(again["queued"], 0, "{again}");
    assert_eq!(
        query(
            &w,
            "SELECT stage FROM webhook_expiry_notices ORDER BY stage"
        ),
        ["1d", "7d"],
        "the 1-day stage settles the 7-day one"
    );
    assert_eq!(query(&w, "SELECT count(*) FROM webhook_outbox"), ["1"]);
}
