//! The snapshot in force, swapped whole (`ArcSwap`), and the reload task that rebuilds it when
//! the store's generation changes. A failed rebuild keeps the previous snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use aegis_core::crypto::VaultKeys;
use aegis_core::ledger::{EntryContent, SystemEvent, Via};
use aegis_core::snapshot::Snapshot;
use aegis_core::timestamp::Timestamp;
use aegis_store::ledger_writer::LedgerWriter;
use aegis_store::vault::VaultStore;

use crate::snapshot_loader::build_snapshot;

/// The current snapshot and reload counters.
#[derive(Debug)]
pub struct SnapshotHolder {
    current: ArcSwap<Snapshot>,
    reloads_ok: AtomicU64,
    reloads_rejected: AtomicU64,
}

impl SnapshotHolder {
    /// Holds a first snapshot.
    pub fn new(first: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(first),
            reloads_ok: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
        }
    }

    /// The snapshot in force: one atomic load, no lock.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot; requests in flight finish on the one they loaded.
    pub fn swap(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Successful reloads since start.
    pub fn reloads_ok(&self) -> u64 {
        self.reloads_ok.load(Ordering::Relaxed)
    }

    /// Rejected reloads since start.
    pub fn reloads_rejected(&self) -> u64 {
        self.reloads_rejected.load(Ordering::Relaxed)
    }

    /// Polls the store's generation every `interval` and rebuilds on change until `stop` fires.
    /// A rebuild that fails is counted and dropped; the previous snapshot stays in force.
    ///
    /// # Cancel safety
    /// Stops between polls; a rebuild in progress is dropped without swapping.
    pub async fn watch(
        self: Arc<Self>,
        store: VaultStore,
        keys: Arc<VaultKeys>,
        interval: Duration,
        stop: CancellationToken,
        ledger: Option<ReloadLedger>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_generation = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let Ok(generation) = store.generation().await else {
                self.reloads_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let in_force = self.load();
            // The time also matters: a grace period ending drops a previous secret.
            let grace_ended = in_force
                .credentials()
                .iter()
                .filter_map(|c| c.previous_until)
                .any(|until| now() >= until && until > in_force.built_at());
            if (generation == in_force.generation() && !grace_ended)
                || failed_generation == Some(generation)
            {
                continue;
            }
            match build_snapshot(&store, &keys, now()).await {
                Ok(next) => {
                    failed_generation = None;
                    let credentials = next.credentials().len();
                    self.swap(next);
                    tracing::info!(generation, "snapshot reloaded");
                    if let Some(ledger) = &ledger {
                        let mut detail = serde_json::Map::new();
                        detail.insert("generation".into(), generation.into());
                        detail.insert("credentials".into(), credentials.into());
                        ledger.record(SystemEvent::SnapshotReloaded, detail).await;
                    }
                }
                Err(err) => {
                    failed_generation = Some(generation);
                    self.reloads_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(generation, error = %err, "snapshot rejected; the previous one stays in force");
                    if let Some(ledger) = &ledger {
                        let mut detail = serde_json::Map::new();
                        detail.insert("generation".into(), generation.into());
                        detail.insert("error".into(), err.code().into());
                        ledger.record(SystemEvent::SnapshotRejected, detail).await;
                    }
                }
            }
        }
    }
}

/// Where the reload task records `snapshot_reloaded` and `snapshot_rejected` (SPEC.md §15.1).
#[derive(Debug, Clone)]
pub struct ReloadLedger {
    /// The process's ledger writer.
    pub writer: LedgerWriter,
    /// The process's instance id.
    pub instance: String,
}

impl ReloadLedger {
    async fn record(&self, event: SystemEvent, detail: serde_json::Map<String, serde_json::Value>) {
        let entry = EntryContent::system(event, Via::System, &self.instance).with_detail(detail);
        if self.writer.record(entry).await.is_err() {
            tracing::warn!(
                event = event.as_str(),
                "could not record the reload in the ledger"
            );
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}
