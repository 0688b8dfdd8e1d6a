//! `aegis doctor`: pass/warn/fail lines, JSON shape, exit codes.

use super::support::{add, bare_env, initialised};

fn check<'a>(body: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    body["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no {id} check in {body}"))
}

#[test]
fn healthy_installation_passes() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_doctor_secret_123456",
    );
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let body = run.json();
    for id in [
        "config",
        "data_dir",
        "database",
        "master_key",
        "sealed",
        "integrity",
        "credentials",
        "exposure",
    ] {
        assert_eq!(check(&body, id)["status"], "pass", "{id}: {body}");
    }
    assert_eq!(body["summary"]["fail"], 0);
    assert!(!run.all_output().contains("ghp_doctor_secret"));
}

#[test]
fn expiring_credentials_warn_by_name() {
    let env = initialised();
    let run = env.run(
        [
            "vault",
            "add",
            "-n",
            "soon",
            "-s",
            "svc",
            "-d",
            "api.example.com",
            "--ttl",
            "3",
        ],
        "sk-expiring-123456\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 0, "warnings alone exit 0: {}", run.stderr);
    let credentials = check(&run.json(), "credentials").clone();
    assert_eq!(credentials["status"], "warn");
    assert!(
        credentials["message"]
            .as_str()
            .is_some_and(|m| m.contains("soon"))
    );
}

#[test]
fn wrong_key_fails_the_master_key_check_with_exit_1() {
    let mut env = initialised();
    env.set_env("AEGIS_MASTER_KEY", &"A".repeat(43));
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1);
    assert_eq!(check(&run.json(), "master_key")["status"], "fail");
}

#[test]
fn loose_permissions_warn() {
    let env = initialised();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.data_dir(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(check(&run.json(), "data_dir")["status"], "warn");
}

#[test]
fn uninitialised_directory_fails_with_human_lines() {
    let env = bare_env();
    let run = env.run(["doctor"], "");
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("fail") && l.contains("database")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("failed"),
        "summary line: {}",
        run.stdout
    );
}

#[test]
fn corrupted_database_is_reported() {
    let env = initialised();
    let db = env.data_dir().join("vaults/default/vault.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, b"this is not a sqlite database at all, just text").expect("overwrite");
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1);
    assert_eq!(check(&run.json(), "database")["status"], "fail");
    let run = env.run(["vault", "list"], "");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error: Database file is corrupted"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_tls_key_that_does_not_match_its_certificate_fails() {
    let env = initialised();
    let other = super::support::bare_env();
    for dir in [env.path(), other.path()] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_aegis"))
            .args(["init", "--generate-cert", "--json"])
            .current_dir(dir)
            .env("AEGIS_HOME", dir.join("cert-home"))
            .output()
            .expect("run init");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let config = env.path().join("aegis.config.yaml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    let own_key = env.path().join("certs/aegis.key").display().to_string();
    assert!(
        text.contains(&own_key),
        "init pointed gate.tls at its key: {text}"
    );
    text = text.replace(
        &own_key,
        &other.path().join("certs/aegis.key").display().to_string(),
    );
    std::fs::write(&config, &text).expect("config");
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(check(&run.json(), "tls")["status"], "fail");
}

#[test]
fn tampered_agent_and_grant_rows_fail_the_integrity_check_by_name() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_doctor_secret_123456",
    );
    for args in [
        &["agent", "add", "--name", "bot", "--rate-limit", "3/min"][..],
        &["agent", "add", "--name", "ci"],
        &["agent", "grant", "--agent", "bot", "--credential", "gh"],
    ] {
        let run = env.run(args, "");
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        check(&run.json(), "integrity")["message"],
        "1 credential, 2 agent and 1 grant row(s) verified"
    );
    // Someone with file access but no key lifts bot's limit and grants ci the credential.
    super::support::sql(
        &env,
        "UPDATE agents SET rate_limit = NULL WHERE name = 'bot'; \
         INSERT INTO grants (agent_id, credential_id, created_at, mac) \
         SELECT a.id, c.id, 0, x'00' FROM agents a, credentials c WHERE a.name = 'ci';",
    );
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let integrity = check(&run.json(), "integrity").clone();
    assert_eq!(integrity["status"], "fail");
    assert_eq!(
        integrity["message"],
        "failed their integrity check: agent 'bot', grant of 'gh' to 'ci'"
    );
    assert!(
        integrity["hint"]
            .as_str()
            .is_some_and(|h| h.contains("changed outside aegis")),
        "{integrity}"
    );
}

/// Writes `<env>/policies/<name>` and points gate.policies_dir at the directory.
fn policies(env: &mut super::support::TestEnv, files: &[(&str, &str)]) {
    let dir = env.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("policy");
    }
    env.set_env("AEGIS_GATE_POLICIES_DIR", dir.to_str().expect("utf-8"));
}

#[test]
fn policies_loaded_without_agent_auth_warn_that_anonymous_requests_bypass_them() {
    let mut env = initialised();
    let run = env.run(["doctor", "--json"], "");
    let body = run.json();
    assert!(
        body["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["id"] != "policies")),
        "no policies check without a directory: {body}"
    );
    policies(
        &mut env,
        &[(
            "bot.yaml",
            "agent: bot\nrules:\n  - service: github\n    methods: [GET]\n",
        )],
    );
    let dir = env.path().join("policies");
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 0, "warnings alone exit 0: {}", run.stdout);
    let policies_check = check(&run.json(), "policies").clone();
    assert_eq!(policies_check["status"], "warn");
    assert_eq!(
        policies_check["message"],
        format!(
            "1 policy file(s), 1 rule(s) valid in {}, but agent auth is not required: anonymous requests bypass them",
            dir.display()
        )
    );
    let run = env.run(["doctor"], "");
    assert!(
        run.stdout.lines().any(
            |l| l.starts_with("warn  policies") && l.contains("anonymous requests bypass them")
        ),
        "{}",
        run.stdout
    );

    env.set_env("AEGIS_GATE_REQUIRE_AGENT_AUTH", "true");
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    let policies_check = check(&run.json(), "policies").clone();
    assert_eq!(policies_check["status"], "pass");
    assert_eq!(
        policies_check["message"],
        format!("1 policy file(s), 1 rule(s) valid in {}", dir.display())
    );
}

#[test]
fn an_invalid_policies_directory_fails_with_its_first_problem_and_the_count() {
    let mut env = initialised();
    policies(
        &mut env,
        &[
            ("a.yaml", "agent: bot\nrules:\n  - servce: github\n"),
            ("b.yaml", "agent: ci\nrules:\n  - service: github\n"),
        ],
    );
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let policies_check = check(&run.json(), "policies").clone();
    assert_eq!(policies_check["status"], "fail");
    assert_eq!(
        policies_check["message"],
        "a.yaml:3:5: rules[0].servce: unknown key 'servce'; did you mean 'service'? (and 1 more error)"
    );
    assert!(
        policies_check["hint"]
            .as_str()
            .is_some_and(|h| h.starts_with("run aegis policy validate")),
        "{policies_check}"
    );

    let nowhere = env.path().join("nowhere");
    env.set_env("AEGIS_GATE_POLICIES_DIR", nowhere.to_str().expect("utf-8"));
    let run = env.run(["doctor", "--json"], "");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let policies_check = check(&run.json(), "policies").clone();
    assert_eq!(policies_check["status"], "fail");
    assert!(
        policies_check["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("does not exist")),
        "{policies_check}"
    );
}
