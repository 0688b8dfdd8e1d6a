//! Webhooks end to end (SPEC.md §18): `aegis webhook …` commands, and deliveries from a real
//! gate to a real HTTPS receiver on 127.0.0.1 signed by the test CA. Signatures are recomputed
//! with `openssl dgst -hmac`, independently of Aegis's code.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use aegis_test_support::{Answer, WebhookReceiver};

use super::support::{Gate, World, assert_error, curl};

pub(super) const SECRET: &str = "receiver-shared-secret-0123456789";
pub(super) const WAIT: Duration = Duration::from_secs(30);

/// A world whose retries are fast (`AEGIS_WEBHOOK_RETRY_BASE_MS`) and a receiver.
pub(super) fn world_with_receiver() -> (World, WebhookReceiver) {
    let mut w = World::new();
    w.env.set_env("AEGIS_WEBHOOK_RETRY_BASE_MS", "50");
    let receiver = WebhookReceiver::start(&w.ca);
    (w, receiver)
}

/// `webhook add` with the known secret on standard input; returns the id.
pub(super) fn add_webhook(w: &World, url: &str, events: &str) -> String {
    let run = w.env.run(
        [
            "webhook", "add", "--url", url, "--events", events, "--secret", "-", "--json",
        ],
        &format!("{SECRET}\n"),
    );
    assert_eq!(run.code, 0, "webhook add: {}", run.stderr);
    let id = run.json()["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("wh_") && id.len() == 13, "{id}");
    id
}

/// A bearer credential `name` for `service` on `domain` expiring in `days` days.
pub(super) fn add_expiring(w: &World, name: &str, service: &str, domain: &str, days: &str) {
    w.add(
        &[
            "--name",
            name,
            "--service",
            service,
            "--domains",
            domain,
            "--ttl",
            days,
        ],
        &format!("{name}-credential-secret-value"),
    );
}

/// HMAC-SHA256 by openssl, in hex.
pub(super) fn openssl_hmac(key: &str, message: &[u8]) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write");
    let output = child.wait_with_output().expect("openssl output");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.rsplit("= ")
        .next()
        .expect("openssl prints `…= <hex>`")
        .trim()
        .to_owned()
}

/// `aegis webhook verify-signature` on a body file.
pub(super) fn verify_signature(
    w: &World,
    secret: &str,
    ts: &str,
    signature: &str,
    file: &std::path::Path,
) -> super::support::Run {
    w.env.run(
        [
            "webhook",
            "verify-signature",
            "--secret",
            secret,
            "--timestamp",
            ts,
            "--signature",
            signature,
            "--body-file",
            file.to_str().expect("utf-8"),
        ],
        "",
    )
}

/// Rows of a query on the vault database, one line each, columns joined by `|` (python3's
/// sqlite3, an independent client).
pub(super) fn query(w: &World, sql: &str) -> Vec<String> {
    let db = w.env.data_dir().join("vaults/default/vault.db");
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\nfor r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print('|'.join(map(str, r)))",
            db.to_str().expect("utf-8"),
            sql,
        ])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{sql}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(super) fn blocked_request(gate: &Gate) {
    let refused = curl(&[&format!("{}/nosuch/x?token=hidden", gate.base)]);
    assert_eq!(refused.status, 404);
}

pub(super) fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("seconds")
}

#[test]
fn deliveries_carry_the_documented_headers_and_an_independently_verifiable_signature() {
    let (w, receiver) = world_with_receiver();
    add_webhook(&w, &receiver.url("/hook"), "blocked_request");
    let gate = w.gate(&[]);
    blocked_request(&gate);
    let seen = receiver.wait_until("one delivery", WAIT, |d| !d.is_empty());
    let delivery = &seen[0];
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    assert!(
        delivery
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("aegis-webhook/")),
        "{delivery:?}"
    );
    assert_eq!(delivery.header("x-aegis-event"), Some("blocked_request"));
    let delivery_id = delivery.header("x-aegis-delivery").expect("delivery id");
    assert_eq!(delivery_id.len(), 36, "a UUID: {delivery_id}");
    let ts = delivery.header("x-aegis-timestamp").expect("timestamp");
    let ts_value: i64 = ts.parse().expect("unix seconds");
    assert!((unix_now() - ts_value).abs() <= 300, "{ts}");
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&delivery.body);
    let expected = format!("sha256={}", openssl_hmac(SECRET, &signed));
    assert_eq!(
        delivery.header("x-aegis-signature"),
        Some(expected.as_str())
    );

    let body = delivery.json();
    assert_eq!(body["event"], "blocked_request");
    assert_eq!(body["vault"], "default");
    assert!(
        body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("gate-"))
    );
    assert_eq!(body["data"]["denial_code"], "unknown_service");
    assert_eq!(body["data"]["path"], "/nosuch/x");
    assert!(body["data"]["ledger_id"].as_u64().is_some(), "{body}");
    assert!(!String::from_utf8_lossy(&delivery.body).contains("hidden"));
    assert!(
        !gate.output().contains(SECRET),
        "the secret never reaches a log line"
    );

    // The receiver-side command agrees, and refuses a tampered body.
    let body_file = w.env.path().join("body.json");
    std::fs::write(&body_file, &delivery.body).expect("body");
    let verify = |file: &std::path::Path| verify_signature(&w, SECRET, ts, &expected, file);
    let ok = verify(&body_file);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("ok"), "{}", ok.stdout);
    let tampered = w.env.path().join("tampered.json");
    let mut bytes = delivery.body.clone();
    bytes.push(b' ');
    std::fs::write(&tampered, bytes).expect("tampered");
    assert_error(&verify(&tampered), 1, "does not match");
}

#[test]
fn a_failing_receiver_gets_the_event_exactly_once_more_across_a_gate_restart() {
    let (w, receiver) = world_with_receiver();
    let id = add_webhook(&w, &receiver.url("/hook"), "*");
    receiver.fail_next(3, 503);
    receiver.set_hanging(true);
    let mut first = w.gate(&[]);
    blocked_request(&first);
    // Three failures, then an attempt the receiver holds open: the gate stops while the
    // delivery is still pending.
    receiver.wait_until("three failures and a held attempt", WAIT, |d| {
        d.len() >= 4 && d[3].answer == Answer::Hung
    });
    first.terminate();
    assert_eq!(first.wait_exit(WAIT), 0, "{}", first.output());
    let pending = query(
        &w,
        "SELECT state, attempts, lease_until IS NULL FROM webhook_outbox",
    );
    assert_eq!(
        pending,
        ["pending|3|1"],
        "left in the outbox, lease released"
    );
    receiver.set_hanging(false);

    let mut second = w.gate(&[]);
    let seen = receiver.wait_until("the delivery after the restart", WAIT, |d| {
        d.iter().any(|x| x.answer == Answer::Status(200))
    });
    aegis_test_support::wait_for("the outbox to record the delivery", WAIT, || {
        (query(&w, "SELECT state FROM webhook_outbox") == ["delivered"]).then_some(())
    });
    second.terminate();
    assert_eq!(second.wait_exit(WAIT), 0, "{}", second.output());
    let seen_after_stop = receiver.deliveries();
    assert_eq!(
        seen_after_stop.len(),
        seen.len(),
        "nothing after the success"
    );
    let answers: Vec<Answer> = seen.iter().map(|d| d.answer).collect();
    assert_eq!(
        answers,
        [
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(503),
            Answer::Hung,
            Answer::Status(200)
        ]
    );
    let ids: Vec<&str> = seen
        .iter()
        .filter_map(|d| d.header("x-aegis-delivery"))
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "same delivery id: {ids:?}"
    );
    let bodies: Vec<&Vec<u8>> = seen.iter().map(|d| &d.body).collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]), "same payload bytes");
    assert_eq!(
        query(&w, "SELECT state, attempts, webhook_id FROM webhook_outbox"),
        [format!("delivered|4|{id}")]
    );
    let listed = w.ok(&["webhook", "list", "--json"]).json();
    assert_eq!(listed[0]["last_result"], "200", "{listed}");
    assert_eq!(listed[0]["failed_24h"], 0);
}

#[test]
fn every_webhook_gets_the_same_event_id_with_its_own_delivery_id() {
    let (w, receiver) = world_with_receiver();
    add_webhook(&w, &receiver.url("/one"), "blocked_request");
    add_webhook(&w, &receiver.url("/two"), "*");
    add_webhook(&w, &receiver.url("/three"), "credential_expiry");
    let gate = w.gate(&[]);
    blocked_request(&gate);
    let seen = receiver.wait_until("both deliveries", WAIT, |d| d.len() >= 2);
    let event_ids: Vec<String> = seen
        .iter()
        .map(|d| d.json()["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(event_ids[0], event_ids[1], "one event");
    assert_ne!(
        seen[0].header("x-aegis-delivery"),
        seen[1].header("x-aegis-delivery"),
        "one delivery per webhook"
    );
    assert_eq!(seen[0].body, seen[1].body, "the same payload bytes");
    aegis_test_support::wait_for("both rows delivered", WAIT, || {
        (query(
            &w,
            "SELECT count(*) FROM webhook_outbox WHERE state = 'delivered'",
        ) == ["2"])
        .then_some(())
    });
    assert_eq!(
        query(&w, "SELECT count(*) FROM webhook_outbox"),
        ["2"],
        "nothing for the webhook not subscribed"
    );
}

#[test]
fn a_hanging_receiver_does_not_hold_up_the_other_webhooks() {
    let (w, slow) = world_with_receiver();
    let fast = WebhookReceiver::start(&w.ca);
    add_webhook(&w, &slow.url("/slow"), "blocked_request");
    add_webhook(&w, &fast.url("/fast"), "blocked_request");
    slow.set_hanging(true);
    let gate = w.gate(&[]);
    for _ in 0..12 {
        blocked_request(&gate);
    }
    // Twelve events each: without a per-webhook cap the hanging receiver would take every
    // attempt slot for its 10 s timeout.
    let started = Instant::now();
    fast.wait_until(
        "all twelve deliveries to the responsive receiver",
        WAIT,
        |d| d.len() >= 12,
    );
    let took = started.elapsed();
    let held = slow.deliveries().len();
    println!("responsive receiver served in {took:?} while {held} attempts hung");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!((1..=2).contains(&held), "at most two held attempts: {held}");
    slow.set_hanging(false);
}

#[test]
fn a_redirect_fails_the_delivery_at_once_and_is_recorded() {
    let (w, receiver) = world_with_receiver();
    let id = add_webhook(&w, &receiver.url("/hook"), "blocked_request");
    receiver.fail_next(1, 302);
    let gate = w.gate(&[]);
    blocked_request(&gate);
    aegis_test_support::wait_for("the delivery to fail", WAIT, || {
        (query(
            &w,
            "SELECT state, attempts, last_result FROM webhook_outbox",
        ) == ["failed|1|302"])
        .then_some(())
    });
    assert_eq!(receiver.deliveries().len(), 1, "not retried, not followed");
    let failed = query(
        &w,
        "SELECT detail FROM ledger WHERE event = 'webhook_delivery_failed'",
    );
    assert_eq!(failed.len(), 1, "{failed:?}");
    let detail: serde_json::Value = serde_json::from_str(&failed[0]).expect("detail");
    assert_eq!(detail["webhook_id"], id.as_str());
    assert_eq!(detail["last_result"], "302");
    assert_eq!(detail["event"], "blocked_request");
    let listed = w.ok(&["webhook", "list", "--json"]).json();
    assert_eq!(listed[0]["failed_24h"], 1, "{listed}");
    assert_eq!(listed[0]["last_result"], "302");
    drop(gate);
}

#[test]
fn blocked_requests_never_wait_on_a_hanging_receiver() {
    let (w, receiver) = world_with_receiver();
    add_webhook(&w, &receiver.url("/hook"), "blocked_request");
    let gate = w.gate(&[]);
    let mut client = KeepAlive::connect(gate.port());
    for _ in 0..10 {
        client.blocked();
    }
    let responsive = client.p50_of_blocked(60);
    receiver.wait_until("deliveries while responsive", WAIT, |d| {
        d.iter().any(|x| x.answer == Answer::Status(200))
    });
    receiver.set_hanging(true);
    client.blocked();
    receiver.wait_until("a delivery held open by the receiver", WAIT, |d| {
        d.iter().any(|x| x.answer == Answer::Hung)
    });
    let hanging = client.p50_of_blocked(60);
    let still_held = receiver
        .deliveries()
        .iter()
        .filter(|d| d.answer == Answer::Hung)
        .count();
    assert!(still_held >= 1);
    println!("blocked request p50: receiver responsive {responsive:?}, hanging {hanging:?}");
    assert!(
        hanging <= responsive * 2 + Duration::from_millis(10),
        "blocked requests slowed down while the receiver hangs: p50 {hanging:?} vs {responsive:?}"
    );
    receiver.set_hanging(false);
}

/// A keep-alive HTTP/1.1 connection to the gate, timing one request at a time.
struct KeepAlive {
    stream: std::net::TcpStream,
}

impl KeepAlive {
    fn connect(port: u16) -> Self {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self { stream }
    }

    /// Sends one request for an unknown service and reads the whole 404 answer.
    fn blocked(&mut self) -> Duration {
        let started = Instant::now();
        self.stream
            .write_all(b"GET /nosuch/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).expect("read head");
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 404"), "{text}");
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).expect("read body");
        started.elapsed()
    }

    fn p50_of_blocked(&mut self, count: usize) -> Duration {
        let mut times: Vec<Duration> = (0..count).map(|_| self.blocked()).collect();
        times.sort();
        times[count / 2]
    }
}
