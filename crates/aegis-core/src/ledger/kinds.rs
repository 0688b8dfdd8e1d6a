//! The closed vocabularies of a ledger entry (SPEC.md §15.1): entry kind, outcome, system event
//! and the front an entry came through.
//!
//! Each value is written, hashed and exported as its snake_case name; the names are part of the
//! frozen encoding, so a value is never renamed, only added.

use std::fmt;

/// Declares a fieldless enum whose values travel as fixed snake_case names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            const NAMES: &'static [&'static str] = &[$($text,)+];

            /// The snake_case name that is stored, hashed and exported.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Reads a snake_case name back; `None` for any other text.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&text, Self::NAMES))
            }
        }
    };
}

named_enum! {
    /// What an entry records (field 3).
    EntryKind {
        /// A request decision: allowed, blocked, would-block or error.
        Request => "request",
        /// The completion of a request already recorded in strict mode (§15.4).
        RequestEnd => "request_end",
        /// A lifecycle or administrative event.
        System => "system",
    }
}

named_enum! {
    /// The decision recorded by a request entry (field 4).
    Outcome {
        /// Every check passed and the request was forwarded.
        Allowed => "allowed",
        /// A check refused the request.
        Blocked => "blocked",
        /// A dry-run policy would have refused the request; it was forwarded.
        WouldBlock => "would_block",
        /// Aegis or the upstream failed.
        Error => "error",
    }
}

named_enum! {
    /// Which front wrote the entry (field 7).
    Via {
        /// The HTTP gate.
        Gate => "gate",
        /// The MCP server.
        Mcp => "mcp",
        /// An `aegis` command.
        Cli => "cli",
        /// The dashboard's admin API.
        AdminApi => "admin_api",
        /// Aegis itself (lifecycle events).
        System => "system",
    }
}

named_enum! {
    /// The system event a `system` entry records (field 5).
    #[non_exhaustive]
    SystemEvent {
        /// A vault was created.
        VaultCreated => "vault_created",
        /// A vault was destroyed.
        VaultDestroyed => "vault_destroyed",
        /// A vault was re-encrypted under a new master key.
        VaultRekeyed => "vault_rekeyed",
        /// The master key was split into shares.
        VaultSplit => "vault_split",
        /// The vault was sealed.
        VaultSealed => "vault_sealed",
        /// The vault was unsealed.
        VaultUnsealed => "vault_unsealed",
        /// A credential was added.
        CredentialAdded => "credential_added",
        /// A credential's metadata or secret was changed.
        CredentialUpdated => "credential_updated",
        /// A credential's secret was rotated.
        CredentialRotated => "credential_rotated",
        /// A credential was removed.
        CredentialRemoved => "credential_removed",
        /// An agent was added.
        AgentAdded => "agent_added",
        /// An agent was removed.
        AgentRemoved => "agent_removed",
        /// An agent's token was regenerated.
        AgentTokenRegenerated => "agent_token_regenerated",
        /// An agent's rate limit was set or cleared.
        AgentRateLimitSet => "agent_rate_limit_set",
        /// An agent was granted a credential.
        GrantAdded => "grant_added",
        /// A grant was revoked.
        GrantRevoked => "grant_revoked",
        /// A user was added.
        UserAdded => "user_added",
        /// A user was removed.
        UserRemoved => "user_removed",
        /// A user's role changed.
        UserRoleChanged => "user_role_changed",
        /// A user's token was regenerated.
        UserTokenRegenerated => "user_token_regenerated",
        /// A user logged in to the dashboard.
        UserLogin => "user_login",
        /// A dashboard login failed.
        UserLoginFailed => "user_login_failed",
        /// A user was refused an action by RBAC.
        AccessDenied => "access_denied",
        /// A webhook was added.
        WebhookAdded => "webhook_added",
        /// A webhook was removed.
        WebhookRemoved => "webhook_removed",
        /// A webhook delivery gave up.
        WebhookDeliveryFailed => "webhook_delivery_failed",
        /// The gate started.
        GateStarted => "gate_started",
        /// The gate stopped.
        GateStopped => "gate_stopped",
        /// The MCP server started.
        McpStarted => "mcp_started",
        /// The MCP server stopped.
        McpStopped => "mcp_stopped",
        /// A new snapshot was loaded.
        SnapshotReloaded => "snapshot_reloaded",
        /// A new snapshot failed validation and was dropped.
        SnapshotRejected => "snapshot_rejected",
        /// Configuration changed.
        ConfigChanged => "config_changed",
        /// A policy file was written.
        PolicyWritten => "policy_written",
        /// Ledger entries were exported.
        LedgerExported => "ledger_exported",
        /// A prefix of the ledger was archived to a bundle and deleted.
        LedgerArchived => "ledger_archived",
    }
}
