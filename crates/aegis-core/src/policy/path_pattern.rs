//! Path patterns of policy rules (SPEC.md §13.1): regexes that must match the whole forwarded
//! path, compiled once with Rust's linear-time `regex` engine (no backtracking, no look-around).
//!
//! Each pattern is first compiled on its own, with the 1 MiB size limit, so an error names the
//! pattern it is in and a pattern cannot close the group it is wrapped in. Then all patterns of
//! a rule are compiled into one regex, `^(?:(?:p1)|(?:p2)|…)$`, matched against the raw bytes of
//! the path: one search per rule, whatever the number of patterns.

use regex::bytes::{Regex, RegexBuilder};

/// The compiled size limit of one pattern (SPEC.md §13.1).
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Every path pattern of one rule, compiled into one anchored regex.
#[derive(Debug, Clone)]
pub struct PathMatcher {
    patterns: Vec<String>,
    regex: Regex,
}

impl PathMatcher {
    /// Compiles a rule's patterns (each already accepted by [`check_pattern`]).
    ///
    /// # Errors
    /// The compiler's reason, on one line, when the combined regex does not compile.
    pub fn new(patterns: Vec<String>) -> Result<Self, String> {
        let regex = RegexBuilder::new(&combined(&patterns))
            .size_limit(PATTERN_SIZE_LIMIT.saturating_mul(patterns.len().max(1)))
            .build()
            .map_err(|err| reason(&err))?;
        Ok(Self { patterns, regex })
    }

    /// Whether some pattern matches the whole of `path` (no query string).
    pub fn is_match(&self, path: &[u8]) -> bool {
        self.regex.is_match(path)
    }

    /// The patterns as written in the file.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// A rule's patterns as one anchored alternation: `^(?:(?:p1)|(?:p2)|…)$`.
pub(crate) fn combined(patterns: &[String]) -> String {
    let mut combined = String::from("^(?:");
    for (index, pattern) in patterns.iter().enumerate() {
        if index > 0 {
            combined.push('|');
        }
        combined.push_str("(?:");
        combined.push_str(pattern);
        combined.push(')');
    }
    combined.push_str(")$");
    combined
}

/// Compiles one pattern on its own, with the size limit of SPEC.md §13.1.
///
/// # Errors
/// The compiler's reason on one line, e.g. `unclosed group`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map(drop)
        .map_err(|err| reason(&err))
}

/// The regex crate's error as one line: its `error: …` line for a syntax error.
fn reason(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .or_else(|| text.lines().next())
            .unwrap_or("syntax error")
            .to_owned(),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern is larger than the limit of {limit} bytes")
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or("error")
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> PathMatcher {
        for pattern in patterns {
            check_pattern(pattern).expect("valid pattern");
        }
        PathMatcher::new(patterns.iter().map(|p| (*p).to_owned()).collect()).expect("compiles")
    }

    #[test]
    fn patterns_match_the_whole_path() {
        let m = matcher(&["/api/read.*"]);
        assert!(m.is_match(b"/api/read"));
        assert!(m.is_match(b"/api/read/1"));
        assert!(!m.is_match(b"/x/api/read"), "anchored at the start");
        let m = matcher(&["/api/read"]);
        assert!(!m.is_match(b"/api/read/1"), "anchored at the end");
    }

    #[test]
    fn any_of_several_patterns_matches() {
        let m = matcher(&["/rest/api/3/issue/[A-Z]+-[0-9]+", "/rest/api/3/search"]);
        assert!(m.is_match(b"/rest/api/3/issue/ABC-12"));
        assert!(m.is_match(b"/rest/api/3/search"));
        assert!(!m.is_match(b"/rest/api/3/issue/abc-12"));
        assert!(!m.is_match(b"/rest/api/3/search/x"));
    }

    #[test]
    fn alternation_inside_a_pattern_stays_anchored() {
        let m = matcher(&["/a|/b"]);
        assert!(m.is_match(b"/a") && m.is_match(b"/b"));
        assert!(!m.is_match(b"/a/x") && !m.is_match(b"/x/b"));
    }

    #[test]
    fn paths_are_matched_as_raw_bytes() {
        let m = matcher(&["/files/[^/]+"]);
        assert!(
            m.is_match(b"/files/a%2Fb"),
            "percent-encoding is not decoded"
        );
        assert!(!m.is_match(b"/files/a/b"));
        let dot = matcher(&["/a.c"]);
        assert!(
            !dot.is_match(b"/a\xffc"),
            "invalid UTF-8 is not any character"
        );
    }

    #[test]
    fn a_pattern_cannot_escape_its_group() {
        let err = check_pattern("x)|(.*").expect_err("unbalanced");
        assert!(err.contains("unopened group"), "{err}");
    }

    #[test]
    fn errors_are_one_line() {
        let err = check_pattern("(abc").expect_err("unclosed");
        assert_eq!(err, "unclosed group");
        assert!(check_pattern("a(?=b)").is_err(), "no look-around");
        assert!(check_pattern(r"(a)\1").is_err(), "no backreferences");
    }

    #[test]
    fn oversized_patterns_are_refused() {
        let err = check_pattern(r"\w{1000}\w{1000}").expect_err("too big");
        assert!(err.contains("limit"), "{err}");
    }
}
