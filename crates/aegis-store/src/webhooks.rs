//! Webhooks of one vault (SPEC.md §18): stored webhooks (secret envelope and row MAC, written
//! with their ledger entry in one transaction), the delivery outbox with claim leases, the
//! record of notified credential-expiry stages, and generated secrets of config-file webhooks.
//!
//! Encrypting secrets, computing MACs, building payloads and deciding retries belong to the
//! caller (aegis-core and the engine); this module only stores what it is given. Outbox rows
//! raised by ledger entries are inserted by the ledger append itself (see [`OutboxRouter`]);
//! the outbox itself lives in `outbox`.

mod outbox;

pub(crate) use outbox::insert_outbox_in;
pub use outbox::{Claim, DeliverySummary, OutboxRouter, OutboxRow, Settlement};

use aegis_core::config::WebhookUrl;
use aegis_core::ledger::EntryContent;
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::{Webhook, WebhookId, parse_events_text};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::ledger;
use crate::vault::{VaultStore, now};

/// A webhook as stored: its fields, its secret envelope and its row MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    /// The non-secret fields.
    pub webhook: Webhook,
    /// The signing secret, sealed with the `webhook-secrets` subkey.
    pub secret: Vec<u8>,
    /// HMAC over [`Webhook::canonical_encoding`].
    pub mac: Vec<u8>,
}

/// Deliveries queued when a credential reaches an expiry stage, recorded once per stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryNotice {
    /// The credential.
    pub credential_id: uuid::Uuid,
    /// Its expiry (a renewed credential starts over).
    pub expires_at: Timestamp,
    /// The stage reached (`7d`, `1d`, `expired`).
    pub stage: &'static str,
    /// Earlier stages settled with it, so they are never sent late.
    pub earlier: Vec<&'static str>,
    /// The deliveries to queue if the stage was not notified before.
    pub rows: Vec<OutboxRow>,
}

impl VaultStore {
    /// Every stored webhook, by id.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row whose fields do not parse.
    pub async fn webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading webhooks"))?;
        rows.iter().map(webhook_from_row).collect()
    }

    /// Adds a webhook and its `webhook_added` entry in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id is taken; database failures.
    pub async fn insert_webhook(
        &self,
        stored: &StoredWebhook,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let w = &stored.webhook;
        sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(w.id.as_str())
        .bind(w.url.as_str())
        .bind(aegis_core::webhook::events_text(&w.events))
        .bind(&stored.secret)
        .bind(w.allow_http)
        .bind(w.label.as_deref())
        .bind(w.created_at.as_millis())
        .bind(&stored.mac)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                kind: "webhook",
                name: w.id.to_string(),
            },
            _ => StoreError::Database {
                op: "adding a webhook",
                source: e,
            },
        })?;
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("adding a webhook"))
    }

    /// Removes a stored webhook, its pending deliveries, and appends `webhook_removed`, in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such webhook; database failures.
    pub async fn remove_webhook(
        &self,
        id: &WebhookId,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing a webhook"))?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound {
                kind: "webhook",
                name: id.to_string(),
            });
        }
        sqlx::query("DELETE FROM webhook_outbox WHERE webhook_id = ? AND state = 'pending'")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing a webhook's deliveries"))?;
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("removing a webhook"))
    }

    /// Records each notice's stage and, when it was not recorded before, queues its rows; all
    /// in one transaction. Returns how many notices were new.
    ///
    /// # Errors
    /// Database failures; nothing is recorded then.
    pub async fn record_expiry_notices(
        &self,
        notices: &[ExpiryNotice],
    ) -> Result<usize, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("recording expiry notices"))?;
        let at = now().as_millis();
        let mut fresh = 0;
        for notice in notices {
            let insert = |stage: &'static str| {
                sqlx::query(
                    "INSERT OR IGNORE INTO webhook_expiry_notices \
                     (credential_id, expires_at, stage, notified_at) VALUES (?, ?, ?, ?)",
                )
                .bind(notice.credential_id.to_string())
                .bind(notice.expires_at.as_millis())
                .bind(stage)
                .bind(at)
            };
            let inserted = insert(notice.stage)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("recording expiry notices"))?
                .rows_affected();
            for stage in &notice.earlier {
                insert(stage)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("recording expiry notices"))?;
            }
            if inserted > 0 {
                fresh += 1;
                insert_outbox_in(&mut tx, &notice.rows).await?;
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::db("recording expiry notices"))?;
        Ok(fresh)
    }

    /// The stored secret envelope of the config-file webhook posting to `url`, storing
    /// `generated` first when there is none yet (the first writer wins, so every process signs
    /// with the same secret).
    ///
    /// # Errors
    /// Database failures.
    pub async fn config_webhook_secret(
        &self,
        url: &str,
        generated: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO webhook_config_secrets (url, secret, created_at) VALUES (?, ?, ?)",
        )
        .bind(url)
        .bind(generated)
        .bind(now().as_millis())
        .execute(self.pool())
        .await
        .map_err(StoreError::db("storing a webhook secret"))?;
        let row = sqlx::query("SELECT secret FROM webhook_config_secrets WHERE url = ?")
            .bind(url)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("reading a webhook secret"))?;
        Ok(row.get("secret"))
    }
}

const WEBHOOK_COLUMNS: &str = "id, url, events, secret, allow_http, label, created_at, mac";

fn webhook_from_row(row: &SqliteRow) -> Result<StoredWebhook, StoreError> {
    let id: String = row.get("id");
    let invalid = |field| StoreError::InvalidRow {
        table: "webhooks",
        row: id.clone(),
        field,
    };
    let webhook = Webhook {
        id: WebhookId::parse(&id).map_err(|_| invalid("id"))?,
        url: WebhookUrl::parse(row.get("url")).map_err(|_| invalid("url"))?,
        events: parse_events_text(row.get("events")).map_err(|_| invalid("events"))?,
        allow_http: row.get("allow_http"),
        label: row.get("label"),
        created_at: Timestamp::from_millis(row.get("created_at")),
    };
    Ok(StoredWebhook {
        webhook,
        secret: row.get("secret"),
        mac: row.get("mac"),
    })
}
