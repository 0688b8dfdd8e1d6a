//! One policy file (SPEC.md §13.1): its YAML walked into typed, compiled rules, with every
//! problem collected (not just the first) and located by line, column and key path.
//!
//! The legacy spellings of SPEC.md §27 (`rateLimit`, `timeWindow`, lower-case methods, old rate
//! units) are accepted with a warning naming the new spelling; when both spellings are given,
//! the new one wins. Cross-file rules (one file per agent) are the policy set's job.

use std::collections::HashMap;

use crate::field_error::shown;
use crate::names::{AgentName, ServiceName};
use crate::policy::error::{PolicyError, PolicyProblem, PolicyWarning};
use crate::policy::path_pattern::{PathMatcher, check_pattern};
use crate::policy::rule::{Rule, RuleParts};
use crate::policy::time_window::{ClockTime, Day, DaySet, TimeWindow, Zone};
use crate::policy::walker::{Key, Walker, key};
use crate::policy::yaml::{self, Mark, Node, Value};
use crate::rate::Rate;

/// What compiling one file found: its agent, rule count and services as far as they could be
/// read, its problems and warnings, and (when it has no problem) its compiled rules.
#[derive(Debug, Clone)]
pub struct FileReport {
    file: String,
    agent: Option<AgentName>,
    agent_mark: Mark,
    rule_count: usize,
    services: Vec<ServiceName>,
    pub(crate) errors: Vec<PolicyError>,
    warnings: Vec<PolicyWarning>,
    pub(crate) rules: Vec<Rule>,
}

impl FileReport {
    /// The file name.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The agent the file governs, when the `agent` key is valid.
    pub fn agent(&self) -> Option<&AgentName> {
        self.agent.as_ref()
    }

    /// How many items the `rules` list has (valid or not).
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// The distinct valid services of the rules, in order of first appearance.
    pub fn services(&self) -> &[ServiceName] {
        &self.services
    }

    /// Every problem found in the file (including cross-file ones), in the order found.
    pub fn errors(&self) -> &[PolicyError] {
        &self.errors
    }

    /// Every warning.
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }

    /// Whether the file has no problem.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The compiled rules; complete only when the file is valid.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Records a problem found by the policy set (a second file for the same agent), at the
    /// file's `agent` value.
    pub(crate) fn add_agent_error(&mut self, problem: PolicyProblem) {
        self.errors.push(PolicyError {
            file: self.file.clone(),
            line: self.agent_mark.line,
            column: self.agent_mark.column,
            key: "agent".to_owned(),
            problem,
        });
    }
}

/// Parses and compiles one policy file's text.
pub fn parse_file(file: &str, text: &str) -> FileReport {
    let mut walker = Walker {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut report = FileReport {
        file: file.to_owned(),
        agent: None,
        agent_mark: Mark::START,
        rule_count: 0,
        services: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        rules: Vec::new(),
    };
    match yaml::parse(text) {
        Ok(root) => walker.file_root(&root, &mut report),
        Err(err) => walker.error(
            err.mark,
            "",
            PolicyProblem::Yaml {
                message: err.message,
            },
        ),
    }
    // Problems are found key by key; report them in file order.
    walker.errors.sort_by_key(|e| (e.line, e.column));
    walker.warnings.sort_by_key(|w| (w.line, w.column));
    report.errors = walker.errors;
    report.warnings = walker.warnings;
    if !report.errors.is_empty() {
        report.rules.clear();
    }
    report
}

const FILE_KEYS: &[Key] = &[key("agent", true), key("rules", true)];
const FILE_KEY_LIST: &str = "agent, rules";

const RULE_KEYS: &[Key] = &[
    key("name", false),
    key("service", true),
    key("methods", false),
    key("paths", false),
    Key {
        name: "rate_limit",
        legacy: Some("rateLimit"),
        required: false,
    },
    Key {
        name: "time_window",
        legacy: Some("timeWindow"),
        required: false,
    },
];
const RULE_KEY_LIST: &str = "name, service, methods, paths, rate_limit, time_window";

const WINDOW_KEYS: &[Key] = &[
    key("start", true),
    key("end", true),
    key("timezone", false),
    key("days", false),
];
const WINDOW_KEY_LIST: &str = "start, end, timezone, days";

/// The zone of a time window without `timezone`.
const DEFAULT_ZONE: &str = "UTC";
/// The longest rule name accepted, in characters.
const MAX_RULE_NAME_CHARS: usize = 128;
/// The longest method name accepted, in bytes.
const MAX_METHOD_LEN: usize = 32;

impl Walker<'_> {
    fn file_root(&mut self, root: &Node, report: &mut FileReport) {
        let Value::Map(entries) = &root.value else {
            self.wrong_type(root, "", "a mapping with the keys agent and rules");
            return;
        };
        let fields = self.fields(root.mark, entries, "", FILE_KEYS, FILE_KEY_LIST);
        if let Some(node) = fields.get("agent") {
            report.agent_mark = node.mark;
            report.agent = self
                .scalar(node, "agent", "an agent name")
                .and_then(|text| {
                    AgentName::parse(text)
                        .map_err(|e| self.error(node.mark, "agent", PolicyProblem::Field(e)))
                        .ok()
                });
        }
        if let Some(node) = fields.get("rules") {
            self.rules(node, report);
        }
    }

    fn rules(&mut self, node: &Node, report: &mut FileReport) {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, "rules", "a list of rules");
            return;
        };
        report.rule_count = items.len();
        if items.is_empty() {
            let what = "a policy needs at least one rule; without rules every request is refused";
            self.error(node.mark, "rules", PolicyProblem::EmptyList { what });
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let path = format!("rules[{index}]");
            let Some(rule) = self.rule(item, &path, index + 1) else {
                continue;
            };
            if !report.services.contains(rule.service()) {
                report.services.push(rule.service().clone());
            }
            if let Some(first) = names.insert(rule.name().to_owned(), rule.line()) {
                self.warn(
                    item.mark,
                    &format!("{path}.name"),
                    format!(
                        "rule name '{}' is already used on line {first}; output and the ledger \
                         cannot tell the two apart",
                        shown(rule.name())
                    ),
                );
            }
            report.rules.push(rule);
        }
    }

    /// Walks one rule; `None` when anything in it is wrong (the problems are recorded).
    fn rule(&mut self, node: &Node, path: &str, position: usize) -> Option<Rule> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, path, "a rule (a mapping with at least a service)");
            return None;
        };
        let errors_before = self.errors.len();
        let fields = self.fields(node.mark, entries, path, RULE_KEYS, RULE_KEY_LIST);
        let name = fields.get("name").and_then(|n| self.rule_name(n, path));
        let service = fields.get("service").and_then(|n| {
            let key = format!("{path}.service");
            let text = self.scalar(n, &key, "a service name")?;
            ServiceName::parse(text)
                .map_err(|e| self.error(n.mark, &key, PolicyProblem::Field(e)))
                .ok()
        });
        let methods = fields.get("methods").and_then(|n| self.methods(n, path));
        let paths = fields.get("paths").and_then(|n| self.paths(n, path));
        let rate_limit = fields.get("rate_limit").and_then(|n| self.rate(n, path));
        let window = fields.get("time_window").and_then(|n| self.window(n, path));
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Rule::new(RuleParts {
            name,
            file: self.file.to_owned(),
            line: node.mark.line,
            position,
            service: service?,
            methods,
            paths,
            rate_limit,
            window,
        }))
    }

    fn rule_name(&mut self, node: &Node, path: &str) -> Option<String> {
        let key = format!("{path}.name");
        let text = self.scalar(node, &key, "a rule name")?;
        let count = text.chars().count();
        if count == 0 || count > MAX_RULE_NAME_CHARS || text.chars().any(char::is_control) {
            let found = shown(text);
            self.error(node.mark, &key, PolicyProblem::InvalidRuleName { found });
            return None;
        }
        Some(text.to_owned())
    }

    fn methods(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let key = format!("{path}.methods");
        let what = "an empty methods list allows nothing; leave the key out to allow any method";
        let items = self.list(node, &key, "a list of methods such as [GET, POST]", what)?;
        let mut methods = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_key = format!("{key}[{index}]");
            let Some(text) = self.scalar(item, &item_key, "a method name") else {
                ok = false;
                continue;
            };
            if !is_method_token(text) {
                let found = shown(text);
                self.error(item.mark, &item_key, PolicyProblem::InvalidMethod { found });
                ok = false;
                continue;
            }
            let upper = text.to_ascii_uppercase();
            if upper != text {
                self.warn(
                    item.mark,
                    &item_key,
                    format!("method '{text}' is the old lower-case spelling; write {upper}"),
                );
            }
            methods.push(upper);
        }
        ok.then_some(methods)
    }

    fn paths(&mut self, node: &Node, path: &str) -> Option<PathMatcher> {
        let key = format!("{path}.paths");
        let what = "an empty paths list allows nothing; leave the key out to allow any path";
        let items = self.list(node, &key, "a list of path regexes", what)?;
        let mut patterns = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_key = format!("{key}[{index}]");
            let Some(text) = self.scalar(item, &item_key, "a path regex") else {
                ok = false;
                continue;
            };
            if let Err(reason) = check_pattern(text) {
                self.error(item.mark, &item_key, PolicyProblem::InvalidRegex { reason });
                ok = false;
                continue;
            }
            patterns.push(text.to_owned());
        }
        if !ok {
            return None;
        }
        PathMatcher::new(patterns)
            .map_err(|reason| self.error(node.mark, &key, PolicyProblem::InvalidRegex { reason }))
            .ok()
    }

    fn rate(&mut self, node: &Node, path: &str) -> Option<Rate> {
        let key = format!("{path}.rate_limit");
        let text = self.scalar(node, &key, "a rate such as 20/min")?;
        match Rate::parse(text) {
            Ok(parsed) => {
                if let Some(warning) = parsed.legacy_warning() {
                    self.warn(node.mark, &key, warning);
                }
                Some(parsed.rate())
            }
            Err(e) => {
                self.error(node.mark, &key, PolicyProblem::Field(e));
                None
            }
        }
    }

    fn window(&mut self, node: &Node, path: &str) -> Option<TimeWindow> {
        let key = format!("{path}.time_window");
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, &key, "a mapping with start, end, timezone and days");
            return None;
        };
        let errors_before = self.errors.len();
        let fields = self.fields(node.mark, entries, &key, WINDOW_KEYS, WINDOW_KEY_LIST);
        let start = fields
            .get("start")
            .and_then(|n| self.clock(n, &key, "start"));
        let end = fields.get("end").and_then(|n| self.clock(n, &key, "end"));
        let zone = match fields.get("timezone") {
            Some(n) => self.zone(n, &key),
            None => self.default_zone(node.mark, &key),
        };
        let days = match fields.get("days") {
            Some(n) => self.days(n, &key),
            None => Some(DaySet::EVERY_DAY),
        };
        let (start, end, zone, days) = (start?, end?, zone?, days?);
        if self.errors.len() > errors_before {
            return None;
        }
        let window = TimeWindow::new(start, end, &zone, days);
        if window.is_none() {
            let mark = fields.get("end").map_or(node.mark, |n| n.mark);
            let time = start.to_string();
            self.error(
                mark,
                &format!("{key}.end"),
                PolicyProblem::EmptyWindow { time },
            );
        }
        window
    }

    fn clock(&mut self, node: &Node, window_key: &str, name: &str) -> Option<ClockTime> {
        let key = format!("{window_key}.{name}");
        let text = self.scalar(node, &key, "a time \"HH:MM\"")?;
        let time = ClockTime::parse(text);
        if time.is_none() {
            let found = shown(text);
            self.error(node.mark, &key, PolicyProblem::InvalidTime { found });
        }
        time
    }

    fn zone(&mut self, node: &Node, window_key: &str) -> Option<Zone> {
        let key = format!("{window_key}.timezone");
        let text = self.scalar(node, &key, "an IANA time zone name")?;
        let Some(zone) = Zone::lookup(text) else {
            let found = shown(text);
            self.error(node.mark, &key, PolicyProblem::UnknownTimeZone { found });
            return None;
        };
        if zone.name() != text {
            self.warn(
                node.mark,
                &key,
                format!(
                    "time zone '{}' is spelled {} in the IANA database; write that",
                    shown(text),
                    zone.name()
                ),
            );
        }
        Some(zone)
    }

    /// UTC, the zone of a window without `timezone`. The embedded database always has it; if
    /// it ever did not, the window is refused rather than silently dropped.
    fn default_zone(&mut self, mark: Mark, window_key: &str) -> Option<Zone> {
        let zone = Zone::lookup(DEFAULT_ZONE);
        if zone.is_none() {
            let found = DEFAULT_ZONE.to_owned();
            let key = format!("{window_key}.timezone");
            self.error(mark, &key, PolicyProblem::UnknownTimeZone { found });
        }
        zone
    }

    fn days(&mut self, node: &Node, window_key: &str) -> Option<DaySet> {
        let key = format!("{window_key}.days");
        let what = "an empty days list allows nothing; leave the key out to allow every day";
        let items = self.list(node, &key, "a list of days such as [mon, tue]", what)?;
        let mut days = DaySet::EMPTY;
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_key = format!("{key}[{index}]");
            let Some(text) = self.scalar(item, &item_key, "a day (mon … sun)") else {
                ok = false;
                continue;
            };
            match Day::parse(text) {
                Some(day) => days = days.with(day),
                None => {
                    let found = shown(text);
                    self.error(item.mark, &item_key, PolicyProblem::InvalidDay { found });
                    ok = false;
                }
            }
        }
        ok.then_some(days)
    }
}

/// Whether `text` is an HTTP method token (RFC 9110 `tchar`s) of reasonable length.
fn is_method_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_METHOD_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
