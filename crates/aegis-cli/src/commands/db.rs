//! `aegis db backup` and `aegis db restore` (compatibility commands): consistent online copies
//! of `aegis.db` and every vault database, and putting such a copy back.

use std::fs::File;
use std::path::{Path, PathBuf};

use aegis_core::timestamp::Timestamp;
use aegis_store::{DatabaseKind, inspect_database, secure_fs};
use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// Runs `aegis db backup`.
pub(crate) async fn backup(ctx: &Context, output_dir: Option<&Path>) -> Result<(), CliError> {
    let registry = ctx.registry().await?;
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let target = match output_dir {
        Some(dir) => ctx.cwd.join(dir),
        None => ctx.cwd.join(format!(
            "aegis-backup-{}",
            now.to_rfc3339().replace([':', '.'], "-")
        )),
    };
    if target.exists() {
        return Err(
            CliError::failure("io", format!("{} already exists", target.display()))
                .with_hint("choose a new directory with -o"),
        );
    }
    secure_fs::create_private_dir(&target).map_err(|e| CliError::io("create", &target, &e))?;
    let mut files = Vec::new();
    let registry_copy = target.join("aegis.db");
    registry.copy_to(&registry_copy).await?;
    files.push((registry_copy, DatabaseKind::Registry));
    for record in registry.vaults().await? {
        let store =
            aegis_store::vault::VaultStore::open(&ctx.data_dir, &record.name, ctx.busy_timeout())
                .await?;
        let dir = target.join("vaults").join(record.name.as_str());
        secure_fs::create_private_dir(&dir).map_err(|e| CliError::io("create", &dir, &e))?;
        let copy = dir.join("vault.db");
        store.copy_to(&copy).await?;
        store.close().await;
        files.push((copy, DatabaseKind::Vault));
    }
    registry.close().await;
    for (file, kind) in &files {
        verify_copy(file, *kind, ctx).await?;
    }
    if ctx.json {
        output::json(&json!({
            "backup": target.display().to_string(),
            "files": files.iter().map(|(f, _)| f.display().to_string()).collect::<Vec<_>>(),
        }));
    } else {
        output::line(format!(
            "Backed up {} database(s) to {}",
            files.len(),
            target.display()
        ));
    }
    Ok(())
}

/// Runs `aegis db restore`.
pub(crate) async fn restore(ctx: &Context, input: &Path, force: bool) -> Result<(), CliError> {
    let source = ctx.cwd.join(input);
    let source_registry = source.join("aegis.db");
    if !source_registry.is_file() {
        return Err(CliError::usage(format!(
            "{} is not a backup written by aegis db backup (no aegis.db)",
            source.display()
        )));
    }
    let mut files: Vec<(PathBuf, PathBuf, DatabaseKind)> = vec![(
        source_registry,
        ctx.data_dir.registry_db(),
        DatabaseKind::Registry,
    )];
    let vaults_dir = source.join("vaults");
    if vaults_dir.is_dir() {
        let entries =
            std::fs::read_dir(&vaults_dir).map_err(|e| CliError::io("read", &vaults_dir, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CliError::io("read", &vaults_dir, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            aegis_core::names::VaultName::parse(&name).map_err(|_| {
                CliError::usage(format!("backup holds an invalid vault name '{name}'"))
            })?;
            files.push((
                entry.path().join("vault.db"),
                ctx.data_dir.vault_db(&name),
                DatabaseKind::Vault,
            ));
        }
    }
    for (from, _, kind) in &files {
        verify_copy(from, *kind, ctx).await?;
    }
    let existing: Vec<&PathBuf> = files
        .iter()
        .map(|(_, to, _)| to)
        .filter(|to| to.exists())
        .collect();
    if !existing.is_empty() && !force {
        return Err(CliError::failure(
            "conflict",
            format!("{} already holds databases", ctx.data_dir.root().display()),
        )
        .with_hint("add --force to replace them (the current files are moved to archive/)"));
    }
    for (_, to, kind) in &files {
        if *kind == DatabaseKind::Vault {
            refuse_if_served(to)?;
        }
    }
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let archive = ctx.data_dir.archive_dir().join(format!(
        "restore-{}",
        now.to_rfc3339().replace([':', '.'], "-")
    ));
    for (from, to, _) in &files {
        if to.exists() {
            let relative = to.strip_prefix(ctx.data_dir.root()).unwrap_or(to);
            let moved = archive.join(relative);
            if let Some(parent) = moved.parent() {
                secure_fs::create_private_dir(parent)
                    .map_err(|e| CliError::io("create", parent, &e))?;
            }
            for suffix in ["", "-wal", "-shm"] {
                let live = with_suffix(to, suffix);
                if live.exists() {
                    std::fs::rename(&live, with_suffix(&moved, suffix))
                        .map_err(|e| CliError::io("move", &live, &e))?;
                }
            }
        }
        if let Some(parent) = to.parent() {
            secure_fs::create_private_dir(parent)
                .map_err(|e| CliError::io("create", parent, &e))?;
        }
        let bytes = std::fs::read(from).map_err(|e| CliError::io("read", from, &e))?;
        secure_fs::write_atomic(to, &bytes).map_err(|e| CliError::io("write", to, &e))?;
    }
    if ctx.json {
        output::json(&json!({ "restored": files.len(), "archive": archive.display().to_string() }));
    } else {
        output::line(format!(
            "Restored {} database(s) from {}; replaced files are in {}",
            files.len(),
            source.display(),
            archive.display()
        ));
    }
    Ok(())
}

/// A running gate holds `gate.lock` shared; an exclusive try-lock fails while it does.
fn refuse_if_served(vault_db: &Path) -> Result<(), CliError> {
    let Some(dir) = vault_db.parent() else {
        return Ok(());
    };
    let lock_path = dir.join("gate.lock");
    if !lock_path.exists() {
        return Ok(());
    }
    let file = File::open(&lock_path).map_err(|e| CliError::io("open", &lock_path, &e))?;
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(_) => Err(CliError::failure(
            "conflict",
            format!("a running aegis process holds {}", lock_path.display()),
        )
        .with_hint("stop the gate, dashboard or MCP server using this vault first")),
    }
}

async fn verify_copy(file: &Path, kind: DatabaseKind, ctx: &Context) -> Result<(), CliError> {
    let health = inspect_database(file, kind, ctx.busy_timeout()).await?;
    if !health.problems.is_empty() || health.schema.current == 0 {
        return Err(CliError::failure(
            "database",
            format!("the copy {} failed verification", file.display()),
        ));
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}
