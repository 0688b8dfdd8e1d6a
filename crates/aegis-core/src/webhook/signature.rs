//! `X-Aegis-Signature` (SPEC.md §18.2): `sha256=<hex HMAC-SHA256(secret, "<ts>.<raw body>")>`,
//! and its verification as a receiver does it: constant-time compare, a 5-minute window.

use aws_lc_rs::hmac;

/// How far a delivery's timestamp may be from the receiver's clock, in seconds.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Why a signature was not accepted. Codes are stable; messages never echo the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The timestamp is not a whole number of Unix seconds.
    #[error("the timestamp must be Unix seconds (digits only)")]
    MalformedTimestamp,
    /// The timestamp is more than five minutes from now.
    #[error("the timestamp is more than 5 minutes from this machine's clock")]
    Stale,
    /// The signature is not `sha256=` and 64 hex characters.
    #[error("the signature must be sha256= followed by 64 hex characters")]
    MalformedSignature,
    /// The signature does not match the body, timestamp and secret.
    #[error("the signature does not match the body, timestamp and secret")]
    Mismatch,
}

impl SignatureError {
    /// The stable, machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedTimestamp => "timestamp_invalid",
            Self::Stale => "timestamp_out_of_window",
            Self::MalformedSignature => "signature_invalid",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

/// The `X-Aegis-Signature` value for `body` sent at Unix second `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_message(timestamp, body));
    format!("{PREFIX}{}", hex::encode(tag.as_ref()))
}

/// Checks a delivery the way SPEC.md §18.2 tells receivers to: the timestamp within five
/// minutes of `now_unix`, then the HMAC over the exact bytes, compared in constant time.
///
/// # Errors
/// A [`SignatureError`] naming the first check that failed.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now_unix: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.trim();
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if (now_unix - ts).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let hex_part = signature
        .trim()
        .strip_prefix(PREFIX)
        .filter(|h| h.len() == 64)
        .ok_or(SignatureError::MalformedSignature)?;
    let mut tag = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut tag).map_err(|_| SignatureError::MalformedSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    // hmac::verify compares in constant time.
    hmac::verify(&key, &signed_message(ts, body), &tag).map_err(|_| SignatureError::Mismatch)
}

/// `"<ts>.<body>"`, the bytes under the HMAC.
fn signed_message(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut message = Vec::with_capacity(ts.len() + 1 + body.len());
    message.extend_from_slice(ts.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

const PREFIX: &str = "sha256=";

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 4231 case-2 key and text, framed as "<ts>.<body>"; the expected value was computed
    /// with an independent tool:
    /// `printf '1.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe`.
    #[test]
    fn signature_matches_an_independent_hmac() {
        assert_eq!(
            sign(b"Jefe", 1, b"what do ya want for nothing?"),
            format!("sha256={}", KNOWN_VECTOR)
        );
    }

    #[test]
    fn a_fresh_signature_verifies_and_any_change_fails() {
        let sig = sign(b"whsec_secret", 1_000, b"{\"a\":1}");
        assert_eq!(
            verify(b"whsec_secret", "1000", b"{\"a\":1}", &sig, 1_100),
            Ok(())
        );
        assert_eq!(
            verify(b"whsec_secret", "1000", b"{\"a\":2}", &sig, 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"whsec_other", "1000", b"{\"a\":1}", &sig, 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"whsec_secret", "1001", b"{\"a\":1}", &sig, 1_100),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused() {
        let sig = sign(b"k", 1_000, b"x");
        assert_eq!(verify(b"k", "1000", b"x", &sig, 1_300), Ok(()));
        assert_eq!(verify(b"k", "1000", b"x", &sig, 700), Ok(()));
        assert_eq!(
            verify(b"k", "1000", b"x", &sig, 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"k", "1000", b"x", &sig, 699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"k", "-5", b"x", &sig, 0),
            Err(SignatureError::MalformedTimestamp)
        );
    }

    #[test]
    fn malformed_signatures_are_named() {
        for bad in [
            "",
            "sha256=",
            "sha1=00",
            &format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                verify(b"k", "1", b"x", bad, 1),
                Err(SignatureError::MalformedSignature),
                "{bad}"
            );
        }
    }

    const KNOWN_VECTOR: &str = "a9049465ce89cfb8e9aac62333abda66f80e3403f51f57f6bae3c3a4485eca38";
}
