//! `aegis ledger export --bundle` and `aegis ledger verify-bundle` (SPEC.md §15.6): writing a
//! signed bundle of the vault's entries, and checking one offline with no vault at all.
//!
//! Building, signing and checking bundles is `aegis_core::ledger::bundle`; this module reads
//! the entries, unwraps the signing key, writes and reads files, and prints.

use std::path::Path;

use aegis_core::ledger::bundle::{
    Bundle, BundleError, BundleFilters, BundleHead, BundleOrigin, BundleProblem, BundleReport,
    verify_bundle as check_bundle,
};
use aegis_core::ledger::{LedgerSigningKey, SystemEvent, parse_public_key};
use aegis_core::timestamp::Timestamp;
use aegis_store::ledger::LedgerFilter;
use aegis_store::vault::VaultStore;
use serde_json::json;

use super::{each_entry, filter_of};
use crate::audit;
use crate::cli::LedgerFilterArgs;
use crate::context::{Context, ledger_signing_key};
use crate::error::{CliError, EXIT_USAGE};
use crate::output;

/// Runs `aegis ledger export --bundle -o FILE [filters]`: the matching entries (all of them
/// without filters, as a contiguous piece of the chain) in a signed bundle, written atomically
/// with mode 0600, then a `ledger_exported` entry.
pub(crate) async fn export_bundle(
    ctx: &Context,
    args: &LedgerFilterArgs,
    to: &Path,
) -> Result<(), CliError> {
    let filter = filter_of(args)?;
    let store = ctx.vault_store().await?;
    let key = signing_key(ctx, &store).await?;
    let head = store.ledger_head().await?.ok_or_else(nothing_to_export)?;
    let mut entries = Vec::new();
    each_entry(&store, &filter, |entry| {
        // Entries appended while we read belong to the next export.
        if entry.id() <= head.last_id {
            entries.push(entry.clone());
        }
    })
    .await?;
    let filters = bundle_filters(&filter);
    let origin = BundleOrigin {
        vault_id: store.meta().id,
        vault_name: store.meta().name.to_string(),
        contiguous: filters.is_empty(),
        filters,
        ledger_head: BundleHead {
            id: head.last_id,
            hash: head.last_hash,
        },
        created_at: now(),
    };
    let bundle = Bundle::build(&entries, origin, &key).map_err(|e| match e {
        BundleError::Empty => nothing_to_export(),
        other => cannot_sign(&other),
    })?;
    let path = ctx.cwd.join(to);
    aegis_store::secure_fs::write_atomic(&path, bundle.to_text().as_bytes())
        .map_err(|e| CliError::io("write", &path, &e))?;
    let m = bundle.manifest();
    let mut detail = serde_json::Map::new();
    detail.insert("format".into(), "bundle".into());
    detail.insert("file".into(), path.display().to_string().into());
    detail.insert("first_id".into(), m.first_id.into());
    detail.insert("last_id".into(), m.last_id.into());
    detail.insert("count".into(), m.count.into());
    detail.insert("content_digest".into(), bundle.content_digest_text().into());
    store
        .append(audit::cli_event(SystemEvent::LedgerExported).with_detail(detail))
        .await?;
    if ctx.json {
        output::json(&json!({
            "file": path.display().to_string(),
            "entries": m.count,
            "first_id": m.first_id,
            "last_id": m.last_id,
            "contiguous": m.contiguous,
            "content_digest": bundle.content_digest_text(),
            "key_id": m.key_id,
        }));
    } else {
        output::line(format!(
            "wrote {}: {} entries {}–{}, content digest {}",
            path.display(),
            m.count,
            m.first_id,
            m.last_id,
            bundle.content_digest_text()
        ));
    }
    Ok(())
}

/// Runs `aegis ledger verify-bundle FILE [--public-key KEY_OR_FILE]`. Reads nothing but the
/// two files: no configuration, vault or master key.
pub(crate) fn verify_bundle(
    file: &Path,
    public_key: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let trusted = public_key.map(trusted_key).transpose()?;
    let value = read_bundle(file)?;
    if trusted.is_none() {
        output::warn(
            "no --public-key given: the bundle was checked against the key it carries, which \
             shows it is intact but not who made it (pass the key from aegis ledger pubkey)",
        );
    }
    let report = check_bundle(&value, trusted.as_ref());
    match (&report.manifest, report.is_ok()) {
        (Some(m), true) => {
            if json {
                output::json(&json!({
                    "ok": true,
                    "entries": m.count,
                    "first_id": m.first_id,
                    "last_id": m.last_id,
                    "contiguous": m.contiguous,
                    "vault_id": m.vault_id.hyphenated().to_string(),
                    "vault_name": m.vault_name,
                    "key_id": m.key_id,
                    "origin_checked": trusted.is_some(),
                }));
            } else {
                output::line(format!(
                    "OK {} entries {}–{}",
                    m.count, m.first_id, m.last_id
                ));
            }
            Ok(())
        }
        _ => Err(rejected(file, &report)),
    }
}

/// Reads and parses a bundle file written by [`Bundle::to_text`].
///
/// # Errors
/// Exit 2 (`io` or `bundle_invalid`) when the file cannot be read or is not a JSON object.
pub(super) fn read_bundle(file: &Path) -> Result<serde_json::Value, CliError> {
    let bytes = std::fs::read(file).map_err(|e| {
        let mut err = CliError::io("read", file, &e);
        err.exit = EXIT_USAGE;
        err
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::new(
            "bundle_invalid",
            EXIT_USAGE,
            format!("{} is not a ledger bundle: {e}", file.display()),
        )
    })?;
    if !value.is_object() {
        return Err(CliError::new(
            "bundle_invalid",
            EXIT_USAGE,
            format!(
                "{} is not a ledger bundle: expected a JSON object",
                file.display()
            ),
        ));
    }
    Ok(value)
}

/// The failure for a bundle with problems: all of them on the one `error:` line.
pub(super) fn rejected(file: &Path, report: &BundleReport) -> CliError {
    let shown: Vec<String> = report
        .problems
        .iter()
        .take(MAX_PROBLEMS_SHOWN)
        .map(ToString::to_string)
        .collect();
    let mut list = shown.join("; ");
    if report.problems.len() > MAX_PROBLEMS_SHOWN {
        list.push_str(&format!(
            "; and {} more",
            report.problems.len() - MAX_PROBLEMS_SHOWN
        ));
    }
    let key_only = report.problems.iter().all(|p| {
        matches!(
            p,
            BundleProblem::PublicKeyDiffers | BundleProblem::SignatureInvalid
        )
    }) && report.problems.contains(&BundleProblem::PublicKeyDiffers);
    let hint = if key_only {
        "the bundle was signed by another key; check that --public-key is the key of the vault that made it"
    } else {
        "the bundle was changed after it was signed or is damaged; do not rely on its entries"
    };
    CliError::failure(
        "bundle_invalid",
        format!("bundle {} failed verification: {list}", file.display()),
    )
    .with_hint(hint)
}

/// Unlocks the vault (master key required) and unwraps its ledger signing key.
pub(super) async fn signing_key(
    ctx: &Context,
    store: &VaultStore,
) -> Result<LedgerSigningKey, CliError> {
    let keys = ctx.unlock(store).await?;
    ledger_signing_key(store, &keys)?.ok_or_else(|| {
        CliError::failure(
            "not_found",
            "this vault has no ledger signing key, so its entries cannot be signed",
        )
    })
}

/// The failure for entries that do not verify and so are not signed.
pub(super) fn cannot_sign(err: &BundleError) -> CliError {
    CliError::failure(err.code(), format!("refusing to sign the entries: {err}"))
        .with_hint("run aegis ledger verify, and restore the vault database from a backup")
}

/// The current time, read once per command.
pub(super) fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// `--public-key`: a key as `aegis ledger pubkey` prints it, or a file holding one (that
/// command's output, its `--json` output, or the bare key).
fn trusted_key(text: &str) -> Result<[u8; 32], CliError> {
    if let Some(key) = parse_public_key(text) {
        return Ok(key);
    }
    let expected =
        "expected ed25519:<base64url> as aegis ledger pubkey prints it, or a file holding it";
    if text.trim().starts_with("ed25519:") {
        return Err(CliError::usage(format!(
            "--public-key: not an ed25519 public key; {expected}"
        )));
    }
    let path = Path::new(text);
    let content = std::fs::read_to_string(path).map_err(|e| {
        let reason = CliError::io("read", path, &e).message;
        CliError::usage(format!("--public-key: {reason}; {expected}"))
    })?;
    find_key(&content).ok_or_else(|| {
        CliError::usage(format!(
            "--public-key: {} holds no ed25519 public key; {expected}",
            path.display()
        ))
    })
}

/// The first `ed25519:<base64url>` key in `text`.
fn find_key(text: &str) -> Option<[u8; 32]> {
    text.match_indices("ed25519:").find_map(|(start, _)| {
        let rest = &text[start..];
        let end = rest
            .char_indices()
            .skip("ed25519:".len())
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        parse_public_key(&rest[..end])
    })
}

fn bundle_filters(filter: &LedgerFilter) -> BundleFilters {
    BundleFilters {
        service: filter.service.clone(),
        agent: filter.agent.clone(),
        since: filter.since,
        until: filter.until,
        blocked: filter.blocked,
        system: filter.system,
    }
}

fn nothing_to_export() -> CliError {
    CliError::failure(
        "not_found",
        "no ledger entries match; no bundle was written",
    )
}

/// Problems listed on the error line before the rest are only counted.
const MAX_PROBLEMS_SHOWN: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_in_pubkey_output_in_either_form() {
        let key = aegis_core::ledger::format_public_key(&[7; 32]);
        for text in [
            key.clone(),
            format!("{key} (key id 0011223344556677)\n"),
            format!("{{\"public_key\":\"{key}\",\"key_id\":\"00\"}}\n"),
        ] {
            assert_eq!(find_key(&text), Some([7; 32]), "{text}");
        }
        assert_eq!(find_key("ed25519:short and ed25519:"), None);
    }
}
