//! The snapshot in force, swapped whole (`ArcSwap`), and the reload task that rebuilds it when
//! the store's generation changes, when the policy files change, or on demand (SIGHUP). A
//! failed rebuild, or a policy directory with any invalid file, keeps the previous snapshot.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use aegis_core::crypto::VaultKeys;
use aegis_core::ledger::{EntryContent, SystemEvent, Via};
use aegis_core::policy::PolicySet;
use aegis_core::snapshot::Snapshot;
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::ActiveWebhook;
use aegis_store::ledger_writer::LedgerWriter;
use aegis_store::vault::VaultStore;

use crate::policy_dir::read_policy_dir;
use crate::snapshot_loader::build_snapshot;

/// The policy files the reload task watches.
#[derive(Debug, Default)]
pub struct PolicyWatch {
    /// The policies directory; `None` when policies are not in use.
    pub dir: Option<PathBuf>,
    /// The `(file, text)` sources of the policy set in force.
    pub in_force: Vec<(String, String)>,
    /// Fired (by SIGHUP) to re-read everything now, changed or not.
    pub hup: Arc<tokio::sync::Notify>,
}

/// The current snapshot and reload counters.
#[derive(Debug)]
pub struct SnapshotHolder {
    current: ArcSwap<Snapshot>,
    reloads_ok: AtomicU64,
    reloads_rejected: AtomicU64,
    /// The config file's webhooks, put in front of the stored ones in every snapshot.
    config_webhooks: Vec<ActiveWebhook>,
}

impl SnapshotHolder {
    /// Holds a first snapshot.
    pub fn new(first: Snapshot) -> Self {
        Self::with_config_webhooks(first, Vec::new())
    }

    /// Holds a first snapshot; this and every reloaded snapshot get the config file's webhooks
    /// in front of the stored ones (the effective list of SPEC.md §18.4).
    pub fn with_config_webhooks(first: Snapshot, config_webhooks: Vec<ActiveWebhook>) -> Self {
        Self {
            current: ArcSwap::from_pointee(first.with_config_webhooks(&config_webhooks)),
            reloads_ok: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
            config_webhooks,
        }
    }

    /// The snapshot in force: one atomic load, no lock.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot (with the config file's webhooks in front of its stored ones);
    /// requests in flight finish on the one they loaded.
    pub fn swap(&self, next: Snapshot) {
        let next = next.with_config_webhooks(&self.config_webhooks);
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

    /// Polls the store's generation and the policy files every `interval`, and rebuilds on a
    /// change or when `policies.hup` fires, until `stop` fires. A rebuild that fails, or policy
    /// files with any error, is counted, logged and dropped; the previous snapshot stays.
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
        mut policies: PolicyWatch,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_generation = None;
        // The sources (or the read error) last rejected, so a broken file is reported once.
        let mut rejected_policies: Option<Result<Vec<(String, String)>, String>> = None;
        let hup = policies.hup.clone();
        loop {
            let forced = tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => false,
                () = hup.notified() => true,
            };
            let Ok(generation) = store.generation().await else {
                self.reloads_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let in_force = self.load();
            let mut policy_set = in_force.policies().clone();
            let mut policies_changed = false;
            if let Some(dir) = &policies.dir {
                let read = read_policy_dir(dir).map_err(|e| e.to_string());
                let fresh = match &read {
                    Ok(sources) => *sources != policies.in_force,
                    Err(_) => true,
                };
                if fresh && (forced || rejected_policies.as_ref() != Some(&read)) {
                    match read.clone().and_then(|sources| {
                        PolicySet::compile(&sources)
                            .map(|set| (sources, set))
                            .map_err(|errors| errors.to_string())
                    }) {
                        Ok((sources, set)) => {
                            for warning in set.warnings() {
                                tracing::warn!(%warning, "policy file warning");
                            }
                            rejected_policies = None;
                            policies.in_force = sources;
                            policy_set = Arc::new(set);
                            policies_changed = true;
                        }
                        Err(error) => {
                            rejected_policies = Some(read);
                            self.reloads_rejected.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(%error, "policy files rejected; the previous policies stay in force");
                            if let Some(ledger) = &ledger {
                                let mut detail = serde_json::Map::new();
                                detail.insert("generation".into(), generation.into());
                                detail.insert("error".into(), "policy_invalid".into());
                                ledger.record(SystemEvent::SnapshotRejected, detail).await;
                            }
                        }
                    }
                }
            }
            // The time also matters: a grace period ending drops a previous secret.
            let grace_ended = in_force
                .credentials()
                .iter()
                .filter_map(|c| c.previous_until)
                .any(|until| now() >= until && until > in_force.built_at());
            let store_changed = (generation != in_force.generation() || grace_ended)
                && failed_generation != Some(generation);
            if !(store_changed || policies_changed || forced) {
                continue;
            }
            match build_snapshot(&store, &keys, now()).await {
                Ok(next) => {
                    failed_generation = None;
                    let credentials = next.credentials().len();
                    let policy_files = policy_set.file_count();
                    self.swap(next.with_policies(policy_set));
                    tracing::info!(generation, policy_files, "snapshot reloaded");
                    if let Some(ledger) = &ledger {
                        let mut detail = serde_json::Map::new();
                        detail.insert("generation".into(), generation.into());
                        detail.insert("credentials".into(), credentials.into());
                        detail.insert("policy_files".into(), policy_files.into());
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
