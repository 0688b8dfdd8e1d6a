//! `aegis vault add | list | update | rotate | remove` through the real binary, and the rule
//! that no secret ever appears in anything the binary prints.

use super::support::{add, assert_error, initialised};

const SECRETS: [&str; 4] = [
    "sk-bearer-0123456789abcdef",
    "hdr-secret-0123456789abcdef",
    "alice:basic-pass-0123456789",
    "query-secret-0123456789abcdef",
];

#[test]
fn every_auth_type_round_trips_without_printing_a_secret() {
    let env = initialised();
    let mut printed = String::new();
    let runs = [
        env.run(
            [
                "vault",
                "add",
                "--name",
                "bearer",
                "--service",
                "openai",
                "--domains",
                "api.openai.com",
            ],
            &format!("{}\n", SECRETS[0]),
        ),
        env.run(
            [
                "vault",
                "add",
                "--name",
                "hdr",
                "--service",
                "anthropic",
                "--domains",
                "api.anthropic.com",
                "--auth-type",
                "header",
                "--header-name",
                "x-api-key",
            ],
            &format!("{}\n", SECRETS[1]),
        ),
        env.run(
            [
                "vault",
                "add",
                "--name",
                "basic",
                "--service",
                "jira",
                "--domains",
                "*.atlassian.net",
                "--auth-type",
                "basic",
                "--secret",
                "-",
            ],
            &format!("{}\r\n", SECRETS[2]),
        ),
        env.run(
            [
                "vault",
                "add",
                "--name",
                "query",
                "--service",
                "maps",
                "--domains",
                "maps.example.com:8443",
                "--auth-type",
                "query",
                "--query-param",
                "api_key",
                "--scopes",
                "read",
                "--rate-limit",
                "100/min",
                "--ttl",
                "30",
                "--body-inspection",
                "warn",
            ],
            &format!("{}\n", SECRETS[3]),
        ),
    ];
    for run in &runs {
        assert_eq!(run.code, 0, "add failed: {}", run.stderr);
        printed.push_str(&run.all_output());
    }
    let list = env.run(["vault", "list"], "");
    assert_eq!(list.code, 0, "{}", list.stderr);
    for name in ["bearer", "hdr", "basic", "query"] {
        assert!(
            list.stdout.contains(name),
            "list shows {name}: {}",
            list.stdout
        );
    }
    printed.push_str(&list.all_output());

    let json = env.run(["vault", "list", "--json"], "");
    assert_eq!(json.code, 0, "{}", json.stderr);
    printed.push_str(&json.all_output());
    let rows = json.json();
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 4);
    let query = rows
        .iter()
        .find(|r| r["name"] == "query")
        .expect("query row");
    assert_eq!(query["auth_type"], "query");
    assert_eq!(query["query_param"], "api_key");
    assert_eq!(query["scopes"], "read");
    assert_eq!(query["rate_limit"], "100/min");
    assert_eq!(query["body_inspection"], "warn");
    assert_eq!(query["domains"][0], "maps.example.com:8443");
    assert!(query["expires_at"].is_string());
    let hdr = rows.iter().find(|r| r["name"] == "hdr").expect("hdr row");
    assert_eq!(hdr["header_name"], "x-api-key");
    let bearer = rows
        .iter()
        .find(|r| r["name"] == "bearer")
        .expect("bearer row");
    assert_eq!(bearer["scopes"], "*");
    assert_eq!(bearer["body_inspection"], "block");
    assert_eq!(bearer["expires_at"], serde_json::Value::Null);

    for secret in SECRETS {
        assert!(!printed.contains(secret), "secret {secret} was printed");
        let password = secret.rsplit(':').next().expect("part");
        assert!(!printed.contains(password), "part of a secret was printed");
    }
}

#[test]
fn update_changes_metadata_and_keeps_the_secret() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_update_secret_123456",
    );
    let run = env.run(
        [
            "vault",
            "update",
            "--name",
            "gh",
            "--domains",
            "api.github.com,uploads.github.com",
            "--scopes",
            "read",
            "--rate-limit",
            "5/sec",
            "--ttl",
            "7",
            "--json",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = run.json();
    assert_eq!(
        body["domains"],
        serde_json::json!(["api.github.com", "uploads.github.com"])
    );
    assert_eq!(body["scopes"], "read");
    assert_eq!(body["rate_limit"], "5/sec");
    assert!(body["expires_at"].is_string());
    let run = env.run(
        [
            "vault",
            "update",
            "--name",
            "gh",
            "--ttl",
            "none",
            "--rate-limit",
            "none",
            "--json",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["expires_at"], serde_json::Value::Null);
    assert_eq!(run.json()["rate_limit"], serde_json::Value::Null);
    // The row still verifies and decrypts: rotate needs both.
    let run = env.run(
        ["vault", "rotate", "--name", "gh"],
        "ghp_rotated_secret_123456\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.all_output().contains("ghp_"), "no secret printed");
}

#[test]
fn update_without_options_is_a_usage_error() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_some_secret_value",
    );
    assert_error(
        &env.run(["vault", "update", "--name", "gh"], ""),
        2,
        "at least one option",
    );
}

#[test]
fn rotate_with_grace_keeps_the_previous_secret_and_rollback_swaps_it_back() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_original_secret_1234",
    );
    let run = env.run(
        ["vault", "rotate", "--name", "gh", "--grace", "1h", "--json"],
        "ghp_new_secret_12345678\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json()["grace_until"].is_string());
    let run = env.run(
        ["vault", "rotate", "--name", "gh", "--rollback", "--json"],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.json()["grace_until"].is_string(),
        "the rotated-out secret is kept during grace"
    );
    // Without --grace the previous secret is dropped; rollback then has nothing to restore.
    let run = env.run(
        ["vault", "rotate", "--name", "gh"],
        "ghp_third_secret_12345678\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_error(
        &env.run(["vault", "rotate", "--name", "gh", "--rollback"], ""),
        1,
        "no previous secret",
    );
}

#[test]
fn legacy_grace_period_in_hours_is_accepted_with_a_warning() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_original_secret_1234",
    );
    let run = env.run(
        [
            "vault",
            "rotate",
            "--name",
            "gh",
            "--grace-period",
            "24",
            "--json",
        ],
        "ghp_new_secret_12345678\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: --grace-period 24 is deprecated; use --grace 24h"),
        "{}",
        run.stderr
    );
    assert!(run.json()["grace_until"].is_string());
}

#[test]
fn remove_deletes_the_credential() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_secret_to_remove_1",
    );
    let run = env.run(["vault", "remove", "--name", "gh"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list = env.run(["vault", "list", "--json"], "");
    assert_eq!(list.json(), serde_json::json!([]));
    assert_error(
        &env.run(["vault", "remove", "--name", "gh"], ""),
        1,
        "no credential named 'gh'",
    );
}

#[test]
fn duplicate_name_is_a_conflict() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_secret_one_123456",
    );
    let run = env.run(
        [
            "vault",
            "add",
            "-n",
            "gh",
            "-s",
            "github",
            "-d",
            "api.github.com",
        ],
        "ghp_secret_two\n",
    );
    assert_error(&run, 1, "credential 'gh' already exists");
}

#[test]
fn literal_secret_works_but_warns_about_shell_history() {
    let env = initialised();
    let run = env.run(
        [
            "vault",
            "add",
            "-n",
            "gh",
            "-s",
            "github",
            "-d",
            "api.github.com",
            "--secret",
            "ghp_literal_secret_1234",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: secrets on the command line can end up in shell history")
    );
    assert!(!run.all_output().contains("ghp_literal_secret_1234"));
}

#[test]
fn wrong_master_key_is_denied_and_touches_nothing() {
    let mut env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_secret_kept_123456",
    );
    let wrong_key = "A".repeat(43);
    env.set_env("AEGIS_MASTER_KEY", &wrong_key);
    for args in [
        vec!["vault", "remove", "--name", "gh"],
        vec!["vault", "update", "--name", "gh", "--scopes", "read"],
        vec!["vault", "rotate", "--name", "gh", "--secret", "-"],
    ] {
        let run = env.run(&args, "ghp_should_not_be_stored\n");
        assert_error(&run, 3, "Invalid master key");
    }
    let add = env.run(
        ["vault", "add", "-n", "x", "-s", "x", "-d", "x.example.com"],
        "sk-12345678\n",
    );
    assert_error(&add, 3, "Invalid master key");
    // Listing needs no key and shows the credential unchanged.
    let list = env.run(["vault", "list", "--json"], "");
    let rows = list.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    assert_eq!(rows[0]["scopes"], "*");
}

#[test]
fn missing_and_malformed_master_keys_are_usage_errors() {
    let mut env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_secret_kept_123456",
    );
    env.unset_env("AEGIS_MASTER_KEY");
    let run = env.run(["vault", "remove", "--name", "gh"], "");
    assert_error(&run, 2, "AEGIS_MASTER_KEY is not set");
    assert!(run.stderr.contains("hint: export AEGIS_MASTER_KEY="));
    env.set_env("AEGIS_MASTER_KEY", "not-a-key-but-maybe-a-secret");
    let run = env.run(["vault", "remove", "--name", "gh"], "");
    assert_error(&run, 2, "AEGIS_MASTER_KEY");
    assert!(
        !run.stderr.contains("not-a-key-but-maybe-a-secret"),
        "never echoes the key"
    );
}

#[test]
fn master_key_file_must_be_private() {
    let mut env = initialised();
    let run = env.run(["key", "where", "--json"], "");
    assert_eq!(run.json()["in_use"]["source"], "env");
    let file = env.path().join("key.txt");
    let master = env.env_value("AEGIS_MASTER_KEY").expect("exported by init");
    std::fs::write(&file, format!("{master}\n")).expect("write key");
    env.unset_env("AEGIS_MASTER_KEY");
    env.set_env("AEGIS_MASTER_KEY_FILE", file.to_str().expect("utf-8"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = env.run(
        ["vault", "add", "-n", "a", "-s", "a", "-d", "a.example.com"],
        "sk-abcdefgh\n",
    );
    assert_error(&run, 2, "readable by other users");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = env.run(
        ["vault", "add", "-n", "a", "-s", "a", "-d", "a.example.com"],
        "sk-abcdefgh\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = env.run(["key", "where", "--json"], "");
    assert_eq!(run.json()["in_use"]["source"], "key_file");
    assert!(
        !run.all_output().contains(&master),
        "key where never prints the key"
    );
}
