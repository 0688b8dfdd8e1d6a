//! Layering (SPEC §4.3): for each key, the first value found in flags, environment, file,
//! built-in default. Per key, so a flag for one key hides nothing else.
//!
//! Every value given in any layer is parsed, so `config validate` reports a bad file value
//! even when the environment overrides it. The winner of each key is stored in the config and
//! its source recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aegis_core::config::Config;

use super::Source;
use super::assign::{Raw, assign};
use super::error::ConfigError;
use super::file_layer::{FileLayer, located};
use super::schema::{self, KEYS, KeySpec};

/// Everything the layers said, ready to merge.
pub(crate) struct Layers<'a> {
    /// `(key path, value)` from command-line flags.
    pub(crate) flags: &'a [(&'static str, String)],
    /// Non-empty environment variables.
    pub(crate) env: &'a BTreeMap<String, String>,
    /// The file's keys, if there is a file.
    pub(crate) file: Option<(&'a FileLayer<'a>, &'a Path, &'a Path)>,
    /// The working directory, base of relative paths from flags and environment.
    pub(crate) cwd: &'a Path,
}

/// The merged result: where each key's value came from, what was wrong, what was legacy.
#[derive(Default)]
pub(crate) struct Merged {
    /// Source of every key of the table.
    pub(crate) sources: BTreeMap<&'static str, Source>,
    /// Type errors from any layer.
    pub(crate) errors: Vec<ConfigError>,
    /// Legacy environment variables in use.
    pub(crate) warnings: Vec<String>,
}

/// Merges the layers into `config`, which holds the defaults.
pub(crate) fn merge(layers: &Layers<'_>, config: &mut Config) -> Merged {
    let mut merged = Merged::default();
    let mut scratch = Config::default();
    for (key, _) in layers.flags {
        if schema::key(key).is_none() {
            merged.errors.push(ConfigError {
                file: None,
                line: None,
                key: (*key).to_owned(),
                message: format!("unknown key {key} given by a command-line flag"),
                hint: None,
            });
        }
    }
    let mut warned = BTreeSet::new();
    for spec in KEYS {
        let candidates = candidates(spec, layers, &mut merged.warnings, &mut warned);
        let mut source = Source::Default;
        for (index, candidate) in candidates.iter().enumerate() {
            let target = if index == 0 {
                source = candidate.source.clone();
                &mut *config
            } else {
                &mut scratch
            };
            if let Err(message) = assign(
                &spec.slot,
                target,
                candidate.raw,
                &candidate.base,
                candidate.is_millis,
            ) {
                merged
                    .errors
                    .push(error_at(&candidate.source, &candidate.spelled, message));
            }
        }
        merged.sources.insert(spec.path, source);
    }
    merged
}

/// The error for `message` about `key`, located where its value came from.
pub(crate) fn error_at(source: &Source, key: &str, message: String) -> ConfigError {
    match source {
        Source::File { path, line } => located(path, *line, key, format!("{key}: {message}")),
        Source::Env(var) => ConfigError {
            file: None,
            line: None,
            key: key.to_owned(),
            message: format!("environment variable {var} ({key}): {message}"),
            hint: None,
        },
        Source::Flag => ConfigError {
            file: None,
            line: None,
            key: key.to_owned(),
            message: format!("{key} (command-line flag): {message}"),
            hint: None,
        },
        Source::Default => ConfigError {
            file: None,
            line: None,
            key: key.to_owned(),
            message: format!("{key}: {message}"),
            hint: None,
        },
    }
}

struct Candidate<'a> {
    raw: Raw<'a>,
    source: Source,
    /// The key as spelled where it was written (a legacy path for legacy file keys).
    spelled: String,
    base: PathBuf,
    is_millis: bool,
}

/// Every value given for `spec`, best first: flags, then environment variables in preference
/// order (legacy last), then the file (new spelling before legacy).
fn candidates<'a>(
    spec: &'static KeySpec,
    layers: &Layers<'a>,
    warnings: &mut Vec<String>,
    warned: &mut BTreeSet<String>,
) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    for (key, value) in layers.flags {
        if *key == spec.path {
            out.push(Candidate {
                raw: Raw::Flag(value),
                source: Source::Flag,
                spelled: spec.path.to_owned(),
                base: layers.cwd.to_path_buf(),
                is_millis: false,
            });
        }
    }
    for (name, is_legacy) in spec.env_names() {
        let Some(value) = layers.env.get(&name) else {
            continue;
        };
        if is_legacy && warned.insert(name.clone()) {
            warnings.push(format!(
                "environment variable {name} is a legacy name; use {}",
                spec.primary_env()
            ));
        }
        out.push(Candidate {
            raw: Raw::Env(value),
            source: Source::Env(name),
            spelled: spec.path.to_owned(),
            base: layers.cwd.to_path_buf(),
            is_millis: false,
        });
    }
    if let Some((file, shown, dir)) = layers.file {
        let mut from_file: Vec<&super::file_layer::FileValue<'a>> = file
            .values
            .iter()
            .filter(|value| std::ptr::eq(value.spec, spec))
            .collect();
        from_file.sort_by_key(|value| value.legacy.is_some());
        out.extend(from_file.into_iter().map(|value| {
            Candidate {
                raw: Raw::Node(value.node),
                source: Source::File {
                    path: shown.to_path_buf(),
                    line: value.line,
                },
                spelled: value
                    .legacy
                    .map_or(spec.path, |legacy| legacy.path)
                    .to_owned(),
                base: dir.to_path_buf(),
                is_millis: value.legacy.is_some_and(|legacy| legacy.is_millis),
            }
        }));
    }
    out
}
