//! One vault's database: its metadata (salt, KDF parameters, key-check value), the generation
//! counter, and credentials with their encrypted secrets and row MACs.
//!
//! Every write runs in one transaction that starts by bumping the generation, which also takes
//! SQLite's write lock up front so concurrent writers wait (busy timeout) instead of failing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aegis_core::auth::{AuthType, InjectHeaderName, QueryParam};
use aegis_core::credential::{Credential, InspectionMode};
use aegis_core::crypto::KdfParams;
use aegis_core::domain::DomainList;
use aegis_core::ledger::{EntryContent, LedgerEntry};
use aegis_core::names::{CredentialName, ServiceName, VaultName};
use aegis_core::rate::Rate;
use aegis_core::scopes::Scopes;
use aegis_core::timestamp::Timestamp;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::error::StoreError;
use crate::layout::DataDir;
use crate::ledger;
use crate::secure_fs;
use crate::sqlite::{self, SchemaStatus, VAULT_MIGRATIONS};
use crate::webhooks::{self, OutboxRouter};

/// What a vault stores about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultMeta {
    /// Random id; salt of the HKDF subkeys and part of every AAD and MAC.
    pub id: uuid::Uuid,
    /// Name of the vault.
    pub name: VaultName,
    /// Argon2id salt.
    pub salt: Vec<u8>,
    /// Argon2id parameters used for this vault.
    pub kdf: KdfParams,
    /// Key-check value.
    pub key_check: Vec<u8>,
    /// Whether the vault is sealed.
    pub sealed: bool,
    /// When the vault was created.
    pub created_at: Timestamp,
    /// Ed25519 public key of the ledger signing key.
    pub ledger_public_key: Option<Vec<u8>>,
    /// The ledger signing key's seed, wrapped with the `ledger-signing` subkey.
    pub ledger_key_envelope: Option<Vec<u8>>,
}

/// A signed statement that the chain had `hash` at `entry_id` (SPEC.md §15.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The entry signed over.
    pub entry_id: u64,
    /// That entry's hash.
    pub hash: [u8; 32],
    /// When the checkpoint was made.
    pub ts: Timestamp,
    /// Ed25519 signature over the checkpoint message.
    pub signature: Vec<u8>,
}

/// A credential as stored: metadata, encrypted secret envelopes and the row MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The metadata.
    pub credential: Credential,
    /// Envelope of the current secret.
    pub secret: Vec<u8>,
    /// Envelope of the previous secret during a rotation grace period.
    pub previous_secret: Option<Vec<u8>>,
    /// HMAC over the canonical encoding of the metadata.
    pub mac: Vec<u8>,
}

/// An open vault database.
#[derive(Debug, Clone)]
pub struct VaultStore {
    pool: SqlitePool,
    meta: VaultMeta,
    path: std::path::PathBuf,
    /// Raises webhook deliveries from appended batches, inside their transaction.
    outbox: Option<Arc<dyn OutboxRouter>>,
}

impl VaultStore {
    /// Creates `vaults/<name>/` (0700) and its `vault.db` (0600), migrates it, and stores the
    /// vault's metadata with generation 1 and the first ledger entry, all in one transaction.
    ///
    /// # Errors
    /// [`StoreError::VaultExists`] when the database already exists; IO and database failures.
    pub async fn create(
        dir: &DataDir,
        meta: &VaultMeta,
        busy_timeout: Duration,
        first_entry: EntryContent,
    ) -> Result<Self, StoreError> {
        let name = meta.name.as_str();
        let path = dir.vault_db(name);
        if path.exists() {
            return Err(StoreError::VaultExists {
                name: name.to_owned(),
                dir: dir.root().to_path_buf(),
            });
        }
        let vault_dir = dir.vault_dir(name);
        secure_fs::create_private_dir(&vault_dir).map_err(StoreError::io("create", &vault_dir))?;
        secure_fs::create_private_file(&path).map_err(StoreError::io("create", &path))?;
        let pool = sqlite::open(&path, false, busy_timeout, VAULT_MIGRATIONS).await?;
        let mut tx = pool
            .begin()
            .await
            .map_err(StoreError::db("creating the vault"))?;
        sqlx::query(
            "INSERT INTO vault_meta (singleton, id, name, salt, kdf_memory_kib, kdf_iterations, \
             kdf_parallelism, key_check, sealed, created_at, ledger_public_key, \
             ledger_key_envelope) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(meta.id.to_string())
        .bind(name)
        .bind(&meta.salt)
        .bind(i64::from(meta.kdf.memory_kib))
        .bind(i64::from(meta.kdf.iterations))
        .bind(i64::from(meta.kdf.parallelism))
        .bind(&meta.key_check)
        .bind(meta.sealed)
        .bind(meta.created_at.as_millis())
        .bind(meta.ledger_public_key.as_ref())
        .bind(meta.ledger_key_envelope.as_ref())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("storing the vault metadata"))?;
        sqlx::query("INSERT INTO generation (singleton, value) VALUES (1, 1)")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("storing the generation"))?;
        ledger::append_in(&mut tx, &meta.id, first_entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("creating the vault"))?;
        Ok(Self {
            pool,
            meta: meta.clone(),
            path,
            outbox: None,
        })
    }

    /// Opens an existing vault database and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::VaultMissing`] when there is no database for `name`; database failures.
    pub async fn open(
        dir: &DataDir,
        name: &VaultName,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let path = dir.vault_db(name.as_str());
        if !path.is_file() {
            return Err(StoreError::VaultMissing {
                name: name.to_string(),
            });
        }
        let pool = sqlite::open(&path, false, busy_timeout, VAULT_MIGRATIONS).await?;
        let meta = read_meta(&pool, &path).await?;
        Ok(Self {
            pool,
            meta,
            path,
            outbox: None,
        })
    }

    /// A second handle on the same vault database whose commits are flushed to disk before they
    /// return (`synchronous=FULL`), for the ledger writer in strict durability (SPEC.md §15.4).
    ///
    /// # Errors
    /// Database failures.
    pub async fn with_full_sync(&self, busy_timeout: Duration) -> Result<Self, StoreError> {
        let pool = sqlite::connect_with_sync(
            &self.path,
            busy_timeout,
            false,
            sqlx::sqlite::SqliteSynchronous::Full,
        )
        .await?;
        Ok(Self {
            pool,
            meta: self.meta.clone(),
            path: self.path.clone(),
            outbox: self.outbox.clone(),
        })
    }

    /// The same store whose [`VaultStore::append_batch`] also queues the webhook deliveries
    /// `router` derives from the appended entries, in the batch's transaction (SPEC.md §18.3).
    #[must_use]
    pub fn with_outbox_router(mut self, router: Arc<dyn OutboxRouter>) -> Self {
        self.outbox = Some(router);
        self
    }

    /// The connection pool (for the other modules of this crate).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The vault's metadata as read at open.
    pub fn meta(&self) -> &VaultMeta {
        &self.meta
    }

    /// The vault database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current generation (bumped by every write).
    ///
    /// # Errors
    /// Database failures.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM generation WHERE singleton = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading the generation"))?;
        Ok(row.get(0))
    }

    /// Every credential, ordered by name.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row whose fields do not parse.
    pub async fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading credentials"))?;
        rows.iter().map(credential_from_row).collect()
    }

    /// One credential by name.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row whose fields do not parse.
    pub async fn credential(
        &self,
        name: &CredentialName,
    ) -> Result<Option<StoredCredential>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE name = ?"
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading a credential"))?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// Adds a credential.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken; database failures.
    pub async fn insert_credential(
        &self,
        stored: &StoredCredential,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let taken: i64 = sqlx::query("SELECT count(*) FROM credentials WHERE name = ?")
            .bind(stored.credential.name.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("checking the credential name"))?
            .get(0);
        if taken > 0 {
            return Err(StoreError::Conflict {
                kind: "credential",
                name: stored.credential.name.to_string(),
            });
        }
        bind_credential(
            sqlx::query(&format!(
                "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            stored,
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("adding a credential"))?;
        ledger::append_in(&mut tx, &self.meta.id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("adding a credential"))
    }

    /// Replaces a credential's row (matched by id) with new metadata, envelopes and MAC. The row
    /// is updated in place, so the credential's grants stay.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the row is gone; database failures.
    pub async fn replace_credential(
        &self,
        stored: &StoredCredential,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let assignments = CREDENTIAL_COLUMNS
            .split(", ")
            .map(|column| format!("{} = ?", column.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let updated = bind_credential(
            sqlx::query(&format!(
                "UPDATE credentials SET {assignments} WHERE id = ?"
            )),
            stored,
        )
        .bind(stored.credential.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("updating a credential"))?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound {
                kind: "credential",
                name: stored.credential.name.to_string(),
            });
        }
        ledger::append_in(&mut tx, &self.meta.id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("updating a credential"))
    }

    /// Deletes a credential by name.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such credential; database failures.
    pub async fn remove_credential(
        &self,
        name: &CredentialName,
        entry: EntryContent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM credentials WHERE name = ?")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing a credential"))?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound {
                kind: "credential",
                name: name.to_string(),
            });
        }
        ledger::append_in(&mut tx, &self.meta.id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("removing a credential"))
    }

    /// Appends one entry to the ledger in its own transaction (no generation bump: the ledger
    /// is not configuration).
    ///
    /// # Errors
    /// Database failures.
    pub async fn append(&self, entry: EntryContent) -> Result<LedgerEntry, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("starting an append"))?;
        ledger::lock_for_append(&mut tx).await?;
        let appended = ledger::append_in(&mut tx, &self.meta.id, entry, now()).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("appending to the ledger"))?;
        Ok(appended)
    }

    /// Appends several entries in one transaction (group commit), in order, with the webhook
    /// deliveries they raise when an outbox router is set.
    ///
    /// # Errors
    /// Database failures; nothing is written then.
    pub async fn append_batch(&self, entries: &[EntryContent]) -> Result<u64, StoreError> {
        let appended = self.append_batch_routed(entries).await;
        if let Some(router) = &self.outbox {
            router.batch_finished(appended.is_ok());
        }
        appended
    }

    async fn append_batch_routed(&self, entries: &[EntryContent]) -> Result<u64, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("starting an append"))?;
        ledger::lock_for_append(&mut tx).await?;
        let count = entries.len() as u64;
        let mut deliveries = Vec::new();
        {
            // Each entry is shown to the outbox router, when there is one.
            let mut route = self.outbox.as_deref().map(|router| {
                let deliveries = &mut deliveries;
                move |entry: &LedgerEntry| router.route(entry, deliveries)
            });
            let observe = route
                .as_mut()
                .map(|route| route as &mut (dyn FnMut(&LedgerEntry) + Send));
            ledger::append_many_in(&mut tx, &self.meta.id, entries, now(), observe).await?;
        }
        webhooks::insert_outbox_in(&mut tx, &deliveries).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("appending to the ledger"))?;
        Ok(count)
    }

    /// Up to `limit` entries with ids above `after`, in chain order.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row that cannot be read back.
    pub async fn ledger_entries(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::entries_of(self.ledger_columns(after, limit).await?)
    }

    /// The chain head as recorded by the last append, if any entry exists.
    ///
    /// # Errors
    /// Database failures.
    pub async fn ledger_head(&self) -> Result<Option<ledger::LedgerHead>, StoreError> {
        let row = sqlx::query("SELECT last_id, last_hash FROM ledger_head WHERE singleton = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading the ledger head"))?;
        let Some(row) = row else { return Ok(None) };
        let invalid = || StoreError::InvalidRow {
            table: "ledger_head",
            row: "1".to_owned(),
            field: "last_hash",
        };
        let hash: Vec<u8> = row.get("last_hash");
        Ok(Some(ledger::LedgerHead {
            last_id: u64::try_from(row.get::<i64, _>("last_id")).map_err(|_| invalid())?,
            last_hash: hash.try_into().map_err(|_| invalid())?,
        }))
    }

    /// Stores a signed checkpoint over entry `entry_id` (whose hash is `hash`).
    ///
    /// # Errors
    /// Database failures.
    pub async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO ledger_checkpoints (entry_id, hash, ts, signature) VALUES (?, ?, ?, ?)",
        )
        .bind(i64::try_from(checkpoint.entry_id).unwrap_or(i64::MAX))
        .bind(checkpoint.hash.as_slice())
        .bind(checkpoint.ts.as_millis())
        .bind(checkpoint.signature.as_slice())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("storing a ledger checkpoint"))?;
        Ok(())
    }

    /// Every checkpoint, by entry id.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a damaged row.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT entry_id, hash, ts, signature FROM ledger_checkpoints ORDER BY entry_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading ledger checkpoints"))?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.get("entry_id");
                let invalid = |field| StoreError::InvalidRow {
                    table: "ledger_checkpoints",
                    row: id.to_string(),
                    field,
                };
                let hash: Vec<u8> = row.get("hash");
                Ok(Checkpoint {
                    entry_id: u64::try_from(id).map_err(|_| invalid("entry_id"))?,
                    hash: hash.try_into().map_err(|_| invalid("hash"))?,
                    ts: Timestamp::from_millis(row.get("ts")),
                    signature: row.get("signature"),
                })
            })
            .collect()
    }

    /// Up to `limit` entries matching `filter` with ids above `after`, in chain order; with
    /// `newest`, the newest `limit` matching entries (still returned oldest first).
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a row that cannot be read back.
    pub async fn ledger_query(
        &self,
        filter: &ledger::LedgerFilter,
        after: u64,
        limit: u32,
        newest: bool,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let (condition, values) = filter.to_sql();
        let order = if newest { "DESC" } else { "ASC" };
        let sql = ledger::packed_select(&format!(
            "SELECT * FROM ledger WHERE {condition} ORDER BY id {order} LIMIT ?"
        ));
        let mut query = sqlx::query_as::<_, (Option<i64>, String)>(&sql)
            .bind(i64::try_from(after).unwrap_or(i64::MAX));
        for value in values {
            query = match value {
                ledger::FilterValue::Text(text) => query.bind(text),
                ledger::FilterValue::Int(number) => query.bind(number),
            };
        }
        let (_, packed) = query
            .bind(i64::from(limit))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading the ledger"))?;
        ledger::entries_of(ledger::parse_page(&packed)?)
    }

    /// Schema version of this vault database.
    ///
    /// # Errors
    /// Database failures.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        sqlite::schema_status(&self.pool, &self.path, VAULT_MIGRATIONS).await
    }

    /// `PRAGMA quick_check` findings (empty when sound).
    ///
    /// # Errors
    /// Database failures.
    pub async fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        sqlite::quick_check(&self.pool, &self.path).await
    }

    /// Writes a consistent copy of this vault database to a new 0600 file.
    ///
    /// # Errors
    /// IO and database failures.
    pub async fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        sqlite::copy_to(&self.pool, target).await
    }

    /// Closes the connections.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Starts a write transaction by bumping the generation, which takes the write lock first.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("starting a write"))?;
        sqlx::query("UPDATE generation SET value = value + 1 WHERE singleton = 1")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("bumping the generation"))?;
        Ok(tx)
    }
}

const CREDENTIAL_COLUMNS: &str = "id, name, service, domains, auth_type, header_name, query_param, \
    scopes, expires_at, rate_limit, body_inspection, allow_http, pass_cookies, secret, \
    previous_secret, previous_until, created_at, updated_at, rotated_at, mac";

fn bind_credential<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    stored: &'q StoredCredential,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let c = &stored.credential;
    query
        .bind(c.id.to_string())
        .bind(c.name.as_str())
        .bind(c.service.as_str())
        .bind(c.domains.to_string())
        .bind(c.auth_type.to_string())
        .bind(c.header_name.as_ref().map(|h| h.as_str().to_owned()))
        .bind(c.query_param.as_ref().map(|q| q.as_str().to_owned()))
        .bind(c.scopes.to_string())
        .bind(c.expires_at.map(Timestamp::as_millis))
        .bind(c.rate_limit.map(|r| r.to_string()))
        .bind(c.body_inspection.as_str())
        .bind(c.allow_http)
        .bind(c.pass_cookies)
        .bind(&stored.secret)
        .bind(stored.previous_secret.as_ref())
        .bind(c.previous_until.map(Timestamp::as_millis))
        .bind(c.created_at.as_millis())
        .bind(c.updated_at.as_millis())
        .bind(c.rotated_at.map(Timestamp::as_millis))
        .bind(&stored.mac)
}

fn credential_from_row(row: &SqliteRow) -> Result<StoredCredential, StoreError> {
    let name_text: String = row.get("name");
    let invalid = |field| StoreError::InvalidRow {
        table: "credentials",
        row: name_text.clone(),
        field,
    };
    let id: String = row.get("id");
    let allow_http: bool = row.get("allow_http");
    let stamp = |col: &str| row.get::<Option<i64>, _>(col).map(Timestamp::from_millis);
    let credential = Credential {
        id: uuid::Uuid::parse_str(&id).map_err(|_| invalid("id"))?,
        name: CredentialName::parse(&name_text).map_err(|_| invalid("name"))?,
        service: ServiceName::parse(row.get("service")).map_err(|_| invalid("service"))?,
        domains: DomainList::parse(row.get("domains"), allow_http)
            .map_err(|_| invalid("domains"))?,
        auth_type: AuthType::parse(row.get("auth_type")).map_err(|_| invalid("auth_type"))?,
        header_name: row
            .get::<Option<&str>, _>("header_name")
            .map(InjectHeaderName::parse)
            .transpose()
            .map_err(|_| invalid("header_name"))?,
        query_param: row
            .get::<Option<&str>, _>("query_param")
            .map(QueryParam::parse)
            .transpose()
            .map_err(|_| invalid("query_param"))?,
        scopes: Scopes::parse(row.get("scopes")).map_err(|_| invalid("scopes"))?,
        expires_at: stamp("expires_at"),
        rate_limit: row
            .get::<Option<&str>, _>("rate_limit")
            .map(Rate::parse_canonical)
            .transpose()
            .map_err(|_| invalid("rate_limit"))?,
        body_inspection: InspectionMode::parse(row.get("body_inspection"))
            .map_err(|_| invalid("body_inspection"))?,
        allow_http,
        pass_cookies: row.get("pass_cookies"),
        created_at: Timestamp::from_millis(row.get("created_at")),
        updated_at: Timestamp::from_millis(row.get("updated_at")),
        rotated_at: stamp("rotated_at"),
        previous_until: stamp("previous_until"),
    };
    Ok(StoredCredential {
        credential,
        secret: row.get("secret"),
        previous_secret: row.get("previous_secret"),
        mac: row.get("mac"),
    })
}

async fn read_meta(pool: &SqlitePool, path: &Path) -> Result<VaultMeta, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, salt, kdf_memory_kib, kdf_iterations, kdf_parallelism, key_check, \
         sealed, created_at, ledger_public_key, ledger_key_envelope FROM vault_meta \
         WHERE singleton = 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(|e| sqlite::classify(e, path, "reading the vault metadata"))?
    .ok_or_else(|| StoreError::Corrupted {
        file: path.to_path_buf(),
    })?;
    let name: String = row.get("name");
    let invalid = |field| StoreError::InvalidRow {
        table: "vault_meta",
        row: name.clone(),
        field,
    };
    let id: String = row.get("id");
    let number = |col: &'static str| -> Result<u32, StoreError> {
        u32::try_from(row.get::<i64, _>(col)).map_err(|_| invalid(col))
    };
    Ok(VaultMeta {
        id: uuid::Uuid::parse_str(&id).map_err(|_| invalid("id"))?,
        name: VaultName::parse(&name).map_err(|_| invalid("name"))?,
        salt: row.get("salt"),
        kdf: KdfParams {
            memory_kib: number("kdf_memory_kib")?,
            iterations: number("kdf_iterations")?,
            parallelism: number("kdf_parallelism")?,
        },
        key_check: row.get("key_check"),
        sealed: row.get("sealed"),
        created_at: Timestamp::from_millis(row.get("created_at")),
        ledger_public_key: row.get("ledger_public_key"),
        ledger_key_envelope: row.get("ledger_key_envelope"),
    })
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
