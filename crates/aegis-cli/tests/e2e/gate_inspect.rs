//! Outbound inspection through the real gate (SPEC §14): another credential's secret in any
//! form, key formats, compressed bodies and compression bombs are refused before anything
//! reaches the upstream; ordinary bodies pass; `warn` forwards and records; `redact` masks PII.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::{Curl, World, curl};

const SECRET: &str = "gate-inspect-own-secret-0001";
const OTHER: &str = "Other/credential+value=42!";

/// A world with `svc` (the credential used) and `other` (whose secret must not leak).
fn world() -> World {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    w.add_bearer("other", "other", OTHER);
    w
}

fn post(base: &str, body: &[u8], headers: &[&str]) -> Curl {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("body");
    std::fs::write(&file, body).expect("body");
    let data = format!("@{}", file.display());
    let url = format!("{base}/svc/v1/paste");
    let mut args = vec!["--data-binary", data.as_str()];
    for header in headers {
        args.extend(["-H", header]);
    }
    args.push(&url);
    curl(&args)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    compress("gzip", data)
}

/// `data` through `tool -c` (gzip, zstd: real encoders, independent of the gate).
fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(["-q", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} (Debian package {tool}) is needed: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("compressor output");
    writer.join().expect("writer").expect("write");
    out.stdout
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn entries(w: &World) -> Vec<serde_json::Value> {
    let show = w
        .env
        .run(["ledger", "show", "--limit", "1000", "--json"], "");
    assert_eq!(show.code, 0, "{}", show.stderr);
    let all = show.json();
    all.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["kind"] == "request")
        .cloned()
        .collect()
}

/// Key-format samples assembled at run time, so no token-shaped literal sits in the repository.
fn github_token() -> String {
    format!("gh{}_{}", "p", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5")
}

fn aws_key() -> String {
    format!("AK{}{}", "IA", "Z7Q2M4N6P8R1T3V5")
}

#[test]
fn another_credentials_secret_or_a_key_format_is_blocked_in_every_form() {
    let w = world();
    let gate = w.gate(&[]);
    let percent: String = OTHER
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let hex: String = OTHER.bytes().map(|b| format!("{b:02X}")).collect();
    let mut bodies: Vec<(Vec<u8>, Vec<&str>, &str)> = vec![
        (
            format!("{{\"text\":\"{OTHER}\"}}").into_bytes(),
            vec![],
            "vault_secret",
        ),
        (format!("q={percent}").into_bytes(), vec![], "vault_secret"),
        (format!("digest={hex}").into_bytes(), vec![], "vault_secret"),
        (
            gzip(format!("{{\"text\":\"{OTHER}\"}}").as_bytes()),
            vec!["Content-Encoding: gzip"],
            "vault_secret",
        ),
        (
            format!("{{\"token\":\"{}\"}}", github_token()).into_bytes(),
            vec![],
            "github_token",
        ),
        (
            format!("export AWS_ACCESS_KEY_ID={}\n", aws_key()).into_bytes(),
            vec![],
            "aws_access_key",
        ),
    ];
    for pad in ["", "a", "ab"] {
        let encoded = base64(format!("{pad}{OTHER} and more").as_bytes());
        bodies.push((
            format!("{{\"file\":\"{encoded}\"}}").into_bytes(),
            vec![],
            "vault_secret",
        ));
    }
    for (body, headers, detector) in &bodies {
        let resp = post(&gate.base, body, headers);
        assert_eq!(resp.status, 403, "{detector}: {}", resp.text());
        let error = resp.json();
        assert_eq!(error["error"]["code"], "body_blocked");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(message.contains(detector), "{message}");
        assert!(message.contains("body"), "{message}");
        assert!(!resp.text().contains("credential+value"), "no secret text");
    }
    // A key in a header is refused too, naming the header.
    let resp = curl(&[
        "-H",
        &format!("X-Note: {}", aws_key()),
        &format!("{}/svc/v1/x", gate.base),
    ]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(
        resp.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("aws_access_key") && m.contains("header:x-note"))
    );
    assert_eq!(w.upstream.request_count(), 0, "nothing left the gate");
    let blocked =
        aegis_test_support::wait_for("an entry per refusal", Duration::from_secs(10), || {
            let blocked: Vec<serde_json::Value> = entries(&w)
                .into_iter()
                .filter(|e| e["denial_code"] == "body_blocked")
                .collect();
            (blocked.len() == bodies.len() + 1).then_some(blocked)
        });
    for entry in &blocked {
        let findings = entry["detail"]["findings"].as_array().expect("findings");
        assert!(!findings.is_empty(), "{entry}");
        assert!(findings[0]["offset"].is_u64());
        let text = entry.to_string();
        assert!(!text.contains("credential+value") && !text.contains("Z7Q2M4N6"));
    }
}

#[test]
fn ordinary_bodies_with_secret_words_ids_hashes_and_images_are_forwarded() {
    let w = world();
    let gate = w.gate(&[]);
    let image = base64(&(0..=255u8).cycle().take(3000).collect::<Vec<u8>>());
    let bodies = [
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"How do I reset my \
         password? The token expired and the secret key rotation failed.\"}]}"
            .to_owned(),
        "{\"title\":\"Key rotation\",\"body\":\"Build 3f2a9c1e8b7d6f5a4c3b2a1f0e9d8c7b6a5f4e3d \
         failed; request 0190f4c2-6a8e-7c31-9d2b-3f5e0b7a1c44\"}"
            .to_owned(),
        format!("{{\"image\":\"data:image/png;base64,{image}\"}}"),
        "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08&api_key_name=prod"
            .to_owned(),
    ];
    for body in &bodies {
        let resp = post(&gate.base, body.as_bytes(), &[]);
        assert_eq!(resp.status, 200, "{body}: {}", resp.text());
        let seen = w.upstream.last_request().expect("forwarded");
        assert_eq!(seen.body, body.as_bytes());
    }
    // A gzip body is scanned decoded and forwarded as it came.
    let packed = gzip(bodies[0].as_bytes());
    let resp = post(&gate.base, &packed, &["Content-Encoding: gzip"]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(w.upstream.last_request().expect("forwarded").body, packed);
}

#[test]
fn warn_mode_forwards_and_records_the_finding() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &[
            "-n",
            "svc",
            "-s",
            "svc",
            "-d",
            &host,
            "--body-inspection",
            "warn",
        ],
        SECRET,
    );
    w.add_bearer("other", "other", OTHER);
    let gate = w.gate(&[]);
    let body = format!("{{\"note\":\"{OTHER}\"}}");
    let resp = post(&gate.base, body.as_bytes(), &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        w.upstream.last_request().expect("forwarded").body_text(),
        body
    );
    let packed = gzip(format!("{{\"token\":\"{}\"}}", github_token()).as_bytes());
    let resp = post(&gate.base, &packed, &["Content-Encoding: gzip"]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let entries =
        aegis_test_support::wait_for("both allowed entries", Duration::from_secs(10), || {
            let found = entries(&w);
            (found.iter().filter(|e| e["outcome"] == "allowed").count() == 2).then_some(found)
        });
    let findings: Vec<&serde_json::Value> = entries
        .iter()
        .filter_map(|e| e["detail"]["findings"].as_array())
        .flatten()
        .collect();
    assert_eq!(findings.len(), 2, "{entries:?}");
    assert_eq!(findings[0]["detector"], "vault_secret");
    assert_eq!(findings[0]["location"], "body");
    assert_eq!(findings[0]["offset"], 9);
    assert_eq!(findings[1]["detector"], "github_token");
}

#[test]
fn redact_mode_forwards_pii_masked_and_still_blocks_secrets() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &[
            "-n",
            "svc",
            "-s",
            "svc",
            "-d",
            &host,
            "--body-inspection",
            "redact",
        ],
        SECRET,
    );
    w.add_bearer("other", "other", OTHER);
    let gate = w.gate(&[]);
    let body = "{\"customer\":\"ssn 123-45-6789, card 4111 1111 1111 1111, \
                account no. 000123456789, iban DE89370400440532013000\"}";
    let resp = post(
        &gate.base,
        body.as_bytes(),
        &["Content-Type: application/json"],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = w.upstream.last_request().expect("forwarded");
    assert_eq!(
        seen.body_text(),
        "{\"customer\":\"ssn ***-**-****, card **** **** **** 1111, \
         account no. ********6789, iban DE89**************3000\"}"
    );
    // PII inside a compressed body cannot be masked: refused.
    let resp = post(
        &gate.base,
        &gzip(body.as_bytes()),
        &["Content-Encoding: gzip"],
    );
    assert_eq!(resp.status, 403, "{}", resp.text());
    // A vault secret is refused in redact mode.
    let resp = post(&gate.base, OTHER.as_bytes(), &[]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(w.upstream.request_count(), 1);
}

#[test]
fn a_gzip_bomb_and_an_unknown_coding_are_refused_before_anything_is_sent() {
    let w = world();
    w.append_config("gate:\n  max_inspect_bytes: 1MiB\n");
    let gate = w.gate(&[]);
    // 64 MiB of zeros in about 64 KiB.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let resp = post(&gate.base, &bomb, &["Content-Encoding: gzip"]);
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], "body_too_large");
    for (coding, body) in [
        ("compress", &b"(lzw data)"[..]),
        ("zstd", b"(not a zstd frame)"),
    ] {
        let header = format!("Content-Encoding: {coding}");
        let resp = post(&gate.base, body, &[&header]);
        assert_eq!(resp.status, 403, "{coding}: {}", resp.text());
        assert!(
            resp.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("unscannable_encoding")),
            "{coding}: {}",
            resp.text()
        );
    }
    // A zstd bomb is bounded like a gzip one.
    let bomb = compress("zstd", &vec![0u8; 64 * 1024 * 1024]);
    let resp = post(&gate.base, &bomb, &["Content-Encoding: zstd"]);
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(w.upstream.request_count(), 0);
}

#[test]
fn zstd_bodies_are_decoded_for_inspection() {
    let w = world();
    let gate = w.gate(&[]);
    let hidden = compress("zstd", format!("{{\"k\":\"{OTHER}\"}}").as_bytes());
    let resp = post(&gate.base, &hidden, &["Content-Encoding: zstd"]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], "body_blocked");
    assert!(
        resp.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("vault_secret")),
        "{}",
        resp.text()
    );
    assert_eq!(w.upstream.request_count(), 0);
    // A clean zstd body goes through as it was sent.
    let clean = compress("zstd", b"{\"k\":\"an ordinary value\"}");
    let resp = post(&gate.base, &clean, &["Content-Encoding: zstd"]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(w.upstream.request_count(), 1);
    let received = w.upstream.last_request().expect("forwarded");
    assert_eq!(received.header("content-encoding").as_deref(), Some("zstd"));
}

#[test]
fn secrets_split_across_upload_chunks_are_found_streaming_and_buffered() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &[
            "-n",
            "svc",
            "-s",
            "svc",
            "-d",
            &host,
            "--body-inspection",
            "warn",
        ],
        SECRET,
    );
    w.add_bearer("other", "other", OTHER);
    w.add(
        &["-n", "strict", "-s", "strict", "-d", &host],
        "strict-own-secret-0002",
    );
    let gate = w.gate(&[]);
    // The secret straddles each 16 KiB boundary (curl's upload chunks are multiples of it).
    let mut body = "All quiet on the upload front. ".repeat(7_000).into_bytes();
    let offsets: Vec<usize> = [1usize, 2, 4, 8, 12]
        .iter()
        .map(|k| k * 16 * 1024 - 7)
        .collect();
    for &at in &offsets {
        body[at..at + OTHER.len()].copy_from_slice(OTHER.as_bytes());
    }
    let chunked = ["Transfer-Encoding: chunked"];
    let resp = post(&gate.base, &body, &chunked);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(w.upstream.last_request().expect("forwarded").body, body);
    let entries = aegis_test_support::wait_for("the warn entry", Duration::from_secs(10), || {
        let found = entries(&w);
        (found.iter().any(|e| e["outcome"] == "allowed")).then_some(found)
    });
    let findings: Vec<u64> = entries
        .iter()
        .filter_map(|e| e["detail"]["findings"].as_array())
        .flatten()
        .filter_map(|f| f["offset"].as_u64())
        .collect();
    let expected: Vec<u64> = offsets.iter().map(|&o| o as u64).collect();
    assert_eq!(findings, expected);
    // The same upload to a blocking credential never leaves the gate.
    let url = format!("{}/strict/v1/paste", gate.base);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("body");
    std::fs::write(&file, &body).expect("body");
    let data = format!("@{}", file.display());
    let resp = curl(&["--data-binary", &data, "-H", chunked[0], &url]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(w.upstream.request_count(), 1);
}
