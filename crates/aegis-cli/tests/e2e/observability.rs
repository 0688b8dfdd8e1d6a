//! Metrics and logs of a running gate (SPEC.md §17): `/_aegis/metrics` read with a Prometheus
//! text parser (and `promtool check metrics` when it is installed) while real requests go
//! through to a real HTTPS upstream, and the JSON log of a whole run searched for secrets.

use std::collections::HashMap;

use super::support::{Curl, Gate, World, curl};

const SECRET: &str = "sk-observability-secret-9f8e7d6c5b4a";

/// Every family of SPEC.md §17.2, as the Prometheus text format names them.
const FAMILIES: [&str; 23] = [
    "aegis_gate_requests_total",
    "aegis_gate_blocked_total",
    "aegis_gate_request_duration_seconds",
    "aegis_upstream_duration_seconds",
    "aegis_gate_request_bytes_total",
    "aegis_gate_response_bytes_total",
    "aegis_gate_inflight_requests",
    "aegis_gate_rate_limited_total",
    "aegis_body_inspection_total",
    "aegis_gate_response_redactions_total",
    "aegis_gate_unscanned_responses_total",
    "aegis_ledger_queue_depth",
    "aegis_ledger_write_seconds",
    "aegis_ledger_backpressure_total",
    "aegis_snapshot_reloads_total",
    "aegis_snapshot_generation",
    "aegis_credentials_expiring",
    "aegis_credentials_expired",
    "aegis_webhook_deliveries_total",
    "aegis_webhook_outbox_depth",
    "aegis_rate_limit_backend_fallback_total",
    "aegis_vault_sealed",
    "aegis_build_info",
];

/// One scrape, parsed.
struct Scrape {
    text: String,
    parsed: prometheus_parse::Scrape,
}

impl Scrape {
    fn get(gate: &Gate) -> Scrape {
        let response = curl(&[&format!("{}/_aegis/metrics", gate.base)]);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = response.text();
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("Prometheus text format");
        Scrape { text, parsed }
    }

    /// The value of the counter or gauge `name` whose labels include all of `labels` (summed
    /// over the series that match).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.parsed
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name} is not a counter or gauge: {other:?}"),
            })
            .sum()
    }

    /// The total count of the histogram `name` over the series matching `labels`.
    fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.parsed
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .sum()
    }

    /// The distinct values the label `label` takes in family `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .parsed
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter_map(|s| s.labels.get(label).map(str::to_owned))
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

fn send(gate: &Gate, path: &str, token: Option<&str>) -> Curl {
    let url = format!("{}{path}", gate.base);
    let header = token.map(|t| format!("X-Aegis-Agent: {t}"));
    match &header {
        Some(h) => curl(&["-H", h, &url]),
        None => curl(&[&url]),
    }
}

/// A vault with credential `gh` (service `github`) and agent `bot` granted it.
fn world() -> (World, String) {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let run = w.ok(&["agent", "add", "--name", "bot", "--json"]);
    let token = run.json()["token"].as_str().expect("token").to_owned();
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);
    (w, token)
}

/// `promtool` from `$AEGIS_TEST_PROMTOOL` or the PATH, when installed.
fn promtool() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("AEGIS_TEST_PROMTOOL") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn metrics_parse_and_their_counters_move_with_traffic() {
    let (w, token) = world();
    let gate = w.gate(&[]);
    let before = Scrape::get(&gate);
    let types: HashMap<&str, ()> = before
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(|name| (name, ()))
        .collect();
    for family in FAMILIES {
        assert!(
            types.contains_key(family),
            "{family} missing:\n{}",
            before.text
        );
    }
    assert_eq!(before.value("aegis_vault_sealed", &[]), 0.0);
    assert_eq!(
        before.value(
            "aegis_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Three allowed requests by bot, one anonymous, two to services the vault does not have,
    // one echo of the secret (redacted on the way back), and two bodies: six forwarded.
    for _ in 0..3 {
        assert_eq!(send(&gate, "/github/repos", Some(&token)).status, 200);
    }
    assert_eq!(send(&gate, "/github/repos", None).status, 200);
    for service in ["nosuch", "neither"] {
        assert_eq!(send(&gate, &format!("/{service}/x"), None).status, 404);
    }
    let echoed = send(&gate, "/github/echo-auth", Some(&token));
    assert_eq!(echoed.status, 200);
    assert!(!echoed.text().contains(SECRET));
    // A body: counted in; and an AWS key in a body: refused by inspection.
    let url = format!("{}/github/echo-body", gate.base);
    let header = format!("X-Aegis-Agent: {token}");
    let posted = curl(&["-H", &header, "--data-binary", "hello metrics", &url]);
    assert_eq!(posted.status, 200);
    let key = curl(&[
        "-H",
        &header,
        "--data-binary",
        "key=AKIAIOSFODNN7EXAMPLE",
        &url,
    ]);
    assert_eq!(key.status, 403, "{}", key.text());

    let after = Scrape::get(&gate);
    let allowed_by_bot = [
        ("service", "github"),
        ("agent", "bot"),
        ("method", "GET"),
        ("status_class", "2xx"),
        ("outcome", "allowed"),
    ];
    assert_eq!(
        after.value("aegis_gate_requests_total", &allowed_by_bot)
            - before.value("aegis_gate_requests_total", &allowed_by_bot),
        4.0,
        "{}",
        after.text
    );
    assert_eq!(
        after.value(
            "aegis_gate_requests_total",
            &[("agent", "bot"), ("method", "POST"), ("outcome", "blocked")]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            "aegis_body_inspection_total",
            &[("detector", "aws_access_key"), ("action", "blocked")]
        ),
        1.0,
        "{}",
        after.text
    );
    // Both bodies were read from the agent, the refused one too.
    assert_eq!(
        after.value("aegis_gate_request_bytes_total", &[("service", "github")]),
        ("hello metrics".len() + "key=AKIAIOSFODNN7EXAMPLE".len()) as f64
    );
    let anonymous = [("service", "github"), ("agent", "_anonymous")];
    assert_eq!(after.value("aegis_gate_requests_total", &anonymous), 1.0);
    let unknown = [
        ("service", "_unknown"),
        ("outcome", "blocked"),
        ("status_class", "4xx"),
    ];
    assert_eq!(after.value("aegis_gate_requests_total", &unknown), 2.0);
    assert_eq!(
        after.value("aegis_gate_blocked_total", &[("reason", "unknown_service")]),
        2.0
    );
    // Unknown service names never become label values.
    let services = after.label_values("aegis_gate_requests_total", "service");
    assert_eq!(services, ["_unknown", "github"], "{}", after.text);
    assert_eq!(
        after.histogram_count(
            "aegis_gate_request_duration_seconds",
            &[("service", "github"), ("outcome", "allowed")]
        ),
        6.0
    );
    assert_eq!(
        after.histogram_count("aegis_upstream_duration_seconds", &[("service", "github")]),
        6.0
    );
    assert!(after.value("aegis_gate_response_bytes_total", &[("service", "github")]) > 0.0);
    assert!(
        after.value(
            "aegis_gate_response_redactions_total",
            &[("service", "github")]
        ) >= 1.0,
        "{}",
        after.text
    );
    assert_eq!(after.value("aegis_gate_inflight_requests", &[]), 0.0);
    // The dispatcher's counters are published (zeros until something is delivered).
    assert_eq!(
        after.label_values("aegis_webhook_deliveries_total", "result"),
        ["delivered", "failed", "retry"]
    );
    // The ledger writer commits what the requests queued.
    aegis_test_support::wait_for(
        "a ledger commit in aegis_ledger_write_seconds",
        std::time::Duration::from_secs(10),
        || {
            let scrape = Scrape::get(&gate);
            (scrape.histogram_count("aegis_ledger_write_seconds", &[]) >= 1.0).then_some(())
        },
    );

    // OpenMetrics when asked for.
    let open = curl(&[
        "-H",
        "Accept: application/openmetrics-text; version=1.0.0",
        &format!("{}/_aegis/metrics", gate.base),
    ]);
    assert_eq!(open.status, 200);
    assert!(
        open.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{}",
        open.headers
    );
    assert!(open.text().ends_with("# EOF\n"), "{}", open.text());
    assert!(open.text().contains("# TYPE aegis_gate_requests counter"));

    // No secret in either format.
    assert!(!after.text.contains(SECRET));
    assert!(!after.text.contains(&token));

    match promtool() {
        Some(promtool) => {
            use std::io::Write as _;
            let mut child = std::process::Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run promtool");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(after.text.as_bytes())
                .expect("write metrics");
            let output = child.wait_with_output().expect("promtool");
            assert!(
                output.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        None => assert!(
            std::env::var_os("AEGIS_TEST_REQUIRE_PROMTOOL").is_none(),
            "AEGIS_TEST_REQUIRE_PROMTOOL is set but promtool is not installed \
             (Debian package prometheus, or set AEGIS_TEST_PROMTOOL)"
        ),
    }
}

#[test]
fn metrics_off_answers_not_found() {
    let (w, _token) = world();
    w.append_config("observability:\n  metrics: false\n");
    let gate = w.gate(&[]);
    let response = curl(&[&format!("{}/_aegis/metrics", gate.base)]);
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["error"]["code"], "not_found");
    // The gate itself still works.
    assert_eq!(send(&gate, "/github/repos", None).status, 200);
}

#[test]
fn the_environment_turns_metrics_off_too() {
    let (mut w, _token) = world();
    w.env.set_env("AEGIS_OBSERVABILITY_METRICS", "false");
    let gate = w.gate(&[]);
    assert_eq!(
        curl(&[&format!("{}/_aegis/metrics", gate.base)]).status,
        404
    );
}

#[test]
fn a_json_log_of_a_whole_run_holds_no_secret_token_or_master_key() {
    let (w, token) = world();
    w.append_config("observability:\n  log_format: json\n  log_level: debug\n");
    let master_key = w.env.env_value("AEGIS_MASTER_KEY").expect("master key");
    let mut gate = w.gate(&["--require-agent-auth"]);
    // Allowed, echoed (redacted), refused with a wrong token and without one, a body carrying
    // the secret, an unknown service, a hot reload and a shutdown.
    assert_eq!(
        send(&gate, "/github/repos?token=abc", Some(&token)).status,
        200
    );
    assert_eq!(send(&gate, "/github/echo-auth", Some(&token)).status, 200);
    assert_eq!(
        send(&gate, "/github/x", Some("aegis_wrongtoken")).status,
        401
    );
    assert_eq!(send(&gate, "/github/x", None).status, 401);
    assert_eq!(send(&gate, "/nosuch/x", Some(&token)).status, 404);
    let url = format!("{}/github/echo-body", gate.base);
    let header = format!("X-Aegis-Agent: {token}");
    let posted = curl(&["-H", &header, "--data-binary", SECRET, &url]);
    assert!(matches!(posted.status, 200 | 403), "{}", posted.text());
    assert!(!posted.text().contains(SECRET));
    gate.signal("HUP");
    gate.terminate();
    assert_eq!(gate.wait_exit(std::time::Duration::from_secs(20)), 0);

    let output = gate.output();
    let stderr: Vec<&str> = output.lines().filter(|l| l.starts_with('{')).collect();
    assert!(stderr.len() >= 6, "{output}");
    for needle in [SECRET, token.as_str(), master_key.as_str()] {
        assert!(
            !output.contains(needle),
            "a secret reached the log:\n{output}"
        );
    }
    let mut decisions = 0;
    for line in &stderr {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["ts", "level", "target", "message"] {
            assert!(value.get(key).is_some(), "{key} missing: {line}");
        }
        if value["target"] == "aegis::request" {
            decisions += 1;
            assert!(value["request_id"].is_string(), "{line}");
            assert!(value["outcome"].is_string(), "{line}");
            // Paths are logged without their query string.
            assert!(
                !value["path"].as_str().unwrap_or_default().contains('?'),
                "{line}"
            );
        }
    }
    assert_eq!(decisions, 6, "{output}");
}
