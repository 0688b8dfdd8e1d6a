//! SQLite plumbing shared by the registry and vault databases: opening a file with Aegis's
//! settings (WAL, busy timeout, foreign keys, 0600 file created before SQLite sees it),
//! versioned migrations with a backup copy before upgrading, consistent online copies.
//!
//! Everything SQLite-specific stays in this module and its children; callers use the typed API
//! of `registry` and `vault`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::StoreError;
use crate::secure_fs;

/// One numbered migration of one database kind.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) sql: &'static str,
}

/// Migrations of `aegis.db`, in order.
pub(crate) const REGISTRY_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../migrations/sqlite/registry/0001_registry.sql"),
}];

/// Migrations of each `vault.db`, in order.
pub(crate) const VAULT_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/vault/0001_vault.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/vault/0002_ledger.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/vault/0003_ledger_no_request_index.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/sqlite/vault/0004_agents.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/sqlite/vault/0005_webhooks.sql"),
    },
];

/// The schema state of one database file, read without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Version recorded in the file (0 for a new file).
    pub current: i64,
    /// Highest version this binary knows.
    pub latest: i64,
}

impl SchemaStatus {
    /// Migrations this binary would apply.
    pub fn pending(&self) -> i64 {
        (self.latest - self.current).max(0)
    }
}

/// Opens (creating when `create` is set, with mode 0600) a SQLite file and migrates it.
pub(crate) async fn open(
    path: &Path,
    create: bool,
    busy_timeout: Duration,
    migrations: &[Migration],
) -> Result<SqlitePool, StoreError> {
    if create {
        secure_fs::ensure_private_file(path).map_err(StoreError::io("create", path))?;
    }
    let pool = connect(path, busy_timeout, false).await?;
    migrate(&pool, path, migrations).await?;
    Ok(pool)
}

/// Opens an existing SQLite file without creating or migrating it.
pub(crate) async fn connect(
    path: &Path,
    busy_timeout: Duration,
    read_only: bool,
) -> Result<SqlitePool, StoreError> {
    connect_with_sync(path, busy_timeout, read_only, SqliteSynchronous::Normal).await
}

/// Opens an existing SQLite file whose writes are flushed to disk as `synchronous` says (FULL
/// for strict ledger durability, NORMAL otherwise).
pub(crate) async fn connect_with_sync(
    path: &Path,
    busy_timeout: Duration,
    read_only: bool,
    synchronous: SqliteSynchronous,
) -> Result<SqlitePool, StoreError> {
    let text = path.to_str().ok_or_else(|| StoreError::Corrupted {
        file: path.to_path_buf(),
    })?;
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{text}"))
        .map_err(|_| StoreError::Corrupted {
            file: path.to_path_buf(),
        })?
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(busy_timeout)
        .foreign_keys(true);
    let options = if read_only {
        options
    } else {
        options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
    };
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(busy_timeout + Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| classify(e, path, "opening the database"))?;
    // Touch the schema so a file that is not a database fails here, not later.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(&pool)
        .await
        .map_err(|e| classify(e, path, "reading the schema"))?;
    Ok(pool)
}

/// Reads the schema version of an open pool.
pub(crate) async fn schema_status(
    pool: &SqlitePool,
    path: &Path,
    migrations: &[Migration],
) -> Result<SchemaStatus, StoreError> {
    let latest = migrations.last().map_or(0, |m| m.version);
    let exists: i64 = sqlx::query(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| classify(e, path, "reading the schema version"))?
    .get(0);
    let current = if exists == 0 {
        0
    } else {
        sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .fetch_one(pool)
            .await
            .map_err(|e| classify(e, path, "reading the schema version"))?
            .get(0)
    };
    Ok(SchemaStatus { current, latest })
}

/// Runs `PRAGMA quick_check`; returns the problems found (empty when the file is sound).
pub(crate) async fn quick_check(pool: &SqlitePool, path: &Path) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("PRAGMA quick_check")
        .fetch_all(pool)
        .await
        .map_err(|e| classify(e, path, "checking the database"))?;
    let findings: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    Ok(if findings == ["ok"] {
        Vec::new()
    } else {
        findings
    })
}

/// Writes a consistent copy of the live database to `target` (created 0600, must not exist).
pub(crate) async fn copy_to(pool: &SqlitePool, target: &Path) -> Result<(), StoreError> {
    secure_fs::create_private_file(target).map_err(StoreError::io("create", target))?;
    let text = target.to_str().ok_or_else(|| StoreError::Io {
        op: "write",
        path: target.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })?;
    let result = sqlx::query("VACUUM INTO ?").bind(text).execute(pool).await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(target);
        return Err(StoreError::Database {
            op: "copying the database",
            source: e,
        });
    }
    Ok(())
}

async fn migrate(
    pool: &SqlitePool,
    path: &Path,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let status = schema_status(pool, path, migrations).await?;
    if status.current > status.latest {
        return Err(StoreError::SchemaTooNew {
            found: status.current,
            supported: status.latest,
        });
    }
    if status.pending() == 0 {
        return Ok(());
    }
    if status.current > 0 {
        let backup = backup_path(path, status.current);
        if !backup.exists() {
            copy_to(pool, &backup).await?;
        }
    }
    for migration in migrations.iter().filter(|m| m.version > status.current) {
        let mut tx = pool
            .begin()
            .await
            .map_err(StoreError::db("starting a migration"))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("creating the schema_version table"))?;
        // A concurrent process may have applied it between our read and our write lock.
        let done: i64 = sqlx::query("SELECT count(*) FROM schema_version WHERE version = ?")
            .bind(migration.version)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("reading the schema version"))?
            .get(0);
        if done > 0 {
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("applying a migration"))?;
        sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (?, strftime('%s','now') * 1000)")
            .bind(migration.version)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("recording a migration"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing a migration"))?;
    }
    Ok(())
}

fn backup_path(path: &Path, version: i64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".bak-v{version}"));
    PathBuf::from(name)
}

/// Maps "file is not a database" and similar to [`StoreError::Corrupted`].
pub(crate) fn classify(error: sqlx::Error, path: &Path, op: &'static str) -> StoreError {
    let corrupt = match &error {
        sqlx::Error::Database(db) => {
            let message = db.message();
            message.contains("not a database") || message.contains("malformed")
        }
        _ => false,
    };
    if corrupt {
        StoreError::Corrupted {
            file: path.to_path_buf(),
        }
    } else {
        StoreError::Database { op, source: error }
    }
}

/// Which kind of database file an inspection looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `aegis.db`.
    Registry,
    /// A `vault.db`.
    Vault,
}

/// What an inspection of a database file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseHealth {
    /// Schema version state.
    pub schema: SchemaStatus,
    /// `quick_check` findings; empty when sound.
    pub problems: Vec<String>,
}

/// Opens a database file read-only, without migrating, and reports its schema version and
/// `quick_check` result (for `doctor`).
///
/// # Errors
/// [`StoreError::Corrupted`] for a file that is not a database; other database failures.
pub async fn inspect_database(
    path: &Path,
    kind: DatabaseKind,
    busy_timeout: Duration,
) -> Result<DatabaseHealth, StoreError> {
    let migrations = match kind {
        DatabaseKind::Registry => REGISTRY_MIGRATIONS,
        DatabaseKind::Vault => VAULT_MIGRATIONS,
    };
    let pool = connect(path, busy_timeout, true).await?;
    let schema = schema_status(&pool, path, migrations).await?;
    let problems = quick_check(&pool, path).await?;
    pool.close().await;
    Ok(DatabaseHealth { schema, problems })
}
