//! Walking a YAML tree while collecting located problems: the known keys of a mapping (with
//! their old spellings, SPEC.md §27), duplicate and unknown keys, missing required keys, and
//! values of the wrong shape. What the keys of a policy file mean is `file`'s job.

use std::collections::HashMap;

use crate::field_error::shown;
use crate::policy::error::{PolicyError, PolicyProblem, PolicyWarning};
use crate::policy::yaml::{Entry, Mark, Node, Value};

/// A key a mapping may hold: its spelling and its old spelling (SPEC.md §27), if any.
pub(crate) struct Key {
    /// The spelling.
    pub(crate) name: &'static str,
    /// The old spelling, accepted with a warning.
    pub(crate) legacy: Option<&'static str>,
    /// Whether the mapping must have it.
    pub(crate) required: bool,
}

pub(crate) const fn key(name: &'static str, required: bool) -> Key {
    Key {
        name,
        legacy: None,
        required,
    }
}

/// Collects problems and warnings while walking one file.
pub(crate) struct Walker<'f> {
    pub(crate) file: &'f str,
    pub(crate) errors: Vec<PolicyError>,
    pub(crate) warnings: Vec<PolicyWarning>,
}

impl Walker<'_> {
    pub(crate) fn error(&mut self, mark: Mark, key: &str, problem: PolicyProblem) {
        self.errors.push(PolicyError {
            file: self.file.to_owned(),
            line: mark.line,
            column: mark.column,
            key: key.to_owned(),
            problem,
        });
    }

    pub(crate) fn warn(&mut self, mark: Mark, key: &str, message: String) {
        self.warnings.push(PolicyWarning {
            file: self.file.to_owned(),
            line: mark.line,
            column: mark.column,
            key: key.to_owned(),
            message,
        });
    }

    pub(crate) fn wrong_type(&mut self, node: &Node, key: &str, expected: &'static str) {
        let found = node.value.kind();
        self.error(node.mark, key, PolicyProblem::WrongType { expected, found });
    }

    /// The text of a scalar; records a wrong-type problem and answers `None` for anything else.
    pub(crate) fn scalar<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        expected: &'static str,
    ) -> Option<&'n str> {
        match &node.value {
            Value::Scalar(text) => Some(text),
            _ => {
                self.wrong_type(node, key, expected);
                None
            }
        }
    }

    /// The items of a non-empty list; records a problem and answers `None` otherwise.
    pub(crate) fn list<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        expected: &'static str,
        empty: &'static str,
    ) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) if items.is_empty() => {
                self.error(node.mark, key, PolicyProblem::EmptyList { what: empty });
                None
            }
            Value::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, key, expected);
                None
            }
        }
    }

    /// Sorts a mapping's entries into the known keys: unknown and duplicate keys are problems,
    /// legacy spellings warnings, missing required keys problems at the mapping's start.
    pub(crate) fn fields<'n>(
        &mut self,
        mark: Mark,
        entries: &'n [Entry],
        path: &str,
        keys: &[Key],
        key_list: &'static str,
    ) -> HashMap<&'static str, &'n Node> {
        let child = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        // canonical name -> (spelling used, entry)
        let mut chosen: HashMap<&'static str, (&'n str, &'n Entry)> = HashMap::new();
        for entry in entries {
            let found = keys
                .iter()
                .find(|k| k.name == entry.key || k.legacy == Some(entry.key.as_str()));
            let Some(known) = found else {
                let suggestion = closest(&entry.key, keys.iter().map(|k| k.name));
                self.error(
                    entry.mark,
                    &child(&entry.key),
                    PolicyProblem::UnknownKey {
                        found: shown(&entry.key),
                        suggestion,
                        expected: key_list,
                    },
                );
                continue;
            };
            let is_legacy = entry.key != known.name;
            match chosen.get(known.name) {
                None => {
                    if is_legacy {
                        self.warn(
                            entry.mark,
                            &child(&entry.key),
                            format!(
                                "'{}' is the old spelling of '{}'; write {}",
                                entry.key, known.name, known.name
                            ),
                        );
                    }
                    chosen.insert(known.name, (entry.key.as_str(), entry));
                }
                Some((spelling, first)) if *spelling == entry.key => {
                    self.error(
                        entry.mark,
                        &child(&entry.key),
                        PolicyProblem::DuplicateKey {
                            first_line: first.mark.line,
                        },
                    );
                }
                Some(_) => {
                    self.warn(
                        entry.mark,
                        &child(known.name),
                        format!(
                            "both '{}' and its old spelling '{}' are given; '{}' is used",
                            known.name,
                            known.legacy.unwrap_or_default(),
                            known.name
                        ),
                    );
                    if !is_legacy {
                        chosen.insert(known.name, (entry.key.as_str(), entry));
                    }
                }
            }
        }
        for known in keys.iter().filter(|k| k.required) {
            if !chosen.contains_key(known.name) {
                self.error(mark, &child(known.name), PolicyProblem::MissingKey);
            }
        }
        chosen
            .into_iter()
            .map(|(name, (_, entry))| (name, &entry.value))
            .collect()
    }
}

/// The known key closest to `word` by edit distance, when it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.len() / 3).clamp(1, 3);
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_suggest_the_closest_key_and_strangers_suggest_nothing() {
        let keys = [
            "name",
            "service",
            "methods",
            "paths",
            "rate_limit",
            "time_window",
        ];
        assert_eq!(closest("servce", keys.into_iter()), Some("service"));
        assert_eq!(closest("method", keys.into_iter()), Some("methods"));
        assert_eq!(closest("rate_limt", keys.into_iter()), Some("rate_limit"));
        assert_eq!(closest("colour", keys.into_iter()), None);
    }
}
