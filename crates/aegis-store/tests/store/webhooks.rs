//! Webhook rows and the delivery outbox on a real SQLite file (SPEC.md §18).

use std::sync::Arc;
use std::time::Duration;

use aegis_core::config::{WebhookEvents, WebhookUrl};
use aegis_core::crypto::random_uuid;
use aegis_core::ledger::{EntryContent, LedgerEntry, Outcome, SystemEvent, Via};
use aegis_core::timestamp::Timestamp;
use aegis_core::webhook::{Webhook, WebhookId};
use aegis_store::StoreError;
use aegis_store::webhooks::{
    Claim, ExpiryNotice, OutboxRouter, OutboxRow, Settlement, StoredWebhook,
};

use super::{entry, fixture};

fn row(webhook: &str, due: Timestamp) -> OutboxRow {
    OutboxRow {
        delivery_id: random_uuid().expect("uuid"),
        event_id: random_uuid().expect("uuid"),
        webhook_id: webhook.to_owned(),
        event: "blocked_request".to_owned(),
        payload: b"{}".to_vec(),
        created_at: due,
        next_attempt_at: due,
        attempts: 0,
    }
}

fn up_to(total: u32) -> Claim<'static> {
    Claim {
        total,
        per_webhook: total,
        skip: &[],
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

#[tokio::test]
async fn webhooks_round_trip_with_their_ledger_entries() {
    let fx = fixture().await;
    let webhook = Webhook {
        id: WebhookId::generate().expect("id"),
        url: WebhookUrl::parse("https://hooks.example.net/h").expect("url"),
        events: WebhookEvents::All,
        allow_http: false,
        label: Some("ops".into()),
        created_at: Timestamp::from_millis(5),
    };
    let stored = StoredWebhook {
        secret: fx
            .keys
            .seal_webhook_secret(webhook.id.as_str(), b"whsec_x")
            .expect("seal"),
        mac: fx
            .keys
            .row_mac(&webhook.canonical_encoding(&fx.store.meta().id))
            .to_vec(),
        webhook,
    };
    let before = fx.store.generation().await.expect("generation");
    fx.store
        .insert_webhook(&stored, entry(SystemEvent::WebhookAdded))
        .await
        .expect("insert");
    assert!(fx.store.generation().await.expect("generation") > before);
    assert_eq!(
        fx.store.webhooks().await.expect("list"),
        std::slice::from_ref(&stored)
    );
    fx.store
        .enqueue_deliveries(&[row(stored.webhook.id.as_str(), now())])
        .await
        .expect("enqueue");
    fx.store
        .remove_webhook(&stored.webhook.id, entry(SystemEvent::WebhookRemoved))
        .await
        .expect("remove");
    assert_eq!(
        fx.store.outbox_depth().await.expect("depth"),
        0,
        "pending rows go too"
    );
    let again = fx
        .store
        .remove_webhook(&stored.webhook.id, entry(SystemEvent::WebhookRemoved))
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound { .. })),
        "{again:?}"
    );
    let events: Vec<_> = fx
        .store
        .ledger_entries(0, 100)
        .await
        .expect("ledger")
        .iter()
        .filter_map(|e| e.content().event())
        .collect();
    assert_eq!(
        events,
        [
            SystemEvent::VaultCreated,
            SystemEvent::WebhookAdded,
            SystemEvent::WebhookRemoved
        ]
    );
}

#[tokio::test]
async fn a_claimed_delivery_is_leased_to_one_claimer_until_released() {
    let fx = fixture().await;
    let due = now();
    let later = due.plus(Duration::from_secs(3600));
    fx.store
        .enqueue_deliveries(&[row("cfg-1", due), row("cfg-1", due), row("cfg-1", later)])
        .await
        .expect("enqueue");
    let lease = Duration::from_secs(60);
    let first = fx
        .store
        .claim_deliveries(due, lease, &up_to(10), "gate-1")
        .await
        .expect("claim");
    assert_eq!(first.len(), 2, "only the due rows");
    let second = fx
        .store
        .claim_deliveries(due, lease, &up_to(10), "gate-2")
        .await
        .expect("claim");
    assert!(second.is_empty(), "leased rows are not claimed twice");
    let after_lease = fx
        .store
        .claim_deliveries(due.plus(lease), lease, &up_to(10), "gate-2")
        .await
        .expect("claim");
    assert_eq!(after_lease.len(), 2, "an expired lease frees the rows");
    assert_eq!(
        fx.store
            .release_delivery_leases("gate-2")
            .await
            .expect("release"),
        2
    );
    let third = fx
        .store
        .claim_deliveries(due, lease, &up_to(1), "gate-3")
        .await
        .expect("claim");
    assert_eq!(third.len(), 1, "the limit holds");
    assert_eq!(fx.store.outbox_depth().await.expect("depth"), 3);
    assert_eq!(fx.store.next_delivery_due().await.expect("due"), Some(due));
    let last = fx
        .store
        .claim_deliveries(due, lease, &up_to(10), "gate-3")
        .await
        .expect("claim");
    assert_eq!(last.len(), 1);
    assert_eq!(
        fx.store.next_delivery_due().await.expect("due"),
        Some(due.plus(lease)),
        "every due row is leased: claimable again when the leases end"
    );
}

#[tokio::test]
async fn settling_records_results_and_a_failure_appends_its_ledger_entry() {
    let fx = fixture().await;
    let (ok, retry, failed) = (
        row("cfg-1", now()),
        row("cfg-1", now()),
        row("cfg-1", now()),
    );
    fx.store
        .enqueue_deliveries(&[ok.clone(), retry.clone(), failed.clone()])
        .await
        .expect("enqueue");
    fx.store
        .settle_delivery(&ok.delivery_id, 1, "200", Settlement::Delivered)
        .await
        .expect("settle");
    let next = now().plus(Duration::from_secs(60));
    fx.store
        .settle_delivery(&retry.delivery_id, 1, "503", Settlement::Retry(next))
        .await
        .expect("settle");
    let gave_up = EntryContent::system(SystemEvent::WebhookDeliveryFailed, Via::System, "gate-1");
    fx.store
        .settle_delivery(
            &failed.delivery_id,
            2,
            "404",
            Settlement::Failed(Box::new(gave_up)),
        )
        .await
        .expect("settle");
    assert_eq!(fx.store.outbox_depth().await.expect("depth"), 1);
    assert_eq!(fx.store.next_delivery_due().await.expect("due"), Some(next));
    let summary = fx
        .store
        .delivery_summaries(Timestamp::from_millis(0))
        .await
        .expect("summaries");
    assert_eq!(summary["cfg-1"].failed_recently, 1);
    assert!(summary["cfg-1"].last_result.is_some());
    let last = fx.store.ledger_entries(0, 100).await.expect("ledger");
    assert_eq!(
        last.last().and_then(|e| e.content().event()),
        Some(SystemEvent::WebhookDeliveryFailed)
    );
}

#[tokio::test]
async fn an_expiry_stage_is_notified_once() {
    let fx = fixture().await;
    let credential = random_uuid().expect("uuid");
    let expires = now().plus(Duration::from_secs(3 * 86_400));
    let notice = |stage: &'static str, earlier: Vec<&'static str>| ExpiryNotice {
        credential_id: credential,
        expires_at: expires,
        stage,
        earlier,
        rows: vec![row("cfg-1", now())],
    };
    assert_eq!(
        fx.store
            .record_expiry_notices(&[notice("7d", vec![])])
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        fx.store
            .record_expiry_notices(&[notice("7d", vec![])])
            .await
            .expect("record"),
        0
    );
    assert_eq!(
        fx.store
            .record_expiry_notices(&[notice("1d", vec!["7d"])])
            .await
            .expect("record"),
        1
    );
    assert_eq!(fx.store.outbox_depth().await.expect("depth"), 2);
}

/// Routes one delivery for every blocked request entry.
#[derive(Debug)]
struct EveryBlocked;

impl OutboxRouter for EveryBlocked {
    fn route(&self, entry: &LedgerEntry, out: &mut Vec<OutboxRow>) {
        if entry.content().outcome() == Some(Outcome::Blocked) {
            let mut routed = row("cfg-1", entry.ts());
            routed.payload = entry.id().to_string().into_bytes();
            out.push(routed);
        }
    }
}

#[tokio::test]
async fn a_ledger_batch_queues_its_deliveries_in_the_same_transaction() {
    let fx = fixture().await;
    let routed = fx.store.clone().with_outbox_router(Arc::new(EveryBlocked));
    let blocked = || EntryContent::request(Outcome::Blocked, Via::Gate, "gate-1");
    let allowed = EntryContent::request(Outcome::Allowed, Via::Gate, "gate-1");
    routed
        .append_batch(&[blocked(), allowed, blocked()])
        .await
        .expect("append");
    let rows = fx
        .store
        .claim_deliveries(now(), Duration::from_secs(5), &up_to(10), "t")
        .await
        .expect("claim");
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["2", "4"], "rows carry the ids of their entries");
    fx.store
        .append_batch(&[blocked()])
        .await
        .expect("append without router");
    assert_eq!(fx.store.outbox_depth().await.expect("depth"), 2);
}

#[tokio::test]
async fn a_claim_takes_few_rows_per_webhook_and_skips_busy_ones() {
    let fx = fixture().await;
    let due = now();
    let rows: Vec<OutboxRow> = (0..4)
        .flat_map(|_| [row("cfg-1", due), row("cfg-2", due), row("cfg-3", due)])
        .collect();
    fx.store.enqueue_deliveries(&rows).await.expect("enqueue");
    let busy = ["cfg-3".to_owned()];
    let claim = Claim {
        total: 10,
        per_webhook: 2,
        skip: &busy,
    };
    let claimed = fx
        .store
        .claim_deliveries(due, Duration::from_secs(60), &claim, "gate-1")
        .await
        .expect("claim");
    let mut ids: Vec<&str> = claimed.iter().map(|r| r.webhook_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["cfg-1", "cfg-1", "cfg-2", "cfg-2"]);
}
