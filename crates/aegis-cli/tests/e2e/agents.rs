//! Agents and grants end to end (SPEC.md §11): `aegis agent …` against a real vault, and a real
//! gate in front of a real HTTPS upstream deciding with agent tokens, driven with curl.

use std::time::Duration;

use super::support::{Gate, TestEnv, World, assert_error, curl, initialised, sql};

/// `agent add --json` and the token it printed.
fn add_agent(env: &TestEnv, name: &str) -> String {
    let run = env.run(["agent", "add", "--name", name, "--json"], "");
    assert_eq!(run.code, 0, "agent add: {}", run.stderr);
    let token = run.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 49);
    assert!(token.starts_with("aegis_"));
    token
}

/// A GET through the gate, with the agent token when given.
fn get(gate: &Gate, path: &str, token: Option<&str>) -> super::support::Curl {
    let url = format!("{}{path}", gate.base);
    // curl drops `Name:` with an empty value; `Name;` sends it empty.
    let header = token.map(|t| match t {
        "" => "X-Aegis-Agent;".to_owned(),
        t => format!("X-Aegis-Agent: {t}"),
    });
    match &header {
        Some(h) => curl(&["-H", h, &url]),
        None => curl(&[&url]),
    }
}

const SECRET: &str = "sk-agent-test-secret-0123456789";

#[test]
fn agent_auth_follows_the_spec_table_with_and_without_require_agent_auth() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let token = add_agent(&w.env, "bot");
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);
    let wrong = format!("{}A", &token[..48]);
    let wrong = if wrong == token {
        format!("{}B", &token[..48])
    } else {
        wrong
    };

    let open = Gate::start(&w.env, &[]);
    assert_eq!(get(&open, "/github/x", None).status, 200, "anonymous");
    for bad in [wrong.as_str(), "", "not-a-token"] {
        let resp = get(&open, "/github/x", Some(bad));
        assert_eq!(resp.status, 401, "{bad:?}: {}", resp.text());
        assert_eq!(resp.json()["error"]["code"], "agent_auth_failed");
        assert_eq!(
            resp.header("www-authenticate").as_deref(),
            Some("Aegis-Agent")
        );
    }
    assert_eq!(get(&open, "/github/x", Some(&token)).status, 200);
    drop(open);

    let required = Gate::start(&w.env, &["--require-agent-auth"]);
    let resp = get(&required, "/github/x", None);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["error"]["code"], "agent_auth_required");
    let resp = get(&required, "/github/x", Some(&wrong));
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["error"]["code"], "agent_auth_failed");
    let resp = get(&required, "/github/x", Some(&token));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = w.upstream.last_request().expect("upstream saw the request");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert_eq!(seen.header("x-aegis-agent"), None, "the token never leaves");
    let output = required.output();
    assert!(!output.contains(&token), "token in gate output: {output}");
}

#[test]
fn grants_decide_which_credentials_an_agent_reaches_and_revoke_acts_within_a_second() {
    let w = World::new();
    w.add_bearer("one", "svc", "sk-first-credential-secret-01");
    w.add_bearer("two", "svc", "sk-second-credential-secret-2");
    let token = add_agent(&w.env, "bot");
    let gate = Gate::start(&w.env, &["--require-agent-auth"]);

    let resp = get(&gate, "/svc/x", Some(&token));
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], "credential_not_granted");

    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "two"]);
    aegis_test_support::wait_for("the grant to be in force", Duration::from_secs(5), || {
        (get(&gate, "/svc/x", Some(&token)).status == 200).then_some(())
    });
    let seen = w.upstream.last_request().expect("request");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer sk-second-credential-secret-2")
    );
    // Granting again is idempotent.
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "two"]);

    // With both granted, the agent must pick one; a name it was not granted is refused.
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "one"]);
    let url = format!("{}/svc/x", gate.base);
    let agent_header = format!("X-Aegis-Agent: {token}");
    aegis_test_support::wait_for("both grants to be in force", Duration::from_secs(5), || {
        (get(&gate, "/svc/x", Some(&token)).status == 409).then_some(())
    });
    let picked = curl(&["-H", &agent_header, "-H", "X-Aegis-Credential: one", &url]);
    assert_eq!(picked.status, 200, "{}", picked.text());
    assert_eq!(
        w.upstream
            .last_request()
            .expect("request")
            .header("authorization")
            .as_deref(),
        Some("Bearer sk-first-credential-secret-01")
    );
    let unknown = curl(&["-H", &agent_header, "-H", "X-Aegis-Credential: nope", &url]);
    assert_eq!(unknown.status, 403);
    assert_eq!(unknown.json()["error"]["code"], "credential_not_granted");

    w.ok(&["agent", "revoke", "--agent", "bot", "--credential", "one"]);
    let started = std::time::Instant::now();
    aegis_test_support::wait_for("the revoke to be in force", Duration::from_secs(5), || {
        let resp = curl(&["-H", &agent_header, "-H", "X-Aegis-Credential: one", &url]);
        (resp.status == 403).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "revoke took {:?}",
        started.elapsed()
    );
    let run = w.env.run(
        ["agent", "revoke", "--agent", "bot", "--credential", "one"],
        "",
    );
    assert_error(&run, 1, "no grant");
}

#[test]
fn regenerate_invalidates_the_old_token_in_a_running_gate_within_a_second() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let old = add_agent(&w.env, "bot");
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);
    let gate = Gate::start(&w.env, &[]);
    assert_eq!(get(&gate, "/github/x", Some(&old)).status, 200);

    let run = w.ok(&["agent", "regenerate", "--name", "bot"]);
    let new = run
        .stdout
        .lines()
        .find(|l| l.starts_with("aegis_"))
        .expect("the new token is printed once")
        .to_owned();
    assert_ne!(new, old);
    let started = std::time::Instant::now();
    aegis_test_support::wait_for("the old token to fail", Duration::from_secs(5), || {
        (get(&gate, "/github/x", Some(&old)).status == 401).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "regenerate took {:?}",
        started.elapsed()
    );
    assert_eq!(get(&gate, "/github/x", Some(&new)).status, 200);
    // Removing the agent ends its token too, and takes its grants with it.
    w.ok(&["agent", "remove", "--name", "bot"]);
    aegis_test_support::wait_for("the removed agent to fail", Duration::from_secs(5), || {
        (get(&gate, "/github/x", Some(&new)).status == 401).then_some(())
    });
    let output = gate.output();
    assert!(!output.contains(&old) && !output.contains(&new), "{output}");
}

#[test]
fn ledger_entries_name_the_agent_and_never_carry_a_token() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    w.add_bearer("other", "other", "sk-other-credential-secret-9");
    let token = add_agent(&w.env, "bot");
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);
    let mut gate = Gate::start(&w.env, &[]);
    assert_eq!(get(&gate, "/github/x", Some(&token)).status, 200);
    assert_eq!(get(&gate, "/other/x", Some(&token)).status, 403);
    gate.terminate();
    assert_eq!(gate.wait_exit(Duration::from_secs(20)), 0);

    let run = w.ok(&["ledger", "show", "--limit", "1000", "--json"]);
    assert!(!run.all_output().contains(&token), "token in the ledger");
    let entries = run.json();
    let requests: Vec<&serde_json::Value> = entries
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["kind"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|e| e["agent"] == "bot"), "{requests:?}");
    assert_eq!(requests[1]["denial_code"], "credential_not_granted");
    let system = w.ok(&["ledger", "show", "--system", "--json"]).json();
    let events: Vec<&str> = system
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["agent"] == "bot")
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["agent_added", "grant_added"], "{system}");
    let export = w.ok(&["ledger", "export", "--format", "jsonl"]);
    assert!(!export.all_output().contains(&token));
}

#[test]
fn agent_commands_print_the_token_once_and_list_never_shows_it() {
    let env = initialised();
    let run = env.run(["agent", "add", "--name", "bot"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run
        .stdout
        .lines()
        .find(|l| l.starts_with("aegis_"))
        .expect("token line")
        .to_owned();
    assert!(!run.stderr.contains(&token));
    assert_error(
        &env.run(["agent", "add", "--name", "bot"], ""),
        1,
        "already exists",
    );
    let run = env.run(
        [
            "vault",
            "add",
            "--name",
            "gh",
            "--service",
            "github",
            "--domains",
            "api.github.com",
        ],
        "ghp_secret_value_12345\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = env.run(
        ["agent", "grant", "--agent", "bot", "--credential", "gh"],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let list = env.run(["agent", "list"], "");
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains("bot") && list.stdout.contains("gh"),
        "{}",
        list.stdout
    );
    let header: Vec<&str> = list
        .stdout
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "CREATED", "RATE", "LIMIT", "GRANTS", "POLICY"]
    );
    let row: Vec<&str> = list
        .stdout
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[0], row[2], row[3], row[4]),
        ("bot", "-", "gh", "-"),
        "no policies dir: {row:?}"
    );
    let json = env.run(["agent", "list", "--json"], "");
    let agents = json.json();
    assert_eq!(agents[0]["name"], "bot");
    assert_eq!(agents[0]["grants"], serde_json::json!(["gh"]));
    assert_eq!(
        agents[0]["policy"],
        serde_json::Value::Null,
        "no policies dir"
    );
    assert_eq!(agents[0]["policy_file"], serde_json::Value::Null);
    for run in [&list, &json] {
        assert!(!run.all_output().contains(&token));
        assert!(!run.all_output().contains("aegis_"), "{}", run.all_output());
    }

    // --token-file writes a new 0600 file and refuses to overwrite one.
    let path = env.path().join("ci.token");
    let run = env.run(
        [
            "agent",
            "add",
            "--name",
            "ci",
            "--token-file",
            path.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.all_output().contains("aegis_"), "{}", run.all_output());
    let written = std::fs::read_to_string(&path).expect("token file");
    assert!(written.trim_end().starts_with("aegis_") && written.trim_end().len() == 49);
    assert_eq!(
        aegis_store::secure_fs::mode_of(&path).expect("mode") & 0o777,
        0o600
    );
    let again = env.run(
        [
            "agent",
            "regenerate",
            "--name",
            "ci",
            "--token-file",
            path.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_error(&again, 1, "refusing to overwrite");
    assert_eq!(std::fs::read_to_string(&path).expect("token file"), written);

    assert_error(
        &env.run(["agent", "remove", "--name", "nobody"], ""),
        1,
        "no agent named 'nobody'",
    );
    assert_error(
        &env.run(
            ["agent", "grant", "--agent", "bot", "--credential", "nope"],
            "",
        ),
        1,
        "no credential named 'nope'",
    );
    assert_error(&env.run(["agent", "add", "--name", "-bad"], ""), 2, "");
    let run = env.run(["agent", "remove", "--name", "bot"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let agents = env.run(["agent", "list", "--json"], "").json();
    assert_eq!(agents.as_array().map(Vec::len), Some(1));
}

#[test]
fn agent_list_says_which_agents_have_a_policy_file() {
    let mut env = initialised();
    for name in ["bot", "ci", "broken"] {
        let run = env.run(["agent", "add", "--name", name, "--json"], "");
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let dir = env.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("bot.yaml"),
        "agent: bot\nrules:\n  - service: github\n",
    )
    .expect("policy");
    // A file with errors still names its agent: the file exists (policy validate says what is wrong).
    std::fs::write(dir.join("broken.yml"), "agent: broken\nrules: []\n").expect("policy");
    env.set_env("AEGIS_GATE_POLICIES_DIR", dir.to_str().expect("utf-8"));

    let list = env.run(["agent", "list"], "");
    assert_eq!(list.code, 0, "{}", list.stderr);
    let cells: Vec<(String, String)> = list
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_owned(), cells[cells.len() - 1].to_owned())
        })
        .collect();
    let expected = [("bot", "yes"), ("broken", "yes"), ("ci", "no")];
    assert_eq!(
        cells,
        expected.map(|(a, b)| (a.to_owned(), b.to_owned())),
        "{}",
        list.stdout
    );
    let agents = env.run(["agent", "list", "--json"], "").json();
    let policies: Vec<(&str, &serde_json::Value, &serde_json::Value)> = agents
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().expect("name"),
                &a["policy"],
                &a["policy_file"],
            )
        })
        .collect();
    assert_eq!(
        policies,
        [
            (
                "bot",
                &serde_json::json!(true),
                &serde_json::json!("bot.yaml")
            ),
            (
                "broken",
                &serde_json::json!(true),
                &serde_json::json!("broken.yml")
            ),
            ("ci", &serde_json::json!(false), &serde_json::Value::Null),
        ]
    );

    // A configured directory that is missing leaves the column empty, with a warning.
    let gone = dir.join("gone");
    env.set_env("AEGIS_GATE_POLICIES_DIR", gone.to_str().expect("utf-8"));
    let run = env.run(["agent", "list", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("warning: policies directory "),
        "{}",
        run.stderr
    );
    assert_eq!(run.json()[0]["policy"], serde_json::Value::Null);
}

#[test]
fn agent_commands_other_than_list_need_the_master_key() {
    let mut env = initialised();
    env.unset_env("AEGIS_MASTER_KEY");
    assert_eq!(env.run(["agent", "list"], "").code, 0);
    let run = env.run(["agent", "add", "--name", "bot"], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn a_tampered_agent_row_keeps_the_previous_snapshot() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let token = add_agent(&w.env, "bot");
    let gate = Gate::start(&w.env, &["--require-agent-auth"]);
    assert_eq!(get(&gate, "/github/x", Some(&token)).status, 403);
    // Someone with file access but no key grants `bot` the credential: the forged row fails
    // its MAC, so the reload is rejected and the grant never takes effect.
    sql(
        &w.env,
        "INSERT INTO grants (agent_id, credential_id, created_at, mac) \
         SELECT a.id, c.id, 0, x'00' FROM agents a, credentials c WHERE a.name = 'bot'; \
         UPDATE generation SET value = value + 1;",
    );
    aegis_test_support::wait_for("the rejected reload", Duration::from_secs(5), || {
        gate.output().contains("snapshot rejected").then_some(())
    });
    assert_eq!(get(&gate, "/github/x", Some(&token)).status, 403);
}

#[test]
fn an_agent_rate_limit_refuses_the_fourth_request_and_set_rate_limit_acts_in_a_running_gate() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let run = w.env.run(
        [
            "agent",
            "add",
            "--name",
            "bot",
            "--rate-limit",
            "3/minute",
            "--json",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("3/min"),
        "the legacy spelling is named: {}",
        run.stderr
    );
    let bot = run.json()["token"].as_str().expect("token").to_owned();
    let other = add_agent(&w.env, "other");
    for name in ["bot", "other"] {
        w.ok(&["agent", "grant", "--agent", name, "--credential", "gh"]);
    }
    let listed = w.ok(&["agent", "list", "--json"]).json();
    assert_eq!(listed[0]["name"], "bot");
    assert_eq!(listed[0]["rate_limit"], "3/min");
    let gate = w.gate(&[]);
    for n in 1..=3 {
        assert_eq!(
            get(&gate, "/github/x", Some(&bot)).status,
            200,
            "request {n}"
        );
    }
    let before = w.upstream.request_count();
    let refused = get(&gate, "/github/x", Some(&bot));
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    // At most the window plus one sub-bucket (60 s + 60/64 s), rounded up.
    assert!((1..=61).contains(&retry), "{retry}");
    assert_eq!(w.upstream.request_count(), before, "nothing was forwarded");
    let limited =
        aegis_test_support::wait_for("the refusal's entry", Duration::from_secs(5), || {
            let shown = w.ok(&["ledger", "show", "--blocked", "--json"]).json();
            shown.as_array().and_then(|e| e.first().cloned())
        });
    assert_eq!(limited["denial_code"], "rate_limited");
    assert_eq!(limited["detail"]["limiter"], "agent");
    // The limit is the agent's own: another agent on the same credential goes on.
    assert_eq!(get(&gate, "/github/x", Some(&other)).status, 200);

    let run = w.ok(&[
        "agent",
        "set-rate-limit",
        "--agent",
        "bot",
        "--limit",
        "none",
    ]);
    assert!(run.stdout.contains("rate limit none"), "{}", run.stdout);
    let started = std::time::Instant::now();
    aegis_test_support::wait_for("the limit to be lifted", Duration::from_secs(5), || {
        (get(&gate, "/github/x", Some(&bot)).status == 200).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    w.ok(&[
        "agent",
        "set-rate-limit",
        "--agent",
        "bot",
        "--limit",
        "1/hour",
    ]);
    aegis_test_support::wait_for("the new limit to refuse", Duration::from_secs(5), || {
        (get(&gate, "/github/x", Some(&bot)).status == 429).then_some(())
    });
    let shown = w.ok(&["ledger", "show", "--system", "--json"]).json();
    assert!(
        shown
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["event"] == "agent_rate_limit_set"),
        "{shown}"
    );
    let run = w.env.run(
        [
            "agent",
            "set-rate-limit",
            "--agent",
            "ghost",
            "--limit",
            "1/min",
        ],
        "",
    );
    assert_error(&run, 1, "ghost");
    let run = w.env.run(
        [
            "agent",
            "set-rate-limit",
            "--agent",
            "bot",
            "--limit",
            "0/min",
        ],
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn an_agent_over_its_in_flight_cap_gets_429_and_others_are_not_affected() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    w.append_config("gate:\n  max_concurrent_per_agent: 2\n");
    let bot = add_agent(&w.env, "bot");
    let other = add_agent(&w.env, "other");
    for name in ["bot", "other"] {
        w.ok(&["agent", "grant", "--agent", name, "--credential", "gh"]);
    }
    let gate = w.gate(&[]);
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (base, bot) = (gate.base.clone(), bot.clone());
            std::thread::spawn(move || {
                curl(&[
                    "-H",
                    &format!("X-Aegis-Agent: {bot}"),
                    &format!("{base}/github/slow/3000"),
                ])
            })
        })
        .collect();
    aegis_test_support::wait_for(
        "two slow requests upstream",
        Duration::from_secs(10),
        || (w.upstream.request_count() == 2).then_some(()),
    );
    let refused = get(&gate, "/github/x", Some(&bot));
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(
        refused.json()["error"]["code"],
        "too_many_concurrent_requests"
    );
    assert_eq!(
        get(&gate, "/github/x", Some(&other)).status,
        200,
        "another agent"
    );
    assert_eq!(
        get(&gate, "/github/x", None).status,
        200,
        "anonymous is not capped"
    );
    for handle in slow {
        assert_eq!(handle.join().expect("slow request").status, 200);
    }
    assert_eq!(
        get(&gate, "/github/x", Some(&bot)).status,
        200,
        "places freed"
    );
}
