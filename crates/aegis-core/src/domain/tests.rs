//! Unit and property tests for allowlist entries, lists, target hosts and matching.

use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn entry(text: &str) -> Result<DomainEntry, FieldError> {
    DomainEntry::parse(text)
}

fn target(text: &str) -> Result<TargetHost, FieldError> {
    TargetHost::parse(text)
}

fn entry_matches(entry_text: &str, target_text: &str) -> Result<bool, FieldError> {
    Ok(entry(entry_text)?.matches(&target(target_text)?))
}

/// Asserts that each input is refused by `parse` with a message containing `needle`.
fn assert_rejected<T: fmt::Debug>(
    parse: fn(&str) -> Result<T, FieldError>,
    inputs: &[&str],
    code: &str,
    needle: &str,
) {
    for input in inputs {
        match parse(input) {
            Ok(value) => panic!("{input:?} was accepted as {value:?}"),
            Err(err) => {
                assert_eq!(err.code(), code, "{input:?}: {err}");
                let message = err.to_string();
                assert!(message.contains(needle), "{input:?}: {message}");
            }
        }
    }
}

// ---- entries: accepted forms ----

#[test]
fn plain_host_defaults_to_https_without_port() -> Result<(), FieldError> {
    let parsed = entry("api.example.com")?;
    assert_eq!(parsed.scheme(), Scheme::Https);
    assert_eq!(parsed.port(), None);
    assert_eq!(parsed.effective_port(), 443);
    assert!(!parsed.is_wildcard());
    assert_eq!(parsed.to_string(), "api.example.com");
    Ok(())
}

#[test]
fn https_scheme_is_accepted_and_omitted_from_display() -> Result<(), FieldError> {
    assert_eq!(
        entry("https://api.example.com")?.to_string(),
        "api.example.com"
    );
    assert_eq!(
        entry("HTTPS://api.example.com:8443")?.to_string(),
        "api.example.com:8443"
    );
    Ok(())
}

#[test]
fn http_entries_keep_their_scheme_and_default_to_port_80() -> Result<(), FieldError> {
    let parsed = entry("http://localhost")?;
    assert_eq!(parsed.scheme(), Scheme::Http);
    assert_eq!(parsed.effective_port(), 80);
    assert_eq!(parsed.to_string(), "http://localhost");
    let with_port = entry("Http://LocalHost:8080")?;
    assert_eq!(with_port.effective_port(), 8080);
    assert_eq!(with_port.to_string(), "http://localhost:8080");
    Ok(())
}

#[test]
fn uppercase_and_one_trailing_dot_are_normalised() -> Result<(), FieldError> {
    assert_eq!(entry("API.Example.COM.")?.to_string(), "api.example.com");
    assert_eq!(
        entry("api.example.com.:8443")?.to_string(),
        "api.example.com:8443"
    );
    assert_eq!(target("API.EXAMPLE.com.")?.to_string(), "api.example.com");
    Ok(())
}

#[test]
fn international_names_become_punycode() -> Result<(), FieldError> {
    assert_eq!(
        entry("bücher.example")?.to_string(),
        "xn--bcher-kva.example"
    );
    assert_eq!(
        entry("*.BÜCHER.example")?.to_string(),
        "*.xn--bcher-kva.example"
    );
    assert_eq!(
        target("Bücher.Example")?.to_string(),
        "xn--bcher-kva.example"
    );
    assert!(entry_matches("bücher.example", "xn--bcher-kva.example")?);
    assert!(entry_matches("XN--BCHER-KVA.example", "BÜCHER.example.")?);
    Ok(())
}

#[test]
fn ipv4_dotted_quads_are_addresses() -> Result<(), FieldError> {
    let parsed = entry("127.0.0.1:3000")?;
    assert_eq!(parsed.pattern(), &HostPattern::Ipv4(Ipv4Addr::LOCALHOST));
    assert_eq!(parsed.to_string(), "127.0.0.1:3000");
    assert_eq!(entry("0.0.0.0")?.to_string(), "0.0.0.0");
    assert_eq!(entry("255.255.255.255")?.to_string(), "255.255.255.255");
    Ok(())
}

#[test]
fn bracketed_ipv6_is_parsed_and_printed_canonically() -> Result<(), FieldError> {
    let parsed = entry("[::1]:8443")?;
    assert_eq!(parsed.pattern(), &HostPattern::Ipv6(Ipv6Addr::LOCALHOST));
    assert_eq!(parsed.port(), Some(8443));
    assert_eq!(parsed.to_string(), "[::1]:8443");
    assert_eq!(entry("[2001:DB8:0:0::1]")?.to_string(), "[2001:db8::1]");
    let parsed_target = target("[0:0:0:0:0:0:0:1]:8443")?;
    assert_eq!(parsed_target.host(), &Host::Ipv6(Ipv6Addr::LOCALHOST));
    assert_eq!(parsed_target.to_string(), "[::1]:8443");
    Ok(())
}

#[test]
fn wildcards_of_both_kinds_are_accepted() -> Result<(), FieldError> {
    let one = entry("*.Slack.com")?;
    assert!(one.is_wildcard());
    assert_eq!(one.to_string(), "*.slack.com");
    assert_eq!(one.to_target(), None);
    let many = entry("http://**.internal.example:8080")?;
    assert!(many.is_wildcard());
    assert_eq!(many.to_string(), "http://**.internal.example:8080");
    Ok(())
}

#[test]
fn underscores_and_hyphens_are_allowed_in_labels() -> Result<(), FieldError> {
    assert_eq!(
        entry("my_host-1.example.com")?.to_string(),
        "my_host-1.example.com"
    );
    Ok(())
}

// ---- entries: rejections ----

#[test]
fn empty_entry_is_rejected() {
    assert_rejected(entry, &[""], "invalid_domain_entry", "host is missing");
    assert_rejected(
        entry,
        &[":443", "https://"],
        "invalid_domain_entry",
        "missing",
    );
}

#[test]
fn whitespace_and_control_characters_are_rejected() {
    let inputs = [
        " api.x.com",
        "api.x.com ",
        "api .x.com",
        "api.x.com\n",
        "a\tb.com",
        "a\u{0}b.com",
    ];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "whitespace");
    assert_rejected(
        entry,
        &["api\u{a0}x.com", "a\u{2003}.com"],
        "invalid_domain_entry",
        "whitespace",
    );
}

#[test]
fn userinfo_is_rejected() {
    let inputs = ["user@api.x.com", "https://user:pw@api.x.com", "@api.x.com"];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "userinfo");
}

#[test]
fn paths_queries_and_fragments_are_rejected() {
    let inputs = [
        "api.x.com/v1",
        "https://api.x.com/v1",
        "https://api.x.com/",
        "api.x.com?x=1",
        "api.x.com#top",
        "api.x.com:443/v1",
    ];
    assert_rejected(
        entry,
        &inputs,
        "invalid_domain_entry",
        "paths, queries and fragments",
    );
}

#[test]
fn backslash_and_percent_are_rejected() {
    assert_rejected(
        entry,
        &["api\\x.com", "https://x.com\\"],
        "invalid_domain_entry",
        "backslash",
    );
    let inputs = ["api%2ex.com", "[fe80::1%25eth0]", "%41.com"];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "'%'");
}

#[test]
fn empty_labels_are_rejected() {
    let inputs = ["a..b.com", ".a.com", "a.com..", "*.a..com"];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "empty label");
}

#[test]
fn bare_star_is_rejected() {
    assert_rejected(
        entry,
        &["*", "**", "https://*", "*:443"],
        "invalid_domain_entry",
        "bare '*'",
    );
}

#[test]
fn wildcard_suffix_needs_two_labels() {
    let inputs = ["*.com", "**.com", "*.com.", "*.", "**.", "*.localhost"];
    assert_rejected(
        entry,
        &inputs,
        "invalid_domain_entry",
        "at least two labels",
    );
}

#[test]
fn star_outside_a_leading_label_is_rejected() {
    let inputs = [
        "api.*.com",
        "a*.x.com",
        "*a.x.com",
        "*.*.x.com",
        "***.x.com",
        "x.com.*",
        "*x",
    ];
    assert_rejected(
        entry,
        &inputs,
        "invalid_domain_entry",
        "'*' is only allowed",
    );
}

#[test]
fn ipv4_in_other_forms_is_rejected() {
    let inputs = [
        "127.1",
        "0x7f.0.0.1",
        "017.0.0.1",
        "127.000.0.1",
        "256.0.0.1",
        "1.2.3.4.5",
        "127.0.0.1.",
        "2130706433",
        "0x7f000001",
        "example.123",
        "*.0.0.1",
    ];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "dotted quad");
    assert_rejected(target, &inputs[..10], "invalid_target_host", "dotted quad");
}

#[test]
fn bad_ports_are_rejected() {
    let inputs = [
        "api.x.com:0",
        "api.x.com:65536",
        "api.x.com:99999999",
        "api.x.com:",
        "api.x.com:-1",
        "api.x.com:+1",
        "api.x.com:08080",
        "api.x.com:https",
        "[::1]:0",
    ];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "port");
}

#[test]
fn other_schemes_are_rejected() {
    assert_rejected(
        entry,
        &["ftp://x.com", "ws://x.com", "://x.com"],
        "invalid_domain_entry",
        "scheme",
    );
}

#[test]
fn ipv6_must_be_bracketed_and_valid() {
    assert_rejected(
        entry,
        &["::1", "2001:db8::1", "fe80::1:443"],
        "invalid_domain_entry",
        "brackets",
    );
    assert_rejected(entry, &["[::1"], "invalid_domain_entry", "closing");
    assert_rejected(
        entry,
        &["[::1]x", "[::1]443", "[::1]]"],
        "invalid_domain_entry",
        "follow the closing",
    );
    let inputs = ["[not-v6]", "[127.0.0.1]", "[]"];
    assert_rejected(entry, &inputs, "invalid_domain_entry", "IPv6");
}

#[test]
fn lookalike_unicode_delimiters_are_rejected() {
    // U+FF0F FULLWIDTH SOLIDUS maps to '/' under UTS #46; U+FF20 to '@'.
    for input in [
        "evil.com\u{ff0f}.slack.com",
        "user\u{ff20}slack.com",
        "a\u{ff05}2e.com",
    ] {
        assert!(entry(input).is_err(), "{input:?}");
        assert!(target(input).is_err(), "{input:?}");
    }
}

#[test]
fn punctuation_outside_labels_is_rejected() {
    for input in [
        "ex!ample.com",
        "a,b.com",
        "a;b.com",
        "a=b.com",
        "a\"b.com",
        "a<b.com",
    ] {
        assert!(entry(input).is_err(), "{input:?}");
    }
}

#[test]
fn overlong_labels_and_names_are_rejected() {
    let label = format!("{}.com", "a".repeat(64));
    assert_rejected(entry, &[&label], "invalid_domain_entry", "longer than 63");
    let name = format!("{}com", "abcdefghi.".repeat(26));
    assert_rejected(entry, &[&name], "invalid_domain_entry", "longer than 253");
}

#[test]
fn invalid_punycode_is_rejected() {
    assert!(entry("xn--a.com").is_err());
}

// ---- lists ----

#[test]
fn lists_keep_order_and_trim_items() -> Result<(), FieldError> {
    let list = DomainList::parse(" *.x.com , api.x.com,[::1]:8443", false)?;
    assert_eq!(list.entries().len(), 3);
    assert_eq!(list.to_string(), "*.x.com,api.x.com,[::1]:8443");
    assert_eq!(
        list.first_exact().map(ToString::to_string),
        Some("api.x.com".to_owned())
    );
    assert!(!list.has_http());
    Ok(())
}

#[test]
fn empty_lists_and_items_are_rejected() {
    let parse = |text: &str| DomainList::parse(text, true);
    assert_rejected(
        parse,
        &["", "  "],
        "invalid_domain_list",
        "the list is empty",
    );
    let inputs = ["a.com,,b.com", "a.com,", ",a.com", "a.com, ,b.com", ","];
    assert_rejected(parse, &inputs, "invalid_domain_list", "empty entry");
}

#[test]
fn a_bad_item_reports_the_entry_error() {
    let result = DomainList::parse("a.com,*.com", false).map_err(|e| e.code());
    assert_eq!(result, Err("invalid_domain_entry"));
}

#[test]
fn http_entries_need_allow_http() -> Result<(), FieldError> {
    let err = DomainList::parse("api.x.com,http://localhost:8080", false);
    match err {
        Err(err @ FieldError::HttpNotAllowed { .. }) => {
            assert_eq!(err.code(), "http_not_allowed");
            let message = err.to_string();
            assert!(message.contains("--allow-http"), "{message}");
            assert!(message.contains("http://localhost:8080"), "{message}");
        }
        other => panic!("expected HttpNotAllowed, got {other:?}"),
    }
    let list = DomainList::parse("api.x.com,http://localhost:8080", true)?;
    assert!(list.has_http());
    Ok(())
}

#[test]
fn same_host_and_port_under_both_schemes_is_rejected() {
    let parse = |text: &str| DomainList::parse(text, true);
    let inputs = [
        "http://a.com,https://a.com",
        "a.com,http://a.com",
        "http://a.com:8080,a.com:8080",
        "http://a.com:443,a.com",
        "a.com:80,http://a.com",
        "http://*.a.com,*.a.com",
    ];
    assert_rejected(
        parse,
        &inputs,
        "invalid_domain_list",
        "both http:// and https://",
    );
}

#[test]
fn same_host_under_both_schemes_on_different_ports_is_accepted() -> Result<(), FieldError> {
    let list = DomainList::parse("http://a.com:8080,a.com", true)?;
    assert_eq!(list.entries().len(), 2);
    Ok(())
}

#[test]
fn repeated_entries_are_rejected() {
    let parse = |text: &str| DomainList::parse(text, false);
    let inputs = [
        "a.com,A.com.",
        "a.com,https://a.com",
        "*.a.com,*.A.com",
        "[::1],[0::1]",
    ];
    assert_rejected(parse, &inputs, "invalid_domain_list", "appears twice");
}

#[test]
fn first_exact_skips_wildcards_and_may_be_absent() -> Result<(), FieldError> {
    assert!(
        DomainList::parse("*.a.com,**.b.com", false)?
            .first_exact()
            .is_none()
    );
    let list = DomainList::parse("*.a.com,127.0.0.1:9000,c.com", false)?;
    assert_eq!(
        list.first_exact().map(ToString::to_string),
        Some("127.0.0.1:9000".to_owned())
    );
    Ok(())
}

#[test]
fn default_target_matches_its_own_entry() -> Result<(), FieldError> {
    let list = DomainList::parse("*.a.com,api.a.com:8443", false)?;
    let first = list.first_exact().and_then(DomainEntry::to_target);
    let found = first.as_ref().and_then(|t| list.find_match(t));
    assert_eq!(
        found.map(ToString::to_string),
        Some("api.a.com:8443".to_owned())
    );
    Ok(())
}

#[test]
fn find_match_returns_the_first_covering_entry() -> Result<(), FieldError> {
    let list = DomainList::parse("api.a.com:8443,*.a.com,**.a.com", false)?;
    let hit = |text: &str| -> Result<Option<String>, FieldError> {
        Ok(list.find_match(&target(text)?).map(ToString::to_string))
    };
    assert_eq!(hit("api.a.com")?, Some("*.a.com".to_owned()));
    assert_eq!(hit("api.a.com:8443")?, Some("api.a.com:8443".to_owned()));
    assert_eq!(hit("x.y.a.com")?, Some("**.a.com".to_owned()));
    assert_eq!(hit("a.com")?, None);
    assert_eq!(hit("evil.com")?, None);
    Ok(())
}

#[test]
fn from_entries_applies_the_list_rules() -> Result<(), FieldError> {
    assert_eq!(
        DomainList::from_entries(Vec::new(), false).map_err(|e| e.code()),
        Err("invalid_domain_list")
    );
    let http = vec![entry("http://localhost")?];
    assert_eq!(
        DomainList::from_entries(http.clone(), false).map_err(|e| e.code()),
        Err("http_not_allowed")
    );
    assert_eq!(
        DomainList::from_entries(http, true)?.to_string(),
        "http://localhost"
    );
    Ok(())
}

// ---- target hosts ----

#[test]
fn targets_in_every_accepted_form_parse() -> Result<(), FieldError> {
    for (input, shown) in [
        ("api.example.com", "api.example.com"),
        ("api.example.com:8443", "api.example.com:8443"),
        ("API.Example.com.", "api.example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.1:80", "10.0.0.1:80"),
        ("[::1]", "[::1]"),
        ("[::1]:8443", "[::1]:8443"),
        ("localhost", "localhost"),
    ] {
        assert_eq!(target(input)?.to_string(), shown, "{input:?}");
    }
    assert_eq!(target("api.example.com")?.port(), None);
    Ok(())
}

#[test]
fn targets_with_forbidden_parts_are_rejected() {
    let code = "invalid_target_host";
    assert_rejected(target, &[""], code, "missing");
    let long = format!("{}.com", "a.".repeat(127));
    assert_rejected(target, &[&long], code, "longer than 255 bytes");
    assert_rejected(
        target,
        &["https://api.x.com", "http://x.com:80"],
        code,
        "scheme",
    );
    assert_rejected(target, &["user@api.x.com", "u:p@x.com"], code, "userinfo");
    assert_rejected(
        target,
        &["x.com/path", "x.com?q=1", "x.com#f", "/x.com"],
        code,
        "paths",
    );
    assert_rejected(target, &["x\\y.com"], code, "backslash");
    assert_rejected(target, &["x%2ey.com", "[::1%251]"], code, "'%'");
    assert_rejected(
        target,
        &[" x.com", "x.com\r\n", "x.com\t"],
        code,
        "whitespace",
    );
    assert_rejected(
        target,
        &["a..com", ".a.com", "a.com.."],
        code,
        "empty label",
    );
    assert_rejected(
        target,
        &["*.x.com", "*", "a*.com"],
        code,
        "'*' is not allowed",
    );
    assert_rejected(target, &["::1", "::1:443"], code, "brackets");
    assert_rejected(target, &["x.com:0", "x.com:65536", "x.com:"], code, "port");
}

// ---- matching ----

#[test]
fn one_label_wildcard_matches_exactly_one_extra_label() -> Result<(), FieldError> {
    assert!(entry_matches("*.slack.com", "api.slack.com")?);
    assert!(entry_matches("*.slack.com", "API.Slack.COM.")?);
    for miss in [
        "slack.com",
        "a.b.slack.com",
        "evilslack.com",
        "slack.com.evil.net",
        "x.slack.com.evil.net",
        "api.slack.co",
        "api.slack.com.evil",
    ] {
        assert!(!entry_matches("*.slack.com", miss)?, "{miss}");
    }
    Ok(())
}

#[test]
fn many_label_wildcard_matches_one_or_more_extra_labels() -> Result<(), FieldError> {
    for hit in ["api.slack.com", "a.b.slack.com", "a.b.c.d.slack.com"] {
        assert!(entry_matches("**.slack.com", hit)?, "{hit}");
    }
    for miss in [
        "slack.com",
        "evilslack.com",
        "a.evilslack.com",
        "x.slack.com.evil.net",
    ] {
        assert!(!entry_matches("**.slack.com", miss)?, "{miss}");
    }
    Ok(())
}

#[test]
fn exact_entries_match_only_the_same_name() -> Result<(), FieldError> {
    assert!(entry_matches("api.x.com", "API.X.COM.")?);
    assert!(!entry_matches("api.x.com", "x.com")?);
    assert!(!entry_matches("api.x.com", "a.api.x.com")?);
    assert!(!entry_matches("x.com", "api.x.com")?);
    Ok(())
}

#[test]
fn entries_without_port_match_only_the_scheme_default() -> Result<(), FieldError> {
    assert!(entry_matches("api.x.com", "api.x.com")?);
    assert!(entry_matches("api.x.com", "api.x.com:443")?);
    assert!(!entry_matches("api.x.com", "api.x.com:80")?);
    assert!(!entry_matches("api.x.com", "api.x.com:8443")?);
    assert!(entry_matches("http://api.x.com", "api.x.com")?);
    assert!(entry_matches("http://api.x.com", "api.x.com:80")?);
    assert!(!entry_matches("http://api.x.com", "api.x.com:443")?);
    Ok(())
}

#[test]
fn entries_with_port_match_only_that_port() -> Result<(), FieldError> {
    assert!(entry_matches("api.x.com:8443", "api.x.com:8443")?);
    assert!(!entry_matches("api.x.com:8443", "api.x.com")?);
    assert!(!entry_matches("api.x.com:8443", "api.x.com:443")?);
    assert!(entry_matches("api.x.com:443", "api.x.com")?);
    assert!(entry_matches("[::1]:8443", "[::1]:8443")?);
    assert!(!entry_matches("[::1]:8443", "[::1]")?);
    Ok(())
}

#[test]
fn ip_literals_match_only_the_same_address() -> Result<(), FieldError> {
    assert!(entry_matches("127.0.0.1", "127.0.0.1")?);
    assert!(!entry_matches("127.0.0.1", "127.0.0.2")?);
    assert!(!entry_matches("127.0.0.1", "localhost")?);
    assert!(!entry_matches("localhost", "127.0.0.1")?);
    assert!(!entry_matches("127.0.0.1", "[::ffff:127.0.0.1]")?);
    assert!(entry_matches("[2001:db8::1]", "[2001:0db8:0:0:0:0:0:1]")?);
    assert!(!entry_matches("*.example.com", "[::1]")?);
    Ok(())
}

#[test]
fn domain_types_serialize_as_canonical_strings() -> Result<(), FieldError> {
    struct Via<'a, T>(&'a T);
    impl<T: Serialize> fmt::Display for Via<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.serialize(f)
        }
    }
    assert_eq!(
        Via(&entry("HTTP://LocalHost:8080")?).to_string(),
        "http://localhost:8080"
    );
    assert_eq!(Via(&target("[::1]:1")?).to_string(), "[::1]:1");
    Ok(())
}

// ---- property tests ----

/// A label that is never numeric (so it can end a host name) and never an `xn--` label.
fn label() -> impl Strategy<Value = String> {
    "[a-wyz][a-z0-9-]{0,6}[a-z0-9]"
}

/// Two to four labels.
fn labels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(label(), 2..5)
}

/// Upper-cases the characters whose position is set in `mask` (cycled).
fn recase(text: &str, mask: &[bool]) -> String {
    text.chars()
        .zip(mask.iter().cycle())
        .map(|(c, upper)| if *upper { c.to_ascii_uppercase() } else { c })
        .collect()
}

proptest! {
    #[test]
    fn one_label_wildcard_never_matches_lookalikes(x in label(), y in label(), evil in labels()) {
        let pattern = entry("*.slack.com");
        prop_assert!(pattern.is_ok());
        let Ok(pattern) = pattern else { return Ok(()) };
        let evil = evil.join(".");
        for miss in [
            format!("{x}.slack.com.{evil}"),
            format!("{x}slack.com"),
            "slack.com".to_owned(),
            format!("{x}.{y}.slack.com"),
            format!("slack.com.{evil}"),
        ] {
            let parsed = target(&miss);
            prop_assert!(parsed.is_ok(), "{}", miss);
            if let Ok(parsed) = parsed {
                prop_assert!(!pattern.matches(&parsed), "{}", miss);
            }
        }
        let hit = target(&format!("{x}.slack.com"));
        prop_assert!(hit.is_ok_and(|t| pattern.matches(&t)));
    }

    #[test]
    fn wildcards_count_whole_labels(suffix in labels(), prefix in prop::collection::vec(label(), 0..4)) {
        let suffix = suffix.join(".");
        let host = prefix.iter().chain(std::iter::once(&suffix)).cloned().collect::<Vec<_>>().join(".");
        let one = entry(&format!("*.{suffix}"));
        let many = entry(&format!("**.{suffix}"));
        let parsed = target(&host);
        if let (Ok(one), Ok(many), Ok(parsed)) = (one, many, parsed) {
            prop_assert_eq!(one.matches(&parsed), prefix.len() == 1);
            prop_assert_eq!(many.matches(&parsed), !prefix.is_empty());
        } else {
            prop_assert!(false, "valid names were rejected: {} / {}", suffix, host);
        }
    }

    #[test]
    fn glued_labels_never_match_by_string_suffix(glue in label(), suffix in labels()) {
        let suffix = suffix.join(".");
        let host = format!("{glue}{suffix}");
        let parsed = target(&host);
        prop_assert!(parsed.is_ok());
        if let Ok(parsed) = parsed {
            for pattern in [suffix.clone(), format!("*.{suffix}"), format!("**.{suffix}")] {
                let pattern = entry(&pattern);
                prop_assert!(pattern.is_ok_and(|p| !p.matches(&parsed)), "{}", host);
            }
        }
    }

    #[test]
    fn exact_match_means_equal_after_normalisation(
        allowed in labels(),
        requested in labels(),
        mask in prop::collection::vec(any::<bool>(), 1..8),
        dot in any::<bool>(),
    ) {
        let allowed = allowed.join(".");
        let mut written = recase(&requested.join("."), &mask);
        if dot {
            written.push('.');
        }
        let (Ok(pattern), Ok(parsed)) = (entry(&allowed), target(&written)) else {
            prop_assert!(false, "valid names were rejected");
            return Ok(());
        };
        let same = parsed.host().to_string() == allowed;
        prop_assert_eq!(pattern.matches(&parsed), same);
        prop_assert_eq!(same, requested.join(".") == allowed);
    }

    #[test]
    fn hosts_not_in_the_list_are_never_accepted(
        allowed in prop::collection::vec(labels(), 1..5),
        requested in labels(),
    ) {
        let allowed: Vec<String> = allowed.iter().map(|l| l.join(".")).collect();
        let requested = requested.join(".");
        let list = DomainList::parse(&allowed.join(","), false);
        let parsed = target(&requested);
        match (list, parsed) {
            (Ok(list), Ok(parsed)) => {
                let found = list.find_match(&parsed).map(ToString::to_string);
                if allowed.contains(&requested) {
                    prop_assert_eq!(found, Some(requested));
                } else {
                    prop_assert_eq!(found, None);
                }
            }
            // Random lists may repeat an entry, which is an error of its own.
            (Err(err), _) => prop_assert_eq!(err.code(), "invalid_domain_list"),
            (_, Err(err)) => prop_assert!(false, "{}", err),
        }
    }

    #[test]
    fn case_and_one_trailing_dot_do_not_change_the_result(
        pattern_labels in labels(),
        kind in 0u8..3,
        host in prop::collection::vec(label(), 1..6),
        mask in prop::collection::vec(any::<bool>(), 1..8),
        dot in any::<bool>(),
        port in prop::option::of(prop_oneof![Just(443u16), Just(80), Just(8443)]),
    ) {
        let prefix = ["", "*.", "**."][usize::from(kind)];
        let pattern = entry(&format!("{prefix}{}", pattern_labels.join(".")));
        let host = host.join(".");
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let plain = target(&format!("{host}{port}"));
        let mut written = recase(&host, &mask);
        if dot {
            written.push('.');
        }
        let varied = target(&format!("{written}{port}"));
        if let (Ok(pattern), Ok(plain), Ok(varied)) = (pattern, plain, varied) {
            prop_assert_eq!(&plain, &varied);
            prop_assert_eq!(pattern.matches(&plain), pattern.matches(&varied));
        } else {
            prop_assert!(false, "valid input was rejected");
        }
    }

    #[test]
    fn accepted_targets_reparse_to_themselves(text in "[a-zA-Z0-9.:\\[\\]üÜ_-]{1,40}") {
        if let Ok(parsed) = target(&text) {
            prop_assert_eq!(target(&parsed.to_string()), Ok(parsed));
        }
    }

    #[test]
    fn accepted_entries_reparse_to_themselves(
        text in "(https?://|HTTP://)?(\\*\\.|\\*\\*\\.)?[a-zA-Z0-9.:\\[\\]ü_-]{1,40}",
    ) {
        if let Ok(parsed) = entry(&text) {
            prop_assert_eq!(entry(&parsed.to_string()), Ok(parsed));
        }
    }

    #[test]
    fn generated_hosts_and_ports_roundtrip(host in labels(), port in 1u16..) {
        let text = format!("{}:{port}", host.join("."));
        prop_assert_eq!(target(&text).map(|t| t.to_string()), Ok(text.clone()));
        prop_assert_eq!(entry(&text).map(|e| e.to_string()), Ok(text));
    }

    #[test]
    fn ipv6_targets_reparse_to_themselves(segments in any::<[u16; 8]>(), port in prop::option::of(1u16..)) {
        let addr = Ipv6Addr::from(segments);
        let text = match port {
            Some(port) => format!("[{addr}]:{port}"),
            None => format!("[{addr}]"),
        };
        let parsed = target(&text);
        prop_assert_eq!(parsed.as_ref().map(|t| t.host()), Ok(&Host::Ipv6(addr)));
        prop_assert_eq!(parsed.map(|t| t.to_string()), Ok(text));
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in any::<String>()) {
        let _ = entry(&text);
        let _ = target(&text);
        let _ = DomainList::parse(&text, true);
    }

    #[test]
    fn parsers_never_panic_on_host_like_text(
        text in "[a-zA-Z0-9.*:\\[\\]/@%\\\\?#_ ,xü。．／-]{0,48}",
    ) {
        let _ = entry(&text);
        let _ = target(&text);
        let _ = DomainList::parse(&text, false);
    }
}
