//! Fixed vectors for the version-1 ledger format (SPEC.md §15.1–§15.3): entry truncation, the
//! canonical encoding, the hash chain, the checkpoint message and signature, and the wrapped
//! signing seed. `tests/vectors/ledger_v1.json` was computed independently by
//! `tests/vectors/make_ledger_v1.py` (Python hashlib/json + cryptography), written from the
//! specification; this test rebuilds every value with the Rust code and compares.

use aegis_core::ledger::{
    ChainAnchor, EntryContent, EntryKind, LedgerEntry, LedgerSigningKey, Outcome, SystemEvent, Via,
    chain_hash, checkpoint_message, encode, format_public_key, genesis, key_id, parse_public_key,
    unwrap_seed, verify_chain_from, verify_checkpoint,
};
use aegis_core::timestamp::Timestamp;
use serde_json::Value;
use zeroize::Zeroizing;

fn vector() -> Value {
    serde_json::from_str(include_str!("vectors/ledger_v1.json")).expect("vector is JSON")
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn int(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn hex_of(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(v, key).expect(key)).expect("hex")
}

fn array32(bytes: Vec<u8>) -> [u8; 32] {
    bytes.try_into().expect("32 bytes")
}

fn vault_id(v: &Value) -> uuid::Uuid {
    uuid::Uuid::parse_str(text(v, "vault_id").expect("vault_id")).expect("uuid")
}

/// A builder step that sets one text field.
type Setter = fn(EntryContent, &str) -> EntryContent;

/// Builds the content from the builder inputs exactly as the gate or a command would.
fn content(input: &Value) -> EntryContent {
    let kind = EntryKind::parse(text(input, "kind").expect("kind")).expect("known kind");
    let via = Via::parse(text(input, "via").expect("via")).expect("known via");
    let mut c = EntryContent::new(kind, via, text(input, "instance").expect("instance"));
    if let Some(o) = text(input, "outcome") {
        c = c.with_outcome(Outcome::parse(o).expect("known outcome"));
    }
    if let Some(e) = text(input, "event") {
        c = c.with_event(SystemEvent::parse(e).expect("known event"));
    }
    let setters: [(&str, Setter); 7] = [
        ("request_id", |c, v| c.with_request_id(v)),
        ("actor", |c, v| c.with_actor(v)),
        ("agent", |c, v| c.with_agent(v)),
        ("credential", |c, v| c.with_credential(v)),
        ("service", |c, v| c.with_service(v)),
        ("method", |c, v| c.with_method(v)),
        ("denial_code", |c, v| c.with_denial_code(v)),
    ];
    for (key, set) in setters {
        if let Some(value) = text(input, key) {
            c = set(c, value);
        }
    }
    if input.get("target_host_input_hex").is_some() {
        c = c.with_target_host(hex_of(input, "target_host_input_hex"));
    }
    if input.get("path_input_hex").is_some() {
        c = c.with_path(&hex_of(input, "path_input_hex"));
    }
    if let Some(status) = int(input, "status_code") {
        c = c.with_status_code(u16::try_from(status).expect("u16"));
    }
    if let Some(n) = int(input, "latency_ms") {
        c = c.with_latency_ms(n);
    }
    if let Some(n) = int(input, "bytes_in") {
        c = c.with_bytes_in(n);
    }
    if let Some(n) = int(input, "bytes_out") {
        c = c.with_bytes_out(n);
    }
    let Some(Value::Object(detail)) = input.get("detail") else {
        panic!("detail is an object");
    };
    c.with_detail(detail.clone())
}

/// Rebuilds the chain from the inputs, checking each step against the vector.
fn rebuilt_chain(v: &Value) -> Vec<LedgerEntry> {
    let mut prev = genesis(&vault_id(v));
    let mut out = Vec::new();
    for (i, case) in v["entries"].as_array().expect("entries").iter().enumerate() {
        let input = &case["input"];
        let id = int(input, "id").expect("id");
        let ts = Timestamp::from_millis(input["ts_millis"].as_i64().expect("ts"));
        let entry = LedgerEntry::chained(id, ts, content(input), prev);
        assert_eq!(
            entry.content().detail_jcs(),
            text(case, "detail_jcs").expect("detail_jcs"),
            "entry {i}: detail JCS"
        );
        assert_eq!(
            hex::encode(encode(&entry)),
            text(case, "encoding_hex").expect("encoding"),
            "entry {i}: encoding"
        );
        assert_eq!(
            prev.to_vec(),
            hex_of(case, "prev_hash_hex"),
            "entry {i}: prev_hash"
        );
        assert_eq!(
            entry.hash().to_vec(),
            hex_of(case, "hash_hex"),
            "entry {i}: hash"
        );
        assert_eq!(chain_hash(&prev, &entry), *entry.hash());
        prev = *entry.hash();
        out.push(entry);
    }
    out
}

#[test]
fn genesis_matches_the_reference() {
    let v = vector();
    assert_eq!(genesis(&vault_id(&v)).to_vec(), hex_of(&v, "genesis_hex"));
}

#[test]
fn entries_encode_and_hash_as_the_reference() {
    let v = vector();
    let entries = rebuilt_chain(&v);
    assert_eq!(entries.len(), 3);
    let verified =
        verify_chain_from(entries.iter(), ChainAnchor::genesis(&vault_id(&v))).expect("chain");
    assert_eq!(verified.count, 3);
    assert_eq!(verified.head.to_vec(), hex_of(&v, "head_hex"));
}

#[test]
fn truncation_rules_give_the_reference_fields() {
    let v = vector();
    let entries = rebuilt_chain(&v);
    for (entry, case) in entries
        .iter()
        .zip(v["entries"].as_array().expect("entries"))
    {
        assert_eq!(entry.to_json(), case["fields"], "entry {}", entry.id());
    }
    let blocked = entries[1].content();
    assert_eq!(blocked.service().map(str::len), Some(63));
    assert_eq!(blocked.method(), Some("PROPFIND-EXTENDE"));
    assert_eq!(blocked.path(), Some("/a/%2e%2e/\u{fffd}(\u{fffd}"));
    assert_eq!(
        entries[0].content().path(),
        Some("/repos/acme/widgets/issues")
    );
}

#[test]
fn reference_json_entries_read_back_and_verify() {
    let v = vector();
    let read: Vec<LedgerEntry> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|case| serde_json::from_value(case["fields"].clone()).expect("entry JSON"))
        .collect();
    assert_eq!(read, rebuilt_chain(&v));
    let verified =
        verify_chain_from(read.iter(), ChainAnchor::genesis(&vault_id(&v))).expect("chain");
    assert_eq!(verified.head.to_vec(), hex_of(&v, "head_hex"));
}

#[test]
fn checkpoint_message_and_signature_match_the_reference() {
    let v = vector();
    let cp = &v["checkpoint"];
    let head = array32(hex_of(cp, "hash_hex"));
    let ts = Timestamp::from_millis(cp["ts_millis"].as_i64().expect("ts"));
    let message = checkpoint_message(&vault_id(&v), int(cp, "entry_id").expect("id"), &head, ts);
    assert_eq!(
        String::from_utf8(message.clone()).expect("utf-8"),
        text(cp, "message").expect("message")
    );

    let seed = array32(hex_of(cp, "seed_hex"));
    let key = LedgerSigningKey::from_seed(Zeroizing::new(seed)).expect("key");
    let public = key.public_key();
    assert_eq!(public.to_vec(), hex_of(cp, "public_key_hex"));
    assert_eq!(
        format_public_key(&public),
        text(cp, "public_key").expect("pk")
    );
    assert_eq!(
        parse_public_key(text(cp, "public_key").expect("pk")),
        Some(public)
    );
    assert_eq!(key_id(&public), text(cp, "key_id").expect("key_id"));
    let signature = hex_of(cp, "signature_hex");
    assert_eq!(key.sign(&message).to_vec(), signature);
    assert!(verify_checkpoint(&public, &message, &signature));
}

#[test]
fn reference_wrapped_seed_unwraps_to_the_checkpoint_seed() {
    let v = vector();
    let wrapped = &v["wrapped_seed"];
    let subkey = array32(hex_of(wrapped, "subkey_hex"));
    let envelope = hex_of(wrapped, "envelope_hex");
    let seed = unwrap_seed(&subkey, &vault_id(&v), &envelope).expect("unwraps");
    assert_eq!(seed.to_vec(), hex_of(&v["checkpoint"], "seed_hex"));
    let key = LedgerSigningKey::unwrap(&subkey, &vault_id(&v), &envelope).expect("key");
    assert_eq!(
        key.public_key().to_vec(),
        hex_of(&v["checkpoint"], "public_key_hex")
    );
    assert!(unwrap_seed(&subkey, &uuid::Uuid::nil(), &envelope).is_err());
}
