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
#[derive(Clone, Copy)]
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

impl std::fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The target may carry a query string and the token is a secret: neither is shown.
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("has_target_host", &self.target_host.is_some())
            .field("has_agent_token", &self.agent_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Settings of the checks that come from configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckSettings {
    /// Whether a request without an agent token is refused.
    pub require_agent_auth: bool,
}

/// A request that passed the header checks; it becomes a [`Permit`] once the limits and the
/// body inspection passed too.
pub struct Admission {
    credential: usize,
    scheme: Scheme,
    target: TargetHost,
    port: u16,
    path_and_query: String,
    service: String,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("credential", &self.credential)
            .field("target", &self.target.to_string())
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
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

    /// The path and query as they will be forwarded (before any query-auth injection).
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
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

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::auth::AuthType;
    use crate::credential::{Credential, InspectionMode};
    use crate::domain::DomainList;
    use crate::names::{CredentialName, ServiceName, VaultName};
    use crate::scopes::Scopes;
    use crate::snapshot::SnapshotEntry;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    fn credential(name: &str, service: &str, domains: &str) -> Credential {
        Credential {
            id: uuid::Uuid::from_bytes([name.len() as u8; 16]),
            name: CredentialName::parse(name).expect("name"),
            service: ServiceName::parse(service).expect("service"),
            domains: DomainList::parse(domains, false).expect("domains"),
            auth_type: AuthType::Bearer,
            header_name: None,
            query_param: None,
            scopes: Scopes::All,
            expires_at: None,
            rate_limit: None,
            body_inspection: InspectionMode::Block,
            allow_http: false,
            pass_cookies: false,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            rotated_at: None,
            previous_until: None,
        }
    }

    fn snapshot(credentials: Vec<Credential>, sealed: bool) -> Snapshot {
        let entries = credentials
            .into_iter()
            .map(|credential| SnapshotEntry {
                credential,
                secret: SecretString::from("sk-test-secret-value-123"),
                previous: None,
            })
            .collect();
        Snapshot::new(
            1,
            VaultName::parse("default").expect("vault"),
            uuid::Uuid::nil(),
            sealed,
            NOW,
            entries,
        )
    }

    fn head<'a>(method: &'a str, target: &'a str) -> RequestHead<'a> {
        RequestHead {
            method,
            target,
            target_host: None,
            credential: None,
            agent_token: None,
        }
    }

    fn code(result: Result<Admission, Denial>) -> &'static str {
        result.map_or_else(|d| d.code(), |_| "admitted")
    }

    #[test]
    fn expired_credential_is_denied_with_credential_expired() {
        let mut c = credential("gh", "github", "api.github.com");
        c.expires_at = Some(NOW);
        let snap = snapshot(vec![c], false);
        assert_eq!(
            code(admit(
                &snap,
                &head("GET", "/github/user"),
                CheckSettings::default(),
                NOW
            )),
            "credential_expired"
        );
        let earlier = Timestamp::from_millis(NOW.as_millis() - 1);
        assert_eq!(
            code(admit(
                &snap,
                &head("GET", "/github/user"),
                CheckSettings::default(),
                earlier
            )),
            "admitted"
        );
    }

    #[test]
    fn scope_read_refuses_writes() {
        let mut c = credential("gh", "github", "api.github.com");
        c.scopes = Scopes::Read;
        let snap = snapshot(vec![c], false);
        let settings = CheckSettings::default();
        assert_eq!(
            code(admit(&snap, &head("GET", "/github/x"), settings, NOW)),
            "admitted"
        );
        assert_eq!(
            code(admit(&snap, &head("HEAD", "/github/x"), settings, NOW)),
            "admitted"
        );
        assert_eq!(
            code(admit(&snap, &head("DELETE", "/github/x"), settings, NOW)),
            "scope_denied"
        );
    }

    #[test]
    fn credential_selection_follows_the_header_or_needs_a_single_candidate() {
        let snap = snapshot(
            vec![
                credential("a", "svc", "a.example.com"),
                credential("bb", "svc", "b.example.com"),
            ],
            false,
        );
        let settings = CheckSettings::default();
        assert_eq!(
            code(admit(&snap, &head("GET", "/svc/x"), settings, NOW)),
            "credential_ambiguous"
        );
        let mut named = head("GET", "/svc/x");
        named.credential = Some(b"bb");
        let admission = admit(&snap, &named, settings, NOW).expect("admitted");
        assert_eq!(admission.target().to_string(), "b.example.com");
        named.credential = Some(b"nope");
        assert_eq!(
            code(admit(&snap, &named, settings, NOW)),
            "credential_not_granted"
        );
    }

    #[test]
    fn agent_tokens_are_never_downgraded_and_can_be_required() {
        let snap = snapshot(vec![credential("gh", "github", "api.github.com")], false);
        let mut with_token = head("GET", "/github/x");
        with_token.agent_token = Some(b"aegis_unknown");
        assert_eq!(
            code(admit(&snap, &with_token, CheckSettings::default(), NOW)),
            "agent_auth_failed"
        );
        let required = CheckSettings {
            require_agent_auth: true,
        };
        assert_eq!(
            code(admit(&snap, &head("GET", "/github/x"), required, NOW)),
            "agent_auth_required"
        );
    }

    #[test]
    fn wildcard_only_credentials_need_x_target_host() {
        let snap = snapshot(vec![credential("sl", "slack", "*.slack.com")], false);
        let settings = CheckSettings::default();
        assert_eq!(
            code(admit(&snap, &head("GET", "/slack/x"), settings, NOW)),
            "bad_request"
        );
        let mut named = head("GET", "/slack/x");
        named.target_host = Some(b"api.slack.com");
        assert_eq!(code(admit(&snap, &named, settings, NOW)), "admitted");
        named.target_host = Some(b"a.b.slack.com");
        assert_eq!(code(admit(&snap, &named, settings, NOW)), "domain_blocked");
        named.target_host = Some(b"user@api.slack.com");
        assert_eq!(code(admit(&snap, &named, settings, NOW)), "bad_request");
    }

    #[test]
    fn sealed_vaults_and_unknown_services_are_refused_first() {
        let sealed = snapshot(vec![credential("gh", "github", "api.github.com")], true);
        assert_eq!(
            code(admit(
                &sealed,
                &head("GET", "/github/x"),
                CheckSettings::default(),
                NOW
            )),
            "vault_sealed"
        );
        let open = snapshot(vec![credential("gh", "github", "api.github.com")], false);
        assert_eq!(
            code(admit(
                &open,
                &head("GET", "/gitlab/x"),
                CheckSettings::default(),
                NOW
            )),
            "unknown_service"
        );
    }

    #[test]
    fn the_permit_carries_the_checked_target_and_the_byte_exact_path() {
        let snap = snapshot(
            vec![credential(
                "gh",
                "github",
                "api.github.com,uploads.github.com:8443",
            )],
            false,
        );
        let mut h = head("POST", "/github/repos/a%2Fb?x=%20");
        h.target_host = Some(b"UPLOADS.github.com.:8443");
        let permit = admit(&snap, &h, CheckSettings::default(), NOW)
            .expect("admitted")
            .into_permit();
        assert_eq!(permit.target().to_string(), "uploads.github.com:8443");
        assert_eq!(permit.port(), 8443);
        assert_eq!(permit.path_and_query(), "/repos/a%2Fb?x=%20");
        assert!(snap.secrets().reveal(&permit).is_some());
    }
}
