//! The typed configuration of SPEC §5: every key with its type and built-in default, and the
//! range and consistency rules (`Config::check`).
//!
//! This module is pure: it never reads a file or the environment. Finding the file, parsing
//! YAML, layering flags over environment over file, and turning text into these types is the
//! loader's job in aegis-cli. Secrets (`vault.master_key`, `webhooks[].secret`, the storage and
//! Redis URLs) are held as [`secrecy::SecretString`] and never printed.

mod check;
mod choice;
mod gate;
mod listeners;
mod services;
mod vault;
mod webhook;

pub use check::{
    Listener, MAX_KDF_PARALLELISM, MAX_POLL_INTERVAL, MIN_KDF_ITERATIONS, MIN_KDF_MEMORY_KIB,
    MIN_WEBHOOK_SECRET_CHARS, Violation,
};
pub use choice::{
    ConfigEnum, Durability, LogFormat, LogLevel, McpTransport, OnBackendError, OversizeInspection,
    PolicyMode, RateLimitBackend, WebhookEvent,
};
pub use gate::{GateConfig, GateTimeouts, TlsConfig};
pub use listeners::{DashboardConfig, McpConfig};
pub use services::{LedgerConfig, ObservabilityConfig, RateLimitConfig, StorageConfig};
pub use vault::{DEFAULT_DATA_DIR, KdfConfig, VaultConfig};
pub use webhook::{WebhookConfig, WebhookEvents, WebhookUrl};

/// The whole configuration, one field per top-level section of `aegis.config.yaml`.
///
/// `Config::default()` is SPEC §5's built-in defaults, with `vault.data_dir` still relative
/// (`.aegis`); the loader anchors it beside the config file. Run [`Config::check`] after
/// building or changing a value by hand.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `vault:`.
    pub vault: VaultConfig,
    /// `gate:`.
    pub gate: GateConfig,
    /// `ledger:`.
    pub ledger: LedgerConfig,
    /// `rate_limit:`.
    pub rate_limit: RateLimitConfig,
    /// `storage:`.
    pub storage: StorageConfig,
    /// `observability:`.
    pub observability: ObservabilityConfig,
    /// `dashboard:`.
    pub dashboard: DashboardConfig,
    /// `mcp:`.
    pub mcp: McpConfig,
    /// `webhooks:`, in file order (their ids are `cfg-<position>`).
    pub webhooks: Vec<WebhookConfig>,
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_match_the_spec_table() {
        let config = Config::default();
        assert_eq!(config.vault.name, "default");
        assert_eq!(config.vault.data_dir, PathBuf::from(".aegis"));
        assert_eq!(
            config.vault.kdf,
            KdfConfig {
                memory_kib: 65_536,
                iterations: 3,
                parallelism: 1
            }
        );
        assert_eq!(config.gate.port, 3100);
        assert_eq!(config.gate.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.gate.policy_mode, PolicyMode::Enforce);
        assert_eq!(config.gate.max_body_bytes, 100 * 1024 * 1024);
        assert_eq!(config.gate.max_inspect_bytes, 10 * 1024 * 1024);
        assert_eq!(config.gate.max_header_bytes, 64 * 1024);
        assert_eq!(config.gate.timeouts.connect, Duration::from_secs(10));
        assert_eq!(config.gate.timeouts.agent_headers, Duration::from_secs(30));
        assert_eq!(config.ledger.batch_max_delay, Duration::from_millis(20));
        assert_eq!(config.ledger.checkpoint_max_age, Duration::from_secs(300));
        assert_eq!(config.rate_limit.backend, RateLimitBackend::Memory);
        assert_eq!(config.rate_limit.on_backend_error, OnBackendError::Deny);
        assert!(config.storage.url.is_none());
        assert_eq!(config.observability.log_format, LogFormat::Auto);
        assert_eq!(config.dashboard.port, 3200);
        assert_eq!(
            config.dashboard.session_max_age,
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(config.mcp.transport, McpTransport::Stdio);
        assert_eq!(config.mcp.max_response_bytes, 1024 * 1024);
        assert!(config.webhooks.is_empty());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = Config::default();
        config.vault.master_key = Some(secrecy::SecretString::from("hunter2-master"));
        config.storage.url = Some(secrecy::SecretString::from("postgres://u:hunter2@db/a"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
