//! Where the master key of the active vault comes from (SPEC.md §6.2), in order:
//! `AEGIS_MASTER_KEY`, `AEGIS_MASTER_KEY_FILE` or `vault.master_key_file`, `vault.master_key`,
//! then `<data_dir>/vaults/<vault>/master.key`. The first source present is used; there is no
//! fallback to the next one when it holds a wrong key.

use std::path::PathBuf;

use aegis_core::crypto::MasterKey;
use aegis_store::secure_fs;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::config::Source;
use crate::context::Context;
use crate::error::CliError;

/// One place a master key can come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `AEGIS_MASTER_KEY`.
    EnvValue,
    /// A key file named by `AEGIS_MASTER_KEY_FILE` or `vault.master_key_file`.
    KeyFile { path: PathBuf, from: String },
    /// `vault.master_key` in the config file.
    ConfigValue { file: Option<PathBuf> },
    /// `master.key` in the vault directory.
    VaultFile(PathBuf),
}

impl KeySource {
    /// A short human description, never containing the key.
    pub(crate) fn label(&self) -> String {
        match self {
            Self::EnvValue => "AEGIS_MASTER_KEY".to_owned(),
            Self::KeyFile { path, from } => format!("{from} ({})", path.display()),
            Self::ConfigValue { file: Some(file) } => {
                format!("vault.master_key in {}", file.display())
            }
            Self::ConfigValue { file: None } => "vault.master_key".to_owned(),
            Self::VaultFile(path) => format!("{}", path.display()),
        }
    }

    /// A stable identifier for `--json` output.
    pub(crate) fn id(&self) -> &'static str {
        match self {
            Self::EnvValue => "env",
            Self::KeyFile { .. } => "key_file",
            Self::ConfigValue { .. } => "config",
            Self::VaultFile(_) => "vault_file",
        }
    }
}

/// The sources looked at, in order, and the one that will be used.
pub(crate) struct KeyLookup {
    /// Every source in order with whether it is present.
    pub(crate) candidates: Vec<(KeySource, bool)>,
    /// The first present source.
    pub(crate) used: Option<KeySource>,
}

/// Looks at every source in order without reading any key.
pub(crate) fn locate(ctx: &Context) -> KeyLookup {
    let vault = &ctx.loaded.config.vault;
    let key_source = ctx.loaded.source_of("vault.master_key");
    let env_value_present =
        matches!(key_source, Some(Source::Env(_))) && vault.master_key.is_some();
    let file_value_present = vault.master_key.is_some() && !env_value_present;
    let file_from = match ctx.loaded.source_of("vault.master_key_file") {
        Some(Source::Env(var)) => var.clone(),
        _ => "vault.master_key_file".to_owned(),
    };
    let vault_file = ctx.data_dir.master_key_file(ctx.vault.as_str());
    let candidates = vec![
        (KeySource::EnvValue, env_value_present),
        (
            KeySource::KeyFile {
                path: vault.master_key_file.clone().unwrap_or_default(),
                from: file_from,
            },
            vault.master_key_file.is_some(),
        ),
        (
            KeySource::ConfigValue {
                file: ctx.loaded.path.clone(),
            },
            file_value_present,
        ),
        (
            KeySource::VaultFile(vault_file.clone()),
            vault_file.is_file(),
        ),
    ];
    let used = candidates
        .iter()
        .find(|(_, present)| *present)
        .map(|(s, _)| s.clone());
    KeyLookup { candidates, used }
}

/// Reads and parses the key from one source. Key files must not be readable by group or others.
///
/// # Errors
/// `config_invalid` (exit 2) for an unreadable, too-open or malformed key; the message never
/// contains key material.
pub(crate) fn read(ctx: &Context, source: &KeySource) -> Result<MasterKey, CliError> {
    let malformed = || {
        CliError::config(format!("the master key from {} is malformed", source.label()))
            .with_hint("a master key is 43 base64url characters or 64 hex characters, as printed by aegis init")
    };
    match source {
        KeySource::EnvValue | KeySource::ConfigValue { .. } => {
            let secret = ctx
                .loaded
                .config
                .vault
                .master_key
                .as_ref()
                .ok_or_else(malformed)?;
            MasterKey::parse(secret.expose_secret()).map_err(|_| malformed())
        }
        KeySource::KeyFile { path, .. } | KeySource::VaultFile(path) => {
            let mode = secure_fs::mode_of(path).map_err(|e| CliError::io("read", path, &e))?;
            if mode & 0o077 != 0 {
                return Err(CliError::config(format!(
                    "key file {} is readable by other users (mode {mode:03o})",
                    path.display()
                ))
                .with_hint(format!("chmod 600 {}", path.display())));
            }
            let text = Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, &e))?,
            );
            MasterKey::parse(&text).map_err(|_| malformed())
        }
    }
}
