//! What can be wrong with a policy file, and what deserves a warning.
//!
//! Every problem is located (`<file>:<line>:<column>: <key path>: <problem>`, SPEC.md §13.3) and
//! has a stable snake_case [`PolicyProblem::code`]. Messages quote what the file says (names,
//! patterns, times): policy files hold no secrets.

use std::fmt;

use crate::field_error::FieldError;

/// One problem in one policy file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file name, as given to the compiler.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The full key path, such as `rules[0].methods[1]`; empty for a YAML syntax error.
    pub key: String,
    /// What is wrong.
    pub problem: PolicyProblem,
}

/// What is wrong at a place in a policy file. Codes are stable: never renamed or reused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyProblem {
    /// The text is not YAML, or uses a YAML feature policy files do not allow.
    #[error("{message}")]
    Yaml {
        /// The parser's complaint.
        message: String,
    },
    /// A key the format does not have.
    #[error("unknown key '{found}'; {}", suggestion_or_list(.suggestion, .expected))]
    UnknownKey {
        /// The key as written.
        found: String,
        /// The known key it most resembles, if any is close.
        suggestion: Option<&'static str>,
        /// Every key allowed at this place, comma-separated.
        expected: &'static str,
    },
    /// A key given twice in one mapping.
    #[error("duplicate key; it was already given on line {first_line}")]
    DuplicateKey {
        /// Where the key was first given.
        first_line: usize,
    },
    /// A required key is absent.
    #[error("required key is missing")]
    MissingKey,
    /// A value of the wrong shape (a list where a string belongs, and so on).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What belongs here.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A list that must have at least one item is empty.
    #[error("{what}")]
    EmptyList {
        /// What an empty list means here and what to write instead.
        what: &'static str,
    },
    /// A name or rate that the shared field parsers refuse.
    #[error("{0}")]
    Field(FieldError),
    /// A method that is not an HTTP method token.
    #[error("invalid method '{found}': expected an HTTP method name such as GET or POST")]
    InvalidMethod {
        /// What was given.
        found: String,
    },
    /// A path pattern that does not compile.
    #[error("invalid regex: {reason}")]
    InvalidRegex {
        /// The compiler's reason, on one line.
        reason: String,
    },
    /// A time that is not `HH:MM` in 24-hour form.
    #[error("invalid time '{found}': expected \"HH:MM\" in 24-hour time, from 00:00 to 23:59")]
    InvalidTime {
        /// What was given.
        found: String,
    },
    /// A time window whose start equals its end.
    #[error(
        "start and end are both {time}; a window needs two different times (an end before the \
         start crosses midnight)"
    )]
    EmptyWindow {
        /// The time given for both.
        time: String,
    },
    /// A time zone the embedded database does not know.
    #[error("unknown time zone '{found}': expected an IANA name such as Europe/Berlin or UTC")]
    UnknownTimeZone {
        /// What was given.
        found: String,
    },
    /// A day that is not `mon` … `sun`.
    #[error("invalid day '{found}': expected mon, tue, wed, thu, fri, sat or sun")]
    InvalidDay {
        /// What was given.
        found: String,
    },
    /// A rule name that is empty, too long or has control characters.
    #[error("invalid rule name '{found}': expected 1 to 128 characters without control characters")]
    InvalidRuleName {
        /// What was given.
        found: String,
    },
    /// A second file for an agent that already has one.
    #[error("agent '{agent}' already has a policy in {first_file}; keep one file per agent")]
    DuplicateAgent {
        /// The agent.
        agent: String,
        /// The file that governs it (the first in order).
        first_file: String,
    },
}

impl PolicyProblem {
    /// The stable, machine-readable code of this problem.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Yaml { .. } => "yaml_syntax",
            Self::UnknownKey { .. } => "unknown_key",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::MissingKey => "missing_key",
            Self::WrongType { .. } => "wrong_type",
            Self::EmptyList { .. } => "empty_list",
            Self::Field(field) => field.code(),
            Self::InvalidMethod { .. } => "invalid_method",
            Self::InvalidRegex { .. } => "invalid_regex",
            Self::InvalidTime { .. } => "invalid_time",
            Self::EmptyWindow { .. } => "empty_time_window",
            Self::UnknownTimeZone { .. } => "unknown_time_zone",
            Self::InvalidDay { .. } => "invalid_day",
            Self::InvalidRuleName { .. } => "invalid_rule_name",
            Self::DuplicateAgent { .. } => "duplicate_agent",
        }
    }
}

impl PolicyError {
    /// The stable code of the problem.
    pub fn code(&self) -> &'static str {
        self.problem.code()
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.file, self.line, self.column, &self.key)?;
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a policy directory, in file order; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors {
    errors: Vec<PolicyError>,
}

impl PolicyErrors {
    /// Wraps a list of errors; `None` when it is empty.
    pub fn from_vec(errors: Vec<PolicyError>) -> Option<Self> {
        (!errors.is_empty()).then_some(Self { errors })
    }

    /// The first error (what a one-line report names).
    pub fn first(&self) -> Option<&PolicyError> {
        self.errors.first()
    }

    /// Every error, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.errors.iter()
    }

    /// How many errors there are (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false; present for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as a plain list.
    pub fn into_vec(self) -> Vec<PolicyError> {
        self.errors
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(first) = self.errors.first() {
            write!(f, "{first}")?;
        }
        match self.errors.len() {
            0 | 1 => Ok(()),
            2 => f.write_str(" (and 1 more error)"),
            n => write!(f, " (and {} more errors)", n - 1),
        }
    }
}

impl std::error::Error for PolicyErrors {}

/// Something accepted but worth telling the operator: an old spelling (SPEC.md §27) or a rule
/// name used twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    /// The file name, as given to the compiler.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The full key path.
    pub key: String,
    /// What to change, without a `warning: ` prefix.
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.file, self.line, self.column, &self.key)?;
        f.write_str(&self.message)
    }
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    line: usize,
    column: usize,
    key: &str,
) -> fmt::Result {
    write!(f, "{file}:{line}:{column}: ")?;
    if !key.is_empty() {
        write!(f, "{key}: ")?;
    }
    Ok(())
}

fn suggestion_or_list(suggestion: &Option<&'static str>, expected: &str) -> String {
    match suggestion {
        Some(key) => format!("did you mean '{key}'?"),
        None => format!("expected one of {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(key: &str, problem: PolicyProblem) -> PolicyError {
        PolicyError {
            file: "bot.yaml".to_owned(),
            line: 7,
            column: 9,
            key: key.to_owned(),
            problem,
        }
    }

    #[test]
    fn errors_print_file_line_column_key_and_problem() {
        let err = error(
            "rules[0].paths[1]",
            PolicyProblem::InvalidRegex {
                reason: "unclosed group".to_owned(),
            },
        );
        assert_eq!(
            err.to_string(),
            "bot.yaml:7:9: rules[0].paths[1]: invalid regex: unclosed group"
        );
        assert_eq!(err.code(), "invalid_regex");
    }

    #[test]
    fn errors_without_a_key_path_omit_it() {
        let err = error(
            "",
            PolicyProblem::Yaml {
                message: "invalid YAML: x".to_owned(),
            },
        );
        assert_eq!(err.to_string(), "bot.yaml:7:9: invalid YAML: x");
    }

    #[test]
    fn unknown_keys_suggest_the_closest_or_list_all() {
        let close = PolicyProblem::UnknownKey {
            found: "servce".to_owned(),
            suggestion: Some("service"),
            expected: "name, service",
        };
        assert_eq!(
            close.to_string(),
            "unknown key 'servce'; did you mean 'service'?"
        );
        let far = PolicyProblem::UnknownKey {
            found: "zzz".to_owned(),
            suggestion: None,
            expected: "agent, rules",
        };
        assert_eq!(
            far.to_string(),
            "unknown key 'zzz'; expected one of agent, rules"
        );
    }

    #[test]
    fn the_error_list_names_the_first_and_counts_the_rest() {
        assert!(PolicyErrors::from_vec(Vec::new()).is_none());
        let list = PolicyErrors::from_vec(vec![
            error("agent", PolicyProblem::MissingKey),
            error("rules", PolicyProblem::MissingKey),
            error("rules", PolicyProblem::MissingKey),
        ])
        .expect("non-empty");
        assert_eq!(
            list.to_string(),
            "bot.yaml:7:9: agent: required key is missing (and 2 more errors)"
        );
        assert_eq!(list.len(), 3);
    }
}
