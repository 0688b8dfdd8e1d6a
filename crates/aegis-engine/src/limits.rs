//! Step 8 of the pipeline: in-memory rate limits (SPEC.md §12) — at most N admitted requests in
//! any window of the limit's period, with bounded state per key — and the per-agent cap on
//! requests in flight. Admission is all-or-nothing across the limiters that apply, so a refused
//! request consumes no quota anywhere.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use aegis_core::denial::Denial;
use aegis_core::rate::Rate;
use aegis_core::rate_window::{RetryAfterMs, Window};
use aegis_core::snapshot::Snapshot;

/// What a window counts: the limiter keys of SPEC.md §12.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// `cred:<credential id>`, shared by every agent using the credential.
    Credential(uuid::Uuid),
    /// `agent:<agent id>`, across all credentials.
    Agent(uuid::Uuid),
    /// `rule:<agent id>:<rule digest>`, per agent and policy rule.
    Rule(uuid::Uuid, [u8; 32]),
}

impl LimitKey {
    /// The limiter kind as metrics and webhooks name it: `credential`, `agent` or `policy`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Credential(_) => "credential",
            Self::Agent(_) => "agent",
            Self::Rule(..) => "policy",
        }
    }
}

/// One limit that applies to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Whose window.
    pub key: LimitKey,
    /// How many in which period.
    pub rate: Rate,
}

/// The refusal of [`Limits::admit`]: the longest wait, and which limiter imposed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The limiter with the longest wait.
    pub key: LimitKey,
    /// That wait.
    pub retry: RetryAfterMs,
}

impl From<Refused> for Denial {
    fn from(refused: Refused) -> Self {
        Denial::RateLimited {
            retry_after_secs: refused.retry.as_secs_rounded_up(),
        }
    }
}

/// Rate-limit windows keyed by limiter key and rate (an edited limit starts fresh), and the
/// in-flight counts of identified agents.
#[derive(Debug)]
pub struct Limits {
    windows: Mutex<HashMap<Limit, Window>>,
    /// Generation of the snapshot the windows were last pruned against.
    pruned_at: AtomicI64,
    in_flight: Arc<Mutex<HashMap<uuid::Uuid, u32>>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            pruned_at: AtomicI64::new(i64::MIN),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl Limits {
    /// Admits one request at `now_ms` under every limit in `limits`, or under none.
    ///
    /// # Errors
    /// [`Refused`] with the longest wait among the refusing limiters (nothing is counted then);
    /// [`Denial::Internal`] if the limiter state was poisoned by a panic.
    pub fn admit(&self, limits: &[Limit], now_ms: u64) -> Result<Result<(), Refused>, Denial> {
        if limits.is_empty() {
            return Ok(Ok(()));
        }
        let mut windows = self.windows.lock().map_err(|_| Denial::Internal)?;
        let mut longest: Option<Refused> = None;
        for limit in limits {
            let verdict = match windows.get(limit) {
                Some(window) => window.check(now_ms),
                None => Window::from_rate(limit.rate).check(now_ms),
            };
            if let Err(retry) = verdict
                && longest.is_none_or(|l| retry > l.retry)
            {
                longest = Some(Refused {
                    key: limit.key,
                    retry,
                });
            }
        }
        if let Some(refused) = longest {
            return Ok(Err(refused));
        }
        for limit in limits {
            windows
                .entry(*limit)
                .or_insert_with(|| Window::from_rate(limit.rate))
                .record(now_ms);
        }
        Ok(Ok(()))
    }

    /// Admits one request for `credential` under `rate` at `now_ms`, or says when to retry.
    ///
    /// # Errors
    /// [`Denial::RateLimited`] with the seconds until the oldest counted sub-bucket leaves the
    /// window; [`Denial::Internal`] if the limiter state was poisoned by a panic.
    pub fn admit_credential(
        &self,
        credential: uuid::Uuid,
        rate: Rate,
        now_ms: u64,
    ) -> Result<(), Denial> {
        let limit = Limit {
            key: LimitKey::Credential(credential),
            rate,
        };
        self.admit(&[limit], now_ms)?.map_err(Denial::from)
    }

    /// Counts one more request in flight for `agent`, unless it already has `cap` (0 = no cap).
    /// The returned guard counts it down when dropped.
    ///
    /// # Errors
    /// [`Denial::TooManyConcurrentRequests`] at the cap; [`Denial::Internal`] if poisoned.
    pub fn enter(&self, agent: uuid::Uuid, cap: u32) -> Result<InFlight, Denial> {
        let mut counts = self.in_flight.lock().map_err(|_| Denial::Internal)?;
        let count = counts.entry(agent).or_insert(0);
        if cap > 0 && *count >= cap {
            return Err(Denial::TooManyConcurrentRequests { limit: cap });
        }
        *count += 1;
        Ok(InFlight {
            agent,
            counts: self.in_flight.clone(),
        })
    }

    /// Requests in flight for `agent` (for tests and metrics).
    pub fn in_flight(&self, agent: uuid::Uuid) -> u32 {
        self.in_flight
            .lock()
            .map_or(0, |c| c.get(&agent).copied().unwrap_or(0))
    }

    /// Drops the windows whose key or rate no longer exists, once per snapshot generation (one
    /// atomic compare when nothing changed). `rules` lists the live policy-rule limits.
    pub fn prune(&self, snapshot: &Snapshot, rules: impl FnOnce() -> Vec<Limit>) {
        let generation = snapshot.generation();
        if self.pruned_at.swap(generation, Ordering::Relaxed) == generation {
            return;
        }
        let mut live: HashSet<Limit> = snapshot
            .credentials()
            .iter()
            .filter_map(|c| {
                c.rate_limit.map(|rate| Limit {
                    key: LimitKey::Credential(c.id),
                    rate,
                })
            })
            .collect();
        live.extend(snapshot.agents().iter().filter_map(|a| {
            a.agent().rate_limit.map(|rate| Limit {
                key: LimitKey::Agent(a.agent().id),
                rate,
            })
        }));
        live.extend(rules());
        if let Ok(mut windows) = self.windows.lock() {
            windows.retain(|key, _| live.contains(key));
        }
    }

    /// Number of windows held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.windows.lock().map_or(0, |w| w.len())
    }

    /// Whether no window is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One request in flight for an agent; dropping it counts the request as finished.
#[derive(Debug)]
pub struct InFlight {
    agent: uuid::Uuid,
    counts: Arc<Mutex<HashMap<uuid::Uuid, u32>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(count) = counts.get_mut(&self.agent)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.agent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use aegis_core::auth::AuthType;
    use aegis_core::credential::{Credential, InspectionMode};
    use aegis_core::domain::DomainList;
    use aegis_core::names::{CredentialName, ServiceName, VaultName};
    use aegis_core::scopes::Scopes;
    use aegis_core::snapshot::SnapshotEntry;
    use aegis_core::timestamp::Timestamp;

    use super::*;

    fn snapshot(generation: i64, rates: &[(u8, &str)]) -> Snapshot {
        let entries = rates
            .iter()
            .map(|(id, rate)| SnapshotEntry {
                credential: Credential {
                    id: uuid::Uuid::from_bytes([*id; 16]),
                    name: CredentialName::parse(&format!("c{id}")).expect("name"),
                    service: ServiceName::parse(&format!("s{id}")).expect("service"),
                    domains: DomainList::parse("api.example.com", false).expect("domains"),
                    auth_type: AuthType::Bearer,
                    header_name: None,
                    query_param: None,
                    scopes: Scopes::All,
                    expires_at: None,
                    rate_limit: Some(Rate::parse(rate).expect("rate").rate()),
                    body_inspection: InspectionMode::Off,
                    allow_http: false,
                    pass_cookies: false,
                    created_at: Timestamp::from_millis(0),
                    updated_at: Timestamp::from_millis(0),
                    rotated_at: None,
                    previous_until: None,
                },
                secret: SecretString::from("sk-limits-test-secret"),
                previous: None,
            })
            .collect();
        Snapshot::new(
            generation,
            VaultName::parse("default").expect("vault"),
            uuid::Uuid::nil(),
            false,
            Timestamp::from_millis(0),
            entries,
        )
    }

    #[test]
    fn windows_of_removed_or_edited_limits_are_dropped_on_a_new_generation() {
        let limits = Limits::default();
        let first = snapshot(1, &[(1, "5/min"), (2, "5/min")]);
        limits.prune(&first, Vec::new);
        for c in first.credentials() {
            let rate = c.rate_limit.expect("rate");
            limits.admit_credential(c.id, rate, 0).expect("admitted");
        }
        assert_eq!(limits.len(), 2);
        // Credential 2 removed, credential 1's limit edited.
        let second = snapshot(2, &[(1, "9/min")]);
        limits.prune(&second, Vec::new);
        assert!(limits.is_empty());
        // Same generation again: nothing to do, state kept.
        let rate = second.credentials()[0].rate_limit.expect("rate");
        limits
            .admit_credential(second.credentials()[0].id, rate, 0)
            .expect("admitted");
        limits.prune(&second, Vec::new);
        assert_eq!(limits.len(), 1);
    }

    fn limit(key: LimitKey, rate: &str) -> Limit {
        Limit {
            key,
            rate: Rate::parse(rate).expect("rate").rate(),
        }
    }

    #[test]
    fn a_request_refused_by_one_limiter_consumes_no_quota_from_the_others() {
        let limits = Limits::default();
        let cred = limit(
            LimitKey::Credential(uuid::Uuid::from_bytes([1; 16])),
            "10/min",
        );
        let agent = limit(LimitKey::Agent(uuid::Uuid::from_bytes([2; 16])), "2/min");
        for _ in 0..2 {
            assert_eq!(limits.admit(&[cred, agent], 0).expect("state"), Ok(()));
        }
        // The agent limit refuses the third; the credential window must not count it.
        let refused = limits
            .admit(&[cred, agent], 1)
            .expect("state")
            .expect_err("agent limit");
        assert_eq!(refused.key, agent.key);
        assert_eq!(Denial::from(refused).code(), "rate_limited");
        for n in 0..8 {
            assert_eq!(limits.admit(&[cred], 2).expect("state"), Ok(()), "{n}");
        }
        assert!(limits.admit(&[cred], 3).expect("state").is_err());
    }

    #[test]
    fn the_longest_wait_among_refusing_limiters_is_reported() {
        let limits = Limits::default();
        let per_sec = limit(LimitKey::Agent(uuid::Uuid::from_bytes([3; 16])), "1/sec");
        let per_hour = limit(
            LimitKey::Rule(uuid::Uuid::from_bytes([3; 16]), [7; 32]),
            "1/hour",
        );
        assert_eq!(
            limits.admit(&[per_sec, per_hour], 0).expect("state"),
            Ok(())
        );
        let refused = limits
            .admit(&[per_sec, per_hour], 10)
            .expect("state")
            .expect_err("both refuse");
        assert_eq!(refused.key, per_hour.key);
        assert!(refused.retry.as_millis() > 3_000_000);
        assert_eq!(per_hour.key.kind(), "policy");
    }

    #[test]
    fn the_in_flight_cap_refuses_at_the_cap_and_frees_a_place_on_drop() {
        let limits = Limits::default();
        let agent = uuid::Uuid::from_bytes([4; 16]);
        let first = limits.enter(agent, 2).expect("first");
        let second = limits.enter(agent, 2).expect("second");
        assert_eq!(
            limits.enter(agent, 2).expect_err("third").code(),
            "too_many_concurrent_requests"
        );
        drop(first);
        let third = limits.enter(agent, 2).expect("a place was freed");
        assert_eq!(limits.in_flight(agent), 2);
        drop((second, third));
        assert_eq!(limits.in_flight(agent), 0);
        // 0 is no cap.
        let many: Vec<InFlight> = (0..100)
            .map(|_| limits.enter(agent, 0).expect("no cap"))
            .collect();
        assert_eq!(limits.in_flight(agent), 100);
        drop(many);
    }
}
