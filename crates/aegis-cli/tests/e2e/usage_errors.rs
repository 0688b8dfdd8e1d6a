//! Every malformed value is exit 2 with one `error:` line naming the flag, before anything is
//! read or written.

use super::support::{assert_error, initialised};

fn add_with(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "vault",
        "add",
        "--name",
        "svc",
        "--service",
        "svc",
        "--domains",
        "api.example.com",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[test]
fn malformed_flag_values_name_the_flag_and_exit_2() {
    let env = initialised();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (add_with(&["--auth-type", "oauth"]), "--auth-type"),
        (add_with(&["--rate-limit", "abc"]), "--rate-limit"),
        (add_with(&["--rate-limit", "0/min"]), "--rate-limit"),
        (add_with(&["--ttl", "0"]), "--ttl"),
        (add_with(&["--ttl", "-3"]), "--ttl"),
        (add_with(&["--scopes", "admin"]), "--scopes"),
        (
            add_with(&["--body-inspection", "loud"]),
            "--body-inspection",
        ),
        (
            add_with(&["--header-name", "Host", "--auth-type", "header"]),
            "--header-name",
        ),
        (
            add_with(&["--query-param", "a b", "--auth-type", "query"]),
            "--query-param",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "bad name",
                "--service",
                "s",
                "--domains",
                "a.example.com",
            ]
            .map(String::from)
            .to_vec(),
            "--name",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "n",
                "--service",
                "_aegis",
                "--domains",
                "a.example.com",
            ]
            .map(String::from)
            .to_vec(),
            "--service",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "n",
                "--service",
                "s",
                "--domains",
                "",
            ]
            .map(String::from)
            .to_vec(),
            "--domains",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "n",
                "--service",
                "s",
                "--domains",
                "https://api.example.com/v1",
            ]
            .map(String::from)
            .to_vec(),
            "--domains",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "n",
                "--service",
                "s",
                "--domains",
                "*.com",
            ]
            .map(String::from)
            .to_vec(),
            "--domains",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "n",
                "--service",
                "s",
                "--domains",
                "api.example.com,",
            ]
            .map(String::from)
            .to_vec(),
            "--domains",
        ),
        (
            ["vault", "update", "--name", "n", "--ttl", "0"]
                .map(String::from)
                .to_vec(),
            "--ttl",
        ),
        (
            ["vault", "rotate", "--name", "n", "--grace", "soon"]
                .map(String::from)
                .to_vec(),
            "--grace",
        ),
    ];
    for (args, flag) in cases {
        let run = env.run(&args, "sk-never-stored-123456\n");
        assert_error(&run, 2, flag);
        assert!(
            !run.stderr.contains("sk-never-stored"),
            "{args:?} echoed stdin"
        );
    }
    let list = env.run(["vault", "list", "--json"], "");
    assert_eq!(list.json(), serde_json::json!([]), "nothing was stored");
}

#[test]
fn cross_field_rules_are_usage_errors() {
    let env = initialised();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            add_with(&["--auth-type", "header"]),
            "--header-name is required",
        ),
        (
            add_with(&["--header-name", "X-Api-Key"]),
            "--header-name is only valid",
        ),
        (
            add_with(&["--query-param", "k"]),
            "--query-param is only valid",
        ),
        (
            [
                "vault",
                "add",
                "--name",
                "n",
                "--service",
                "s",
                "--domains",
                "http://localhost:8080",
            ]
            .map(String::from)
            .to_vec(),
            "--allow-http",
        ),
    ];
    for (args, needle) in cases {
        assert_error(&env.run(&args, "sk-never-stored-123456\n"), 2, needle);
    }
}

#[test]
fn empty_secrets_and_bad_basic_secrets_are_refused() {
    let env = initialised();
    assert_error(&env.run(add_with(&[]), "\n"), 2, "--secret");
    assert_error(
        &env.run(add_with(&["--auth-type", "basic"]), "no-colon-here\n"),
        2,
        "user:pass",
    );
    let list = env.run(["vault", "list", "--json"], "");
    assert_eq!(list.json(), serde_json::json!([]));
}

#[test]
fn unknown_flags_and_commands_are_exit_2_with_one_error_line() {
    let env = initialised();
    let run = env.run(["vault", "add", "--nmae", "x"], "");
    assert_error(&run, 2, "--nmae");
    assert_error(&env.run(["frobnicate"], ""), 2, "frobnicate");
    assert_error(&env.run(["vault"], ""), 2, "");
}

#[test]
fn json_errors_are_one_object_with_a_stable_code() {
    let env = initialised();
    let run = env.run(["vault", "remove", "--name", "missing", "--json"], "");
    assert_eq!(run.code, 1);
    let body: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("one JSON object");
    assert_eq!(body["error"]["code"], "not_found");
    assert!(run.stdout.is_empty());
    let run = env.run(
        [
            "vault",
            "add",
            "--json",
            "--name",
            "x",
            "--service",
            "s",
            "--domains",
            "a.example.com",
            "--ttl",
            "0",
        ],
        "",
    );
    assert_eq!(run.code, 2);
    let body: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("one JSON object");
    assert_eq!(body["error"]["code"], "usage");
}

#[test]
fn help_and_version_exit_0() {
    let env = initialised();
    let run = env.run(["--version"], "");
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("aegis "), "{}", run.stdout);
    let run = env.run(["vault", "add", "--help"], "");
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--domains"));
}

#[test]
fn commands_before_init_say_so() {
    let env = super::support::env();
    let run = env.run(["vault", "list"], "");
    assert_error(&run, 1, "Aegis is not initialised here");
    assert!(run.stderr.contains("hint: run aegis init"));
}

#[test]
fn legacy_rate_spelling_is_accepted_with_a_warning() {
    let env = initialised();
    let run = env.run(
        add_with(&["--rate-limit", "10/Minute", "--json"]),
        "sk-abcdefgh12345\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("10/min"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json()["rate_limit"], "10/min");
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let env = initialised();
    let mut child = env
        .std_cmd(["config", "show"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(output.status.success(), "{stderr}");
}

#[test]
fn demo_runs_end_to_end_and_never_prints_the_secret() {
    let env = super::support::bare_env();
    let run = env.run(["demo", "--keep"], "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("All steps behaved as specified."),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[REDACTED:demo]"), "{}", run.stdout);
    assert!(
        run.stdout.contains("aegis ledger verify: ok "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("body_blocked") && run.stdout.contains("domain_blocked"));
    assert!(
        !run.all_output().contains("demo-sk-"),
        "the demo secret was printed: {}",
        run.stdout
    );
    let kept = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Kept "))
        .and_then(|rest| rest.split(' ').next())
        .expect("kept directory");
    let kept = std::path::Path::new(kept);
    assert!(kept.join(".aegis/vaults/default/vault.db").is_file());
    std::fs::remove_dir_all(kept).expect("clean up the kept directory");
}
