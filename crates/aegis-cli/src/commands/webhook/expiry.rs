//! `aegis webhook check-expiry [--days 7]`: credentials expired or expiring within the window,
//! and `credential_expiry` queued (once per stage) and delivered for up to 10 s.

use std::time::Instant;

use serde_json::json;

use aegis_core::webhook::expiry::days_left;
use aegis_engine::webhook_expiry::{expiring_within, queue_expiry_events};

use super::{CLI_DELIVERY_WINDOW, DEFAULT_EXPIRY_DAYS, context, now, open_dispatcher};
use crate::cli::WebhookExpiryArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// Lists expiring credentials and queues their `credential_expiry` events.
pub(super) async fn check_expiry(ctx: &Context, args: &WebhookExpiryArgs) -> Result<(), CliError> {
    if args.threshold.is_some() {
        output::warn(if args.days.is_some() {
            "--threshold is the old spelling of --days; using --days"
        } else {
            "--threshold is the old spelling of --days; use --days <days>"
        });
    }
    let days = args.days.or(args.threshold).unwrap_or(DEFAULT_EXPIRY_DAYS);
    let (store, holder, dispatcher) = open_dispatcher(ctx).await?;
    let snapshot = holder.load();
    let now = now();
    let expiring = expiring_within(&snapshot, now, days);
    let queued = queue_expiry_events(&store, &snapshot, &context(&store), now)
        .await
        .map_err(|e| CliError::failure(e.code(), e.to_string()))?;
    let attempts = if queued > 0 {
        dispatcher
            .deliver_until(Instant::now() + CLI_DELIVERY_WINDOW)
            .await
    } else {
        0
    };
    let left = dispatcher.outbox_depth().await.unwrap_or(0);
    if ctx.json {
        output::json(&json!({
            "days": days,
            "credentials": expiring.iter().map(|e| json!({
                "credential": e.credential,
                "service": e.service,
                "expires_at": e.expires_at.to_rfc3339(),
                "days_left": days_left(e.expires_at, now),
                "expired": now >= e.expires_at,
            })).collect::<Vec<_>>(),
            "queued": queued,
            "delivery_attempts": attempts,
            "outbox_pending": left,
        }));
        return Ok(());
    }
    if expiring.is_empty() {
        output::line(format!(
            "No credential expires within {days} days in vault '{}'.",
            ctx.vault
        ));
    } else {
        output::table(
            &["credential", "service", "expires at", "days left", "status"],
            expiring
                .iter()
                .map(|e| {
                    vec![
                        e.credential.clone(),
                        e.service.clone(),
                        e.expires_at.to_rfc3339(),
                        days_left(e.expires_at, now).to_string(),
                        if now >= e.expires_at {
                            "expired".to_owned()
                        } else {
                            "expiring".to_owned()
                        },
                    ]
                })
                .collect(),
        );
    }
    output::line(format!(
        "queued {queued} credential_expiry notice(s); {left} delivery(ies) still pending in the outbox"
    ));
    Ok(())
}
