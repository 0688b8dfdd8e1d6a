//! The closed sets of words some configuration keys take (`policy_mode: dry-run`).
//!
//! Each enum knows its spellings, parses them case-insensitively and prints the canonical one.
//! Which key takes which enum is the section types' business, not this module's.

use std::fmt;

/// A configuration value that is one word out of a fixed list.
pub trait ConfigEnum: Sized + Copy + 'static {
    /// Every variant, in the order they are listed to the user.
    const VARIANTS: &'static [Self];

    /// The spelling written in the config file and printed by `config show`.
    fn as_str(self) -> &'static str;

    /// Parses one of the spellings of [`Self::as_str`], ignoring ASCII case.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        Self::VARIANTS
            .iter()
            .copied()
            .find(|variant| variant.as_str().eq_ignore_ascii_case(text))
    }

    /// The accepted spellings as a phrase for error messages (`enforce, dry-run or off`).
    fn expected() -> String {
        let names: Vec<&str> = Self::VARIANTS.iter().map(|v| v.as_str()).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

macro_rules! config_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl ConfigEnum for $name {
            const VARIANTS: &'static [Self] = &[$(Self::$variant),+];

            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

config_enum! {
    /// What the policy engine does with its verdicts (`gate.policy_mode`).
    PolicyMode {
        /// Denials are applied.
        Enforce => "enforce",
        /// Verdicts are computed and recorded, but never block.
        DryRun => "dry-run",
        /// Legacy (§27): policies are not evaluated at all; the gate warns at start.
        Off => "off",
    }
}

impl Default for PolicyMode {
    /// SPEC §5: `enforce`.
    fn default() -> Self {
        Self::Enforce
    }
}

config_enum! {
    /// When ledger batches are flushed to disk (`ledger.durability`).
    Durability {
        /// Entries are grouped into batches committed together.
        Batch => "batch",
        /// Every entry is committed before the request proceeds.
        Strict => "strict",
    }
}

config_enum! {
    /// Where rate-limit counters live (`rate_limit.backend`).
    RateLimitBackend {
        /// In this process's memory.
        Memory => "memory",
        /// In Redis, shared by every instance.
        Redis => "redis",
    }
}

config_enum! {
    /// What happens when the rate-limit backend fails (`rate_limit.on_backend_error`).
    OnBackendError {
        /// Refuse the request with `rate_limit_unavailable`.
        Deny => "deny",
        /// Fall back to in-memory limits.
        Local => "local",
    }
}

config_enum! {
    /// The most verbose log level written (`observability.log_level`).
    LogLevel {
        /// Everything.
        Trace => "trace",
        /// Debugging detail.
        Debug => "debug",
        /// Normal operation.
        Info => "info",
        /// Failures that were handled.
        Warn => "warn",
        /// Broken components only.
        Error => "error",
    }
}

config_enum! {
    /// How log lines are formatted (`observability.log_format`).
    LogFormat {
        /// One JSON object per line.
        Json => "json",
        /// Human-readable lines.
        Pretty => "pretty",
        /// Pretty on a terminal, JSON otherwise.
        Auto => "auto",
    }
}

config_enum! {
    /// How `aegis mcp serve` talks to its host (`mcp.transport`).
    McpTransport {
        /// JSON-RPC over standard input and output.
        Stdio => "stdio",
        /// The streamable HTTP transport on `mcp.bind:mcp.port`.
        StreamableHttp => "streamable-http",
    }
}

config_enum! {
    /// What `block`/`redact` inspection does with bodies above `gate.max_inspect_bytes`.
    OversizeInspection {
        /// Refuse the request.
        Reject => "reject",
        /// Forward the body uninspected.
        Pass => "pass",
    }
}

config_enum! {
    /// An event a configured webhook can subscribe to (§18.1).
    WebhookEvent {
        /// A request ended `blocked`.
        BlockedRequest => "blocked_request",
        /// A credential is about to expire or has expired.
        CredentialExpiry => "credential_expiry",
        /// A request was refused with `rate_limited`.
        RateLimitExceeded => "rate_limit_exceeded",
        /// Agent authentication was missing or invalid.
        AgentAuthFailure => "agent_auth_failure",
        /// Body inspection found something.
        BodyInspection => "body_inspection",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn spellings_parse_in_any_case() {
        assert_eq!(PolicyMode::parse("DRY-RUN"), Some(PolicyMode::DryRun));
        assert_eq!(
            McpTransport::parse("streamable-http"),
            Some(McpTransport::StreamableHttp)
        );
        assert_eq!(LogLevel::parse(" warn "), Some(LogLevel::Warn));
        assert_eq!(PolicyMode::parse("dry_run"), None);
    }

    #[test]
    fn expected_lists_every_spelling() {
        assert_eq!(PolicyMode::expected(), "enforce, dry-run or off");
        assert_eq!(Durability::expected(), "batch or strict");
    }

    proptest! {
        #[test]
        fn every_variant_round_trips(index in 0usize..5) {
            let level = LogLevel::VARIANTS[index];
            prop_assert_eq!(LogLevel::parse(level.as_str()), Some(level));
            prop_assert_eq!(LogLevel::parse(&level.as_str().to_uppercase()), Some(level));
        }
    }
}
