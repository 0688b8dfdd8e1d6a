//! The walk behind `aegis ledger verify` (SPEC.md §15.2): the stored chain read page by page
//! from an anchor, every hash recomputed over the columns exactly as stored, and every signed
//! checkpoint in range checked against the vault's public key. It needs no master key.
//!
//! Reading and hashing overlap: one task reads the next page while the caller hashes the
//! current one, so the walk costs about the larger of the two rather than their sum.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use aegis_core::ledger::{
    ChainAnchor, EntryColumns, checkpoint_message, verify_chain_from, verify_checkpoint,
};

use crate::error::StoreError;
use crate::ledger::{invalid_row, packed_select, parse_page};
use crate::vault::{Checkpoint, VaultStore};

/// Entries read per page.
const PAGE: u32 = 1_024;

/// What a walk that found nothing wrong covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// Entries verified.
    pub entries: u64,
    /// The last verified entry (the starting anchor when there were none).
    pub head: ChainAnchor,
    /// Checkpoints whose signature was checked.
    pub checkpoints: usize,
}

/// Why a walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain is broken; the text is SPEC.md's `ledger chain broken at entry …` message.
    #[error("{0}")]
    Broken(String),
}

impl VaultStore {
    /// Walks the stored chain from `from` (genesis, or an archive anchor) to its end,
    /// recomputing every hash and checking every checkpoint in `checkpoints` that falls on a
    /// walked entry (signed under `public_key`, over that entry's hash).
    ///
    /// # Errors
    /// [`WalkError::Broken`] at the first break; [`WalkError::Store`] for read failures or a
    /// row that cannot be decoded.
    pub async fn walk_ledger(
        &self,
        from: ChainAnchor,
        checkpoints: &BTreeMap<u64, Checkpoint>,
        public_key: Option<[u8; 32]>,
    ) -> Result<Walked, WalkError> {
        self.walk_ledger_until(from, u64::MAX, checkpoints, public_key)
            .await
    }

    /// [`VaultStore::walk_ledger`] up to entry `until` at most: a verification reads the head
    /// first and walks to it, so entries a running gate appends meanwhile are not mistaken for
    /// a head that ran ahead of the chain.
    ///
    /// # Errors
    /// As [`VaultStore::walk_ledger`].
    pub async fn walk_ledger_until(
        &self,
        from: ChainAnchor,
        until: u64,
        checkpoints: &BTreeMap<u64, Checkpoint>,
        public_key: Option<[u8; 32]>,
    ) -> Result<Walked, WalkError> {
        // Three stages on their own tasks: SQLite builds the next page while the previous one
        // is parsed and the one before is hashed.
        let (packed_pages, mut next_packed) = mpsc::channel::<Result<String, StoreError>>(2);
        let (pages, mut next_page) = mpsc::channel::<Result<Vec<EntryColumns>, StoreError>>(2);
        let fetcher = {
            let store = self.clone();
            tokio::spawn(async move {
                let mut after = from.id;
                loop {
                    let (last, packed) = match store.packed_page(after, until, PAGE).await {
                        Ok((last, text)) => (last, Ok(text)),
                        Err(err) => (None, Err(err)),
                    };
                    let done = last.is_none();
                    if packed_pages.send(packed).await.is_err() || done {
                        return;
                    }
                    after = last.unwrap_or(after);
                }
            })
        };
        let parser = tokio::spawn(async move {
            while let Some(packed) = next_packed.recv().await {
                let page = packed.and_then(|text| parse_page(&text));
                if pages.send(page).await.is_err() {
                    return;
                }
            }
        });
        let vault_id = self.meta().id;
        let mut anchor = from;
        let mut entries = 0u64;
        let mut checked = 0usize;
        while let Some(page) = next_page.recv().await {
            let page = page?;
            if page.is_empty() {
                break;
            }
            let verified = verify_chain_from(page.iter(), anchor)
                .map_err(|e| WalkError::Broken(e.to_string()))?;
            // The walk checked that the page's ids run on from the anchor without a gap.
            let first = anchor.id + 1;
            for (id, checkpoint) in checkpoints.range(first..=verified_last(&page)) {
                let index = usize::try_from(id - first).unwrap_or(usize::MAX);
                let Some(entry) = page.get(index) else {
                    continue;
                };
                let message = checkpoint_message(
                    &vault_id,
                    checkpoint.entry_id,
                    &checkpoint.hash,
                    checkpoint.ts,
                );
                let signed = public_key
                    .is_some_and(|key| verify_checkpoint(&key, &message, &checkpoint.signature));
                if !signed || checkpoint.hash != entry.hash {
                    return Err(WalkError::Broken(format!(
                        "ledger chain broken at entry {id}: checkpoint {id} signature invalid"
                    )));
                }
                checked += 1;
            }
            entries += verified.count;
            anchor = ChainAnchor {
                id: verified_last(&page),
                hash: verified.head,
            };
        }
        fetcher.abort();
        parser.abort();
        Ok(Walked {
            entries,
            head: anchor,
            checkpoints: checked,
        })
    }

    /// Up to `limit` stored entries with ids above `after`, in chain order, as columns.
    ///
    /// The page comes back from SQLite packed into one value ([`packed_select`]).
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row that cannot be decoded.
    pub async fn ledger_columns(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EntryColumns>, StoreError> {
        parse_page(&self.packed_page(after, u64::MAX, limit).await?.1)
    }

    /// The page of [`VaultStore::ledger_columns`] (ids up to `until`) as SQLite packed it, with
    /// the id of its last row (`None` when the page is empty).
    async fn packed_page(
        &self,
        after: u64,
        until: u64,
        limit: u32,
    ) -> Result<(Option<u64>, String), StoreError> {
        let (last, packed): (Option<i64>, String) = sqlx::query_as(&packed_select(
            "SELECT * FROM ledger WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(until).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::db("reading the ledger"))?;
        let last = last
            .map(|id| u64::try_from(id).map_err(|_| invalid_row(0, "id")))
            .transpose()?;
        Ok((last, packed))
    }
}

/// The id of a page's last entry (pages are never empty here).
fn verified_last(page: &[EntryColumns]) -> u64 {
    page.last().map_or(0, |e| e.id)
}
