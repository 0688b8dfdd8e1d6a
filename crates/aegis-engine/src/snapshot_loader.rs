//! Building a snapshot from the store: one read of every credential, agent, grant and webhook,
//! every row MAC verified, every secret decrypted. Any failure rejects the whole build; nothing is
//! half-applied.

use std::collections::HashMap;

use secrecy::{ExposeSecret as _, SecretString};

use aegis_core::agent::grant_encoding;
use aegis_core::config::WebhookConfig;
use aegis_core::crypto::{SecretField, VaultKeys};
use aegis_core::snapshot::{Snapshot, SnapshotAgent, SnapshotEntry};
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::{ActiveWebhook, WebhookId, generate_secret};
use aegis_store::StoreError;
use aegis_store::agents::AgentRows;
use aegis_store::vault::{StoredCredential, VaultStore};
use aegis_store::webhooks::StoredWebhook;

use crate::error::EngineError;

/// Reads the vault and builds a snapshot; `now` decides which grace-period secrets still count.
///
/// # Errors
/// [`EngineError::Store`] when the store fails or an agent or grant row fails its MAC
/// ([`StoreError::InvalidRow`] naming the row and `mac`), [`EngineError::Integrity`] when a
/// credential row fails its MAC or does not decrypt.
pub async fn build_snapshot(
    store: &VaultStore,
    keys: &VaultKeys,
    now: Timestamp,
) -> Result<Snapshot, EngineError> {
    let generation = store.generation().await?;
    let rows = store.credentials().await?;
    let meta = store.meta();
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        entries.push(open_row(keys, &meta.id, row, now)?);
    }
    let agents = verified_agents(keys, &meta.id, store.agent_rows().await?)?;
    let webhooks = open_webhooks(keys, &meta.id, store.webhooks().await?)?;
    Ok(Snapshot::new(
        generation,
        meta.name.clone(),
        meta.id,
        meta.sealed,
        now,
        entries,
    )
    .with_agents(agents)
    .with_webhooks(webhooks))
}

/// The config file's webhooks with their secrets (SPEC.md §18.4, ids `cfg-<n>`). An entry
/// without a secret gets a generated `whsec_` one, stored (encrypted) in the vault the first
/// time, so every process signs with the same secret (§27).
///
/// # Errors
/// [`EngineError::Store`] when the store fails, [`EngineError::Integrity`] when a stored
/// generated secret does not decrypt.
pub async fn config_webhooks(
    store: &VaultStore,
    keys: &VaultKeys,
    config: &[WebhookConfig],
) -> Result<Vec<ActiveWebhook>, EngineError> {
    let mut out = Vec::with_capacity(config.len());
    for (index, hook) in config.iter().enumerate() {
        let id = WebhookId::for_config(index);
        let secret = match &hook.secret {
            Some(secret) => secret.clone(),
            None => {
                let aad = format!("cfg:{}", hook.url.as_str());
                let fresh = generate_secret().map_err(|_| EngineError::Integrity {
                    name: format!("webhook {id}"),
                })?;
                let sealed = keys
                    .seal_webhook_secret(&aad, fresh.expose_secret().as_bytes())
                    .map_err(|_| EngineError::Integrity {
                        name: format!("webhook {id}"),
                    })?;
                let envelope = store
                    .config_webhook_secret(hook.url.as_str(), &sealed)
                    .await?;
                open_webhook_secret(keys, &aad, &envelope).ok_or_else(|| {
                    EngineError::Integrity {
                        name: format!("webhook {id}"),
                    }
                })?
            }
        };
        out.push(ActiveWebhook {
            id,
            url: hook.url.clone(),
            events: hook.events.clone(),
            allow_http: hook.allow_http,
            secret,
        });
    }
    Ok(out)
}

/// Checks every stored webhook's MAC and decrypts its secret.
fn open_webhooks(
    keys: &VaultKeys,
    vault_id: &uuid::Uuid,
    rows: Vec<StoredWebhook>,
) -> Result<Vec<ActiveWebhook>, EngineError> {
    rows.into_iter()
        .map(|row| {
            let w = row.webhook;
            let tampered = || {
                EngineError::Store(StoreError::InvalidRow {
                    table: "webhooks",
                    row: w.id.to_string(),
                    field: "mac",
                })
            };
            if !keys.verify_row_mac(&w.canonical_encoding(vault_id), &row.mac) {
                return Err(tampered());
            }
            let secret =
                open_webhook_secret(keys, w.id.as_str(), &row.secret).ok_or_else(|| {
                    EngineError::Integrity {
                        name: format!("webhook {}", w.id),
                    }
                })?;
            Ok(ActiveWebhook {
                id: w.id,
                url: w.url,
                events: w.events,
                allow_http: w.allow_http,
                secret,
            })
        })
        .collect()
}

fn open_webhook_secret(keys: &VaultKeys, aad: &str, envelope: &[u8]) -> Option<SecretString> {
    let plain = keys.open_webhook_secret(aad, envelope).ok()?;
    let text = std::str::from_utf8(&plain).ok()?;
    Some(SecretString::from(text.to_owned()))
}

/// Checks every agent and grant MAC and groups the grants by agent.
fn verified_agents(
    keys: &VaultKeys,
    vault_id: &uuid::Uuid,
    rows: AgentRows,
) -> Result<Vec<SnapshotAgent>, EngineError> {
    let tampered = |table: &'static str, row: String| {
        EngineError::Store(StoreError::InvalidRow {
            table,
            row,
            field: "mac",
        })
    };
    let mut grants: HashMap<uuid::Uuid, Vec<uuid::Uuid>> = HashMap::new();
    for grant in rows.grants {
        let encoding = grant_encoding(vault_id, &grant.agent_id, &grant.credential_id);
        if !keys.verify_row_mac(&encoding, &grant.mac) {
            return Err(tampered(
                "grants",
                format!("{}/{}", grant.agent_id, grant.credential_id),
            ));
        }
        grants
            .entry(grant.agent_id)
            .or_default()
            .push(grant.credential_id);
    }
    rows.agents
        .into_iter()
        .map(|stored| {
            let encoding = stored.agent.canonical_encoding(vault_id);
            if !keys.verify_row_mac(&encoding, &stored.mac) {
                return Err(tampered("agents", stored.agent.name.to_string()));
            }
            Ok(SnapshotAgent {
                grants: grants.remove(&stored.agent.id).unwrap_or_default(),
                agent: stored.agent,
            })
        })
        .collect()
}

fn open_row(
    keys: &VaultKeys,
    vault_id: &uuid::Uuid,
    row: StoredCredential,
    now: Timestamp,
) -> Result<SnapshotEntry, EngineError> {
    let integrity = || EngineError::Integrity {
        name: row.credential.name.to_string(),
    };
    let encoding = row.credential.canonical_encoding(vault_id);
    if !keys.verify_row_mac(&encoding, &row.mac) {
        return Err(integrity());
    }
    let id = *row.credential.id.as_bytes();
    let secret = decrypt(keys, id, SecretField::Secret, &row.secret).ok_or_else(integrity)?;
    let in_grace = row
        .credential
        .previous_until
        .is_some_and(|until| now < until);
    let previous = match (&row.previous_secret, in_grace) {
        (Some(envelope), true) => {
            Some(decrypt(keys, id, SecretField::PreviousSecret, envelope).ok_or_else(integrity)?)
        }
        _ => None,
    };
    Ok(SnapshotEntry {
        credential: row.credential,
        secret,
        previous,
    })
}

fn decrypt(
    keys: &VaultKeys,
    id: [u8; 16],
    field: SecretField,
    envelope: &[u8],
) -> Option<SecretString> {
    let plain = keys.open_secret(id, field, envelope).ok()?;
    let text = std::str::from_utf8(&plain).ok()?;
    Some(SecretString::from(text.to_owned()))
}
