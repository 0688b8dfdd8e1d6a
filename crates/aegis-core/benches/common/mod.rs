//! Inputs the scan benchmarks (`redact`, `inspect`, `scan_instructions`) share: the same 1,000
//! pseudo-random vault secrets, JSON prose, hex text and adversarial body, so their figures
//! compare. Each bench uses only some of them.
#![allow(dead_code)]

use aegis_core::redact::RedactionSecret;

/// `count` secrets `sk-bench-` followed by 36 pseudo-random hex digits (splitmix64), like
/// bench/gate_load.sh's keys; owner `i`, label `key-i`.
pub(crate) fn secrets(count: usize) -> Vec<RedactionSecret> {
    let mut state = 0x5eed_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|i| {
            let hex: String = (0..36)
                .map(|_| char::from(b"0123456789abcdef"[usize::try_from(next() % 16).unwrap_or(0)]))
                .collect();
            RedactionSecret::new(format!("sk-bench-{hex}").as_bytes(), i, &format!("key-{i}"))
        })
        .collect()
}

/// `len` bytes of a chat-completion request body repeated: prose with the words token,
/// password and key, and no secret.
pub(crate) fn prose(len: usize) -> Vec<u8> {
    let text = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Summarise the \
        open issues in the repository and list which ones mention the token refresh, the \
        password reset flow or the API key rotation.\"}],\"temperature\":0.2}\n";
    text.as_bytes().iter().copied().cycle().take(len).collect()
}

/// `len` bytes of a chat-completion request carrying an image: the image's pseudo-random bytes
/// in standard base64 (long token runs broken by `+` and `/`, as real uploads are), in the
/// JSON of a `data:` URL. Clean like [`prose`], but much of it looks like key material.
pub(crate) fn base64_image(len: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut state = 0x1_1ace_u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    let image = base64::engine::general_purpose::STANDARD.encode(bytes);
    let head = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\
        \"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,";
    let mut body = head.as_bytes().to_vec();
    body.extend_from_slice(image.as_bytes());
    body.truncate(len.saturating_sub(8));
    body.extend_from_slice(b"\"}}]}]}\n");
    body
}

/// The body size of the inspection benches: 1 MiB.
pub(crate) const INSPECT_BODY: usize = 1024 * 1024;

/// `len` bytes of near-miss key prefixes (every few bytes a candidate that fails its check) and
/// vault form fragments (`sk-bench-`, the secrets' shared prefix).
pub(crate) fn adversarial(len: usize) -> Vec<u8> {
    let text = "sk-ab ghp_x AKIA1 eyJhbGciOi. -----BEGIN X xoxb-1 AIza_ sk-bench-0123 \
        sk_live_abc github_pat_ ";
    text.as_bytes().iter().copied().cycle().take(len).collect()
}

/// `len` bytes of the worst case of the key-format scan that we know: every 21 bytes a token
/// run just long enough for its prefix's format (`AKIA` and 16) that fails its check only at
/// the last byte, so every run costs a whole check.
pub(crate) fn adversarial_runs(len: usize) -> Vec<u8> {
    b"AKIAABCDEFGHIJKLMNOx "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// `len` bytes of JWT-shaped near misses: three base64url segments whose header decodes to
/// `{"typ":"JWT"}` (JSON without `alg`), so each needs its header decoded before it is let go.
pub(crate) fn adversarial_jwt(len: usize) -> Vec<u8> {
    b"eyJ0eXAiOiJKV1QifQ.e30.x "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// `len` bytes of PEM near misses: a `-----BEGIN` line whose label is a run of `[A-Z0-9 ]`
/// that ends in `PRIVATE KEY` but is followed by one dash too few.
pub(crate) fn adversarial_pem(len: usize) -> Vec<u8> {
    b"-----BEGIN RSA PRIVATE KEY---- "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// `len` bytes of hex text (hashes, ids: the bytes hex-encoded secrets are made of).
pub(crate) fn hex(len: usize) -> Vec<u8> {
    let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    line.iter().copied().cycle().take(len).collect()
}

/// 1,000 secrets alike but for their last 8 characters (`acme_live_sharedprefix_` and a
/// number), and `len` bytes of near misses that share all but those: the worst case for a
/// search whose anchors cannot avoid the shared part.
pub(crate) fn shared_prefix(len: usize) -> (Vec<RedactionSecret>, Vec<u8>) {
    let secrets = (0..1000)
        .map(|i| {
            let bytes = format!("acme_live_sharedprefix_{i:08}");
            RedactionSecret::new(bytes.as_bytes(), i, &format!("key-{i}"))
        })
        .collect();
    let text = b"acme_live_sharedprefix_00000zz ";
    (secrets, text.iter().copied().cycle().take(len).collect())
}
