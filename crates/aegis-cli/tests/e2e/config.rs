//! `aegis config validate | show` and configuration errors as every command reports them.

use super::support::{assert_error, bare_env, env};

#[test]
fn validate_reports_every_error_with_file_line_and_suggestion() {
    let env = bare_env();
    std::fs::write(
        env.path().join("aegis.config.yaml"),
        "gate:\n  prot: 3100\n  bind: not-an-ip\nledger:\n  durability: sometimes\n",
    )
    .expect("write config");
    let run = env.run(["config", "validate"], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let all = run.all_output();
    assert!(
        all.contains("aegis.config.yaml:2") && all.contains("gate.prot"),
        "{all}"
    );
    assert!(all.contains("did you mean gate.port"), "{all}");
    assert!(
        all.contains("aegis.config.yaml:3") && all.contains("gate.bind"),
        "{all}"
    );
    assert!(
        all.contains("aegis.config.yaml:5") && all.contains("ledger.durability"),
        "{all}"
    );
}

#[test]
fn other_commands_stop_at_the_first_config_error_with_exit_2() {
    let env = bare_env();
    std::fs::write(
        env.path().join("aegis.config.yaml"),
        "gate:\n  prot: 3100\n",
    )
    .expect("write config");
    let run = env.run(["vault", "list"], "");
    assert_error(&run, 2, "gate.prot");
    assert!(
        run.stderr.contains("hint: did you mean gate.port?"),
        "{}",
        run.stderr
    );
}

#[test]
fn validate_accepts_a_good_file() {
    let env = env();
    let run = env.run(["config", "validate"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("ok "), "{}", run.stdout);
}

#[test]
fn explicit_missing_config_file_is_a_usage_error() {
    let env = env();
    let run = env.run(["vault", "list", "--config", "nope.yaml"], "");
    assert_error(&run, 2, "nope.yaml");
}

#[test]
fn show_masks_secrets_and_names_sources() {
    let mut env = env();
    env.set_env("AEGIS_GATE_PORT", "4100");
    env.set_env(
        "AEGIS_MASTER_KEY",
        "bWFzdGVyLWtleS1zaG91bGQtbmV2ZXItYmUtc2hvd24",
    );
    let run = env.run(["config", "show", "--json", "--vault", "team"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.all_output()
            .contains("bWFzdGVyLWtleS1zaG91bGQtbmV2ZXItYmUtc2hvd24"),
        "master key masked"
    );
    let rows = run.json();
    let find = |key: &str| {
        rows.as_array()
            .and_then(|rows| rows.iter().find(|r| r["key"] == key))
            .cloned()
            .unwrap_or_else(|| panic!("{key} missing from config show"))
    };
    assert_eq!(find("gate.port")["source"], "env:AEGIS_GATE_PORT");
    assert_eq!(find("vault.name")["source"], "flag");
    assert_eq!(find("vault.name")["value"], "team");
    assert_eq!(find("vault.master_key")["value"], "********");
    assert!(
        find("vault.kdf.memory_kib")["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("file:"))
    );
    assert_eq!(find("gate.bind")["source"], "default");
}

#[test]
fn legacy_yml_name_and_env_names_work_with_warnings() {
    let mut env = bare_env();
    std::fs::write(env.path().join("aegis.config.yml"), "gate:\n  port: 3999\n").expect("write");
    env.set_env("AEGIS_PORT", "4000");
    let run = env.run(["config", "show", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("AEGIS_GATE_PORT"),
        "{}",
        run.stderr
    );
    let rows = run.json();
    let port = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["key"] == "gate.port"))
        .cloned()
        .expect("gate.port");
    assert_eq!(port["value"], "4000");
}
