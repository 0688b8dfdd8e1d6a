//! `credential_expiry` events (SPEC.md §18.1, §18.3): which credentials of a snapshot have
//! reached an expiry stage, queued once per stage for every subscribed webhook. The gate runs
//! this at start and every hour; `aegis webhook check-expiry` runs it on demand.

use aegis_core::config::WebhookEvent;
use aegis_core::snapshot::Snapshot;
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::PayloadContext;
use aegis_core::webhook::expiry::{ExpiryStage, expiry_data, stage};
use aegis_store::vault::VaultStore;
use aegis_store::webhooks::ExpiryNotice;

use crate::error::EngineError;
use crate::webhook_router::deliveries_for;

/// One credential at an expiry stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    /// Credential name.
    pub credential: String,
    /// Its service.
    pub service: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// The stage reached (`None` when it is only inside a wider `--days` window).
    pub stage: Option<ExpiryStage>,
}

/// Credentials expired or expiring within `window_days` of `now`, soonest first.
pub fn expiring_within(snapshot: &Snapshot, now: Timestamp, window_days: u32) -> Vec<Expiring> {
    let horizon = now.plus_days(window_days);
    let mut out: Vec<Expiring> = snapshot
        .credentials()
        .iter()
        .filter_map(|c| {
            let at = c.expires_at?;
            (at <= horizon).then(|| Expiring {
                credential: c.name.to_string(),
                service: c.service.to_string(),
                expires_at: at,
                stage: stage(at, now),
            })
        })
        .collect();
    out.sort_by_key(|e| e.expires_at);
    out
}

/// Queues `credential_expiry` for every credential of `snapshot` at a stage not notified
/// before, for every webhook subscribed to it. Returns how many notices were new.
///
/// # Errors
/// [`EngineError::Store`] when the notices cannot be recorded (nothing is queued then).
pub async fn queue_expiry_events(
    store: &VaultStore,
    snapshot: &Snapshot,
    context: &PayloadContext,
    now: Timestamp,
) -> Result<usize, EngineError> {
    let notices: Vec<ExpiryNotice> = snapshot
        .credentials()
        .iter()
        .filter_map(|c| {
            let at = c.expires_at?;
            let reached = stage(at, now)?;
            let mut rows = Vec::new();
            deliveries_for(
                snapshot.webhooks(),
                context,
                WebhookEvent::CredentialExpiry,
                now,
                expiry_data(c, at, now),
                &mut rows,
            );
            Some(ExpiryNotice {
                credential_id: c.id,
                expires_at: at,
                stage: reached.as_str(),
                earlier: reached
                    .up_to()
                    .filter(|s| *s != reached)
                    .map(ExpiryStage::as_str)
                    .collect(),
                rows,
            })
        })
        .collect();
    if notices.is_empty() {
        return Ok(0);
    }
    Ok(store.record_expiry_notices(&notices).await?)
}
