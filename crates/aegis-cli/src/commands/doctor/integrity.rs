//! The `integrity` check of `aegis doctor` (SPEC.md §23, §6.5): every credential row's MAC and
//! secret envelopes, every agent row's MAC, every grant row's MAC, and every stored webhook's MAC
//! and secret envelope, under the vault's keys. A row changed by someone without the master key fails here, as it makes
//! the gate reject the snapshot.

use std::collections::HashMap;

use aegis_core::agent::grant_encoding;
use aegis_core::crypto::{SecretField, VaultKeys};
use aegis_store::vault::{StoredCredential, VaultStore};

use super::{Check, Status};
use crate::error::CliError;

/// Verifies every credential, agent, grant and webhook row; names each row that fails.
pub(super) async fn check(
    keys: &VaultKeys,
    store: &VaultStore,
    credentials: &[StoredCredential],
) -> Check {
    let vault_id = store.meta().id;
    let mut broken = Vec::new();
    for stored in credentials {
        let id = *stored.credential.id.as_bytes();
        let mac_ok = keys.verify_row_mac(
            &stored.credential.canonical_encoding(&vault_id),
            &stored.mac,
        );
        let secret_ok = keys
            .open_secret(id, SecretField::Secret, &stored.secret)
            .is_ok();
        let previous_ok = stored
            .previous_secret
            .as_ref()
            .is_none_or(|p| keys.open_secret(id, SecretField::PreviousSecret, p).is_ok());
        if !(mac_ok && secret_ok && previous_ok) {
            broken.push(format!("credential '{}'", stored.credential.name));
        }
    }
    let rows = match store.agent_rows().await {
        Ok(rows) => rows,
        Err(err) => {
            return Check::new("integrity", Status::Fail, CliError::from(err).message)
                .hint(TAMPERED_HINT);
        }
    };
    let agent_names: HashMap<_, String> = rows
        .agents
        .iter()
        .map(|s| (s.agent.id, s.agent.name.to_string()))
        .collect();
    let credential_names: HashMap<_, String> = credentials
        .iter()
        .map(|s| (s.credential.id, s.credential.name.to_string()))
        .collect();
    for stored in &rows.agents {
        let encoding = stored.agent.canonical_encoding(&vault_id);
        if !keys.verify_row_mac(&encoding, &stored.mac) {
            broken.push(format!("agent '{}'", stored.agent.name));
        }
    }
    let webhooks = match store.webhooks().await {
        Ok(webhooks) => webhooks,
        Err(err) => {
            return Check::new("integrity", Status::Fail, CliError::from(err).message)
                .hint(TAMPERED_HINT);
        }
    };
    for stored in &webhooks {
        let w = &stored.webhook;
        let mac_ok = keys.verify_row_mac(&w.canonical_encoding(&vault_id), &stored.mac);
        let secret_ok = keys
            .open_webhook_secret(w.id.as_str(), &stored.secret)
            .is_ok();
        if !(mac_ok && secret_ok) {
            broken.push(format!("webhook {}", w.id));
        }
    }
    for grant in &rows.grants {
        let encoding = grant_encoding(&vault_id, &grant.agent_id, &grant.credential_id);
        if !keys.verify_row_mac(&encoding, &grant.mac) {
            let agent = agent_names
                .get(&grant.agent_id)
                .cloned()
                .unwrap_or_else(|| grant.agent_id.to_string());
            let credential = credential_names
                .get(&grant.credential_id)
                .cloned()
                .unwrap_or_else(|| grant.credential_id.to_string());
            broken.push(format!("grant of '{credential}' to '{agent}'"));
        }
    }
    if broken.is_empty() {
        let counted = if webhooks.is_empty() {
            format!(
                "{} credential, {} agent and {} grant row(s) verified",
                credentials.len(),
                rows.agents.len(),
                rows.grants.len()
            )
        } else {
            format!(
                "{} credential, {} agent, {} grant and {} webhook row(s) verified",
                credentials.len(),
                rows.agents.len(),
                rows.grants.len(),
                webhooks.len()
            )
        };
        return Check::new("integrity", Status::Pass, counted);
    }
    Check::new(
        "integrity",
        Status::Fail,
        format!("failed their integrity check: {}", broken.join(", ")),
    )
    .hint(TAMPERED_HINT)
}

const TAMPERED_HINT: &str = "the database was changed outside aegis; restore a backup (aegis db restore) or re-add the rows";
