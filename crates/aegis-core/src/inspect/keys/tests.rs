use proptest::prelude::*;

use super::*;
use crate::inspect::{Finding, Location};

/// What a scan of `buf[from..limit]` records: every finding (fewer than the cap) and the count.
fn run(
    buf: &[u8],
    from: usize,
    limit: usize,
    scan: fn(&[u8], u64, usize, usize, &mut Findings),
) -> (Vec<Finding>, u64) {
    let mut findings = Findings::default();
    scan(buf, 7, from, limit, &mut findings);
    let total = findings.total();
    (findings.into_sorted(&Location::Body), total)
}

/// The definition: every occurrence of every prefix starting in `from..limit`, checked.
fn naive(buf: &[u8], base: u64, from: usize, limit: usize, findings: &mut Findings) {
    for start in from..limit {
        for &(prefix, format) in PREFIXES {
            if buf[start..].starts_with(prefix.as_bytes()) {
                check(
                    buf,
                    base,
                    start,
                    prefix.len(),
                    format,
                    UNKNOWN_RUN,
                    findings,
                );
            }
        }
    }
}

#[test]
fn a_pem_line_inside_another_prefix_is_found() {
    // `sk-` ends where `-----BEGIN ` starts: a search that resumes past each prefix missed it.
    let body = b"sk-----BEGIN RSA PRIVATE KEY-----\n";
    let (found, _) = run(body, 0, body.len(), scan);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].offset, found[0].detector),
        (7 + 2, Detector::PrivateKeyPem)
    );
}

#[test]
fn a_key_after_a_json_escape_is_found_when_the_range_starts_at_it() {
    let key = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let body = format!("x\\n{key} ").into_bytes();
    for from in 0..=3 {
        let (found, total) = run(&body, from, body.len(), scan);
        assert_eq!(total, 1, "from {from}");
        assert_eq!(
            (found[0].offset, found[0].detector),
            (7 + 3, Detector::GithubToken)
        );
    }
    // Inside a word rather than after an escape: no token start.
    let body = format!("xn{key} ").into_bytes();
    assert_eq!(run(&body, 2, body.len(), scan).1, 0);
}

#[test]
fn the_scan_finds_candidates_in_the_last_partial_block_and_at_offset_zero() {
    let key = b"AKIAABCDEFGHIJKLMNOP";
    for lead in [0usize, 1, 63, 64, 65, 130] {
        let mut body = vec![b' '; lead];
        body.extend_from_slice(key);
        let (found, total) = run(&body, 0, body.len(), scan);
        assert_eq!(total, 1, "lead {lead}");
        assert_eq!(found[0].offset, 7 + lead as u64);
    }
}

#[test]
fn the_shortest_key_of_every_token_format_spans_its_min_span_and_min_token_run_bytes() {
    let pat = format!("github_pat_{}", "a_b9".repeat(20) + "zz");
    let shortest: [(&str, Detector); 9] = [
        (&pat, Detector::GithubToken),
        ("AKIAABCDEFGHIJKLMNOP", Detector::AwsAccessKey),
        (
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            Detector::GithubToken,
        ),
        ("xoxb-0123456789", Detector::SlackToken),
        ("sk_live_abcdefghijklmnopqrstuvwx", Detector::StripeLiveKey),
        ("sk-abcdefghijklmnopqrstuvwxyz012345", Detector::OpenaiKey),
        (
            "sk-ant-abcdefghijklmnopqrstuvwxyz012345",
            Detector::AnthropicKey,
        ),
        (
            "AIzaabcdefghijklmnopqrstuvwxyz012345678",
            Detector::GoogleApiKey,
        ),
        ("eyJhbGciOiJ4In0.e30.", Detector::Jwt),
    ];
    let mut fewest = usize::MAX;
    let mut fewest_per_format = std::collections::HashMap::new();
    // Padded so that the key sits inside the scan's first 64-byte block.
    let padded = |key: &str| format!(" {key}{}", " ".repeat(100)).into_bytes();
    for (key, detector) in shortest {
        let body = padded(key);
        let (found, _) = run(&body, 0, body.len(), scan);
        assert_eq!(found.len(), 1, "{key}");
        assert_eq!((found[0].offset, found[0].detector), (7 + 1, detector));
        let tokens = key.bytes().take_while(|b| is_token_byte(*b)).count();
        fewest = fewest.min(tokens);
        let (_, format) = PREFIXES
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix))
            .copied()
            .expect("every sample starts with a prefix");
        assert!(tokens >= format.min_span(), "{key}");
        let least = fewest_per_format.entry(format).or_insert(usize::MAX);
        *least = (*least).min(tokens);
        // One byte less of the format's class is no key.
        let cut = padded(&[&key[..tokens - 1], &key[tokens..]].concat());
        assert_eq!(run(&cut, 0, cut.len(), scan).1, 0, "{key}");
    }
    assert_eq!(fewest, runs::MIN_TOKEN_RUN);
    for (format, least) in fewest_per_format {
        assert_eq!(least, format.min_span(), "{format:?}");
    }
}

#[test]
fn a_shortest_key_across_a_block_boundary_is_measured_whole() {
    for key in ["xoxb-0123456789", "eyJhbGciOiJ4In0.e30."] {
        for lead in 40..140 {
            let body = format!("{}{key}{}", " ".repeat(lead), " ".repeat(80)).into_bytes();
            let (found, total) = run(&body, 0, body.len(), scan);
            assert_eq!(total, 1, "{key} at {lead}");
            assert_eq!(found[0].offset, 7 + lead as u64);
            // One token byte less (the 15th): no key.
            let cut = [&key[..14], &key[15..]].concat();
            let short = format!("{}{cut}{}", " ".repeat(lead), " ".repeat(80)).into_bytes();
            assert_eq!(run(&short, 0, short.len(), scan).1, 0, "{cut} at {lead}");
        }
    }
}

/// Pieces that make prefixes, near misses, real keys and token boundaries when strung together.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"AKIA",
        b"ASIA",
        b"AIza",
        b"ghp_",
        b"github_pat_",
        b"xoxb-",
        b"sk_live_",
        b"rk_live_",
        b"sk-",
        b"ant-",
        b"-----BEGIN ",
        b"RSA ",
        b"PRIVATE KEY",
        b"-----",
        b"eyJ",
        b"eyA",
        b"ewo",
        b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        b"eyJzdWIiOiIxIn0",
        b"eyJhbGciOiJ4In0",
        b"ABCDEFGHIJKLMNOP",
        b"abcdefghijklmnopqrstuvwxyz0123456789",
        b"0123456789",
        b"_-_-",
        b".",
        b"\\n",
        b"\\t",
        b" ",
        b"\"",
        b"-",
        b"B",
        b"n",
    ];
    prop_oneof![
        4 => prop::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The scan records exactly what checking every prefix occurrence records, over any
    /// range.
    #[test]
    fn the_scan_equals_checking_every_occurrence(
        pieces in prop::collection::vec(piece(), 0..120),
        cut in any::<prop::sample::Index>(),
        end in any::<prop::sample::Index>(),
    ) {
        let buf = pieces.concat();
        let limit = end.index(buf.len() + 1);
        let from = cut.index(limit + 1);
        let expected = run(&buf, from, limit, naive);
        prop_assert_eq!(&run(&buf, from, limit, scan), &expected);
    }
}

proptest! {
    /// `class_bits` (vector compares on x86_64) marks exactly the bytes of the class.
    #[test]
    fn class_bits_marks_the_bytes_of_the_class(
        chunk in prop::collection::vec(any::<u8>(), 0..=16),
        class in 1u8..64,
    ) {
        let expected = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, b)| bits | u32::from(is(*b, class)) << i);
        prop_assert_eq!(class_bits(&chunk, class), expected);
    }
}

#[test]
fn run_len_counts_leading_class_bytes_up_to_max() {
    let body = b"ABCDEFGHIJKLMNOPQRSTuv";
    assert_eq!(run_len(body, 100, UPPER), 20);
    assert_eq!(run_len(body, 17, UPPER), 17);
    assert_eq!(run_len(body, 16, UPPER), 16);
    assert_eq!(run_len(body, 100, UPPER | LOWER), 22);
    assert_eq!(run_len(&body[..3], 100, UPPER), 3);
    assert_eq!(run_len(b"", 5, UPPER), 0);
    assert_eq!(run_len(body, 0, UPPER), 0);
    let long = [b'a'; 40];
    assert_eq!(run_len(&long, 33, LOWER), 33);
    assert_eq!(run_len(&long, 100, LOWER), 40);
}

proptest! {
    /// Any base64url text of bytes holding `"alg"`, at any offset, is seen to mention it
    /// without being decoded: the filter in front of the decode lets no such header go.
    #[test]
    fn a_header_holding_alg_always_mentions_it(
        before in prop::collection::vec(any::<u8>(), 0..40),
        after in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let bytes = [before.as_slice(), b"\"alg\"", after.as_slice()].concat();
        let text = URL_SAFE_NO_PAD.encode(bytes);
        prop_assert!(mentions_alg(text.as_bytes()), "{text}");
    }
}

#[test]
fn a_header_without_alg_is_let_go_undecoded() {
    for json in [
        r#"{"typ":"JWT"}"#,
        r#"{"kid":"k1","typ":"JWT"}"#,
        "[1,2,3]",
        "{}",
    ] {
        let text = URL_SAFE_NO_PAD.encode(json);
        assert!(!mentions_alg(text.as_bytes()), "{json}");
    }
}

#[test]
fn an_alg_header_is_a_json_object_with_an_alg_member() {
    let holds = |json: &str| has_alg_header(URL_SAFE_NO_PAD.encode(json).as_bytes());
    assert!(holds(r#"{"alg":"HS256"}"#));
    assert!(holds(r#"{"typ":"JWT", "alg":"RS256"}"#));
    assert!(
        holds(r#"{"alg":"a","alg":"b"}"#),
        "a repeated member is still one"
    );
    assert!(holds(
        "{\"kid\":\"\\u00e9\",\"alg\":{\"x\":[1,2.5e3,null]}}"
    ));
    assert!(holds(" {\"alg\":1}\n"), "white space around the object");
    assert!(!holds(r#"{"typ":"JWT"}"#));
    assert!(
        !holds(r#"{"x":{"alg":"HS256"}}"#),
        "a nested member is not the header's"
    );
    assert!(!holds(r#"["alg"]"#), "not an object");
    assert!(!holds(r#"{"alg":"HS256"} x"#), "trailing text");
    assert!(!holds(r#"{"alg":"HS256""#), "unterminated");
    assert!(!holds(r#"{"alg":}"#), "no value");
    assert!(!has_alg_header(b"eyJhbGciOiJIUzI1NiJ9!"), "not base64url");
}
