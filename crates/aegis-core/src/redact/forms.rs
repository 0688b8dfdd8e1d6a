//! The byte forms in which one vault secret can appear in a message (SPEC §14.2).
//!
//! From a secret's bytes [`SecretForms::new`] derives, deduplicated:
//!
//! - the raw bytes;
//! - base64 (standard and URL-safe alphabets) at each of the three byte alignments, reduced to
//!   the alignment-stable inner characters (see below), which are the same whether the
//!   encoder pads or not, because padding only ever follows the last, unstable, character;
//! - percent-encoding with upper- and lower-case hex, RFC 3986 unreserved characters
//!   (`A-Z a-z 0-9 - . _ ~`) left as they are, when that differs from the raw bytes;
//! - hex, lower and upper case;
//! - JSON string escaping as common encoders write it, each when it differs from the raw bytes.
//!
//! **The base64 rule.** A secret of `L` bytes that starts `k` bytes (0, 1 or 2) into a 3-byte
//! base64 group occupies bits `8k .. 8(k + L)` of the encoded bit stream. Output character `i`
//! carries bits `6i .. 6i + 6`, so it depends on the secret alone exactly when
//! `6i >= 8k` and `6i + 6 <= 8(k + L)`. The form for alignment `k` is therefore characters
//! `ceil(8k / 6) .. floor(8(k + L) / 6)` of the base64 encoding of `k` filler bytes followed by
//! the secret: whatever precedes or follows the secret in the real message, those characters
//! appear verbatim in its encoding.
//!
//! Secrets shorter than [`MIN_SECRET_LEN`] bytes have no forms, and forms shorter than that are
//! skipped. Searching for the forms lives in the parent module; this one only derives them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Every searchable form of one secret, deduplicated, each held in zeroized memory.
pub struct SecretForms {
    forms: Vec<SecretForm>,
}

/// How one form was derived from the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormKind {
    /// The secret's own bytes.
    Raw,
    /// The alignment-stable inner characters of its base64 encoding.
    Base64 {
        /// Which base64 alphabet.
        alphabet: Base64Alphabet,
        /// How many bytes precede the secret in its 3-byte group (0, 1 or 2).
        alignment: u8,
    },
    /// Percent-encoded with upper-case hex digits (`%2F`).
    PercentUpper,
    /// Percent-encoded with lower-case hex digits (`%2f`).
    PercentLower,
    /// Lower-case hex of every byte.
    HexLower,
    /// Upper-case hex of every byte.
    HexUpper,
    /// The contents of a JSON string literal holding the secret, as `style` writes it.
    Json(JsonStyle),
}

/// The two base64 alphabets of RFC 4648.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base64Alphabet {
    /// `+` and `/` (RFC 4648 §4).
    Standard,
    /// `-` and `_` (RFC 4648 §5).
    UrlSafe,
}

/// How a JSON encoder escapes a string; the defaults of widely used encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonStyle {
    /// Only what JSON requires: `\"`, `\\`, `\b \f \n \r \t` and `\u00xx` for other control
    /// characters (serde_json, JavaScript `JSON.stringify`).
    Minimal,
    /// Also `\u003c \u003e \u0026` for `< > &` and `\u00xx` for every control character but
    /// `\n \r \t` (Go `encoding/json`).
    HtmlSafe,
    /// Also `\uxxxx` for every non-ASCII character and DEL (Python `json.dumps`).
    AsciiOnly,
    /// Also `\/` for `/` and `\uxxxx` for non-ASCII characters (PHP `json_encode`).
    AsciiOnlyEscapedSolidus,
}

/// Secrets (and forms) shorter than this many bytes are never searched for.
pub const MIN_SECRET_LEN: usize = 8;

impl SecretForms {
    /// Derives every form of `secret`; none when it is shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Self {
        let mut forms = Self { forms: Vec::new() };
        if secret.len() < MIN_SECRET_LEN {
            return forms;
        }
        forms.add(FormKind::Raw, Zeroizing::new(secret.to_vec()));
        for alphabet in [Base64Alphabet::Standard, Base64Alphabet::UrlSafe] {
            for alignment in 0..3u8 {
                let kind = FormKind::Base64 {
                    alphabet,
                    alignment,
                };
                forms.add(kind, base64_stable(secret, alphabet, alignment));
            }
        }
        forms.add(FormKind::PercentUpper, percent_encode(secret, HEX_UPPER));
        forms.add(FormKind::PercentLower, percent_encode(secret, HEX_LOWER));
        forms.add(FormKind::HexLower, hex_encode(secret, HEX_LOWER));
        forms.add(FormKind::HexUpper, hex_encode(secret, HEX_UPPER));
        for style in [
            JsonStyle::Minimal,
            JsonStyle::HtmlSafe,
            JsonStyle::AsciiOnly,
            JsonStyle::AsciiOnlyEscapedSolidus,
        ] {
            if let Some(escaped) = json_escape(secret, style) {
                forms.add(FormKind::Json(style), escaped);
            }
        }
        forms
    }

    /// The forms with how each was derived, raw first. Identical forms appear once.
    pub fn iter(&self) -> impl Iterator<Item = (FormKind, &[u8])> {
        self.forms
            .iter()
            .map(|form| (form.kind, form.bytes.as_slice()))
    }

    /// The number of distinct forms.
    pub fn len(&self) -> usize {
        self.forms.len()
    }

    /// True when the secret was too short to have any form.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// Keeps `bytes` unless it is degenerate or already present (under an earlier kind).
    fn add(&mut self, kind: FormKind, bytes: Zeroizing<Vec<u8>>) {
        if bytes.len() < MIN_SECRET_LEN || self.forms.iter().any(|form| form.bytes == bytes) {
            return;
        }
        self.forms.push(SecretForm { kind, bytes });
    }
}

impl fmt::Debug for SecretForms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretForms")
            .field("forms", &self.forms.len())
            .finish_non_exhaustive()
    }
}

/// One form of a secret.
struct SecretForm {
    kind: FormKind,
    bytes: Zeroizing<Vec<u8>>,
}

/// The alignment-stable inner characters of the base64 of `secret` preceded by `alignment`
/// bytes (the rule in the module docs).
fn base64_stable(secret: &[u8], alphabet: Base64Alphabet, alignment: u8) -> Zeroizing<Vec<u8>> {
    let k = usize::from(alignment);
    let mut input = Zeroizing::new(vec![0u8; k]);
    input.extend_from_slice(secret);
    let encoded = Zeroizing::new(match alphabet {
        Base64Alphabet::Standard => STANDARD_NO_PAD.encode(input.as_slice()),
        Base64Alphabet::UrlSafe => URL_SAFE_NO_PAD.encode(input.as_slice()),
    });
    let first = (8 * k).div_ceil(6);
    let end = 8 * (k + secret.len()) / 6;
    Zeroizing::new(
        encoded
            .as_bytes()
            .get(first..end)
            .unwrap_or_default()
            .to_vec(),
    )
}

fn percent_encode(secret: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 3));
    for &byte in secret {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte);
        } else {
            push_hex_byte(&mut out, byte, digits, b"%");
        }
    }
    out
}

fn hex_encode(secret: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 2));
    for &byte in secret {
        push_hex_byte(&mut out, byte, digits, b"");
    }
    out
}

/// The JSON-string-escaped secret in `style`, or `None` when the style cannot write it (an
/// ASCII-only style and a secret that is not UTF-8).
fn json_escape(secret: &[u8], style: JsonStyle) -> Option<Zeroizing<Vec<u8>>> {
    let ascii_only = matches!(
        style,
        JsonStyle::AsciiOnly | JsonStyle::AsciiOnlyEscapedSolidus
    );
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() + 8));
    if ascii_only && !secret.is_ascii() {
        let text = std::str::from_utf8(secret).ok()?;
        for ch in text.chars() {
            if ch.is_ascii() {
                // `ch` is ASCII, so it is one byte.
                json_escape_ascii(&mut out, ch as u8, style);
            } else {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    push_unicode_escape(&mut out, *unit);
                }
            }
        }
    } else {
        for &byte in secret {
            json_escape_ascii(&mut out, byte, style);
        }
    }
    Some(out)
}

/// Escapes one byte; bytes above 0x7F are copied (only reached by styles that keep UTF-8).
fn json_escape_ascii(out: &mut Vec<u8>, byte: u8, style: JsonStyle) {
    let short = match byte {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        b'\t' => Some(b't'),
        0x08 if style != JsonStyle::HtmlSafe => Some(b'b'),
        0x0C if style != JsonStyle::HtmlSafe => Some(b'f'),
        b'/' if style == JsonStyle::AsciiOnlyEscapedSolidus => Some(b'/'),
        _ => None,
    };
    let unicode = byte < 0x20
        || (style == JsonStyle::HtmlSafe && matches!(byte, b'<' | b'>' | b'&'))
        || (style == JsonStyle::AsciiOnly && byte == 0x7F);
    match short {
        Some(letter) => out.extend_from_slice(&[b'\\', letter]),
        None if unicode => push_unicode_escape(out, u16::from(byte)),
        None => out.push(byte),
    }
}

/// Appends `\uxxxx` with lower-case hex, as every encoder above writes it.
fn push_unicode_escape(out: &mut Vec<u8>, unit: u16) {
    let [high, low] = unit.to_be_bytes();
    out.extend_from_slice(b"\\u");
    push_hex_byte(out, high, HEX_LOWER, b"");
    push_hex_byte(out, low, HEX_LOWER, b"");
}

fn push_hex_byte(out: &mut Vec<u8>, byte: u8, digits: &[u8; 16], prefix: &[u8]) {
    out.extend_from_slice(prefix);
    out.push(digits[usize::from(byte >> 4)]);
    out.push(digits[usize::from(byte & 0x0F)]);
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use proptest::prelude::*;

    use super::*;

    fn form(forms: &SecretForms, kind: FormKind) -> Option<Vec<u8>> {
        forms
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, bytes)| bytes.to_vec())
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn short_secrets_have_no_forms() {
        assert!(SecretForms::new(b"").is_empty());
        assert!(SecretForms::new(b"1234567").is_empty());
        assert!(!SecretForms::new(b"12345678").is_empty());
    }

    #[test]
    fn raw_form_comes_first() {
        let forms = SecretForms::new(b"sk_test_abcdef");
        let (kind, bytes) = forms.iter().next().expect("has forms");
        assert_eq!(kind, FormKind::Raw);
        assert_eq!(bytes, b"sk_test_abcdef");
    }

    #[test]
    fn base64_forms_are_the_stable_inner_characters() {
        // "hello world!" is 12 bytes; STANDARD("hello world!") = "aGVsbG8gd29ybGQh".
        let forms = SecretForms::new(b"hello world!");
        let aligned = |alignment| {
            form(
                &forms,
                FormKind::Base64 {
                    alphabet: Base64Alphabet::Standard,
                    alignment,
                },
            )
        };
        assert_eq!(aligned(0).as_deref(), Some(&b"aGVsbG8gd29ybGQh"[..]));
        // One byte before: chars 2..17 of base64("\0hello world!") = "AGhlbGxvIHdvcmxkIQ".
        assert_eq!(STANDARD.encode(b"\0hello world!"), "AGhlbGxvIHdvcmxkIQ==");
        assert_eq!(aligned(1).as_deref(), Some(&b"hlbGxvIHdvcmxkI"[..]));
        // Two bytes before: chars 3..18 of "AABoZWxsbyB3b3JsZCE=".
        assert_eq!(STANDARD.encode(b"\0\0hello world!"), "AABoZWxsbyB3b3JsZCE=");
        assert_eq!(aligned(2).as_deref(), Some(&b"oZWxsbyB3b3JsZC"[..]));
    }

    #[test]
    fn url_safe_base64_differs_only_when_the_alphabet_matters() {
        // 0xFB 0xFF encodes to "+/" or "-_".
        let secret = [0xFBu8, 0xFF, 0xBF, 0xFB, 0xFF, 0xBF, 0xFB, 0xFF, 0xBF];
        let forms = SecretForms::new(&secret);
        let url = form(
            &forms,
            FormKind::Base64 {
                alphabet: Base64Alphabet::UrlSafe,
                alignment: 0,
            },
        )
        .expect("url-safe form differs");
        assert_eq!(url, URL_SAFE.encode(secret).into_bytes());
        // An alphanumeric secret's url-safe forms equal the standard ones and are deduplicated.
        let forms = SecretForms::new(b"abcdefghijkl");
        let url_forms = forms
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k,
                    FormKind::Base64 {
                        alphabet: Base64Alphabet::UrlSafe,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(url_forms, 0);
    }

    #[test]
    fn percent_forms_appear_only_when_they_differ() {
        let forms = SecretForms::new(b"abc-DEF_123.~xyz");
        assert_eq!(form(&forms, FormKind::PercentUpper), None);
        assert_eq!(form(&forms, FormKind::PercentLower), None);
        let forms = SecretForms::new(b"p@ss/w rd+=\xff");
        assert_eq!(
            form(&forms, FormKind::PercentUpper).as_deref(),
            Some(&b"p%40ss%2Fw%20rd%2B%3D%FF"[..])
        );
        assert_eq!(
            form(&forms, FormKind::PercentLower).as_deref(),
            Some(&b"p%40ss%2fw%20rd%2b%3d%ff"[..])
        );
    }

    #[test]
    fn hex_forms_in_both_cases() {
        let forms = SecretForms::new(b"\x01\xab\xcdsecret");
        assert_eq!(
            form(&forms, FormKind::HexLower).as_deref(),
            Some(&b"01abcd736563726574"[..])
        );
        assert_eq!(
            form(&forms, FormKind::HexUpper).as_deref(),
            Some(&b"01ABCD736563726574"[..])
        );
        // Digits only: upper and lower hex coincide and are kept once.
        let forms = SecretForms::new(b"12345678");
        assert!(form(&forms, FormKind::HexLower).is_some());
        assert_eq!(form(&forms, FormKind::HexUpper), None);
    }

    #[test]
    fn json_forms_follow_each_encoder() {
        let secret = "a\"b\\c/d\n<é>\u{1}\u{7f}";
        let forms = SecretForms::new(secret.as_bytes());
        let minimal = serde_json::to_string(secret).expect("serialize");
        let minimal = &minimal.as_bytes()[1..minimal.len() - 1];
        assert_eq!(
            form(&forms, FormKind::Json(JsonStyle::Minimal)).as_deref(),
            Some(minimal)
        );
        assert_eq!(
            form(&forms, FormKind::Json(JsonStyle::HtmlSafe)).as_deref(),
            Some("a\\\"b\\\\c/d\\n\\u003cé\\u003e\\u0001\u{7f}".as_bytes())
        );
        assert_eq!(
            form(&forms, FormKind::Json(JsonStyle::AsciiOnly)).as_deref(),
            Some(&b"a\\\"b\\\\c/d\\n<\\u00e9>\\u0001\\u007f"[..])
        );
        assert_eq!(
            form(&forms, FormKind::Json(JsonStyle::AsciiOnlyEscapedSolidus)).as_deref(),
            Some(&b"a\\\"b\\\\c\\/d\\n<\\u00e9>\\u0001\x7f"[..])
        );
    }

    #[test]
    fn json_ascii_only_uses_surrogate_pairs() {
        let forms = SecretForms::new("key-\u{1F600}-xyz".as_bytes());
        assert_eq!(
            form(&forms, FormKind::Json(JsonStyle::AsciiOnly)).as_deref(),
            Some(&b"key-\\ud83d\\ude00-xyz"[..])
        );
    }

    #[test]
    fn json_forms_are_skipped_when_equal_to_raw() {
        let forms = SecretForms::new(b"plain-token-123");
        assert!(!forms.iter().any(|(k, _)| matches!(k, FormKind::Json(_))));
    }

    #[test]
    fn debug_shows_counts_only() {
        let forms = SecretForms::new(b"super-secret-value");
        let shown = format!("{forms:?}");
        assert!(!shown.contains("super"), "{shown}");
        assert!(shown.contains("forms"));
    }

    proptest! {
        /// Real base64 of the secret inside arbitrary surrounding bytes, with either alphabet,
        /// padded or not, always contains one of the secret's base64 forms.
        #[test]
        fn base64_of_embedded_secret_contains_a_form(
            secret in prop::collection::vec(any::<u8>(), 8..64),
            before in prop::collection::vec(any::<u8>(), 0..7),
            after in prop::collection::vec(any::<u8>(), 0..7),
            url_safe in any::<bool>(),
            padded in any::<bool>(),
        ) {
            let mut message = before.clone();
            message.extend_from_slice(&secret);
            message.extend_from_slice(&after);
            let engine = match (url_safe, padded) {
                (false, true) => &STANDARD,
                (false, false) => &STANDARD_NO_PAD,
                (true, true) => &URL_SAFE,
                (true, false) => &URL_SAFE_NO_PAD,
            };
            let encoded = engine.encode(&message).into_bytes();
            let forms = SecretForms::new(&secret);
            let alignment = u8::try_from(before.len() % 3).expect("below 3");
            let alphabet = if url_safe { Base64Alphabet::UrlSafe } else { Base64Alphabet::Standard };
            // The form for this alignment may have been deduplicated into the standard one.
            let expected = base64_stable(&secret, alphabet, alignment);
            prop_assert!(forms.iter().any(|(_, f)| f == expected.as_slice()));
            prop_assert!(contains(&encoded, &expected));
            // Stable characters cover all but at most 2 characters at each end.
            let full = (secret.len() * 8).div_ceil(6);
            prop_assert!(expected.len() + 4 >= full);
        }

        #[test]
        fn every_form_decodes_back_or_is_the_secret(
            secret in prop::collection::vec(any::<u8>(), 8..64),
        ) {
            let forms = SecretForms::new(&secret);
            prop_assert!(forms.len() >= 3);
            for (kind, bytes) in forms.iter() {
                prop_assert!(bytes.len() >= MIN_SECRET_LEN);
                match kind {
                    FormKind::Raw => prop_assert_eq!(bytes, secret.as_slice()),
                    FormKind::HexLower | FormKind::HexUpper => {
                        prop_assert_eq!(hex::decode(bytes).expect("hex"), secret.clone());
                    }
                    _ => {}
                }
            }
        }
    }
}
