//! One compiled allow rule: what it matches (service, methods, paths, time window), what it
//! adds (a rate limit), and where it came from (file, line, name) for output and the ledger.

use crate::names::ServiceName;
use crate::policy::digest::{CanonicalParts, RuleDigest, canonical_form};
use crate::policy::path_pattern::PathMatcher;
use crate::policy::time_window::TimeWindow;
use crate::rate::Rate;
use crate::timestamp::Timestamp;

/// An allow rule of a policy file, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    file: String,
    line: usize,
    position: usize,
    service: ServiceName,
    methods: Option<Vec<String>>,
    paths: Option<PathMatcher>,
    rate_limit: Option<Rate>,
    window: Option<TimeWindow>,
    digest: RuleDigest,
}

/// Everything a rule is built from, already validated.
pub(crate) struct RuleParts {
    pub(crate) name: Option<String>,
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) position: usize,
    pub(crate) service: ServiceName,
    pub(crate) methods: Option<Vec<String>>,
    pub(crate) paths: Option<PathMatcher>,
    pub(crate) rate_limit: Option<Rate>,
    pub(crate) window: Option<TimeWindow>,
}

impl Rule {
    /// Builds a rule, naming it `<file>#<position>` when it has no name, and computes its digest.
    pub(crate) fn new(parts: RuleParts) -> Self {
        let digest = RuleDigest::of(&canonical_form(&CanonicalParts {
            service: parts.service.as_str(),
            methods: parts.methods.as_deref(),
            paths: parts.paths.as_ref().map(PathMatcher::patterns),
            rate_limit: parts.rate_limit,
            window: parts.window.as_ref(),
        }));
        let name = parts
            .name
            .unwrap_or_else(|| format!("{}#{}", parts.file, parts.position));
        Self {
            name,
            file: parts.file,
            line: parts.line,
            position: parts.position,
            service: parts.service,
            methods: parts.methods,
            paths: parts.paths,
            rate_limit: parts.rate_limit,
            window: parts.window,
            digest,
        }
    }

    /// The label used in output: the `name` key, or `<file>#<position>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the rule is in.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line where the rule starts.
    pub fn line(&self) -> usize {
        self.line
    }

    /// `<file>:<line>`, as `policy test` and denial messages print it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The rule's 1-based position in its file.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The service the rule is for.
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// The methods allowed, upper-case; `None` allows any method.
    pub fn methods(&self) -> Option<&[String]> {
        self.methods.as_deref()
    }

    /// The path patterns as written; `None` allows any path.
    pub fn paths(&self) -> Option<&[String]> {
        self.paths.as_ref().map(PathMatcher::patterns)
    }

    /// The rule's own rate limit, a limiter in step 8 when the rule decides.
    pub fn rate_limit(&self) -> Option<Rate> {
        self.rate_limit
    }

    /// When the rule applies; `None` is always.
    pub fn time_window(&self) -> Option<&TimeWindow> {
        self.window.as_ref()
    }

    /// SHA-256 of the rule's canonical form (see [`crate::policy::digest`]).
    pub fn digest(&self) -> &RuleDigest {
        &self.digest
    }

    /// The canonical form the digest is computed over.
    pub fn canonical_form(&self) -> Vec<u8> {
        canonical_form(&CanonicalParts {
            service: self.service.as_str(),
            methods: self.methods.as_deref(),
            paths: self.paths(),
            rate_limit: self.rate_limit,
            window: self.window.as_ref(),
        })
    }

    /// Whether the rule allows this request: service, method, path (without the query string)
    /// and time all match.
    pub fn matches(&self, service: &str, method: &str, path: &[u8], at: Timestamp) -> bool {
        self.service.as_str() == service && self.matches_request(method, path, at)
    }

    /// [`Rule::matches`] without the service, for rules already selected by service. The
    /// cheapest tests run first; nothing allocates.
    pub(crate) fn matches_request(&self, method: &str, path: &[u8], at: Timestamp) -> bool {
        self.matches_method(method)
            && self.paths.as_ref().is_none_or(|paths| paths.is_match(path))
            && self.matches_window(at)
    }

    /// Whether the rule allows `method` (any, when it lists none).
    pub(crate) fn matches_method(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m == method))
    }

    /// Whether `at` falls in the rule's time window (always, when it has none).
    pub(crate) fn matches_window(&self, at: Timestamp) -> bool {
        self.window
            .as_ref()
            .is_none_or(|window| window.contains(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::path_pattern::check_pattern;

    fn rule(methods: Option<&[&str]>, paths: Option<&[&str]>) -> Rule {
        let paths = paths.map(|patterns| {
            let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
            for pattern in &patterns {
                check_pattern(pattern).expect("valid");
            }
            PathMatcher::new(patterns).expect("compiles")
        });
        Rule::new(RuleParts {
            name: None,
            file: "bot.yaml".to_owned(),
            line: 3,
            position: 1,
            service: ServiceName::parse("jira").expect("service"),
            methods: methods.map(|ms| ms.iter().map(|m| (*m).to_owned()).collect()),
            paths,
            rate_limit: None,
            window: None,
        })
    }

    const AT: Timestamp = Timestamp::from_millis(0);

    #[test]
    fn methods_compare_exactly() {
        let r = rule(Some(&["GET", "HEAD"]), None);
        assert!(r.matches("jira", "GET", b"/x", AT));
        assert!(r.matches("jira", "HEAD", b"/x", AT));
        assert!(!r.matches("jira", "POST", b"/x", AT));
        assert!(
            !r.matches("jira", "get", b"/x", AT),
            "methods are case-sensitive"
        );
        assert!(!r.matches("jira", "GETX", b"/x", AT));
    }

    #[test]
    fn absent_methods_and_paths_allow_anything_for_the_service() {
        let r = rule(None, None);
        assert!(r.matches("jira", "DELETE", b"/anything/at/all", AT));
        assert!(
            !r.matches("slack", "GET", b"/", AT),
            "other services never match"
        );
        assert!(
            !r.matches("Jira", "GET", b"/", AT),
            "service names are case-sensitive"
        );
    }

    #[test]
    fn paths_are_anchored() {
        let r = rule(None, Some(&["/api/read.*"]));
        assert!(r.matches("jira", "GET", b"/api/read/1", AT));
        assert!(!r.matches("jira", "GET", b"/x/api/read", AT));
    }

    #[test]
    fn unnamed_rules_are_named_by_file_and_position() {
        let r = rule(None, None);
        assert_eq!(r.name(), "bot.yaml#1");
        assert_eq!(r.location(), "bot.yaml:3");
        assert_eq!(r.digest().to_hex().len(), 64);
        assert_eq!(*r.digest(), RuleDigest::of(&r.canonical_form()));
    }
}
