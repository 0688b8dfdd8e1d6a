//! `aegis init`: data directory, a new vault with its key material, the config file.

use std::path::{Path, PathBuf};

use aegis_core::crypto::{KdfParams, MasterKey, VaultKeys, random_uuid};
use aegis_core::ledger::{LedgerSigningKey, SystemEvent, key_id};
use aegis_core::timestamp::Timestamp;
use aegis_store::registry::{Registry, VaultRecord};
use aegis_store::vault::{VaultMeta, VaultStore};
use aegis_store::{StoreError, secure_fs};
use secrecy::ExposeSecret;

use crate::cli::InitArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::{audit, certs, config_file, output};

/// Runs `aegis init`.
pub(crate) async fn run(ctx: &Context, args: &InitArgs) -> Result<(), CliError> {
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let registry = Registry::create(&ctx.data_dir, ctx.busy_timeout()).await?;
    let vault_dir = ctx.data_dir.vault_dir(ctx.vault.as_str());
    let exists = vault_dir.exists() || registry.vault(&ctx.vault).await?.is_some();
    let mut archived = None;
    if exists {
        if !args.force {
            return Err(StoreError::VaultExists {
                name: ctx.vault.to_string(),
                dir: ctx.data_dir.root().to_path_buf(),
            }
            .into());
        }
        if vault_dir.exists() {
            archived = Some(archive_vault(ctx, &vault_dir, now)?);
        }
        registry.unregister(&ctx.vault).await?;
    }

    let salt = vault_salt(ctx)?;
    let kdf = KdfParams {
        memory_kib: ctx.loaded.config.vault.kdf.memory_kib,
        iterations: ctx.loaded.config.vault.kdf.iterations,
        parallelism: ctx.loaded.config.vault.kdf.parallelism,
    }
    .validate()?;
    let master = MasterKey::generate()?;
    let vault_id = random_uuid()?;
    let derive_key = master.clone();
    let derive_salt = salt.clone();
    let keys = tokio::task::spawn_blocking(move || {
        VaultKeys::derive(&derive_key, &derive_salt, kdf, *vault_id.as_bytes())
    })
    .await
    .map_err(|_| CliError::internal())??;
    let signing = LedgerSigningKey::generate().map_err(|_| CliError::internal())?;
    let envelope = signing
        .wrap(keys.ledger_signing_key(), &vault_id)
        .map_err(|_| CliError::internal())?;
    let meta = VaultMeta {
        id: vault_id,
        name: ctx.vault.clone(),
        salt,
        kdf,
        key_check: keys.key_check_value().to_vec(),
        sealed: false,
        created_at: now,
        ledger_public_key: Some(signing.public_key().to_vec()),
        ledger_key_envelope: Some(envelope),
    };
    let mut detail = serde_json::Map::new();
    detail.insert("vault".into(), ctx.vault.as_str().into());
    detail.insert("vault_id".into(), vault_id.to_string().into());
    detail.insert("ledger_key_id".into(), key_id(&signing.public_key()).into());
    let first = audit::cli_event(SystemEvent::VaultCreated).with_detail(detail);
    let store = VaultStore::create(&ctx.data_dir, &meta, ctx.busy_timeout(), first).await?;
    registry
        .register(&VaultRecord {
            id: vault_id,
            name: ctx.vault.clone(),
            created_at: now,
        })
        .await?;
    store.close().await;
    registry.close().await;

    let config_path = ctx
        .loaded
        .path
        .clone()
        .unwrap_or_else(|| ctx.explicit_or_default_config_path());
    let cert = if args.generate_cert {
        Some(certs::write_self_signed(&ctx.cwd.join("certs"))?)
    } else {
        None
    };
    let created_config = !config_path.exists();
    if created_config {
        config_file::write_template(&config_path, &ctx.vault, cert.as_ref())?;
    } else if let Some(cert) = &cert {
        config_file::point_gate_tls(&config_path, cert)?;
    }
    let encoded = master.to_encoded();
    if args.write_secrets {
        config_file::set_master_key(&config_path, encoded.expose_secret())?;
    }

    if ctx.json {
        let mut body = serde_json::json!({
            "vault": ctx.vault.as_str(),
            "vault_id": vault_id.to_string(),
            "data_dir": ctx.data_dir.root().display().to_string(),
            "config": config_path.display().to_string(),
            "config_created": created_config,
            "master_key": encoded.expose_secret(),
            "master_key_written": args.write_secrets,
        });
        if let Some(dir) = &archived {
            body["archived_to"] = serde_json::Value::String(dir.display().to_string());
        }
        output::json(&body);
    } else {
        if let Some(dir) = &archived {
            output::line(format!("Moved the previous vault to {}", dir.display()));
        }
        output::block(&[
            ("vault", format!("{} ({vault_id})", ctx.vault)),
            ("data dir", ctx.data_dir.root().display().to_string()),
            (
                "config",
                format!(
                    "{}{}",
                    config_path.display(),
                    if created_config { " (created)" } else { "" }
                ),
            ),
        ]);
        if let Some(cert) = &cert {
            output::line(format!(
                "TLS certificate: {} (key {})",
                cert.cert.display(),
                cert.key.display()
            ));
        }
        output::line("");
        output::line("Master key (shown once; store it somewhere safe):");
        output::line(format!("  {}", encoded.expose_secret()));
        output::line("");
        if args.write_secrets {
            output::warn(format!(
                "the master key is stored in plain text in {}, next to the data",
                config_path.display()
            ));
        } else {
            output::line("Make it available to aegis, e.g.:");
            output::line(format!(
                "  export AEGIS_MASTER_KEY={}",
                encoded.expose_secret()
            ));
        }
    }
    Ok(())
}

/// Moves a vault directory to `archive/<vault>-<UTC timestamp>/`; nothing is deleted.
fn archive_vault(ctx: &Context, vault_dir: &Path, now: Timestamp) -> Result<PathBuf, CliError> {
    let archive = ctx.data_dir.archive_dir();
    secure_fs::create_private_dir(&archive).map_err(|e| CliError::io("create", &archive, &e))?;
    let stamp = now.to_rfc3339().replace([':', '.'], "-");
    let target = archive.join(format!("{}-{stamp}", ctx.vault));
    std::fs::rename(vault_dir, &target).map_err(|e| CliError::io("move", vault_dir, &e))?;
    Ok(target)
}

/// The salt of the new vault: `AEGIS_SALT` (hex, at least 16 bytes) or 16 random bytes.
fn vault_salt(ctx: &Context) -> Result<Vec<u8>, CliError> {
    if let Some(text) = ctx.env.get("AEGIS_SALT").filter(|t| !t.is_empty()) {
        let bytes = hex::decode(text.trim()).map_err(|_| {
            CliError::config("AEGIS_SALT must be hex")
                .with_hint("use at least 32 hex characters (16 bytes)")
        })?;
        if bytes.len() < 16 {
            return Err(CliError::config(
                "AEGIS_SALT must be at least 16 bytes (32 hex characters)",
            ));
        }
        return Ok(bytes);
    }
    let mut salt = vec![0u8; 16];
    aegis_core::crypto::random_bytes(&mut salt)?;
    Ok(salt)
}
