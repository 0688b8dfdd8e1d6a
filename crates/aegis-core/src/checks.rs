//! The ordered header checks of SPEC.md §10.1 (steps 0–6): pure, synchronous, reading only the
//! snapshot, the request head and the time. The order lives in [`admit`] and nowhere else.
//!
//! Rate limits (step 8) need shared mutable state and live in aegis-engine; policies (step 7),
//! agents and grants (steps 2–3 for identified agents) and body inspection (step 9) arrive with
//! their issues.

pub mod origin;
pub mod route;

use crate::denial::Denial;
use crate::domain::{Scheme, TargetHost};
use crate::permit::Permit;
use crate::snapshot::Snapshot;
use crate::timestamp::Timestamp;

/// The parts of a request head the checks look at, borrowed from whatever protocol carried it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The request target (origin-form path and query).
    pub target: &'a str,
    /// `X-Target-Host`, when sent.
    pub target_host: Option<&'a [u8]>,
    /// `X-Aegis-Credential`, when sent.
    pub credential: Option<&'a [u8]>,
    /// `X-Aegis-Agent`, when sent.
    pub agent_token: Option<&'a [u8]>,
}

/// Settings of the checks that come from configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckSettings {
    /// Whether a request without an agent token is refused.
    pub require_agent_auth: bool,
}

/// A request that passed the header checks; it becomes a [`Permit`] once the limits and the
/// body inspection passed too.
#[derive(Debug)]
pub struct Admission {
    credential: usize,
    scheme: Scheme,
    target: TargetHost,
    port: u16,
    path_and_query: String,
    service: String,
}

impl Admission {
    /// Index of the selected credential in the snapshot.
    pub fn credential_index(&self) -> usize {
        self.credential
    }

    /// The service segment of the request.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The checked target host.
    pub fn target(&self) -> &TargetHost {
        &self.target
    }

    /// Turns the admission into a permit. Called by the pipeline after the remaining steps
    /// (limits, inspection) passed.
    pub fn into_permit(self) -> Permit {
        Permit::new(
            self.credential,
            self.scheme,
            self.target,
            self.port,
            self.path_and_query,
        )
    }
}

/// Runs steps 0 (sealed), 1 (route, target host syntax, service known), 2 (agent
/// authentication), 3 (credential selection), 4 (expiry), 5 (scope) and 6 (domain guard).
///
/// # Errors
/// The [`Denial`] of the first step that refuses.
pub fn admit(
    snapshot: &Snapshot,
    head: &RequestHead<'_>,
    settings: CheckSettings,
    now: Timestamp,
) -> Result<Admission, Denial> {
    if snapshot.is_sealed() {
        return Err(Denial::VaultSealed);
    }
    let route = route::parse_route(head.method, head.target)?;
    let requested_target = match head.target_host {
        Some(raw) => Some(parse_target_host(raw)?),
        None => None,
    };
    let candidates = snapshot.candidates(route.service);
    if candidates.is_empty() {
        return Err(Denial::UnknownService {
            service: route.service.to_owned(),
        });
    }
    match head.agent_token {
        // No agent is registered yet (agents arrive with their issue), so any token is unknown:
        // a wrong token is never downgraded to "no token".
        Some(_) => return Err(Denial::AgentAuthFailed),
        None if settings.require_agent_auth => return Err(Denial::AgentAuthRequired),
        None => {}
    }
    let index = select_credential(snapshot, candidates, head.credential, route.service)?;
    let credential = snapshot.credential(index).ok_or(Denial::Internal)?;
    if credential.is_expired(now) {
        return Err(Denial::CredentialExpired {
            service: route.service.to_owned(),
        });
    }
    if !credential.scopes.allows_method(head.method) {
        return Err(Denial::ScopeDenied {
            service: route.service.to_owned(),
            method: head.method.to_owned(),
        });
    }
    let target = match requested_target {
        Some(target) => target,
        None => credential
            .domains
            .first_exact()
            .and_then(|entry| entry.to_target())
            .ok_or_else(|| Denial::bad_request("X-Target-Host is required for this service"))?,
    };
    let entry = credential
        .domains
        .find_match(&target)
        .ok_or_else(|| Denial::DomainBlocked {
            host: target.to_string(),
        })?;
    Ok(Admission {
        credential: index,
        scheme: entry.scheme(),
        port: target.port().unwrap_or_else(|| entry.effective_port()),
        target,
        path_and_query: route.path_and_query(),
        service: route.service.to_owned(),
    })
}

fn parse_target_host(raw: &[u8]) -> Result<TargetHost, Denial> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| Denial::bad_request("X-Target-Host is not valid text"))?;
    TargetHost::parse(text)
        .map_err(|_| Denial::bad_request("X-Target-Host is not a valid host or host:port"))
}

/// Step 3 for anonymous requests: the named credential among the candidates, or the only one.
fn select_credential(
    snapshot: &Snapshot,
    candidates: &[usize],
    named: Option<&[u8]>,
    service: &str,
) -> Result<usize, Denial> {
    if let Some(name) = named {
        return candidates
            .iter()
            .copied()
            .find(|&i| {
                snapshot
                    .credential(i)
                    .is_some_and(|c| c.name.as_str().as_bytes() == name)
            })
            .ok_or_else(|| Denial::CredentialNotGranted {
                service: service.to_owned(),
            });
    }
    match candidates {
        [only] => Ok(*only),
        _ => Err(Denial::CredentialAmbiguous {
            service: service.to_owned(),
        }),
    }
}
