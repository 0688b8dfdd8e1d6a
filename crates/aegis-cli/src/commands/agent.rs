//! `aegis agent add | list | remove | regenerate | grant | revoke | set-rate-limit` (SPEC.md
//! §11.1): agents, their one-time tokens, their grants and their rate limits; `list` also says
//! which agents have a policy file.
//!
//! Tokens are printed once (or written to a new 0600 file) and never again; only their digest is
//! stored. Every command but `list` needs the master key, because agent and grant rows carry a
//! MAC under the vault's row-integrity subkey.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aegis_core::agent::{Agent, AgentToken, grant_encoding};
use aegis_core::crypto::{VaultKeys, random_uuid};
use aegis_core::ledger::SystemEvent;
use aegis_core::names::AgentName;
use aegis_core::policy::PolicyReport;
use aegis_core::timestamp::Timestamp;
use aegis_store::agents::{StoredAgent, StoredGrant};
use aegis_store::secure_fs;
use aegis_store::vault::VaultStore;
use serde_json::{Value, json};

use crate::cli::{
    AgentAddArgs, AgentCommand, AgentNameArgs, AgentRateArgs, AgentTokenArgs, GrantArgs,
};
use crate::context::Context;
use crate::error::CliError;
use crate::policy_files::read_policy_dir;
use crate::{audit, output};

/// Runs one `aegis agent` subcommand.
pub(crate) async fn run(ctx: &Context, command: &AgentCommand) -> Result<(), CliError> {
    match command {
        AgentCommand::Add(args) => add(ctx, args).await,
        AgentCommand::List => list(ctx).await,
        AgentCommand::Remove(args) => remove(ctx, args).await,
        AgentCommand::Regenerate(args) => regenerate(ctx, args).await,
        AgentCommand::Grant(args) => grant(ctx, args).await,
        AgentCommand::Revoke(args) => revoke(ctx, args).await,
        AgentCommand::SetRateLimit(args) => set_rate_limit(ctx, args).await,
    }
}

async fn add(ctx: &Context, add: &AgentAddArgs) -> Result<(), CliError> {
    let args = &add.token;
    let rate_limit = add.rate_limit.as_ref().map(super::vault::rate_of);
    let store = ctx.vault_store().await?;
    if store.agent(&args.name).await?.is_some() {
        return Err(conflict(&args.name));
    }
    let keys = ctx.unlock(&store).await?;
    let now = now();
    let token = AgentToken::generate()?;
    let agent = Agent {
        id: random_uuid()?,
        name: args.name.clone(),
        token_digest: token.digest(),
        rate_limit,
        created_at: now,
        token_created_at: now,
    };
    let stored = sign_agent(&keys, &store, agent);
    let file = args
        .token_file
        .as_ref()
        .map(|p| TokenFile::create(ctx, p))
        .transpose()?;
    let entry = audit::cli_event(SystemEvent::AgentAdded).with_agent(args.name.as_str());
    if let Err(err) = store.insert_agent(&stored, entry).await {
        if let Some(file) = file {
            file.discard();
        }
        return Err(match err {
            aegis_store::StoreError::Conflict { .. } => conflict(&args.name),
            other => other.into(),
        });
    }
    hand_over(ctx, &stored.agent, &token, file, "added")
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let rows = store.agent_rows().await?;
    let names: HashMap<_, String> = store
        .credentials()
        .await?
        .into_iter()
        .map(|s| (s.credential.id, s.credential.name.to_string()))
        .collect();
    let mut grants: HashMap<_, Vec<String>> = HashMap::new();
    for grant in &rows.grants {
        if let Some(name) = names.get(&grant.credential_id) {
            grants.entry(grant.agent_id).or_default().push(name.clone());
        }
    }
    for list in grants.values_mut() {
        list.sort();
    }
    let granted = |agent: &Agent| grants.get(&agent.id).cloned().unwrap_or_default();
    let policies = policy_files(ctx);
    let policy_file = |agent: &Agent| -> Option<Option<&str>> {
        let files = policies.as_ref()?;
        Some(files.get(agent.name.as_str()).map(String::as_str))
    };
    if ctx.json {
        output::json(&Value::Array(
            rows.agents
                .iter()
                .map(|s| {
                    let a = &s.agent;
                    json!({
                        "id": a.id.to_string(),
                        "name": a.name.as_str(),
                        "created_at": a.created_at.to_rfc3339(),
                        "token_created_at": a.token_created_at.to_rfc3339(),
                        "rate_limit": a.rate_limit.map(|r| r.to_string()),
                        "grants": granted(a),
                        "policy": policy_file(a).map(|file| file.is_some()),
                        "policy_file": policy_file(a).flatten(),
                    })
                })
                .collect(),
        ));
        return Ok(());
    }
    if rows.agents.is_empty() {
        output::line(format!(
            "No agents in vault '{}'. Add one with aegis agent add --name <name>.",
            ctx.vault
        ));
        return Ok(());
    }
    let table = rows
        .agents
        .iter()
        .map(|s| {
            let a = &s.agent;
            let list = granted(a);
            vec![
                a.name.to_string(),
                a.created_at.to_rfc3339(),
                a.rate_limit
                    .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                if list.is_empty() {
                    "-".to_owned()
                } else {
                    list.join(",")
                },
                match policy_file(a) {
                    None => "-",
                    Some(Some(_)) => "yes",
                    Some(None) => "no",
                }
                .to_owned(),
            ]
        })
        .collect();
    output::table(
        &["name", "created", "rate limit", "grants", "policy"],
        table,
    );
    Ok(())
}

/// The policy file of each agent that has one, by agent name (SPEC.md §11.1: whether a policy
/// file exists), read from `gate.policies_dir`. `None` when no directory is configured, or when
/// it cannot be read (with a warning: listing agents does not depend on it). A file that names
/// an agent counts even if it has errors; `aegis policy validate` reports those.
fn policy_files(ctx: &Context) -> Option<HashMap<String, String>> {
    let dir = ctx.loaded.config.gate.policies_dir.as_ref()?;
    let sources = match read_policy_dir(dir) {
        Ok(sources) => sources,
        Err(err) => {
            output::warn(format!("{err}; the policy column is left empty"));
            return None;
        }
    };
    let report = PolicyReport::check(&sources);
    let mut owners = HashMap::new();
    for file in report.files() {
        if let Some(agent) = file.agent() {
            owners
                .entry(agent.as_str().to_owned())
                .or_insert_with(|| file.file().to_owned());
        }
    }
    Some(owners)
}

async fn remove(ctx: &Context, args: &AgentNameArgs) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let _keys = ctx.unlock(&store).await?;
    let entry = audit::cli_event(SystemEvent::AgentRemoved).with_agent(args.name.as_str());
    store
        .remove_agent(&args.name, entry)
        .await
        .map_err(|e| not_found_agent(e, &args.name))?;
    if ctx.json {
        output::json(&json!({ "removed": args.name.as_str() }));
    } else {
        output::line(format!(
            "Removed agent '{}' and its grants; its token stops working at the next reload.",
            args.name
        ));
    }
    Ok(())
}

async fn regenerate(ctx: &Context, args: &AgentTokenArgs) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let current = existing_agent(&store, &args.name).await?;
    let keys = ctx.unlock(&store).await?;
    verify_agent(&keys, &store, &current)?;
    let token = AgentToken::generate()?;
    let mut agent = current.agent;
    agent.token_digest = token.digest();
    agent.token_created_at = now();
    let stored = sign_agent(&keys, &store, agent);
    let file = args
        .token_file
        .as_ref()
        .map(|p| TokenFile::create(ctx, p))
        .transpose()?;
    let entry = audit::cli_event(SystemEvent::AgentTokenRegenerated).with_agent(args.name.as_str());
    if let Err(err) = store.update_agent(&stored, entry).await {
        if let Some(file) = file {
            file.discard();
        }
        return Err(not_found_agent(err, &args.name));
    }
    hand_over(ctx, &stored.agent, &token, file, "regenerated")
}

async fn set_rate_limit(ctx: &Context, args: &AgentRateArgs) -> Result<(), CliError> {
    let rate = args.limit.as_option().map(super::vault::rate_of);
    let store = ctx.vault_store().await?;
    let current = existing_agent(&store, &args.agent).await?;
    let keys = ctx.unlock(&store).await?;
    verify_agent(&keys, &store, &current)?;
    let mut agent = current.agent;
    agent.rate_limit = rate;
    let stored = sign_agent(&keys, &store, agent);
    let shown = rate.map_or_else(|| "none".to_owned(), |r| r.to_string());
    let mut detail = serde_json::Map::new();
    detail.insert("rate_limit".to_owned(), Value::String(shown.clone()));
    let entry = audit::cli_event(SystemEvent::AgentRateLimitSet)
        .with_agent(args.agent.as_str())
        .with_detail(detail);
    store
        .update_agent(&stored, entry)
        .await
        .map_err(|err| not_found_agent(err, &args.agent))?;
    if ctx.json {
        output::json(&json!({ "agent": args.agent.as_str(), "rate_limit": shown }));
    } else {
        output::line(format!("agent {}: rate limit {shown}", args.agent));
    }
    Ok(())
}

async fn grant(ctx: &Context, args: &GrantArgs) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let agent = existing_agent(&store, &args.agent).await?;
    let credential = super::vault::existing(&store, &args.credential).await?;
    let keys = ctx.unlock(&store).await?;
    verify_agent(&keys, &store, &agent)?;
    super::vault::verify_mac(&keys, &store, &credential)?;
    let (agent_id, credential_id) = (agent.agent.id, credential.credential.id);
    let row = StoredGrant {
        agent_id,
        credential_id,
        created_at: now(),
        mac: keys
            .row_mac(&grant_encoding(&store.meta().id, &agent_id, &credential_id))
            .to_vec(),
    };
    let entry = audit::cli_event(SystemEvent::GrantAdded)
        .with_agent(args.agent.as_str())
        .with_credential(args.credential.as_str())
        .with_service(credential.credential.service.as_str());
    let added = store.insert_grant(&row, entry).await?;
    if ctx.json {
        output::json(&json!({
            "agent": args.agent.as_str(),
            "credential": args.credential.as_str(),
            "granted": true,
            "already_granted": !added,
        }));
    } else if added {
        output::line(format!(
            "Granted credential '{}' to agent '{}'.",
            args.credential, args.agent
        ));
    } else {
        output::line(format!(
            "Agent '{}' already has credential '{}'.",
            args.agent, args.credential
        ));
    }
    Ok(())
}

async fn revoke(ctx: &Context, args: &GrantArgs) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let agent = existing_agent(&store, &args.agent).await?;
    let credential = super::vault::existing(&store, &args.credential).await?;
    let _keys = ctx.unlock(&store).await?;
    let entry = audit::cli_event(SystemEvent::GrantRevoked)
        .with_agent(args.agent.as_str())
        .with_credential(args.credential.as_str())
        .with_service(credential.credential.service.as_str());
    let removed = store
        .remove_grant(&agent.agent.id, &credential.credential.id, entry)
        .await?;
    if !removed {
        return Err(CliError::failure(
            "not_found",
            format!(
                "agent '{}' has no grant for credential '{}'",
                args.agent, args.credential
            ),
        )
        .with_hint("see aegis agent list"));
    }
    if ctx.json {
        output::json(&json!({
            "agent": args.agent.as_str(),
            "credential": args.credential.as_str(),
            "revoked": true,
        }));
    } else {
        output::line(format!(
            "Revoked credential '{}' from agent '{}'.",
            args.credential, args.agent
        ));
    }
    Ok(())
}

/// A token file created (empty, 0600, never overwriting) before the store is changed, so a
/// taken path fails the command before anything is written.
struct TokenFile {
    path: PathBuf,
    file: std::fs::File,
}

impl TokenFile {
    fn create(ctx: &Context, path: &Path) -> Result<Self, CliError> {
        let path = ctx.cwd.join(path);
        if path.exists() {
            return Err(CliError::failure(
                "conflict",
                format!(
                    "{} already exists; refusing to overwrite it",
                    path.display()
                ),
            )
            .with_hint("choose another --token-file or remove the old file"));
        }
        let file =
            secure_fs::create_private_file(&path).map_err(|e| CliError::io("create", &path, &e))?;
        Ok(Self { path, file })
    }

    /// Writes the token; the one place a token reaches a file.
    fn write(mut self, token: &AgentToken) -> Result<PathBuf, CliError> {
        self.file
            .write_all(format!("{}\n", token.reveal_once()).as_bytes())
            .and_then(|()| self.file.sync_all())
            .map_err(|e| CliError::io("write", &self.path, &e))?;
        Ok(self.path)
    }

    /// Removes the still-empty file after the store refused the change.
    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Prints the token once, or writes it to the token file and prints where it went.
fn hand_over(
    ctx: &Context,
    agent: &Agent,
    token: &AgentToken,
    file: Option<TokenFile>,
    verb: &str,
) -> Result<(), CliError> {
    let written = file.map(|f| f.write(token)).transpose()?;
    if ctx.json {
        let mut value = json!({
            "id": agent.id.to_string(),
            "name": agent.name.as_str(),
            "created_at": agent.created_at.to_rfc3339(),
            "token_created_at": agent.token_created_at.to_rfc3339(),
        });
        match &written {
            Some(path) => value["token_file"] = json!(path.display().to_string()),
            None => value["token"] = json!(token.reveal_once()),
        }
        output::json(&value);
        return Ok(());
    }
    match written {
        Some(path) => output::line(format!(
            "Agent '{}' {verb}. Its token was written to {} (0600).",
            agent.name,
            path.display()
        )),
        None => {
            output::line(format!(
                "Agent '{}' {verb}. Its token is shown once; send it as X-Aegis-Agent:",
                agent.name
            ));
            output::line(token.reveal_once());
        }
    }
    Ok(())
}

fn sign_agent(keys: &VaultKeys, store: &VaultStore, agent: Agent) -> StoredAgent {
    let mac = keys
        .row_mac(&agent.canonical_encoding(&store.meta().id))
        .to_vec();
    StoredAgent { agent, mac }
}

fn verify_agent(
    keys: &VaultKeys,
    store: &VaultStore,
    stored: &StoredAgent,
) -> Result<(), CliError> {
    if keys.verify_row_mac(
        &stored.agent.canonical_encoding(&store.meta().id),
        &stored.mac,
    ) {
        return Ok(());
    }
    Err(CliError::failure(
        "integrity",
        format!("agent '{}' failed its integrity check", stored.agent.name),
    )
    .with_hint("the database was changed outside aegis; run aegis doctor"))
}

async fn existing_agent(store: &VaultStore, name: &AgentName) -> Result<StoredAgent, CliError> {
    store.agent(name).await?.ok_or_else(|| missing_agent(name))
}

fn missing_agent(name: &AgentName) -> CliError {
    CliError::failure("not_found", format!("no agent named '{name}'"))
        .with_hint("see aegis agent list")
}

fn not_found_agent(err: aegis_store::StoreError, name: &AgentName) -> CliError {
    match err {
        aegis_store::StoreError::NotFound { .. } => missing_agent(name),
        other => other.into(),
    }
}

fn conflict(name: &AgentName) -> CliError {
    CliError::failure("conflict", format!("agent '{name}' already exists"))
        .with_hint("use aegis agent regenerate to give it a new token")
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}
