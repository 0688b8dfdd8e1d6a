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
    // The five changes, then one ledger_exported entry for each export before this one.
    let entries = body.as_array().expect("array");
    assert_eq!(entries.len(), 7);
    let exported: Vec<_> = entries[5..]
        .iter()
        .map(|e| {
            (
                e["event"].clone(),
                e["detail"]["format"].clone(),
                e["detail"]["file"].clone(),
            )
        })
        .collect();
    assert_eq!(
        exported,
        [
            ("ledger_exported".into(), "csv".into(), "-".into()),
            ("ledger_exported".into(), "jsonl".into(), "-".into()),
        ]
    );
    assert_eq!(entries[6]["detail"]["count"], 3);
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

// ---------------------------------------------------------------------------------------------
// Signed bundles (SPEC.md §15.6) and archive (§15.7)

/// `aegis ledger export --bundle -o bundle.json`; returns the file's path.
fn export_bundle(env: &TestEnv, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["ledger", "export", "--bundle", "-o", "bundle.json"];
    args.extend_from_slice(extra);
    let run = env.run(args, "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    env.path().join("bundle.json")
}

/// The vault's public key as `aegis ledger pubkey --json` prints it.
fn public_key(env: &TestEnv) -> String {
    let run = env.run(["ledger", "pubkey", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["public_key"]
        .as_str()
        .expect("public_key")
        .to_owned()
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn write_json(path: &std::path::Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string(value).expect("serialise")).expect("write");
}

fn verify_bundle(env: &TestEnv, file: &std::path::Path, key: Option<&str>) -> super::support::Run {
    let mut args = vec![
        "ledger".to_owned(),
        "verify-bundle".to_owned(),
        file.display().to_string(),
    ];
    if let Some(key) = key {
        args.extend(["--public-key".to_owned(), key.to_owned()]);
    }
    env.run(args, "")
}

#[test]
fn a_bundle_verifies_offline_with_and_without_the_public_key() {
    let env = five_entries();
    let file = export_bundle(&env, &[]);
    assert_eq!(aegis_store::secure_fs::mode_of(&file).expect("mode"), 0o600);
    let key = public_key(&env);

    // Somewhere else entirely: no config, no data directory, no master key.
    let offline = super::support::bare_env();
    let copy = offline.path().join("copy.json");
    std::fs::copy(&file, &copy).expect("copy");
    let run = verify_bundle(&offline, &copy, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "OK 5 entries 1–5\n");
    assert!(
        run.stderr.starts_with("warning: ") && run.stderr.contains("not who made it"),
        "origin not authenticated: {}",
        run.stderr
    );

    let run = verify_bundle(&offline, &copy, Some(&key));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "OK 5 entries 1–5\n");
    assert_eq!(run.stderr, "", "no warning with --public-key");

    // A file holding the output of `aegis ledger pubkey`, plain or --json.
    let plain = env.run(["ledger", "pubkey"], "");
    std::fs::write(offline.path().join("key.txt"), &plain.stdout).expect("write key");
    let run = verify_bundle(&offline, &copy, Some("key.txt"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = env.run(["ledger", "pubkey", "--json"], "");
    std::fs::write(offline.path().join("key.json"), &json.stdout).expect("write key");
    let run = offline.run(
        [
            "ledger",
            "verify-bundle",
            "copy.json",
            "--public-key",
            "key.json",
            "--json",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = run.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["entries"], 5);
    assert_eq!(body["origin_checked"], true);

    // The export itself is recorded, and the chain still verifies.
    let show = env.run(["ledger", "show", "--system", "--json"], "");
    let entries = show.json();
    let last = entries.as_array().and_then(|a| a.last()).expect("entries");
    assert_eq!(last["event"], "ledger_exported");
    assert_eq!(last["detail"]["format"], "bundle");
    assert_eq!(
        last["detail"]["content_digest"],
        read_json(&file)["manifest"]["content_digest"]
    );
    assert_eq!(env.run(["ledger", "verify"], "").code, 0);
}

#[test]
fn export_bundle_needs_the_master_key_and_an_output_file() {
    let mut env = five_entries();
    assert_error(
        &env.run(["ledger", "export", "--bundle"], ""),
        2,
        "required arguments were not provided",
    );
    env.unset_env("AEGIS_MASTER_KEY");
    assert_error(
        &env.run(["ledger", "export", "--bundle", "-o", "b.json"], ""),
        2,
        "AEGIS_MASTER_KEY",
    );
    assert!(!env.path().join("b.json").exists());
}

#[test]
fn editing_a_bundle_is_found_and_named() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &[&str]); 8] = [
        (
            "an entry field",
            |b| b["entries"][2]["credential"] = "other".into(),
            &[
                "content digest mismatch",
                "entry 3 (position 3): hash mismatch",
            ],
        ),
        (
            "an entry time",
            |b| b["entries"][1]["ts"] = b["entries"][0]["ts"].clone(),
            &["entry 2 (position 2): hash mismatch"],
        ),
        (
            "an entry detail",
            |b| b["entries"][0]["detail"]["vault"] = "prod".into(),
            &["entry 1 (position 1): hash mismatch"],
        ),
        (
            "the order",
            |b| b["entries"].as_array_mut().expect("entries").swap(1, 2),
            &[
                "entry order changed at position 2",
                "content digest mismatch",
            ],
        ),
        (
            "a dropped entry",
            |b| {
                b["entries"].as_array_mut().expect("entries").remove(3);
            },
            &[
                "count mismatch: manifest 5, entries 4",
                "missing entries 4–4",
            ],
        ),
        (
            "a manifest member",
            |b| b["manifest"]["vault_name"] = "prod".into(),
            &["manifest signature invalid"],
        ),
        (
            "the manifest count",
            |b| b["manifest"]["count"] = 4.into(),
            &[
                "manifest signature invalid",
                "count mismatch: manifest 4, entries 5",
            ],
        ),
        (
            "the signature",
            |b| {
                let sig = b["signature"].as_str().expect("signature").to_owned();
                let middle = sig.len() / 2;
                let swapped = if &sig[middle..=middle] == "A" {
                    "B"
                } else {
                    "A"
                };
                b["signature"] =
                    format!("{}{swapped}{}", &sig[..middle], &sig[middle + 1..]).into();
            },
            &["manifest signature invalid"],
        ),
    ];
    let env = five_entries();
    let file = export_bundle(&env, &[]);
    let key = public_key(&env);
    let original = read_json(&file);
    for (what, edit, needles) in cases {
        let mut bundle = original.clone();
        edit(&mut bundle);
        let edited = env.path().join("edited.json");
        write_json(&edited, &bundle);
        for key in [None, Some(key.as_str())] {
            let run = verify_bundle(&env, &edited, key);
            assert_error(&run, 1, "failed verification: ");
            for needle in needles {
                assert!(
                    run.stderr.contains(needle),
                    "{what}: {needle}: {}",
                    run.stderr
                );
            }
        }
    }
}

#[test]
fn a_bundle_checked_against_another_vaults_key_fails() {
    let env = five_entries();
    let file = export_bundle(&env, &[]);
    let other = initialised();
    let run = verify_bundle(&env, &file, Some(&public_key(&other)));
    assert_error(&run, 1, "public key differs from --public-key");
    assert!(
        run.stderr.contains("manifest signature invalid"),
        "{}",
        run.stderr
    );
    assert_error(
        &verify_bundle(&env, &file, Some("ed25519:AAAA")),
        2,
        "--public-key",
    );
    assert_error(
        &verify_bundle(&env, &file, Some("no-such-key-file")),
        2,
        "--public-key",
    );
}

#[test]
fn an_unreadable_or_unparsable_bundle_exits_2() {
    let env = super::support::bare_env();
    assert_error(
        &env.run(["ledger", "verify-bundle", "missing.json"], ""),
        2,
        "missing.json",
    );
    std::fs::write(env.path().join("text.json"), "not json").expect("write");
    assert_error(
        &env.run(["ledger", "verify-bundle", "text.json"], ""),
        2,
        "is not a ledger bundle",
    );
    std::fs::write(env.path().join("array.json"), "[1, 2]").expect("write");
    assert_error(
        &env.run(["ledger", "verify-bundle", "array.json"], ""),
        2,
        "is not a ledger bundle",
    );
}

#[test]
fn a_filtered_bundle_is_not_contiguous_and_still_verifies() {
    let env = five_entries();
    let file = export_bundle(&env, &["--service", "github"]);
    let bundle = read_json(&file);
    assert_eq!(bundle["manifest"]["contiguous"], false);
    assert_eq!(bundle["manifest"]["filters"]["service"], "github");
    let ids: Vec<u64> = bundle["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(ids, [2, 3, 4]);
    let run = verify_bundle(&env, &file, Some(&public_key(&env)));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "OK 3 entries 2–4\n");
}

/// The entries of `env`'s ledger as `ledger show --json` prints them.
fn shown(env: &TestEnv) -> Vec<serde_json::Value> {
    let run = env.run(["ledger", "show", "--system", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json().as_array().cloned().expect("array")
}

/// Archives the entries older than entry 4 and returns how many that was.
fn archive_before_entry_4(env: &TestEnv) -> u64 {
    let entries = shown(env);
    let before = entries[3]["ts"].as_str().expect("ts").to_owned();
    let archived = entries
        .iter()
        .filter(|e| e["ts"].as_str() < Some(before.as_str()))
        .count() as u64;
    assert!(archived >= 1, "entries 1–3 were written before entry 4");
    let run = env.run(
        [
            "ledger",
            "archive",
            "--before",
            &before,
            "-o",
            "archive.json",
            "--confirm",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("archived {archived} entries 1–{archived} to ")),
        "{}",
        run.stdout
    );
    archived
}

#[test]
fn archive_then_verify_starts_at_the_anchor_and_later_appends_still_verify() {
    let env = five_entries();
    let key = public_key(&env);
    let archived = archive_before_entry_4(&env);
    let left = shown(&env);
    assert_eq!(left[0]["id"], archived + 1, "the prefix is gone");
    let record = left.last().expect("entries");
    assert_eq!(record["event"], "ledger_archived");
    assert_eq!(record["detail"]["first_id"], 1);
    assert_eq!(record["detail"]["last_id"], archived);
    let file = env.path().join("archive.json");
    assert_eq!(
        record["detail"]["content_digest"],
        read_json(&file)["manifest"]["content_digest"]
    );
    assert_eq!(aegis_store::secure_fs::mode_of(&file).expect("mode"), 0o600);

    let verify = env.run(["ledger", "verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify
            .stdout
            .starts_with(&format!("ok {} entries, head ", 6 - archived)),
        "{}",
        verify.stdout
    );
    add(
        &env,
        "gl",
        "gitlab",
        "gitlab.com",
        "glpat_after_archive_1234",
    );
    let verify = env.run(["ledger", "verify", "--json"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert_eq!(verify.json()["entries"], 7 - archived);

    // The archive verifies offline, and a bundle of what is left starts at the anchor.
    let run = verify_bundle(&env, &file, Some(&key));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("OK {archived} entries 1–{archived}\n"));
    let rest = export_bundle(&env, &[]);
    let run = verify_bundle(&env, &rest, Some(&key));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        read_json(&rest)["manifest"]["chain"]["prev_hash"],
        read_json(&file)["manifest"]["chain"]["head_hash"]
    );
}

#[test]
fn archive_is_refused_without_confirm_when_not_on_a_terminal() {
    let env = five_entries();
    let run = env.run(
        [
            "ledger",
            "archive",
            "--before",
            "2099-01-01",
            "-o",
            "a.json",
        ],
        "",
    );
    assert_error(&run, 2, "--confirm");
    assert!(!env.path().join("a.json").exists());
    assert_eq!(shown(&env).len(), 5, "nothing deleted");
}

#[test]
fn archive_never_replaces_an_existing_file() {
    let env = five_entries();
    std::fs::write(env.path().join("a.json"), "keep me").expect("write");
    let run = env.run(
        [
            "ledger",
            "archive",
            "--before",
            "2099-01-01",
            "--output",
            "a.json",
            "--confirm",
        ],
        "",
    );
    assert_error(&run, 1, "already exists");
    assert_eq!(
        std::fs::read_to_string(env.path().join("a.json")).expect("read"),
        "keep me"
    );
    assert_eq!(shown(&env).len(), 5);
}

#[test]
fn deleting_the_anchor_checkpoint_makes_verify_fail() {
    let env = five_entries();
    let archived = archive_before_entry_4(&env);
    sql(
        &env,
        &format!("DELETE FROM ledger_checkpoints WHERE entry_id = {archived}"),
    );
    let run = env.run(["ledger", "verify"], "");
    assert_error(
        &run,
        1,
        &format!(
            "ledger chain broken at entry {}: missing entries 1–{archived}",
            archived + 1
        ),
    );
}

#[test]
fn a_prefix_deleted_without_an_archive_is_missing_entries() {
    let env = five_entries();
    sql(&env, "DELETE FROM ledger WHERE id <= 2");
    assert_error(
        &env.run(["ledger", "verify"], ""),
        1,
        "ledger chain broken at entry 3: missing entries 1–2",
    );
}

#[test]
fn a_forged_anchor_signature_makes_verify_fail() {
    let env = five_entries();
    let archived = archive_before_entry_4(&env);
    sql(
        &env,
        &format!(
            "UPDATE ledger_checkpoints SET signature = zeroblob(64) WHERE entry_id = {archived}"
        ),
    );
    assert_error(
        &env.run(["ledger", "verify"], ""),
        1,
        &format!("checkpoint {archived} signature invalid"),
    );
}

#[test]
fn verify_last_n_checks_only_the_newest_entries() {
    let env = five_entries();
    // Entry 1 is altered: the whole walk fails at it, a walk of the last three never sees it.
    sql(&env, "UPDATE ledger SET instance = 'forged' WHERE id = 1");
    assert_error(
        &env.run(["ledger", "verify"], ""),
        1,
        "entry 1: hash mismatch",
    );
    let last = env.run(["ledger", "verify", "--last", "3", "--json"], "");
    assert_eq!(last.code, 0, "{}", last.stderr);
    assert_eq!(last.json()["entries"], 3);
    // An entry inside the last three is found.
    sql(&env, "UPDATE ledger SET instance = 'forged' WHERE id = 4");
    assert_error(
        &env.run(["ledger", "verify", "--last", "3"], ""),
        1,
        "entry 4: hash mismatch",
    );
    assert_error(
        &env.run(["ledger", "verify", "--last", "0"], ""),
        2,
        "--last",
    );
}
