//! Step 8 of the pipeline: in-memory rate limits (SPEC.md §12) — at most N admitted requests in
//! any window of the limit's period, with bounded state per key. Admission is all-or-nothing
//! across the limiters that apply, so a refused request consumes no quota anywhere.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use aegis_core::denial::Denial;
use aegis_core::rate::Rate;
use aegis_core::rate_window::Window;
use aegis_core::snapshot::Snapshot;

/// Per-credential windows, keyed by credential id and rate (an edited limit starts fresh).
#[derive(Debug)]
pub struct Limits {
    credentials: Mutex<HashMap<(uuid::Uuid, Rate), Window>>,
    /// Generation of the snapshot the windows were last pruned against.
    pruned_at: AtomicI64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            credentials: Mutex::new(HashMap::new()),
            pruned_at: AtomicI64::new(i64::MIN),
        }
    }
}

impl Limits {
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
        let mut windows = self.credentials.lock().map_err(|_| Denial::Internal)?;
        let window = windows
            .entry((credential, rate))
            .or_insert_with(|| Window::from_rate(rate));
        window.admit(now_ms).map_err(|retry| Denial::RateLimited {
            retry_after_secs: retry.as_secs_rounded_up(),
        })
    }

    /// Drops the windows of credentials that are gone or whose limit changed, once per snapshot
    /// generation (one atomic compare when nothing changed).
    pub fn prune(&self, snapshot: &Snapshot) {
        let generation = snapshot.generation();
        if self.pruned_at.swap(generation, Ordering::Relaxed) == generation {
            return;
        }
        let live: HashSet<(uuid::Uuid, Rate)> = snapshot
            .credentials()
            .iter()
            .filter_map(|c| c.rate_limit.map(|rate| (c.id, rate)))
            .collect();
        if let Ok(mut windows) = self.credentials.lock() {
            windows.retain(|key, _| live.contains(key));
        }
    }

    /// Number of windows held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.credentials.lock().map_or(0, |w| w.len())
    }

    /// Whether no window is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        limits.prune(&first);
        for c in first.credentials() {
            let rate = c.rate_limit.expect("rate");
            limits.admit_credential(c.id, rate, 0).expect("admitted");
        }
        assert_eq!(limits.len(), 2);
        // Credential 2 removed, credential 1's limit edited.
        let second = snapshot(2, &[(1, "9/min")]);
        limits.prune(&second);
        assert!(limits.is_empty());
        // Same generation again: nothing to do, state kept.
        let rate = second.credentials()[0].rate_limit.expect("rate");
        limits
            .admit_credential(second.credentials()[0].id, rate, 0)
            .expect("admitted");
        limits.prune(&second);
        assert_eq!(limits.len(), 1);
    }
}
