//! `aegis gate`: start-up in the order of SPEC.md §9.12, then serve until SIGINT or SIGTERM and
//! drain (§9.13).

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use aegis_core::config::ConfigEnum as _;
use aegis_core::config::PolicyMode;
use aegis_core::ledger::{EntryContent, SystemEvent, Via as LedgerVia};
use aegis_server::gate::{self, GateOptions, HealthInfo};
use aegis_server::{ServeError, tls};

use crate::cli::GateArgs;
use crate::context::Context;
use crate::engine_runtime::EngineRuntime;
use crate::error::CliError;
use crate::output;

/// Runs `aegis gate`.
pub(crate) async fn run(ctx: &Context, args: &GateArgs) -> Result<(), CliError> {
    init_logging(ctx);
    let config = &ctx.loaded.config;
    let gate_config = &config.gate;
    let (cert, key) = tls_files(ctx, args)?;

    let tls_config = match (&cert, &key) {
        (Some(cert), Some(key)) => {
            Some(tls::server_config(cert, key).map_err(|e| CliError::config(e.to_string()))?)
        }
        _ => None,
    };
    let mut engine = EngineRuntime::start(ctx, format!("gate-{}", std::process::id())).await?;
    let pipeline = engine.pipeline.clone();
    let holder = engine.holder.clone();
    let instance = engine.instance.clone();

    let addr = SocketAddr::new(gate_config.bind, gate_config.port);
    let listener = gate::bind(addr).await.map_err(|e| match e {
        ServeError::PortInUse { port } => {
            CliError::failure("port_in_use", format!("Port {port} is already in use"))
                .with_hint("use aegis gate --port <other> or stop the other process")
        }
        other => CliError::failure(other.code(), other.to_string()),
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::io("read", &PathBuf::from("listener"), &e))?;

    if !gate_config.require_agent_auth {
        output::warn(
            "agent auth is off: any local process can use every credential (aegis agent add, then --require-agent-auth)",
        );
    }
    let policy_files = holder.load().policies().file_count();
    if gate_config.policy_mode == PolicyMode::Off {
        output::warn(
            "gate.policy_mode is off: policy files are not evaluated (use enforce or dry-run)",
        );
    } else if policy_files > 0 && !gate_config.require_agent_auth {
        output::warn(format!(
            "{policy_files} policy file(s) loaded but agent auth is off: anonymous requests bypass them (--require-agent-auth)"
        ));
    }
    if !gate_config.bind.is_loopback() {
        let mut missing = Vec::new();
        if tls_config.is_none() {
            missing.push("TLS");
        }
        if !gate_config.require_agent_auth {
            missing.push("agent authentication");
        }
        if !missing.is_empty() {
            output::warn(format!(
                "gate listens on {bound} without {}; any host that can reach it can use your credentials",
                missing.join(" and ")
            ));
        }
    }
    if !gate_config.response_redaction {
        output::warn(
            "response redaction is off: an upstream that echoes a secret hands it to the agent",
        );
    }
    let mut detail = serde_json::Map::new();
    detail.insert("bind".into(), bound.to_string().into());
    detail.insert("tls".into(), tls_config.is_some().into());
    detail.insert(
        "agent_auth_required".into(),
        gate_config.require_agent_auth.into(),
    );
    detail.insert(
        "policy_mode".into(),
        gate_config.policy_mode.as_str().into(),
    );
    let started = EntryContent::system(SystemEvent::GateStarted, LedgerVia::System, &instance)
        .with_detail(detail);
    engine.store.append(started).await.map_err(|e| {
        CliError::failure(
            "ledger_unavailable",
            format!("cannot record gate_started: {e}"),
        )
    })?;
    let scheme = if tls_config.is_some() {
        "https"
    } else {
        "http"
    };
    output::line(format!(
        "aegis gate listening on {scheme}://{bound} (vault {})",
        ctx.vault
    ));

    let stop = CancellationToken::new();
    let reload = engine.spawn_reload(ctx, &stop);
    engine.spawn_expiry_checks(&stop);
    let force = CancellationToken::new();
    tokio::spawn(wait_for_signals(stop.clone(), force.clone()));
    let report = gate::serve(
        listener,
        pipeline,
        GateOptions {
            tls: tls_config,
            shutdown_grace: gate_config.shutdown_grace,
            header_read_timeout: gate_config.timeouts.agent_headers,
            max_header_bytes: usize::try_from(gate_config.max_header_bytes).unwrap_or(usize::MAX),
            health: HealthInfo {
                version: env!("CARGO_PKG_VERSION"),
                policy_mode: gate_config.policy_mode.as_str().to_owned(),
                agent_auth_required: gate_config.require_agent_auth,
            },
        },
        stop.clone(),
        force.clone(),
    )
    .await;
    stop.cancel();
    let _ = reload.await;
    // Every queued and reserved entry is committed before the stop entry.
    let store = engine.close_ledger().await;
    let mut detail = serde_json::Map::new();
    detail.insert("requests".into(), report.requests.into());
    detail.insert("drained".into(), report.drained.into());
    let stopped = EntryContent::system(SystemEvent::GateStopped, LedgerVia::System, &instance)
        .with_detail(detail);
    if let Err(err) = store.append(stopped).await {
        output::warn(format!(
            "could not record gate_stopped in the ledger: {err}"
        ));
    }
    store.close().await;
    output::line(format!(
        "aegis gate stopped ({} requests; {})",
        report.requests,
        if report.drained {
            "drained"
        } else {
            "grace period ended with requests in flight"
        }
    ));
    Ok(())
}

/// Cancels `stop` on the first SIGINT or SIGTERM and `force` on the second (skip the rest of
/// the grace period).
async fn wait_for_signals(stop: CancellationToken, force: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    for token in [stop, force] {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = token.cancelled() => return,
        }
        token.cancel();
    }
}

/// The TLS files from flags or config; `--tls` alone falls back to `./certs/aegis.{crt,key}`.
fn tls_files(
    ctx: &Context,
    args: &GateArgs,
) -> Result<(Option<PathBuf>, Option<PathBuf>), CliError> {
    let tls = &ctx.loaded.config.gate.tls;
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        return Ok((Some(cert.clone()), Some(key.clone())));
    }
    if !args.tls {
        return Ok((None, None));
    }
    let cert = ctx.cwd.join("certs/aegis.crt");
    let key = ctx.cwd.join("certs/aegis.key");
    if cert.is_file() && key.is_file() {
        output::warn("--tls without --cert/--key uses ./certs/aegis.crt and ./certs/aegis.key");
        return Ok((Some(cert), Some(key)));
    }
    Err(
        CliError::usage("--tls needs --cert and --key (or gate.tls.cert and gate.tls.key)")
            .with_hint("generate a pair with aegis init --generate-cert"),
    )
}

/// Logs to standard error as `observability` says, through the secret filter.
pub(crate) fn init_logging(ctx: &Context) {
    crate::logging::init(ctx);
}
