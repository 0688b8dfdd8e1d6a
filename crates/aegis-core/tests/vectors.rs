//! Fixed vectors for formats that must never change silently: the v1 key hierarchy (Argon2id →
//! HKDF subkeys → key-check value), the credential envelope layout and the row MAC. The vector
//! was computed independently with Python (argon2-cffi + cryptography); see
//! `tests/vectors/README.md`.

use aegis_core::crypto::{ENVELOPE_VERSION, KdfParams, MasterKey, SecretField, VaultKeys};

fn vector() -> serde_json::Value {
    serde_json::from_str(include_str!("vectors/envelope_v1.json")).expect("vector is JSON")
}

fn hex_field(v: &serde_json::Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().expect(key)).expect("hex")
}

fn array16(bytes: &[u8]) -> [u8; 16] {
    bytes.try_into().expect("16 bytes")
}

fn keys(v: &serde_json::Value) -> VaultKeys {
    let master: [u8; 32] = hex_field(v, "master_key_hex").try_into().expect("32 bytes");
    let kdf = KdfParams {
        memory_kib: u32::try_from(v["kdf"]["memory_kib"].as_u64().expect("m")).expect("u32"),
        iterations: u32::try_from(v["kdf"]["iterations"].as_u64().expect("t")).expect("u32"),
        parallelism: u32::try_from(v["kdf"]["parallelism"].as_u64().expect("p")).expect("u32"),
    };
    VaultKeys::derive(
        &MasterKey::from_bytes(master),
        &hex_field(v, "salt_hex"),
        kdf,
        array16(&hex_field(v, "vault_id_hex")),
    )
    .expect("derive")
}

#[test]
fn key_check_value_matches_the_reference() {
    let v = vector();
    let keys = keys(&v);
    assert_eq!(
        keys.key_check_value().to_vec(),
        hex_field(&v, "key_check_hex")
    );
}

#[test]
fn reference_envelope_opens_to_the_plaintext() {
    let v = vector();
    let keys = keys(&v);
    let envelope = hex_field(&v, "envelope_hex");
    assert_eq!(envelope[0], ENVELOPE_VERSION);
    assert_eq!(
        envelope.len(),
        1 + 12 + v["plaintext"].as_str().expect("plain").len() + 16
    );
    let plain = keys
        .open_secret(
            array16(&hex_field(&v, "credential_id_hex")),
            SecretField::Secret,
            &envelope,
        )
        .expect("the reference envelope opens");
    assert_eq!(
        plain.as_slice(),
        v["plaintext"].as_str().expect("plain").as_bytes()
    );
}

#[test]
fn our_envelopes_have_the_reference_layout() {
    let v = vector();
    let keys = keys(&v);
    let id = array16(&hex_field(&v, "credential_id_hex"));
    let ours = keys
        .seal_secret(id, SecretField::Secret, b"sk-test-vector-0123456789")
        .expect("seal");
    assert_eq!(ours.len(), hex_field(&v, "envelope_hex").len());
    assert_eq!(ours[0], ENVELOPE_VERSION);
}

#[test]
fn row_mac_matches_the_reference() {
    let v = vector();
    let keys = keys(&v);
    assert_eq!(
        keys.row_mac(b"row").to_vec(),
        hex_field(&v, "row_mac_of_row_hex")
    );
}
