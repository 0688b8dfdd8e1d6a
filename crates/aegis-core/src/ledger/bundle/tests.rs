//! Bundles: an untouched bundle verifies; each kind of edit is found and named with SPEC's
//! text; filtered bundles check only per-entry hashes and the digest.

use serde_json::{Value, json};

use super::*;
use crate::ledger::{EntryContent, Outcome, SystemEvent, Via, genesis, verify_checkpoint};

const VAULT: uuid::Uuid = uuid::Uuid::from_bytes([
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
]);
const T0: i64 = 1_772_357_400_125;

fn content(id: u64) -> EntryContent {
    if id.is_multiple_of(4) {
        return EntryContent::system(SystemEvent::CredentialAdded, Via::Cli, "cli-1")
            .with_actor("bootstrap")
            .with_credential("gh");
    }
    let mut detail = serde_json::Map::new();
    detail.insert("policy_rule".into(), json!("read-only"));
    EntryContent::request(Outcome::Allowed, Via::Gate, "gate-1")
        .with_request_id(format!("0195f0a0-0000-7000-8000-{id:012x}"))
        .with_agent("builder")
        .with_credential("gh")
        .with_service(if id.is_multiple_of(2) {
            "github"
        } else {
            "slack"
        })
        .with_method("GET")
        .with_target_host("api.github.com")
        .with_path(b"/user/repos")
        .with_status_code(200)
        .with_latency_ms(10 + id)
        .with_bytes_in(0)
        .with_bytes_out(512)
        .with_detail(detail)
}

/// Entries `from..=to` of one chain that starts at the vault's genesis.
fn chain(from: u64, to: u64) -> Vec<LedgerEntry> {
    let mut prev = genesis(&VAULT);
    let mut out = Vec::new();
    for id in 1..=to {
        let ts = Timestamp::from_millis(T0 + i64::try_from(id).expect("small") * 1000);
        let entry = LedgerEntry::chained(id, ts, content(id), prev);
        prev = *entry.hash();
        if id >= from {
            out.push(entry);
        }
    }
    out
}

fn key() -> LedgerSigningKey {
    LedgerSigningKey::from_seed(zeroize::Zeroizing::new([7u8; 32])).expect("seed")
}

fn other_key() -> LedgerSigningKey {
    LedgerSigningKey::from_seed(zeroize::Zeroizing::new([8u8; 32])).expect("seed")
}

fn origin(entries: &[LedgerEntry], filters: BundleFilters) -> BundleOrigin {
    let last = entries.last().expect("entries");
    BundleOrigin {
        vault_id: VAULT,
        vault_name: "default".to_owned(),
        contiguous: filters.is_empty(),
        filters,
        ledger_head: BundleHead {
            id: last.id() + 5,
            hash: [3; 32],
        },
        created_at: Timestamp::from_millis(T0 + 999_000),
    }
}

/// A contiguous bundle of entries `from..=to`, as the JSON value a reader of the file gets.
fn bundle_json(from: u64, to: u64) -> Value {
    let entries = chain(from, to);
    let bundle =
        Bundle::build(&entries, origin(&entries, BundleFilters::default()), &key()).expect("build");
    serde_json::from_str(&bundle.to_text()).expect("bundle text is JSON")
}

fn problems(bundle: &Value) -> Vec<BundleProblem> {
    verify_bundle(bundle, Some(&key().public_key())).problems
}

fn texts(bundle: &Value) -> Vec<String> {
    problems(bundle).iter().map(ToString::to_string).collect()
}

/// Re-signs `bundle`'s manifest with `signer`, as a forger holding another key would.
fn resign(bundle: &mut Value, signer: &LedgerSigningKey) {
    let public = signer.public_key();
    bundle["manifest"]["public_key"] = json!(format_public_key(&public));
    bundle["manifest"]["key_id"] = json!(key_id(&public));
    let message = jcs::serialize(&bundle["manifest"]);
    bundle["signature"] = json!(format_signature(&signer.sign(message.as_bytes())));
}

fn recompute_digest(bundle: &mut Value) {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for entry in bundle["entries"].as_array().expect("entries") {
        ctx.update(jcs::serialize(entry).as_bytes());
        ctx.update(b"\n");
    }
    bundle["manifest"]["content_digest"] = json!(format_digest(&finish(ctx)));
    let count = bundle["entries"].as_array().map_or(0, Vec::len);
    bundle["manifest"]["count"] = json!(count);
}

// ---------------------------------------------------------------------------------------------
// Untouched bundles

#[test]
fn an_untouched_bundle_verifies_with_and_without_the_trusted_key() {
    let bundle = bundle_json(1, 12);
    let report = verify_bundle(&bundle, Some(&key().public_key()));
    assert_eq!(report.problems, []);
    assert!(report.is_ok());
    let manifest = report.manifest.expect("manifest");
    assert_eq!(
        (manifest.first_id, manifest.last_id, manifest.count),
        (1, 12, 12)
    );
    assert!(manifest.contiguous);
    assert_eq!(manifest.vault_name, "default");
    assert_eq!(manifest.ledger_head.id, 17);
    assert!(verify_bundle(&bundle, None).is_ok());
}

#[test]
fn a_bundle_that_starts_after_an_archive_verifies() {
    let bundle = bundle_json(101, 130);
    assert_eq!(problems(&bundle), []);
    assert_eq!(bundle["manifest"]["first_id"], 101);
}

#[test]
fn the_manifest_has_the_members_of_the_spec_in_order() {
    let bundle = bundle_json(1, 3);
    assert_eq!(bundle["format"], "aegis-ledger-bundle/1");
    let text = Bundle::build(
        &chain(1, 3),
        origin(&chain(1, 3), BundleFilters::default()),
        &key(),
    )
    .expect("build")
    .to_text();
    let members = [
        "\"vault_id\"",
        "\"vault_name\"",
        "\"first_id\"",
        "\"last_id\"",
        "\"count\"",
        "\"contiguous\"",
        "\"filters\"",
        "\"content_digest\"",
        "\"chain\"",
        "\"ledger_head\"",
        "\"created_at\"",
        "\"public_key\"",
        "\"key_id\"",
    ];
    let positions: Vec<usize> = members
        .iter()
        .map(|m| text.find(m).unwrap_or_else(|| panic!("{m} missing")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(
        bundle["manifest"]["filters"],
        json!({"service": null, "agent": null, "since": null, "until": null})
    );
    let entries = chain(1, 3);
    assert_eq!(
        bundle["manifest"]["chain"],
        json!({
            "prev_hash": hex::encode(genesis(&VAULT)),
            "head_hash": hex::encode(entries[2].hash()),
        })
    );
    assert_eq!(
        bundle["manifest"]["public_key"],
        json!(format_public_key(&key().public_key()))
    );
    assert!(
        bundle["signature"]
            .as_str()
            .is_some_and(|s| s.starts_with("ed25519:"))
    );
}

#[test]
fn content_digest_is_sha256_over_each_entry_jcs_and_a_newline() {
    let entries = chain(1, 4);
    let mut expected = Vec::new();
    for entry in &entries {
        expected.extend_from_slice(jcs::serialize(&entry.to_json()).as_bytes());
        expected.push(b'\n');
    }
    let hash = digest::digest(&digest::SHA256, &expected);
    let bundle =
        Bundle::build(&entries, origin(&entries, BundleFilters::default()), &key()).expect("build");
    assert_eq!(
        bundle.content_digest_text(),
        format!("sha256:{}", hex::encode(hash.as_ref()))
    );
}

#[test]
fn the_signature_covers_the_jcs_of_the_manifest() {
    let bundle = bundle_json(1, 3);
    let message = jcs::serialize(&bundle["manifest"]);
    let signature = parse_signature(bundle["signature"].as_str().expect("text")).expect("sig");
    assert!(verify_checkpoint(
        &key().public_key(),
        message.as_bytes(),
        &signature
    ));
}

#[test]
fn the_manifest_round_trips_through_json() {
    let entries = chain(2, 9);
    let filters = BundleFilters {
        service: Some("github".into()),
        since: Some(Timestamp::from_millis(T0)),
        blocked: true,
        ..BundleFilters::default()
    };
    let bundle = Bundle::build(&entries, origin(&entries, filters), &key()).expect("build");
    let value = bundle.manifest().to_value();
    assert_eq!(value["filters"]["blocked"], true);
    assert!(
        value["filters"].get("system").is_none(),
        "unset flags omitted"
    );
    assert_eq!(
        &BundleManifest::from_value(&value).expect("read back"),
        bundle.manifest()
    );
}

// ---------------------------------------------------------------------------------------------
// Edited entries

#[test]
fn editing_any_entry_field_is_a_hash_mismatch_and_a_digest_mismatch() {
    // Position 6 holds entry 6: a request (ids divisible by 4 are system entries).
    let edits: [(&str, Value); 21] = [
        ("ts", json!("2026-03-01T09:30:01.125Z")),
        ("kind", json!("request_end")),
        ("outcome", json!("blocked")),
        ("event", json!("gate_started")),
        ("request_id", json!("0195f0a0-0000-7000-8000-ffffffffffff")),
        ("via", json!("mcp")),
        ("instance", json!("gate-2")),
        ("actor", json!("mallory")),
        ("agent", json!("other")),
        ("credential", json!("other")),
        ("service", json!("slack")),
        ("method", json!("POST")),
        ("target_host", json!("evil.example")),
        ("path", json!("/admin")),
        ("status_code", json!(201)),
        ("denial_code", json!("domain_blocked")),
        ("latency_ms", json!(1)),
        ("bytes_in", json!(9)),
        ("bytes_out", json!(9)),
        ("detail", json!({"policy_rule": "anything"})),
        ("prev_hash", json!(hex::encode([5u8; 32]))),
    ];
    for (field, value) in edits {
        let mut bundle = bundle_json(1, 10);
        assert_ne!(bundle["entries"][5][field], value, "{field} really changes");
        bundle["entries"][5][field] = value;
        let found = texts(&bundle);
        assert!(
            found.contains(&"content digest mismatch".to_owned()),
            "{field}: {found:?}"
        );
        assert!(
            found.contains(&"entry 6 (position 6): hash mismatch".to_owned()),
            "{field}: {found:?}"
        );
    }
}

#[test]
fn editing_an_entry_id_or_hash_is_found() {
    let mut bundle = bundle_json(1, 10);
    bundle["entries"][5]["id"] = json!(60);
    let found = problems(&bundle);
    assert!(found.contains(&BundleProblem::HashMismatch {
        id: 60,
        position: 6
    }));
    assert!(found.contains(&BundleProblem::OrderChanged { position: 6 }));

    let mut bundle = bundle_json(1, 10);
    bundle["entries"][5]["hash"] = json!(hex::encode([6u8; 32]));
    let found = problems(&bundle);
    assert!(found.contains(&BundleProblem::HashMismatch { id: 6, position: 6 }));
    assert!(
        found.contains(&BundleProblem::PrevHashMismatch { id: 7, position: 7 }),
        "{found:?}"
    );
}

#[test]
fn an_entry_that_is_not_an_entry_is_unreadable() {
    let mut bundle = bundle_json(1, 5);
    bundle["entries"][2]["status_code"] = json!("two hundred");
    bundle["entries"][3] = json!("nothing");
    let found = texts(&bundle);
    assert!(
        found
            .iter()
            .any(|t| t.starts_with("entry 3 (position 3): unreadable: ")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|t| t.starts_with("entry at position 4: unreadable: ")),
        "{found:?}"
    );
}

#[test]
fn reordering_entries_names_the_first_position_out_of_order() {
    let mut bundle = bundle_json(1, 20);
    let entries = bundle["entries"].as_array_mut().expect("entries");
    entries.swap(16, 17);
    let found = problems(&bundle);
    assert!(found.contains(&BundleProblem::DigestMismatch));
    assert!(found.contains(&BundleProblem::OrderChanged { position: 17 }));
    assert!(
        texts(&bundle).contains(&"entry order changed at position 17".to_owned()),
        "{found:?}"
    );
    assert!(found.contains(&BundleProblem::PrevHashMismatch {
        id: 18,
        position: 17
    }));
    assert!(
        !found
            .iter()
            .any(|p| matches!(p, BundleProblem::HashMismatch { .. })),
        "each entry is still intact on its own: {found:?}"
    );
}

#[test]
fn dropping_an_entry_is_a_count_mismatch_and_a_gap() {
    let mut bundle = bundle_json(1, 10);
    bundle["entries"].as_array_mut().expect("entries").remove(4);
    let found = texts(&bundle);
    for expected in [
        "content digest mismatch",
        "count mismatch: manifest 10, entries 9",
        "missing entries 5–5",
        "entry 6 (position 5): prev_hash mismatch",
    ] {
        assert!(
            found.contains(&expected.to_owned()),
            "{expected}: {found:?}"
        );
    }
}

#[test]
fn dropping_the_first_or_last_entry_breaks_the_id_range_and_the_ends() {
    let mut bundle = bundle_json(1, 10);
    bundle["entries"].as_array_mut().expect("entries").remove(0);
    let found = texts(&bundle);
    assert!(found.contains(&"first_id mismatch: manifest 1, entries 2".to_owned()));
    assert!(
        found.contains(&"entry 2 (position 1): prev_hash differs from chain.prev_hash".to_owned())
    );

    let mut bundle = bundle_json(1, 10);
    bundle["entries"].as_array_mut().expect("entries").pop();
    let found = texts(&bundle);
    assert!(found.contains(&"last_id mismatch: manifest 10, entries 9".to_owned()));
    assert!(found.contains(&"last entry hash differs from chain.head_hash".to_owned()));
}

#[test]
fn a_duplicated_entry_is_named() {
    let mut bundle = bundle_json(1, 5);
    let copy = bundle["entries"][2].clone();
    bundle["entries"]
        .as_array_mut()
        .expect("entries")
        .insert(3, copy);
    assert!(problems(&bundle).contains(&BundleProblem::DuplicateEntry { id: 3 }));
}

#[test]
fn problems_are_all_collected_not_just_the_first() {
    let mut bundle = bundle_json(1, 10);
    bundle["entries"][1]["agent"] = json!("x");
    bundle["entries"][7]["method"] = json!("PUT");
    bundle["manifest"]["vault_name"] = json!("other");
    let found = texts(&bundle);
    assert_eq!(
        found,
        [
            "manifest signature invalid",
            "content digest mismatch",
            "entry 2 (position 2): hash mismatch",
            "entry 8 (position 8): hash mismatch",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Edited manifest, signature and key

#[test]
fn editing_any_manifest_member_invalidates_the_signature() {
    let edits: [(&[&str], Value); 18] = [
        (&["vault_id"], json!("00000000-0000-4000-8000-000000000000")),
        (&["vault_name"], json!("prod")),
        (&["first_id"], json!(2)),
        (&["last_id"], json!(9)),
        (&["count"], json!(9)),
        (&["contiguous"], json!(false)),
        (&["filters", "service"], json!("github")),
        (&["filters", "agent"], json!("builder")),
        (&["filters", "since"], json!("2026-01-01T00:00:00.000Z")),
        (&["filters", "until"], json!("2026-01-01T00:00:00.000Z")),
        (&["content_digest"], json!(format_digest(&[1; 32]))),
        (&["chain", "prev_hash"], json!(hex::encode([1u8; 32]))),
        (&["chain", "head_hash"], json!(hex::encode([1u8; 32]))),
        (&["ledger_head", "id"], json!(99)),
        (&["ledger_head", "hash"], json!(hex::encode([1u8; 32]))),
        (&["created_at"], json!("2026-01-01T00:00:00.000Z")),
        (
            &["public_key"],
            json!(format_public_key(&other_key().public_key())),
        ),
        (&["key_id"], json!("0000000000000000")),
    ];
    for (path, value) in edits {
        let mut bundle = bundle_json(1, 10);
        let mut target = &mut bundle["manifest"];
        for part in path {
            target = &mut target[*part];
        }
        assert_ne!(*target, value, "{path:?} really changes");
        *target = value;
        let found = problems(&bundle);
        assert!(
            found.contains(&BundleProblem::SignatureInvalid),
            "{path:?}: {found:?}"
        );
        // Without a trusted key, the embedded one is used and the edit is still found.
        let untrusted = verify_bundle(&bundle, None).problems;
        assert!(
            !untrusted.is_empty() && untrusted != [BundleProblem::PublicKeyDiffers],
            "{path:?}: {untrusted:?}"
        );
    }
}

#[test]
fn a_manifest_member_added_or_removed_is_found() {
    let mut bundle = bundle_json(1, 3);
    bundle["manifest"]["note"] = json!("hi");
    let found = problems(&bundle);
    assert!(
        matches!(
            found.first(),
            Some(BundleProblem::ManifestUnreadable { .. })
        ),
        "{found:?}"
    );
    assert!(found.contains(&BundleProblem::SignatureInvalid));

    let mut bundle = bundle_json(1, 3);
    bundle["manifest"]
        .as_object_mut()
        .expect("object")
        .remove("count");
    let found = problems(&bundle);
    assert!(
        found.contains(&BundleProblem::SignatureInvalid),
        "{found:?}"
    );
}

#[test]
fn editing_the_signature_fails() {
    let mut bundle = bundle_json(1, 3);
    let signature = bundle["signature"].as_str().expect("text").to_owned();
    // Change a character in the middle: every bit of it is signature data.
    let middle = signature.len() / 2;
    let flipped = if &signature[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let edited = format!(
        "{}{flipped}{}",
        &signature[..middle],
        &signature[middle + 1..]
    );
    bundle["signature"] = json!(edited);
    assert_eq!(texts(&bundle), ["manifest signature invalid"]);

    bundle["signature"] = json!("ed25519:not-a-signature");
    assert_eq!(
        texts(&bundle),
        ["signature is not ed25519:<base64url of 64 bytes>"]
    );
}

#[test]
fn a_wrong_trusted_key_is_named() {
    let bundle = bundle_json(1, 3);
    let report = verify_bundle(&bundle, Some(&other_key().public_key()));
    let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "public key differs from --public-key",
            "manifest signature invalid"
        ]
    );
}

#[test]
fn a_forged_bundle_resigned_with_another_key_passes_only_without_the_trusted_key() {
    let mut bundle = bundle_json(1, 5);
    bundle["entries"].as_array_mut().expect("entries").remove(4);
    recompute_digest(&mut bundle);
    bundle["manifest"]["last_id"] = json!(4);
    let head = bundle["entries"][3]["hash"].clone();
    bundle["manifest"]["chain"]["head_hash"] = head;
    resign(&mut bundle, &other_key());
    assert_eq!(verify_bundle(&bundle, None).problems, [], "integrity only");
    assert_eq!(
        problems(&bundle),
        [
            BundleProblem::PublicKeyDiffers,
            BundleProblem::SignatureInvalid
        ]
    );
}

#[test]
fn an_unknown_format_or_shape_stops_the_checks() {
    let mut bundle = bundle_json(1, 3);
    bundle["format"] = json!("aegis-ledger-bundle/2");
    assert_eq!(
        texts(&bundle),
        ["unknown format \"aegis-ledger-bundle/2\"; expected aegis-ledger-bundle/1"]
    );
    assert_eq!(
        problems(&json!({"format": BUNDLE_FORMAT, "entries": {}})),
        [
            BundleProblem::Structure { member: "manifest" },
            BundleProblem::Structure {
                member: "signature"
            },
            BundleProblem::Structure { member: "entries" },
        ]
    );
    let mut bundle = bundle_json(1, 3);
    bundle["extra"] = json!(1);
    assert_eq!(
        texts(&bundle),
        ["bundle has an unexpected member \"extra\""]
    );
}

// ---------------------------------------------------------------------------------------------
// Filtered bundles

fn filtered() -> (Vec<LedgerEntry>, Value) {
    let entries: Vec<LedgerEntry> = chain(1, 12)
        .into_iter()
        .filter(|e| e.content().service() == Some("github"))
        .collect();
    let filters = BundleFilters {
        service: Some("github".into()),
        ..BundleFilters::default()
    };
    let bundle = Bundle::build(&entries, origin(&entries, filters), &key()).expect("build");
    let value = serde_json::from_str(&bundle.to_text()).expect("json");
    (entries, value)
}

#[test]
fn a_filtered_bundle_checks_only_entry_hashes_and_the_digest() {
    let (entries, bundle) = filtered();
    let ids: Vec<u64> = entries.iter().map(LedgerEntry::id).collect();
    assert_eq!(
        ids,
        [2, 6, 10],
        "entries that are not neighbours in the chain"
    );
    assert_eq!(bundle["manifest"]["contiguous"], false);
    assert_eq!(problems(&bundle), []);

    let mut edited = bundle.clone();
    edited["entries"][1]["path"] = json!("/elsewhere");
    assert_eq!(
        texts(&edited),
        [
            "content digest mismatch",
            "entry 6 (position 2): hash mismatch"
        ]
    );

    let mut dropped = bundle;
    dropped["entries"]
        .as_array_mut()
        .expect("entries")
        .remove(1);
    assert_eq!(
        texts(&dropped),
        [
            "content digest mismatch",
            "count mismatch: manifest 3, entries 2"
        ],
        "no gap or link problems for a filtered bundle"
    );
}

// ---------------------------------------------------------------------------------------------
// Building

#[test]
fn building_refuses_no_entries_and_entries_that_do_not_verify() {
    let key = key();
    let entries = chain(1, 3);
    let origin = origin(&entries, BundleFilters::default());
    assert_eq!(
        Bundle::build(&[], origin.clone(), &key),
        Err(BundleError::Empty)
    );

    let mut broken = entries.clone();
    broken.remove(1);
    assert_eq!(
        Bundle::build(&broken, origin.clone(), &key).map(|_| ()),
        Err(BundleError::Chain(
            crate::ledger::ChainError::MissingEntries {
                id: 3,
                first: 2,
                last: 2
            }
        ))
    );

    let forged = LedgerEntry::from_stored(
        2,
        entries[1].ts(),
        content(99),
        *entries[1].prev_hash(),
        *entries[1].hash(),
    );
    let tampered = vec![entries[0].clone(), forged, entries[2].clone()];
    assert_eq!(
        Bundle::build(&tampered, origin.clone(), &key).map(|_| ()),
        Err(BundleError::Chain(
            crate::ledger::ChainError::HashMismatch { id: 2 }
        ))
    );
    let mut filtered_origin = origin;
    filtered_origin.contiguous = false;
    assert_eq!(
        Bundle::build(&tampered, filtered_origin, &key).map(|_| ()),
        Err(BundleError::Chain(
            crate::ledger::ChainError::HashMismatch { id: 2 }
        ))
    );
}

#[test]
fn spec_problem_texts_are_exact() {
    let cases = [
        (BundleProblem::DigestMismatch, "content digest mismatch"),
        (
            BundleProblem::SignatureInvalid,
            "manifest signature invalid",
        ),
        (
            BundleProblem::CountMismatch {
                manifest: 500,
                entries: 499,
            },
            "count mismatch: manifest 500, entries 499",
        ),
        (
            BundleProblem::HashMismatch {
                id: 342,
                position: 242,
            },
            "entry 342 (position 242): hash mismatch",
        ),
        (
            BundleProblem::OrderChanged { position: 17 },
            "entry order changed at position 17",
        ),
        (
            BundleProblem::PublicKeyDiffers,
            "public key differs from --public-key",
        ),
    ];
    for (problem, text) in cases {
        assert_eq!(problem.to_string(), text);
    }
}
