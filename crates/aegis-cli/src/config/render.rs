//! Text and JSON for `aegis config show` and `aegis config validate` (SPEC §5.1).
//!
//! Nothing is printed here; the command returns these strings and values to the output module.

use serde_json::{Value, json};

use super::error::ConfigErrors;
use super::{Loaded, ResolvedEntry};

/// What an unset key shows in human output.
pub(crate) const UNSET: &str = "(unset)";

/// `config show`: one `key = value  (source)` line per key, secrets masked.
pub(crate) fn show_text(loaded: &Loaded) -> String {
    loaded
        .entries
        .iter()
        .map(|entry| format!("{} = {}  ({})", entry.key, shown(entry), entry.source))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `config show --json`: `[{"key","value","source"}]`, `value` null when unset.
pub(crate) fn show_json(loaded: &Loaded) -> Value {
    Value::Array(
        loaded
            .entries
            .iter()
            .map(|entry| {
                json!({
                    "key": entry.key,
                    "value": entry.is_set.then(|| entry.shown.clone()),
                    "source": entry.source.to_string(),
                })
            })
            .collect(),
    )
}

/// `config validate`: `ok <path>`, or an `error:` line (and `hint:` line) per problem.
pub(crate) fn validate_text(outcome: &Result<Loaded, ConfigErrors>) -> String {
    match outcome {
        Ok(loaded) => match &loaded.shown_path {
            Some(path) => format!("ok {}", path.display()),
            None => "ok (no config file: defaults, environment and flags)".to_owned(),
        },
        Err(errors) => errors
            .iter()
            .map(|error| match &error.hint {
                Some(hint) => format!("error: {error}\nhint: {hint}"),
                None => format!("error: {error}"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// `config validate --json`: `{"ok","path","errors":[{"file","line","key","message","hint"}],
/// "warnings"}`.
pub(crate) fn validate_json(outcome: &Result<Loaded, ConfigErrors>) -> Value {
    match outcome {
        Ok(loaded) => json!({
            "ok": true,
            "path": loaded.shown_path.as_ref().map(|path| path.display().to_string()),
            "errors": [],
            "warnings": loaded.warnings,
        }),
        Err(errors) => json!({
            "ok": false,
            "path": errors.iter().find_map(|e| e.file.as_ref()).map(|p| p.display().to_string()),
            "errors": errors
                .iter()
                .map(|error| json!({
                    "file": error.file.as_ref().map(|path| path.display().to_string()),
                    "line": error.line,
                    "key": error.key,
                    "message": error.to_string(),
                    "hint": error.hint,
                }))
                .collect::<Vec<_>>(),
            "warnings": [],
        }),
    }
}

fn shown(entry: &ResolvedEntry) -> &str {
    if entry.is_set { &entry.shown } else { UNSET }
}
