//! `aegis ledger verify | show | export | pubkey`: reading the vault's hash-chained audit
//! ledger. None of them needs the master key. Signed bundles (`export --bundle`,
//! `verify-bundle`) live in `ledger/bundle.rs`, `archive` in `ledger/archive.rs`.

mod archive;
mod bundle;

pub(crate) use archive::archive;
pub(crate) use bundle::{export_bundle, verify_bundle};

use aegis_core::ledger::{FIELD_NAMES, LedgerEntry, SystemEvent, format_public_key, key_id};
use aegis_core::timestamp::{Timestamp, parse_time_filter};
use aegis_store::ledger::LedgerFilter;
use aegis_store::ledger_verify::WalkError;
use aegis_store::vault::Checkpoint;
use serde_json::json;

use crate::cli::LedgerFilterArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// Entries read per page by `stats`, `export` and the archive.
const PAGE: u32 = 10_000;

/// Runs `aegis ledger verify`: walks the whole chain (or its last `last` entries, from the
/// stored `prev_hash` of the first of them), recomputing every hash, and checks that it ends
/// at the recorded head.
pub(crate) async fn verify(ctx: &Context, last: Option<u64>) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
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
    // The head is read once, after the checkpoints and before the walk: a running gate may
    // append while we walk, and the chain is verified up to the head as it was when we began.
    let recorded_head = store.ledger_head().await?;
    let mut start = archive::chain_start(&store, &checkpoints, public_key).await?;
    if let Some(last) = last
        && let Some(head) = &recorded_head
        && head.last_id.saturating_sub(last) > start.id
    {
        let from = head.last_id - last;
        let first = store.ledger_columns(from, 1).await?;
        let Some(first) = first.first() else {
            return Err(broken(format!(
                "ledger chain broken at entry {}: missing entries {}–{}",
                from + 1,
                from + 1,
                head.last_id
            )));
        };
        // Trusted as stored: only the entries from here on are checked.
        start = aegis_core::ledger::ChainAnchor {
            id: from,
            hash: first.prev_hash,
        };
    }
    // Walk to the head; if rows lie beyond it and the head has moved on meanwhile (a running
    // gate appended), walk on to the new head. Rows beyond a head that did not move were not
    // written by an append: they are reported.
    let (mut anchor, mut count, mut checked) = (start, 0, 0);
    let mut head = recorded_head;
    let beyond_head = loop {
        let until = head.as_ref().map_or(u64::MAX, |head| head.last_id);
        let walked = store
            .walk_ledger_until(anchor, until, &checkpoints, public_key)
            .await
            .map_err(|e| match e {
                WalkError::Broken(message) => broken(message),
                WalkError::Store(err) => err.into(),
            })?;
        anchor = walked.head;
        count += walked.entries;
        checked += walked.checkpoints;
        let Some(next) = store
            .ledger_columns(anchor.id, 1)
            .await?
            .first()
            .map(|e| e.id)
        else {
            break None;
        };
        let moved = store.ledger_head().await?;
        match (&head, &moved) {
            (Some(before), Some(now)) if now.last_id > before.last_id => head = moved,
            _ => break Some(next),
        }
    };
    if let Some(id) = beyond_head {
        return Err(broken(format!(
            "ledger chain broken at entry {id}: hash mismatch with the recorded head"
        )));
    }
    if let Some((&id, _)) = checkpoints.range(anchor.id + 1..).next() {
        return Err(broken(format!(
            "ledger chain broken at entry {}: missing entries {}–{id}",
            anchor.id + 1,
            anchor.id + 1
        )));
    }
    if let Some(head) = &head
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

/// Runs `aegis ledger show`: the newest matching entries, oldest first.
pub(crate) async fn show(
    ctx: &Context,
    args: &LedgerFilterArgs,
    limit: u32,
) -> Result<(), CliError> {
    let filter = filter_of(args)?;
    let store = ctx.vault_store().await?;
    let entries = store.ledger_query(&filter, 0, limit, true).await?;
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

/// Runs `aegis ledger export -f csv|json|jsonl [-o FILE]`.
pub(crate) async fn export(
    ctx: &Context,
    args: &LedgerFilterArgs,
    format: &str,
    to: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let filter = filter_of(args)?;
    let store = ctx.vault_store().await?;
    let mut text = String::new();
    let mut json_rows = Vec::new();
    if format == "csv" {
        text.push_str(&csv_line(FIELD_NAMES.iter().map(|f| Some((*f).to_owned()))));
    }
    let (mut count, mut first_id, mut last_id) = (0u64, None, None);
    each_entry(&store, &filter, |entry| {
        count += 1;
        first_id.get_or_insert(entry.id());
        last_id = Some(entry.id());
        let value = entry.to_json();
        match format {
            "csv" => text.push_str(&csv_line(FIELD_NAMES.iter().map(|f| match &value[*f] {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }))),
            "jsonl" => {
                text.push_str(&value.to_string());
                text.push('\n');
            }
            _ => json_rows.push(value),
        }
    })
    .await?;
    if format == "json" {
        text = serde_json::Value::Array(json_rows).to_string();
        text.push('\n');
    }
    let file = match to {
        None => {
            output::raw(&text);
            "-".to_owned()
        }
        Some(path) => {
            let path = ctx.cwd.join(path);
            aegis_store::secure_fs::write_atomic(&path, text.as_bytes())
                .map_err(|e| CliError::io("write", &path, &e))?;
            if !ctx.json {
                output::line(format!("wrote {}", path.display()));
            }
            path.display().to_string()
        }
    };
    // The export itself is recorded (§15.5): what was exported, never its content.
    let mut detail = serde_json::Map::new();
    detail.insert("format".into(), format.into());
    detail.insert("file".into(), file.into());
    detail.insert("count".into(), count.into());
    detail.insert("first_id".into(), first_id.into());
    detail.insert("last_id".into(), last_id.into());
    store
        .append(crate::audit::cli_event(SystemEvent::LedgerExported).with_detail(detail))
        .await?;
    Ok(())
}

/// Runs `aegis ledger stats`: request totals by outcome and denial code, requests per service,
/// and p50/p95 latency of allowed requests.
pub(crate) async fn stats(ctx: &Context, args: &LedgerFilterArgs) -> Result<(), CliError> {
    let filter = filter_of(args)?;
    let store = ctx.vault_store().await?;
    let mut outcomes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut codes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut services: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut latencies = Vec::new();
    let mut total = 0u64;
    // Strict durability writes a request as a `request` entry and a `request_end` with its
    // result (§15.4): the pair counts once, with the end's outcome, code and latency.
    let mut open_starts: std::collections::HashSet<String> = std::collections::HashSet::new();
    each_entry(&store, &filter, |entry| {
        let c = entry.content();
        let Some(outcome) = c.outcome() else { return };
        match c.kind() {
            aegis_core::ledger::EntryKind::Request => {}
            aegis_core::ledger::EntryKind::RequestEnd => {
                let started = c.request_id().is_some_and(|id| open_starts.remove(id));
                if !started {
                    return;
                }
                if outcome != aegis_core::ledger::Outcome::Allowed {
                    if let Some(count) = outcomes.get_mut("allowed") {
                        *count = count.saturating_sub(1);
                    }
                    *outcomes.entry(outcome.as_str().to_owned()).or_default() += 1;
                    if let Some(code) = c.denial_code() {
                        *codes.entry(code.to_owned()).or_default() += 1;
                    }
                } else if let Some(ms) = c.latency_ms() {
                    latencies.push(ms);
                }
                return;
            }
            aegis_core::ledger::EntryKind::System => return,
        }
        if outcome == aegis_core::ledger::Outcome::Allowed
            && c.status_code().is_none()
            && let Some(id) = c.request_id()
        {
            open_starts.insert(id.to_owned());
        }
        total += 1;
        *outcomes.entry(outcome.as_str().to_owned()).or_default() += 1;
        if let Some(code) = c.denial_code() {
            *codes.entry(code.to_owned()).or_default() += 1;
        }
        if let Some(service) = c.service() {
            *services.entry(service.to_owned()).or_default() += 1;
        }
        if outcome == aegis_core::ledger::Outcome::Allowed
            && let Some(ms) = c.latency_ms()
        {
            latencies.push(ms);
        }
    })
    .await?;
    latencies.sort_unstable();
    let percentile = |p: usize| -> Option<u64> {
        if latencies.is_empty() {
            return None;
        }
        let rank = (latencies.len() * p).div_ceil(100).max(1) - 1;
        latencies.get(rank).copied()
    };
    let (p50, p95) = (percentile(50), percentile(95));
    if ctx.json {
        output::json(&json!({
            "requests": total,
            "outcomes": outcomes,
            "denial_codes": codes,
            "services": services,
            "latency_ms": { "p50": p50, "p95": p95 },
        }));
        return Ok(());
    }
    output::line(format!("requests: {total}"));
    for (outcome, count) in &outcomes {
        output::line(format!("  {outcome}: {count}"));
    }
    if !codes.is_empty() {
        output::line("by code:");
        for (code, count) in &codes {
            output::line(format!("  {code}: {count}"));
        }
    }
    if !services.is_empty() {
        output::line("by service:");
        for (service, count) in &services {
            output::line(format!("  {service}: {count}"));
        }
    }
    let shown = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
    output::line(format!(
        "latency (allowed): p50 {}, p95 {}",
        shown(p50),
        shown(p95)
    ));
    Ok(())
}

/// Runs `aegis ledger pubkey`.
pub(crate) async fn pubkey(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.vault_store().await?;
    let key: [u8; 32] = store
        .meta()
        .ledger_public_key
        .as_ref()
        .and_then(|k| k.as_slice().try_into().ok())
        .ok_or_else(|| CliError::failure("not_found", "this vault has no ledger signing key"))?;
    if ctx.json {
        output::json(&json!({ "public_key": format_public_key(&key), "key_id": key_id(&key) }));
    } else {
        output::line(format!(
            "{} (key id {})",
            format_public_key(&key),
            key_id(&key)
        ));
    }
    Ok(())
}

/// Calls `visit` on every entry matching `filter`, in chain order, a page at a time.
pub(crate) async fn each_entry(
    store: &aegis_store::vault::VaultStore,
    filter: &LedgerFilter,
    mut visit: impl FnMut(&LedgerEntry),
) -> Result<(), CliError> {
    let mut after = 0;
    loop {
        let page = store.ledger_query(filter, after, PAGE, false).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id();
        page.iter().for_each(&mut visit);
    }
}

fn filter_of(args: &LedgerFilterArgs) -> Result<LedgerFilter, CliError> {
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let time = |flag: &str, text: &Option<String>| {
        text.as_deref().map(|t| time_flag(flag, t, now)).transpose()
    };
    Ok(LedgerFilter {
        service: args.service.clone(),
        agent: args.agent.clone(),
        blocked: args.blocked,
        system: args.system,
        since: time("since", &args.since)?,
        until: time("until", &args.until)?,
    })
}

/// A `--since`/`--until` value (RFC 3339, `YYYY-MM-DD` or an age counted back from `now`),
/// as every ledger filter reads it.
///
/// # Errors
/// A usage error naming the flag.
pub(crate) fn time_flag(flag: &str, text: &str, now: Timestamp) -> Result<Timestamp, CliError> {
    parse_time_filter(text, now).map_err(|e| CliError::usage(format!("--{flag}: {e}")))
}

/// One RFC 4180 line. A value that a spreadsheet would run as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or carriage return) is prefixed with `'`.
fn csv_line(values: impl Iterator<Item = Option<String>>) -> String {
    let cells: Vec<String> = values
        .map(|value| {
            let Some(mut value) = value else {
                return String::new();
            };
            if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                value.insert(0, '\'');
            }
            if value.contains([',', '"', '\n', '\r']) || value.starts_with('\'') {
                format!("\"{}\"", value.replace('"', "\"\""))
            } else {
                value
            }
        })
        .collect();
    format!("{}\r\n", cells.join(","))
}

fn broken(message: String) -> CliError {
    CliError::failure("ledger_broken", message)
        .with_hint("restore the vault database from a backup and compare")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strict RFC 4180 reader for one line, enough to check the writer.
    fn parse(line: &str) -> Vec<String> {
        let line = line.strip_suffix("\r\n").expect("CRLF line end");
        let mut cells = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            let mut cell = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            cell.push('"');
                        } else {
                            break;
                        }
                    } else {
                        cell.push(c);
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    cell.push(c);
                    chars.next();
                }
            }
            cells.push(cell);
            match chars.next() {
                Some(',') => continue,
                None => return cells,
                Some(other) => panic!("unexpected {other:?} after a cell"),
            }
        }
    }

    #[test]
    fn csv_cells_round_trip_and_formulas_are_defused() {
        let values = [
            "/a,b/c",
            "say \"hi\"",
            "line\nbreak",
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "plain",
            "",
        ];
        let line = csv_line(values.iter().map(|v| Some((*v).to_owned())));
        let cells = parse(&line);
        assert_eq!(cells.len(), values.len());
        for (cell, value) in cells.iter().zip(values) {
            if value.starts_with(['=', '+', '-', '@']) {
                assert_eq!(cell, &format!("'{value}"), "formula defused");
            } else {
                assert_eq!(cell, value);
            }
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell}");
        }
    }

    #[test]
    fn null_cells_are_empty() {
        assert_eq!(csv_line([None, Some("x".to_owned())].into_iter()), ",x\r\n");
    }
}
