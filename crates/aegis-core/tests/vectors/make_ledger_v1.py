"""Computes ledger_v1.json independently of the Rust code, from the text of SPEC.md §15.

Standard library only, plus `cryptography` for the Ed25519 checkpoint signature and the
AES-256-GCM wrapped seed (pip install cryptography). Run from this directory:

    python3 make_ledger_v1.py

Everything below is written from the specification, not from the Rust implementation:
the truncation rules of §15.1, the version-1 encoding and hash chain of §15.2, RFC 8785 (JCS)
for `detail` and the checkpoint message, and the key formats of §15.3.
"""
import base64
import datetime
import hashlib
import json
import math

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VAULT_ID = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")


# --- RFC 8785 ------------------------------------------------------------------------------

def es_number(x: float) -> str:
    """ECMAScript Number.prototype.toString for a finite double (ECMA-262 Number::toString)."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("JCS has no NaN or Infinity")
    if x == 0:
        return "0"  # also -0
    sign = "-" if x < 0 else ""
    text = repr(abs(x))  # Python's repr is the shortest round-tripping decimal
    mantissa, _, exponent = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    point = len(int_part) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point  # value = 0.digits * 10^n = digits * 10^(n - k)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    e_text = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + e_text
    return sign + digits[0] + "." + digits[1:] + "e" + e_text


def jcs_string(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20:
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return es_number(float(value))  # JCS numbers are IEEE doubles
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        # Member names sorted by UTF-16 code units; big-endian UTF-16 bytes sort the same way.
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(jcs_string(n) + ":" + jcs(value[n]) for n in names) + "}"
    raise TypeError(type(value))


# --- §15.1 truncation ----------------------------------------------------------------------

def bounded(raw: bytes, limit: int) -> str:
    """Invalid UTF-8 to U+FFFD, then at most `limit` bytes, cut at a character boundary."""
    encoded = raw.decode("utf-8", errors="replace").encode("utf-8")
    if len(encoded) <= limit:
        return encoded.decode("utf-8")
    cut = limit
    while cut > 0 and (encoded[cut] & 0xC0) == 0x80:  # continuation byte: inside a character
        cut -= 1
    return encoded[:cut].decode("utf-8")


def path_field(raw: bytes) -> str:
    return bounded(raw.split(b"?", 1)[0], 2048)


def detail_field(detail: dict) -> dict:
    text = jcs(detail)
    if len(text.encode("utf-8")) <= 4096:
        return detail
    return {"truncated": True, "original_bytes": len(text.encode("utf-8"))}


# --- §15.2 encoding and chain ----------------------------------------------------------------

def ts_text(millis: int) -> str:
    at = datetime.datetime.fromtimestamp(millis // 1000, tz=datetime.timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (millis % 1000)


def enc_int(v):
    return b"\x00" if v is None else b"\x01" + v.to_bytes(8, "big")


def enc_str(v):
    if v is None:
        return b"\x00"
    raw = v.encode("utf-8")
    return b"\x01" + len(raw).to_bytes(4, "big") + raw


INT_FIELDS = {"id", "status_code", "latency_ms", "bytes_in", "bytes_out"}
ORDER = ["id", "ts", "kind", "outcome", "event", "request_id", "via", "instance", "actor",
         "agent", "credential", "service", "method", "target_host", "path", "status_code",
         "denial_code", "latency_ms", "bytes_in", "bytes_out", "detail"]


def encode(fields: dict) -> bytes:
    out = b"\x01"
    for name in ORDER:
        value = fields[name]
        if name == "detail":
            out += enc_str(jcs(value))
        elif name in INT_FIELDS:
            out += enc_int(value)
        else:
            out += enc_str(value)
    return out


def normalise(inp: dict) -> dict:
    """Fields 1-21 from the builder inputs, applying the §15.1 rules."""
    def text(name, limit=1024):
        v = inp.get(name)
        return None if v is None else bounded(v.encode("utf-8"), limit)

    host_hex = inp.get("target_host_input_hex")
    path_hex = inp.get("path_input_hex")
    return {
        "id": inp["id"],
        "ts": ts_text(inp["ts_millis"]),
        "kind": inp["kind"],
        "outcome": inp.get("outcome"),
        "event": inp.get("event"),
        "request_id": text("request_id"),
        "via": inp["via"],
        "instance": text("instance"),
        "actor": text("actor"),
        "agent": text("agent"),
        "credential": text("credential"),
        "service": text("service", 64),
        "method": text("method", 16),
        "target_host": None if host_hex is None else bounded(bytes.fromhex(host_hex), 255),
        "path": None if path_hex is None else path_field(bytes.fromhex(path_hex)),
        "status_code": inp.get("status_code"),
        "denial_code": text("denial_code"),
        "latency_ms": inp.get("latency_ms"),
        "bytes_in": inp.get("bytes_in"),
        "bytes_out": inp.get("bytes_out"),
        "detail": detail_field(inp["detail"]),
    }


# --- the three entries -----------------------------------------------------------------------

INPUTS = [
    {   # a request allowed, with a query string to drop and a detail exercising JCS
        "id": 1, "ts_millis": 1772357400125, "kind": "request", "outcome": "allowed",
        "request_id": "0195f0a0-7c1e-7d2a-9b3c-4d5e6f708192", "via": "gate",
        "instance": "gate-7f3a", "agent": "builder", "credential": "github",
        "service": "github", "method": "POST",
        "target_host_input_hex": b"api.github.com".hex(),
        "path_input_hex": b"/repos/acme/widgets/issues?access_token=ghp_secret&state=open".hex(),
        "status_code": 201, "latency_ms": 87, "bytes_in": 342, "bytes_out": 1290,
        "detail": {
            "policy_rule": "issues-write",
            "response_redactions": 1,
            "findings": [{"detector": "email", "location": "body", "offset": 17}],
            "note": "quote \" backslash \\ slash / nl \n tab \t bs \b ff \f cr \r "
                    "ctl \u0001\u001f del \u007f ls \u2028 \u00e9 \u20ac \U0001F600",
            "numbers": [0.1, 1e21, 1e20, 1e-7, 1e-6, 123.456, -0.0, 5e-324, -1.5e300,
                        333333333.3333333, 0.30000000000000004, 4.5, -42],
            "big": 9007199254740993,
            "\u20ac": "euro sign",
            "\U0001F600": "emoji, sorts before U+E000 in UTF-16",
            "\ue000": "private use",
            "\u00f6": "o-umlaut",
            "Z": True,
            "a": None,
            "nested": {"b": [], "a": {}},
        },
    },
    {   # a request blocked: mostly nulls, truncation at a character boundary, invalid UTF-8
        "id": 2, "ts_millis": 1772357400125, "kind": "request", "outcome": "blocked",
        "via": "mcp", "instance": "mcp-01",
        "service": "\u20ac" * 22,  # 66 bytes; the 22nd euro sign straddles byte 64
        "method": "PROPFIND-EXTENDED",
        "target_host_input_hex": b"evil.example.com\xff:443".hex(),
        "path_input_hex": b"/a/%2e%2e/\xc3(\xe2\x82?q=\xff".hex(),
        "status_code": 403, "denial_code": "domain_blocked", "latency_ms": 3,
        "detail": {},
    },
    {   # a system event
        "id": 3, "ts_millis": 1772357461000, "kind": "system", "event": "credential_rotated",
        "via": "cli", "instance": "cli-4242", "actor": "alice", "credential": "github",
        "detail": {"changed_fields": ["secret", "expires_at"]},
    },
]


def main() -> None:
    genesis = hashlib.sha256(b"aegis-ledger-genesis/1" + VAULT_ID).digest()
    prev = genesis
    entries = []
    for inp in INPUTS:
        fields = normalise(inp)
        encoding = encode(fields)
        digest = hashlib.sha256(prev + encoding).digest()
        exported = dict(fields)
        exported["prev_hash"] = prev.hex()
        exported["hash"] = digest.hex()
        entries.append({
            "input": inp,
            "fields": exported,
            "detail_jcs": jcs(fields["detail"]),
            "encoding_hex": encoding.hex(),
            "prev_hash_hex": prev.hex(),
            "hash_hex": digest.hex(),
        })
        prev = digest

    seed = bytes(range(0x20, 0x40))
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    vault_text = "%s-%s-%s-%s-%s" % (VAULT_ID[:4].hex(), VAULT_ID[4:6].hex(), VAULT_ID[6:8].hex(),
                                     VAULT_ID[8:10].hex(), VAULT_ID[10:].hex())
    head_ts = INPUTS[-1]["ts_millis"]
    message = jcs({"type": "aegis-checkpoint/1", "vault_id": vault_text, "entry_id": 3,
                   "hash": prev.hex(), "ts": ts_text(head_ts)}).encode("utf-8")

    subkey = bytes(range(0x40, 0x60))
    nonce = bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadb")
    aad = b"aegis/v1/ledger-key" + VAULT_ID
    envelope = b"\x01" + nonce + AESGCM(subkey).encrypt(nonce, seed, aad)

    vector = {
        "description": "ledger v1 (SPEC.md §15.1-§15.3): encodings, hash chain, checkpoint and "
                       "wrapped signing seed, computed independently by make_ledger_v1.py "
                       "(Python hashlib/json + cryptography)",
        "vault_id": vault_text,
        "genesis_hex": genesis.hex(),
        "entries": entries,
        "head_hex": prev.hex(),
        "checkpoint": {
            "entry_id": 3,
            "hash_hex": prev.hex(),
            "ts_millis": head_ts,
            "message": message.decode("utf-8"),
            "seed_hex": seed.hex(),
            "public_key_hex": public.hex(),
            "public_key": "ed25519:" + base64.urlsafe_b64encode(public).rstrip(b"=").decode(),
            "key_id": hashlib.sha256(public).digest()[:8].hex(),
            "signature_hex": key.sign(message).hex(),
        },
        "wrapped_seed": {
            "subkey_hex": subkey.hex(),
            "nonce_hex": nonce.hex(),
            "aad_hex": aad.hex(),
            "envelope_hex": envelope.hex(),
        },
    }
    with open("ledger_v1.json", "w", encoding="utf-8") as out:
        json.dump(vector, out, indent=2)
        out.write("\n")


if __name__ == "__main__":
    main()
