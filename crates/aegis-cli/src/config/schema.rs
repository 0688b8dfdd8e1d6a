//! The one table of configuration keys: path, type (as the [`Config`] field it fills),
//! environment variables, and the legacy spellings of SPEC §27.
//!
//! Everything else in the loader is driven by this table: walking the YAML, reading the
//! environment, applying flags, and listing every key for `config show`. Parsing text into a
//! value is `assign`'s job.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use aegis_core::config::{
    Config, ConfigEnum, Durability, LogFormat, LogLevel, McpTransport, OnBackendError,
    OversizeInspection, PolicyMode, RateLimitBackend,
};
use secrecy::SecretString;

/// One configuration key.
pub(crate) struct KeySpec {
    /// Full dotted path, e.g. `gate.timeouts.connect`.
    pub(crate) path: &'static str,
    /// The typed field it fills.
    pub(crate) slot: Slot,
    /// Documented environment variables besides the canonical `AEGIS_<PATH>`, preferred first.
    pub(crate) env: &'static [&'static str],
    /// Environment variables of the earlier implementation (SPEC §27), below the new ones.
    pub(crate) legacy_env: &'static [&'static str],
}

impl KeySpec {
    /// Every environment variable that sets this key, preferred first, legacy ones last with
    /// `true`. List keys have none.
    pub(crate) fn env_names(&self) -> Vec<(String, bool)> {
        if matches!(self.slot, Slot::List(_)) {
            return Vec::new();
        }
        let mut names: Vec<(String, bool)> = self
            .env
            .iter()
            .map(|name| ((*name).to_owned(), false))
            .collect();
        let canonical = canonical_env(self.path);
        if !names.iter().any(|(name, _)| *name == canonical) {
            names.push((canonical, false));
        }
        names.extend(
            self.legacy_env
                .iter()
                .map(|name| ((*name).to_owned(), true)),
        );
        names
    }

    /// The preferred environment variable, named in warnings about legacy ones.
    pub(crate) fn primary_env(&self) -> String {
        self.env
            .first()
            .map_or_else(|| canonical_env(self.path), |name| (*name).to_owned())
    }
}

/// Read and write access to one field of [`Config`].
pub(crate) struct Field<T> {
    /// Borrows the field.
    pub(crate) get: fn(&Config) -> &T,
    /// Borrows the field mutably.
    pub(crate) set: fn(&mut Config) -> &mut T,
}

/// Access to a field holding one of aegis-core's [`ConfigEnum`]s.
pub(crate) struct EnumField {
    /// The accepted spellings as a phrase.
    pub(crate) expected: fn() -> String,
    /// Parses `text` into the field; `false` when it is no accepted spelling.
    pub(crate) parse_into: fn(&mut Config, &str) -> bool,
    /// The field's spelling.
    pub(crate) get: fn(&Config) -> &'static str,
}

/// What kind of value a key holds, and where it goes.
pub(crate) enum Slot {
    /// Free text.
    Text(Field<String>),
    /// `true`/`false` (plus `1/0/yes/no` from the environment).
    Bool(Field<bool>),
    /// A TCP port, 0–65535 (0 asks the system for a free one).
    Port(Field<u16>),
    /// A non-negative integer up to `u32::MAX`.
    U32(Field<u32>),
    /// A non-negative integer up to `u64::MAX`.
    U64(Field<u64>),
    /// An IPv4 or IPv6 address.
    Ip(Field<IpAddr>),
    /// A duration like `30s`.
    Duration(Field<Duration>),
    /// A size like `10MiB`.
    Size(Field<u64>),
    /// A path that always has a value.
    Path(Field<PathBuf>),
    /// A path that may be unset.
    OptPath(Field<Option<PathBuf>>),
    /// A list of strings.
    List(Field<Vec<String>>),
    /// A secret, masked whole.
    Secret(Field<Option<SecretString>>),
    /// A secret URL, shown with its password masked.
    SecretUrl(Field<Option<SecretString>>),
    /// One word of a fixed set.
    Enum(EnumField),
}

impl Slot {
    /// What a value of this kind looks like, for error messages.
    pub(crate) fn expected(&self) -> String {
        match self {
            Self::Text(_) => "a string".to_owned(),
            Self::Bool(_) => "true or false".to_owned(),
            Self::Port(_) => "an integer from 0 to 65535 (0 picks a free port)".to_owned(),
            Self::U32(_) => format!("an integer from 0 to {}", u32::MAX),
            Self::U64(_) => "a non-negative integer".to_owned(),
            Self::Ip(_) => "an IP address like 127.0.0.1 or ::1".to_owned(),
            Self::Duration(_) => "a duration like 500ms, 30s, 10m, 2h or 7d".to_owned(),
            Self::Size(_) => "a size like 65536, 64KiB, 100MiB or 1GiB".to_owned(),
            Self::Path(_) | Self::OptPath(_) => "a path".to_owned(),
            Self::List(_) => "a list of strings".to_owned(),
            Self::Secret(_) => "a string".to_owned(),
            Self::SecretUrl(_) => "a URL".to_owned(),
            Self::Enum(field) => (field.expected)(),
        }
    }

    /// Whether values of this kind are secret and must never be echoed.
    pub(crate) fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_) | Self::SecretUrl(_))
    }
}

/// A key of the earlier implementation, accepted with a warning (SPEC §27).
pub(crate) struct LegacyKey {
    /// The old dotted path.
    pub(crate) path: &'static str,
    /// The keys it sets.
    pub(crate) targets: &'static [&'static str],
    /// The old value is an integer of milliseconds rather than a duration.
    pub(crate) is_millis: bool,
}

/// The keys of one `webhooks[]` item.
pub(crate) const WEBHOOK_KEYS: [&str; 4] = ["url", "events", "secret", "allow_http"];

/// The legacy keys.
pub(crate) static LEGACY_KEYS: &[LegacyKey] = &[
    LegacyKey {
        path: "gate.max_body_size",
        targets: &["gate.max_body_bytes"],
        is_millis: false,
    },
    LegacyKey {
        path: "gate.request_timeout",
        targets: &["gate.timeouts.response_headers", "gate.timeouts.idle_body"],
        is_millis: true,
    },
    LegacyKey {
        path: "gate.max_connections_per_agent",
        targets: &["gate.max_concurrent_per_agent"],
        is_millis: false,
    },
    LegacyKey {
        path: "observability.dashboard.enabled",
        targets: &["dashboard.enabled"],
        is_millis: false,
    },
    LegacyKey {
        path: "observability.dashboard.port",
        targets: &["dashboard.port"],
        is_millis: false,
    },
];

/// Finds a key by its full path.
pub(crate) fn key(path: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|spec| spec.path == path)
}

/// Finds a legacy key by its old path.
pub(crate) fn legacy_key(path: &str) -> Option<&'static LegacyKey> {
    LEGACY_KEYS.iter().find(|legacy| legacy.path == path)
}

/// Whether `path` is a section (a mapping of keys), including the legacy
/// `observability.dashboard`.
pub(crate) fn is_section(path: &str) -> bool {
    let is_prefix = |full: &str| {
        full.strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    KEYS.iter().any(|spec| is_prefix(spec.path))
        || LEGACY_KEYS.iter().any(|legacy| is_prefix(legacy.path))
}

/// The closest current key or section to a misspelled `path`, if one is close enough.
pub(crate) fn suggest(path: &str) -> Option<String> {
    let mut known: Vec<String> = KEYS.iter().map(|spec| spec.path.to_owned()).collect();
    for spec in KEYS {
        let mut prefix = spec.path;
        while let Some((parent, _)) = prefix.rsplit_once('.') {
            known.push(parent.to_owned());
            prefix = parent;
        }
    }
    known.push("webhooks".to_owned());
    closest(path, known.iter().map(String::as_str))
}

/// The closest of `candidates` to `word`, when within a few edits.
pub(crate) fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (word.len() / 3).clamp(1, 3);
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_owned())
}

/// `AEGIS_` plus the path upper-cased with `.` replaced by `_`.
pub(crate) fn canonical_env(path: &str) -> String {
    format!("AEGIS_{}", path.to_ascii_uppercase().replace('.', "_"))
}

macro_rules! field {
    ($($part:ident).+) => {
        Field {
            get: |config| &config.$($part).+,
            set: |config| &mut config.$($part).+,
        }
    };
}

macro_rules! enum_field {
    ($ty:ty, $($part:ident).+) => {
        Slot::Enum(EnumField {
            expected: <$ty as ConfigEnum>::expected,
            parse_into: |config, text| match <$ty as ConfigEnum>::parse(text) {
                Some(value) => {
                    config.$($part).+ = value;
                    true
                }
                None => false,
            },
            get: |config| config.$($part).+.as_str(),
        })
    };
}

macro_rules! keys {
    ($( $path:literal => $slot:expr $(, env = [$($env:literal),*])? $(, legacy = [$($legacy:literal),*])? ;)+) => {
        /// Every key of SPEC §5 except the `webhooks` list, in the order `config show` lists them.
        pub(crate) static KEYS: &[KeySpec] = &[
            $(KeySpec {
                path: $path,
                slot: $slot,
                env: &[$($($env),*)?],
                legacy_env: &[$($($legacy),*)?],
            },)+
        ];
    };
}

keys! {
    "vault.name" => Slot::Text(field!(vault.name)), env = ["AEGIS_VAULT"];
    "vault.data_dir" => Slot::Path(field!(vault.data_dir)), env = ["AEGIS_HOME"], legacy = ["AEGIS_DATA_DIR"];
    "vault.master_key" => Slot::Secret(field!(vault.master_key)), env = ["AEGIS_MASTER_KEY"];
    "vault.master_key_file" => Slot::OptPath(field!(vault.master_key_file)), env = ["AEGIS_MASTER_KEY_FILE"];
    "vault.kdf.memory_kib" => Slot::U32(field!(vault.kdf.memory_kib));
    "vault.kdf.iterations" => Slot::U32(field!(vault.kdf.iterations));
    "vault.kdf.parallelism" => Slot::U32(field!(vault.kdf.parallelism));
    "gate.port" => Slot::Port(field!(gate.port)), legacy = ["AEGIS_PORT"];
    "gate.bind" => Slot::Ip(field!(gate.bind));
    "gate.tls.cert" => Slot::OptPath(field!(gate.tls.cert));
    "gate.tls.key" => Slot::OptPath(field!(gate.tls.key));
    "gate.require_agent_auth" => Slot::Bool(field!(gate.require_agent_auth)), legacy = ["AEGIS_REQUIRE_AGENT_AUTH"];
    "gate.require_policy" => Slot::Bool(field!(gate.require_policy));
    "gate.policy_mode" => enum_field!(PolicyMode, gate.policy_mode), legacy = ["AEGIS_POLICY_MODE"];
    "gate.policies_dir" => Slot::OptPath(field!(gate.policies_dir)), legacy = ["AEGIS_POLICIES_DIR"];
    "gate.upstream_ca_file" => Slot::OptPath(field!(gate.upstream_ca_file)), env = ["AEGIS_UPSTREAM_CA"];
    "gate.allowed_hosts" => Slot::List(field!(gate.allowed_hosts));
    "gate.allowed_origins" => Slot::List(field!(gate.allowed_origins));
    "gate.max_body_bytes" => Slot::Size(field!(gate.max_body_bytes));
    "gate.max_concurrent_per_agent" => Slot::U32(field!(gate.max_concurrent_per_agent));
    "gate.max_inspect_bytes" => Slot::Size(field!(gate.max_inspect_bytes));
    "gate.oversize_inspection" => enum_field!(OversizeInspection, gate.oversize_inspection);
    "gate.max_header_bytes" => Slot::Size(field!(gate.max_header_bytes));
    "gate.response_redaction" => Slot::Bool(field!(gate.response_redaction));
    "gate.timeouts.connect" => Slot::Duration(field!(gate.timeouts.connect));
    "gate.timeouts.response_headers" => Slot::Duration(field!(gate.timeouts.response_headers));
    "gate.timeouts.idle_body" => Slot::Duration(field!(gate.timeouts.idle_body));
    "gate.timeouts.agent_headers" => Slot::Duration(field!(gate.timeouts.agent_headers));
    "gate.shutdown_grace" => Slot::Duration(field!(gate.shutdown_grace));
    "gate.pool_idle_timeout" => Slot::Duration(field!(gate.pool_idle_timeout));
    "gate.watch" => Slot::Bool(field!(gate.watch));
    "ledger.durability" => enum_field!(Durability, ledger.durability);
    "ledger.queue_capacity" => Slot::U32(field!(ledger.queue_capacity));
    "ledger.batch_max_entries" => Slot::U32(field!(ledger.batch_max_entries));
    "ledger.batch_max_delay" => Slot::Duration(field!(ledger.batch_max_delay));
    "ledger.enqueue_timeout" => Slot::Duration(field!(ledger.enqueue_timeout));
    "ledger.checkpoint_interval" => Slot::U64(field!(ledger.checkpoint_interval));
    "ledger.checkpoint_max_age" => Slot::Duration(field!(ledger.checkpoint_max_age));
    "rate_limit.backend" => enum_field!(RateLimitBackend, rate_limit.backend);
    "rate_limit.redis_url" => Slot::SecretUrl(field!(rate_limit.redis_url)), env = ["AEGIS_REDIS_URL"];
    "rate_limit.on_backend_error" => enum_field!(OnBackendError, rate_limit.on_backend_error);
    "storage.url" => Slot::SecretUrl(field!(storage.url)), env = ["AEGIS_STORAGE_URL"];
    "storage.poll_interval" => Slot::Duration(field!(storage.poll_interval));
    "storage.busy_timeout" => Slot::Duration(field!(storage.busy_timeout));
    "observability.log_level" => enum_field!(LogLevel, observability.log_level), env = ["AEGIS_LOG_LEVEL"];
    "observability.log_format" => enum_field!(LogFormat, observability.log_format), env = ["AEGIS_LOG_FORMAT"];
    "observability.metrics" => Slot::Bool(field!(observability.metrics)), env = ["AEGIS_OBSERVABILITY_METRICS"], legacy = ["AEGIS_METRICS"];
    "dashboard.enabled" => Slot::Bool(field!(dashboard.enabled));
    "dashboard.port" => Slot::Port(field!(dashboard.port));
    "dashboard.bind" => Slot::Ip(field!(dashboard.bind));
    "dashboard.tls.cert" => Slot::OptPath(field!(dashboard.tls.cert));
    "dashboard.tls.key" => Slot::OptPath(field!(dashboard.tls.key));
    "dashboard.allowed_hosts" => Slot::List(field!(dashboard.allowed_hosts));
    "dashboard.max_live_connections" => Slot::U32(field!(dashboard.max_live_connections));
    "dashboard.session_idle_timeout" => Slot::Duration(field!(dashboard.session_idle_timeout));
    "dashboard.session_max_age" => Slot::Duration(field!(dashboard.session_max_age));
    "mcp.transport" => enum_field!(McpTransport, mcp.transport);
    "mcp.port" => Slot::Port(field!(mcp.port));
    "mcp.bind" => Slot::Ip(field!(mcp.bind));
    "mcp.allowed_hosts" => Slot::List(field!(mcp.allowed_hosts));
    "mcp.allowed_origins" => Slot::List(field!(mcp.allowed_origins));
    "mcp.max_sessions" => Slot::U32(field!(mcp.max_sessions));
    "mcp.request_timeout" => Slot::Duration(field!(mcp.request_timeout));
    "mcp.max_request_bytes" => Slot::Size(field!(mcp.max_request_bytes));
    "mcp.max_response_bytes" => Slot::Size(field!(mcp.max_response_bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_unique_path_and_env_name() {
        let mut paths: Vec<&str> = KEYS.iter().map(|spec| spec.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), KEYS.len());
        let mut names: Vec<String> = KEYS
            .iter()
            .flat_map(|spec| spec.env_names().into_iter().map(|(name, _)| name))
            .collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total, "an environment variable sets two keys");
    }

    #[test]
    fn canonical_and_documented_env_names_are_both_accepted() {
        let gate_port = key("gate.port").unwrap();
        assert_eq!(
            gate_port.env_names(),
            [
                ("AEGIS_GATE_PORT".to_owned(), false),
                ("AEGIS_PORT".to_owned(), true)
            ]
        );
        let home = key("vault.data_dir").unwrap();
        assert_eq!(home.env_names()[0].0, "AEGIS_HOME");
        assert_eq!(home.env_names()[1].0, "AEGIS_VAULT_DATA_DIR");
        assert!(key("gate.allowed_hosts").unwrap().env_names().is_empty());
    }

    #[test]
    fn legacy_keys_point_at_real_keys() {
        for legacy in LEGACY_KEYS {
            for target in legacy.targets {
                assert!(key(target).is_some(), "{target}");
            }
            assert!(key(legacy.path).is_none());
        }
    }

    #[test]
    fn sections_are_the_prefixes_of_keys() {
        for section in [
            "vault",
            "vault.kdf",
            "gate.tls",
            "gate.timeouts",
            "observability.dashboard",
        ] {
            assert!(is_section(section), "{section}");
        }
        assert!(!is_section("gate.port"));
        assert!(!is_section("gat"));
    }

    #[test]
    fn close_misspellings_get_a_suggestion() {
        assert_eq!(suggest("gate.prot").as_deref(), Some("gate.port"));
        assert_eq!(suggest("gate.timeout").as_deref(), Some("gate.timeouts"));
        assert_eq!(
            suggest("ledger.durabilty").as_deref(),
            Some("ledger.durability")
        );
        assert_eq!(suggest("completely.different"), None);
    }
}
