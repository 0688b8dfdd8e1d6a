//! `aegis policy validate | list | test | replay` (SPEC.md §13.3): the policy files of
//! `--policies-dir` or `gate.policies_dir`, checked, listed, tried on one request, and replayed
//! against the ledger (`policy/replay.rs`).
//!
//! All of them only read: the files, and for `list` and `validate` the vault's agent names (when
//! there is a vault) to point out agents without a policy and policies without an agent. The
//! decisions come from `aegis_core::policy`, exactly as the gate makes them.

mod replay;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aegis_core::policy::{
    Decision, FileReport, PolicyError, PolicyReport, PolicySet, PolicyWarning,
};
use aegis_core::timestamp::{Timestamp, parse_time_filter};
use serde_json::{Value, json};

use crate::cli::{PolicyCommand, PolicyDirArgs, PolicyTestArgs};
use crate::context::Context;
use crate::error::{CliError, EXIT_USAGE};
use crate::output;
use crate::policy_files::{PolicyDirError, read_policy_dir};

/// The `gate.policies_dir` flag a policy command sets, from `--policies-dir` or the old
/// positional directory (SPEC.md §27, with a warning naming the new spelling).
pub(crate) fn dir_flag(command: &PolicyCommand) -> Option<(&'static str, String)> {
    let args = match command {
        PolicyCommand::Validate(args) | PolicyCommand::List(args) => args,
        PolicyCommand::Test(args) => &args.dir,
        PolicyCommand::Replay(args) => &args.dir,
    };
    dir_from(args).map(|dir| ("gate.policies_dir", dir.display().to_string()))
}

/// Runs one `aegis policy` subcommand.
pub(crate) async fn run(ctx: &Context, command: &PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Validate(_) => validate(ctx).await,
        PolicyCommand::List(_) => list(ctx).await,
        PolicyCommand::Test(args) => test(ctx, args),
        PolicyCommand::Replay(args) => replay::replay(ctx, args).await,
    }
}

async fn validate(ctx: &Context) -> Result<(), CliError> {
    let dir = policies_dir(ctx)?;
    let report = PolicyReport::check(&read(&dir)?);
    let registered = registered_agents(ctx).await?;
    let unregistered = unregistered_warnings(&report, registered.as_ref(), ctx);
    for warning in report.warnings() {
        output::warn(warning.to_string());
    }
    for (_, warning) in &unregistered {
        output::warn(warning);
    }
    let errors: Vec<&PolicyError> = report.errors().collect();
    let files = report.files().len();
    let rules = report.rule_count();
    if ctx.json {
        output::json(&json!({
            "ok": errors.is_empty(),
            "dir": dir.display().to_string(),
            "files": files,
            "rules": rules,
            "errors": errors.iter().map(|e| error_json(e)).collect::<Vec<_>>(),
            "warnings": report
                .warnings()
                .map(warning_json)
                .chain(unregistered.iter().map(|(file, text)| json!({
                    "file": file,
                    "line": null,
                    "column": null,
                    "key": "agent",
                    "message": text,
                })))
                .collect::<Vec<_>>(),
        }));
    }
    let Some((last, rest)) = errors.split_last() else {
        if !ctx.json {
            output::line(format!(
                "ok {}, {}",
                count(files, "file"),
                count(rules, "rule")
            ));
        }
        return Ok(());
    };
    if ctx.json {
        return Err(invalid(format!(
            "{} in the policy files; see the report on standard output",
            count(errors.len(), "problem")
        )));
    }
    // Every error but the last is printed here; the last is returned so `main` prints it and
    // exits 2, keeping the file order.
    for error in rest {
        output::error(&invalid(error.to_string()), false);
    }
    Err(invalid(last.to_string()))
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let dir = policies_dir(ctx)?;
    let report = PolicyReport::check(&read(&dir)?);
    let registered = registered_agents(ctx).await?;
    if registered.is_none() {
        output::warn(format!(
            "vault '{}' is not initialised here; registered agents are not shown",
            ctx.vault
        ));
    }
    let covered: BTreeSet<&str> = report
        .files()
        .iter()
        .filter_map(|f| f.agent().map(|a| a.as_str()))
        .collect();
    let without: Vec<&str> = registered
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|name| !covered.contains(name))
        .collect();
    let is_registered = |file: &FileReport| -> Option<bool> {
        Some(registered.as_ref()?.contains(file.agent()?.as_str()))
    };
    if ctx.json {
        let mut rows: Vec<Value> = report
            .files()
            .iter()
            .map(|f| {
                json!({
                    "file": f.file(),
                    "agent": f.agent().map(|a| a.as_str()),
                    "has_policy": true,
                    "rules": f.rule_count(),
                    "services": f.services().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "valid": f.is_valid(),
                    "errors": f.errors().len(),
                    "registered": is_registered(f),
                })
            })
            .collect();
        rows.extend(without.iter().map(|name| {
            json!({
                "file": null,
                "agent": name,
                "has_policy": false,
                "rules": 0,
                "services": [],
                "valid": null,
                "errors": 0,
                "registered": true,
            })
        }));
        output::json(&Value::Array(rows));
        return Ok(());
    }
    if report.files().is_empty() && without.is_empty() {
        output::line(format!("No policy files in {}.", dir.display()));
        return Ok(());
    }
    let dash = || "-".to_owned();
    let mut rows: Vec<Vec<String>> = report
        .files()
        .iter()
        .map(|f| {
            let services: Vec<&str> = f.services().iter().map(|s| s.as_str()).collect();
            let status = if !f.is_valid() {
                format!("invalid: {}", count(f.errors().len(), "problem"))
            } else if is_registered(f) == Some(false) {
                "valid; agent not registered".to_owned()
            } else {
                "valid".to_owned()
            };
            vec![
                f.file().to_owned(),
                f.agent().map_or_else(dash, ToString::to_string),
                f.rule_count().to_string(),
                if services.is_empty() {
                    dash()
                } else {
                    services.join(",")
                },
                status,
            ]
        })
        .collect();
    rows.extend(without.iter().map(|name| {
        vec![
            dash(),
            (*name).to_owned(),
            dash(),
            dash(),
            "no policy (grants only)".to_owned(),
        ]
    }));
    output::table(&["file", "agent", "rules", "services", "status"], rows);
    Ok(())
}

fn test(ctx: &Context, args: &PolicyTestArgs) -> Result<(), CliError> {
    let path = forwarded_path(&args.path)?;
    let now = Timestamp::from_system_time(SystemTime::now());
    let at = match &args.at {
        Some(text) => parse_time_filter(text, now).map_err(|message| {
            CliError::usage(format!("--at: {message}")).with_hint("e.g. --at 2026-03-01T23:30:00Z")
        })?,
        None => now,
    };
    let dir = policies_dir(ctx)?;
    let set = compile(&dir)?;
    let decision = set.evaluate(
        args.agent.as_str(),
        args.service.as_str(),
        &args.method,
        path.as_bytes(),
        at,
    );
    let require_policy = ctx.loaded.config.gate.require_policy;
    let (allowed, reason, text) = match decision {
        Decision::Allow(rule) => (
            true,
            "rule_matched",
            format!("allow: rule {} ({})", rule.name(), rule.location()),
        ),
        Decision::Deny(policy) => (
            false,
            "no_rule_matched",
            format!("deny: no rule matched ({})", policy.file()),
        ),
        Decision::NoPolicy if require_policy => (
            false,
            "policy_required",
            "deny: no policy for agent (gate.require_policy is on)".to_owned(),
        ),
        Decision::NoPolicy => (
            true,
            "no_policy",
            "allow: no policy for agent (grants only)".to_owned(),
        ),
    };
    if !ctx.json {
        output::line(text);
        return Ok(());
    }
    let mut body = json!({
        "decision": if allowed { "allow" } else { "deny" },
        "reason": reason,
        "agent": args.agent.as_str(),
        "service": args.service.as_str(),
        "method": args.method,
        "path": path,
        "at": at.to_rfc3339(),
        "rule": null,
        "file": null,
    });
    match decision {
        Decision::Allow(rule) => {
            body["rule"] = json!({
                "name": rule.name(),
                "file": rule.file(),
                "line": rule.line(),
                "digest": rule.digest().to_hex(),
                "rate_limit": rule.rate_limit().map(|r| r.to_string()),
            });
            body["file"] = json!(rule.file());
        }
        Decision::Deny(policy) => body["file"] = json!(policy.file()),
        Decision::NoPolicy => {}
    }
    output::json(&body);
    Ok(())
}

/// The directory flag or the old positional directory, with the warnings of SPEC.md §27.
fn dir_from(args: &PolicyDirArgs) -> Option<&Path> {
    match (&args.policies_dir, &args.legacy_dir) {
        (Some(dir), None) => Some(dir),
        (Some(dir), Some(_)) => {
            output::warn(
                "the directory argument is the old spelling of --policies-dir; using --policies-dir",
            );
            Some(dir)
        }
        (None, Some(dir)) => {
            output::warn(
                "the directory argument is the old spelling of --policies-dir; use --policies-dir <dir>",
            );
            Some(dir)
        }
        (None, None) => None,
    }
}

/// The policies directory from flags, environment or config (SPEC.md §5: unset by default).
fn policies_dir(ctx: &Context) -> Result<PathBuf, CliError> {
    ctx.loaded.config.gate.policies_dir.clone().ok_or_else(|| {
        CliError::usage("no policies directory: gate.policies_dir is not set")
            .with_hint("pass --policies-dir <dir> or set gate.policies_dir in aegis.config.yaml")
    })
}

/// The policy set of `dir`, its warnings shown; any invalid file is `policy_invalid`.
fn compile(dir: &Path) -> Result<PolicySet, CliError> {
    let set = PolicySet::compile(&read(dir)?).map_err(|errors| {
        invalid(errors.to_string()).with_hint("run aegis policy validate to see every problem")
    })?;
    for warning in set.warnings() {
        output::warn(warning.to_string());
    }
    Ok(set)
}

fn read(dir: &Path) -> Result<Vec<(String, String)>, CliError> {
    read_policy_dir(dir).map_err(|err| match &err {
        PolicyDirError::Missing { .. } | PolicyDirError::NotADirectory { .. } => CliError::config(
            err.to_string(),
        )
        .with_hint("point --policies-dir or gate.policies_dir at the directory of policy files"),
        PolicyDirError::NotUtf8 { .. } => invalid(err.to_string()),
        PolicyDirError::Read { .. } => CliError::failure("io", err.to_string()),
    })
}

/// The forwarded path without its query string; it must start with `/`.
fn forwarded_path(text: &str) -> Result<String, CliError> {
    let path = text.split_once('?').map_or(text, |(path, _)| path);
    if path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        // The value is not echoed: it may carry a query string.
        Err(CliError::usage("--path must start with /")
            .with_hint("give the forwarded path after the service, e.g. --path /rest/api/3/search"))
    }
}

/// The names of the vault's agents; `None` when there is no initialised vault to ask.
async fn registered_agents(ctx: &Context) -> Result<Option<BTreeSet<String>>, CliError> {
    if !ctx.data_dir.registry_db().is_file() {
        return Ok(None);
    }
    let store = match ctx.vault_store().await {
        Ok(store) => store,
        Err(err) if err.code == "not_initialized" => return Ok(None),
        Err(err) => return Err(err),
    };
    let rows = store.agent_rows().await?;
    Ok(Some(
        rows.agents
            .into_iter()
            .map(|stored| stored.agent.name.to_string())
            .collect(),
    ))
}

/// One warning per policy whose agent is not registered (SPEC.md §13.1: a warning, not an
/// error), as `(file, text)`; the text starts with the file name like every other warning.
fn unregistered_warnings(
    report: &PolicyReport,
    registered: Option<&BTreeSet<String>>,
    ctx: &Context,
) -> Vec<(String, String)> {
    let Some(registered) = registered else {
        return Vec::new();
    };
    report
        .files()
        .iter()
        .filter_map(|f| {
            let agent = f.agent()?;
            (!registered.contains(agent.as_str())).then(|| {
                let text = format!(
                    "{}: agent '{agent}' is not registered in vault '{}'; the policy applies \
                     once it is (aegis agent add --name {agent})",
                    f.file(),
                    ctx.vault
                );
                (f.file().to_owned(), text)
            })
        })
        .collect()
}

fn error_json(error: &PolicyError) -> Value {
    json!({
        "file": error.file,
        "line": error.line,
        "column": error.column,
        "key": error.key,
        "code": error.code(),
        "message": error.to_string(),
    })
}

fn warning_json(warning: &PolicyWarning) -> Value {
    json!({
        "file": warning.file,
        "line": warning.line,
        "column": warning.column,
        "key": warning.key,
        "message": warning.to_string(),
    })
}

/// `policy_invalid` (exit 2, SPEC.md §22.3).
fn invalid(message: impl Into<String>) -> CliError {
    CliError::new("policy_invalid", EXIT_USAGE, message)
}

/// `1 file`, `2 files`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
