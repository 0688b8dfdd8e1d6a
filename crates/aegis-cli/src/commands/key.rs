//! `aegis key where`: which master-key source is in use and which were looked at (never the key).

use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::master_key;
use crate::output;

/// Runs `aegis key where`.
pub(crate) fn run_where(ctx: &Context) -> Result<(), CliError> {
    output::warn("aegis key where is kept for compatibility; aegis doctor checks the key too");
    let lookup = master_key::locate(ctx);
    if ctx.json {
        let looked_at: Vec<_> = lookup
            .candidates
            .iter()
            .map(|(source, present)| json!({ "source": source.id(), "where": source.label(), "present": present }))
            .collect();
        output::json(&json!({
            "vault": ctx.vault.as_str(),
            "in_use": lookup.used.as_ref().map(|s| json!({ "source": s.id(), "where": s.label() })),
            "looked_at": looked_at,
        }));
    } else {
        match &lookup.used {
            Some(source) => output::line(format!(
                "master key for vault '{}': {}",
                ctx.vault,
                source.label()
            )),
            None => output::line(format!(
                "no master key source is set for vault '{}'",
                ctx.vault
            )),
        }
        for (i, (source, present)) in lookup.candidates.iter().enumerate() {
            let state = if *present { "present" } else { "not set" };
            output::line(format!("  {}. {} — {state}", i + 1, source.label()));
        }
    }
    if lookup.used.is_none() {
        return Err(CliError::new(
            "master_key_missing",
            crate::error::EXIT_USAGE,
            "AEGIS_MASTER_KEY is not set",
        )
        .with_hint(
            "export AEGIS_MASTER_KEY=<key from aegis init> or run aegis init --write-secrets",
        ));
    }
    Ok(())
}
