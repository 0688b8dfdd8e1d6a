//! Fuzzes the policy-file parser and compiler (`policy::parse_file`, `PolicySet::compile`) with
//! arbitrary text, since a policies directory is operator input that a shared checkout or a
//! careless edit can fill with anything.
//!
//! Invariants checked:
//!
//! - nothing panics, whatever the text (deep nesting, odd YAML, huge numbers, bad regexes);
//! - `parse_file` and `compile` agree: a file with no errors compiles, one with errors does not;
//! - every error is located inside the text: line ≥ 1 and at most the number of lines (YAML
//!   counts `\n`, `\r\n` and a lone `\r` as line breaks) + 1, column ≥ 1, and its display
//!   starts with `fuzz.yaml:<line>:<column>: `;
//! - a compiled set decides any request without panicking, and the same way twice.
#![no_main]

use aegis_core::policy::{PolicySet, parse_file};
use aegis_core::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let report = parse_file(FILE, text);
    let lines = yaml_lines(text);
    for error in report.errors() {
        assert!(error.line >= 1 && error.line <= lines, "line {} of {lines}", error.line);
        assert!(error.column >= 1, "column {}", error.column);
        let shown = error.to_string();
        let prefix = format!("{FILE}:{}:{}: ", error.line, error.column);
        assert!(shown.starts_with(&prefix), "{shown:?} lacks {prefix:?}");
    }
    let sources = [(FILE.to_owned(), text.to_owned())];
    match PolicySet::compile(&sources) {
        Ok(set) => {
            assert!(report.errors().is_empty(), "compiled despite errors");
            for policy in set.policies() {
                for rule in policy.rules() {
                    let service = rule.service().as_str();
                    for (method, path) in [("GET", &b"/"[..]), ("POST", b"/v1/x?y"), ("DELETE", b"")] {
                        let at = Timestamp::from_millis(1_772_445_600_000);
                        let agent = policy.agent().as_str();
                        let first = set.evaluate(agent, service, method, path, at).is_allowed();
                        let again = set.evaluate(agent, service, method, path, at).is_allowed();
                        assert_eq!(first, again);
                    }
                }
            }
        }
        Err(_) => assert!(!report.errors().is_empty(), "rejected without a located error"),
    }
});

/// Lines as YAML counts them (`\n`, `\r\n` and a lone `\r` end a line), plus one.
fn yaml_lines(text: &str) -> usize {
    let bytes = text.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    breaks + 2
}
