//! `aegis config validate` and `aegis config show` (SPEC §5.1).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{self, LoadRequest};
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// Runs `aegis config validate`: `ok <path>`, or every error (`error:`/`hint:` lines on
/// standard error, or with `--json` the report object on standard output), exit 2 on errors.
///
/// # Errors
/// `config_invalid` (exit 2) when anything is wrong; the last error in human mode, a summary
/// with `--json`.
pub(crate) fn validate(
    explicit: Option<PathBuf>,
    flags: Vec<(&'static str, String)>,
    json: bool,
) -> Result<(), CliError> {
    let cwd = std::env::current_dir().map_err(|e| CliError::io("read", &PathBuf::from("."), &e))?;
    let outcome = config::load(LoadRequest {
        explicit_path: explicit,
        env: aegis_env(),
        flags,
        cwd,
    });
    if let Ok(loaded) = &outcome {
        for warning in &loaded.warnings {
            output::warn(warning);
        }
    }
    if json {
        output::json(&config::validate_json(&outcome));
    }
    let errors = match outcome {
        Ok(_) if json => return Ok(()),
        Ok(_) => {
            output::line(config::validate_text(&outcome));
            return Ok(());
        }
        Err(errors) => errors,
    };
    if json {
        return Err(CliError::config(format!(
            "{} configuration error(s); see the report on standard output",
            errors.len()
        )));
    }
    // Every error but the last is printed here; the last is returned so `main` prints it and
    // exits 2, keeping the file order.
    let all: Vec<CliError> = errors
        .iter()
        .map(|error| {
            let cli = CliError::config(error.to_string());
            match &error.hint {
                Some(hint) => cli.with_hint(hint.clone()),
                None => cli,
            }
        })
        .collect();
    let (last, rest) = all.split_last().ok_or_else(CliError::internal)?;
    for error in rest {
        output::error(error, false);
    }
    Err(last.clone())
}

/// Runs `aegis config show`: every key, its value (secrets masked) and its source.
///
/// # Errors
/// None today; the signature matches the other commands.
pub(crate) fn show(ctx: &Context) -> Result<(), CliError> {
    if ctx.json {
        output::json(&config::show_json(&ctx.loaded));
    } else {
        output::line(config::show_text(&ctx.loaded));
    }
    Ok(())
}

/// The `AEGIS_*` variables of the process environment, read once for the loader.
fn aegis_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(key, _)| key.starts_with("AEGIS_"))
        .collect()
}
