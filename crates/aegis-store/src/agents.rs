//! Agents and grants of one vault (SPEC.md §11): rows keyed by token digest, each with its row
//! MAC, written together with their ledger entry in one transaction that bumps the generation.
//!
//! Computing and verifying MACs needs the vault key and is the caller's job; this module only
//! stores what it is given.

use aegis_core::agent::{Agent, TokenDigest};
use aegis_core::ledger::EntryContent;
use aegis_core::names::AgentName;
use aegis_core::rate::Rate;
use aegis_core::timestamp::Timestamp;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::ledger;
use crate::vault::{VaultStore, now};

/// An agent as stored: the row and its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAgent {
    /// The agent's fields.
    pub agent: Agent,
    /// HMAC over [`Agent::canonical_encoding`].
    pub mac: Vec<u8>,
}

/// A grant of one credential to one agent, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    /// The agent's id.
    pub agent_id: uuid::Uuid,
    /// The credential's id.
    pub credential_id: uuid::Uuid,
    /// When the grant was added.
    pub created_at: Timestamp,
    /// HMAC over `aegis_core::agent::grant_encoding`.
    pub mac: Vec<u8>,
}

/// Every agent and every grant, read in one transaction so they are consistent.
#[derive(Debug, Clone, Default)]
pub struct AgentRows {
    /// Agents ordered by name.
    pub agents: Vec<StoredAgent>,
    /// Grants ordered by agent and credential id.
    pub grants: Vec<StoredGrant>,
}

impl VaultStore {
    /// Every agent and grant, read in one transaction.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row whose fields do not parse.
    pub async fn agent_rows(&self) -> Result<AgentRows, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("reading agents"))?;
        let agents = sqlx::query(&format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY name"))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db("reading agents"))?;
        let grants = sqlx::query(
            "SELECT agent_id, credential_id, created_at, mac FROM grants \
             ORDER BY agent_id, credential_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db("reading grants"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("reading agents"))?;
        Ok(AgentRows {
            agents: agents
                .iter()
                .map(agent_from_row)
                .collect::<Result<_, _>>()?,
            grants: grants
                .iter()
                .map(grant_from_row)
                .collect::<Result<_, _>>()?,
        })
    }

    /// One agent by name.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row whose fields do not parse.
    pub async fn agent(&self, name: &AgentName) -> Result<Option<StoredAgent>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE name = ?"
        ))
        .bind(name.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading an agent"))?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// Adds an agent.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken; database failures.
    pub async fn insert_agent(
        &self,
        stored: &StoredAgent,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let taken: i64 = sqlx::query("SELECT count(*) FROM agents WHERE name = ?")
            .bind(stored.agent.name.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("checking the agent name"))?
            .get(0);
        if taken > 0 {
            return Err(StoreError::Conflict {
                kind: "agent",
                name: stored.agent.name.to_string(),
            });
        }
        let a = &stored.agent;
        sqlx::query(&format!(
            "INSERT INTO agents ({AGENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(a.id.to_string())
        .bind(a.name.as_str())
        .bind(a.token_digest.as_bytes().as_slice())
        .bind(a.rate_limit.map(|r| r.to_string()))
        .bind(a.created_at.as_millis())
        .bind(a.token_created_at.as_millis())
        .bind(&stored.mac)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("adding an agent"))?;
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit().await.map_err(StoreError::db("adding an agent"))
    }

    /// Deletes an agent by name, and with it its grants.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such agent; database failures.
    pub async fn remove_agent(
        &self,
        name: &AgentName,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM agents WHERE name = ?")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing an agent"))?
            .rows_affected();
        if deleted == 0 {
            return Err(not_found(name));
        }
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("removing an agent"))
    }

    /// Writes an agent's mutable fields (token digest, token time, rate limit) and its new MAC,
    /// matched by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the agent is gone; database failures.
    pub async fn update_agent(
        &self,
        stored: &StoredAgent,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let a = &stored.agent;
        let updated = sqlx::query(
            "UPDATE agents SET token_digest = ?, token_created_at = ?, rate_limit = ?, mac = ? \
             WHERE id = ?",
        )
        .bind(a.token_digest.as_bytes().as_slice())
        .bind(a.token_created_at.as_millis())
        .bind(a.rate_limit.map(|r| r.to_string()))
        .bind(&stored.mac)
        .bind(a.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("updating an agent"))?
        .rows_affected();
        if updated == 0 {
            return Err(not_found(&a.name));
        }
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("updating an agent"))
    }

    /// Adds a grant. Idempotent: when it already exists nothing is written and `false` is
    /// returned.
    ///
    /// # Errors
    /// Database failures (including a vanished agent or credential).
    pub async fn insert_grant(
        &self,
        grant: &StoredGrant,
        entry: EntryContent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists: i64 =
            sqlx::query("SELECT count(*) FROM grants WHERE agent_id = ? AND credential_id = ?")
                .bind(grant.agent_id.to_string())
                .bind(grant.credential_id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db("checking a grant"))?
                .get(0);
        if exists > 0 {
            // Dropping the transaction rolls back the generation bump.
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO grants (agent_id, credential_id, created_at, mac) VALUES (?, ?, ?, ?)",
        )
        .bind(grant.agent_id.to_string())
        .bind(grant.credential_id.to_string())
        .bind(grant.created_at.as_millis())
        .bind(&grant.mac)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("adding a grant"))?;
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("adding a grant"))?;
        Ok(true)
    }

    /// Removes a grant; `false` (and nothing written) when there was none.
    ///
    /// # Errors
    /// Database failures.
    pub async fn remove_grant(
        &self,
        agent_id: &uuid::Uuid,
        credential_id: &uuid::Uuid,
        entry: EntryContent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM grants WHERE agent_id = ? AND credential_id = ?")
            .bind(agent_id.to_string())
            .bind(credential_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("revoking a grant"))?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        ledger::append_in(&mut tx, &self.meta().id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("revoking a grant"))?;
        Ok(true)
    }
}

const AGENT_COLUMNS: &str = "id, name, token_digest, rate_limit, created_at, token_created_at, mac";

fn not_found(name: &AgentName) -> StoreError {
    StoreError::NotFound {
        kind: "agent",
        name: name.to_string(),
    }
}

fn agent_from_row(row: &SqliteRow) -> Result<StoredAgent, StoreError> {
    let name_text: String = row.get("name");
    let invalid = |field| StoreError::InvalidRow {
        table: "agents",
        row: name_text.clone(),
        field,
    };
    let id: String = row.get("id");
    let digest: Vec<u8> = row.get("token_digest");
    let agent = Agent {
        id: uuid::Uuid::parse_str(&id).map_err(|_| invalid("id"))?,
        name: AgentName::parse(&name_text).map_err(|_| invalid("name"))?,
        token_digest: TokenDigest::from_slice(&digest).map_err(|_| invalid("token_digest"))?,
        rate_limit: row
            .get::<Option<&str>, _>("rate_limit")
            .map(Rate::parse_canonical)
            .transpose()
            .map_err(|_| invalid("rate_limit"))?,
        created_at: Timestamp::from_millis(row.get("created_at")),
        token_created_at: Timestamp::from_millis(row.get("token_created_at")),
    };
    Ok(StoredAgent {
        agent,
        mac: row.get("mac"),
    })
}

fn grant_from_row(row: &SqliteRow) -> Result<StoredGrant, StoreError> {
    let agent: String = row.get("agent_id");
    let credential: String = row.get("credential_id");
    let invalid = |field| StoreError::InvalidRow {
        table: "grants",
        row: format!("{agent}/{credential}"),
        field,
    };
    Ok(StoredGrant {
        agent_id: uuid::Uuid::parse_str(&agent).map_err(|_| invalid("agent_id"))?,
        credential_id: uuid::Uuid::parse_str(&credential).map_err(|_| invalid("credential_id"))?,
        created_at: Timestamp::from_millis(row.get("created_at")),
        mac: row.get("mac"),
    })
}
