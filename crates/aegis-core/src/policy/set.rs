//! A whole policies directory compiled into a [`PolicySet`], and the decision of the policy step
//! (SPEC.md §13.2) for one request.
//!
//! Rules are indexed by agent, then by service, so a decision looks at the rules of one agent
//! for one service only, in file order, and allocates nothing.

use std::collections::HashMap;

use regex::bytes::{RegexSet, RegexSetBuilder};

use crate::names::AgentName;
use crate::policy::error::{PolicyError, PolicyErrors, PolicyProblem, PolicyWarning};
use crate::policy::file::{FileReport, parse_file};
use crate::policy::path_pattern;
use crate::policy::rule::Rule;
use crate::timestamp::Timestamp;

/// What the policy step says about one request.
#[derive(Debug, Clone, Copy)]
pub enum Decision<'a> {
    /// The agent has no policy file: grants, scopes and limits govern it (unless
    /// `gate.require_policy` is set, which the caller applies).
    NoPolicy,
    /// The first matching rule allows the request; its rate limit (if any) applies in step 8.
    Allow(&'a Rule),
    /// The agent has a policy and no rule matched: default deny (`policy_denied`).
    Deny(&'a AgentPolicy),
}

impl Decision<'_> {
    /// Whether the request may go on (`Allow` or `NoPolicy`).
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Deny(_))
    }

    /// The deciding rule, for `Allow`.
    pub fn rule(&self) -> Option<&Rule> {
        match self {
            Self::Allow(rule) => Some(rule),
            _ => None,
        }
    }
}

/// The policy of one agent: the rules of its file, indexed by service.
#[derive(Clone)]
pub struct AgentPolicy {
    agent: AgentName,
    file: String,
    rules: Vec<Rule>,
    by_service: HashMap<String, ServiceRules>,
}

/// From this many rules for one service on, their path patterns are also compiled into one
/// [`RegexSet`]: one pass over the path finds every rule whose paths match, instead of one
/// search per rule.
const SET_FROM_RULES: usize = 4;

/// The rules of one agent for one service, in file order.
#[derive(Debug, Clone)]
struct ServiceRules {
    /// Indexes into [`AgentPolicy::rules`].
    rules: Vec<usize>,
    /// Pattern `i` is the anchored alternation of rule `rules[i]`'s paths (the empty pattern,
    /// which matches anything, for a rule without paths).
    paths: Option<RegexSet>,
}

impl ServiceRules {
    fn new(rules: Vec<usize>, all: &[Rule]) -> Self {
        let paths = (rules.len() >= SET_FROM_RULES)
            .then(|| {
                let patterns: Vec<String> = rules
                    .iter()
                    .map(|&index| {
                        all[index]
                            .paths()
                            .map_or_else(String::new, path_pattern::combined)
                    })
                    .collect();
                RegexSetBuilder::new(&patterns)
                    .size_limit(path_pattern::PATTERN_SIZE_LIMIT.saturating_mul(patterns.len()))
                    .build()
                    .ok()
            })
            .flatten();
        Self { rules, paths }
    }
}

impl std::fmt::Debug for AgentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A policy can hold hundreds of rules; name it rather than dumping them.
        f.debug_struct("AgentPolicy")
            .field("agent", &self.agent)
            .field("file", &self.file)
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl AgentPolicy {
    fn new(agent: AgentName, file: String, rules: Vec<Rule>) -> Self {
        let mut grouped: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, rule) in rules.iter().enumerate() {
            grouped
                .entry(rule.service().as_str().to_owned())
                .or_default()
                .push(index);
        }
        let by_service = grouped
            .into_iter()
            .map(|(service, indexes)| (service, ServiceRules::new(indexes, &rules)))
            .collect();
        Self {
            agent,
            file,
            rules,
            by_service,
        }
    }

    /// The agent governed.
    pub fn agent(&self) -> &AgentName {
        &self.agent
    }

    /// The file the policy comes from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule allowing the request, or `None` (default deny). `path` is the forwarded
    /// path without the query string, as raw bytes.
    pub fn first_match(
        &self,
        service: &str,
        method: &str,
        path: &[u8],
        at: Timestamp,
    ) -> Option<&Rule> {
        let group = self.by_service.get(service)?;
        let rule = |position: usize| group.rules.get(position).and_then(|i| self.rules.get(*i));
        match &group.paths {
            // Positions come in ascending order, so the first hit is the first rule in file
            // order whose paths, method and window all match.
            Some(set) => set
                .matches(path)
                .iter()
                .filter_map(rule)
                .find(|rule| rule.matches_method(method) && rule.matches_window(at)),
            None => (0..group.rules.len())
                .filter_map(rule)
                .find(|rule| rule.matches_request(method, path, at)),
        }
    }
}

/// Every policy file of a directory, compiled: immutable, shared by all requests.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    agents: HashMap<String, AgentPolicy>,
    file_count: usize,
    rule_count: usize,
    warnings: Vec<PolicyWarning>,
}

impl PolicySet {
    /// A set without policies: every agent gets [`Decision::NoPolicy`].
    pub fn empty() -> Self {
        Self::default()
    }

    /// Compiles `(file name, text)` pairs, in the order given (callers sort them; the first
    /// file for an agent governs it).
    ///
    /// # Errors
    /// Every problem of every file when any file has one: a directory with an invalid file is
    /// rejected whole (SPEC.md §13.2).
    pub fn compile(sources: &[(String, String)]) -> Result<Self, PolicyErrors> {
        PolicyReport::check(sources).into_set()
    }

    /// The policy step for one request: `agent` by name, the forwarded `path` without the
    /// query string (raw bytes), at `at`. The first matching rule decides. Allocation-free.
    pub fn evaluate(
        &self,
        agent: &str,
        service: &str,
        method: &str,
        path: &[u8],
        at: Timestamp,
    ) -> Decision<'_> {
        let Some(policy) = self.agents.get(agent) else {
            return Decision::NoPolicy;
        };
        match policy.first_match(service, method, path, at) {
            Some(rule) => Decision::Allow(rule),
            None => Decision::Deny(policy),
        }
    }

    /// The policy of `agent`, if it has a file.
    pub fn policy(&self, agent: &str) -> Option<&AgentPolicy> {
        self.agents.get(agent)
    }

    /// Whether `agent` has a policy file.
    pub fn has_policy(&self, agent: &str) -> bool {
        self.agents.contains_key(agent)
    }

    /// Every agent policy, in no particular order.
    pub fn policies(&self) -> impl Iterator<Item = &AgentPolicy> {
        self.agents.values()
    }

    /// How many files the set was compiled from.
    pub fn file_count(&self) -> usize {
        self.file_count
    }

    /// How many rules the set holds.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Whether the set has no policy at all.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The warnings found while compiling (old spellings, repeated rule names), for the caller
    /// to show or log.
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }
}

/// What checking a policies directory found, file by file: what `policy validate` and
/// `policy list` print, and what [`PolicySet::compile`] builds on.
#[derive(Debug, Clone)]
pub struct PolicyReport {
    files: Vec<FileReport>,
}

impl PolicyReport {
    /// Parses and compiles every `(file name, text)` pair, then checks that no two files
    /// govern the same agent (the later file gets the error, naming the earlier one).
    pub fn check(sources: &[(String, String)]) -> Self {
        let mut files: Vec<FileReport> = sources
            .iter()
            .map(|(name, text)| parse_file(name, text))
            .collect();
        let mut owners: HashMap<String, String> = HashMap::new();
        for report in &mut files {
            let Some(agent) = report.agent().map(|a| a.as_str().to_owned()) else {
                continue;
            };
            match owners.get(&agent) {
                Some(first_file) => {
                    let first_file = first_file.clone();
                    report.add_agent_error(PolicyProblem::DuplicateAgent { agent, first_file });
                }
                None => {
                    owners.insert(agent, report.file().to_owned());
                }
            }
        }
        Self { files }
    }

    /// The report of every file, in the order given.
    pub fn files(&self) -> &[FileReport] {
        &self.files
    }

    /// Every problem, file by file.
    pub fn errors(&self) -> impl Iterator<Item = &PolicyError> {
        self.files.iter().flat_map(FileReport::errors)
    }

    /// Every warning, file by file.
    pub fn warnings(&self) -> impl Iterator<Item = &PolicyWarning> {
        self.files.iter().flat_map(FileReport::warnings)
    }

    /// Whether no file has a problem.
    pub fn is_valid(&self) -> bool {
        self.files.iter().all(FileReport::is_valid)
    }

    /// How many rules the files list, valid or not.
    pub fn rule_count(&self) -> usize {
        self.files.iter().map(FileReport::rule_count).sum()
    }

    /// Builds the policy set.
    ///
    /// # Errors
    /// Every problem, when there is any.
    pub fn into_set(self) -> Result<PolicySet, PolicyErrors> {
        let errors: Vec<PolicyError> = self.errors().cloned().collect();
        if let Some(errors) = PolicyErrors::from_vec(errors) {
            return Err(errors);
        }
        let warnings = self.warnings().cloned().collect();
        let file_count = self.files.len();
        let mut rule_count = 0;
        let mut agents = HashMap::with_capacity(file_count);
        for report in self.files {
            let Some(agent) = report.agent().cloned() else {
                continue;
            };
            rule_count += report.rules.len();
            let policy = AgentPolicy::new(agent, report.file().to_owned(), report.rules);
            agents.insert(policy.agent.as_str().to_owned(), policy);
        }
        Ok(PolicySet {
            agents,
            file_count,
            rule_count,
            warnings,
        })
    }
}
