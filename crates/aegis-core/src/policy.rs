//! The policy engine's pure core (SPEC.md §13): policy files parsed from YAML text, compiled
//! into a [`PolicySet`], and the decision of the policy step for one request.
//!
//! ```
//! use aegis_core::policy::{Decision, PolicySet};
//! use aegis_core::timestamp::Timestamp;
//!
//! let text = "agent: bot\nrules:\n  - service: jira\n    methods: [GET]\n    paths: [\"/api/read.*\"]\n";
//! let set = PolicySet::compile(&[("bot.yaml".to_owned(), text.to_owned())])?;
//! let at = Timestamp::from_millis(0);
//! let decision = set.evaluate("bot", "jira", "GET", b"/api/read/1", at);
//! assert!(matches!(decision, Decision::Allow(rule) if rule.name() == "bot.yaml#1"));
//! assert!(matches!(set.evaluate("bot", "jira", "GET", b"/x/api/read", at), Decision::Deny(_)));
//! assert!(matches!(set.evaluate("other", "jira", "GET", b"/", at), Decision::NoPolicy));
//! # Ok::<(), aegis_core::policy::PolicyErrors>(())
//! ```
//!
//! Nothing here reads files: callers pass `(file name, text)` pairs, sorted, and get back either
//! a set or every problem of every file, each located as `<file>:<line>:<column>: <key path>:
//! <problem>`. Where the files come from, reloading them and enforcing rule rate limits belong
//! to the CLI and aegis-engine. [`replay`] re-decides recorded ledger entries with a set.

pub mod digest;
pub mod error;
pub mod file;
pub mod path_pattern;
pub mod replay;
pub mod rule;
pub mod set;
pub mod time_window;
mod walker;
mod yaml;

pub use digest::RuleDigest;
pub use error::{PolicyError, PolicyErrors, PolicyProblem, PolicyWarning};
pub use file::{FileReport, parse_file};
pub use rule::Rule;
pub use set::{AgentPolicy, Decision, PolicyReport, PolicySet};
pub use time_window::TimeWindow;

#[cfg(test)]
mod tests;
