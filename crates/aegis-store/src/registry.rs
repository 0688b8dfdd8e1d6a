//! The registry database `aegis.db`: which vaults exist in a data directory.

use std::time::Duration;

use aegis_core::names::VaultName;
use aegis_core::timestamp::Timestamp;
use sqlx::{Row, SqlitePool};

use crate::error::StoreError;
use crate::layout::DataDir;
use crate::secure_fs;
use crate::sqlite::{self, REGISTRY_MIGRATIONS, SchemaStatus};

/// One vault as listed in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRecord {
    /// The vault's id.
    pub id: uuid::Uuid,
    /// The vault's name.
    pub name: VaultName,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An open registry database.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: SqlitePool,
    dir: DataDir,
}

impl Registry {
    /// Creates the data directory (0700) and `aegis.db` (0600) when missing, then migrates.
    ///
    /// # Errors
    /// IO and database failures, [`StoreError::SchemaTooNew`].
    pub async fn create(dir: &DataDir, busy_timeout: Duration) -> Result<Self, StoreError> {
        secure_fs::create_private_dir(dir.root()).map_err(StoreError::io("create", dir.root()))?;
        let pool =
            sqlite::open(&dir.registry_db(), true, busy_timeout, REGISTRY_MIGRATIONS).await?;
        Ok(Self {
            pool,
            dir: dir.clone(),
        })
    }

    /// Opens an existing registry and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::NotInitialized`] when there is no `aegis.db`; database failures.
    pub async fn open(dir: &DataDir, busy_timeout: Duration) -> Result<Self, StoreError> {
        let path = dir.registry_db();
        if !path.is_file() {
            return Err(StoreError::NotInitialized {
                dir: dir.root().to_path_buf(),
            });
        }
        let pool = sqlite::open(&path, false, busy_timeout, REGISTRY_MIGRATIONS).await?;
        Ok(Self {
            pool,
            dir: dir.clone(),
        })
    }

    /// The data directory this registry belongs to.
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// Looks a vault up by name.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a damaged row.
    pub async fn vault(&self, name: &VaultName) -> Result<Option<VaultRecord>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM vaults WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading the vault registry"))?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    /// Every registered vault, by name.
    ///
    /// # Errors
    /// Database failures; [`StoreError::InvalidRow`] for a damaged row.
    pub async fn vaults(&self) -> Result<Vec<VaultRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM vaults ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading the vault registry"))?;
        rows.iter().map(record_from_row).collect()
    }

    /// Adds a vault to the registry, replacing a stale entry of the same name.
    ///
    /// # Errors
    /// Database failures.
    pub async fn register(&self, record: &VaultRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO vaults (id, name, created_at) VALUES (?, ?, ?)")
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(record.created_at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("registering the vault"))?;
        Ok(())
    }

    /// Removes a vault from the registry (its files are handled by the caller).
    ///
    /// # Errors
    /// Database failures.
    pub async fn unregister(&self, name: &VaultName) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM vaults WHERE name = ?")
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("unregistering the vault"))?;
        Ok(())
    }

    /// Schema version of `aegis.db`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        sqlite::schema_status(&self.pool, &self.dir.registry_db(), REGISTRY_MIGRATIONS).await
    }

    /// `PRAGMA quick_check` findings for `aegis.db` (empty when sound).
    ///
    /// # Errors
    /// Database failures.
    pub async fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        sqlite::quick_check(&self.pool, &self.dir.registry_db()).await
    }

    /// Writes a consistent copy of `aegis.db` to a new 0600 file.
    ///
    /// # Errors
    /// IO and database failures.
    pub async fn copy_to(&self, target: &std::path::Path) -> Result<(), StoreError> {
        sqlite::copy_to(&self.pool, target).await
    }

    /// Closes the connections (waits for them to finish).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<VaultRecord, StoreError> {
    let name: String = row.get("name");
    let invalid = |field| StoreError::InvalidRow {
        table: "vaults",
        row: name.clone(),
        field,
    };
    let id: String = row.get("id");
    Ok(VaultRecord {
        id: uuid::Uuid::parse_str(&id).map_err(|_| invalid("id"))?,
        name: VaultName::parse(&name).map_err(|_| invalid("name"))?,
        created_at: Timestamp::from_millis(row.get("created_at")),
    })
}
