//! The immutable, fully indexed view of a vault that request handling reads (DESIGN.md §4):
//! credentials by service, their decrypted secrets in a [`SecretTable`], agents by token digest
//! with their granted credentials, and the echo-redaction automaton. Built off the request
//! path, swapped whole, zeroised on drop.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::agent::{Agent, TokenDigest};
use crate::auth::AuthType;
use crate::credential::Credential;
use crate::names::VaultName;
use crate::permit::Permit;
use crate::policy::PolicySet;
use crate::redact::{RedactionSecret, RedactionSet};
use crate::timestamp::Timestamp;
use crate::webhook::ActiveWebhook;

/// One credential as the snapshot holds it: metadata plus its secrets.
pub struct SnapshotEntry {
    /// The credential's metadata.
    pub credential: Credential,
    /// The current secret.
    pub secret: SecretString,
    /// The previous secret during a rotation grace period.
    pub previous: Option<SecretString>,
}

/// One agent as the snapshot holds it: the stored row and the ids of its granted credentials.
#[derive(Debug, Clone)]
pub struct SnapshotAgent {
    /// The agent's row.
    pub agent: Agent,
    /// Ids of the credentials granted to it (ids without a credential are ignored).
    pub grants: Vec<uuid::Uuid>,
}

/// An agent in a built snapshot: the row and its grants as credential indexes.
#[derive(Debug)]
pub struct IndexedAgent {
    agent: Agent,
    granted: HashSet<usize>,
}

impl IndexedAgent {
    /// The agent's row.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Whether the credential at `index` is granted to this agent.
    pub fn has_grant(&self, index: usize) -> bool {
        self.granted.contains(&index)
    }
}

/// Everything the request path needs, immutable once built.
pub struct Snapshot {
    generation: i64,
    vault: VaultName,
    vault_id: uuid::Uuid,
    sealed: bool,
    built_at: Timestamp,
    credentials: Vec<Credential>,
    by_service: HashMap<String, Vec<usize>>,
    secrets: SecretTable,
    redaction: Arc<RedactionSet>,
    agents: Vec<IndexedAgent>,
    by_digest: HashMap<TokenDigest, usize>,
    policies: Arc<PolicySet>,
    webhooks: Arc<[ActiveWebhook]>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("vault", &self.vault)
            .field("sealed", &self.sealed)
            .field("credentials", &self.credentials.len())
            .field("agents", &self.agents.len())
            .field("policy_files", &self.policies.file_count())
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Builds a snapshot from verified, decrypted entries.
    pub fn new(
        generation: i64,
        vault: VaultName,
        vault_id: uuid::Uuid,
        sealed: bool,
        built_at: Timestamp,
        entries: Vec<SnapshotEntry>,
    ) -> Self {
        let mut credentials = Vec::with_capacity(entries.len());
        let mut secrets = Vec::with_capacity(entries.len());
        let mut by_service: HashMap<String, Vec<usize>> = HashMap::new();
        let mut redaction = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            by_service
                .entry(entry.credential.service.as_str().to_owned())
                .or_default()
                .push(index);
            let label = entry.credential.name.to_string();
            let mut push_secret = |value: &SecretString| {
                let bytes = value.expose_secret().as_bytes();
                redaction.push(RedactionSecret::new(bytes, index, &label));
                if entry.credential.auth_type == AuthType::Basic
                    && let Some((_, password)) = value.expose_secret().split_once(':')
                {
                    redaction.push(RedactionSecret::new(password.as_bytes(), index, &label));
                }
            };
            push_secret(&entry.secret);
            if let Some(previous) = &entry.previous {
                push_secret(previous);
            }
            credentials.push(entry.credential);
            secrets.push(entry.secret);
        }
        Self {
            generation,
            vault,
            vault_id,
            sealed,
            built_at,
            credentials,
            by_service,
            secrets: SecretTable { secrets },
            redaction: Arc::new(RedactionSet::new(redaction)),
            agents: Vec::new(),
            by_digest: HashMap::new(),
            policies: Arc::new(PolicySet::empty()),
            webhooks: Arc::from(Vec::new()),
        }
    }

    /// Adds the compiled policy files (SPEC.md §13); without them no agent has a policy.
    #[must_use]
    pub fn with_policies(mut self, policies: Arc<PolicySet>) -> Self {
        self.policies = policies;
        self
    }

    /// The policy set in force.
    pub fn policies(&self) -> &Arc<PolicySet> {
        &self.policies
    }

    /// Sets the stored webhooks (the loader reads them with the rest of the vault).
    #[must_use]
    pub fn with_webhooks(mut self, stored: Vec<ActiveWebhook>) -> Self {
        self.webhooks = stored.into();
        self
    }

    /// Puts the config file's webhooks in front of the stored ones: the effective list of
    /// SPEC.md §18.4. Config webhooks set before are replaced.
    #[must_use]
    pub fn with_config_webhooks(mut self, config: &[ActiveWebhook]) -> Self {
        self.webhooks = config
            .iter()
            .cloned()
            .chain(self.webhooks.iter().filter(|w| !w.id.is_config()).cloned())
            .collect();
        self
    }

    /// The effective webhook list.
    pub fn webhooks(&self) -> &[ActiveWebhook] {
        &self.webhooks
    }

    /// Adds the vault's agents, indexing them by token digest and resolving their grants to
    /// credential indexes.
    #[must_use]
    pub fn with_agents(mut self, agents: Vec<SnapshotAgent>) -> Self {
        let by_id: HashMap<uuid::Uuid, usize> = self
            .credentials
            .iter()
            .enumerate()
            .map(|(index, c)| (c.id, index))
            .collect();
        self.agents = Vec::with_capacity(agents.len());
        self.by_digest = HashMap::with_capacity(agents.len());
        for entry in agents {
            let granted = entry
                .grants
                .iter()
                .filter_map(|id| by_id.get(id).copied())
                .collect();
            self.by_digest
                .insert(entry.agent.token_digest, self.agents.len());
            self.agents.push(IndexedAgent {
                agent: entry.agent,
                granted,
            });
        }
        self
    }

    /// The agent at `index`.
    pub fn agent(&self, index: usize) -> Option<&IndexedAgent> {
        self.agents.get(index)
    }

    /// Every agent.
    pub fn agents(&self) -> &[IndexedAgent] {
        &self.agents
    }

    /// The index of the agent whose token has `digest`. The final comparison with the stored
    /// digest is constant-time.
    pub fn agent_by_digest(&self, digest: &TokenDigest) -> Option<usize> {
        let index = *self.by_digest.get(digest)?;
        let agent = self.agents.get(index)?;
        agent.agent.token_digest.matches(digest).then_some(index)
    }

    /// The store generation this snapshot was built from.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The vault served.
    pub fn vault(&self) -> &VaultName {
        &self.vault
    }

    /// The vault's id.
    pub fn vault_id(&self) -> &uuid::Uuid {
        &self.vault_id
    }

    /// Whether the vault is sealed (every proxied request is refused).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// When the snapshot was built.
    pub fn built_at(&self) -> Timestamp {
        self.built_at
    }

    /// The credential at `index`.
    pub fn credential(&self, index: usize) -> Option<&Credential> {
        self.credentials.get(index)
    }

    /// Every credential.
    pub fn credentials(&self) -> &[Credential] {
        &self.credentials
    }

    /// Indexes of the credentials serving `service`.
    pub fn candidates(&self, service: &str) -> &[usize] {
        self.by_service.get(service).map_or(&[], Vec::as_slice)
    }

    /// The decrypted secrets, reachable only with a permit.
    pub fn secrets(&self) -> &SecretTable {
        &self.secrets
    }

    /// The echo-redaction automaton over every secret of the vault.
    pub fn redaction(&self) -> &Arc<RedactionSet> {
        &self.redaction
    }
}

/// The decrypted secrets of a snapshot, zeroised on drop.
pub struct SecretTable {
    secrets: Vec<SecretString>,
}

impl fmt::Debug for SecretTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretTable({} secrets, [REDACTED])", self.secrets.len())
    }
}

impl SecretTable {
    /// The secret of the credential a permit was minted for: the only way to read one.
    pub fn reveal(&self, permit: &Permit) -> Option<&SecretString> {
        self.secrets.get(permit.credential_index())
    }
}
