//! Walking the parsed config file against the key table: which keys it sets and on which line,
//! which spellings are legacy, and every unknown, duplicate or misplaced key.
//!
//! Values are not parsed here; `assign` does that once the layers are merged. The `webhooks`
//! list is handed to `webhooks` as a whole.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::ConfigError;
use super::schema::{self, KeySpec, LegacyKey};
use super::yaml::{Entry, Node};

/// A key the file sets.
pub(crate) struct FileValue<'a> {
    /// The key it sets.
    pub(crate) spec: &'static KeySpec,
    /// The value as written.
    pub(crate) node: &'a Node,
    /// The key's line.
    pub(crate) line: usize,
    /// Set when written with a legacy spelling.
    pub(crate) legacy: Option<&'static LegacyKey>,
}

/// What the file holds, before parsing values.
#[derive(Default)]
pub(crate) struct FileLayer<'a> {
    /// Every key set, in file order; a legacy key appears once per key it sets.
    pub(crate) values: Vec<FileValue<'a>>,
    /// The `webhooks` value and its line.
    pub(crate) webhooks: Option<(&'a Node, usize)>,
    /// Warnings for legacy spellings, in file order.
    pub(crate) warnings: Vec<String>,
    /// Unknown, duplicate and misplaced keys.
    pub(crate) errors: Vec<ConfigError>,
}

/// Walks the root of the file.
pub(crate) fn walk<'a>(root: &'a Node, file: &Path) -> FileLayer<'a> {
    let mut layer = FileLayer::default();
    match root {
        Node::Null => {}
        Node::Map { entries, .. } => walk_map(entries, "", file, &mut layer),
        other => layer.errors.push(located(
            file,
            line_of(other),
            "",
            format!(
                "expected a mapping of sections (vault:, gate:, …), found {}",
                other.kind()
            ),
        )),
    }
    layer
}

/// Builds an error located in the config file.
pub(crate) fn located(file: &Path, line: usize, key: &str, message: String) -> ConfigError {
    ConfigError {
        file: Some(file.to_path_buf()),
        line: Some(line),
        key: key.to_owned(),
        message,
        hint: None,
    }
}

/// The error for a key that appears twice in one mapping.
pub(crate) fn duplicate(file: &Path, line: usize, key: &str, first: usize) -> ConfigError {
    located(
        file,
        line,
        key,
        format!("duplicate key {key} (first given on line {first})"),
    )
}

/// The line a node starts on (1 for null).
pub(crate) fn line_of(node: &Node) -> usize {
    match node {
        Node::Null => 1,
        Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
    }
}

fn walk_map<'a>(entries: &'a [Entry], prefix: &str, file: &Path, layer: &mut FileLayer<'a>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries {
        let path = if prefix.is_empty() {
            entry.key.clone()
        } else {
            format!("{prefix}.{}", entry.key)
        };
        if let Some(first) = seen.get(entry.key.as_str()) {
            layer
                .errors
                .push(duplicate(file, entry.line, &path, *first));
            continue;
        }
        seen.insert(&entry.key, entry.line);

        if prefix.is_empty() && entry.key == "webhooks" {
            layer.webhooks = Some((&entry.value, entry.line));
        } else if let Some(spec) = schema::key(&path) {
            if !matches!(entry.value, Node::Null) {
                layer.values.push(FileValue {
                    spec,
                    node: &entry.value,
                    line: entry.line,
                    legacy: None,
                });
            }
        } else if let Some(legacy) = schema::legacy_key(&path) {
            layer.warnings.push(format!(
                "{}:{}: {path} is a legacy key; use {}",
                file.display(),
                entry.line,
                legacy_replacement(legacy)
            ));
            if !matches!(entry.value, Node::Null) {
                for target in legacy.targets {
                    if let Some(spec) = schema::key(target) {
                        layer.values.push(FileValue {
                            spec,
                            node: &entry.value,
                            line: entry.line,
                            legacy: Some(legacy),
                        });
                    }
                }
            }
        } else if schema::is_section(&path) {
            match &entry.value {
                Node::Map { entries, .. } => walk_map(entries, &path, file, layer),
                Node::Null => {}
                other => layer.errors.push(located(
                    file,
                    entry.line,
                    &path,
                    format!("{path}: expected a mapping of keys, found {}", other.kind()),
                )),
            }
        } else {
            let mut error = located(file, entry.line, &path, format!("unknown key {path}"));
            error.hint = schema::suggest(&path).map(|near| format!("did you mean {near}?"));
            layer.errors.push(error);
        }
    }
}

fn legacy_replacement(legacy: &LegacyKey) -> String {
    let targets = legacy.targets.join(" and ");
    if legacy.is_millis {
        format!("{targets} (durations such as 30s)")
    } else {
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    fn layer_of(text: &str) -> (Vec<(String, usize)>, Vec<String>, Vec<String>) {
        let root = yaml::parse(text).unwrap();
        let layer = walk(&root, Path::new("aegis.config.yaml"));
        let values = layer
            .values
            .iter()
            .map(|value| (value.spec.path.to_owned(), value.line))
            .collect();
        let errors = layer.errors.iter().map(ToString::to_string).collect();
        (values, layer.warnings, errors)
    }

    #[test]
    fn nested_and_flow_keys_are_found_with_lines() {
        let (values, warnings, errors) = layer_of(
            "gate:\n  port: 1\n  timeouts: { connect: 5s }\nvault:\n  kdf:\n    iterations: 4\n",
        );
        assert_eq!(
            values,
            [
                ("gate.port".to_owned(), 2),
                ("gate.timeouts.connect".to_owned(), 3),
                ("vault.kdf.iterations".to_owned(), 6)
            ]
        );
        assert!(warnings.is_empty() && errors.is_empty());
    }

    #[test]
    fn unknown_keys_at_any_depth_get_a_suggestion() {
        let root = yaml::parse("gate:\n  prot: 1\n  tls: { cret: x }\nledgr: {}\n").unwrap();
        let layer = walk(&root, Path::new("aegis.config.yaml"));
        let shown: Vec<(String, Option<String>)> = layer
            .errors
            .iter()
            .map(|e| (e.to_string(), e.hint.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "aegis.config.yaml:2: unknown key gate.prot".to_owned(),
                    Some("did you mean gate.port?".to_owned())
                ),
                (
                    "aegis.config.yaml:3: unknown key gate.tls.cret".to_owned(),
                    Some("did you mean gate.tls.cert?".to_owned())
                ),
                (
                    "aegis.config.yaml:4: unknown key ledgr".to_owned(),
                    Some("did you mean ledger?".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let (_, _, errors) = layer_of("gate:\n  port: 1\n  port: 2\n");
        assert_eq!(
            errors,
            ["aegis.config.yaml:3: duplicate key gate.port (first given on line 2)"]
        );
    }

    #[test]
    fn legacy_keys_set_their_targets_and_warn() {
        let (values, warnings, errors) = layer_of(
            "gate:\n  request_timeout: 1500\nobservability:\n  dashboard: { port: 4000 }\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            values,
            [
                ("gate.timeouts.response_headers".to_owned(), 2),
                ("gate.timeouts.idle_body".to_owned(), 2),
                ("dashboard.port".to_owned(), 4)
            ]
        );
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].contains("use gate.timeouts.response_headers and"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("use dashboard.port"), "{warnings:?}");
    }

    #[test]
    fn a_scalar_where_a_section_belongs_is_an_error() {
        let (_, _, errors) = layer_of("gate: 3100\n");
        assert_eq!(
            errors,
            ["aegis.config.yaml:1: gate: expected a mapping of keys, found a scalar"]
        );
        let (_, _, errors) = layer_of("- a\n- b\n");
        assert!(
            errors[0].contains("expected a mapping of sections"),
            "{errors:?}"
        );
    }
}
