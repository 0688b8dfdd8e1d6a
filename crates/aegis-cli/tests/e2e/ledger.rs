//! The audit ledger as the CLI writes and verifies it: every vault change is an entry, and any
//! edit of the ledger table made behind Aegis's back is found by `ledger verify`.

use super::support::{TestEnv, add, assert_error, initialised, sql};

/// Five entries: vault_created, credential_added, _updated, _rotated, _removed.
fn five_entries() -> TestEnv {
    let env = initialised();
    add(
        &env,
        "gh",
        "github",
        "api.github.com",
        "ghp_ledger_secret_123456",
    );
    assert_eq!(
        env.run(["vault", "update", "-n", "gh", "--scopes", "read"], "")
            .code,
        0
    );
    assert_eq!(
        env.run(
            ["vault", "rotate", "-n", "gh"],
            "ghp_rotated_secret_654321\n"
        )
        .code,
        0
    );
    assert_eq!(env.run(["vault", "remove", "-n", "gh"], "").code, 0);
    env
}

#[test]
fn every_vault_change_is_an_entry_and_the_chain_verifies() {
    let env = five_entries();
    let show = env.run(["ledger", "show", "--json"], "");
    assert_eq!(show.code, 0, "{}", show.stderr);
    let entries = show.json();
    let events: Vec<&str> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        events,
        [
            "vault_created",
            "credential_added",
            "credential_updated",
            "credential_rotated",
            "credential_removed"
        ]
    );
    assert_eq!(
        entries[2]["detail"]["changed_fields"]["scopes"]["new"],
        "read"
    );
    assert!(!show.stdout.contains("ghp_"), "no secret in the ledger");
    let verify = env.run(["ledger", "verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify.stdout.starts_with("ok 5 entries, head "),
        "{}",
        verify.stdout
    );
}

#[test]
fn tampering_with_any_row_is_found_and_named() {
    let cases = [
        (
            "UPDATE ledger SET credential = 'other' WHERE id = 2",
            "entry 2: hash mismatch",
        ),
        (
            "UPDATE ledger SET ts = ts + 1 WHERE id = 3",
            "entry 3: hash mismatch",
        ),
        (
            "DELETE FROM ledger WHERE id = 3",
            "entry 4: missing entries 3–3",
        ),
        (
            "DELETE FROM ledger WHERE id = 5",
            "entry 5: missing entries 5–5",
        ),
        (
            "INSERT INTO ledger SELECT 6, ts, kind, outcome, event, request_id, via, instance, actor, agent, \
             credential, service, method, target_host, path, status_code, denial_code, latency_ms, bytes_in, \
             bytes_out, detail, prev_hash, hash FROM ledger WHERE id = 2",
            "entry 6",
        ),
        (
            "UPDATE ledger SET id = 100 WHERE id = 2; UPDATE ledger SET id = 2 WHERE id = 3; \
             UPDATE ledger SET id = 3 WHERE id = 100",
            "entry 2",
        ),
    ];
    for (statement, needle) in cases {
        let env = five_entries();
        sql(&env, statement);
        let run = env.run(["ledger", "verify"], "");
        assert_error(&run, 1, "ledger chain broken at ");
        assert!(run.stderr.contains(needle), "{statement}: {}", run.stderr);
    }
}

#[test]
fn verify_needs_no_master_key() {
    let mut env = five_entries();
    env.unset_env("AEGIS_MASTER_KEY");
    let run = env.run(["ledger", "verify", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["entries"], 5);
}

#[test]
fn export_writes_csv_json_and_jsonl_with_filters() {
    let env = five_entries();
    let csv = env.run(["ledger", "export", "-f", "csv"], "");
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let mut lines = csv.stdout.split("\r\n");
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("id,ts,kind,outcome,event"))
    );
    assert_eq!(csv.stdout.matches("\r\n").count(), 6, "header + 5 entries");
    let jsonl = env.run(
        [
            "ledger",
            "export",
            "--format",
            "jsonl",
            "--service",
            "github",
        ],
        "",
    );
    assert_eq!(jsonl.code, 0, "{}", jsonl.stderr);
    assert_eq!(
        jsonl.stdout.lines().count(),
        3,
        "added, updated, rotated carry the service"
    );
    let file = env.path().join("out.json");
    let run = env.run(
        [
            "ledger", "export", "-f", "json", "--system", "--since", "1h", "-o", "out.json",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("file")).expect("json");
    assert_eq!(body.as_array().map(Vec::len), Some(5));
    assert_eq!(aegis_store::secure_fs::mode_of(&file).expect("mode"), 0o600);
    assert_error(
        &env.run(["ledger", "show", "--since", "last tuesday"], ""),
        2,
        "--since",
    );
    let pubkey = env.run(["ledger", "pubkey", "--json"], "");
    assert!(
        pubkey.json()["public_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ed25519:"))
    );
}
