//! `Denial`: why the pipeline refused a request. One enum, mapped in one place per transport to
//! a status and JSON error; its codes (SPEC.md §22.1) are public API.
//!
//! Messages follow SPEC.md §10.3: they may name the service, the agent's own name, the target
//! host the agent sent and the method; never a secret, token, header value, query string, body,
//! or a credential, domain or agent the caller is not entitled to see.

/// A refusal by one of the checks, or a failure of Aegis or the upstream after the decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// Malformed target, path, method or header.
    #[error("{reason}")]
    BadRequest {
        /// What was wrong, e.g. `path contains a dot segment`.
        reason: String,
    },
    /// Request target over 8 KiB.
    #[error("the request target is longer than 8 KiB; shorten the URL")]
    UriTooLong,
    /// Request head over `gate.max_header_bytes`.
    #[error("the request headers are too large")]
    HeadersTooLarge,
    /// Body over the configured limit.
    #[error("the request body is larger than {limit} bytes; raise {setting}")]
    BodyTooLarge {
        /// The limit that applied.
        limit: u64,
        /// The setting that holds it (`gate.max_body_bytes` or `gate.max_inspect_bytes`).
        setting: &'static str,
    },
    /// The agent's body stalled longer than `gate.timeouts.idle_body`.
    #[error("the request body stalled; send it without long pauses")]
    RequestTimeout,
    /// Browser origin or unexpected `Host`.
    #[error("{reason}")]
    OriginDenied {
        /// Which rule refused it.
        reason: String,
    },
    /// No credential for this service.
    #[error("no credential for service '{service}'; see aegis vault list")]
    UnknownService {
        /// The service segment.
        service: String,
    },
    /// Unknown `/_aegis/` path.
    #[error("not found")]
    NotFound,
    /// Agent auth required and no token sent.
    #[error("agent authentication is required; send X-Aegis-Agent")]
    AgentAuthRequired,
    /// Token empty, malformed or unknown.
    #[error("the agent token was not accepted; see aegis agent regenerate")]
    AgentAuthFailed,
    /// No usable credential for this agent and service.
    #[error("no credential of service '{service}' is granted to this agent; see aegis agent grant")]
    CredentialNotGranted {
        /// The service segment.
        service: String,
    },
    /// Several usable credentials and no `X-Aegis-Credential`.
    #[error("several credentials serve '{service}'; send X-Aegis-Credential to pick one")]
    CredentialAmbiguous {
        /// The service segment.
        service: String,
    },
    /// The credential is past its expiry.
    #[error("the credential for '{service}' has expired; renew it with aegis vault rotate --ttl")]
    CredentialExpired {
        /// The service segment.
        service: String,
    },
    /// The method is outside the credential's scopes.
    #[error("method {method} is outside the scopes of the credential for '{service}'")]
    ScopeDenied {
        /// The service segment.
        service: String,
        /// The request method.
        method: String,
    },
    /// The target host is not on the allowlist.
    #[error("host {host} is not allowed for this credential")]
    DomainBlocked {
        /// The target host as the agent sent it (normalised when it parsed).
        host: String,
    },
    /// No policy rule allows the request (or a policy is required and the agent has none).
    #[error("policy denied {method} {service}: {reason}")]
    PolicyDenied {
        /// The service the request was for.
        service: String,
        /// The method of the request.
        method: String,
        /// `no rule in <file> matched` or `no policy file for this agent`.
        reason: String,
    },
    /// A rate limit refused the request.
    #[error("rate limit reached; retry after {retry_after_secs}s")]
    RateLimited {
        /// Seconds until a retry can succeed (≥ 1).
        retry_after_secs: u64,
    },
    /// The agent already has `gate.max_concurrent_per_agent` requests in flight.
    #[error("too many requests in flight for this agent (limit {limit}); retry when one finishes")]
    TooManyConcurrentRequests {
        /// The cap.
        limit: u32,
    },
    /// Inspection found a vault secret or key format (or, in `redact` mode, PII inside an encoded
    /// body, or an unscannable encoding) in the outbound request.
    #[error(
        "request blocked: {detector} found in {location}; remove it or set --body-inspection warn"
    )]
    BodyBlocked {
        /// The detector that fired (`aegis_core::inspect::Detector::name`).
        detector: &'static str,
        /// Where: `path`, `query`, `header:<name>` or `body`.
        location: String,
    },
    /// The vault is sealed.
    #[error("the vault is sealed; run aegis vault unseal")]
    VaultSealed,
    /// The gate is draining.
    #[error("the gate is shutting down; retry later")]
    ShuttingDown,
    /// The ledger could not accept the entry in time.
    #[error("the audit ledger could not record this request in time; check disk and database")]
    LedgerUnavailable,
    /// Could not connect to the upstream.
    #[error("the upstream could not be reached")]
    UpstreamUnreachable,
    /// TLS handshake or certificate verification failed.
    #[error("TLS with the upstream failed; for a private CA set gate.upstream_ca_file")]
    UpstreamTls,
    /// Connect or response-header timeout.
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    /// A bug in Aegis; details are in the log under the request id.
    #[error("internal error; see the gate log for this request id")]
    Internal,
}

/// Whether a denial is a refusal (`blocked`) or a failure (`error`) in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A check refused the request.
    Blocked,
    /// Aegis or the upstream failed.
    Error,
}

impl Denial {
    /// The stable code sent to agents and written to the ledger.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::OriginDenied { .. } => "origin_denied",
            Self::UnknownService { .. } => "unknown_service",
            Self::NotFound => "not_found",
            Self::AgentAuthRequired => "agent_auth_required",
            Self::AgentAuthFailed => "agent_auth_failed",
            Self::CredentialNotGranted { .. } => "credential_not_granted",
            Self::CredentialAmbiguous { .. } => "credential_ambiguous",
            Self::CredentialExpired { .. } => "credential_expired",
            Self::ScopeDenied { .. } => "scope_denied",
            Self::DomainBlocked { .. } => "domain_blocked",
            Self::PolicyDenied { .. } => "policy_denied",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooManyConcurrentRequests { .. } => "too_many_concurrent_requests",
            Self::BodyBlocked { .. } => "body_blocked",
            Self::VaultSealed => "vault_sealed",
            Self::ShuttingDown => "shutting_down",
            Self::LedgerUnavailable => "ledger_unavailable",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTls => "upstream_tls",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Internal => "internal_error",
        }
    }

    /// The HTTP status of SPEC.md §22.1.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::BodyTooLarge { .. } => 413,
            Self::RequestTimeout => 408,
            Self::OriginDenied { .. }
            | Self::CredentialNotGranted { .. }
            | Self::CredentialExpired { .. }
            | Self::ScopeDenied { .. }
            | Self::BodyBlocked { .. }
            | Self::PolicyDenied { .. }
            | Self::DomainBlocked { .. } => 403,
            Self::UnknownService { .. } | Self::NotFound => 404,
            Self::AgentAuthRequired | Self::AgentAuthFailed => 401,
            Self::CredentialAmbiguous { .. } => 409,
            Self::RateLimited { .. } | Self::TooManyConcurrentRequests { .. } => 429,
            Self::VaultSealed | Self::ShuttingDown | Self::LedgerUnavailable => 503,
            Self::UpstreamUnreachable | Self::UpstreamTls => 502,
            Self::UpstreamTimeout => 504,
            Self::Internal => 500,
        }
    }

    /// `blocked` for refusals, `error` for failures (SPEC.md §22.2).
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::UpstreamUnreachable
            | Self::UpstreamTls
            | Self::UpstreamTimeout
            | Self::Internal
            | Self::LedgerUnavailable
            | Self::RequestTimeout
            | Self::ShuttingDown => Outcome::Error,
            _ => Outcome::Blocked,
        }
    }

    /// Seconds for `Retry-After`, for rate-limit denials.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some((*retry_after_secs).max(1)),
            _ => None,
        }
    }

    /// A `bad_request` with the given reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<Denial> {
        vec![
            Denial::bad_request("x"),
            Denial::UriTooLong,
            Denial::HeadersTooLarge,
            Denial::BodyTooLarge {
                limit: 1,
                setting: "gate.max_body_bytes",
            },
            Denial::RequestTimeout,
            Denial::OriginDenied { reason: "x".into() },
            Denial::UnknownService {
                service: "s".into(),
            },
            Denial::NotFound,
            Denial::AgentAuthRequired,
            Denial::AgentAuthFailed,
            Denial::CredentialNotGranted {
                service: "s".into(),
            },
            Denial::CredentialAmbiguous {
                service: "s".into(),
            },
            Denial::CredentialExpired {
                service: "s".into(),
            },
            Denial::ScopeDenied {
                service: "s".into(),
                method: "POST".into(),
            },
            Denial::DomainBlocked { host: "h".into() },
            Denial::PolicyDenied {
                service: "s".into(),
                method: "GET".into(),
                reason: "no rule in a.yaml matched".into(),
            },
            Denial::TooManyConcurrentRequests { limit: 50 },
            Denial::RateLimited {
                retry_after_secs: 0,
            },
            Denial::BodyBlocked {
                detector: "vault_secret",
                location: "body".into(),
            },
            Denial::VaultSealed,
            Denial::ShuttingDown,
            Denial::LedgerUnavailable,
            Denial::UpstreamUnreachable,
            Denial::UpstreamTls,
            Denial::UpstreamTimeout,
            Denial::Internal,
        ]
    }

    #[test]
    fn every_variant_has_a_distinct_snake_case_code_and_a_status() {
        let all = every_variant();
        let mut codes: Vec<&str> = all.iter().map(Denial::code).collect();
        for code in &codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are unique");
        for denial in &all {
            assert!((400..600).contains(&denial.status()), "{denial:?}");
        }
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        assert_eq!(
            Denial::RateLimited {
                retry_after_secs: 0
            }
            .retry_after_secs(),
            Some(1)
        );
        assert_eq!(Denial::NotFound.retry_after_secs(), None);
    }

    #[test]
    fn failures_are_errors_and_refusals_are_blocked() {
        assert_eq!(Denial::UpstreamTimeout.outcome(), Outcome::Error);
        assert_eq!(
            Denial::DomainBlocked { host: "h".into() }.outcome(),
            Outcome::Blocked
        );
    }
}
