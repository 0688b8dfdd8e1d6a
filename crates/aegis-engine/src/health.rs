//! The health object of SPEC.md §9.10, shared by the gate's `/_aegis/health` and the MCP
//! server's `aegis_health` tool. Serving it over a protocol is the front door's job.

use crate::pipeline::Pipeline;

/// Static facts the health object reports besides the snapshot's state.
#[derive(Debug, Clone)]
pub struct HealthInfo {
    /// Aegis version.
    pub version: &'static str,
    /// Policy mode in force.
    pub policy_mode: String,
    /// Whether agent auth is required.
    pub agent_auth_required: bool,
}

/// Whether the pipeline is ready, and the health object describing it.
pub fn health_report(pipeline: &Pipeline, info: &HealthInfo) -> (bool, serde_json::Value) {
    let snapshot = pipeline.holder().load();
    let ready = !snapshot.is_sealed() && !pipeline.is_draining();
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "degraded" },
        "live": true,
        "ready": ready,
        "version": info.version,
        "vault": snapshot.vault().as_str(),
        "checks": {
            "vault": if snapshot.is_sealed() { "sealed" } else { "unsealed" },
            "snapshot": {
                "generation": snapshot.generation(),
                "loaded_at": snapshot.built_at().to_rfc3339(),
            },
        },
        "policy_mode": info.policy_mode,
        "agent_auth_required": info.agent_auth_required,
    });
    (ready, body)
}
