//! `aegis webhook add | list | remove | test | check-expiry | verify-signature` (SPEC.md §18.4).
//!
//! Secrets are encrypted with the vault's `webhook-secrets` subkey and never printed again after
//! `add` shows a generated one; `list` needs no key and shows no secret. Webhooks of the config
//! file (`cfg-<n>`) are listed, tested and notified like stored ones but removed only by editing
//! the file. Commands that queue events try to deliver them for up to 10 s.

mod expiry;
mod verify;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use aegis_core::config::{WebhookEvents, WebhookUrl};
use aegis_core::ledger::SystemEvent;
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::retry::{Verdict, classify};
use aegis_core::webhook::{
    MIN_SECRET_CHARS, PayloadContext, TEST_EVENT, Webhook, WebhookId, check_url, events_text,
    generate_secret, payload_bytes,
};
use aegis_engine::holder::SnapshotHolder;
use aegis_engine::snapshot_loader::{build_snapshot, config_webhooks};
use aegis_engine::webhook_dispatch::Dispatcher;
use aegis_store::vault::VaultStore;
use aegis_store::webhooks::StoredWebhook;

use crate::cli::{WebhookAddArgs, WebhookCommand, WebhookIdArgs};
use crate::context::Context;
use crate::engine_runtime::dispatcher_settings;
use crate::error::CliError;
use crate::secret_input::read_secret;
use crate::{audit, output};

/// Runs one `aegis webhook` subcommand.
pub(crate) async fn run(ctx: &Context, command: &WebhookCommand) -> Result<(), CliError> {
    match command {
        WebhookCommand::Add(args) => add(ctx, args).await,
        WebhookCommand::List => list(ctx).await,
        WebhookCommand::Remove(args) => remove(ctx, args).await,
        WebhookCommand::Test(args) => test(ctx, args).await,
        WebhookCommand::CheckExpiry(args) => expiry::check_expiry(ctx, args).await,
        WebhookCommand::VerifySignature(args) => verify::verify_signature(args),
    }
}

async fn add(ctx: &Context, args: &WebhookAddArgs) -> Result<(), CliError> {
    check_url(&args.url, args.allow_http).map_err(|message| {
        CliError::usage(format!("--url: {message}"))
            .with_hint("use an https:// URL, or --allow-http with http://localhost or 127.0.0.1")
    })?;
    let given = args
        .secret
        .as_deref()
        .map(|value| read_secret(Some(value), "--secret"))
        .transpose()?;
    if let Some(secret) = &given
        && secret.expose_secret().chars().count() < MIN_SECRET_CHARS
    {
        return Err(CliError::usage(format!(
            "--secret: the secret must be at least {MIN_SECRET_CHARS} characters"
        ))
        .with_hint("leave out --secret to have a random one generated"));
    }
    let store = ctx.vault_store().await?;
    let keys = ctx.unlock(&store).await?;
    let generated = given.is_none();
    let secret = match given {
        Some(secret) => secret,
        None => generate_secret()?,
    };
    let webhook = Webhook {
        id: WebhookId::generate()?,
        url: args.url.clone(),
        events: args.events.clone(),
        allow_http: args.allow_http,
        label: args.label.clone(),
        created_at: now(),
    };
    // Encryption is the one place the new secret is exposed.
    let sealed =
        keys.seal_webhook_secret(webhook.id.as_str(), secret.expose_secret().as_bytes())?;
    let mac = keys
        .row_mac(&webhook.canonical_encoding(&store.meta().id))
        .to_vec();
    let entry = audit::cli_event(SystemEvent::WebhookAdded).with_detail(describe(&webhook));
    let stored = StoredWebhook {
        webhook,
        secret: sealed,
        mac,
    };
    store.insert_webhook(&stored, entry).await?;
    let hook = &stored.webhook;
    if ctx.json {
        let mut out = json!({
            "id": hook.id.as_str(),
            "url": hook.url.as_str(),
            "events": events_list(&hook.events),
            "label": hook.label,
        });
        if generated {
            out["secret"] = Value::String(secret.expose_secret().to_owned());
        }
        output::json(&out);
        return Ok(());
    }
    output::line(format!(
        "added webhook {} ({}) for {}",
        hook.id,
        hook.url.as_str(),
        events_text(&hook.events)
    ));
    if generated {
        output::line(format!("secret: {}", secret.expose_secret()));
        output::line(
            "This secret is shown once. Give it to the receiver to verify X-Aegis-Signature.",
        );
    }
    Ok(())
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let stored = store.webhooks().await?;
    let summaries = store
        .delivery_summaries(Timestamp::from_millis(now().as_millis() - DAY_MS))
        .await?;
    let mut rows: Vec<(WebhookId, &WebhookUrl, &WebhookEvents, &str, Option<&str>)> = ctx
        .loaded
        .config
        .webhooks
        .iter()
        .enumerate()
        .map(|(index, hook)| {
            (
                WebhookId::for_config(index),
                &hook.url,
                &hook.events,
                "config",
                None,
            )
        })
        .collect();
    rows.extend(stored.iter().map(|s| {
        let w = &s.webhook;
        (w.id.clone(), &w.url, &w.events, "cli", w.label.as_deref())
    }));
    let summary = |id: &WebhookId| summaries.get(id.as_str()).cloned().unwrap_or_default();
    if ctx.json {
        output::json(&Value::Array(
            rows.iter()
                .map(|(id, url, events, source, label)| {
                    let s = summary(id);
                    json!({
                        "id": id.as_str(),
                        "url": url.as_str(),
                        "events": events_list(events),
                        "source": source,
                        "label": label,
                        "last_result": s.last_result,
                        "last_attempt_at": s.last_attempt_at.map(Timestamp::to_rfc3339),
                        "failed_24h": s.failed_recently,
                    })
                })
                .collect(),
        ));
        return Ok(());
    }
    if rows.is_empty() {
        output::line(format!(
            "No webhooks in vault '{}'. Add one with aegis webhook add --url <https://…> --events '*'.",
            ctx.vault
        ));
        return Ok(());
    }
    output::table(
        &[
            "id",
            "url",
            "events",
            "source",
            "last result",
            "failed 24h",
            "label",
        ],
        rows.iter()
            .map(|(id, url, events, source, label)| {
                let s = summary(id);
                vec![
                    id.to_string(),
                    url.as_str().to_owned(),
                    events_text(events),
                    (*source).to_owned(),
                    s.last_result.unwrap_or_else(|| "-".to_owned()),
                    s.failed_recently.to_string(),
                    label.unwrap_or("-").to_owned(),
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn remove(ctx: &Context, args: &WebhookIdArgs) -> Result<(), CliError> {
    if args.id.is_config() {
        return Err(CliError::failure(
            "conflict",
            format!(
                "webhook {} comes from the config file and cannot be removed here",
                args.id
            ),
        )
        .with_hint("edit the config file"));
    }
    let store = ctx.vault_store().await?;
    ctx.unlock(&store).await?;
    let mut detail = serde_json::Map::new();
    detail.insert("webhook_id".into(), args.id.as_str().into());
    let entry = audit::cli_event(SystemEvent::WebhookRemoved).with_detail(detail);
    store
        .remove_webhook(&args.id, entry)
        .await
        .map_err(|e| match e {
            aegis_store::StoreError::NotFound { .. } => {
                CliError::failure("not_found", format!("no webhook with id '{}'", args.id))
                    .with_hint("see aegis webhook list")
            }
            other => other.into(),
        })?;
    if ctx.json {
        output::json(&json!({ "removed": args.id.as_str() }));
    } else {
        output::line(format!("removed webhook {}", args.id));
    }
    Ok(())
}

async fn test(ctx: &Context, args: &WebhookIdArgs) -> Result<(), CliError> {
    let (store, holder, dispatcher) = open_dispatcher(ctx).await?;
    let snapshot = holder.load();
    let Some(hook) = snapshot.webhooks().iter().find(|h| h.id == args.id) else {
        return Err(
            CliError::failure("not_found", format!("no webhook with id '{}'", args.id))
                .with_hint("see aegis webhook list"),
        );
    };
    let mut data = serde_json::Map::new();
    data.insert(
        "message".into(),
        "test event sent by aegis webhook test".into(),
    );
    let event_id = aegis_core::crypto::random_uuid()?;
    let payload = payload_bytes(&context(&store), &event_id, TEST_EVENT, now(), data);
    let delivery_id = aegis_core::crypto::random_uuid()?;
    let attempt = dispatcher
        .post(hook, TEST_EVENT, &delivery_id, payload)
        .await;
    let latency_ms = attempt.latency.as_millis();
    if classify(attempt.status) != Verdict::Delivered {
        return Err(CliError::failure(
            "webhook_failed",
            format!(
                "webhook {} answered {} after {latency_ms} ms",
                hook.id, attempt.result
            ),
        )
        .with_hint("check the receiver's URL and logs; it must answer 2xx"));
    }
    if ctx.json {
        output::json(&json!({
            "id": hook.id.as_str(),
            "status": attempt.status,
            "latency_ms": latency_ms,
            "delivery_id": delivery_id.to_string(),
        }));
    } else {
        output::line(format!(
            "webhook {}: {} in {latency_ms} ms",
            hook.id, attempt.result
        ));
    }
    Ok(())
}

/// The vault, its effective webhooks (stored and config, secrets opened) and a dispatcher for
/// this CLI process.
async fn open_dispatcher(
    ctx: &Context,
) -> Result<(VaultStore, Arc<SnapshotHolder>, Arc<Dispatcher>), CliError> {
    let store = ctx.vault_store().await?;
    let keys = ctx.unlock(&store).await?;
    let snapshot_failed = |e: aegis_engine::EngineError| {
        CliError::failure(e.code(), format!("cannot read the vault: {e}"))
            .with_hint("run aegis doctor")
    };
    let snapshot = build_snapshot(&store, &keys, now())
        .await
        .map_err(snapshot_failed)?;
    let config = config_webhooks(&store, &keys, &ctx.loaded.config.webhooks)
        .await
        .map_err(snapshot_failed)?;
    let holder = Arc::new(SnapshotHolder::with_config_webhooks(snapshot, config));
    let dispatcher = Dispatcher::new(
        store.clone(),
        holder.clone(),
        dispatcher_settings(ctx),
        instance(),
    )
    .map_err(|e| CliError::config(e.to_string()))?;
    Ok((store, holder, Arc::new(dispatcher)))
}

fn context(store: &VaultStore) -> PayloadContext {
    PayloadContext {
        vault: store.meta().name.to_string(),
        instance: instance(),
    }
}

fn instance() -> String {
    format!("cli-{}", std::process::id())
}

/// The non-secret description recorded by `webhook_added` (no URL path or query: they can hold
/// tokens).
fn describe(webhook: &Webhook) -> serde_json::Map<String, Value> {
    let mut detail = serde_json::Map::new();
    detail.insert("webhook_id".into(), webhook.id.as_str().into());
    detail.insert("host".into(), webhook.url.host().into());
    detail.insert("events".into(), events_text(&webhook.events).into());
    detail.insert("allow_http".into(), webhook.allow_http.into());
    detail
}

fn events_list(events: &WebhookEvents) -> Vec<String> {
    match events {
        WebhookEvents::All => vec!["*".to_owned()],
        WebhookEvents::Only(list) => list
            .iter()
            .map(|e| aegis_core::config::ConfigEnum::as_str(*e).to_owned())
            .collect(),
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// One day in milliseconds (`failed 24h`).
const DAY_MS: i64 = 24 * 3600 * 1000;
/// `check-expiry`'s default window.
const DEFAULT_EXPIRY_DAYS: u32 = 7;
/// How long a command tries to deliver the events it queued (SPEC.md §18.3).
const CLI_DELIVERY_WINDOW: Duration = Duration::from_secs(10);
