//! The `vault:` section: which vault, where its data lives, its master key and KDF costs.
//!
//! Reading the key file and deriving keys is the store's job; this is only the settings.

use std::path::PathBuf;

use secrecy::SecretString;

/// `vault.*` settings.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Vault used by commands and servers (`vault.name`, default `default`).
    pub name: String,
    /// Data directory (`vault.data_dir`); the loader makes it absolute, `.aegis` beside the
    /// config file by default.
    pub data_dir: PathBuf,
    /// The master key itself (`vault.master_key`); never printed.
    pub master_key: Option<SecretString>,
    /// A file holding the master key (`vault.master_key_file`).
    pub master_key_file: Option<PathBuf>,
    /// Argon2id costs for new vaults and `rekey`.
    pub kdf: KdfConfig,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            master_key: None,
            master_key_file: None,
            kdf: KdfConfig::default(),
        }
    }
}

/// `vault.kdf.*`: Argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfConfig {
    /// Memory in KiB (`vault.kdf.memory_kib`, default 65536, at least 19456).
    pub memory_kib: u32,
    /// Passes (`vault.kdf.iterations`, default 3, at least 2).
    pub iterations: u32,
    /// Lanes (`vault.kdf.parallelism`, default 1, from 1 to 16).
    pub parallelism: u32,
}

impl Default for KdfConfig {
    fn default() -> Self {
        Self {
            memory_kib: 65_536,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// The data directory's name, relative to the config file's directory (or the current one).
pub const DEFAULT_DATA_DIR: &str = ".aegis";
