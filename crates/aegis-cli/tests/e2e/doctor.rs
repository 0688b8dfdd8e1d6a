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
