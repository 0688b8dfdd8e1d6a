//! The ledger writer of a long-running process (SPEC.md §15.4): one task fed by a bounded
//! channel that commits entries in groups (up to `batch_max` entries, or after `batch_delay`).
//! A request reserves its slot before it is forwarded, so its entry can always be queued, even
//! when the request is abandoned half-way; a full queue is backpressure, never a dropped entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use aegis_core::ledger::{EntryContent, LedgerSigningKey, checkpoint_message};
use aegis_core::timestamp::Timestamp;

use crate::vault::{Checkpoint, VaultStore};

/// The sending side: cheap to clone, one per process.
#[derive(Debug, Clone)]
pub struct LedgerWriter {
    sender: mpsc::Sender<EntryContent>,
    enqueue_timeout: Duration,
    stats: Arc<WriterStats>,
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Entries committed.
    pub committed: AtomicU64,
    /// Commits that failed and were retried.
    pub retries: AtomicU64,
    /// Times a request waited for a free slot.
    pub backpressure: AtomicU64,
}

/// The ledger could not take the entry in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ledger could not accept the entry in time")]
pub struct LedgerUnavailable;

/// A reserved place in the queue. Whatever entry it holds when it is committed or dropped is
/// sent, so abandoning a request still records it.
#[derive(Debug)]
pub struct LedgerSlot {
    permit: Option<mpsc::OwnedPermit<EntryContent>>,
    entry: Option<EntryContent>,
}

impl LedgerSlot {
    /// Replaces the entry that will be sent.
    pub fn set(&mut self, entry: EntryContent) {
        self.entry = Some(entry);
    }

    /// Sends the entry now.
    pub fn commit(mut self, entry: EntryContent) {
        self.entry = Some(entry);
        self.send();
    }

    fn send(&mut self) {
        if let (Some(permit), Some(entry)) = (self.permit.take(), self.entry.take()) {
            permit.send(entry);
        }
    }
}

impl Drop for LedgerSlot {
    fn drop(&mut self) {
        self.send();
    }
}

impl LedgerWriter {
    /// Reserves a slot, waiting at most the enqueue timeout; `fallback` is recorded if the slot
    /// is dropped before anything else is set.
    ///
    /// # Errors
    /// [`LedgerUnavailable`] when no slot freed in time or the writer has stopped.
    pub async fn reserve(&self, fallback: EntryContent) -> Result<LedgerSlot, LedgerUnavailable> {
        let permit = match self.sender.clone().try_reserve_owned() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(LedgerUnavailable),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.backpressure.fetch_add(1, Ordering::Relaxed);
                tokio::time::timeout(self.enqueue_timeout, self.sender.clone().reserve_owned())
                    .await
                    .map_err(|_| LedgerUnavailable)?
                    .map_err(|_| LedgerUnavailable)?
            }
        };
        Ok(LedgerSlot {
            permit: Some(permit),
            entry: Some(fallback),
        })
    }

    /// Queues one entry (reserve and commit).
    ///
    /// # Errors
    /// [`LedgerUnavailable`] as for [`LedgerWriter::reserve`].
    pub async fn record(&self, entry: EntryContent) -> Result<(), LedgerUnavailable> {
        let slot = self.reserve(entry).await?;
        drop(slot);
        Ok(())
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Entries waiting at most.
    pub capacity: usize,
    /// Entries per commit at most.
    pub batch_max: usize,
    /// Longest an entry waits for its batch.
    pub batch_delay: Duration,
    /// Longest a request waits for a free slot.
    pub enqueue_timeout: Duration,
}

/// Starts the writer task. Once `close` is cancelled no new slot can be reserved; the task
/// commits every queued and still-reserved entry, then stops.
pub fn spawn(
    store: VaultStore,
    settings: WriterSettings,
    signer: Option<CheckpointSigner>,
    close: CancellationToken,
) -> (LedgerWriter, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(settings.capacity.max(1));
    let stats = Arc::new(WriterStats::default());
    let writer = LedgerWriter {
        sender,
        enqueue_timeout: settings.enqueue_timeout,
        stats: stats.clone(),
    };
    let task = tokio::spawn(run(store, settings, receiver, stats, signer, close));
    (writer, task)
}

/// Signs checkpoints over the chain head every `interval` committed entries and when the
/// writer stops.
#[derive(Debug, Clone)]
pub struct CheckpointSigner {
    /// The vault's ledger signing key (unwrapped with the master key).
    pub key: Arc<LedgerSigningKey>,
    /// Entries between checkpoints.
    pub interval: u64,
}

impl CheckpointSigner {
    /// Signs the current head, if there is one.
    async fn sign_head(&self, store: &VaultStore) -> Result<(), crate::StoreError> {
        let Some(head) = store.ledger_head().await? else {
            return Ok(());
        };
        let ts = Timestamp::from_system_time(std::time::SystemTime::now());
        let message = checkpoint_message(&store.meta().id, head.last_id, &head.last_hash, ts);
        store
            .insert_checkpoint(&Checkpoint {
                entry_id: head.last_id,
                hash: head.last_hash,
                ts,
                signature: self.key.sign(&message).to_vec(),
            })
            .await
    }
}

async fn run(
    store: VaultStore,
    settings: WriterSettings,
    mut receiver: mpsc::Receiver<EntryContent>,
    stats: Arc<WriterStats>,
    signer: Option<CheckpointSigner>,
    close: CancellationToken,
) {
    let mut closing = false;
    let mut since_checkpoint = 0u64;
    loop {
        let first = if closing {
            receiver.recv().await
        } else {
            tokio::select! {
                entry = receiver.recv() => entry,
                () = close.cancelled() => {
                    closing = true;
                    receiver.close();
                    continue;
                }
            }
        };
        let Some(first) = first else {
            if let Some(signer) = &signer
                && since_checkpoint > 0
                && let Err(err) = signer.sign_head(&store).await
            {
                tracing::warn!(error = %err, "could not write the final ledger checkpoint");
            }
            return;
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + settings.batch_delay;
        while batch.len() < settings.batch_max.max(1) {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(entry)) => batch.push(entry),
                Ok(None) | Err(_) => break,
            }
        }
        since_checkpoint += batch.len() as u64;
        commit(&store, batch, &stats).await;
        if let Some(signer) = &signer
            && since_checkpoint >= signer.interval.max(1)
        {
            match signer.sign_head(&store).await {
                Ok(()) => since_checkpoint = 0,
                Err(err) => tracing::warn!(error = %err, "could not write a ledger checkpoint"),
            }
        }
    }
}

/// Commits a batch, retrying with backoff until it succeeds: entries are never dropped, and
/// the bounded queue pushes back on requests meanwhile.
async fn commit(store: &VaultStore, batch: Vec<EntryContent>, stats: &WriterStats) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match store.append_batch(batch.clone()).await {
            Ok(count) => {
                stats.committed.fetch_add(count, Ordering::Relaxed);
                return;
            }
            Err(err) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, entries = batch.len(), "ledger commit failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
