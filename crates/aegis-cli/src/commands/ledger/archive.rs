//! `aegis ledger archive` (SPEC.md §15.7), and where `ledger verify` starts once a prefix of
//! the chain has been archived.
//!
//! Archiving writes the prefix of entries older than `--before` to a contiguous signed bundle,
//! reads the file back and verifies it, and only then, in one store transaction, stores a
//! signed anchor checkpoint over the last archived entry, deletes the archived entries and
//! appends `ledger_archived`. The remaining chain then starts at the anchor.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;

use aegis_core::ledger::bundle::{
    Bundle, BundleError, BundleFilters, BundleHead, BundleOrigin, verify_bundle,
};
use aegis_core::ledger::{
    ChainAnchor, LedgerEntry, LedgerSigningKey, SystemEvent, checkpoint_message, verify_chain_from,
    verify_checkpoint,
};
use aegis_core::timestamp::parse_time_filter;
use aegis_store::ledger::LedgerFilter;
use aegis_store::ledger_archive::ArchivedPrefix;
use aegis_store::vault::{Checkpoint, VaultStore};
use serde_json::json;

use super::bundle::{cannot_sign, now, read_bundle, rejected, signing_key};
use super::{PAGE, broken};
use crate::audit;
use crate::context::Context;
use crate::error::{CliError, EXIT_USAGE};
use crate::output;

/// Runs `aegis ledger archive --before TIME -o FILE [--confirm]`.
pub(crate) async fn archive(
    ctx: &Context,
    before: &str,
    to: &Path,
    confirm: bool,
) -> Result<(), CliError> {
    let before =
        parse_time_filter(before, now()).map_err(|e| CliError::usage(format!("--before: {e}")))?;
    if !confirm && !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "refusing to archive without --confirm: the archived entries are deleted from the \
             vault, and standard input is not a terminal to ask on",
        )
        .with_hint("re-run with --confirm"));
    }
    let path = ctx.cwd.join(to);
    if path.exists() {
        return Err(CliError::failure(
            "conflict",
            format!(
                "{} already exists; ledger archive never replaces a file",
                path.display()
            ),
        )
        .with_hint("choose another file with -o"));
    }
    let store = ctx.vault_store().await?;
    let key = signing_key(ctx, &store).await?;
    let vault_id = store.meta().id;
    let public_key = key.public_key();
    let checkpoints = checkpoints_by_entry(&store).await?;
    let start = chain_start(&store, &checkpoints, Some(public_key)).await?;
    let prefix = read_prefix(&store, start, before).await?;
    let (Some(first), Some(last)) = (prefix.first(), prefix.last()) else {
        return Err(CliError::failure(
            "not_found",
            format!(
                "no ledger entries before {}; nothing to archive",
                before.to_rfc3339()
            ),
        ));
    };
    let (first_id, last_id, last_hash) = (first.id(), last.id(), *last.hash());
    check_prefix(&store, &prefix, start, &checkpoints, &public_key)?;
    if !confirm {
        ask(
            &format!(
                "archive and delete {} ledger entries {first_id}–{last_id} of vault '{}'? type the \
             vault name to confirm: ",
                prefix.len(),
                store.meta().name
            ),
            store.meta().name.as_str(),
        )
        .await?;
    }

    let head = store.ledger_head().await?.map_or(
        BundleHead {
            id: last_id,
            hash: last_hash,
        },
        |h| BundleHead {
            id: h.last_id,
            hash: h.last_hash,
        },
    );
    let origin = BundleOrigin {
        vault_id,
        vault_name: store.meta().name.to_string(),
        contiguous: true,
        filters: BundleFilters::default(),
        ledger_head: head,
        created_at: now(),
    };
    let digest = write_verified(&path, &prefix, origin, &key)?;

    let ts = now();
    let anchor = Checkpoint {
        entry_id: last_id,
        hash: last_hash,
        ts,
        signature: key
            .sign(&checkpoint_message(&vault_id, last_id, &last_hash, ts))
            .to_vec(),
    };
    let mut detail = serde_json::Map::new();
    detail.insert("first_id".into(), first_id.into());
    detail.insert("last_id".into(), last_id.into());
    detail.insert("count".into(), (prefix.len() as u64).into());
    detail.insert("before".into(), before.to_rfc3339().into());
    detail.insert("content_digest".into(), digest.clone().into());
    detail.insert("file".into(), path.display().to_string().into());
    store
        .remove_archived_prefix(
            &ArchivedPrefix { first_id, anchor },
            audit::cli_event(SystemEvent::LedgerArchived).with_detail(detail),
        )
        .await?;
    if ctx.json {
        output::json(&json!({
            "file": path.display().to_string(),
            "entries": prefix.len(),
            "first_id": first_id,
            "last_id": last_id,
            "content_digest": digest,
            "anchor": { "entry_id": last_id, "hash": hex::encode(last_hash) },
        }));
    } else {
        output::line(format!(
            "archived {} entries {first_id}–{last_id} to {}, content digest {digest}",
            prefix.len(),
            path.display()
        ));
    }
    Ok(())
}

/// Writes `prefix` as a signed bundle to `path` (0600, atomically), reads the file back and
/// verifies it under the vault's key; returns its content digest.
fn write_verified(
    path: &Path,
    prefix: &[LedgerEntry],
    origin: BundleOrigin,
    key: &LedgerSigningKey,
) -> Result<String, CliError> {
    let bundle = Bundle::build(prefix, origin, key).map_err(|e| match e {
        BundleError::Empty => CliError::internal(),
        other => cannot_sign(&other),
    })?;
    aegis_store::secure_fs::write_atomic(path, bundle.to_text().as_bytes())
        .map_err(|e| CliError::io("write", path, &e))?;
    let report = verify_bundle(&read_bundle(path)?, Some(&key.public_key()));
    if !report.is_ok() || report.manifest.as_ref() != Some(bundle.manifest()) {
        return Err(CliError::failure(
            "bundle_invalid",
            format!(
                "the archive did not verify after writing, so nothing was deleted: {}",
                rejected(path, &report).message
            ),
        ));
    }
    Ok(bundle.content_digest_text())
}

/// Where the stored chain starts: the vault's genesis, or, after an archive, the signed anchor
/// checkpoint over the entry just before the first stored one. An anchor counts only when it
/// is the lowest checkpoint, its signature verifies and a `ledger_archived` entry in the chain
/// names it; otherwise the walk starts at genesis and reports the missing entries.
///
/// # Errors
/// `ledger_broken` when the anchor's signature does not verify; database failures.
pub(crate) async fn chain_start(
    store: &VaultStore,
    checkpoints: &BTreeMap<u64, Checkpoint>,
    public_key: Option<[u8; 32]>,
) -> Result<ChainAnchor, CliError> {
    let vault_id = store.meta().id;
    let genesis = ChainAnchor::genesis(&vault_id);
    let Some(first) = store.ledger_entries(0, 1).await?.into_iter().next() else {
        return Ok(genesis);
    };
    let Some((&id, anchor)) = checkpoints.iter().next() else {
        return Ok(genesis);
    };
    if first.id() <= 1 || id != first.id() - 1 || !names_anchor(store, id).await? {
        return Ok(genesis);
    }
    let message = checkpoint_message(&vault_id, anchor.entry_id, &anchor.hash, anchor.ts);
    if !public_key.is_some_and(|key| verify_checkpoint(&key, &message, &anchor.signature)) {
        return Err(broken(format!(
            "ledger chain broken at entry {id}: checkpoint {id} signature invalid"
        )));
    }
    Ok(ChainAnchor {
        id,
        hash: anchor.hash,
    })
}

/// Every checkpoint, keyed by the entry it signs.
pub(crate) async fn checkpoints_by_entry(
    store: &VaultStore,
) -> Result<BTreeMap<u64, Checkpoint>, CliError> {
    Ok(store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| (c.entry_id, c))
        .collect())
}

/// Whether a `ledger_archived` entry in the stored chain records an archive ending at `id`.
async fn names_anchor(store: &VaultStore, id: u64) -> Result<bool, CliError> {
    let filter = LedgerFilter {
        system: true,
        ..LedgerFilter::default()
    };
    let mut after = 0;
    loop {
        let page = store.ledger_query(&filter, after, PAGE, false).await?;
        let Some(last) = page.last() else {
            return Ok(false);
        };
        after = last.id();
        if page.iter().any(|e| {
            e.content().event() == Some(SystemEvent::LedgerArchived)
                && e.content().detail().get("last_id").and_then(|v| v.as_u64()) == Some(id)
        }) {
            return Ok(true);
        }
    }
}

/// The stored entries from `start` on whose time is before `before`.
async fn read_prefix(
    store: &VaultStore,
    start: ChainAnchor,
    before: aegis_core::timestamp::Timestamp,
) -> Result<Vec<LedgerEntry>, CliError> {
    let mut prefix = Vec::new();
    let mut after = start.id;
    loop {
        let page = store.ledger_entries(after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(prefix);
        };
        after = last.id();
        for entry in page {
            if entry.ts() >= before {
                return Ok(prefix);
            }
            prefix.push(entry);
        }
    }
}

/// The prefix must verify before it is archived and deleted: it runs on from `start`, and
/// every checkpoint over one of its entries is signed and matches. Deleting a tampered prefix
/// would destroy the evidence.
fn check_prefix(
    store: &VaultStore,
    prefix: &[LedgerEntry],
    start: ChainAnchor,
    checkpoints: &BTreeMap<u64, Checkpoint>,
    public_key: &[u8; 32],
) -> Result<(), CliError> {
    let vault_id = &store.meta().id;
    verify_chain_from(prefix.iter(), start).map_err(|e| refuse(e.to_string()))?;
    for entry in prefix {
        let Some(checkpoint) = checkpoints.get(&entry.id()) else {
            continue;
        };
        let message = checkpoint_message(
            vault_id,
            checkpoint.entry_id,
            &checkpoint.hash,
            checkpoint.ts,
        );
        if !verify_checkpoint(public_key, &message, &checkpoint.signature)
            || &checkpoint.hash != entry.hash()
        {
            let id = entry.id();
            return Err(refuse(format!(
                "ledger chain broken at entry {id}: checkpoint {id} signature invalid"
            )));
        }
    }
    Ok(())
}

/// Asks on the terminal for `expected` to be typed.
async fn ask(question: &str, expected: &str) -> Result<(), CliError> {
    output::prompt(question);
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|_| CliError::internal())?
    .unwrap_or_default();
    if answer.trim() == expected {
        Ok(())
    } else {
        Err(CliError::new(
            "usage",
            EXIT_USAGE,
            "archive not confirmed; nothing was changed",
        ))
    }
}

fn refuse(reason: String) -> CliError {
    broken(format!("refusing to archive: {reason}"))
}
