//! What every command starts from: the layered configuration, the data directory, the active
//! vault, and the way to the vault's keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aegis_core::crypto::VaultKeys;
use aegis_core::ledger::LedgerSigningKey;
use aegis_core::names::VaultName;
use aegis_store::registry::Registry;
use aegis_store::vault::VaultStore;
use aegis_store::{DataDir, StoreError};

use crate::config::{self, LoadRequest, Loaded};
use crate::error::{CliError, EXIT_DENIED, EXIT_USAGE};
use crate::master_key;
use crate::output;

/// The resolved environment of one command run.
pub(crate) struct Context {
    /// Whether `--json` was given.
    pub(crate) json: bool,
    /// The layered configuration and where each value came from.
    pub(crate) loaded: Loaded,
    /// The process environment as read once at start.
    pub(crate) env: BTreeMap<String, String>,
    /// The working directory.
    pub(crate) cwd: PathBuf,
    /// The data directory.
    pub(crate) data_dir: DataDir,
    /// The active vault.
    pub(crate) vault: VaultName,
    /// A named config file that does not exist yet (`init` creates it).
    config_target: Option<PathBuf>,
}

impl Context {
    /// Loads the configuration (flags > env > file > defaults) and prints its warnings.
    ///
    /// # Errors
    /// The first configuration error (exit 2).
    pub(crate) fn load(
        explicit_config: Option<PathBuf>,
        flags: Vec<(&'static str, String)>,
        json: bool,
    ) -> Result<Self, CliError> {
        Self::load_with(explicit_config, process_env(), flags, json)
    }

    fn load_ignoring_named(
        flags: Vec<(&'static str, String)>,
        json: bool,
    ) -> Result<Self, CliError> {
        let mut env = process_env();
        env.remove("AEGIS_CONFIG");
        Self::load_with(None, env, flags, json)
    }

    fn load_with(
        explicit_config: Option<PathBuf>,
        env: BTreeMap<String, String>,
        flags: Vec<(&'static str, String)>,
        json: bool,
    ) -> Result<Self, CliError> {
        let cwd =
            std::env::current_dir().map_err(|e| CliError::io("read", &PathBuf::from("."), &e))?;
        let loaded = config::load(LoadRequest {
            explicit_path: explicit_config,
            env: env.clone(),
            flags,
            cwd: cwd.clone(),
        })
        .map_err(|errors| config::first_error(&errors))?;
        for warning in &loaded.warnings {
            output::warn(warning);
        }
        let vault = VaultName::parse(&loaded.config.vault.name)
            .map_err(|e| CliError::config(format!("vault.name: {e}")))?;
        let data_dir = DataDir::new(loaded.config.vault.data_dir.clone());
        Ok(Self {
            json,
            loaded,
            env,
            cwd,
            data_dir,
            vault,
            config_target: None,
        })
    }

    /// How long to wait for the store's write lock.
    pub(crate) fn busy_timeout(&self) -> Duration {
        self.loaded.config.storage.busy_timeout
    }

    /// Opens the registry of an initialised data directory.
    ///
    /// # Errors
    /// `not_initialized` when there is none; database failures.
    pub(crate) async fn registry(&self) -> Result<Registry, CliError> {
        Ok(Registry::open(&self.data_dir, self.busy_timeout()).await?)
    }

    /// Opens the active vault's database.
    ///
    /// # Errors
    /// `not_initialized` when the data directory or the vault does not exist.
    pub(crate) async fn vault_store(&self) -> Result<VaultStore, CliError> {
        if !self.data_dir.registry_db().is_file() {
            return Err(StoreError::NotInitialized {
                dir: self.data_dir.root().to_path_buf(),
            }
            .into());
        }
        match VaultStore::open(&self.data_dir, &self.vault, self.busy_timeout()).await {
            Err(StoreError::VaultMissing { name }) => Err(CliError::failure(
                "not_initialized",
                format!(
                    "vault '{name}' does not exist in {}",
                    self.data_dir.root().display()
                ),
            )
            .with_hint("run aegis init, or pick another vault with --vault")),
            other => Ok(other?),
        }
    }

    /// Finds the master key, derives the vault's keys off the async workers and checks them
    /// against the stored key-check value. Refuses a sealed vault.
    ///
    /// # Errors
    /// `vault_sealed` (1), `master_key_missing` (2), `config_invalid` for a malformed key (2),
    /// `master_key_invalid` (3).
    pub(crate) async fn unlock(&self, store: &VaultStore) -> Result<VaultKeys, CliError> {
        let meta = store.meta().clone();
        if meta.sealed {
            return Err(CliError::failure(
                "vault_sealed",
                format!("vault '{}' is sealed", meta.name),
            )
            .with_hint("run aegis vault unseal"));
        }
        if let Some(salt) = self.env.get("AEGIS_SALT").filter(|s| !s.trim().is_empty()) {
            let matches = hex::decode(salt.trim()).is_ok_and(|bytes| bytes == meta.salt);
            if !matches {
                return Err(CliError::config(format!(
                    "AEGIS_SALT does not match the salt stored in vault '{}'",
                    meta.name
                ))
                .with_hint("unset AEGIS_SALT; it only seeds new vaults"));
            }
        }
        let lookup = master_key::locate(self);
        let Some(source) = lookup.used else {
            return Err(CliError::new(
                "master_key_missing",
                EXIT_USAGE,
                "AEGIS_MASTER_KEY is not set",
            )
            .with_hint(
                "export AEGIS_MASTER_KEY=<key from aegis init> or run aegis init --write-secrets",
            ));
        };
        let master = master_key::read(self, &source)?;
        let keys = tokio::task::spawn_blocking(move || {
            VaultKeys::derive(&master, &meta.salt, meta.kdf, *meta.id.as_bytes())
        })
        .await
        .map_err(|_| CliError::internal())??;
        if !keys.matches_key_check(&store.meta().key_check) {
            return Err(
                CliError::new("master_key_invalid", EXIT_DENIED, "Invalid master key").with_hint(
                    format!(
                        "the key from {} does not belong to vault '{}'",
                        source.label(),
                        store.meta().name
                    ),
                ),
            );
        }
        Ok(keys)
    }
}

/// Unwraps the vault's ledger signing key (SPEC.md §15.3) with the unlocked vault keys; `None`
/// for a vault created before ledger keys existed.
///
/// # Errors
/// `integrity` when the stored envelope does not open under these keys.
pub(crate) fn ledger_signing_key(
    store: &VaultStore,
    keys: &VaultKeys,
) -> Result<Option<LedgerSigningKey>, CliError> {
    let Some(envelope) = &store.meta().ledger_key_envelope else {
        return Ok(None);
    };
    LedgerSigningKey::unwrap(keys.ledger_signing_key(), &store.meta().id, envelope)
        .map(Some)
        .map_err(|_| {
            CliError::failure("integrity", "the ledger signing key cannot be unwrapped")
                .with_hint("run aegis doctor")
        })
}

/// The `AEGIS_*` variables of the process environment, read once.
fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("AEGIS_"))
        .collect()
}

impl Context {
    /// Like [`Context::load`], but an explicitly named config file that does not exist yet is
    /// allowed: `init` creates it.
    ///
    /// # Errors
    /// The first configuration error (exit 2).
    pub(crate) fn load_for_init(
        explicit_config: Option<PathBuf>,
        flags: Vec<(&'static str, String)>,
        json: bool,
    ) -> Result<Self, CliError> {
        let named = explicit_config.clone().or_else(|| {
            std::env::var_os("AEGIS_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        match named {
            Some(path) if !path.exists() => {
                let mut ctx = Self::load_ignoring_named(flags, json)?;
                let target = ctx.cwd.join(&path);
                if matches!(
                    ctx.loaded.source_of("vault.data_dir"),
                    None | Some(config::Source::Default)
                ) {
                    let dir = target
                        .parent()
                        .map_or_else(|| ctx.cwd.clone(), std::path::Path::to_path_buf);
                    ctx.data_dir = DataDir::new(dir.join(".aegis"));
                }
                ctx.config_target = Some(target);
                Ok(ctx)
            }
            _ => Self::load(explicit_config, flags, json),
        }
    }

    /// The config file `init` writes to: the one loaded, the one named, or ./aegis.config.yaml.
    pub(crate) fn explicit_or_default_config_path(&self) -> PathBuf {
        self.config_target
            .clone()
            .or_else(|| self.loaded.path.clone())
            .unwrap_or_else(|| self.cwd.join("aegis.config.yaml"))
    }
}
