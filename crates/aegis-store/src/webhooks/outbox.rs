//! The webhook delivery outbox (SPEC.md §18.3): rows queued with their event, claimed with a
//! lease so two processes never send one at the same time, settled as delivered, retried or
//! failed, and summarised for `webhook list`.

use std::collections::HashMap;
use std::time::Duration;

use aegis_core::ledger::{EntryContent, LedgerEntry};
use aegis_core::timestamp::Timestamp;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::error::StoreError;
use crate::ledger;
use crate::vault::{VaultStore, now};

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

    /// Called once per batch after its transaction: `committed` is false when it was rolled
    /// back, so what routing remembered about the batch's entries can be forgotten.
    fn batch_finished(&self, committed: bool) {
        let _ = committed;
    }
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

/// How many deliveries one [`VaultStore::claim_deliveries`] may take.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Rows at most.
    pub total: u32,
    /// Rows of any one webhook at most (so a slow receiver cannot take every slot).
    pub per_webhook: u32,
    /// Webhooks to leave alone (they already have enough attempts in flight).
    pub skip: &'a [String],
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

    /// Claims pending deliveries due at `now` whose lease (if any) has run out, leasing them to
    /// `claimer` for `lease`: at most `claim.total`, at most `claim.per_webhook` of any one
    /// webhook, none of the webhooks in `claim.skip`. One statement, so two processes never
    /// claim the same row at the same time.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row that does not parse.
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        claim: &Claim<'_>,
        claimer: &str,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let skip = if claim.skip.is_empty() {
            String::new()
        } else {
            let marks = vec!["?"; claim.skip.len()].join(", ");
            format!("AND webhook_id NOT IN ({marks})")
        };
        let sql = format!(
            "UPDATE webhook_outbox SET lease_until = ?, leased_by = ? WHERE delivery_id IN \
             (SELECT delivery_id FROM \
               (SELECT delivery_id, next_attempt_at, row_number() OVER \
                  (PARTITION BY webhook_id ORDER BY next_attempt_at) AS nth \
                FROM webhook_outbox WHERE state = 'pending' AND next_attempt_at <= ? \
                AND (lease_until IS NULL OR lease_until <= ?) {skip}) \
              WHERE nth <= ? ORDER BY next_attempt_at LIMIT ?) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let mut query = sqlx::query(&sql)
            .bind(now.plus(lease).as_millis())
            .bind(claimer)
            .bind(now.as_millis())
            .bind(now.as_millis());
        for id in claim.skip {
            query = query.bind(id.as_str());
        }
        let rows = query
            .bind(i64::from(claim.per_webhook))
            .bind(i64::from(claim.total))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("claiming webhook deliveries"))?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// When the next pending delivery can be claimed: its `next_attempt_at`, or the end of its
    /// lease when an attempt holds it (so a dispatcher does not poll a leased row).
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT min(max(next_attempt_at, coalesce(lease_until, next_attempt_at))) \
             FROM webhook_outbox WHERE state = 'pending'",
        )
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

const OUTBOX_COLUMNS: &str =
    "delivery_id, event_id, webhook_id, event, payload, created_at, next_attempt_at, attempts";

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
