//! The `gate:` section: listener, TLS, limits and timeouts of the HTTP gate.
//!
//! The listener itself lives in aegis-server; this is only its settings.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::choice::{OversizeInspection, PolicyMode};

/// `gate.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// Listening port (`gate.port`, default 3100).
    pub port: u16,
    /// Listening address (`gate.bind`, default 127.0.0.1).
    pub bind: IpAddr,
    /// Certificate and key; both set enables TLS.
    pub tls: TlsConfig,
    /// Whether agents must present a token (`gate.require_agent_auth`, default false).
    pub require_agent_auth: bool,
    /// Whether identified agents without a policy file are denied (default false).
    pub require_policy: bool,
    /// What policy verdicts do (default `enforce`).
    pub policy_mode: PolicyMode,
    /// Directory of policy files; unset turns the policy engine off.
    pub policies_dir: Option<PathBuf>,
    /// Extra PEM bundle trusted for upstream TLS (`gate.upstream_ca_file`).
    pub upstream_ca_file: Option<PathBuf>,
    /// Extra `Host` values accepted besides loopback names and the bind address.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to use the gate.
    pub allowed_origins: Vec<String>,
    /// Request body limit in bytes (default 100 MiB).
    pub max_body_bytes: u64,
    /// In-flight requests per identified agent; 0 means no cap (default 50).
    pub max_concurrent_per_agent: u32,
    /// Inspection buffer per request in bytes (default 10 MiB).
    pub max_inspect_bytes: u64,
    /// What inspection does with bodies above `max_inspect_bytes` (default `reject`).
    pub oversize_inspection: OversizeInspection,
    /// Limit for the request line plus headers in bytes (default 64 KiB).
    pub max_header_bytes: u64,
    /// Echo redaction of injected secrets in responses (default true).
    pub response_redaction: bool,
    /// Upstream and agent deadlines.
    pub timeouts: GateTimeouts,
    /// How long shutdown waits for in-flight requests (default 30s).
    pub shutdown_grace: Duration,
    /// Idle upstream connections are closed after this (default 90s).
    pub pool_idle_timeout: Duration,
    /// File watching for hot reload (default true).
    pub watch: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            port: 3100,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tls: TlsConfig::default(),
            require_agent_auth: false,
            require_policy: false,
            policy_mode: PolicyMode::Enforce,
            policies_dir: None,
            upstream_ca_file: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 100 << 20,
            max_concurrent_per_agent: 50,
            max_inspect_bytes: 10 << 20,
            oversize_inspection: OversizeInspection::Reject,
            max_header_bytes: 64 << 10,
            response_redaction: true,
            timeouts: GateTimeouts::default(),
            shutdown_grace: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
            watch: true,
        }
    }
}

/// `gate.timeouts.*`: every deadline on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateTimeouts {
    /// TCP plus TLS handshake to the upstream (default 10s).
    pub connect: Duration,
    /// From request sent to upstream headers received (default 60s).
    pub response_headers: Duration,
    /// Longest gap between body bytes, either direction (default 60s).
    pub idle_body: Duration,
    /// Time for an agent to send a complete request head (default 30s).
    pub agent_headers: Duration,
}

impl Default for GateTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            response_headers: Duration::from_secs(60),
            idle_body: Duration::from_secs(60),
            agent_headers: Duration::from_secs(30),
        }
    }
}

/// A certificate and key pair (`gate.tls`, `dashboard.tls`); validation requires both or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    /// The certificate and key when both are set, which is when TLS is on.
    pub fn pair(&self) -> Option<(&Path, &Path)> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}
