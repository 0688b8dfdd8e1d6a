//! The `dashboard:` and `mcp:` sections: the listeners besides the gate.
//!
//! The servers live in aegis-server and aegis-mcp; these are their settings.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::choice::McpTransport;
use super::gate::TlsConfig;

/// `dashboard.*`: the admin listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardConfig {
    /// Whether `aegis gate` also starts the admin listener (default false).
    pub enabled: bool,
    /// Listening port (default 3200).
    pub port: u16,
    /// Listening address (default 127.0.0.1).
    pub bind: IpAddr,
    /// Certificate and key for the admin listener.
    pub tls: TlsConfig,
    /// Extra accepted `Host` values.
    pub allowed_hosts: Vec<String>,
    /// Live-feed streams at once (default 100).
    pub max_live_connections: u32,
    /// Sessions idle this long are closed (default 30m).
    pub session_idle_timeout: Duration,
    /// Sessions older than this are closed (default 12h).
    pub session_max_age: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            port: 3200,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tls: TlsConfig::default(),
            allowed_hosts: Vec::new(),
            max_live_connections: 100,
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_max_age: Duration::from_secs(12 * 3600),
        }
    }
}

/// `mcp.*`: the MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    /// Transport (default `stdio`).
    pub transport: McpTransport,
    /// HTTP transport port (default 3300).
    pub port: u16,
    /// HTTP transport address (default 127.0.0.1).
    pub bind: IpAddr,
    /// Extra accepted `Host` values.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted on the HTTP transport.
    pub allowed_origins: Vec<String>,
    /// Concurrent sessions (default 64).
    pub max_sessions: u32,
    /// Deadline for a whole tool call (default 120s).
    pub request_timeout: Duration,
    /// JSON-RPC message size limit in bytes (default 10 MiB).
    pub max_request_bytes: u64,
    /// Upstream body returned by a tool before truncation, in bytes (default 1 MiB).
    pub max_response_bytes: u64,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            transport: McpTransport::Stdio,
            port: 3300,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_sessions: 64,
            request_timeout: Duration::from_secs(120),
            max_request_bytes: 10 << 20,
            max_response_bytes: 1 << 20,
        }
    }
}
