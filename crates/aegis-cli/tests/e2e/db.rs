//! `aegis db backup` / `aegis db restore` (compatibility commands).

use aegis_store::secure_fs::mode_of;

use super::support::{add, assert_error, initialised};

#[test]
fn backup_then_restore_brings_back_removed_credentials() {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_backup_secret_123456",
    );
    let run = env.run(["db", "backup", "-o", "snap", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let snap = env.path().join("snap");
    assert_eq!(mode_of(&snap).expect("backup dir"), 0o700);
    assert_eq!(
        mode_of(&snap.join("aegis.db")).expect("registry copy"),
        0o600
    );
    assert_eq!(
        mode_of(&snap.join("vaults/default/vault.db")).expect("vault copy"),
        0o600
    );

    let run = env.run(["vault", "remove", "--name", "gh"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_error(
        &env.run(["db", "restore", "-i", "snap"], ""),
        1,
        "already holds databases",
    );

    let run = env.run(["db", "restore", "-i", "snap", "--force", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let archive = run.json()["archive"].as_str().expect("archive").to_owned();
    assert!(
        std::path::Path::new(&archive)
            .join("vaults/default/vault.db")
            .is_file(),
        "replaced file kept"
    );

    let list = env.run(["vault", "list", "--json"], "");
    assert_eq!(list.json()[0]["name"], "gh", "restored credential is back");
    // The restored secret still decrypts and verifies under the same key.
    let run = env.run(
        ["vault", "rotate", "--name", "gh"],
        "ghp_after_restore_123456\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn backup_refuses_an_existing_directory_and_restore_a_non_backup() {
    let env = initialised();
    std::fs::create_dir(env.path().join("taken")).expect("mkdir");
    assert_error(
        &env.run(["db", "backup", "--output", "taken"], ""),
        1,
        "already exists",
    );
    assert_error(
        &env.run(["db", "restore", "-i", "taken"], ""),
        2,
        "not a backup",
    );
}
