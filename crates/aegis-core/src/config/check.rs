//! The range and consistency rules of SPEC §5, run over a whole typed [`Config`].
//!
//! Type errors (a word where a number belongs) are the loader's; this module only sees values
//! that already have their types, and reports every rule they break, never a secret value.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::Config;
use super::choice::RateLimitBackend;
use super::gate::TlsConfig;
use crate::names::VaultName;

/// One broken rule: the full key path it is about and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Key path the user should look at, e.g. `vault.kdf.memory_kib` or `webhooks[0].secret`.
    pub key: String,
    /// What was expected; never contains a secret value.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A listener a process opens; two in one process must not share a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `gate.port`.
    Gate,
    /// `dashboard.port`.
    Dashboard,
    /// `mcp.port`.
    Mcp,
}

impl Listener {
    fn key(self) -> &'static str {
        match self {
            Self::Gate => "gate.port",
            Self::Dashboard => "dashboard.port",
            Self::Mcp => "mcp.port",
        }
    }

    fn port(self, config: &Config) -> u16 {
        match self {
            Self::Gate => config.gate.port,
            Self::Dashboard => config.dashboard.port,
            Self::Mcp => config.mcp.port,
        }
    }
}

/// Smallest `vault.kdf.memory_kib` accepted (OWASP's Argon2id floor).
pub const MIN_KDF_MEMORY_KIB: u32 = 19_456;
/// Smallest `vault.kdf.iterations` accepted.
pub const MIN_KDF_ITERATIONS: u32 = 2;
/// Largest `vault.kdf.parallelism` accepted.
pub const MAX_KDF_PARALLELISM: u32 = 16;
/// Longest `storage.poll_interval` accepted.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Shortest webhook secret accepted, in characters.
pub const MIN_WEBHOOK_SECRET_CHARS: usize = 16;

impl Config {
    /// Every rule of SPEC §5 this configuration breaks, in key order; empty when valid.
    pub fn check(&self) -> Vec<Violation> {
        let mut out = Checks::default();
        self.check_vault(&mut out);
        self.check_gate(&mut out);
        self.check_services(&mut out);
        self.check_listeners(&mut out);
        self.check_webhooks(&mut out);
        if self.dashboard.enabled {
            out.0
                .extend(self.port_clash(&[Listener::Gate, Listener::Dashboard]));
        }
        out.0
    }

    /// The first pair of `listeners` that share a port, for a process that opens all of them.
    pub fn port_clash(&self, listeners: &[Listener]) -> Option<Violation> {
        for (index, first) in listeners.iter().enumerate() {
            for second in &listeners[index + 1..] {
                let port = first.port(self);
                // Port 0 asks the system for a free port, so two of them never clash.
                if port != 0 && port == second.port(self) {
                    return Some(Violation {
                        key: second.key().to_owned(),
                        message: format!(
                            "must differ from {} ({port}): both listeners are opened by the \
                             same process",
                            first.key()
                        ),
                    });
                }
            }
        }
        None
    }

    fn check_vault(&self, out: &mut Checks) {
        let vault = &self.vault;
        if let Err(err) = VaultName::parse(&vault.name) {
            out.push("vault.name", err.to_string());
        }
        if let Some(key) = &vault.master_key
            && !has_master_key_shape(key)
        {
            out.push(
                "vault.master_key",
                "expected 43 base64url characters or 64 hex characters (the value is not shown)",
            );
        }
        let kdf = &vault.kdf;
        out.at_least(
            "vault.kdf.memory_kib",
            kdf.memory_kib.into(),
            MIN_KDF_MEMORY_KIB.into(),
        );
        out.at_least(
            "vault.kdf.iterations",
            kdf.iterations.into(),
            MIN_KDF_ITERATIONS.into(),
        );
        if !(1..=MAX_KDF_PARALLELISM).contains(&kdf.parallelism) {
            out.push(
                "vault.kdf.parallelism",
                format!(
                    "expected an integer from 1 to {MAX_KDF_PARALLELISM}, found {}",
                    kdf.parallelism
                ),
            );
        }
    }

    fn check_gate(&self, out: &mut Checks) {
        let gate = &self.gate;
        out.tls_pair("gate.tls", &gate.tls);
        out.hosts("gate.allowed_hosts", &gate.allowed_hosts);
        out.origins("gate.allowed_origins", &gate.allowed_origins);
        out.at_least("gate.max_body_bytes", gate.max_body_bytes, 1);
        out.at_least("gate.max_inspect_bytes", gate.max_inspect_bytes, 1);
        out.at_least("gate.max_header_bytes", gate.max_header_bytes, 1);
        out.positive("gate.timeouts.connect", gate.timeouts.connect);
        out.positive(
            "gate.timeouts.response_headers",
            gate.timeouts.response_headers,
        );
        out.positive("gate.timeouts.idle_body", gate.timeouts.idle_body);
        out.positive("gate.timeouts.agent_headers", gate.timeouts.agent_headers);
        out.positive("gate.pool_idle_timeout", gate.pool_idle_timeout);
    }

    fn check_services(&self, out: &mut Checks) {
        let ledger = &self.ledger;
        out.at_least("ledger.queue_capacity", ledger.queue_capacity.into(), 1);
        out.at_least(
            "ledger.batch_max_entries",
            ledger.batch_max_entries.into(),
            1,
        );
        out.positive("ledger.enqueue_timeout", ledger.enqueue_timeout);
        out.at_least("ledger.checkpoint_interval", ledger.checkpoint_interval, 1);
        out.positive("ledger.checkpoint_max_age", ledger.checkpoint_max_age);

        let rate = &self.rate_limit;
        match &rate.redis_url {
            Some(url) if !has_scheme(url, &["redis://", "rediss://"]) => out.push(
                "rate_limit.redis_url",
                "expected a redis:// or rediss:// URL (the value is not shown)",
            ),
            None if rate.backend == RateLimitBackend::Redis => out.push(
                "rate_limit.backend",
                "redis needs rate_limit.redis_url (or AEGIS_REDIS_URL)",
            ),
            _ => {}
        }

        let storage = &self.storage;
        if let Some(url) = &storage.url
            && !has_scheme(url, &["postgres://", "postgresql://"])
        {
            out.push(
                "storage.url",
                "expected a postgres:// URL (the value is not shown)",
            );
        }
        out.positive("storage.poll_interval", storage.poll_interval);
        if storage.poll_interval > MAX_POLL_INTERVAL {
            out.push(
                "storage.poll_interval",
                format!(
                    "expected at most 2s, found {}",
                    crate::units::format_duration(storage.poll_interval)
                ),
            );
        }
        out.positive("storage.busy_timeout", storage.busy_timeout);
    }

    fn check_listeners(&self, out: &mut Checks) {
        let dashboard = &self.dashboard;
        out.tls_pair("dashboard.tls", &dashboard.tls);
        out.hosts("dashboard.allowed_hosts", &dashboard.allowed_hosts);
        out.at_least(
            "dashboard.max_live_connections",
            dashboard.max_live_connections.into(),
            1,
        );
        out.positive(
            "dashboard.session_idle_timeout",
            dashboard.session_idle_timeout,
        );
        out.positive("dashboard.session_max_age", dashboard.session_max_age);

        let mcp = &self.mcp;
        out.hosts("mcp.allowed_hosts", &mcp.allowed_hosts);
        out.origins("mcp.allowed_origins", &mcp.allowed_origins);
        out.at_least("mcp.max_sessions", mcp.max_sessions.into(), 1);
        out.positive("mcp.request_timeout", mcp.request_timeout);
        out.at_least("mcp.max_request_bytes", mcp.max_request_bytes, 1);
        out.at_least("mcp.max_response_bytes", mcp.max_response_bytes, 1);
    }

    fn check_webhooks(&self, out: &mut Checks) {
        for (index, hook) in self.webhooks.iter().enumerate() {
            let url = &hook.url;
            if !url.is_https() && !hook.allow_http {
                out.push(
                    format!("webhooks[{index}].url"),
                    "expected an https:// URL; http:// needs allow_http: true and a loopback host",
                );
            } else if !url.is_https() && !url.is_loopback() {
                out.push(
                    format!("webhooks[{index}].url"),
                    format!(
                        "http:// is only allowed to localhost or a loopback address, found host \
                         {}",
                        url.host()
                    ),
                );
            }
            if let Some(secret) = &hook.secret
                && secret_chars(secret) < MIN_WEBHOOK_SECRET_CHARS
            {
                out.push(
                    format!("webhooks[{index}].secret"),
                    format!(
                        "expected at least {MIN_WEBHOOK_SECRET_CHARS} characters (the value is \
                         not shown)"
                    ),
                );
            }
        }
    }
}

#[derive(Default)]
struct Checks(Vec<Violation>);

impl Checks {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation {
            key: key.into(),
            message: message.into(),
        });
    }

    fn at_least(&mut self, key: &str, value: u64, min: u64) {
        if value < min {
            self.push(key, format!("expected at least {min}, found {value}"));
        }
    }

    fn positive(&mut self, key: &str, value: Duration) {
        if value.is_zero() {
            self.push(key, "expected a duration above zero, found 0s");
        }
    }

    fn tls_pair(&mut self, prefix: &str, tls: &TlsConfig) {
        match (&tls.cert, &tls.key) {
            (Some(_), None) => self.push(
                format!("{prefix}.cert"),
                format!("needs {prefix}.key as well: certificate and key are given together"),
            ),
            (None, Some(_)) => self.push(
                format!("{prefix}.key"),
                format!("needs {prefix}.cert as well: certificate and key are given together"),
            ),
            _ => {}
        }
    }

    fn hosts(&mut self, key: &str, hosts: &[String]) {
        for host in hosts {
            let bad = host.is_empty()
                || host
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/@?#\\".contains(c));
            if bad {
                self.push(
                    key,
                    format!("expected host names like api.example.net, found '{host}'"),
                );
            }
        }
    }

    fn origins(&mut self, key: &str, origins: &[String]) {
        for origin in origins {
            if !is_origin(origin) {
                self.push(
                    key,
                    format!(
                        "expected origins like https://app.example.net or http://localhost:3000 \
                         (scheme, host, optional port, no path), found '{origin}'"
                    ),
                );
            }
        }
    }
}

/// Whether `origin` is `http(s)://host[:port]` and nothing more.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if scheme != "https" && scheme != "http" {
        return false;
    }
    let host = match rest.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((inner, port)) => {
                if !(port.is_empty() || is_port_suffix(port)) {
                    return false;
                }
                inner
            }
            None => return false,
        },
        None => match rest.split_once(':') {
            Some((host, port)) => {
                if !is_port_suffix(&format!(":{port}")) {
                    return false;
                }
                host
            }
            None => rest,
        },
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

fn is_port_suffix(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|digits| digits.parse::<u16>().is_ok_and(|port| port != 0))
}

/// Whether the key decodes as a master key; the error path never echoes it.
fn has_master_key_shape(key: &SecretString) -> bool {
    crate::crypto::MasterKey::parse(key.expose_secret()).is_ok()
}

/// Looks at the scheme of a secret URL only, so the rest (its password) is never copied.
fn has_scheme(url: &SecretString, schemes: &[&str]) -> bool {
    let text = url.expose_secret().trim();
    schemes.iter().any(|scheme| {
        text.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            && text.len() > scheme.len()
    })
}

/// Counts the characters of a webhook secret without copying it.
fn secret_chars(secret: &SecretString) -> usize {
    secret.expose_secret().chars().count()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{WebhookConfig, WebhookEvents, WebhookUrl};

    fn keys(config: &Config) -> Vec<String> {
        config.check().into_iter().map(|v| v.key).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().check(), Vec::new());
    }

    #[test]
    fn kdf_costs_below_their_floors_are_reported_together() {
        let mut config = Config::default();
        config.vault.kdf.memory_kib = 1024;
        config.vault.kdf.iterations = 1;
        config.vault.kdf.parallelism = 17;
        assert_eq!(
            keys(&config),
            [
                "vault.kdf.memory_kib",
                "vault.kdf.iterations",
                "vault.kdf.parallelism"
            ]
        );
        assert!(config.check()[0].message.contains("19456"));
    }

    #[test]
    fn tls_halves_alone_are_rejected() {
        let mut config = Config::default();
        config.gate.tls.cert = Some(PathBuf::from("/c.pem"));
        config.dashboard.tls.key = Some(PathBuf::from("/k.pem"));
        assert_eq!(keys(&config), ["gate.tls.cert", "dashboard.tls.key"]);
    }

    #[test]
    fn poll_interval_above_two_seconds_is_rejected() {
        let mut config = Config::default();
        config.storage.poll_interval = Duration::from_millis(2_001);
        assert_eq!(keys(&config), ["storage.poll_interval"]);
        config.storage.poll_interval = Duration::from_secs(2);
        assert!(config.check().is_empty());
    }

    #[test]
    fn enabled_dashboard_on_the_gate_port_clashes() {
        let mut config = Config::default();
        config.dashboard.port = config.gate.port;
        assert!(config.check().is_empty(), "dashboard off: no clash");
        config.dashboard.enabled = true;
        assert_eq!(keys(&config), ["dashboard.port"]);
        config.mcp.port = config.gate.port;
        assert!(
            config
                .port_clash(&[Listener::Mcp, Listener::Gate])
                .is_some()
        );
    }

    #[test]
    fn malformed_secrets_are_reported_without_their_value() {
        let mut config = Config::default();
        config.vault.master_key = Some(SecretString::from("hunter2-secret-value"));
        config.storage.url = Some(SecretString::from("mysql://u:hunter2@db/x"));
        config.rate_limit.redis_url = Some(SecretString::from("http://:hunter2@r"));
        config.webhooks.push(WebhookConfig {
            url: WebhookUrl::parse("https://hooks.example.net/x").unwrap(),
            events: WebhookEvents::All,
            secret: Some(SecretString::from("hunter2")),
            allow_http: false,
        });
        let violations = config.check();
        assert_eq!(violations.len(), 4);
        for violation in violations {
            assert!(!violation.to_string().contains("hunter2"), "{violation}");
        }
    }

    #[test]
    fn well_formed_master_keys_pass() {
        let mut config = Config::default();
        config.vault.master_key = Some(SecretString::from("A".repeat(43)));
        assert!(config.check().is_empty());
        config.vault.master_key = Some(SecretString::from(format!(" {} ", "ab".repeat(32))));
        assert!(config.check().is_empty());
    }

    #[test]
    fn redis_backend_needs_a_url() {
        let mut config = Config::default();
        config.rate_limit.backend = RateLimitBackend::Redis;
        assert_eq!(keys(&config), ["rate_limit.backend"]);
        config.rate_limit.redis_url = Some(SecretString::from("rediss://:pw@cache:6380/0"));
        assert!(config.check().is_empty());
    }

    #[test]
    fn plain_http_webhooks_need_allow_http_and_loopback() {
        let mut config = Config::default();
        let hook = |url: &str, allow_http| WebhookConfig {
            url: WebhookUrl::parse(url).unwrap(),
            events: WebhookEvents::All,
            secret: None,
            allow_http,
        };
        config.webhooks = vec![
            hook("http://127.0.0.1:9000/h", true),
            hook("http://127.0.0.1:9000/h", false),
            hook("http://hooks.example.net/h", true),
        ];
        assert_eq!(keys(&config), ["webhooks[1].url", "webhooks[2].url"]);
    }

    #[test]
    fn origins_and_hosts_are_checked() {
        assert!(is_origin("https://app.example.net"));
        assert!(is_origin("http://localhost:3000"));
        assert!(is_origin("http://[::1]:8080"));
        for bad in [
            "app.example.net",
            "https://a/",
            "https://a:0",
            "ftp://a",
            "*",
            "https://",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
        let mut config = Config::default();
        config.mcp.allowed_hosts = vec!["ok.example".into(), "bad host".into()];
        assert_eq!(keys(&config), ["mcp.allowed_hosts"]);
    }

    #[test]
    fn vault_names_follow_the_credential_rule() {
        let mut config = Config::default();
        config.vault.name = "-prod".to_owned();
        assert_eq!(keys(&config), ["vault.name"]);
        config.vault.name = "team.prod-1".to_owned();
        assert!(config.check().is_empty());
    }
}
