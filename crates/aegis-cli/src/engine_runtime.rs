//! The start-up wiring every server command shares (`aegis gate`, `aegis mcp serve`): open the
//! vault, build the first snapshot with the policy files, start the ledger writer, assemble the
//! one `Pipeline`, and later run the reload task and close the writer. Listeners are the
//! commands' own.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use aegis_core::checks::CheckSettings;
use aegis_core::checks::origin::OriginPolicy;
use aegis_core::config::ConfigEnum as _;
use aegis_core::config::Durability;
use aegis_core::policy::PolicySet;
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::PayloadContext;
use aegis_engine::holder::{PolicyWatch, ReloadLedger, SnapshotHolder};
use aegis_engine::metrics::Metrics;
use aegis_engine::policy_dir::read_policy_dir;
use aegis_engine::snapshot_loader::{build_snapshot, config_webhooks};
use aegis_engine::upstream::{UpstreamClient, UpstreamSettings};
use aegis_engine::webhook_dispatch::{Dispatcher, DispatcherSettings};
use aegis_engine::webhook_expiry::queue_expiry_events;
use aegis_engine::webhook_router::WebhookRouter;
use aegis_engine::{Pipeline, PipelineSettings};
use aegis_store::ledger_writer::{self, CheckpointSigner, WriterSettings};
use aegis_store::vault::VaultStore;

use crate::context::{Context, ledger_signing_key};
use crate::error::CliError;
use crate::output;

/// The reload poll never waits longer than this, so a change is in force within a second.
const MAX_RELOAD_POLL: Duration = Duration::from_millis(250);

/// How often a running gate looks for credentials reaching an expiry stage (SPEC.md §18.3).
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Test knob: the webhook retry base in milliseconds instead of SPEC.md §18.3's 10 s.
pub(crate) const RETRY_BASE_ENV: &str = "AEGIS_WEBHOOK_RETRY_BASE_MS";

/// A running pipeline with its store, keys, snapshot holder and ledger writer.
pub(crate) struct EngineRuntime {
    /// The vault's store (system entries are appended through it).
    pub(crate) store: VaultStore,
    /// The pipeline every front door hands its intents to.
    pub(crate) pipeline: Arc<Pipeline>,
    /// The snapshot holder the pipeline reads.
    pub(crate) holder: Arc<SnapshotHolder>,
    /// This process's name in the ledger (`gate-<pid>`, `mcp-<pid>`).
    pub(crate) instance: String,
    keys: Arc<aegis_core::crypto::VaultKeys>,
    /// Posts the webhook outbox (SPEC.md §18.3).
    pub(crate) dispatcher: Arc<Dispatcher>,
    webhook_wake: Arc<tokio::sync::Notify>,
    dispatcher_task: Option<tokio::task::JoinHandle<()>>,
    payload_context: PayloadContext,
    policy_sources: Vec<(String, String)>,
    reload_ledger: Option<ReloadLedger>,
    writer_close: CancellationToken,
    writer_task: tokio::task::JoinHandle<()>,
}

impl EngineRuntime {
    /// Opens the vault, checks the key, reads the policy files, builds the first snapshot,
    /// starts the ledger writer and assembles the pipeline (SPEC.md §9.12, minus listeners).
    ///
    /// # Errors
    /// Exit 1 for a sealed vault or a snapshot that cannot be built, 2 for invalid policy
    /// files or upstream CA, 3 for a wrong master key.
    pub(crate) async fn start(ctx: &Context, instance: String) -> Result<Self, CliError> {
        let config = &ctx.loaded.config;
        let gate_config = &config.gate;
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
        let config_hooks = config_webhooks(&store, &keys, &config.webhooks)
            .await
            .map_err(|e| {
                CliError::failure(
                    e.code(),
                    format!("cannot read the config file's webhooks: {e}"),
                )
                .with_hint("run aegis doctor")
            })?;
        let holder = Arc::new(SnapshotHolder::with_config_webhooks(first, config_hooks));
        let payload_context = PayloadContext {
            vault: store.meta().name.to_string(),
            instance: instance.clone(),
        };
        let router = Arc::new(WebhookRouter::new(holder.clone(), payload_context.clone()));
        let webhook_wake = router.wake();
        let dispatcher = Arc::new(
            Dispatcher::new(
                store.clone(),
                holder.clone(),
                dispatcher_settings(ctx),
                instance.clone(),
            )
            .map_err(|e| CliError::config(e.to_string()))?,
        );
        crate::logging::filter().follow(holder.clone());
        let client = UpstreamClient::new(&UpstreamSettings {
            extra_ca: gate_config.upstream_ca_file.clone(),
            connect_timeout: gate_config.timeouts.connect,
            response_headers_timeout: gate_config.timeouts.response_headers,
            pool_idle_timeout: gate_config.pool_idle_timeout,
        })
        .map_err(|e| CliError::config(e.to_string()))?;
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
        }
        .with_outbox_router(router);
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
        let pipeline = Pipeline::new(holder.clone(), client, pipeline_settings(ctx));
        let reload_ledger = Some(ReloadLedger {
            writer: writer.clone(),
            instance: instance.clone(),
        });
        let mut metrics = config
            .observability
            .metrics
            .then(|| Metrics::new(holder.clone()));
        let pipeline = if cfg!(feature = "unaudited-bench") {
            // Only `bench/gate_load.sh` builds this, to measure what the ledger costs.
            output::warn(
                "built with the unaudited-bench feature: gate decisions are NOT recorded in the ledger",
            );
            drop(writer);
            pipeline
        } else {
            metrics = metrics.map(|metrics| metrics.with_ledger(writer.clone()));
            pipeline.with_ledger(writer, instance.clone(), strict)
        };
        let pipeline = Arc::new(match metrics {
            Some(metrics) => {
                metrics.set_webhooks(dispatcher.stats());
                pipeline.with_metrics(Arc::new(metrics))
            }
            None => pipeline,
        });
        Ok(Self {
            store,
            pipeline,
            holder,
            instance,
            keys,
            dispatcher,
            webhook_wake,
            dispatcher_task: None,
            payload_context,
            policy_sources,
            reload_ledger,
            writer_close,
            writer_task,
        })
    }

    /// Starts the snapshot reload task (store generation, policy files, SIGHUP) until `stop`
    /// fires; await the handle before [`EngineRuntime::close_ledger`].
    pub(crate) fn spawn_reload(
        &mut self,
        ctx: &Context,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let config = &ctx.loaded.config;
        let hup = Arc::new(tokio::sync::Notify::new());
        let reload = tokio::spawn(self.holder.clone().watch(
            self.store.clone(),
            self.keys.clone(),
            config.storage.poll_interval.min(MAX_RELOAD_POLL),
            stop.clone(),
            self.reload_ledger.take(),
            PolicyWatch {
                dir: config.gate.policies_dir.clone(),
                in_force: std::mem::take(&mut self.policy_sources),
                hup: hup.clone(),
            },
        ));
        tokio::spawn(reload_on_hangup(hup, stop.clone()));
        self.dispatcher_task = Some(tokio::spawn(
            self.dispatcher
                .clone()
                .run(self.webhook_wake.clone(), stop.clone()),
        ));
        reload
    }

    /// Queues `credential_expiry` events now and every hour until `stop` fires (the gate's
    /// duty, SPEC.md §18.3).
    pub(crate) fn spawn_expiry_checks(&self, stop: &CancellationToken) {
        let store = self.store.clone();
        let holder = self.holder.clone();
        let context = self.payload_context.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let now = Timestamp::from_system_time(SystemTime::now());
                if let Err(err) = queue_expiry_events(&store, &holder.load(), &context, now).await {
                    tracing::warn!(error = %err, "cannot queue credential expiry events");
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(EXPIRY_CHECK_INTERVAL) => {}
                }
            }
        });
    }

    /// Commits every queued and reserved ledger entry and stops the writer; returns the store
    /// for the final system entry.
    pub(crate) async fn close_ledger(mut self) -> VaultStore {
        if let Some(task) = self.dispatcher_task.take() {
            // Stops with the same signal as the reload task; undelivered rows stay queued.
            let _ = task.await;
        }
        self.writer_close.cancel();
        let _ = self.writer_task.await;
        self.store
    }
}

/// The webhook dispatcher's settings: SPEC.md §18.3's timing, the gate's extra CA, and the
/// documented test knob `AEGIS_WEBHOOK_RETRY_BASE_MS` for the retry base.
pub(crate) fn dispatcher_settings(ctx: &Context) -> DispatcherSettings {
    let mut settings = DispatcherSettings {
        extra_ca: ctx.loaded.config.gate.upstream_ca_file.clone(),
        ..DispatcherSettings::default()
    };
    if let Some(ms) = ctx
        .env
        .get(RETRY_BASE_ENV)
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        settings.retry.base = Duration::from_millis(ms.max(1));
    }
    settings
}

/// The pipeline's settings from the `gate:` section: the MCP server runs the same checks with
/// the same limits (SPEC.md §16.2).
fn pipeline_settings(ctx: &Context) -> PipelineSettings {
    let gate_config = &ctx.loaded.config.gate;
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
    }
}

/// Reads and compiles the policy files of `gate.policies_dir` (none when it is unset). At start
/// any invalid file stops the server with exit 2, every error listed.
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
