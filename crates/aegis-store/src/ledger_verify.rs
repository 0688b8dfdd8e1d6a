//! The walk behind `aegis ledger verify` (SPEC.md §15.2): the stored chain read page by page
//! from an anchor, every hash recomputed over the columns exactly as stored, and every signed
//! checkpoint in range checked against the vault's public key. It needs no master key.
//!
//! Reading and hashing overlap: one task reads the next page while the caller hashes the
//! current one, so the walk costs about the larger of the two rather than their sum.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use aegis_core::ledger::{
    ChainAnchor, EntryColumns, EntryKind, Outcome, SystemEvent, Via, checkpoint_message,
    verify_chain_from, verify_checkpoint,
};
use aegis_core::timestamp::Timestamp;

use crate::error::StoreError;
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
        // Three stages on their own tasks: SQLite builds the next page while the previous one
        // is parsed and the one before is hashed.
        let (packed_pages, mut next_packed) = mpsc::channel::<Result<String, StoreError>>(2);
        let (pages, mut next_page) = mpsc::channel::<Result<Vec<EntryColumns>, StoreError>>(2);
        let fetcher = {
            let store = self.clone();
            tokio::spawn(async move {
                let mut after = from.id;
                loop {
                    let (last, packed) = match store.packed_page(after, PAGE).await {
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
    /// The page comes back from SQLite as one JSON array of rows (each row an array of its
    /// columns, hashes in hex): one value to copy out of the database instead of 23 per row,
    /// which is most of the cost of reading a long chain.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row that cannot be decoded.
    pub async fn ledger_columns(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EntryColumns>, StoreError> {
        parse_page(&self.packed_page(after, limit).await?.1)
    }

    /// The page of [`VaultStore::ledger_columns`] as SQLite packed it, with the id of its last
    /// row (`None` when the page is empty).
    async fn packed_page(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<(Option<u64>, String), StoreError> {
        let (last, packed): (Option<i64>, String) = sqlx::query_as(PAGE_AS_JSON)
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
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

/// Decodes a page packed by [`PAGE_AS_JSON`].
fn parse_page(packed: &str) -> Result<Vec<EntryColumns>, StoreError> {
    let rows: Vec<PackedRow> = serde_json::from_str(packed).map_err(|_| invalid_row(0, "row"))?;
    rows.into_iter().map(PackedRow::into_columns).collect()
}

/// The last id of one page of the chain (NULL when empty), and the page as a JSON array of
/// rows in id order (`[]` when empty).
const PAGE_AS_JSON: &str = "SELECT max(id), json_group_array(json_array(id, ts, kind, outcome, event, \
     request_id, via, instance, actor, agent, credential, service, method, target_host, path, \
     status_code, denial_code, latency_ms, bytes_in, bytes_out, detail, hex(prev_hash), \
     hex(hash)) ORDER BY id) FROM (SELECT * FROM ledger WHERE id > ? ORDER BY id LIMIT ?)";

/// A row of [`PAGE_AS_JSON`], column by column.
#[derive(serde::Deserialize)]
struct PackedRow(
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
);

impl PackedRow {
    fn into_columns(self) -> Result<EntryColumns, StoreError> {
        let id = u64::try_from(self.0).map_err(|_| invalid_row(0, "id"))?;
        let invalid = |field| invalid_row(id, field);
        let unsigned = |value: Option<i64>, field| {
            value
                .map(|v| u64::try_from(v).map_err(|_| invalid(field)))
                .transpose()
        };
        let hash = |text: &str, field| decode_hash(text).ok_or_else(|| invalid(field));
        Ok(EntryColumns {
            id,
            ts: Timestamp::from_millis(self.1),
            kind: EntryKind::parse(&self.2).ok_or_else(|| invalid("kind"))?,
            outcome: self
                .3
                .map(|v| Outcome::parse(&v).ok_or_else(|| invalid("outcome")))
                .transpose()?,
            event: self
                .4
                .map(|v| SystemEvent::parse(&v).ok_or_else(|| invalid("event")))
                .transpose()?,
            request_id: self.5,
            via: Via::parse(&self.6).ok_or_else(|| invalid("via"))?,
            instance: self.7,
            actor: self.8,
            agent: self.9,
            credential: self.10,
            service: self.11,
            method: self.12,
            target_host: self.13,
            path: self.14,
            status_code: self
                .15
                .map(|v| u16::try_from(v).map_err(|_| invalid("status_code")))
                .transpose()?,
            denial_code: self.16,
            latency_ms: unsigned(self.17, "latency_ms")?,
            bytes_in: unsigned(self.18, "bytes_in")?,
            bytes_out: unsigned(self.19, "bytes_out")?,
            detail_jcs: self.20,
            prev_hash: hash(&self.21, "prev_hash")?,
            hash: hash(&self.22, "hash")?,
        })
    }
}

/// Decodes 64 hex digits (as SQLite's `hex()` writes them, upper case; lower case accepted).
fn decode_hash(text: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn invalid_row(id: u64, field: &'static str) -> StoreError {
    StoreError::InvalidRow {
        table: "ledger",
        row: id.to_string(),
        field,
    }
}

/// The id of a page's last entry (pages are never empty here).
fn verified_last(page: &[EntryColumns]) -> u64 {
    page.last().map_or(0, |e| e.id)
}
