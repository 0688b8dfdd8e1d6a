//! Ledger entries for what CLI commands change: one constructor per event, so every command
//! records the same shape (via `cli`, this process as the instance, `bootstrap` as the actor
//! until users exist). Entries never carry a secret.

use aegis_core::credential::Credential;
use aegis_core::ledger::{EntryContent, SystemEvent, Via};

/// An entry for `event` written by this CLI process.
pub(crate) fn cli_event(event: SystemEvent) -> EntryContent {
    EntryContent::system(event, Via::Cli, format!("cli-{}", std::process::id()))
        .with_actor("bootstrap")
}

/// An entry about one credential: its name, service and the non-secret `detail`.
pub(crate) fn credential_event(
    event: SystemEvent,
    credential: &Credential,
    detail: serde_json::Map<String, serde_json::Value>,
) -> EntryContent {
    cli_event(event)
        .with_credential(credential.name.as_str())
        .with_service(credential.service.as_str())
        .with_detail(detail)
}

/// The non-secret description of a credential, for `credential_added`.
pub(crate) fn describe(credential: &Credential) -> serde_json::Map<String, serde_json::Value> {
    let mut detail = serde_json::Map::new();
    detail.insert("domains".into(), credential.domains.to_string().into());
    detail.insert("auth_type".into(), credential.auth_type.to_string().into());
    detail.insert("scopes".into(), credential.scopes.to_string().into());
    detail.insert(
        "body_inspection".into(),
        credential.body_inspection.as_str().into(),
    );
    if let Some(rate) = credential.rate_limit {
        detail.insert("rate_limit".into(), rate.to_string().into());
    }
    if let Some(at) = credential.expires_at {
        detail.insert("expires_at".into(), at.to_rfc3339().into());
    }
    detail
}

/// `changed_fields` with old and new values of every non-secret field that differs.
pub(crate) fn changes(
    before: &Credential,
    after: &Credential,
) -> serde_json::Map<String, serde_json::Value> {
    let old = describe(before);
    let new = describe(after);
    let mut changed = serde_json::Map::new();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (was, now) = (old.get(key), new.get(key));
        if was != now {
            changed.insert(
                key.clone(),
                serde_json::json!({ "old": was.cloned().unwrap_or(serde_json::Value::Null), "new": now.cloned().unwrap_or(serde_json::Value::Null) }),
            );
        }
    }
    for (key, was, now) in [
        ("allow_http", before.allow_http, after.allow_http),
        ("pass_cookies", before.pass_cookies, after.pass_cookies),
    ] {
        if was != now {
            changed.insert(key.into(), serde_json::json!({ "old": was, "new": now }));
        }
    }
    let mut detail = serde_json::Map::new();
    detail.insert("changed_fields".into(), serde_json::Value::Object(changed));
    detail
}
