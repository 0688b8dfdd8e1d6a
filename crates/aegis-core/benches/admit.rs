//! Criterion benchmarks for the header checks of the request path: `checks::admit` against a
//! snapshot of 1,000 credentials, and building that snapshot (which compiles the
//! echo-redaction automaton over every secret). Run with
//! `cargo bench -p aegis-core --bench admit`.
//!
//! The target is under 2 µs per admission decision with 1,000 credentials and 1,000 agents:
//! agent `agent-NNNN` holds a grant on `svc-NNNN`, and the `agent_*` cases authenticate one.
//! The `admit_with_policies` group reruns the agent cases with policy files loaded for 101
//! agents, 100 rules each, all for the agent's own service (every rule two path patterns, every
//! other one a time window in Europe/Berlin), so an allow by the last rule and a default deny
//! both try all 100 rules: the worst case of the policy step.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;

use aegis_core::agent::{Agent, TokenDigest};
use aegis_core::auth::AuthType;
use aegis_core::checks::{self, CheckSettings, PolicyVerdict, RequestHead};
use aegis_core::credential::{Credential, InspectionMode};
use aegis_core::domain::DomainList;
use aegis_core::names::{AgentName, CredentialName, ServiceName, VaultName};
use aegis_core::policy::PolicySet;
use aegis_core::scopes::Scopes;
use aegis_core::snapshot::{Snapshot, SnapshotAgent, SnapshotEntry};
use aegis_core::timestamp::Timestamp;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use secrecy::SecretString;

/// How many credentials the benchmark snapshot holds.
const CREDENTIALS: usize = 1_000;
/// Length of each generated secret in bytes.
const SECRET_LEN: usize = 40;
/// A fixed "now" (2025-06-15), well before any expiry.
const NOW_MILLIS: i64 = 1_750_000_000_000;

fn admit(c: &mut Criterion) {
    let snapshot = build_snapshot();
    let now = Timestamp::from_millis(NOW_MILLIS);
    let settings = CheckSettings::default();
    // A service in the middle of the vault; the lookup is a hash map, so position is immaterial.
    let allowed_target = "/svc-0500/v1/chat/completions?stream=false";
    let token = agent_token(500);
    let mut as_agent = head("POST", allowed_target, None);
    as_agent.agent_token = Some(token.as_bytes());
    let mut not_granted = head("POST", "/svc-0501/v1/chat/completions", None);
    not_granted.agent_token = Some(token.as_bytes());
    let cases: [(&str, RequestHead<'_>, bool); 6] = [
        ("agent_allowed_default_host", as_agent, true),
        ("agent_denied_credential_not_granted", not_granted, false),
        (
            "allowed_x_target_host",
            head("POST", allowed_target, Some(b"eu.svc-0500.example.net")),
            true,
        ),
        (
            "allowed_default_host",
            head("POST", allowed_target, None),
            true,
        ),
        (
            "denied_domain_blocked",
            head("POST", allowed_target, Some(b"attacker.example.org")),
            false,
        ),
        (
            "denied_unknown_service",
            head("GET", "/no-such-service/v1/models", None),
            false,
        ),
    ];
    let mut group = c.benchmark_group("admit_1000_credentials");
    for (name, request, allowed) in &cases {
        // Check each case decides as labelled before timing it.
        let decision = checks::admit(&snapshot, request, settings, now);
        match (allowed, &decision) {
            (true, Ok(_)) => {}
            (false, Err(refusal)) => assert!(
                matches!(
                    refusal.denial.code(),
                    "domain_blocked" | "unknown_service" | "credential_not_granted"
                ),
                "{name}: unexpected denial {}",
                refusal.denial.code()
            ),
            _ => panic!("{name}: unexpected decision {decision:?}"),
        }
        group.bench_function(*name, |b| {
            b.iter(|| checks::admit(black_box(&snapshot), black_box(request), settings, now))
        });
    }
    group.finish();

    let snapshot = build_snapshot().with_policies(std::sync::Arc::new(
        PolicySet::compile(&policy_sources()).expect("bench policies compile"),
    ));
    let mut denied = head("POST", "/svc-0500/v2/not/allowed", None);
    denied.agent_token = Some(token.as_bytes());
    let policy_cases = [
        ("agent_allowed_by_rule_100_of_100", as_agent, None),
        (
            "agent_policy_denied_after_100_rules",
            denied,
            Some("policy_denied"),
        ),
        (
            "agent_denied_credential_not_granted",
            not_granted,
            Some("credential_not_granted"),
        ),
    ];
    let mut group = c.benchmark_group("admit_with_policies");
    for (name, request, denial) in &policy_cases {
        let decision = checks::admit(&snapshot, request, settings, now);
        match (denial, &decision) {
            (None, Ok(admission)) => assert!(
                matches!(admission.policy(), PolicyVerdict::Allowed(rule) if rule.name == "r-099"),
                "{name}: {:?}",
                admission.policy()
            ),
            (Some(code), Err(refusal)) => assert_eq!(refusal.denial.code(), *code, "{name}"),
            _ => panic!("{name}: unexpected decision {decision:?}"),
        }
        group.bench_function(*name, |b| {
            b.iter(|| checks::admit(black_box(&snapshot), black_box(request), settings, now))
        });
    }
    group.finish();
}

/// Policy files for agents `agent-0000`..`agent-0099` and `agent-0500`: 100 POST rules each for
/// the agent's own service, rule `r-099` the only one that allows `/v1/chat/completions`.
fn policy_sources() -> Vec<(String, String)> {
    (0..100)
        .chain([500])
        .map(|i| {
            let mut text = format!("agent: agent-{i:04}\nrules:\n");
            for k in 0..100 {
                let path = if k == 99 {
                    "/v1/chat/completions".to_owned()
                } else {
                    format!("/v1/items/{k}/[a-z]+")
                };
                let _ = write!(
                    text,
                    "  - name: r-{k:03}\n    service: svc-{i:04}\n    methods: [POST]\n    paths: [\"{path}\", \"/v1/other/{k}\"]\n"
                );
                if k % 2 == 0 {
                    text.push_str(
                        "    time_window: { start: \"00:00\", end: \"23:59\", timezone: Europe/Berlin }\n",
                    );
                }
            }
            (format!("agent-{i:04}.yaml"), text)
        })
        .collect()
}

fn snapshot_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_new");
    group.sample_size(10);
    group.bench_function("1000_credentials_with_redaction_automaton", |b| {
        b.iter_batched(
            entries,
            |entries| {
                Snapshot::new(
                    1,
                    VaultName::parse("bench").expect("valid vault name"),
                    uuid::Uuid::from_u128(1),
                    false,
                    Timestamp::from_millis(NOW_MILLIS),
                    entries,
                )
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A request head without agent token or credential selector.
fn head<'a>(method: &'a str, target: &'a str, target_host: Option<&'a [u8]>) -> RequestHead<'a> {
    RequestHead {
        method,
        target,
        target_host,
        credential: None,
        agent_token: None,
    }
}

fn build_snapshot() -> Snapshot {
    Snapshot::new(
        1,
        VaultName::parse("bench").expect("valid vault name"),
        uuid::Uuid::from_u128(1),
        false,
        Timestamp::from_millis(NOW_MILLIS),
        entries(),
    )
    .with_agents(agents())
}

/// The fixed token of agent `i` (well-formed: `aegis_` and 43 base64url characters).
fn agent_token(i: usize) -> String {
    format!("aegis_{i:043}")
}

/// 1,000 agents, agent `i` granted credential `svc-i`.
fn agents() -> Vec<SnapshotAgent> {
    (0..CREDENTIALS)
        .map(|i| SnapshotAgent {
            agent: Agent {
                id: uuid::Uuid::from_u128(0x10_0000 + i as u128),
                name: AgentName::parse(&format!("agent-{i:04}")).expect("valid agent name"),
                token_digest: TokenDigest::of(agent_token(i).as_bytes()),
                rate_limit: None,
                created_at: Timestamp::from_millis(NOW_MILLIS),
                token_created_at: Timestamp::from_millis(NOW_MILLIS),
            },
            grants: vec![uuid::Uuid::from_u128(0x1000 + i as u128)],
        })
        .collect()
}

/// 1,000 bearer credentials `svc-0000`..`svc-0999`, each allowed on `api.svc-NNNN.example.com`
/// and `*.svc-NNNN.example.net`, each with a distinct pseudo-random 40-byte secret.
fn entries() -> Vec<SnapshotEntry> {
    let created = Timestamp::from_millis(NOW_MILLIS - 86_400_000);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    (0..CREDENTIALS)
        .map(|i| {
            let service = format!("svc-{i:04}");
            let domains = format!("api.{service}.example.com,*.{service}.example.net");
            let credential = Credential {
                id: uuid::Uuid::from_u128(0x1000 + i as u128),
                name: CredentialName::parse(&service).expect("valid credential name"),
                service: ServiceName::parse(&service).expect("valid service name"),
                domains: DomainList::parse(&domains, false).expect("valid domain list"),
                auth_type: AuthType::Bearer,
                header_name: None,
                query_param: None,
                scopes: Scopes::All,
                expires_at: Some(Timestamp::from_millis(NOW_MILLIS + 86_400_000)),
                rate_limit: None,
                body_inspection: InspectionMode::Block,
                allow_http: false,
                pass_cookies: false,
                created_at: created,
                updated_at: created,
                rotated_at: None,
                previous_until: None,
            };
            SnapshotEntry {
                credential,
                secret: SecretString::from(secret(&mut seed)),
                previous: None,
            }
        })
        .collect()
}

/// `sk-` followed by pseudo-random alphanumerics (splitmix64), `SECRET_LEN` bytes in all.
fn secret(seed: &mut u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::from("sk-");
    while out.len() < SECRET_LEN {
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let index = usize::try_from(z % ALPHABET.len() as u64).expect("index below 62");
        out.push(char::from(ALPHABET[index]));
    }
    out
}

criterion_group!(benches, admit, snapshot_build);
criterion_main!(benches);
