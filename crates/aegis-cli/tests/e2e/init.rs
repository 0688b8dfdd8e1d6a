//! `aegis init`: key printed once, files and modes, refusal to overwrite, `--force`,
//! `--write-secrets`, `--generate-cert`.

use aegis_store::secure_fs::mode_of;

use super::support::{assert_error, bare_env, env};

#[test]
fn init_creates_private_directories_and_files() {
    let mut env = env();
    env.init();
    // A write through a second command makes SQLite create the -wal/-shm companions.
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
        "ghp_abcdefghijklmnop\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let data = env.data_dir();
    assert_eq!(mode_of(&data).expect("data dir"), 0o700);
    assert_eq!(mode_of(&data.join("vaults")).expect("vaults dir"), 0o700);
    assert_eq!(
        mode_of(&data.join("vaults/default")).expect("vault dir"),
        0o700
    );
    assert_eq!(mode_of(&data.join("aegis.db")).expect("registry"), 0o600);
    assert_eq!(
        mode_of(&data.join("vaults/default/vault.db")).expect("vault db"),
        0o600
    );
    for companion in ["vaults/default/vault.db-wal", "vaults/default/vault.db-shm"] {
        let path = data.join(companion);
        if path.exists() {
            assert_eq!(mode_of(&path).expect("companion"), 0o600, "{companion}");
        }
    }
}

#[test]
fn init_writes_a_0600_config_when_none_exists_and_prints_the_key_once() {
    let env = bare_env();
    let run = env.run(["init"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let config = env.path().join("aegis.config.yaml");
    assert!(config.is_file());
    assert_eq!(mode_of(&config).expect("config"), 0o600);
    let key_lines: Vec<&str> = run
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.len() == 43
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .collect();
    assert_eq!(
        key_lines.len(),
        1,
        "the key appears once on its own line: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("export AEGIS_MASTER_KEY={}", key_lines[0]))
    );
    let config_text = std::fs::read_to_string(&config).expect("read config");
    assert!(
        !config_text.contains(key_lines[0]),
        "the key is not written without --write-secrets"
    );
}

#[test]
fn init_refuses_an_existing_vault_without_force() {
    let mut env = env();
    env.init();
    let run = env.run(["init"], "");
    assert_error(&run, 1, "vault 'default' already exists");
    assert!(run.stderr.contains("hint: use --force"));
}

#[test]
fn init_force_archives_the_old_vault_and_the_old_key_stops_working() {
    let mut env = env();
    let old_key = env.init();
    super::support::add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_first_vault_secret",
    );
    let run = env.run(["init", "--force", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = run.json();
    let new_key = body["master_key"].as_str().expect("key").to_owned();
    assert_ne!(new_key, old_key);
    let archived = body["archived_to"].as_str().expect("archived_to");
    assert!(
        std::path::Path::new(archived).join("vault.db").is_file(),
        "old vault kept in archive"
    );
    assert_eq!(
        mode_of(&env.data_dir().join("archive")).expect("archive"),
        0o700
    );
    // The old key is now wrong for the new vault.
    let run = env.run(["vault", "remove", "--name", "gh"], "");
    assert_error(&run, 3, "Invalid master key");
}

#[test]
fn init_write_secrets_stores_the_key_in_the_config_and_commands_use_it() {
    let env = env();
    let run = env.run(["init", "--write-secrets", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key = run.json()["master_key"].as_str().expect("key").to_owned();
    let config = std::fs::read_to_string(env.path().join("aegis.config.yaml")).expect("config");
    assert!(config.contains(&format!("master_key: {key}")));
    assert!(
        config.contains("memory_kib: 19456"),
        "the rest of the file is kept"
    );
    assert_eq!(
        mode_of(&env.path().join("aegis.config.yaml")).expect("mode"),
        0o600
    );
    // No AEGIS_MASTER_KEY in the environment: the config value is used.
    let run = env.run(
        [
            "vault",
            "add",
            "-n",
            "a",
            "-s",
            "svc",
            "-d",
            "api.example.com",
        ],
        "sk-abcdefgh12345\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn init_generate_cert_writes_a_private_key_and_points_gate_tls_at_it() {
    let env = bare_env();
    let run = env.run(["init", "--generate-cert"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cert = env.path().join("certs/aegis.crt");
    let key = env.path().join("certs/aegis.key");
    assert!(
        std::fs::read_to_string(&cert)
            .expect("cert")
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(mode_of(&key).expect("key"), 0o600);
    let show = env.run(["config", "show", "--json"], "");
    assert_eq!(show.code, 0, "{}", show.stderr);
    let text = show.stdout;
    assert!(
        text.contains("certs/aegis.crt") && text.contains("certs/aegis.key"),
        "{text}"
    );
}

#[test]
fn aegis_home_overrides_the_data_directory() {
    let mut env = env();
    let home = env.path().join("elsewhere");
    env.set_env("AEGIS_HOME", home.to_str().expect("utf-8"));
    env.init();
    assert!(home.join("aegis.db").is_file());
    assert!(!env.data_dir().exists());
}

#[test]
fn aegis_salt_seeds_a_new_vault_and_must_match_later() {
    let mut env = env();
    env.set_env("AEGIS_SALT", "00112233445566778899aabbccddeeff");
    env.init();
    super::support::add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_salted_secret_1234",
    );
    env.set_env("AEGIS_SALT", "ffeeddccbbaa99887766554433221100");
    let run = env.run(["vault", "remove", "--name", "gh"], "");
    assert_error(&run, 2, "AEGIS_SALT does not match");
    let mut fresh = super::support::env();
    fresh.set_env("AEGIS_SALT", "0011");
    assert_error(&fresh.run(["init"], ""), 2, "AEGIS_SALT");
}

#[test]
fn vault_flag_selects_another_vault() {
    let mut env = env();
    let run = env.run(["init", "--vault", "team", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key = run.json()["master_key"].as_str().expect("key").to_owned();
    env.set_env("AEGIS_MASTER_KEY", &key);
    assert!(env.data_dir().join("vaults/team/vault.db").is_file());
    let run = env.run(
        [
            "vault",
            "add",
            "--vault",
            "team",
            "-n",
            "a",
            "-s",
            "svc",
            "-d",
            "a.example.com",
        ],
        "sk-team-secret-1\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    env.set_env("AEGIS_VAULT", "team");
    let list = env.run(["vault", "list", "--json"], "");
    assert_eq!(list.json()[0]["name"], "a");
    env.unset_env("AEGIS_VAULT");
    assert_error(
        &env.run(["vault", "list"], ""),
        1,
        "vault 'default' does not exist",
    );
}
