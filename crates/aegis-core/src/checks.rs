//! The ordered header checks of SPEC.md §10.1 (steps 0–6): pure, synchronous, reading only the
//! snapshot, the request head and the time. The order lives in [`admit`] and nowhere else.
//!
//! Step 7 (policy) runs here too, after the domain guard; in dry-run its refusal is carried in
//! the [`Admission`] instead of ending the request. Rate limits (step 8) need shared mutable
//! state and live in aegis-engine, and so does body inspection (step 9).

pub mod agent;
pub mod grant;
pub mod origin;
pub mod route;

use crate::checks::agent::Caller;
use crate::config::PolicyMode;
use crate::denial::Denial;
use crate::domain::{Scheme, TargetHost};
use crate::permit::Permit;
use crate::policy::Decision;
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
    /// Whether policies are enforced, only recorded (`dry-run`) or not evaluated (`off`).
    pub policy_mode: PolicyMode,
    /// Whether an identified agent without a policy file is refused (`gate.require_policy`).
    pub require_policy: bool,
}

/// The policy rule that allowed a request: what step 8 and the ledger need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowingRule {
    /// The rule's name (`<file>#<position>` when it has none).
    pub name: String,
    /// The rule's digest, for its limiter key `rule:<agent id>:<digest>`.
    pub digest: [u8; 32],
    /// The rule's rate limit, if any.
    pub rate_limit: Option<crate::rate::Rate>,
}

/// What step 7 decided for an admitted request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PolicyVerdict {
    /// No policy applies: an anonymous request, an agent without a policy file, or `off`.
    #[default]
    NotApplied,
    /// A rule allowed the request.
    Allowed(AllowingRule),
    /// Dry-run: the policy would have refused with this denial; the request goes on.
    WouldBlock(Denial),
}

/// A request that passed the header checks; it becomes a [`Permit`] once the limits and the
/// body inspection passed too.
pub struct Admission {
    credential: usize,
    agent: Option<usize>,
    scheme: Scheme,
    target: TargetHost,
    port: u16,
    path_and_query: String,
    service: String,
    policy: PolicyVerdict,
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

/// A refused request: the denial, and the agent when step 2 had already identified it (so the
/// ledger entry can name the agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why the request was refused.
    pub denial: Denial,
    /// Index in the snapshot of the authenticated agent, if authentication had passed.
    pub agent: Option<usize>,
}

impl From<Denial> for Refusal {
    fn from(denial: Denial) -> Self {
        Self {
            denial,
            agent: None,
        }
    }
}

impl From<Refusal> for Denial {
    fn from(refusal: Refusal) -> Self {
        refusal.denial
    }
}

impl Admission {
    /// Index of the authenticated agent in the snapshot; `None` for an anonymous request.
    pub fn agent_index(&self) -> Option<usize> {
        self.agent
    }

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

    /// What the policy step decided.
    pub fn policy(&self) -> &PolicyVerdict {
        &self.policy
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
/// authentication), 3 (credential selection and grant), 4 (expiry), 5 (scope), 6 (domain
/// guard) and 7 (policy), in that order.
///
/// # Errors
/// A [`Refusal`] carrying the [`Denial`] of the first step that refuses and, for steps after
/// 2, the authenticated agent.
pub fn admit(
    snapshot: &Snapshot,
    head: &RequestHead<'_>,
    settings: CheckSettings,
    now: Timestamp,
) -> Result<Admission, Refusal> {
    if snapshot.is_sealed() {
        return Err(Denial::VaultSealed.into());
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
        }
        .into());
    }
    let caller = agent::authenticate(snapshot, head.agent_token, settings.require_agent_auth)?;
    let agent = match caller {
        Caller::Anonymous => None,
        Caller::Agent(index) => Some(index),
    };
    let refuse = |denial: Denial| Refusal { denial, agent };
    let index =
        grant::select_credential(snapshot, candidates, head.credential, route.service, caller)
            .map_err(refuse)?;
    let credential = snapshot
        .credential(index)
        .ok_or_else(|| refuse(Denial::Internal))?;
    if credential.is_expired(now) {
        return Err(refuse(Denial::CredentialExpired {
            service: route.service.to_owned(),
        }));
    }
    if !credential.scopes.allows_method(head.method) {
        return Err(refuse(Denial::ScopeDenied {
            service: route.service.to_owned(),
            method: head.method.to_owned(),
        }));
    }
    let target = match requested_target {
        Some(target) => target,
        None => credential
            .domains
            .first_exact()
            .and_then(|entry| entry.to_target())
            .ok_or_else(|| {
                refuse(Denial::bad_request(
                    "X-Target-Host is required for this service",
                ))
            })?,
    };
    let entry = credential.domains.find_match(&target).ok_or_else(|| {
        refuse(Denial::DomainBlocked {
            host: target.to_string(),
        })
    })?;
    let policy = match agent.and_then(|i| snapshot.agent(i)) {
        Some(identified) if settings.policy_mode != PolicyMode::Off => {
            let name = identified.agent().name.as_str();
            match policy_step(snapshot, settings, name, &route, head.method, now) {
                Ok(verdict) => verdict,
                Err(denial) if settings.policy_mode == PolicyMode::DryRun => {
                    PolicyVerdict::WouldBlock(denial)
                }
                Err(denial) => return Err(refuse(denial)),
            }
        }
        _ => PolicyVerdict::NotApplied,
    };
    Ok(Admission {
        credential: index,
        agent,
        scheme: entry.scheme(),
        port: target.port().unwrap_or_else(|| entry.effective_port()),
        target,
        path_and_query: route.path_and_query(),
        service: route.service.to_owned(),
        policy,
    })
}

/// Step 7 for an identified agent (SPEC.md §13.2): the first matching rule allows; no match,
/// or no policy file while `gate.require_policy` is on, refuses with `policy_denied`.
fn policy_step(
    snapshot: &Snapshot,
    settings: CheckSettings,
    agent: &str,
    route: &route::Route<'_>,
    method: &str,
    now: Timestamp,
) -> Result<PolicyVerdict, Denial> {
    let denied = |reason: String| Denial::PolicyDenied {
        service: route.service.to_owned(),
        method: method.to_owned(),
        reason,
    };
    let policies = snapshot.policies();
    match policies.evaluate(agent, route.service, method, route.path.as_bytes(), now) {
        Decision::Allow(rule) => Ok(PolicyVerdict::Allowed(AllowingRule {
            name: rule.name().to_owned(),
            digest: *rule.digest().as_bytes(),
            rate_limit: rule.rate_limit(),
        })),
        Decision::Deny(policy) => Err(denied(format!("no rule in {} matched", policy.file()))),
        Decision::NoPolicy if settings.require_policy => Err(denied(
            "gate.require_policy is on and this agent has no policy file".to_owned(),
        )),
        Decision::NoPolicy => Ok(PolicyVerdict::NotApplied),
    }
}

fn parse_target_host(raw: &[u8]) -> Result<TargetHost, Denial> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| Denial::bad_request("X-Target-Host is not valid text"))?;
    TargetHost::parse(text)
        .map_err(|_| Denial::bad_request("X-Target-Host is not a valid host or host:port"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use secrecy::SecretString;

    use super::*;
    use crate::agent::{Agent, AgentToken, TokenDigest};
    use crate::auth::AuthType;
    use crate::credential::{Credential, InspectionMode};
    use crate::domain::DomainList;
    use crate::names::{AgentName, CredentialName, ServiceName, VaultName};
    use crate::scopes::Scopes;
    use crate::snapshot::{SnapshotAgent, SnapshotEntry};

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

    fn code(result: Result<Admission, Refusal>) -> &'static str {
        result.map_or_else(|r| r.denial.code(), |_| "admitted")
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
            ..CheckSettings::default()
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

    /// A fixed, well-formed token for the table tests.
    const TOKEN: &[u8; 49] = b"aegis_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    /// Agent `bot` holding `TOKEN`, granted the credentials named in `grants`.
    fn with_bot(snap: Snapshot, grants: &[&str]) -> Snapshot {
        let ids = snap
            .credentials()
            .iter()
            .filter(|c| grants.contains(&c.name.as_str()))
            .map(|c| c.id)
            .collect();
        let agent = Agent {
            id: uuid::Uuid::from_bytes([7; 16]),
            name: AgentName::parse("bot").expect("name"),
            token_digest: TokenDigest::of(TOKEN),
            rate_limit: None,
            created_at: NOW,
            token_created_at: NOW,
        };
        snap.with_agents(vec![SnapshotAgent { agent, grants: ids }])
    }

    fn as_bot<'a>(target: &'a str) -> RequestHead<'a> {
        let mut h = head("GET", target);
        h.agent_token = Some(TOKEN);
        h
    }

    const REQUIRED: CheckSettings = CheckSettings {
        require_agent_auth: true,
        policy_mode: PolicyMode::Enforce,
        require_policy: false,
    };

    #[test]
    fn agent_auth_table_follows_spec_11_3() {
        let snap = with_bot(
            snapshot(vec![credential("gh", "github", "api.github.com")], false),
            &["gh"],
        );
        let open = CheckSettings::default();
        let wrong = b"aegis_BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let cases: [(Option<&[u8]>, CheckSettings, &str); 10] = [
            (None, REQUIRED, "agent_auth_required"),
            (None, open, "admitted"),
            (Some(TOKEN), REQUIRED, "admitted"),
            (Some(TOKEN), open, "admitted"),
            (Some(b""), REQUIRED, "agent_auth_failed"),
            (Some(b""), open, "agent_auth_failed"),
            (Some(b"not-a-token"), REQUIRED, "agent_auth_failed"),
            (Some(b"not-a-token"), open, "agent_auth_failed"),
            (Some(wrong), REQUIRED, "agent_auth_failed"),
            (Some(wrong), open, "agent_auth_failed"),
        ];
        for (token, settings, expected) in cases {
            let mut h = head("GET", "/github/x");
            h.agent_token = token;
            assert_eq!(code(admit(&snap, &h, settings, NOW)), expected, "{token:?}");
        }
    }

    #[test]
    fn an_agent_without_a_grant_is_refused_with_credential_not_granted() {
        let snap = with_bot(
            snapshot(vec![credential("gh", "github", "api.github.com")], false),
            &[],
        );
        let refusal = admit(&snap, &as_bot("/github/x"), REQUIRED, NOW).expect_err("refused");
        assert_eq!(refusal.denial.code(), "credential_not_granted");
        assert_eq!(refusal.agent, Some(0), "the refusal names the agent");
        // Anonymous requests are not limited to grants when auth is not required.
        assert_eq!(
            code(admit(
                &snap,
                &head("GET", "/github/x"),
                CheckSettings::default(),
                NOW
            )),
            "admitted"
        );
    }

    #[test]
    fn an_identified_agent_only_reaches_and_names_its_grants() {
        let snap = with_bot(
            snapshot(
                vec![
                    credential("a", "svc", "a.example.com"),
                    credential("bb", "svc", "b.example.com"),
                    credential("ccc", "svc", "c.example.com"),
                ],
                false,
            ),
            &["bb", "ccc"],
        );
        let settings = CheckSettings::default();
        assert_eq!(
            code(admit(&snap, &as_bot("/svc/x"), settings, NOW)),
            "credential_ambiguous"
        );
        let mut named = as_bot("/svc/x");
        named.credential = Some(b"ccc");
        let admission = admit(&snap, &named, settings, NOW).expect("admitted");
        assert_eq!(admission.target().to_string(), "c.example.com");
        assert_eq!(admission.agent_index(), Some(0));
        for not_granted in [&b"a"[..], b"nope", b""] {
            named.credential = Some(not_granted);
            assert_eq!(
                code(admit(&snap, &named, settings, NOW)),
                "credential_not_granted"
            );
        }
        let single = with_bot(
            snapshot(
                vec![
                    credential("a", "svc", "a.example.com"),
                    credential("bb", "svc", "b.example.com"),
                ],
                false,
            ),
            &["bb"],
        );
        let admission = admit(&single, &as_bot("/svc/x"), settings, NOW).expect("admitted");
        assert_eq!(admission.target().to_string(), "b.example.com");
    }

    #[test]
    fn refusals_before_authentication_name_no_agent() {
        let snap = with_bot(
            snapshot(vec![credential("gh", "github", "api.github.com")], false),
            &["gh"],
        );
        let refusal = admit(&snap, &as_bot("/gitlab/x"), REQUIRED, NOW).expect_err("refused");
        assert_eq!(refusal.denial.code(), "unknown_service");
        assert_eq!(refusal.agent, None);
        let mut h = as_bot("/github/x");
        h.target_host = Some(b"evil.example");
        let refusal = admit(&snap, &h, REQUIRED, NOW).expect_err("refused");
        assert_eq!(refusal.denial.code(), "domain_blocked");
        assert_eq!(refusal.agent, Some(0));
    }

    #[test]
    fn a_generated_token_authenticates_and_its_digest_is_what_is_indexed() {
        let token = AgentToken::generate().expect("random");
        let agent = Agent {
            id: uuid::Uuid::from_bytes([3; 16]),
            name: AgentName::parse("gen").expect("name"),
            token_digest: token.digest(),
            rate_limit: None,
            created_at: NOW,
            token_created_at: NOW,
        };
        let snap = snapshot(vec![credential("gh", "github", "api.github.com")], false);
        let id = snap.credentials()[0].id;
        let snap = snap.with_agents(vec![SnapshotAgent {
            agent,
            grants: vec![id],
        }]);
        let mut h = head("GET", "/github/x");
        h.agent_token = Some(token.reveal_once().as_bytes());
        assert_eq!(code(admit(&snap, &h, REQUIRED, NOW)), "admitted");
    }

    proptest! {
        #[test]
        fn a_token_differing_in_any_byte_is_refused(
            position in 0usize..49,
            flip in 1u8..=255,
            required in any::<bool>(),
        ) {
            let snap = with_bot(
                snapshot(vec![credential("gh", "github", "api.github.com")], false),
                &["gh"],
            );
            let mut altered = *TOKEN;
            altered[position] ^= flip;
            let mut h = head("GET", "/github/x");
            h.agent_token = Some(&altered);
            let settings = CheckSettings {
                require_agent_auth: required,
                ..CheckSettings::default()
            };
            prop_assert_eq!(code(admit(&snap, &h, settings, NOW)), "agent_auth_failed");
        }

        #[test]
        fn truncated_or_extended_tokens_are_refused(cut in 0usize..49, extra in any::<u8>()) {
            let snap = with_bot(
                snapshot(vec![credential("gh", "github", "api.github.com")], false),
                &["gh"],
            );
            let mut h = head("GET", "/github/x");
            h.agent_token = Some(&TOKEN[..cut]);
            prop_assert_eq!(
                code(admit(&snap, &h, CheckSettings::default(), NOW)),
                "agent_auth_failed"
            );
            let mut longer = TOKEN.to_vec();
            longer.push(extra);
            h.agent_token = Some(&longer);
            prop_assert_eq!(
                code(admit(&snap, &h, CheckSettings::default(), NOW)),
                "agent_auth_failed"
            );
        }
    }
}
