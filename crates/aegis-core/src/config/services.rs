//! The sections for process-wide services: `ledger:`, `rate_limit:`, `storage:` and
//! `observability:`.
//!
//! The services themselves live in aegis-store and aegis-engine; these are their settings.

use std::time::Duration;

use secrecy::SecretString;

use super::choice::{Durability, LogFormat, LogLevel, OnBackendError, RateLimitBackend};

/// `ledger.*`: the ledger writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// When batches reach the disk (default `batch`).
    pub durability: Durability,
    /// Entries waiting for the writer (default 10000).
    pub queue_capacity: u32,
    /// Entries per commit (default 512).
    pub batch_max_entries: u32,
    /// Longest an entry waits for batching (default 20ms).
    pub batch_max_delay: Duration,
    /// After this a request fails with `ledger_unavailable` (default 5s).
    pub enqueue_timeout: Duration,
    /// Entries between checkpoints (default 1000).
    pub checkpoint_interval: u64,
    /// A checkpoint is also written when new entries exist and the last is older (default 5m).
    pub checkpoint_max_age: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Batch,
            queue_capacity: 10_000,
            batch_max_entries: 512,
            batch_max_delay: Duration::from_millis(20),
            enqueue_timeout: Duration::from_secs(5),
            checkpoint_interval: 1_000,
            checkpoint_max_age: Duration::from_secs(300),
        }
    }
}

/// `rate_limit.*`: where counters live and what a backend failure does.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Counter store (default `memory`).
    pub backend: RateLimitBackend,
    /// `redis://` or `rediss://` URL, required with the `redis` backend; may hold a password.
    pub redis_url: Option<SecretString>,
    /// What a backend failure does (default `deny`).
    pub on_backend_error: OnBackendError,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            backend: RateLimitBackend::Memory,
            redis_url: None,
            on_backend_error: OnBackendError::Deny,
        }
    }
}

/// `storage.*`: the shared store.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `postgres://` URL of the shared store; `None` means the embedded SQLite store.
    pub url: Option<SecretString>,
    /// Generation polling interval (default 1s, at most 2s).
    pub poll_interval: Duration,
    /// Wait for the store's write lock (default 5s).
    pub busy_timeout: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            poll_interval: Duration::from_secs(1),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// `observability.*`: logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservabilityConfig {
    /// Most verbose level written (default `info`).
    pub log_level: LogLevel,
    /// Line format (default `auto`).
    pub log_format: LogFormat,
    /// Serve `/_aegis/metrics` on the gate (default true).
    pub metrics: bool,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            log_level: LogLevel::Info,
            log_format: LogFormat::Auto,
            metrics: true,
        }
    }
}
