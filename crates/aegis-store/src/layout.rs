//! Where things live inside a data directory (SPEC.md §4.5).

use std::path::{Path, PathBuf};

/// A data directory and the paths of the files inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Wraps a data directory path (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `aegis.db`: users and the vault registry.
    pub fn registry_db(&self) -> PathBuf {
        self.root.join("aegis.db")
    }

    /// `vaults/`: one directory per vault.
    pub fn vaults_dir(&self) -> PathBuf {
        self.root.join("vaults")
    }

    /// `vaults/<vault>/`.
    pub fn vault_dir(&self, vault: &str) -> PathBuf {
        self.vaults_dir().join(vault)
    }

    /// `vaults/<vault>/vault.db`.
    pub fn vault_db(&self, vault: &str) -> PathBuf {
        self.vault_dir(vault).join("vault.db")
    }

    /// `vaults/<vault>/master.key`, present only when written by unseal or `--write-secrets`.
    pub fn master_key_file(&self, vault: &str) -> PathBuf {
        self.vault_dir(vault).join("master.key")
    }

    /// `archive/`: vaults moved aside by `init --force` and replaced backup files.
    pub fn archive_dir(&self) -> PathBuf {
        self.root.join("archive")
    }
}
