//! `aegis mcp serve` and `aegis mcp config` (SPEC.md §16): the MCP server on the same pipeline
//! as the gate, and the host configuration fragment that starts it.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use aegis_core::config::{ConfigEnum as _, McpTransport};
use aegis_core::ledger::{EntryContent, SystemEvent, Via as LedgerVia};
use aegis_engine::health::HealthInfo;
use aegis_mcp::streamable_http::{HttpSettings, serve_http};
use aegis_mcp::{AegisMcp, AgentIdentity, McpSettings};

use crate::cli::{McpConfigArgs, McpHost, McpServeArgs};
use crate::commands::gate::init_logging;
use crate::context::Context;
use crate::engine_runtime::EngineRuntime;
use crate::error::{CliError, EXIT_DENIED};
use crate::output;

/// The `aegis mcp serve` flags that set configuration keys.
pub(crate) fn serve_flags(args: &McpServeArgs) -> Vec<(&'static str, String)> {
    let mut flags = Vec::new();
    if let Some(transport) = &args.transport {
        flags.push(("mcp.transport", transport.clone()));
    }
    if let Some(port) = args.port {
        flags.push(("mcp.port", port.to_string()));
    }
    flags
}

/// Runs `aegis mcp serve`. Standard output belongs to the MCP transport: nothing else is
/// printed there.
pub(crate) async fn serve(ctx: &Context, args: &McpServeArgs) -> Result<(), CliError> {
    init_logging(ctx);
    let config = &ctx.loaded.config;
    let stdio = config.mcp.transport == McpTransport::Stdio;
    // Over stdio the process has one identity; over HTTP every request brings its own.
    let identity = if stdio {
        agent_identity(ctx, args)?
    } else {
        AgentIdentity::anonymous()
    };
    let mut engine = EngineRuntime::start(ctx, format!("mcp-{}", std::process::id())).await?;
    let require = config.gate.require_agent_auth;
    if stdio && let Err(denial) = identity.authenticate(&engine.holder.load(), require) {
        let hint = if identity.has_token() {
            "check the token, or issue a new one with aegis agent regenerate"
        } else {
            "pass an agent token with AEGIS_AGENT_TOKEN_FILE or AEGIS_AGENT_TOKEN"
        };
        return Err(CliError::new(
            denial.code(),
            EXIT_DENIED,
            format!("the MCP server cannot start: {denial}"),
        )
        .with_hint(hint));
    }
    let listener = if stdio {
        None
    } else {
        let addr = std::net::SocketAddr::new(config.mcp.bind, config.mcp.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                CliError::failure(
                    "port_in_use",
                    format!("Port {} is already in use", addr.port()),
                )
                .with_hint("use aegis mcp serve --port <other> or stop the other process")
            } else {
                CliError::failure("bind_failed", format!("cannot listen on {addr}: {e}"))
            }
        })?;
        if !config.mcp.bind.is_loopback() {
            output::warn(format!(
                "the MCP server listens on {addr}, not on loopback; any host that can reach it can use your credentials"
            ));
        }
        Some(listener)
    };
    let settings = McpSettings {
        max_response_bytes: config.mcp.max_response_bytes,
        request_timeout: config.mcp.request_timeout,
        require_agent_auth: require,
        health: HealthInfo {
            version: env!("CARGO_PKG_VERSION"),
            policy_mode: config.gate.policy_mode.as_str().to_owned(),
            agent_auth_required: require,
        },
    };
    let mut detail = serde_json::Map::new();
    detail.insert("transport".into(), config.mcp.transport.as_str().into());
    detail.insert("agent_auth_required".into(), require.into());
    let started =
        EntryContent::system(SystemEvent::McpStarted, LedgerVia::System, &engine.instance)
            .with_detail(detail);
    engine.store.append(started).await.map_err(|e| {
        CliError::failure(
            "ledger_unavailable",
            format!("cannot record mcp_started: {e}"),
        )
    })?;
    let stop = CancellationToken::new();
    let reload = engine.spawn_reload(ctx, &stop);
    let server = AegisMcp::new(engine.pipeline.clone(), settings.into(), identity);
    let outcome = match listener {
        None => {
            tracing::info!(transport = "stdio", vault = %ctx.vault, "aegis mcp serving");
            tokio::select! {
                served = server.serve_stdio() => served.map_err(|e| CliError::failure("mcp_failed", e.to_string())),
                () = terminated() => Ok(()),
            }
        }
        Some(listener) => {
            let bound = listener
                .local_addr()
                .map_err(|e| CliError::io("read", Path::new("listener"), &e))?;
            output::line(format!(
                "aegis mcp listening on http://{bound}/mcp (vault {})",
                ctx.vault
            ));
            let mcp = &config.mcp;
            let http = HttpSettings {
                bind: mcp.bind,
                allowed_hosts: mcp.allowed_hosts.clone(),
                allowed_origins: mcp.allowed_origins.clone(),
                max_sessions: usize::try_from(mcp.max_sessions).unwrap_or(usize::MAX),
                max_request_bytes: usize::try_from(mcp.max_request_bytes).unwrap_or(usize::MAX),
            };
            let http_stop = CancellationToken::new();
            let serving = serve_http(
                listener,
                engine.pipeline.clone(),
                server.settings(),
                http,
                http_stop.clone(),
            );
            tokio::pin!(serving);
            tokio::select! {
                () = serving.as_mut() => {}
                () = terminated() => {
                    http_stop.cancel();
                    serving.await;
                }
            }
            Ok(())
        }
    };
    engine.pipeline.begin_drain();
    stop.cancel();
    let _ = reload.await;
    let instance = engine.instance.clone();
    let store = engine.close_ledger().await;
    let stopped = EntryContent::system(SystemEvent::McpStopped, LedgerVia::System, &instance);
    if let Err(err) = store.append(stopped).await {
        output::warn(format!("could not record mcp_stopped in the ledger: {err}"));
    }
    store.close().await;
    outcome
}

/// The agent identity of SPEC.md §16.1: `--agent-token`, `AEGIS_AGENT_TOKEN`,
/// `--agent-token-file`, `AEGIS_AGENT_TOKEN_FILE`, the first present; none is anonymous.
fn agent_identity(ctx: &Context, args: &McpServeArgs) -> Result<AgentIdentity, CliError> {
    if let Some(token) = &args.agent_token {
        output::warn(
            "--agent-token is visible in process lists; prefer AEGIS_AGENT_TOKEN_FILE or AEGIS_AGENT_TOKEN",
        );
        return Ok(AgentIdentity::from_token(token.clone()));
    }
    if let Some(token) = ctx.env.get("AEGIS_AGENT_TOKEN") {
        return Ok(AgentIdentity::from_token(SecretString::from(token.clone())));
    }
    let file = args
        .agent_token_file
        .clone()
        .or_else(|| ctx.env.get("AEGIS_AGENT_TOKEN_FILE").map(PathBuf::from));
    match file {
        Some(path) => read_token_file(&ctx.cwd.join(path)).map(AgentIdentity::from_token),
        None => Ok(AgentIdentity::anonymous()),
    }
}

/// Reads a token file: it must be readable by its owner only; one trailing newline is removed.
fn read_token_file(path: &Path) -> Result<SecretString, CliError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| CliError::io("read", path, &e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(CliError::config(format!(
            "the agent token file {} is readable by other users",
            path.display()
        ))
        .with_hint(format!("chmod 600 {}", path.display())));
    }
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, &e))?);
    let token = text.strip_suffix('\n').unwrap_or(&text);
    let token = token.strip_suffix('\r').unwrap_or(token);
    Ok(SecretString::from(token.to_owned()))
}

/// Resolves on SIGINT or SIGTERM.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Runs `aegis mcp config`: prints the host's JSON fragment (SPEC.md §16.4). It names the
/// binary, the config file, the data directory and the vault; the agent token is a file path
/// or a placeholder, never a value, and the master key is never in it.
pub(crate) fn config(ctx: &Context, args: &McpConfigArgs) -> Result<(), CliError> {
    let transport = match &args.transport {
        None => McpTransport::Stdio,
        Some(text) => McpTransport::parse(text).ok_or_else(|| {
            CliError::usage(format!(
                "--transport: expected stdio or streamable-http, found {text:?}"
            ))
        })?,
    };
    let name = match &args.agent {
        Some(agent) => format!("aegis-{}", agent.as_str()),
        None => "aegis".to_owned(),
    };
    let entry = match transport {
        McpTransport::StreamableHttp => http_entry(ctx, args),
        _ => stdio_entry(ctx, args)?,
    };
    let (key, entry) = match args.host {
        McpHost::Claude | McpHost::Cursor => ("mcpServers", entry),
        McpHost::Vscode => {
            let mut entry = entry;
            let kind = if transport == McpTransport::Stdio {
                "stdio"
            } else {
                "http"
            };
            entry.insert("type".into(), kind.into());
            ("servers", entry)
        }
    };
    let mut servers = serde_json::Map::new();
    servers.insert(name, serde_json::Value::Object(entry));
    let mut fragment = serde_json::Map::new();
    fragment.insert(key.into(), serde_json::Value::Object(servers));
    output::json(&serde_json::Value::Object(fragment));
    Ok(())
}

fn stdio_entry(
    ctx: &Context,
    args: &McpConfigArgs,
) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let binary = std::env::current_exe()
        .map_err(|e| CliError::io("locate", Path::new("the aegis binary"), &e))?;
    let mut env = serde_json::Map::new();
    if let Some(path) = &ctx.loaded.path {
        env.insert(
            "AEGIS_CONFIG".into(),
            absolute(ctx, path).display().to_string().into(),
        );
    }
    env.insert(
        "AEGIS_HOME".into(),
        absolute(ctx, ctx.data_dir.root())
            .display()
            .to_string()
            .into(),
    );
    env.insert("AEGIS_VAULT".into(), ctx.vault.as_str().into());
    match &args.token_file {
        Some(file) => {
            let file = absolute(ctx, file);
            warn_about_token_file(&file);
            env.insert(
                "AEGIS_AGENT_TOKEN_FILE".into(),
                file.display().to_string().into(),
            );
        }
        None => {
            let whose = args
                .agent
                .as_ref()
                .map_or("the agent".to_owned(), |a| format!("agent {}", a.as_str()));
            env.insert(
                "AEGIS_AGENT_TOKEN".into(),
                format!("<token of {whose}, or use AEGIS_AGENT_TOKEN_FILE>").into(),
            );
        }
    }
    let mut entry = serde_json::Map::new();
    entry.insert("command".into(), binary.display().to_string().into());
    entry.insert(
        "args".into(),
        serde_json::json!(["mcp", "serve", "--transport", "stdio"]),
    );
    entry.insert("env".into(), serde_json::Value::Object(env));
    Ok(entry)
}

fn http_entry(ctx: &Context, args: &McpConfigArgs) -> serde_json::Map<String, serde_json::Value> {
    let mcp = &ctx.loaded.config.mcp;
    let host = match mcp.bind {
        std::net::IpAddr::V6(addr) => format!("[{addr}]"),
        addr => addr.to_string(),
    };
    let mut entry = serde_json::Map::new();
    entry.insert(
        "url".into(),
        format!("http://{host}:{}/mcp", mcp.port).into(),
    );
    let whose = args
        .agent
        .as_ref()
        .map_or("the agent".to_owned(), |a| format!("agent {}", a.as_str()));
    entry.insert(
        "headers".into(),
        serde_json::json!({ "Authorization": format!("Bearer <token of {whose}>") }),
    );
    entry
}

/// A token file should exist and be readable by its owner only (`mcp serve` refuses others).
fn warn_about_token_file(file: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::metadata(file) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => output::warn(format!(
            "{} is readable by other users; aegis mcp serve refuses it until chmod 600",
            file.display()
        )),
        Ok(_) => {}
        Err(_) => output::warn(format!("{} does not exist yet", file.display())),
    }
}

fn absolute(ctx: &Context, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        ctx.cwd.join(path)
    }
}
