//! `aegis_list_services`: the credentials the caller may use, described without secrets.

use serde_json::Value;

use aegis_core::checks::agent::Caller;
use aegis_core::snapshot::Snapshot;

/// One object per credential usable by `caller`: every credential for an anonymous caller,
/// the granted ones for an agent.
pub(crate) fn usable_services(snapshot: &Snapshot, caller: Caller) -> Value {
    let agent = match caller {
        Caller::Anonymous => None,
        Caller::Agent(index) => snapshot.agent(index),
    };
    let listed: Vec<Value> = snapshot
        .credentials()
        .iter()
        .enumerate()
        .filter(|(index, _)| match caller {
            Caller::Anonymous => true,
            Caller::Agent(_) => agent.is_some_and(|a| a.has_grant(*index)),
        })
        .map(|(_, credential)| {
            let domains: Vec<String> = credential
                .domains
                .entries()
                .iter()
                .map(ToString::to_string)
                .collect();
            serde_json::json!({
                "service": credential.service.as_str(),
                "credential": credential.name.as_str(),
                "auth_type": credential.auth_type.as_str(),
                "domains": domains,
                "scopes": credential.scopes.to_string(),
                "expires_at": credential.expires_at.map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    serde_json::json!({ "services": listed })
}
