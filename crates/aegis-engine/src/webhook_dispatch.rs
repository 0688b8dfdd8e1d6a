//! The webhook dispatcher (SPEC.md §18.2, §18.3): claims due outbox rows with a lease, posts
//! them signed, with a 10 s deadline and no redirects, and records the result: delivered, retry
//! later (exponential backoff with full jitter), or failed with a `webhook_delivery_failed`
//! entry. One task per gate or MCP server process, off the request path; a CLI command uses
//! [`Dispatcher::deliver_until`] to try its own events for a bounded time.
//!
//! On shutdown the task stops, cuts its attempts short and releases their leases, so every
//! undelivered row stays in the outbox for the next process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;

use aegis_core::denial::Denial;
use aegis_core::ledger::{EntryContent, SystemEvent, Via};
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::retry::{NextStep, RetryPolicy, classify};
use aegis_core::webhook::{ActiveWebhook, check_url, signature};
use aegis_store::vault::VaultStore;
use aegis_store::webhooks::{Claim, OutboxRow, Settlement};

use crate::error::EngineError;
use crate::holder::SnapshotHolder;
use crate::upstream::{UpstreamClient, UpstreamSettings};
use crate::webhook_stats::{DeliveryResult, WebhookStats};

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherSettings {
    /// Backoff and give-up rules (SPEC.md §18.3 unless a test lowers the base).
    pub retry: RetryPolicy,
    /// Deadline of one attempt, connect to response head.
    pub timeout: Duration,
    /// How long a claimed row stays reserved for this process.
    pub lease: Duration,
    /// Longest wait between looks at the outbox.
    pub poll: Duration,
    /// Attempts in flight at most.
    pub concurrency: usize,
    /// Extra PEM bundle trusted besides the system roots (the gate's `upstream_ca_file`).
    pub extra_ca: Option<std::path::PathBuf>,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(20),
            poll: Duration::from_millis(250),
            concurrency: 8,
            extra_ca: None,
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The response status; `None` for a network error or timeout.
    pub status: Option<u16>,
    /// `200`, `timeout`, `network_error`, `tls_error`, `url_refused`, …
    pub result: String,
    /// From sending to the response head (or the failure).
    pub latency: Duration,
}

/// Posts outbox rows for one vault.
#[derive(Debug)]
pub struct Dispatcher {
    store: VaultStore,
    holder: Arc<SnapshotHolder>,
    client: UpstreamClient,
    stats: Arc<WebhookStats>,
    settings: DispatcherSettings,
    /// This process's instance id: the lease holder and the ledger entries' instance.
    instance: String,
}

impl Dispatcher {
    /// A dispatcher reading webhooks from `holder`'s snapshot.
    ///
    /// # Errors
    /// [`EngineError::UpstreamCa`] or [`EngineError::Tls`] when the client cannot be built.
    pub fn new(
        store: VaultStore,
        holder: Arc<SnapshotHolder>,
        settings: DispatcherSettings,
        instance: String,
    ) -> Result<Self, EngineError> {
        let client = UpstreamClient::new(&UpstreamSettings {
            extra_ca: settings.extra_ca.clone(),
            connect_timeout: settings.timeout,
            response_headers_timeout: settings.timeout,
            pool_idle_timeout: Duration::from_secs(30),
        })?;
        Ok(Self {
            store,
            holder,
            client,
            stats: Arc::new(WebhookStats::default()),
            settings,
            instance,
        })
    }

    /// Delivery counters, for `aegis_webhook_deliveries_total{event,result}`, and the outbox
    /// depth as last read, for `aegis_webhook_outbox_depth` (no database read at scrape time).
    pub fn stats(&self) -> Arc<WebhookStats> {
        self.stats.clone()
    }

    /// Pending deliveries in the outbox, for `aegis_webhook_outbox_depth`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_depth(&self) -> Result<u64, EngineError> {
        Ok(self.store.outbox_depth().await?)
    }

    /// Runs until `stop` fires: looks at the outbox every poll interval (sooner when `wake`
    /// fires or an attempt ends), claims what is due and room allows, and posts it. On stop,
    /// attempts in flight are cut short and their leases released.
    ///
    /// # Cancel safety
    /// Meant to be spawned, not selected on; stopping is through `stop`.
    pub async fn run(self: Arc<Self>, wake: Arc<tokio::sync::Notify>, stop: CancellationToken) {
        let mut inflight = tokio::task::JoinSet::new();
        // Attempts in flight per webhook: a slow receiver holds at most PER_WEBHOOK_IN_FLIGHT
        // of the slots, so the other webhooks keep being served.
        let mut busy: HashMap<String, usize> = HashMap::new();
        let mut depth_read: Option<Instant> = None;
        loop {
            if depth_read.is_none_or(|at| at.elapsed() >= DEPTH_REFRESH) {
                match self.store.outbox_depth().await {
                    Ok(depth) => self.stats.set_outbox_depth(depth),
                    Err(err) => tracing::warn!(error = %err, "cannot read the webhook outbox"),
                }
                depth_read = Some(Instant::now());
            }
            let room = self.settings.concurrency.saturating_sub(inflight.len());
            let mut wait = self.settings.poll;
            if room > 0 {
                let skip: Vec<String> = busy
                    .iter()
                    .filter(|(_, n)| **n >= PER_WEBHOOK_IN_FLIGHT)
                    .map(|(id, _)| id.clone())
                    .collect();
                match self.claim_due(room, PER_WEBHOOK_IN_FLIGHT, &skip).await {
                    Ok((rows, next_due)) => {
                        for row in rows {
                            *busy.entry(row.webhook_id.clone()).or_default() += 1;
                            inflight.spawn(self.clone().deliver(row));
                        }
                        if let Some(due) = next_due {
                            wait = wait.min(due);
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot read the webhook outbox"),
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    if let Ok(id) = done
                        && let Some(count) = busy.get_mut(&id)
                    {
                        *count -= 1;
                        if *count == 0 {
                            busy.remove(&id);
                        }
                    }
                }
            }
        }
        // Attempts that already have their answer get a moment to record it (fewer
        // duplicates); the rest are cut short and stay queued.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while inflight.join_next().await.is_some() {}
        })
        .await;
        inflight.abort_all();
        while inflight.join_next().await.is_some() {}
        if let Err(err) = self.store.release_delivery_leases(&self.instance).await {
            tracing::warn!(error = %err, "cannot release webhook leases; they expire on their own");
        }
    }

    /// Delivers whatever is due, again and again, until nothing is due or `deadline` passes
    /// (CLI commands, SPEC.md §18.3); what is left stays in the outbox. Returns the attempts
    /// made.
    pub async fn deliver_until(self: &Arc<Self>, deadline: Instant) -> u64 {
        let mut attempts = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let all = self.settings.concurrency;
            let rows = match self.claim_due(all, all, &[]).await {
                Ok((rows, _)) if !rows.is_empty() => rows,
                _ => break,
            };
            let mut batch = tokio::task::JoinSet::new();
            for row in rows {
                attempts += 1;
                batch.spawn(self.clone().deliver(row));
            }
            let finished =
                tokio::time::timeout(left, async { while batch.join_next().await.is_some() {} })
                    .await;
            if finished.is_err() {
                batch.abort_all();
                while batch.join_next().await.is_some() {}
                break;
            }
        }
        if let Err(err) = self.store.release_delivery_leases(&self.instance).await {
            tracing::warn!(error = %err, "cannot release webhook leases; they expire on their own");
        }
        attempts
    }

    /// Claims up to `room` due rows; also says how long until the next one is due.
    async fn claim_due(
        &self,
        room: usize,
        per_webhook: usize,
        skip: &[String],
    ) -> Result<(Vec<OutboxRow>, Option<Duration>), EngineError> {
        let now = now();
        let Some(due) = self.store.next_delivery_due().await? else {
            return Ok((Vec::new(), None));
        };
        if due > now {
            let wait = u64::try_from(now.millis_until(due)).unwrap_or(0);
            return Ok((Vec::new(), Some(Duration::from_millis(wait))));
        }
        let claim = Claim {
            total: u32::try_from(room).unwrap_or(u32::MAX),
            per_webhook: u32::try_from(per_webhook).unwrap_or(u32::MAX),
            skip,
        };
        let rows = self
            .store
            .claim_deliveries(now, self.settings.lease, &claim, &self.instance)
            .await?;
        Ok((rows, None))
    }

    /// One attempt at one row, and its settlement; answers the row's webhook id.
    async fn deliver(self: Arc<Self>, row: OutboxRow) -> String {
        let snapshot = self.holder.load();
        let hook = snapshot
            .webhooks()
            .iter()
            .find(|h| h.id.as_str() == row.webhook_id)
            .cloned();
        let attempt = match &hook {
            Some(hook) => {
                self.post(hook, &row.event, &row.delivery_id, row.payload.clone())
                    .await
            }
            // A config webhook this process does not have (another process's config file
            // names it) is retried like a network error, so a process that has it can send
            // it; a stored webhook that is gone was removed, and its delivery fails at once.
            None if row.webhook_id.starts_with("cfg-") => Attempt {
                status: None,
                result: "webhook_unknown".to_owned(),
                latency: Duration::ZERO,
            },
            None => Attempt {
                status: None,
                result: "webhook_removed".to_owned(),
                latency: Duration::ZERO,
            },
        };
        let failures = row.attempts.saturating_add(1);
        let step = if matches!(attempt.result.as_str(), "webhook_removed" | "url_refused") {
            NextStep::Failed
        } else {
            self.settings.retry.next_step(
                classify(attempt.status),
                failures,
                row.created_at,
                now(),
                random_u64(),
            )
        };
        let (settlement, counted) = match step {
            NextStep::Delivered => (Settlement::Delivered, DeliveryResult::Delivered),
            NextStep::RetryAt(at) => (Settlement::Retry(at), DeliveryResult::Retry),
            NextStep::Failed => {
                tracing::warn!(
                    webhook = %row.webhook_id,
                    delivery = %row.delivery_id,
                    event = %row.event,
                    attempts = failures,
                    result = %attempt.result,
                    "webhook delivery failed"
                );
                (
                    Settlement::Failed(Box::new(self.failed_entry(&row, failures, &attempt))),
                    DeliveryResult::Failed,
                )
            }
        };
        self.stats.record(&row.event, counted);
        if let Err(err) = self
            .store
            .settle_delivery(&row.delivery_id, failures, &attempt.result, settlement)
            .await
        {
            // The lease runs out and the row is tried again: at least once, never lost.
            tracing::warn!(error = %err, delivery = %row.delivery_id, "cannot record a webhook delivery");
        }
        row.webhook_id
    }

    /// Signs and posts one body once; never follows redirects (a 3xx is the result). The
    /// dispatcher's attempts use it, and so does `aegis webhook test`, synchronously.
    pub async fn post(
        &self,
        hook: &ActiveWebhook,
        event: &str,
        delivery_id: &uuid::Uuid,
        payload: Vec<u8>,
    ) -> Attempt {
        let started = Instant::now();
        let refused = |result: &str| Attempt {
            status: None,
            result: result.to_owned(),
            latency: started.elapsed(),
        };
        if check_url(&hook.url, hook.allow_http).is_err() {
            return refused("url_refused");
        }
        let timestamp = unix_seconds();
        // The only place a webhook secret is exposed: computing the delivery's signature.
        let signed = signature::sign(hook.secret.expose_secret().as_bytes(), timestamp, &payload);
        let body = http_body_util::Full::new(Bytes::from(payload))
            .map_err(|never| match never {})
            .boxed_unsync();
        let request = http::Request::post(hook.url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT)
            .header("x-aegis-event", event)
            .header("x-aegis-delivery", delivery_id.to_string())
            .header("x-aegis-timestamp", timestamp.to_string())
            .header("x-aegis-signature", signed)
            .body(body);
        let Ok(request) = request else {
            return refused("url_refused");
        };
        match tokio::time::timeout(self.settings.timeout, self.client.send(request)).await {
            Err(_) | Ok(Err(Denial::UpstreamTimeout)) => refused("timeout"),
            Ok(Err(Denial::UpstreamTls)) => refused("tls_error"),
            Ok(Err(_)) => refused("network_error"),
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                Attempt {
                    status: Some(status),
                    result: status.to_string(),
                    latency: started.elapsed(),
                }
            }
        }
    }

    /// `webhook_delivery_failed`: which webhook, delivery and event, after how many attempts.
    fn failed_entry(&self, row: &OutboxRow, attempts: u32, attempt: &Attempt) -> EntryContent {
        let mut detail = serde_json::Map::new();
        detail.insert("webhook_id".into(), row.webhook_id.as_str().into());
        detail.insert("delivery_id".into(), row.delivery_id.to_string().into());
        detail.insert("event".into(), row.event.as_str().into());
        detail.insert("attempts".into(), attempts.into());
        detail.insert("last_result".into(), attempt.result.as_str().into());
        EntryContent::system(
            SystemEvent::WebhookDeliveryFailed,
            Via::System,
            &self.instance,
        )
        .with_detail(detail)
    }
}

/// Attempts of one webhook in flight at most in the running dispatcher.
const PER_WEBHOOK_IN_FLIGHT: usize = 2;

/// How often the dispatcher refreshes [`WebhookStats::outbox_depth`].
const DEPTH_REFRESH: Duration = Duration::from_secs(1);

/// How long attempts in flight may finish after the stop signal before they are cut short.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// `User-Agent` of every delivery.
const USER_AGENT: &str = concat!("aegis-webhook/", env!("CARGO_PKG_VERSION"));

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

fn unix_seconds() -> i64 {
    now().as_millis().div_euclid(1000)
}

/// Jitter only: a failing generator still gives a delay within the ceiling.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match aegis_core::crypto::random_bytes(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => u64::MAX,
    }
}
