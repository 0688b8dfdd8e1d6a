//! The ledger writer of a long-running process (SPEC.md §15.4): one task fed by a bounded
//! channel that commits entries in groups (up to `batch_max` entries, or after `batch_delay`).
//! A request reserves its slot before it is forwarded, so its entry can always be queued, even
//! when the request is abandoned half-way; a full queue is backpressure, never a dropped entry.
//! In strict durability a caller can wait until its entry is committed
//! ([`LedgerWriter::record_durable`]): the writer answers every waiter of a batch once the
//! batch's transaction has committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use aegis_core::ledger::{EntryContent, LedgerSigningKey, checkpoint_message};
use aegis_core::timestamp::Timestamp;

use crate::vault::{Checkpoint, VaultStore};

/// One queued entry, with the waiter to answer once it is committed (strict durability).
#[derive(Debug)]
struct Queued {
    entry: EntryContent,
    committed: Option<oneshot::Sender<()>>,
}

/// The sending side: cheap to clone, one per process.
#[derive(Debug, Clone)]
pub struct LedgerWriter {
    sender: mpsc::Sender<Queued>,
    /// Wakes the writer for an entry someone waits on (strict durability).
    urgent: Arc<Notify>,
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
    /// Total time requests spent waiting for a free slot, in microseconds.
    pub backpressure_wait_micros: AtomicU64,
    /// How long each batch's transaction took, committed or not.
    pub commit_times: CommitTimes,
}

/// Upper bounds, in seconds, of [`CommitTimes`]' buckets (SPEC.md §17.2's duration buckets).
pub const COMMIT_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A histogram of batch commit times, kept in atomics so the store needs no metrics library;
/// the metrics endpoint reads it at scrape time.
#[derive(Debug, Default)]
pub struct CommitTimes {
    /// Commits per bucket (not cumulative); the last one counts those above every bound.
    counts: [AtomicU64; COMMIT_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl CommitTimes {
    /// Counts one commit that took `took`.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = COMMIT_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(COMMIT_BUCKETS.len());
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Sum in seconds, count, and the cumulative count at or below each bound (the last bound
    /// is `+Inf`), as a Prometheus histogram is written.
    pub fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (index, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let bound = COMMIT_BUCKETS.get(index).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        #[allow(clippy::cast_precision_loss)] // nanoseconds summed: precision loss is harmless
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (sum, cumulative, buckets)
    }
}

/// The ledger could not take the entry in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ledger could not accept the entry in time")]
pub struct LedgerUnavailable;

/// Why a strict-mode entry was not confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurableError {
    /// No slot freed in time, or the writer has stopped: the entry was not queued.
    #[error("the ledger could not accept the entry in time")]
    NotQueued,
    /// The entry is queued (and will be written) but its commit was not confirmed in time.
    #[error("the ledger did not confirm the entry in time")]
    NotConfirmed,
}

/// A reserved place in the queue. Whatever entry it holds when it is committed or dropped is
/// sent, so abandoning a request still records it.
#[derive(Debug)]
pub struct LedgerSlot {
    permit: Option<mpsc::OwnedPermit<Queued>>,
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
            permit.send(Queued {
                entry,
                committed: None,
            });
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
        let mut slot = self.reserve_slot().await?;
        slot.set(fallback);
        Ok(slot)
    }

    /// Reserves a slot with no entry yet: the caller must [`LedgerSlot::set`] or
    /// [`LedgerSlot::commit`] one, or nothing is recorded when the slot is dropped.
    ///
    /// # Errors
    /// [`LedgerUnavailable`] as for [`LedgerWriter::reserve`].
    pub async fn reserve_slot(&self) -> Result<LedgerSlot, LedgerUnavailable> {
        let permit = self.reserve_permit().await?;
        Ok(LedgerSlot {
            permit: Some(permit),
            entry: None,
        })
    }

    async fn reserve_permit(&self) -> Result<mpsc::OwnedPermit<Queued>, LedgerUnavailable> {
        let permit = match self.sender.clone().try_reserve_owned() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(LedgerUnavailable),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.backpressure.fetch_add(1, Ordering::Relaxed);
                let waited_from = std::time::Instant::now();
                let reserved =
                    tokio::time::timeout(self.enqueue_timeout, self.sender.clone().reserve_owned())
                        .await;
                let waited = u64::try_from(waited_from.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.stats
                    .backpressure_wait_micros
                    .fetch_add(waited, Ordering::Relaxed);
                reserved
                    .map_err(|_| LedgerUnavailable)?
                    .map_err(|_| LedgerUnavailable)?
            }
        };
        Ok(permit)
    }

    /// Queues one entry and waits until the transaction holding it has committed (strict
    /// durability, SPEC.md §15.4): at most the enqueue timeout for a slot, then at most the
    /// enqueue timeout again for the commit.
    ///
    /// # Errors
    /// [`DurableError::NotQueued`] when no slot freed in time or the writer stopped;
    /// [`DurableError::NotConfirmed`] when the commit was not confirmed in time (the entry
    /// stays queued and is still written).
    pub async fn record_durable(&self, entry: EntryContent) -> Result<(), DurableError> {
        let permit = self
            .reserve_permit()
            .await
            .map_err(|_| DurableError::NotQueued)?;
        let (tx, rx) = oneshot::channel();
        permit.send(Queued {
            entry,
            committed: Some(tx),
        });
        self.urgent.notify_one();
        match tokio::time::timeout(self.enqueue_timeout, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(DurableError::NotConfirmed),
        }
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

    /// Entries queued or reserved and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
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
    let urgent = Arc::new(Notify::new());
    let writer = LedgerWriter {
        sender,
        urgent: urgent.clone(),
        enqueue_timeout: settings.enqueue_timeout,
        stats: stats.clone(),
    };
    let task = tokio::spawn(run(store, settings, receiver, urgent, stats, signer, close));
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
    /// Longest an entry stays without a checkpoint (`ledger.checkpoint_max_age`).
    pub max_age: Duration,
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
    mut receiver: mpsc::Receiver<Queued>,
    urgent: Arc<Notify>,
    stats: Arc<WriterStats>,
    signer: Option<CheckpointSigner>,
    close: CancellationToken,
) {
    let mut closing = false;
    let mut unsigned = Unsigned::default();
    let batch_max = settings.batch_max.max(1);
    loop {
        let first = if closing {
            receiver.recv().await
        } else {
            // Entries not yet under a checkpoint get one once the oldest of them reaches
            // `max_age`, even if no more arrive (SPEC.md §15.3).
            let checkpoint_due = async {
                match (&signer, unsigned.since) {
                    (Some(signer), Some(since)) => {
                        tokio::time::sleep_until(since + signer.max_age).await;
                    }
                    _ => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                entry = receiver.recv() => entry,
                () = close.cancelled() => {
                    closing = true;
                    receiver.close();
                    continue;
                }
                () = checkpoint_due => {
                    if let Some(signer) = &signer
                        && !unsigned.checkpoint(signer, &store, "a ledger checkpoint").await
                    {
                        // Try again after another max_age rather than at once.
                        unsigned.since = Some(tokio::time::Instant::now());
                    }
                    continue;
                }
            }
        };
        let Some(first) = first else {
            if let Some(signer) = &signer
                && unsigned.count > 0
            {
                unsigned
                    .checkpoint(signer, &store, "the final ledger checkpoint")
                    .await;
            }
            return;
        };
        let mut batch = Vec::with_capacity(batch_max.min(1024));
        let mut waiters = Vec::new();
        take(first, &mut batch, &mut waiters);
        // Whatever is already queued joins at once; then wait for more only while no one is
        // waiting on this batch (a strict-mode request never waits out the batch delay).
        drain(&mut receiver, &mut batch, &mut waiters, batch_max);
        if batch.len() < batch_max && waiters.is_empty() && !closing {
            // Sleep out the batch delay rather than waking for every entry that arrives (at
            // thousands of requests a second those wake-ups cost more than the commit); a
            // strict-mode waiter or the shutdown cuts the sleep short.
            let deadline = tokio::time::Instant::now() + settings.batch_delay;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = urgent.notified() => {}
                () = close.cancelled() => {}
            }
            drain(&mut receiver, &mut batch, &mut waiters, batch_max);
        }
        unsigned.count += batch.len() as u64;
        commit(&store, batch, &stats).await;
        unsigned.since.get_or_insert_with(tokio::time::Instant::now);
        for waiter in waiters {
            // A waiter that gave up has dropped its receiver; nothing to tell it.
            let _ = waiter.send(());
        }
        if let Some(signer) = &signer
            && unsigned.count >= signer.interval.max(1)
        {
            unsigned
                .checkpoint(signer, &store, "a ledger checkpoint")
                .await;
        }
    }
}

/// Committed entries that no checkpoint covers yet.
#[derive(Debug, Default)]
struct Unsigned {
    /// How many.
    count: u64,
    /// When the oldest of them was committed.
    since: Option<tokio::time::Instant>,
}

impl Unsigned {
    /// Signs the head; on success nothing is left unsigned. Returns whether it signed.
    async fn checkpoint(
        &mut self,
        signer: &CheckpointSigner,
        store: &VaultStore,
        what: &str,
    ) -> bool {
        match signer.sign_head(store).await {
            Ok(()) => {
                *self = Self::default();
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not write {what}");
                false
            }
        }
    }
}

/// Adds one queued entry to the batch, and its waiter, if any, to the waiters.
fn take(queued: Queued, batch: &mut Vec<EntryContent>, waiters: &mut Vec<oneshot::Sender<()>>) {
    batch.push(queued.entry);
    if let Some(waiter) = queued.committed {
        waiters.push(waiter);
    }
}

/// Takes whatever is queued already, until the batch holds `batch_max` entries.
fn drain(
    receiver: &mut mpsc::Receiver<Queued>,
    batch: &mut Vec<EntryContent>,
    waiters: &mut Vec<oneshot::Sender<()>>,
    batch_max: usize,
) {
    while batch.len() < batch_max {
        match receiver.try_recv() {
            Ok(queued) => take(queued, batch, waiters),
            Err(_) => break,
        }
    }
}

/// Commits a batch, retrying with backoff until it succeeds: entries are never dropped, and
/// the bounded queue pushes back on requests meanwhile.
async fn commit(store: &VaultStore, batch: Vec<EntryContent>, stats: &WriterStats) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let started = std::time::Instant::now();
        let appended = store.append_batch(&batch).await;
        stats.commit_times.observe(started.elapsed());
        match appended {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_times_are_cumulative_per_bound_with_an_infinite_last_bucket() {
        let times = CommitTimes::default();
        times.observe(Duration::from_millis(2));
        times.observe(Duration::from_millis(7));
        times.observe(Duration::from_millis(7));
        times.observe(Duration::from_secs(120));
        let (sum, count, buckets) = times.read();
        assert_eq!(count, 4);
        assert!((sum - 120.016).abs() < 1e-9, "{sum}");
        assert_eq!(buckets.len(), COMMIT_BUCKETS.len() + 1);
        assert_eq!(buckets[0], (0.005, 1));
        assert_eq!(buckets[1], (0.01, 3));
        assert_eq!(buckets[COMMIT_BUCKETS.len() - 1], (60.0, 3));
        assert_eq!(buckets[COMMIT_BUCKETS.len()], (f64::INFINITY, 4));
    }
}
