//! `aegis vault add | list | remove | rotate | update`: credentials and their secrets.

use std::time::SystemTime;

use aegis_core::credential::{Credential, check_secret};
use aegis_core::crypto::{SecretField, VaultKeys, random_uuid};
use aegis_core::domain::DomainList;
use aegis_core::ledger::SystemEvent;
use aegis_core::timestamp::Timestamp;
use aegis_store::vault::{StoredCredential, VaultStore};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::cli::{AddArgs, RemoveArgs, RotateArgs, UpdateArgs, VaultCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::{audit, output, secret_input};

/// Runs one `aegis vault` subcommand.
pub(crate) async fn run(ctx: &Context, command: &VaultCommand) -> Result<(), CliError> {
    match command {
        VaultCommand::Add(args) => add(ctx, args).await,
        VaultCommand::List => list(ctx).await,
        VaultCommand::Remove(args) => remove(ctx, args).await,
        VaultCommand::Rotate(args) => rotate(ctx, args).await,
        VaultCommand::Update(args) => update(ctx, args).await,
    }
}

async fn add(ctx: &Context, args: &AddArgs) -> Result<(), CliError> {
    let now = now();
    let domains = parse_domains(&args.domains, args.allow_http)?;
    let credential = Credential {
        id: random_uuid()?,
        name: args.name.clone(),
        service: args.service.clone(),
        domains,
        auth_type: args.auth_type,
        header_name: args.header_name.clone(),
        query_param: args.query_param.clone(),
        scopes: args.scopes,
        expires_at: args.ttl.map(|ttl| ttl.expires_from(now)),
        rate_limit: args.rate_limit.as_ref().map(rate_of),
        body_inspection: args.body_inspection,
        allow_http: args.allow_http,
        pass_cookies: args.pass_cookies,
        created_at: now,
        updated_at: now,
        rotated_at: None,
        previous_until: None,
    };
    credential
        .check_rules()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let store = ctx.vault_store().await?;
    if store.credential(&credential.name).await?.is_some() {
        return Err(CliError::failure(
            "conflict",
            format!("credential '{}' already exists", credential.name),
        )
        .with_hint("use aegis vault rotate to change its secret, or aegis vault update"));
    }
    let keys = ctx.unlock(&store).await?;
    let secret = secret_input::read_secret(args.secret.as_deref(), "--secret")?;
    check_secret(credential.auth_type, secret.expose_secret())
        .map_err(|e| CliError::usage(format!("--secret: {e}")))?;
    if secret.expose_secret().len() < aegis_core::credential::MIN_DETECTABLE_SECRET_BYTES {
        output::warn("the secret is shorter than 8 bytes; body inspection will not look for it");
    }
    let stored = seal(&keys, &store, credential, &secret, None)?;
    let entry = audit::credential_event(
        SystemEvent::CredentialAdded,
        &stored.credential,
        audit::describe(&stored.credential),
    );
    store.insert_credential(&stored, entry).await?;
    print_credential(ctx, &stored.credential, now, "added");
    Ok(())
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let now = now();
    let credentials = store.credentials().await?;
    if ctx.json {
        output::json(&Value::Array(
            credentials
                .iter()
                .map(|s| credential_json(&s.credential, now))
                .collect(),
        ));
        return Ok(());
    }
    if credentials.is_empty() {
        output::line(format!(
            "No credentials in vault '{}'. Add one with aegis vault add.",
            ctx.vault
        ));
        return Ok(());
    }
    let rows = credentials
        .iter()
        .map(|s| {
            let c = &s.credential;
            vec![
                c.name.to_string(),
                c.service.to_string(),
                c.auth_type.to_string(),
                c.domains.to_string(),
                c.scopes.to_string(),
                c.rate_limit
                    .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                c.body_inspection.to_string(),
                expiry_text(c, now),
                c.created_at.to_rfc3339(),
            ]
        })
        .collect();
    output::table(
        &[
            "name",
            "service",
            "auth",
            "domains",
            "scopes",
            "rate limit",
            "inspection",
            "expiry",
            "created",
        ],
        rows,
    );
    Ok(())
}

async fn remove(ctx: &Context, args: &RemoveArgs) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let _keys = ctx.unlock(&store).await?;
    let entry =
        audit::cli_event(SystemEvent::CredentialRemoved).with_credential(args.name.as_str());
    store.remove_credential(&args.name, entry).await?;
    if ctx.json {
        output::json(&json!({ "removed": args.name.as_str() }));
    } else {
        output::line(format!("Removed credential '{}'", args.name));
    }
    Ok(())
}

async fn rotate(ctx: &Context, args: &RotateArgs) -> Result<(), CliError> {
    let now = now();
    let grace = match (args.grace, args.grace_period) {
        (Some(grace), Some(_)) => {
            output::warn("--grace-period is the old spelling of --grace; using --grace");
            Some(grace)
        }
        (Some(grace), None) => Some(grace),
        (None, Some(hours)) => {
            output::warn(format!(
                "--grace-period {hours} is deprecated; use --grace {hours}h"
            ));
            Some(std::time::Duration::from_secs(u64::from(hours) * 3600))
        }
        (None, None) => None,
    };
    if args.rollback && (grace.is_some() || args.ttl.is_some()) {
        return Err(CliError::usage(
            "--rollback cannot be combined with --grace or --ttl",
        ));
    }
    let store = ctx.vault_store().await?;
    let current = existing(&store, &args.name).await?;
    let keys = ctx.unlock(&store).await?;
    verify_mac(&keys, &store, &current)?;
    let mut credential = current.credential.clone();
    let old_secret = open(&keys, &current, SecretField::Secret)?;

    let stored = if args.rollback {
        let (Some(_), Some(until)) = (&current.previous_secret, credential.previous_until) else {
            return Err(CliError::failure(
                "not_found",
                format!(
                    "credential '{}' has no previous secret to roll back to",
                    credential.name
                ),
            ));
        };
        if now >= until {
            return Err(CliError::failure(
                "not_found",
                format!(
                    "the grace period of credential '{}' has ended",
                    credential.name
                ),
            ));
        }
        let previous = open(&keys, &current, SecretField::PreviousSecret)?;
        credential.updated_at = now;
        credential.rotated_at = Some(now);
        seal(&keys, &store, credential, &previous, Some(&old_secret))?
    } else {
        let secret = secret_input::read_secret(args.secret.as_deref(), "--secret")?;
        check_secret(credential.auth_type, secret.expose_secret())
            .map_err(|e| CliError::usage(format!("--secret: {e}")))?;
        credential.updated_at = now;
        credential.rotated_at = Some(now);
        if let Some(ttl) = args.ttl {
            credential.expires_at = Some(ttl.expires_from(now));
        }
        credential.previous_until = grace.map(|g| now.plus(g));
        let keep = grace.map(|_| &old_secret);
        seal(&keys, &store, credential, &secret, keep)?
    };
    let mut detail = serde_json::Map::new();
    detail.insert("rollback".into(), args.rollback.into());
    if let Some(until) = stored.credential.previous_until {
        detail.insert("grace_until".into(), until.to_rfc3339().into());
    }
    let entry = audit::credential_event(SystemEvent::CredentialRotated, &stored.credential, detail);
    store.replace_credential(&stored, entry).await?;
    let verb = if args.rollback {
        "rolled back"
    } else {
        "rotated"
    };
    print_credential(ctx, &stored.credential, now, verb);
    Ok(())
}

async fn update(ctx: &Context, args: &UpdateArgs) -> Result<(), CliError> {
    let now = now();
    let changes_anything = args.domains.is_some()
        || args.auth_type.is_some()
        || args.header_name.is_some()
        || args.query_param.is_some()
        || args.scopes.is_some()
        || args.ttl.is_some()
        || args.rate_limit.is_some()
        || args.body_inspection.is_some()
        || args.allow_http
        || args.no_allow_http
        || args.pass_cookies
        || args.no_pass_cookies;
    if !changes_anything {
        return Err(
            CliError::usage("vault update needs at least one option to change")
                .with_hint("see aegis vault update --help"),
        );
    }
    let store = ctx.vault_store().await?;
    let current = existing(&store, &args.name).await?;
    let keys = ctx.unlock(&store).await?;
    verify_mac(&keys, &store, &current)?;
    let mut c = current.credential.clone();
    if args.allow_http {
        c.allow_http = true;
    }
    if args.no_allow_http {
        c.allow_http = false;
    }
    if let Some(list) = &args.domains {
        c.domains = parse_domains(list, c.allow_http)?;
    }
    if let Some(auth) = args.auth_type {
        c.auth_type = auth;
        if auth != aegis_core::auth::AuthType::Header && args.header_name.is_none() {
            c.header_name = None;
        }
        if auth != aegis_core::auth::AuthType::Query && args.query_param.is_none() {
            c.query_param = None;
        }
    }
    if let Some(header) = &args.header_name {
        c.header_name = Some(header.clone());
    }
    if let Some(param) = &args.query_param {
        c.query_param = Some(param.clone());
    }
    if let Some(scopes) = args.scopes {
        c.scopes = scopes;
    }
    if let Some(ttl) = &args.ttl {
        c.expires_at = ttl.as_option().map(|t| t.expires_from(now));
    }
    if let Some(rate) = &args.rate_limit {
        c.rate_limit = rate.as_option().map(rate_of);
    }
    if let Some(mode) = args.body_inspection {
        c.body_inspection = mode;
    }
    if args.pass_cookies {
        c.pass_cookies = true;
    }
    if args.no_pass_cookies {
        c.pass_cookies = false;
    }
    c.check_rules()
        .map_err(|e| CliError::usage(e.to_string()))?;
    if c.auth_type != current.credential.auth_type {
        let secret = open(&keys, &current, SecretField::Secret)?;
        let text = String::from_utf8_lossy(&secret);
        check_secret(c.auth_type, &text).map_err(|e| {
            CliError::usage(format!(
                "--auth-type {}: the stored secret does not fit: {e}",
                c.auth_type
            ))
        })?;
    }
    c.updated_at = now;
    let mac = keys
        .row_mac(&c.canonical_encoding(&store.meta().id))
        .to_vec();
    let stored = StoredCredential {
        credential: c,
        secret: current.secret.clone(),
        previous_secret: current.previous_secret.clone(),
        mac,
    };
    let entry = audit::credential_event(
        SystemEvent::CredentialUpdated,
        &stored.credential,
        audit::changes(&current.credential, &stored.credential),
    );
    store.replace_credential(&stored, entry).await?;
    print_credential(ctx, &stored.credential, now, "updated");
    Ok(())
}

/// Encrypts the secret (and optionally a previous one), computes the MAC, returns the row.
fn seal(
    keys: &VaultKeys,
    store: &VaultStore,
    mut credential: Credential,
    secret: &impl AsSecretBytes,
    previous: Option<&zeroize::Zeroizing<Vec<u8>>>,
) -> Result<StoredCredential, CliError> {
    let id = *credential.id.as_bytes();
    let sealed = keys.seal_secret(id, SecretField::Secret, secret.secret_bytes())?;
    let previous_sealed = match previous {
        Some(old) => Some(keys.seal_secret(id, SecretField::PreviousSecret, old)?),
        None => {
            credential.previous_until = None;
            None
        }
    };
    let mac = keys
        .row_mac(&credential.canonical_encoding(&store.meta().id))
        .to_vec();
    Ok(StoredCredential {
        credential,
        secret: sealed,
        previous_secret: previous_sealed,
        mac,
    })
}

/// Byte access to the two kinds of secret container used here.
trait AsSecretBytes {
    fn secret_bytes(&self) -> &[u8];
}

impl AsSecretBytes for SecretString {
    fn secret_bytes(&self) -> &[u8] {
        self.expose_secret().as_bytes()
    }
}

impl AsSecretBytes for zeroize::Zeroizing<Vec<u8>> {
    fn secret_bytes(&self) -> &[u8] {
        self
    }
}

fn open(
    keys: &VaultKeys,
    stored: &StoredCredential,
    field: SecretField,
) -> Result<zeroize::Zeroizing<Vec<u8>>, CliError> {
    let envelope = match field {
        SecretField::Secret => Some(&stored.secret),
        SecretField::PreviousSecret => stored.previous_secret.as_ref(),
    };
    envelope
        .and_then(|e| {
            keys.open_secret(*stored.credential.id.as_bytes(), field, e)
                .ok()
        })
        .ok_or_else(|| {
            CliError::failure(
                "integrity",
                format!(
                    "credential '{}' cannot be decrypted (data corrupted or tampered)",
                    stored.credential.name
                ),
            )
        })
}

/// Checks a stored credential's row MAC; `integrity` (with a hint) when it fails.
pub(crate) fn verify_mac(
    keys: &VaultKeys,
    store: &VaultStore,
    stored: &StoredCredential,
) -> Result<(), CliError> {
    let encoding = stored.credential.canonical_encoding(&store.meta().id);
    if keys.verify_row_mac(&encoding, &stored.mac) {
        Ok(())
    } else {
        Err(CliError::failure(
            "integrity",
            format!(
                "credential '{}' failed its integrity check",
                stored.credential.name
            ),
        )
        .with_hint("the database was changed outside aegis; run aegis doctor"))
    }
}

/// The stored credential called `name`; `not_found` when there is none.
pub(crate) async fn existing(
    store: &VaultStore,
    name: &aegis_core::names::CredentialName,
) -> Result<StoredCredential, CliError> {
    store.credential(name).await?.ok_or_else(|| {
        CliError::failure("not_found", format!("no credential named '{name}'"))
            .with_hint("see aegis vault list")
    })
}

fn parse_domains(list: &str, allow_http: bool) -> Result<DomainList, CliError> {
    DomainList::parse(list, allow_http).map_err(|e| {
        let error = CliError::usage(format!("invalid value for '--domains': {e}"));
        if list.contains("http://") && !allow_http {
            error.with_hint("add --allow-http to permit plain-HTTP entries")
        } else {
            error
        }
    })
}

fn print_credential(ctx: &Context, credential: &Credential, now: Timestamp, verb: &str) {
    if ctx.json {
        output::json(&credential_json(credential, now));
        return;
    }
    output::line(format!("Credential '{}' {verb}.", credential.name));
    output::block(&[
        ("name", credential.name.to_string()),
        ("id", credential.id.to_string()),
        ("service", credential.service.to_string()),
        ("auth type", auth_text(credential)),
        ("domains", credential.domains.to_string()),
        ("scopes", credential.scopes.to_string()),
        (
            "rate limit",
            credential
                .rate_limit
                .map_or_else(|| "none".to_owned(), |r| r.to_string()),
        ),
        ("inspection", credential.body_inspection.to_string()),
        ("expiry", expiry_text(credential, now)),
        ("allow http", credential.allow_http.to_string()),
        ("pass cookies", credential.pass_cookies.to_string()),
    ]);
}

fn auth_text(c: &Credential) -> String {
    match (&c.header_name, c.auth_type) {
        (Some(header), _) => format!("{} ({header})", c.auth_type),
        (None, aegis_core::auth::AuthType::Query) => {
            format!("{} ({})", c.auth_type, c.effective_query_param())
        }
        _ => c.auth_type.to_string(),
    }
}

fn credential_json(c: &Credential, now: Timestamp) -> Value {
    json!({
        "id": c.id.to_string(),
        "name": c.name.as_str(),
        "service": c.service.as_str(),
        "domains": c.domains.entries().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "auth_type": c.auth_type.to_string(),
        "header_name": c.header_name.as_ref().map(|h| h.as_str()),
        "query_param": (c.auth_type == aegis_core::auth::AuthType::Query).then(|| c.effective_query_param()),
        "scopes": c.scopes.to_string(),
        "rate_limit": c.rate_limit.map(|r| r.to_string()),
        "body_inspection": c.body_inspection.as_str(),
        "allow_http": c.allow_http,
        "pass_cookies": c.pass_cookies,
        "expires_at": c.expires_at.map(Timestamp::to_rfc3339),
        "expired": c.is_expired(now),
        "created_at": c.created_at.to_rfc3339(),
        "updated_at": c.updated_at.to_rfc3339(),
        "rotated_at": c.rotated_at.map(Timestamp::to_rfc3339),
        "grace_until": c.previous_until.map(Timestamp::to_rfc3339),
    })
}

/// `expired`, `expires in N d`, or `never`.
pub(crate) fn expiry_text(c: &Credential, now: Timestamp) -> String {
    match c.expires_at {
        None => "never".to_owned(),
        Some(_) if c.is_expired(now) => "expired".to_owned(),
        Some(at) => {
            let days = now.millis_until(at).div_euclid(86_400_000);
            format!("expires in {days} d")
        }
    }
}

/// The rate, after printing the one-line warning for a legacy spelling (`100/minute`).
pub(crate) fn rate_of(parsed: &aegis_core::rate::ParsedRate) -> aegis_core::rate::Rate {
    if let Some(warning) = parsed.legacy_warning() {
        output::warn(warning);
    }
    parsed.rate()
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}
