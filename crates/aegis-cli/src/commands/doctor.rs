//! `aegis doctor`: every health check of SPEC.md §23 that applies to what is built, one line
//! each (`pass`, `warn`, `fail`), a summary, exit 1 when anything failed. Row integrity lives in
//! `doctor/integrity.rs`, the policies directory in `doctor/policies.rs`.

mod integrity;
mod policies;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aegis_core::timestamp::Timestamp;
use aegis_store::vault::VaultStore;
use aegis_store::{DatabaseKind, inspect_database, secure_fs};
use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::master_key::{self, KeySource};
use crate::output;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One line of the report.
struct Check {
    id: &'static str,
    status: Status,
    message: String,
    hint: Option<String>,
}

impl Check {
    fn new(id: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self {
            id,
            status,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs `aegis doctor` on a loaded context, or reports the configuration error that stopped
/// loading it.
pub(crate) async fn run(
    ctx: Result<&Context, CliError>,
    json_output: bool,
) -> Result<(), CliError> {
    let mut checks = Vec::new();
    match ctx {
        Err(err) => {
            let mut check = Check::new("config", Status::Fail, err.message.clone());
            check.hint = err.hint.clone();
            checks.push(check);
        }
        Ok(ctx) => {
            let source = ctx.loaded.path.as_ref().map_or_else(
                || "defaults and environment (no config file)".to_owned(),
                |p| p.display().to_string(),
            );
            checks.push(Check::new(
                "config",
                Status::Pass,
                format!("configuration valid: {source}"),
            ));
            checks.push(data_dir(ctx));
            let database_ok = database(ctx, &mut checks).await;
            if database_ok {
                vault_checks(ctx, &mut checks).await;
            }
            checks.extend(policies::check(ctx));
            checks.extend(upstream_ca(ctx));
            checks.extend(tls(ctx));
            checks.push(ports(ctx));
            checks.push(exposure(ctx));
        }
    }
    report(&checks, json_output);
    if checks.iter().any(|c| c.status == Status::Fail) {
        return Err(CliError::failure("doctor", "doctor found problems")
            .with_hint("fix the failed checks above"));
    }
    Ok(())
}

fn report(checks: &[Check], json_output: bool) {
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    if json_output {
        let list: Vec<_> = checks
            .iter()
            .map(|c| json!({ "id": c.id, "status": c.status.as_str(), "message": c.message, "hint": c.hint }))
            .collect();
        output::json(&json!({
            "checks": list,
            "summary": { "pass": count(Status::Pass), "warn": count(Status::Warn), "fail": count(Status::Fail) },
        }));
        return;
    }
    for check in checks {
        output::line(format!(
            "{:<4}  {:<12} {}",
            check.status.as_str(),
            check.id,
            check.message
        ));
        if let Some(hint) = &check.hint {
            output::line(format!("{:<4}  {:<12} hint: {hint}", "", ""));
        }
    }
    output::line(format!(
        "{} passed, {} warnings, {} failed",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
}

fn data_dir(ctx: &Context) -> Check {
    let root = ctx.data_dir.root();
    let Ok(meta) = std::fs::metadata(root) else {
        return Check::new(
            "data_dir",
            Status::Fail,
            format!("{} does not exist", root.display()),
        )
        .hint("run aegis init");
    };
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if me.is_some_and(|uid| uid != meta.uid()) {
        return Check::new(
            "data_dir",
            Status::Fail,
            format!("{} is owned by another user", root.display()),
        );
    }
    let mut loose = Vec::new();
    if meta.mode() & 0o077 != 0 {
        loose.push(format!(
            "{} is mode {:03o}",
            root.display(),
            meta.mode() & 0o777
        ));
    }
    for file in private_files(ctx) {
        if let Ok(mode) = secure_fs::mode_of(&file)
            && mode & 0o077 != 0
        {
            loose.push(format!("{} is mode {mode:03o}", file.display()));
        }
    }
    if loose.is_empty() {
        Check::new(
            "data_dir",
            Status::Pass,
            format!("{} (0700, files 0600)", root.display()),
        )
    } else {
        Check::new("data_dir", Status::Warn, loose.join("; "))
            .hint("chmod 700 the directory and 600 its files")
    }
}

fn private_files(ctx: &Context) -> Vec<std::path::PathBuf> {
    let mut databases = vec![ctx.data_dir.registry_db()];
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(ctx.data_dir.vaults_dir()) {
        for entry in entries.flatten() {
            databases.push(entry.path().join("vault.db"));
            files.push(entry.path().join("master.key"));
        }
    }
    for db in databases {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_os_string();
            name.push(suffix);
            files.push(std::path::PathBuf::from(name));
        }
    }
    files
}

/// Checks both databases; returns whether the vault database can be used for further checks.
async fn database(ctx: &Context, checks: &mut Vec<Check>) -> bool {
    let registry = ctx.data_dir.registry_db();
    let vault = ctx.data_dir.vault_db(ctx.vault.as_str());
    if !registry.is_file() {
        checks.push(
            Check::new(
                "database",
                Status::Fail,
                format!("no database in {}", ctx.data_dir.root().display()),
            )
            .hint("run aegis init"),
        );
        return false;
    }
    if !vault.is_file() {
        checks.push(
            Check::new(
                "database",
                Status::Fail,
                format!("vault '{}' does not exist", ctx.vault),
            )
            .hint("run aegis init, or pick another vault with --vault"),
        );
        return false;
    }
    let mut worst = Status::Pass;
    let mut notes = Vec::new();
    for (path, kind) in [
        (&registry, DatabaseKind::Registry),
        (&vault, DatabaseKind::Vault),
    ] {
        match inspect_database(path, kind, ctx.busy_timeout()).await {
            Err(err) => {
                worst = Status::Fail;
                notes.push(CliError::from(err).message);
            }
            Ok(health) => {
                if health.schema.current > health.schema.latest {
                    worst = Status::Fail;
                    notes.push(format!(
                        "{}: schema version {} is newer than this aegis supports ({})",
                        path.display(),
                        health.schema.current,
                        health.schema.latest
                    ));
                } else if !health.problems.is_empty() {
                    worst = Status::Fail;
                    notes.push(format!(
                        "{}: integrity check failed: {}",
                        path.display(),
                        health.problems.join("; ")
                    ));
                } else if health.schema.pending() > 0 {
                    worst = worst.max_with(Status::Warn);
                    notes.push(format!(
                        "{}: {} migration(s) pending (applied by the next command)",
                        path.display(),
                        health.schema.pending()
                    ));
                } else {
                    notes.push(format!(
                        "{} schema v{} ok",
                        file_name(path),
                        health.schema.current
                    ));
                }
            }
        }
    }
    let ok = worst != Status::Fail;
    let check = Check::new("database", worst, notes.join("; "));
    checks.push(if ok {
        check
    } else {
        check.hint("restore a backup (aegis db restore) or move the data directory aside and re-run aegis init")
    });
    ok
}

async fn vault_checks(ctx: &Context, checks: &mut Vec<Check>) {
    let store = match VaultStore::open(&ctx.data_dir, &ctx.vault, ctx.busy_timeout()).await {
        Ok(store) => store,
        Err(err) => {
            checks.push(Check::new(
                "database",
                Status::Fail,
                CliError::from(err).message,
            ));
            return;
        }
    };
    let sealed = store.meta().sealed;
    checks.push(if sealed {
        Check::new(
            "sealed",
            Status::Warn,
            format!("vault '{}' is sealed", ctx.vault),
        )
        .hint("aegis vault unseal")
    } else {
        Check::new(
            "sealed",
            Status::Pass,
            format!("vault '{}' is unsealed", ctx.vault),
        )
    });
    let credentials = match store.credentials().await {
        Ok(list) => list,
        Err(err) => {
            checks.push(Check::new(
                "integrity",
                Status::Fail,
                CliError::from(err).message,
            ));
            return;
        }
    };
    if !sealed {
        let lookup = master_key::locate(ctx);
        match ctx.unlock(&store).await {
            Err(err) => checks.push({
                let mut check = Check::new("master_key", Status::Fail, err.message.clone());
                check.hint = err.hint.clone();
                check
            }),
            Ok(keys) => {
                let source = lookup.used.clone();
                checks.push(match &source {
                    Some(KeySource::ConfigValue { .. }) => Check::new(
                        "master_key",
                        Status::Warn,
                        "master key matches, but it is stored in plain text in the config file",
                    )
                    .hint("prefer AEGIS_MASTER_KEY or a 0600 key file"),
                    Some(KeySource::VaultFile(path))
                        if secure_fs::mode_of(path).is_ok_and(|m| m & 0o077 != 0) =>
                    {
                        Check::new(
                            "master_key",
                            Status::Warn,
                            format!("{} is readable by other users", path.display()),
                        )
                        .hint(format!("chmod 600 {}", path.display()))
                    }
                    Some(source) => Check::new(
                        "master_key",
                        Status::Pass,
                        format!("master key from {} matches", source.label()),
                    ),
                    None => Check::new("master_key", Status::Fail, "AEGIS_MASTER_KEY is not set"),
                });
                checks.push(integrity::check(&keys, &store, &credentials).await);
            }
        }
    }
    let now = Timestamp::from_system_time(SystemTime::now());
    let soon = now.plus_days(7);
    let mut expired = Vec::new();
    let mut expiring = Vec::new();
    for stored in &credentials {
        let c = &stored.credential;
        match c.expires_at {
            Some(_) if c.is_expired(now) => expired.push(c.name.to_string()),
            Some(at) if at <= soon => expiring.push(format!(
                "{} ({})",
                c.name,
                crate::commands::vault::expiry_text(c, now)
            )),
            _ => {}
        }
    }
    checks.push(if expired.is_empty() && expiring.is_empty() {
        Check::new(
            "credentials",
            Status::Pass,
            format!(
                "{} credential(s), none expiring within 7 days",
                credentials.len()
            ),
        )
    } else {
        let mut parts = Vec::new();
        if !expired.is_empty() {
            parts.push(format!("expired: {}", expired.join(", ")));
        }
        if !expiring.is_empty() {
            parts.push(format!("expiring within 7 days: {}", expiring.join(", ")));
        }
        Check::new("credentials", Status::Warn, parts.join("; "))
            .hint("aegis vault rotate --ttl <days> or aegis vault update --ttl <days>")
    });
    store.close().await;
}

fn upstream_ca(ctx: &Context) -> Option<Check> {
    let path = ctx.loaded.config.gate.upstream_ca_file.as_ref()?;
    Some(match std::fs::read_to_string(path) {
        Err(e) => Check::new(
            "upstream_ca",
            Status::Fail,
            CliError::io("read", path, &e).message,
        ),
        Ok(text) if !text.contains("-----BEGIN CERTIFICATE-----") => Check::new(
            "upstream_ca",
            Status::Fail,
            format!("{} holds no PEM certificate", path.display()),
        ),
        Ok(text) => Check::new(
            "upstream_ca",
            Status::Pass,
            format!(
                "{}: {} certificate(s)",
                path.display(),
                text.matches("-----BEGIN CERTIFICATE-----").count()
            ),
        ),
    })
}

fn tls(ctx: &Context) -> Option<Check> {
    let tls = &ctx.loaded.config.gate.tls;
    let (cert, key) = (tls.cert.as_ref()?, tls.key.as_ref()?);
    // The same loader the gate uses: unreadable files, bad PEM and a key that does not belong
    // to the certificate all fail here as they would at start-up.
    if let Err(err) = aegis_server::tls::server_config(cert, key) {
        return Some(Check::new("tls", Status::Fail, err.to_string()).hint(
            "check gate.tls.cert and gate.tls.key (aegis init --generate-cert makes a pair)",
        ));
    }
    if secure_fs::mode_of(key).is_ok_and(|m| m & 0o077 != 0) {
        return Some(
            Check::new(
                "tls",
                Status::Warn,
                format!("{} is readable by other users", key.display()),
            )
            .hint(format!("chmod 600 {}", key.display())),
        );
    }
    Some(Check::new(
        "tls",
        Status::Pass,
        format!("certificate {} and key readable", cert.display()),
    ))
}

fn ports(ctx: &Context) -> Check {
    let gate = &ctx.loaded.config.gate;
    let addr = SocketAddr::new(gate.bind, gate.port);
    if TcpListener::bind(addr).is_ok() {
        return Check::new("ports", Status::Pass, format!("gate port {addr} is free"));
    }
    if answers_as_aegis(addr) {
        Check::new(
            "ports",
            Status::Pass,
            format!("gate port {addr} is used by a running aegis"),
        )
    } else {
        Check::new(
            "ports",
            Status::Fail,
            format!("Port {} is already in use by another program", gate.port),
        )
        .hint("set gate.port to a free port or stop the other program")
    }
}

/// Asks `/_aegis/health` on a busy port whether the listener is an Aegis gate.
fn answers_as_aegis(addr: SocketAddr) -> bool {
    let timeout = Duration::from_millis(500);
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET /_aegis/health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    text.contains("\"live\"") && text.contains("\"vault\"")
}

fn exposure(ctx: &Context) -> Check {
    let gate = &ctx.loaded.config.gate;
    let tls_on = gate.tls.cert.is_some() && gate.tls.key.is_some();
    if gate.bind.is_loopback() || (tls_on && gate.require_agent_auth) {
        return Check::new(
            "exposure",
            Status::Pass,
            format!("gate binds {}", gate.bind),
        );
    }
    let mut missing = Vec::new();
    if !tls_on {
        missing.push("TLS");
    }
    if !gate.require_agent_auth {
        missing.push("agent authentication");
    }
    Check::new(
        "exposure",
        Status::Warn,
        format!("gate binds {} without {}", gate.bind, missing.join(" and ")),
    )
    .hint("bind 127.0.0.1, or enable gate.tls and gate.require_agent_auth")
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl Status {
    fn max_with(self, other: Status) -> Status {
        match (self, other) {
            (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
            (Status::Warn, _) | (_, Status::Warn) => Status::Warn,
            _ => Status::Pass,
        }
    }
}
