"""Computes envelope_v1.json independently of the Rust code (pip install argon2-cffi cryptography)."""
import json

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

master = bytes(range(32))
salt = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
vault_id = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
cred_id = bytes.fromhex("00112233445566778899aabbccddeeff")
m, t, p = 19456, 2, 1
kek = hash_secret_raw(master, salt, time_cost=t, memory_cost=m, parallelism=p,
                      hash_len=32, type=Type.ID, version=19)


def subkey(purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=vault_id,
                info=f"aegis/v1/{purpose}".encode()).derive(kek)


nonce = bytes.fromhex("c0c1c2c3c4c5c6c7c8c9cacb")
plain = b"sk-test-vector-0123456789"
aad = b"aegis/v1/cred" + vault_id + cred_id + b"secret"
envelope = bytes([1]) + nonce + AESGCM(subkey("credential-encryption")).encrypt(nonce, plain, aad)
mac = hmac.HMAC(subkey("row-integrity"), hashes.SHA256())
mac.update(b"row")
json.dump({
    "description": "v1 credential envelope: version 0x01 || nonce(12) || AES-256-GCM ciphertext || tag(16); computed independently with Python argon2-cffi + cryptography",
    "master_key_hex": master.hex(), "salt_hex": salt.hex(),
    "kdf": {"memory_kib": m, "iterations": t, "parallelism": p},
    "vault_id_hex": vault_id.hex(), "credential_id_hex": cred_id.hex(), "field": "secret",
    "plaintext": plain.decode(), "key_check_hex": subkey("key-check").hex(),
    "envelope_hex": envelope.hex(), "row_mac_of_row_hex": mac.finalize().hex(),
}, open("envelope_v1.json", "w"), indent=2)
