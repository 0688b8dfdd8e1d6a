use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::*;

fn secret(bytes: &[u8], owner: usize, label: &str) -> RedactionSecret {
    RedactionSecret::new(bytes, owner, label)
}

fn set(secrets: Vec<RedactionSecret>) -> RedactionSet {
    let set = RedactionSet::try_new(secrets).expect("small sets always build");
    assert!(!set.is_withholding());
    set
}

fn redacted(set: &RedactionSet, input: &[u8], injected: Option<usize>) -> (String, usize) {
    let (out, count) = set.redact(input, injected);
    (String::from_utf8_lossy(&out).into_owned(), count)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Streams `input` cut at `cuts` (offsets, any order, may repeat) and returns the output, the
/// replacements, and the output released after each push.
fn stream(
    set: &Arc<RedactionSet>,
    input: &[u8],
    cuts: &[usize],
    injected: Option<usize>,
) -> (Vec<u8>, usize, Vec<Vec<u8>>) {
    let mut offsets: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    offsets.push(0);
    offsets.push(input.len());
    offsets.sort_unstable();
    let mut redactor = Redactor::new(Arc::clone(set), injected);
    let mut out = Vec::new();
    let mut count = 0;
    let mut released = Vec::new();
    for pair in offsets.windows(2) {
        count += redactor.push(&input[pair[0]..pair[1]], &mut out);
        assert!(redactor.held_len() < set.max_pattern_len().max(1));
        released.push(out.clone());
    }
    count += redactor.finish(&mut out);
    assert_eq!(redactor.held_len(), 0);
    (out, count, released)
}

const GH: &[u8] = b"ghp_0123456789abcdefSECRET";

#[test]
fn raw_secret_embedded_in_longer_text_is_redacted() {
    let set = set(vec![secret(GH, 0, "github")]);
    let input = [b"token=".as_slice(), GH, b"; done"].concat();
    assert_eq!(
        redacted(&set, &input, Some(0)),
        ("token=[REDACTED:github]; done".to_owned(), 1)
    );
}

#[test]
fn injected_credential_gets_its_label_and_others_get_a_bare_marker() {
    let other = b"xoxb-other-credential-value";
    let set = set(vec![secret(GH, 0, "github"), secret(other, 1, "slack")]);
    let input = [GH, b" and ".as_slice(), other].concat();
    assert_eq!(
        redacted(&set, &input, Some(0)).0,
        "[REDACTED:github] and [REDACTED]"
    );
    assert_eq!(
        redacted(&set, &input, Some(1)).0,
        "[REDACTED] and [REDACTED:slack]"
    );
    assert_eq!(redacted(&set, &input, None).0, "[REDACTED] and [REDACTED]");
    assert_eq!(redacted(&set, &input, Some(7)).1, 2);
}

#[test]
fn base64_echo_inside_json_is_redacted_at_every_alignment() {
    let set = set(vec![secret(GH, 0, "github")]);
    for prefix in [&b""[..], b"u", b"us", b"user:"] {
        let encoded = STANDARD.encode([prefix, GH].concat());
        let body = format!("{{\"auth\":\"Basic {encoded}\"}}");
        let (out, count) = redacted(&set, body.as_bytes(), Some(0));
        assert_eq!(count, 1, "prefix {prefix:?}: {out}");
        assert!(out.contains("[REDACTED:github]"));
        assert!(!out.contains(&encoded), "{out}");
    }
    // 26 bytes are 34 full characters plus one carrying the last 4 bits, which also depends
    // on what follows the secret and so is not part of the form.
    let encoded = URL_SAFE_NO_PAD.encode(GH);
    assert_eq!(encoded.len(), 35);
    let (out, count) = redacted(&set, encoded.as_bytes(), None);
    assert_eq!((out, count), (format!("[REDACTED]{}", &encoded[34..]), 1));
}

#[test]
fn percent_encoded_echo_in_a_url_is_redacted() {
    let password = b"p@ss/word with+plus";
    let set = set(vec![secret(password, 3, "db")]);
    for encoded in ["p%40ss%2Fword%20with%2Bplus", "p%40ss%2fword%20with%2bplus"] {
        let url = format!("https://example.com/cb?password={encoded}&next=1");
        assert_eq!(
            redacted(&set, url.as_bytes(), Some(3)).0,
            "https://example.com/cb?password=[REDACTED:db]&next=1"
        );
    }
}

#[test]
fn hex_echo_is_redacted_in_both_cases() {
    let set = set(vec![secret(GH, 0, "github")]);
    for encoded in [hex::encode(GH), hex::encode_upper(GH)] {
        let body = format!("digest: {encoded}\n");
        assert_eq!(
            redacted(&set, body.as_bytes(), Some(0)),
            ("digest: [REDACTED:github]\n".to_owned(), 1)
        );
    }
}

#[test]
fn json_escaped_echo_is_redacted() {
    let value = "line1\n\"quoted\"\\end";
    let set = set(vec![secret(value.as_bytes(), 0, "cfg")]);
    let body = serde_json::json!({ "echo": value }).to_string();
    assert_eq!(
        redacted(&set, body.as_bytes(), Some(0)).0,
        "{\"echo\":\"[REDACTED:cfg]\"}"
    );
}

#[test]
fn short_secrets_are_ignored() {
    let set = set(vec![secret(b"1234567", 0, "short")]);
    assert!(set.is_empty());
    assert_eq!(set.max_pattern_len(), 0);
    let (out, count) = set.redact(b"x 1234567 y", Some(0));
    assert!(matches!(out, Cow::Borrowed(_)));
    assert_eq!(count, 0);
    let set = Arc::new(set);
    let (out, count, _) = stream(&set, b"x 1234567 y", &[1, 3, 5], Some(0));
    assert_eq!((out.as_slice(), count), (&b"x 1234567 y"[..], 0));
}

#[test]
fn text_without_matches_is_borrowed() {
    let set = set(vec![secret(GH, 0, "github")]);
    let (out, count) = set.redact(b"nothing to see", None);
    assert!(matches!(out, Cow::Borrowed(b"nothing to see")));
    assert_eq!(count, 0);
}

#[test]
fn overlapping_forms_pick_the_longest() {
    let short = b"abcdefgh12";
    let long = b"abcdefgh12345678";
    let set = set(vec![secret(short, 0, "short"), secret(long, 1, "long")]);
    assert_eq!(
        redacted(&set, b"<abcdefgh12345678>", Some(1)),
        ("<[REDACTED:long]>".to_owned(), 1)
    );
    assert_eq!(
        redacted(&set, b"<abcdefgh1234>", Some(0)),
        ("<[REDACTED:short]34>".to_owned(), 1)
    );
}

#[test]
fn a_secret_shared_by_two_credentials_is_labelled_for_the_injected_one() {
    let set = set(vec![secret(GH, 0, "first"), secret(GH, 1, "second")]);
    assert_eq!(redacted(&set, GH, Some(1)).0, "[REDACTED:second]");
    assert_eq!(redacted(&set, GH, Some(0)).0, "[REDACTED:first]");
    assert_eq!(redacted(&set, GH, Some(2)).0, "[REDACTED]");
}

#[test]
fn basic_password_part_passed_separately_is_redacted_alone() {
    let set = set(vec![
        secret(b"alice:correct-horse", 0, "intranet"),
        secret(b"correct-horse", 0, "intranet"),
    ]);
    assert_eq!(
        redacted(&set, b"pw=correct-horse user=alice:correct-horse", Some(0)).0,
        "pw=[REDACTED:intranet] user=[REDACTED:intranet]"
    );
}

#[test]
fn a_secret_split_across_chunks_is_caught_and_never_released_early() {
    let set = Arc::new(set(vec![secret(GH, 0, "github")]));
    let input = [b"head ".as_slice(), GH, b" tail"].concat();
    let mut redactor = Redactor::new(Arc::clone(&set), Some(0));
    let mut out = Vec::new();
    let mut count = redactor.push(&input[..10], &mut out);
    assert!(!contains(&out, b"ghp"), "released a secret prefix early");
    count += redactor.push(&[], &mut out);
    count += redactor.push(&input[10..20], &mut out);
    count += redactor.push(&input[20..], &mut out);
    count += redactor.finish(&mut out);
    assert_eq!(out, b"head [REDACTED:github] tail");
    assert_eq!(count, 1);
}

#[test]
fn one_byte_chunks_match_the_whole_input() {
    let set = Arc::new(set(vec![secret(GH, 0, "github")]));
    let encoded = STANDARD.encode([b"x".as_slice(), GH].concat());
    let input = format!("a {} b {} c", String::from_utf8_lossy(GH), encoded).into_bytes();
    let cuts: Vec<usize> = (0..input.len()).collect();
    let (out, count, _) = stream(&set, &input, &cuts, Some(0));
    let (whole, whole_count) = set.redact(&input, Some(0));
    assert_eq!(out, whole.as_ref());
    assert_eq!((count, whole_count), (2, 2));
}

#[test]
fn hold_back_is_below_the_longest_form() {
    let set = Arc::new(set(vec![secret(GH, 0, "github")]));
    let max = set.max_pattern_len();
    // GH is all unreserved characters, so its longest form is hex: two bytes per byte.
    assert_eq!(max, 2 * GH.len());
    let mut redactor = Redactor::new(Arc::clone(&set), None);
    let mut out = Vec::new();
    redactor.push(&vec![b'.'; 10 * max], &mut out);
    assert_eq!(redactor.held_len(), max - 1);
    assert_eq!(out.len(), 10 * max - (max - 1));
    redactor.finish(&mut out);
    assert_eq!(out.len(), 10 * max);
}

#[test]
fn an_unbuildable_set_withholds_everything() {
    // Only reachable with more than ~4 GiB of forms, so the state is built by hand here.
    let set = Arc::new(RedactionSet {
        matcher: Matcher::Withhold,
        pattern_secrets: Vec::new(),
        secrets: Vec::new(),
        max_pattern_len: 0,
    });
    assert!(set.is_withholding() && !set.is_empty());
    assert_eq!(
        set.redact(b"anything", Some(0)),
        (Cow::Owned(b"[REDACTED]".to_vec()), 1)
    );
    assert_eq!(set.redact(b"", None).1, 0);
    let (out, count, released) = stream(&set, b"some body bytes", &[3, 7], None);
    assert_eq!((out.as_slice(), count), (&b"[REDACTED]"[..], 1));
    assert!(released.iter().all(Vec::is_empty));
    let (out, count, _) = stream(&set, b"", &[], None);
    assert_eq!((out.len(), count), (0, 0));
}

#[test]
fn debug_output_never_shows_secrets() {
    let secrets = vec![secret(GH, 0, "github")];
    let shown = format!("{:?}", secrets[0]);
    assert!(!shown.contains("ghp_"), "{shown}");
    let set = Arc::new(set(secrets));
    let shown = format!("{set:?}");
    assert!(
        !shown.contains("ghp_") && !shown.contains("0123"),
        "{shown}"
    );
    let mut redactor = Redactor::new(Arc::clone(&set), Some(0));
    let mut out = Vec::new();
    redactor.push(&GH[..12], &mut out);
    let shown = format!("{redactor:?}");
    assert!(!shown.contains("ghp_"), "{shown}");
}

/// Secret bytes: arbitrary, or from a tiny alphabet so forms overlap and repeat.
fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 8..=64),
        prop::collection::vec(prop::sample::select(b"ab/+=".to_vec()), 8..=24),
    ]
}

fn filler() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(prop::sample::select(b"ab/+=".to_vec()), 0..40),
    ]
}

/// An input made of filler and echoes of the secrets in random forms.
fn echo_input(secrets: &[Vec<u8>], parts: &[(Vec<u8>, usize, usize)]) -> Vec<u8> {
    let mut input = Vec::new();
    for (fill, which, form) in parts {
        input.extend_from_slice(fill);
        let secret = &secrets[which % secrets.len()];
        let forms = SecretForms::new(secret);
        let (_, bytes) = forms
            .iter()
            .nth(form % forms.len())
            .expect("index is below len");
        input.extend_from_slice(bytes);
    }
    input
}

fn build(secrets: &[Vec<u8>]) -> Arc<RedactionSet> {
    let secrets = secrets
        .iter()
        .enumerate()
        .map(|(i, bytes)| secret(bytes, i, &format!("k{i}")))
        .collect();
    Arc::new(set(secrets))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// (a) Streaming equals whole-input redaction for any chunking, and no raw secret survives.
    #[test]
    fn streaming_equals_whole_input_and_hides_raw_secrets(
        secrets in prop::collection::vec(secret_bytes(), 1..4),
        parts in prop::collection::vec((filler(), any::<usize>(), any::<usize>()), 0..6),
        tail in filler(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        injected in prop::option::of(0usize..4),
    ) {
        let set = build(&secrets);
        let mut input = echo_input(&secrets, &parts);
        input.extend_from_slice(&tail);
        let (whole, whole_count) = set.redact(&input, injected);
        let (out, count, _) = stream(&set, &input, &cuts, injected);
        prop_assert_eq!(&out, &whole.to_vec());
        prop_assert_eq!(count, whole_count);
        if !parts.is_empty() {
            prop_assert!(count >= 1, "an echoed form was not replaced");
        }
        for s in &secrets {
            prop_assert!(!contains(&out, s), "raw secret survived");
        }
        // Byte-at-a-time streaming agrees too.
        let every: Vec<usize> = (0..input.len()).collect();
        let (out_bytes, _, _) = stream(&set, &input, &every, injected);
        prop_assert_eq!(&out_bytes, &out);
    }

    /// (b) Whatever has been released after any push is a prefix of the final output and
    /// contains no complete form of any secret.
    #[test]
    fn released_output_never_contains_a_complete_form(
        secrets in prop::collection::vec(secret_bytes(), 1..3),
        parts in prop::collection::vec((filler(), any::<usize>(), any::<usize>()), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let set = build(&secrets);
        let input = echo_input(&secrets, &parts);
        let (out, _, released) = stream(&set, &input, &cuts, Some(0));
        let all_forms: Vec<SecretForms> = secrets.iter().map(|s| SecretForms::new(s)).collect();
        for partial in &released {
            prop_assert!(out.starts_with(partial), "released bytes were later changed");
            for forms in &all_forms {
                for (kind, form) in forms.iter() {
                    prop_assert!(!contains(partial, form), "released a complete {kind:?} form");
                }
            }
        }
    }

    /// (c) Arbitrary secrets, input, chunking and owner never panic, and still agree.
    #[test]
    fn arbitrary_input_never_panics(
        secrets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..4),
        input in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        injected in prop::option::of(any::<usize>()),
    ) {
        let set = build(&secrets);
        let (whole, _) = set.redact(&input, injected);
        let (out, _, _) = stream(&set, &input, &cuts, injected);
        prop_assert_eq!(out, whole.to_vec());
    }
}
