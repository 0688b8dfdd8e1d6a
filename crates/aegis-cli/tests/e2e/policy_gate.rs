//! Policies enforced by a running gate (SPEC.md §13.2, §10.1 step 7 and the policy-rule limits of
//! step 8): enforce and dry-run, default deny, anonymous and policy-less agents, hot reload on
//! file change and SIGHUP, a broken file keeping the last good set, and start-up refusal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::support::{Curl, Gate, World, curl};

const SECRET: &str = "sk-policy-gate-secret-0123456789";

/// A vault with credential `gh` for service `github` and agent `bot` granted it: the world and
/// bot's token.
fn bot_world() -> (World, String) {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let bot = agent(&w, "bot");
    (w, bot)
}

/// `agent add --json`, the token it printed, and a grant of `gh`.
fn agent(w: &World, name: &str) -> String {
    let run = w.ok(&["agent", "add", "--name", name, "--json"]);
    let token = run.json()["token"].as_str().expect("token").to_owned();
    w.ok(&["agent", "grant", "--agent", name, "--credential", "gh"]);
    token
}

/// A request through the gate with the agent's token (anonymous for `None`).
fn send(gate: &Gate, method: &str, path: &str, token: Option<&str>) -> Curl {
    let url = format!("{}{path}", gate.base);
    let mut args = vec!["-X", method];
    let header = token.map(|t| format!("X-Aegis-Agent: {t}"));
    if let Some(h) = &header {
        args.extend(["-H", h.as_str()]);
    }
    args.push(&url);
    curl(&args)
}

/// The policies directory of the test, with `bot.yaml` holding `yaml`.
fn policies(w: &World, yaml: &str) -> PathBuf {
    let dir = w.env.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write(&dir, "bot.yaml", yaml);
    dir
}

/// Replaces a file through a rename, so the reload never reads it half-written.
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

const READ_ONLY: &str = "agent: bot\nrules:\n  - name: read\n    service: github\n    methods: [GET]\n    paths: [\"/api/read.*\"]\n    rate_limit: 3/min\n";

/// The request entries of the ledger, oldest first, once there are `count` of them (the gate
/// commits an entry when its response has been relayed, a few milliseconds later).
fn requests(w: &World, count: usize) -> Vec<serde_json::Value> {
    aegis_test_support::wait_for("the request entries", Duration::from_secs(5), || {
        let shown = w
            .ok(&["ledger", "show", "--json", "--limit", "1000"])
            .json();
        let mut entries: Vec<serde_json::Value> = shown
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["kind"] == "request")
            .cloned()
            .collect();
        entries.sort_by_key(|e| e["id"].as_u64());
        (entries.len() >= count).then_some(entries)
    })
}

#[test]
fn an_enforced_policy_allows_its_rules_only_and_leaves_others_to_their_grants() {
    let (w, bot) = bot_world();
    let free = agent(&w, "free");
    let dir = policies(&w, READ_ONLY);
    let gate = w.gate(&["--policies-dir", dir.to_str().expect("utf-8")]);
    assert!(
        gate.output().contains("anonymous requests bypass them"),
        "{}",
        gate.output()
    );
    assert_eq!(
        send(&gate, "GET", "/github/api/read/1", Some(&bot)).status,
        200
    );
    let before = w.upstream.request_count();
    for (method, path) in [
        ("GET", "/github/x/api/read"),
        ("POST", "/github/api/read/1"),
        ("GET", "/github/api/write"),
    ] {
        let resp = send(&gate, method, path, Some(&bot));
        assert_eq!(resp.status, 403, "{method} {path}: {}", resp.text());
        assert_eq!(resp.json()["error"]["code"], "policy_denied");
        assert!(resp.text().contains("bot.yaml"), "{}", resp.text());
    }
    assert_eq!(
        w.upstream.request_count(),
        before,
        "nothing denied was forwarded"
    );
    // An agent without a policy file has its grants only; anonymous requests have no policy.
    assert_eq!(
        send(&gate, "POST", "/github/anything", Some(&free)).status,
        200
    );
    assert_eq!(send(&gate, "POST", "/github/anything", None).status, 200);
    // The rule's limit: 3/min, one used above.
    for n in 2..=3 {
        assert_eq!(
            send(&gate, "GET", "/github/api/read/1", Some(&bot)).status,
            200,
            "{n}"
        );
    }
    let limited = send(&gate, "GET", "/github/api/read/2", Some(&bot));
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    assert!(limited.header("retry-after").is_some());
    let entries = requests(&w, 9);
    let last = entries.last().expect("entries");
    assert_eq!(last["denial_code"], "rate_limited");
    assert_eq!(last["detail"]["limiter"], "policy");
    assert_eq!(last["detail"]["policy_rule"], "read");
    let denied = entries
        .iter()
        .find(|e| e["denial_code"] == "policy_denied")
        .expect("a policy_denied entry");
    assert_eq!(denied["outcome"], "blocked");
    assert_eq!(denied["agent"], "bot");
    assert_eq!(denied["status_code"], 403);
}

#[test]
fn dry_run_forwards_and_records_would_block_with_the_code_and_rule() {
    let (w, bot) = bot_world();
    let dir = policies(&w, READ_ONLY);
    let gate = w.gate(&[
        "--policies-dir",
        dir.to_str().expect("utf-8"),
        "--policy-mode",
        "dry-run",
    ]);
    let resp = send(&gate, "POST", "/github/api/write", Some(&bot));
    assert_eq!(resp.status, 200, "dry-run forwards: {}", resp.text());
    for _ in 0..4 {
        assert_eq!(
            send(&gate, "GET", "/github/api/read/1", Some(&bot)).status,
            200
        );
    }
    let entries = requests(&w, 5);
    let outcomes: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap_or("").to_owned(),
                e["denial_code"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("would_block", "policy_denied"),
        ("allowed", "-"),
        ("allowed", "-"),
        ("allowed", "-"),
        ("would_block", "rate_limited"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(outcomes, expected);
    assert_eq!(entries[4]["detail"]["policy_rule"], "read");
    assert_eq!(entries[4]["detail"]["limiter"], "policy");
    assert_eq!(entries[4]["status_code"], 200);
}

#[test]
fn policy_files_reload_on_change_and_sighup_and_a_broken_file_keeps_the_last_good_set() {
    let (w, bot) = bot_world();
    let dir = policies(&w, READ_ONLY);
    let gate = w.gate(&[
        "--policies-dir",
        dir.to_str().expect("utf-8"),
        "--require-agent-auth",
    ]);
    assert_eq!(send(&gate, "POST", "/github/api/x", Some(&bot)).status, 403);

    let started = Instant::now();
    write(
        &dir,
        "bot.yaml",
        "agent: bot\nrules:\n  - service: github\n    methods: [POST]\n",
    );
    aegis_test_support::wait_for("the edited policy", Duration::from_secs(5), || {
        (send(&gate, "POST", "/github/api/x", Some(&bot)).status == 200).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        send(&gate, "GET", "/github/api/read/1", Some(&bot)).status,
        403
    );

    // A broken file: rejected, logged, and the last good set stays in force.
    write(
        &dir,
        "bot.yaml",
        "agent: bot\nrules:\n  - service: github\n    methodz: [GET]\n",
    );
    aegis_test_support::wait_for("the rejection in the log", Duration::from_secs(5), || {
        gate.output()
            .contains("policy files rejected")
            .then_some(())
    });
    assert!(gate.output().contains("methodz"), "{}", gate.output());
    assert_eq!(send(&gate, "POST", "/github/api/x", Some(&bot)).status, 200);
    assert_eq!(
        send(&gate, "GET", "/github/api/read/1", Some(&bot)).status,
        403
    );

    // SIGHUP rebuilds now, changed or not: one more snapshot_reloaded entry.
    write(&dir, "bot.yaml", READ_ONLY);
    aegis_test_support::wait_for("the repaired policy", Duration::from_secs(5), || {
        (send(&gate, "GET", "/github/api/read/1", Some(&bot)).status == 200).then_some(())
    });
    let reloads = || {
        w.ok(&["ledger", "show", "--system", "--json", "--limit", "1000"])
            .json()
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["event"] == "snapshot_reloaded")
            .count()
    };
    let before = reloads();
    gate.signal("HUP");
    aegis_test_support::wait_for("a reload after SIGHUP", Duration::from_secs(5), || {
        (reloads() > before).then_some(())
    });
    let rejected = w
        .ok(&["ledger", "show", "--system", "--json", "--limit", "1000"])
        .json();
    assert!(
        rejected
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["event"] == "snapshot_rejected" && e["detail"]["error"] == "policy_invalid"),
        "{rejected}"
    );
}

#[test]
fn the_gate_refuses_to_start_on_invalid_policy_files_and_require_policy_denies_agents_without_one()
{
    let (w, bot) = bot_world();
    let free = agent(&w, "free");
    let dir = policies(&w, "agent: bot\nrules: []\nextra: 1\n");
    let run = w.env.run(
        [
            "gate",
            "--port",
            "0",
            "--policies-dir",
            dir.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("bot.yaml:3:1"), "{}", run.stderr);
    assert!(
        run.stderr.contains("bot.yaml:2:"),
        "every error is listed: {}",
        run.stderr
    );

    write(&dir, "bot.yaml", READ_ONLY);
    w.append_config("gate:\n  require_policy: true\n");
    let gate = w.gate(&["--policies-dir", dir.to_str().expect("utf-8")]);
    assert_eq!(
        send(&gate, "GET", "/github/api/read/1", Some(&bot)).status,
        200
    );
    let resp = send(&gate, "GET", "/github/api/read/1", Some(&free));
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error"]["code"], "policy_denied");
    assert!(resp.text().contains("require_policy"), "{}", resp.text());
}
