//! Webhooks of one vault (SPEC.md §18): stored webhooks (secret envelope and row MAC, written
//! with their ledger entry in one transaction), the delivery outbox with claim leases, the
//! record of notified credential-expiry stages, and generated secrets of config-file webhooks.
//!
//! Encrypting secrets, computing MACs, building payloads and deciding retries belong to the
//! caller (aegis-core and the engine); this module only stores what it is given. Outbox rows
//! raised by ledger entries are inserted by the ledger append itself (see [`OutboxRouter`]).

use std::collections::HashMap;
use std::time::Duration;

use aegis_core::ledger::{EntryContent, LedgerEntry};
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::{Webhook, WebhookId, parse_events_text};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use aegis_core::config::WebhookUrl;

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

/// One delivery of one event to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// `X-Aegis-Delivery`: the same on every attempt.
    pub delivery_id: uuid::Uuid,
    /// The payload's `id`, shared by every webhook receiving the event.
    pub event_id: uuid::Uuid,
    /// Which webhook (`wh_…` or `cfg-<n>`).
    pub webhook_id: String,
    /// The event name.
    pub event: String,
    /// The exact JSON body.
    pub payload: Vec<u8>,
    /// When the event happened (retries stop 24 h later).
    pub created_at: Timestamp,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
}

/// Derives outbox rows from ledger entries while they are appended, so the rows commit in the
/// same transaction as the batch that raised them (SPEC.md §18.3).
pub trait OutboxRouter: Send + Sync + std::fmt::Debug {
    /// Adds to `out` the deliveries `entry` raises (none for most entries).
    fn route(&self, entry: &LedgerEntry, out: &mut Vec<OutboxRow>);
}

/// What `webhook list` shows about a webhook's recent deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliverySummary {
    /// Result of the latest attempt (`200`, `timeout`, `network_error`, …).
    pub last_result: Option<String>,
    /// When the latest attempt was made.
    pub last_attempt_at: Option<Timestamp>,
    /// Deliveries marked failed since the given time.
    pub failed_recently: u64,
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

/// How an attempt ended, for [`VaultStore::settle_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered.
    Delivered,
    /// Try again at this time.
    Retry(Timestamp),
    /// Given up; `webhook_delivery_failed` is appended in the same transaction.
    Failed(Box<EntryContent>),
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

    /// Queues deliveries in their own transaction (events not raised by a ledger entry).
    ///
    /// # Errors
    /// Database failures; nothing is queued then.
    pub async fn enqueue_deliveries(&self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("queueing webhook deliveries"))?;
        insert_outbox_in(&mut tx, rows).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("queueing webhook deliveries"))
    }

    /// Claims up to `limit` pending deliveries due at `now` whose lease (if any) has run out,
    /// leasing them to `claimer` for `lease`. One statement, so two processes never claim the
    /// same row at the same time.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row that does not parse.
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        claimer: &str,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE webhook_outbox SET lease_until = ?, leased_by = ? WHERE delivery_id IN \
             (SELECT delivery_id FROM webhook_outbox WHERE state = 'pending' \
              AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
              ORDER BY next_attempt_at LIMIT ?) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(now.plus(lease).as_millis())
        .bind(claimer)
        .bind(now.as_millis())
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("claiming webhook deliveries"))?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// The earliest `next_attempt_at` of a pending delivery, if any.
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row =
            sqlx::query("SELECT min(next_attempt_at) FROM webhook_outbox WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await
                .map_err(StoreError::db("reading the webhook outbox"))?;
        Ok(row.get::<Option<i64>, _>(0).map(Timestamp::from_millis))
    }

    /// Records the end of an attempt (`result` like `200` or `timeout`) and releases the lease.
    ///
    /// # Errors
    /// Database failures.
    pub async fn settle_delivery(
        &self,
        delivery_id: &uuid::Uuid,
        attempts: u32,
        result: &str,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let at = now();
        let (state, next) = match &settlement {
            Settlement::Delivered => ("delivered", None),
            Settlement::Retry(next) => ("pending", Some(next.as_millis())),
            Settlement::Failed(_) => ("failed", None),
        };
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("recording a webhook delivery"))?;
        if let Settlement::Failed(_) = &settlement {
            ledger::lock_for_append(&mut tx).await?;
        }
        sqlx::query(
            "UPDATE webhook_outbox SET state = ?, attempts = ?, last_result = ?, \
             last_attempt_at = ?, next_attempt_at = coalesce(?, next_attempt_at), \
             lease_until = NULL, leased_by = NULL WHERE delivery_id = ?",
        )
        .bind(state)
        .bind(i64::from(attempts))
        .bind(result)
        .bind(at.as_millis())
        .bind(next)
        .bind(delivery_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording a webhook delivery"))?;
        if let Settlement::Failed(entry) = settlement {
            ledger::append_in(&mut tx, &self.meta().id, *entry, at).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("recording a webhook delivery"))
    }

    /// Drops the leases `claimer` still holds (its attempts were cut short by a shutdown), so
    /// the next process can send those deliveries at once.
    ///
    /// # Errors
    /// Database failures.
    pub async fn release_delivery_leases(&self, claimer: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE webhook_outbox SET lease_until = NULL, leased_by = NULL \
             WHERE leased_by = ? AND state = 'pending'",
        )
        .bind(claimer)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("releasing webhook leases"))?
        .rows_affected())
    }

    /// Deliveries not yet delivered or failed (`aegis_webhook_outbox_depth`).
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT count(*) FROM webhook_outbox WHERE state = 'pending'")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("reading the webhook outbox"))?;
        Ok(u64::try_from(row.get::<i64, _>(0)).unwrap_or(0))
    }

    /// Per webhook id: the latest attempt's result and the deliveries failed since `since`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn delivery_summaries(
        &self,
        since: Timestamp,
    ) -> Result<HashMap<String, DeliverySummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT webhook_id, \
               (SELECT o2.last_result FROM webhook_outbox o2 WHERE o2.webhook_id = o.webhook_id \
                  AND o2.last_attempt_at IS NOT NULL ORDER BY o2.last_attempt_at DESC LIMIT 1) \
                  AS last_result, \
               max(last_attempt_at) AS last_attempt_at, \
               sum(CASE WHEN state = 'failed' AND last_attempt_at >= ? THEN 1 ELSE 0 END) \
                  AS failed \
             FROM webhook_outbox o GROUP BY webhook_id",
        )
        .bind(since.as_millis())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading webhook deliveries"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let summary = DeliverySummary {
                    last_result: row.get("last_result"),
                    last_attempt_at: row
                        .get::<Option<i64>, _>("last_attempt_at")
                        .map(Timestamp::from_millis),
                    failed_recently: u64::try_from(row.get::<i64, _>("failed")).unwrap_or(0),
                };
                (row.get::<String, _>("webhook_id"), summary)
            })
            .collect())
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

/// Inserts outbox rows inside `tx` (the ledger append's, or the caller's own).
pub(crate) async fn insert_outbox_in(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[OutboxRow],
) -> Result<(), StoreError> {
    for row in rows {
        sqlx::query(
            "INSERT INTO webhook_outbox (delivery_id, event_id, webhook_id, event, payload, \
             created_at, next_attempt_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.delivery_id.to_string())
        .bind(row.event_id.to_string())
        .bind(&row.webhook_id)
        .bind(&row.event)
        .bind(&row.payload)
        .bind(row.created_at.as_millis())
        .bind(row.next_attempt_at.as_millis())
        .bind(i64::from(row.attempts))
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("queueing webhook deliveries"))?;
    }
    Ok(())
}

const WEBHOOK_COLUMNS: &str = "id, url, events, secret, allow_http, label, created_at, mac";
const OUTBOX_COLUMNS: &str =
    "delivery_id, event_id, webhook_id, event, payload, created_at, next_attempt_at, attempts";

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

fn outbox_from_row(row: &SqliteRow) -> Result<OutboxRow, StoreError> {
    let id: String = row.get("delivery_id");
    let invalid = |field| StoreError::InvalidRow {
        table: "webhook_outbox",
        row: id.clone(),
        field,
    };
    let event_id: String = row.get("event_id");
    Ok(OutboxRow {
        delivery_id: uuid::Uuid::parse_str(&id).map_err(|_| invalid("delivery_id"))?,
        event_id: uuid::Uuid::parse_str(&event_id).map_err(|_| invalid("event_id"))?,
        webhook_id: row.get("webhook_id"),
        event: row.get("event"),
        payload: row.get("payload"),
        created_at: Timestamp::from_millis(row.get("created_at")),
        next_attempt_at: Timestamp::from_millis(row.get("next_attempt_at")),
        attempts: u32::try_from(row.get::<i64, _>("attempts")).map_err(|_| invalid("attempts"))?,
    })
}
