//! Removing an archived prefix of a vault's ledger (SPEC.md §15.7), in one transaction: the
//! signed anchor checkpoint over the last archived entry is stored, the archived entries and
//! the checkpoints below the anchor are deleted, and the `ledger_archived` entry is appended.
//!
//! Selecting the prefix, writing and re-verifying the bundle, and signing the anchor happen in
//! the caller before this runs; here the prefix is only checked to be the one that was archived.

use sqlx::Row;

use aegis_core::ledger::{EntryContent, LedgerEntry};
use aegis_core::timestamp::Timestamp;

use crate::error::StoreError;
use crate::ledger;
use crate::vault::{Checkpoint, VaultStore};

/// The prefix of the chain that was written to an archive bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedPrefix {
    /// Id of the first archived entry (the first stored entry).
    pub first_id: u64,
    /// The signed checkpoint over the last archived entry; `ledger verify` starts from it.
    pub anchor: Checkpoint,
}

impl VaultStore {
    /// Deletes the archived prefix `first_id..=anchor.entry_id` and records that it was
    /// archived, all in one transaction under the ledger's write lock: stores `prefix.anchor`,
    /// deletes checkpoints below it and the archived entries, and appends `entry`.
    ///
    /// # Errors
    /// [`StoreError::LedgerChanged`] when the stored prefix is no longer the one archived (an
    /// entry is missing, or the last one has another hash); nothing is deleted then. Database
    /// failures.
    pub async fn remove_archived_prefix(
        &self,
        prefix: &ArchivedPrefix,
        entry: EntryContent,
    ) -> Result<LedgerEntry, StoreError> {
        let last_id = prefix.anchor.entry_id;
        let (first, last) = (to_i64(prefix.first_id)?, to_i64(last_id)?);
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("starting an archive"))?;
        ledger::lock_for_append(&mut tx).await?;
        let row = sqlx::query("SELECT count(*), min(id) FROM ledger WHERE id <= ?")
            .bind(last)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("checking the archived entries"))?;
        let (count, lowest): (i64, Option<i64>) = (row.get(0), row.get(1));
        let hash: Option<Vec<u8>> = sqlx::query("SELECT hash FROM ledger WHERE id = ?")
            .bind(last)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("checking the archived entries"))?
            .map(|row| row.get(0));
        if lowest != Some(first)
            || count != last - first + 1
            || hash.as_deref() != Some(prefix.anchor.hash.as_slice())
        {
            return Err(StoreError::LedgerChanged { id: last_id });
        }
        sqlx::query(
            "INSERT OR REPLACE INTO ledger_checkpoints (entry_id, hash, ts, signature) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(last)
        .bind(prefix.anchor.hash.as_slice())
        .bind(prefix.anchor.ts.as_millis())
        .bind(prefix.anchor.signature.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("storing the archive anchor"))?;
        sqlx::query("DELETE FROM ledger_checkpoints WHERE entry_id < ?")
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing archived checkpoints"))?;
        sqlx::query("DELETE FROM ledger WHERE id <= ?")
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing archived entries"))?;
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        let appended = ledger::append_in(&mut tx, &self.meta().id, entry, now).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("archiving the ledger"))?;
        Ok(appended)
    }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidRow {
        table: "ledger",
        row: value.to_string(),
        field: "id",
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aegis_core::crypto::KdfParams;
    use aegis_core::ledger::{SystemEvent, Via};
    use aegis_core::names::VaultName;

    use super::*;
    use crate::layout::DataDir;
    use crate::vault::VaultMeta;

    async fn vault_with(entries: usize) -> (tempfile::TempDir, VaultStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().join(".aegis"));
        let meta = VaultMeta {
            id: uuid::Uuid::from_bytes([9; 16]),
            name: VaultName::parse("default").expect("name"),
            salt: b"archive-salt-16b".to_vec(),
            kdf: KdfParams {
                memory_kib: KdfParams::MIN_MEMORY_KIB,
                iterations: 2,
                parallelism: 1,
            },
            key_check: vec![0; 32],
            sealed: false,
            created_at: Timestamp::from_millis(1),
            ledger_public_key: None,
            ledger_key_envelope: None,
        };
        let store = VaultStore::create(
            &data,
            &meta,
            Duration::from_secs(5),
            event(SystemEvent::VaultCreated),
        )
        .await
        .expect("create");
        for _ in 1..entries {
            store
                .append(event(SystemEvent::ConfigChanged))
                .await
                .expect("append");
        }
        (dir, store)
    }

    fn event(event: SystemEvent) -> EntryContent {
        EntryContent::system(event, Via::Cli, "archive-test")
    }

    fn checkpoint(entry: &LedgerEntry) -> Checkpoint {
        Checkpoint {
            entry_id: entry.id(),
            hash: *entry.hash(),
            ts: entry.ts(),
            signature: vec![1; 64],
        }
    }

    #[tokio::test]
    async fn the_prefix_goes_and_the_chain_goes_on_from_the_anchor() {
        let (_dir, store) = vault_with(6).await;
        let entries = store.ledger_entries(0, 100).await.expect("read");
        store
            .insert_checkpoint(&checkpoint(&entries[1]))
            .await
            .expect("checkpoint");
        store
            .insert_checkpoint(&checkpoint(&entries[5]))
            .await
            .expect("checkpoint");
        let prefix = ArchivedPrefix {
            first_id: 1,
            anchor: checkpoint(&entries[3]),
        };
        let archived = store
            .remove_archived_prefix(&prefix, event(SystemEvent::LedgerArchived))
            .await
            .expect("archive");
        assert_eq!(archived.id(), 7);
        let left = store.ledger_entries(0, 100).await.expect("read");
        let ids: Vec<u64> = left.iter().map(LedgerEntry::id).collect();
        assert_eq!(ids, [5, 6, 7]);
        assert_eq!(left[0].prev_hash(), entries[3].hash());
        let kept: Vec<u64> = store
            .checkpoints()
            .await
            .expect("checkpoints")
            .iter()
            .map(|c| c.entry_id)
            .collect();
        assert_eq!(kept, [4, 6], "the anchor is the lowest checkpoint left");
    }

    #[tokio::test]
    async fn a_prefix_that_changed_since_it_was_archived_is_left_alone() {
        let (_dir, store) = vault_with(4).await;
        let entries = store.ledger_entries(0, 100).await.expect("read");
        let mut anchor = checkpoint(&entries[2]);
        anchor.hash = [0; 32];
        let stale = ArchivedPrefix {
            first_id: 1,
            anchor,
        };
        let err = store
            .remove_archived_prefix(&stale, event(SystemEvent::LedgerArchived))
            .await
            .expect_err("hash differs");
        assert!(matches!(err, StoreError::LedgerChanged { id: 3 }), "{err}");
        let wrong_start = ArchivedPrefix {
            first_id: 2,
            anchor: checkpoint(&entries[2]),
        };
        let err = store
            .remove_archived_prefix(&wrong_start, event(SystemEvent::LedgerArchived))
            .await
            .expect_err("entry 1 is still there");
        assert_eq!(err.code(), "conflict");
        assert_eq!(
            store.ledger_entries(0, 100).await.expect("read").len(),
            4,
            "nothing deleted"
        );
        assert!(store.checkpoints().await.expect("checkpoints").is_empty());
    }
}
