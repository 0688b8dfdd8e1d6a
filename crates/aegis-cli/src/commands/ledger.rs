//! `aegis ledger verify` and `aegis ledger show`: reading the vault's hash-chained audit ledger.
//! Neither needs the master key.

use aegis_core::ledger::{
    ChainAnchor, LedgerEntry, checkpoint_message, verify_chain_from, verify_checkpoint,
};
use aegis_store::vault::Checkpoint;
use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// Entries read per page while verifying.
const PAGE: u32 = 10_000;

/// Runs `aegis ledger verify`: walks the whole chain, recomputing every hash, and checks that
/// it ends at the recorded head.
pub(crate) async fn verify(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let vault_id = store.meta().id;
    let public_key: Option<[u8; 32]> = store
        .meta()
        .ledger_public_key
        .as_ref()
        .and_then(|k| k.as_slice().try_into().ok());
    let checkpoints: std::collections::BTreeMap<u64, Checkpoint> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| (c.entry_id, c))
        .collect();
    let mut anchor = ChainAnchor::genesis(&vault_id);
    let mut count = 0u64;
    let mut checked = 0usize;
    loop {
        let page = store.ledger_entries(anchor.id, PAGE).await?;
        let Some(last) = page.last() else { break };
        let verified = verify_chain_from(page.iter(), anchor).map_err(|e| broken(e.to_string()))?;
        for entry in &page {
            let Some(checkpoint) = checkpoints.get(&entry.id()) else {
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
            if !signed || &checkpoint.hash != entry.hash() {
                return Err(broken(format!(
                    "ledger chain broken at entry {id}: checkpoint {id} signature invalid",
                    id = entry.id()
                )));
            }
            checked += 1;
        }
        count += verified.count;
        anchor = ChainAnchor {
            id: last.id(),
            hash: verified.head,
        };
    }
    if let Some((&id, _)) = checkpoints.range(anchor.id + 1..).next() {
        return Err(broken(format!(
            "ledger chain broken at entry {}: missing entries {}–{id}",
            anchor.id + 1,
            anchor.id + 1
        )));
    }
    if let Some(head) = store.ledger_head().await?
        && (head.last_id != anchor.id || head.last_hash != anchor.hash)
    {
        let first_missing = anchor.id + 1;
        let reason = if head.last_id > anchor.id {
            format!("missing entries {first_missing}–{}", head.last_id)
        } else {
            "hash mismatch with the recorded head".to_owned()
        };
        return Err(broken(format!(
            "ledger chain broken at entry {first_missing}: {reason}"
        )));
    }
    let head = hex::encode(anchor.hash);
    if ctx.json {
        output::json(
            &json!({ "ok": true, "entries": count, "head": head, "checkpoints": checked }),
        );
    } else {
        output::line(format!("ok {count} entries, head {head}"));
    }
    Ok(())
}

/// Runs `aegis ledger show [--limit N]`: the newest entries, oldest first.
pub(crate) async fn show(ctx: &Context, limit: u32) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let entries = store.ledger_tail(limit).await?;
    if ctx.json {
        output::json(&serde_json::Value::Array(
            entries.iter().map(LedgerEntry::to_json).collect(),
        ));
        return Ok(());
    }
    let rows = entries
        .iter()
        .map(|e| {
            let c = e.content();
            let what = c
                .event()
                .map(|ev| ev.as_str().to_owned())
                .or_else(|| c.outcome().map(|o| o.as_str().to_owned()))
                .unwrap_or_default();
            vec![
                e.id().to_string(),
                e.ts().to_rfc3339(),
                c.via().as_str().to_owned(),
                what,
                c.credential().unwrap_or("-").to_owned(),
                c.service().unwrap_or("-").to_owned(),
                c.denial_code().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    output::table(
        &[
            "id",
            "time",
            "via",
            "event",
            "credential",
            "service",
            "code",
        ],
        rows,
    );
    Ok(())
}

fn broken(message: String) -> CliError {
    CliError::failure("ledger_broken", message)
        .with_hint("restore the vault database from a backup and compare")
}
