//! Loading the configuration (SPEC §4.2–§4.4, §5, §27): find the file, parse it, layer flags
//! over environment over file over defaults per key, validate everything, and remember where
//! each value came from for `aegis config show`.
//!
//! The environment arrives as a snapshot taken by `main`; nothing here reads it, and nothing
//! here prints. The typed result and the range rules are aegis-core's `config` module. Every
//! error is collected (for `config validate`); other commands report the first.

mod assign;
mod entries;
pub(crate) mod error;
mod file_layer;
mod layers;
mod locate;
mod render;
mod schema;
mod webhooks;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use aegis_core::config::{Config, DEFAULT_DATA_DIR};

pub(crate) use self::error::ConfigErrors;
pub(crate) use self::locate::ConfigFile;
pub(crate) use self::render::{show_json, show_text, validate_json, validate_text};
use crate::error::CliError;

/// What to load: everything `load` needs from the outside world except the file itself.
#[derive(Clone, Default)]
pub(crate) struct LoadRequest {
    /// `--config <path>`.
    pub(crate) explicit_path: Option<PathBuf>,
    /// Snapshot of the process environment (at least every `AEGIS_*` variable).
    pub(crate) env: BTreeMap<String, String>,
    /// `(key path, value)` for each command-line flag that sets a key, e.g.
    /// `("gate.port", "8080")`; list keys take comma-separated values.
    pub(crate) flags: Vec<(&'static str, String)>,
    /// The working directory: where the default file is looked for and what relative paths
    /// from flags and environment are resolved against.
    pub(crate) cwd: PathBuf,
}

/// Shows variable names and flag keys only: their values may be secrets.
impl fmt::Debug for LoadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags: Vec<&str> = self.flags.iter().map(|(key, _)| *key).collect();
        f.debug_struct("LoadRequest")
            .field("explicit_path", &self.explicit_path)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("flags", &flags)
            .field("cwd", &self.cwd)
            .finish()
    }
}

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The typed configuration.
    pub(crate) config: Config,
    /// The config file used, resolved against the working directory (for reading or editing).
    pub(crate) path: Option<PathBuf>,
    /// The config file used, as named (`aegis.config.yaml`, or the `--config` path): what
    /// messages and `file:<path>:<line>` sources show.
    pub(crate) shown_path: Option<PathBuf>,
    /// Every key with its shown value and source, in `config show` order.
    pub(crate) entries: Vec<ResolvedEntry>,
    /// Legacy spellings in use, one line each without the `warning:` prefix.
    pub(crate) warnings: Vec<String>,
}

impl Loaded {
    /// Where the value of `key` came from, e.g. `Source::Env("AEGIS_MASTER_KEY")`.
    pub(crate) fn source_of(&self, key: &str) -> Option<&Source> {
        self.entries
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| &entry.source)
    }
}

/// One line of `config show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedEntry {
    /// Full key path (`gate.port`, `webhooks[0].url`).
    pub(crate) key: String,
    /// The value as text; secrets are `********`, URL passwords masked. Empty when unset.
    pub(crate) shown: String,
    /// Whether the key has a value at all (optional keys may not).
    pub(crate) is_set: bool,
    /// Where the value came from.
    pub(crate) source: Source,
}

/// Where a value came from; displayed as `flag`, `env:AEGIS_X`, `file:<path>:<line>`, `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A command-line flag.
    Flag,
    /// This environment variable.
    Env(String),
    /// This line of the config file (path as named).
    File {
        /// The file as named.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(var) => write!(f, "env:{var}"),
            Self::File { path, line } => write!(f, "file:{}:{line}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

/// Finds, parses, layers and validates the configuration.
///
/// # Errors
/// Every problem found: a named file that does not exist, invalid YAML, unknown or duplicate
/// keys, wrong types, out-of-range values, malformed environment variables or flags.
pub(crate) fn load(request: LoadRequest) -> Result<Loaded, ConfigErrors> {
    let env: BTreeMap<String, String> = request
        .env
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let cwd = request.cwd;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();

    let file = match locate::locate(request.explicit_path.as_deref(), &env, &cwd, &mut warnings) {
        Ok(file) => file,
        Err(error) => return Err(ConfigErrors::single(error)),
    };
    let text = match &file {
        Some(file) => match locate::read(file) {
            Ok(text) => Some(text),
            Err(error) => {
                errors.push(error);
                None
            }
        },
        None => None,
    };
    let tree = match (&file, &text) {
        (Some(file), Some(text)) => match yaml::parse(text) {
            Ok(tree) => Some(tree),
            Err(error) => {
                errors.push(file_layer::located(
                    &file.shown,
                    error.line,
                    "",
                    error.message,
                ));
                None
            }
        },
        _ => None,
    };
    let walked = match (&file, &tree) {
        (Some(file), Some(tree)) => Some(file_layer::walk(tree, &file.shown)),
        _ => None,
    };

    let mut config = Config::default();
    let base = file.as_ref().map_or(cwd.as_path(), ConfigFile::dir);
    config.vault.data_dir = base.join(DEFAULT_DATA_DIR);

    let mut hooks = webhooks::FileWebhooks::default();
    if let (Some(file), Some(walked)) = (&file, &walked) {
        warnings.extend(walked.warnings.iter().cloned());
        errors.extend(walked.errors.iter().cloned());
        if let Some((node, line)) = walked.webhooks {
            hooks = webhooks::read(node, line, &file.shown);
            errors.append(&mut hooks.errors);
        }
    }
    let layers = layers::Layers {
        flags: &request.flags,
        env: &env,
        file: match (&file, &walked) {
            (Some(file), Some(walked)) => Some((walked, file.shown.as_path(), file.dir())),
            _ => None,
        },
        cwd: &cwd,
    };
    let mut merged = layers::merge(&layers, &mut config);
    warnings.append(&mut merged.warnings);
    errors.append(&mut merged.errors);
    config.webhooks = std::mem::take(&mut hooks.hooks);

    let shown_path = file.as_ref().map(|file| file.shown.as_path());
    for violation in config.check() {
        if errors.iter().any(|error| error.key == violation.key) {
            continue;
        }
        let source = merged
            .sources
            .get(violation.key.as_str())
            .cloned()
            .or_else(|| {
                let line = hooks.lines.get(&violation.key)?;
                Some(Source::File {
                    path: shown_path?.to_path_buf(),
                    line: *line,
                })
            })
            .unwrap_or(Source::Default);
        errors.push(layers::error_at(&source, &violation.key, violation.message));
    }

    errors.sort_by_key(|error| (error.file.is_none(), error.line.unwrap_or(0)));
    // A legacy key that sets two keys reports a bad value once.
    errors.dedup();
    if let Some(errors) = ConfigErrors::from_vec(errors) {
        return Err(errors);
    }
    let entries = entries::entries(&config, &merged.sources, &hooks.lines, shown_path);
    Ok(Loaded {
        config,
        shown_path: file.as_ref().map(|file| file.shown.clone()),
        path: file.map(|file| file.absolute),
        entries,
        warnings,
    })
}

/// The first error as a command failure (`config_invalid`, exit 2), with its hint.
pub(crate) fn first_error(errors: &ConfigErrors) -> CliError {
    let first = errors.first();
    let error = CliError::config(first.to_string());
    match &first.hint {
        Some(hint) => error.with_hint(hint.clone()),
        None => error,
    }
}

#[cfg(test)]
mod tests;
