//! `StoreError`: everything that can go wrong reading or writing the store, with a stable code.

use std::path::PathBuf;

/// A failure of the store. Messages name files and objects, never values of secret fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No data directory or registry database where one was expected.
    #[error("Aegis is not initialised here")]
    NotInitialized {
        /// The data directory that was looked at.
        dir: PathBuf,
    },
    /// The named vault does not exist.
    #[error("vault '{name}' does not exist")]
    VaultMissing {
        /// Vault name.
        name: String,
    },
    /// A vault of that name already exists.
    #[error("vault '{name}' already exists in {}", dir.display())]
    VaultExists {
        /// Vault name.
        name: String,
        /// Data directory holding it.
        dir: PathBuf,
    },
    /// A unique name is already taken.
    #[error("{kind} '{name}' already exists")]
    Conflict {
        /// What kind of object (`credential`).
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The named object does not exist.
    #[error("no {kind} named '{name}'")]
    NotFound {
        /// What kind of object (`credential`).
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The file is not a readable SQLite database.
    #[error("Database file is corrupted: {}", file.display())]
    Corrupted {
        /// The file.
        file: PathBuf,
    },
    /// The schema was written by a newer Aegis.
    #[error("database schema version {found} is newer than this aegis supports ({supported})")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Highest version this binary knows.
        supported: i64,
    },
    /// A stored value does not parse; the row was edited outside Aegis or is damaged.
    #[error("{table} row '{row}' has an invalid {field}")]
    InvalidRow {
        /// Table name.
        table: &'static str,
        /// Row name or id.
        row: String,
        /// Column that failed to parse.
        field: &'static str,
    },
    /// The ledger prefix being archived changed between reading it and deleting it.
    #[error("ledger entry {id} changed while it was being archived; nothing was deleted")]
    LedgerChanged {
        /// The last entry of the prefix.
        id: u64,
    },
    /// A database call failed.
    #[error("database error while {op}: {source}")]
    Database {
        /// What we were doing.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A file system call failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The stable CLI error code of SPEC.md §22.3 for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotInitialized { .. } => "not_initialized",
            Self::VaultMissing { .. } | Self::NotFound { .. } => "not_found",
            Self::VaultExists { .. } => "vault_exists",
            Self::Conflict { .. } | Self::LedgerChanged { .. } => "conflict",
            Self::Corrupted { .. } | Self::Database { .. } => "database",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::InvalidRow { .. } => "integrity",
            Self::Io { .. } => "io",
        }
    }

    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { op, source }
    }

    pub(crate) fn io(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { op, path, source }
    }
}
