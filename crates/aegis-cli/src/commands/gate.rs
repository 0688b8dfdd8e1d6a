//! `aegis gate`: start-up in the order of SPEC.md §9.12, then serve until SIGINT or SIGTERM and
//! drain (§9.13).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use aegis_core::checks::CheckSettings;
use aegis_core::checks::origin::OriginPolicy;
use aegis_core::config::ConfigEnum as _;
use aegis_core::config::{Durability, PolicyMode};
use aegis_core::ledger::{EntryContent, SystemEvent, Via as LedgerVia};
use aegis_core::policy::PolicySet;
use aegis_core::timestamp::Timestamp;
use aegis_engine::holder::{PolicyWatch, ReloadLedger, SnapshotHolder};
use aegis_engine::policy_dir::read_policy_dir;
use aegis_engine::snapshot_loader::build_snapshot;
use aegis_engine::upstream::{UpstreamClient, UpstreamSettings};
use aegis_engine::{Pipeline, PipelineSettings};
use aegis_server::gate::{self, GateOptions, HealthInfo};
use aegis_server::{ServeError, tls};
use aegis_store::ledger_writer::{self, CheckpointSigner, WriterSettings};

use crate::cli::GateArgs;
use crate::context::{Context, ledger_signing_key};
use crate::error::CliError;
use crate::output;

/// The reload poll never waits longer than this, so a change is in force within a second.
const MAX_RELOAD_POLL: Duration = Duration::from_millis(250);

/// Runs `aegis gate`.
pub(crate) async fn run(ctx: &Context, args: &GateArgs) -> Result<(), CliError> {
    init_logging(ctx);
    let config = &ctx.loaded.config;
    let gate_config = &config.gate;
    let (cert, key) = tls_files(ctx, args)?;

    let store = ctx.vault_store().await?;
    let keys = Arc::new(ctx.unlock(&store).await?);
    let now = Timestamp::from_system_time(SystemTime::now());
    let (policy_sources, policies) = load_policies(gate_config)?;
    let first = build_snapshot(&store, &keys, now)
        .await
        .map_err(|e| {
            CliError::failure(e.code(), format!("cannot build the first snapshot: {e}"))
                .with_hint("run aegis doctor")
        })?
        .with_policies(Arc::new(policies));
    let holder = Arc::new(SnapshotHolder::new(first));
    let client = UpstreamClient::new(&UpstreamSettings {
        extra_ca: gate_config.upstream_ca_file.clone(),
        connect_timeout: gate_config.timeouts.connect,
        response_headers_timeout: gate_config.timeouts.response_headers,
        pool_idle_timeout: gate_config.pool_idle_timeout,
    })
    .map_err(|e| CliError::config(e.to_string()))?;
    let tls_config = match (&cert, &key) {
        (Some(cert), Some(key)) => {
            Some(tls::server_config(cert, key).map_err(|e| CliError::config(e.to_string()))?)
        }
        _ => None,
    };
    let instance = format!("gate-{}", std::process::id());
    let ledger_config = &config.ledger;
    let writer_close = CancellationToken::new();
    let signer = match ledger_signing_key(&store, &keys)? {
        Some(key) => Some(CheckpointSigner {
            key: Arc::new(key),
            interval: ledger_config.checkpoint_interval,
            max_age: ledger_config.checkpoint_max_age,
        }),
        None => {
            output::warn(
                "this vault has no ledger signing key; the ledger is written without signed checkpoints",
            );
            None
        }
    };
    let strict = ledger_config.durability == Durability::Strict;
    let writer_store = if strict {
        store.with_full_sync(ctx.busy_timeout()).await?
    } else {
        store.clone()
    };
    let (writer, writer_task) = ledger_writer::spawn(
        writer_store,
        WriterSettings {
            capacity: usize::try_from(ledger_config.queue_capacity).unwrap_or(10_000),
            batch_max: usize::try_from(ledger_config.batch_max_entries).unwrap_or(512),
            batch_delay: ledger_config.batch_max_delay,
            enqueue_timeout: ledger_config.enqueue_timeout,
        },
        signer,
        writer_close.clone(),
    );
    let pipeline = Pipeline::new(
        holder.clone(),
        client,
        PipelineSettings {
            checks: CheckSettings {
                require_agent_auth: gate_config.require_agent_auth,
                policy_mode: gate_config.policy_mode,
                require_policy: gate_config.require_policy,
            },
            origin: OriginPolicy::new(
                gate_config.bind,
                &gate_config.allowed_hosts,
                &gate_config.allowed_origins,
            ),
            max_body_bytes: gate_config.max_body_bytes,
            response_redaction: gate_config.response_redaction,
            idle_body: gate_config.timeouts.idle_body,
            max_inspect_bytes: gate_config.max_inspect_bytes,
            pass_oversize_inspection: gate_config.oversize_inspection.as_str() == "pass",
            max_concurrent_per_agent: gate_config.max_concurrent_per_agent,
        },
    );
    let reload_ledger = Some(ReloadLedger {
        writer: writer.clone(),
        instance: instance.clone(),
    });
    let pipeline = if cfg!(feature = "unaudited-bench") {
        // Only `bench/gate_load.sh` builds this, to measure what the ledger costs.
        output::warn(
            "built with the unaudited-bench feature: gate decisions are NOT recorded in the ledger",
        );
        drop(writer);
        Arc::new(pipeline)
    } else {
        Arc::new(pipeline.with_ledger(writer, instance.clone(), strict))
    };

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
    store.append(started).await.map_err(|e| {
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
    let hup = Arc::new(tokio::sync::Notify::new());
    let reload = tokio::spawn(holder.clone().watch(
        store.clone(),
        keys.clone(),
        config.storage.poll_interval.min(MAX_RELOAD_POLL),
        stop.clone(),
        reload_ledger,
        PolicyWatch {
            dir: gate_config.policies_dir.clone(),
            in_force: policy_sources,
            hup: hup.clone(),
        },
    ));
    tokio::spawn(reload_on_hangup(hup, stop.clone()));
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
    writer_close.cancel();
    let _ = writer_task.await;
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
/// Reads and compiles the policy files of `gate.policies_dir` (none when it is unset). At start
/// any invalid file stops the gate with exit 2, every error listed.
fn load_policies(
    gate_config: &aegis_core::config::GateConfig,
) -> Result<(Vec<(String, String)>, PolicySet), CliError> {
    let Some(dir) = &gate_config.policies_dir else {
        return Ok((Vec::new(), PolicySet::empty()));
    };
    let sources = read_policy_dir(dir).map_err(|e| CliError::config(e.to_string()))?;
    match PolicySet::compile(&sources) {
        Ok(set) => {
            for warning in set.warnings() {
                output::warn(warning.to_string());
            }
            Ok((sources, set))
        }
        Err(errors) => {
            let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Err(CliError::config(format!(
                "invalid policy files in {}:\n{}",
                dir.display(),
                listed.join("\n")
            ))
            .with_hint("run aegis policy validate"))
        }
    }
}

/// Wakes the reload task on every SIGHUP until `stop` fires.
async fn reload_on_hangup(hup: Arc<tokio::sync::Notify>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            received = hangup.recv() => {
                if received.is_none() {
                    return;
                }
                tracing::info!("SIGHUP: reloading the vault and the policy files");
                hup.notify_one();
            }
        }
    }
}

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

/// Logs to standard error at `observability.log_level`.
fn init_logging(ctx: &Context) {
    let level = ctx.loaded.config.observability.log_level.as_str();
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},hyper=warn,rustls=warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
