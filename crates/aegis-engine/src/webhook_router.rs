//! Turns committed ledger entries into outbox rows (SPEC.md §18.1, §18.3): the events each entry
//! raises, coalesced per limiter key or peer, one delivery per subscribed webhook of the
//! effective list in the snapshot in force. Runs inside the ledger batch's transaction, so it
//! never waits on anything: it reads the snapshot and a small in-memory coalescing table.

use std::sync::{Arc, Mutex};

use aegis_core::config::{ConfigEnum as _, WebhookEvent};
use aegis_core::ledger::LedgerEntry;
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::events::{Admission, Coalescer, raised_by};
use aegis_core::webhook::{ActiveWebhook, PayloadContext, event_name, payload_bytes};
use aegis_store::webhooks::{OutboxRouter, OutboxRow};

use crate::holder::SnapshotHolder;

/// The [`OutboxRouter`] of a gate or MCP server process.
#[derive(Debug)]
pub struct WebhookRouter {
    holder: Arc<SnapshotHolder>,
    context: PayloadContext,
    coalescer: Mutex<Coalescer>,
    /// What this batch's coalescing changed, undone if the batch is rolled back.
    admitted: Mutex<Vec<Admission>>,
    /// Woken after rows were routed, so the dispatcher looks soon.
    wake: Arc<tokio::sync::Notify>,
}

impl WebhookRouter {
    /// A router reading the effective webhook list from `holder`'s snapshot.
    pub fn new(holder: Arc<SnapshotHolder>, context: PayloadContext) -> Self {
        Self {
            holder,
            context,
            coalescer: Mutex::new(Coalescer::default()),
            admitted: Mutex::new(Vec::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified whenever deliveries were routed (the dispatcher waits on it between polls).
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}

impl OutboxRouter for WebhookRouter {
    fn route(&self, entry: &LedgerEntry, out: &mut Vec<OutboxRow>) {
        let raised = raised_by(entry);
        if raised.is_empty() {
            return;
        }
        let snapshot = self.holder.load();
        let hooks = snapshot.webhooks();
        if hooks.is_empty() {
            return;
        }
        let before = out.len();
        for mut event in raised {
            if !hooks.iter().any(|h| h.wants(event.event)) {
                continue;
            }
            if let Some(key) = &event.coalesce_key {
                let admitted = match self.coalescer.lock() {
                    Ok(mut coalescer) => {
                        let (sent, admission) =
                            coalescer.admit(event.event, key, entry.ts().as_millis());
                        if let Ok(mut journal) = self.admitted.lock() {
                            journal.push(admission);
                        }
                        sent
                    }
                    // A poisoned table only loses coalescing: send the event.
                    Err(_) => Some(0),
                };
                let Some(suppressed) = admitted else {
                    continue;
                };
                event.data.insert("suppressed".into(), suppressed.into());
            }
            deliveries_for(
                hooks,
                &self.context,
                event.event,
                entry.ts(),
                event.data,
                out,
            );
        }
        if out.len() > before {
            self.wake.notify_one();
        }
    }

    fn batch_finished(&self, committed: bool) {
        let Ok(mut journal) = self.admitted.lock() else {
            return;
        };
        if committed {
            journal.clear();
            return;
        }
        // The batch's events were never queued: decide them again when it is retried.
        if let Ok(mut coalescer) = self.coalescer.lock() {
            while let Some(admission) = journal.pop() {
                coalescer.undo(admission);
            }
        }
        journal.clear();
    }
}

/// One outbox row per webhook of `hooks` subscribed to `event`, all with the same event id and
/// payload bytes.
pub fn deliveries_for(
    hooks: &[ActiveWebhook],
    context: &PayloadContext,
    event: WebhookEvent,
    at: Timestamp,
    data: serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<OutboxRow>,
) {
    let Ok(event_id) = aegis_core::crypto::random_uuid() else {
        tracing::error!(
            event = event.as_str(),
            "no randomness for a webhook event id; event not queued"
        );
        return;
    };
    let name = event_name(Some(event));
    let payload = payload_bytes(context, &event_id, name, at, data);
    for hook in hooks.iter().filter(|h| h.wants(event)) {
        let Ok(delivery_id) = aegis_core::crypto::random_uuid() else {
            continue;
        };
        out.push(OutboxRow {
            delivery_id,
            event_id,
            webhook_id: hook.id.to_string(),
            event: name.to_owned(),
            payload: payload.clone(),
            created_at: at,
            next_attempt_at: at,
            attempts: 0,
        });
    }
}
