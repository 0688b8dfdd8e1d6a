//! `aegis policy validate | list | test` end to end (SPEC.md §13.3): the real binary on real
//! policy files, with the expected output spelled out in full.

use super::support::{TestEnv, assert_error, env, initialised};

/// The example of SPEC.md §13.1.
const TRIAGE: &str = r#"# policies/triage-bot.yaml
agent: triage-bot
rules:
  - name: read-tickets-overnight
    service: jira
    methods: [GET]
    paths: ["/rest/api/3/issue/[A-Z]+-[0-9]+", "/rest/api/3/search"]
    rate_limit: 300/hour
    time_window: { start: "22:00", end: "06:00", timezone: "Europe/Berlin", days: [sun, mon, tue, wed, thu] }
  - service: slack
    methods: [POST]
    paths: [/api/chat\.postMessage]
    rate_limit: 20/min
"#;

const DEPLOY: &str = "agent: deploy-bot\nrules:\n  - service: github\n    methods: [GET, POST]\n";

/// A file with several problems, one of each kind worth showing.
const BROKEN: &str = r#"agent: broken-bot
rules:
  - name: first
    servce: jira
    methods: [GET, "G ET"]
    paths: ["(unclosed", "/ok"]
    rate_limit: 10/fortnight
    time_window: { start: "25:00", end: "06:00", timezone: Mars/Olympus, days: [mon, funday] }
  - service: slack
    methods: GET
    time_window: { start: "09:00", end: "09:00" }
"#;

/// Writes policy files into `<env>/policies`.
fn policies(env: &TestEnv, files: &[(&str, &str)]) {
    let dir = env.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir policies");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write policy");
    }
}

/// Runs `aegis policy <args> --policies-dir policies`.
fn policy(env: &TestEnv, args: &[&str]) -> super::support::Run {
    let mut all = vec!["policy"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--policies-dir", "policies"]);
    env.run(&all, "")
}

#[test]
fn validate_counts_files_and_rules() {
    let env = env();
    policies(
        &env,
        &[("triage-bot.yaml", TRIAGE), ("deploy-bot.yml", DEPLOY)],
    );
    let run = policy(&env, &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok 2 files, 3 rules\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn validate_reports_every_problem_of_every_file_with_exit_2() {
    let env = env();
    policies(
        &env,
        &[
            ("a-broken.yaml", BROKEN),
            ("deploy-bot.yml", DEPLOY),
            ("deploy-again.yaml", DEPLOY),
            ("notes.txt", "not a policy"),
            (".hidden.yaml", "not: read"),
        ],
    );
    let run = policy(&env, &["validate"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: a-broken.yaml:3:5: rules[0].service: required key is missing
error: a-broken.yaml:4:5: rules[0].servce: unknown key 'servce'; did you mean 'service'?
error: a-broken.yaml:5:20: rules[0].methods[1]: invalid method 'G ET': expected an HTTP method name such as GET or POST
error: a-broken.yaml:6:13: rules[0].paths[0]: invalid regex: unclosed group
error: a-broken.yaml:7:17: rules[0].rate_limit: invalid rate '10/fortnight': expected N/sec, N/min, N/hour or N/day with N from 1 to 1000000
error: a-broken.yaml:8:27: rules[0].time_window.start: invalid time '25:00': expected \"HH:MM\" in 24-hour time, from 00:00 to 23:59
error: a-broken.yaml:8:60: rules[0].time_window.timezone: unknown time zone 'Mars/Olympus': expected an IANA name such as Europe/Berlin or UTC
error: a-broken.yaml:8:86: rules[0].time_window.days[1]: invalid day 'funday': expected mon, tue, wed, thu, fri, sat or sun
error: a-broken.yaml:10:14: rules[1].methods: expected a list of methods such as [GET, POST], found a scalar
error: a-broken.yaml:11:41: rules[1].time_window.end: start and end are both 09:00; a window needs two different times (an end before the start crosses midnight)
error: deploy-bot.yml:1:8: agent: agent 'deploy-bot' already has a policy in deploy-again.yaml; keep one file per agent
"
    );
}

#[test]
fn validate_json_reports_codes_and_places() {
    let env = env();
    policies(
        &env,
        &[(
            "a.yaml",
            "agent: bot\nrules:\n  - service: s\n    paths: [\"(x\"]\n",
        )],
    );
    let run = policy(&env, &["validate", "--json"]);
    assert_eq!(run.code, 2);
    let body = run.json();
    assert_eq!(body["ok"], false);
    assert_eq!(
        (body["files"].as_u64(), body["rules"].as_u64()),
        (Some(1), Some(1))
    );
    let error = &body["errors"][0];
    assert_eq!(error["code"], "invalid_regex");
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(4), Some(13))
    );
    assert_eq!(error["key"], "rules[0].paths[0]");
    assert_eq!(
        error["message"],
        "a.yaml:4:13: rules[0].paths[0]: invalid regex: unclosed group"
    );
    let stderr: serde_json::Value = serde_json::from_str(&run.stderr).expect("JSON error");
    assert_eq!(stderr["error"]["code"], "policy_invalid");

    policies(&env, &[("a.yaml", DEPLOY)]);
    let run = policy(&env, &["validate", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = run.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["errors"], serde_json::json!([]));
}

#[test]
fn old_spellings_validate_with_one_warning_each() {
    let env = env();
    let text = "agent: bot\nrules:\n  - service: s\n    methods: [get]\n    rateLimit: 5/minute\n";
    policies(&env, &[("bot.yaml", text)]);
    let run = policy(&env, &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok 1 file, 1 rule\n");
    assert_eq!(
        run.stderr,
        "warning: bot.yaml:4:15: rules[0].methods[0]: method 'get' is the old lower-case spelling; write GET
warning: bot.yaml:5:5: rules[0].rateLimit: 'rateLimit' is the old spelling of 'rate_limit'; write rate_limit
warning: bot.yaml:5:16: rules[0].rate_limit: rate '5/minute' uses an old spelling; write '5/min' instead
"
    );
}

#[test]
fn the_directory_comes_from_gate_policies_dir_relative_to_the_config_file() {
    let env = env();
    let conf = env.path().join("conf");
    std::fs::create_dir_all(conf.join("policies")).expect("mkdir");
    std::fs::write(conf.join("policies/deploy-bot.yml"), DEPLOY).expect("policy");
    std::fs::write(
        conf.join("aegis.config.yaml"),
        "gate:\n  policies_dir: ./policies\n",
    )
    .expect("config");
    let run = env.run(
        ["policy", "validate", "--config", "conf/aegis.config.yaml"],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok 1 file, 1 rule\n");
    // A flag is relative to the working directory instead.
    let run = env.run(
        [
            "policy",
            "validate",
            "--config",
            "conf/aegis.config.yaml",
            "--policies-dir",
            "policies",
        ],
        "",
    );
    assert_error(&run, 2, "does not exist");
}

#[test]
fn without_a_directory_setting_policy_commands_are_usage_errors() {
    let env = env();
    let run = env.run(["policy", "validate"], "");
    assert_error(&run, 2, "gate.policies_dir is not set");
    let run = env.run(["policy", "list", "--policies-dir", "nowhere"], "");
    assert_error(&run, 2, "does not exist");
}

#[test]
fn the_old_positional_directory_works_with_a_warning() {
    let env = env();
    policies(&env, &[("deploy-bot.yml", DEPLOY)]);
    let run = env.run(["policy", "validate", "policies"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok 1 file, 1 rule\n");
    assert_eq!(
        run.stderr,
        "warning: the directory argument is the old spelling of --policies-dir; use --policies-dir <dir>\n"
    );
    let run = env.run(
        [
            "policy",
            "test",
            "-a",
            "deploy-bot",
            "-s",
            "github",
            "-m",
            "GET",
            "--path",
            "/",
            "policies",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "allow: rule deploy-bot.yml#1 (deploy-bot.yml:3)\n"
    );
}

#[test]
fn list_shows_each_file_and_the_registered_agents_without_a_policy() {
    let env = initialised();
    for name in ["triage-bot", "quiet-bot"] {
        let run = env.run(["agent", "add", "--name", name, "--json"], "");
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    policies(
        &env,
        &[
            ("triage-bot.yaml", TRIAGE),
            ("deploy-bot.yml", DEPLOY),
            ("z-broken.yaml", BROKEN),
        ],
    );
    let run = policy(&env, &["list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        " FILE             AGENT       RULES  SERVICES    STATUS
 deploy-bot.yml   deploy-bot  1      github      valid; agent not registered
 triage-bot.yaml  triage-bot  2      jira,slack  valid
 z-broken.yaml    broken-bot  2      -           invalid: 10 problems
 -                quiet-bot   -      -           no policy (grants only)
"
    );

    let run = policy(&env, &["list", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = run.json();
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1]["file"], "triage-bot.yaml");
    assert_eq!(rows[1]["services"], serde_json::json!(["jira", "slack"]));
    assert_eq!(
        (rows[1]["valid"].as_bool(), rows[1]["registered"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(rows[0]["registered"], false);
    assert_eq!(
        (rows[2]["valid"].as_bool(), rows[2]["errors"].as_u64()),
        (Some(false), Some(10))
    );
    assert_eq!(rows[3]["agent"], "quiet-bot");
    assert_eq!(rows[3]["has_policy"], false);
}

#[test]
fn validate_warns_about_policies_for_unregistered_agents() {
    let env = initialised();
    policies(&env, &[("deploy-bot.yml", DEPLOY)]);
    let run = policy(&env, &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "warning: deploy-bot.yml: agent 'deploy-bot' is not registered in vault 'default'; the \
         policy applies once it is (aegis agent add --name deploy-bot)\n"
    );
}

#[test]
fn test_names_the_deciding_rule_and_its_place() {
    let env = env();
    policies(&env, &[("triage-bot.yaml", TRIAGE)]);
    let test = |extra: &[&str]| {
        let mut args = vec!["test", "--agent", "triage-bot"];
        args.extend_from_slice(extra);
        let run = policy(&env, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stderr, "");
        run.stdout
    };
    // 2026-03-02 is a Monday; 22:30 UTC is 23:30 in Berlin.
    let night = ["--at", "2026-03-02T22:30:00Z"];
    let read = [
        "--service",
        "jira",
        "--method",
        "GET",
        "--path",
        "/rest/api/3/issue/AB-1?expand=x",
    ];
    assert_eq!(
        test(&[&read[..], &night[..]].concat()),
        "allow: rule read-tickets-overnight (triage-bot.yaml:4)\n"
    );
    assert_eq!(
        test(&[&read[..], &["--at", "2026-03-02T12:00:00Z"][..]].concat()),
        "deny: no rule matched (triage-bot.yaml)\n"
    );
    assert_eq!(
        test(&[
            "-s",
            "slack",
            "-m",
            "post",
            "--path",
            "/api/chat.postMessage"
        ]),
        "allow: rule triage-bot.yaml#2 (triage-bot.yaml:10)\n"
    );
    assert_eq!(
        test(&[
            "--service",
            "jira",
            "--method",
            "GET",
            "--path",
            "/x/rest/api/3/search"
        ]),
        "deny: no rule matched (triage-bot.yaml)\n"
    );
    let run = policy(
        &env,
        &[
            "test",
            "--agent",
            "other-bot",
            "--service",
            "jira",
            "--method",
            "GET",
            "--path",
            "/",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "allow: no policy for agent (grants only)\n");
}

#[test]
fn test_json_carries_rule_digest_and_rate_limit() {
    let env = env();
    policies(&env, &[("triage-bot.yaml", TRIAGE)]);
    let run = policy(
        &env,
        &[
            "test",
            "--agent",
            "triage-bot",
            "--service",
            "slack",
            "--method",
            "POST",
            "--path",
            "/api/chat.postMessage?token=never-shown",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.all_output().contains("never-shown"),
        "the query string is dropped"
    );
    let body = run.json();
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["reason"], "rule_matched");
    assert_eq!(body["path"], "/api/chat.postMessage");
    assert_eq!(body["rule"]["name"], "triage-bot.yaml#2");
    assert_eq!(
        (body["rule"]["file"].as_str(), body["rule"]["line"].as_u64()),
        (Some("triage-bot.yaml"), Some(10))
    );
    assert_eq!(body["rule"]["rate_limit"], "20/min");
    assert_eq!(body["rule"]["digest"].as_str().map(str::len), Some(64));

    let run = policy(
        &env,
        &[
            "test",
            "-a",
            "triage-bot",
            "-s",
            "github",
            "-m",
            "GET",
            "--path",
            "/",
            "--json",
        ],
    );
    let body = run.json();
    assert_eq!(
        (body["decision"].as_str(), body["reason"].as_str()),
        (Some("deny"), Some("no_rule_matched"))
    );
    assert_eq!(body["file"], "triage-bot.yaml");
    let run = policy(
        &env,
        &[
            "test", "-a", "nobody", "-s", "github", "-m", "GET", "--path", "/", "--json",
        ],
    );
    let body = run.json();
    assert_eq!(
        (body["decision"].as_str(), body["reason"].as_str()),
        (Some("allow"), Some("no_policy"))
    );
}

#[test]
fn test_with_require_policy_denies_agents_without_a_file() {
    let mut env = env();
    env.set_env("AEGIS_GATE_REQUIRE_POLICY", "true");
    policies(&env, &[("triage-bot.yaml", TRIAGE)]);
    let run = policy(
        &env,
        &[
            "test", "-a", "nobody", "-s", "jira", "-m", "GET", "--path", "/",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "deny: no policy for agent (gate.require_policy is on)\n"
    );
}

#[test]
fn test_refuses_an_invalid_directory_and_bad_arguments() {
    let env = env();
    policies(&env, &[("a.yaml", BROKEN)]);
    let run = policy(
        &env,
        &["test", "-a", "x", "-s", "jira", "-m", "GET", "--path", "/"],
    );
    assert_error(
        &run,
        2,
        "a.yaml:3:5: rules[0].service: required key is missing (and 9 more errors)",
    );
    assert!(
        run.stderr.contains("hint: run aegis policy validate"),
        "{}",
        run.stderr
    );

    policies(&env, &[("a.yaml", DEPLOY)]);
    let run = policy(
        &env,
        &[
            "test",
            "-a",
            "x",
            "-s",
            "jira",
            "-m",
            "GET",
            "--path",
            "rel?token=sk-hidden",
        ],
    );
    assert_error(&run, 2, "--path must start with /");
    assert!(!run.stderr.contains("sk-hidden"), "{}", run.stderr);
    let run = policy(
        &env,
        &[
            "test", "-a", "x", "-s", "jira", "-m", "GET", "--path", "/", "--at", "someday",
        ],
    );
    assert_error(&run, 2, "--at");
    let run = policy(
        &env,
        &["test", "-a", "x", "-s", "jira", "-m", "G ET", "--path", "/"],
    );
    assert_error(&run, 2, "--method");
}
