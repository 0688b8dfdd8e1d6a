//! `aegis webhook …` commands (SPEC.md §18.4): their refusals, what `list` never shows, config
//! webhooks, synchronous tests, expiry notices and the receivers' signature check.

use super::support::{World, assert_error};
use super::webhooks::{
    SECRET, WAIT, add_expiring, add_webhook, openssl_hmac, query, unix_now, verify_signature,
    world_with_receiver,
};

#[test]
fn webhook_add_refuses_plain_http_unless_allowed_and_loopback() {
    let w = World::new();
    let add = |extra: &[&str]| {
        let mut args = vec!["webhook", "add", "--events", "*", "--secret", SECRET];
        args.extend_from_slice(extra);
        w.env.run(&args, "")
    };
    assert_error(&add(&["--url", "http://127.0.0.1:9/h"]), 2, "--allow-http");
    assert_error(
        &add(&["--url", "http://hooks.example.net/h", "--allow-http"]),
        2,
        "loopback",
    );
    assert_error(&add(&["--url", "ftp://hooks.example.net/h"]), 2, "https://");
    let unknown_event = w.env.run(
        [
            "webhook",
            "add",
            "--url",
            "https://hooks.example.net/h",
            "--events",
            "nope",
        ],
        "",
    );
    assert_error(&unknown_event, 2, "nope");
    let ok = add(&["--url", "http://127.0.0.1:9/h", "--allow-http"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("added webhook wh_"), "{}", ok.stdout);
}

#[test]
fn a_generated_secret_is_shown_once_and_list_never_shows_secrets() {
    let w = World::new();
    w.append_config(&format!(
        "webhooks:\n  - url: https://config.example.net/aegis\n    events: [blocked_request]\n    secret: {SECRET}\n"
    ));
    let added = w.ok(&[
        "webhook",
        "add",
        "-u",
        "https://hooks.example.net/h?k=1",
        "-e",
        "blocked_request,credential_expiry",
        "--label",
        "ops channel",
    ]);
    let secret = added
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("generated secret printed")
        .to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 49,
        "{secret}"
    );
    for args in [&["webhook", "list"][..], &["webhook", "list", "--json"][..]] {
        let listed = w.ok(args);
        let out = listed.all_output();
        assert!(!out.contains(&secret), "generated secret listed: {out}");
        assert!(!out.contains(SECRET), "config secret listed: {out}");
        assert!(out.contains("cfg-1") && out.contains("wh_"), "{out}");
    }
    let listed = w.ok(&["webhook", "list", "--json"]).json();
    let rows = listed.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "cfg-1");
    assert_eq!(rows[0]["source"], "config");
    assert_eq!(rows[1]["source"], "cli");
    assert_eq!(rows[1]["label"], "ops channel");
    assert_eq!(
        rows[1]["events"],
        serde_json::json!(["blocked_request", "credential_expiry"])
    );
    let ledger = w.ok(&["ledger", "show", "--system", "--json"]);
    assert!(!ledger.stdout.contains(&secret));
    assert!(
        !ledger.stdout.contains("k=1"),
        "no query string in the ledger"
    );
    let stored = query(&w, "SELECT hex(secret) FROM webhooks");
    assert!(
        !stored[0].contains(&hex_upper(secret.as_bytes())),
        "stored encrypted"
    );
}

#[test]
fn config_webhooks_refuse_removal_and_stored_ones_are_removed_with_a_ledger_entry() {
    let w = World::new();
    w.append_config(&format!(
        "webhooks:\n  - url: https://config.example.net/aegis\n    events: ['*']\n    secret: {SECRET}\n"
    ));
    let refused = w.env.run(["webhook", "remove", "--id", "cfg-1"], "");
    assert_error(&refused, 1, "config file");
    assert!(
        refused.stderr.contains("hint: edit the config file"),
        "{}",
        refused.stderr
    );
    let id = add_webhook(&w, "https://hooks.example.net/h", "*");
    let removed = w.ok(&["webhook", "remove", "--id", &id]);
    assert!(removed.stdout.contains(&id));
    assert_error(
        &w.env.run(["webhook", "remove", "--id", &id], ""),
        1,
        "no webhook",
    );
    assert_error(
        &w.env.run(["webhook", "remove", "--id", "bogus"], ""),
        2,
        "webhook id",
    );
    let events = query(
        &w,
        "SELECT event FROM ledger WHERE event LIKE 'webhook_%' ORDER BY id",
    );
    assert_eq!(events, ["webhook_added", "webhook_removed"]);
    let listed = w.ok(&["webhook", "list", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[test]
fn webhook_test_prints_status_and_latency_and_fails_on_a_non_2xx_answer() {
    let (w, receiver) = world_with_receiver();
    let id = add_webhook(&w, &receiver.url("/hook"), "blocked_request");
    let sent = w.ok(&["webhook", "test", "--id", &id]);
    assert!(sent.stdout.contains("200 in "), "{}", sent.stdout);
    assert!(sent.stdout.contains(" ms"), "{}", sent.stdout);
    let seen = receiver.deliveries();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-aegis-event"), Some("test"));
    assert_eq!(seen[0].json()["event"], "test");
    receiver.fail_next(1, 500);
    assert_error(&w.env.run(["webhook", "test", "--id", &id], ""), 1, "500");
    assert_error(
        &w.env.run(["webhook", "test", "--id", "wh_aaaaaaaaaa"], ""),
        1,
        "no webhook",
    );
    assert_eq!(
        query(&w, "SELECT count(*) FROM webhook_outbox"),
        ["0"],
        "a test is sent directly, not queued"
    );
}

#[test]
fn check_expiry_lists_expiring_credentials_and_notifies_each_stage_once() {
    let (w, receiver) = world_with_receiver();
    add_webhook(&w, &receiver.url("/hook"), "credential_expiry");
    add_expiring(&w, "soon", "github", "api.github.com", "3");
    add_expiring(&w, "later", "slack", "slack.com", "30");
    let run = w.ok(&["webhook", "check-expiry", "--json"]);
    let report = run.json();
    let listed = report["credentials"].as_array().expect("credentials");
    assert_eq!(listed.len(), 1, "{report}");
    assert_eq!(listed[0]["credential"], "soon");
    assert_eq!(listed[0]["expired"], false);
    assert_eq!(report["queued"], 1);
    let seen = receiver.wait_until("the expiry event", WAIT, |d| !d.is_empty());
    let body = seen[0].json();
    assert_eq!(body["event"], "credential_expiry");
    assert_eq!(body["data"]["credential"], "soon");
    assert_eq!(body["data"]["service"], "github");
    assert_eq!(body["data"]["expired"], false);
    assert!(
        body["data"]["days_left"]
            .as_i64()
            .is_some_and(|d| (2..=3).contains(&d))
    );
    // Once per stage: a second run queues nothing; a wider window lists more.
    let again = w.ok(&["webhook", "check-expiry", "--json"]).json();
    assert_eq!(again["queued"], 0);
    let wide = w.env.run(
        ["webhook", "check-expiry", "--threshold", "60", "--json"],
        "",
    );
    assert_eq!(wide.code, 0, "{}", wide.stderr);
    assert!(
        wide.stderr
            .contains("warning: --threshold is the old spelling of --days")
    );
    assert_eq!(wide.json()["credentials"].as_array().map(Vec::len), Some(2));
    let human = w.ok(&["webhook", "check-expiry", "--days", "7"]);
    assert!(
        human.stdout.contains("soon") && !human.stdout.contains("later"),
        "{}",
        human.stdout
    );
    assert_eq!(receiver.deliveries().len(), 1);
}

#[test]
fn verify_signature_checks_the_window_and_the_secret() {
    let w = World::new();
    let body = br#"{"id":"x","event":"test"}"#;
    let ts = unix_now().to_string();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    let signature = format!("sha256={}", openssl_hmac(SECRET, &signed));
    let file = w.env.path().join("body.json");
    std::fs::write(&file, body).expect("body");
    let run = |secret: &str, ts: &str| verify_signature(&w, secret, ts, &signature, &file);
    assert_eq!(run(SECRET, &ts).code, 0);
    assert_error(&run("another-secret-0123456789", &ts), 1, "does not match");
    let stale = (unix_now() - 600).to_string();
    let refused = run(SECRET, &stale);
    assert_error(&refused, 1, "5 minutes");
    // The body may also come on standard input (with the secret given literally).
    let piped = w.env.run(
        [
            "webhook",
            "verify-signature",
            "--secret",
            SECRET,
            "--timestamp",
            &ts,
            "--signature",
            &signature,
        ],
        std::str::from_utf8(body).expect("utf-8"),
    );
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(
        !piped.all_output().contains("receiver-shared"),
        "secret not echoed"
    );
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn a_webhook_row_edited_without_the_key_fails_doctor_and_the_gate_start() {
    let w = World::new();
    let id = add_webhook(&w, "https://hooks.example.net/h", "*");
    let run = w.env.run(["doctor", "--json"], "");
    let checks = run.json();
    let integrity = checks["checks"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["id"] == "integrity"))
        .cloned()
        .expect("integrity check");
    assert_eq!(integrity["status"], "pass", "{integrity}");
    assert!(
        integrity["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 webhook row(s)")),
        "{integrity}"
    );
    // Someone with file access but no key points the webhook elsewhere.
    super::support::sql(
        &w.env,
        "UPDATE webhooks SET url = 'https://attacker.example.net/collect'",
    );
    let run = w.env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("webhook {id}")),
        "doctor names the row: {}",
        run.stdout
    );
    let gate = w.env.run(["gate", "--port", "0"], "");
    assert_error(&gate, 1, "webhooks");
}

#[test]
fn a_config_webhook_without_a_secret_gets_one_generated_and_stored_once() {
    let (w, receiver) = world_with_receiver();
    w.append_config(&format!(
        "webhooks:\n  - url: {}\n    events: [blocked_request]\n",
        receiver.url("/from-config")
    ));
    for _ in 0..2 {
        let sent = w.ok(&["webhook", "test", "--id", "cfg-1"]);
        assert!(sent.stdout.contains("200 in "), "{}", sent.stdout);
    }
    let seen = receiver.deliveries();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|d| {
        d.header("x-aegis-signature")
            .is_some_and(|s| s.starts_with("sha256="))
    }));
    let stored = query(
        &w,
        "SELECT count(*), instr(secret, 'whsec_') FROM webhook_config_secrets",
    );
    assert_eq!(stored, ["1|0"], "one generated secret, stored encrypted");
    let listed = w.ok(&["webhook", "list", "--json"]).json();
    assert_eq!(listed[0]["id"], "cfg-1");
    assert_eq!(listed[0]["source"], "config");
}
