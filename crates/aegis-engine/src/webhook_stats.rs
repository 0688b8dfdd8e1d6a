//! Counters of webhook deliveries by event and result, and the outbox depth last read, kept in
//! atomics so the metrics endpoint reads them at scrape time without touching the database
//! (`aegis_webhook_deliveries_total{event,result}`, `aegis_webhook_outbox_depth`).

use std::sync::atomic::{AtomicU64, Ordering};

use aegis_core::webhook::EVENT_NAMES;

/// How an attempt was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered 2xx.
    Delivered,
    /// It will be tried again.
    Retry,
    /// Given up.
    Failed,
}

impl DeliveryResult {
    /// Every result, in label order.
    pub const ALL: [Self; 3] = [Self::Delivered, Self::Retry, Self::Failed];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Delivered => 0,
            Self::Retry => 1,
            Self::Failed => 2,
        }
    }
}

/// Attempts per (event, result); both label sets are fixed (SPEC.md §18.1 events).
#[derive(Debug, Default)]
pub struct WebhookStats {
    counts: [[AtomicU64; 3]; EVENT_NAMES.len()],
    outbox_depth: AtomicU64,
}

impl WebhookStats {
    /// Counts one attempt of `event` (an unknown name is not counted).
    pub fn record(&self, event: &str, result: DeliveryResult) {
        if let Some(row) = EVENT_NAMES.iter().position(|name| *name == event) {
            self.counts[row][result.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Pending deliveries in the outbox as the dispatcher last read them (about once a second).
    pub fn outbox_depth(&self) -> u64 {
        self.outbox_depth.load(Ordering::Relaxed)
    }

    /// Stores the depth just read from the outbox.
    pub fn set_outbox_depth(&self, depth: u64) {
        self.outbox_depth.store(depth, Ordering::Relaxed);
    }

    /// Every (event, result, count), zeros included, in a fixed order.
    pub fn read(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::with_capacity(EVENT_NAMES.len() * 3);
        for (row, event) in EVENT_NAMES.iter().enumerate() {
            for result in DeliveryResult::ALL {
                let count = self.counts[row][result.index()].load(Ordering::Relaxed);
                out.push((*event, result.as_str(), count));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_event_and_result() {
        let stats = WebhookStats::default();
        stats.record("blocked_request", DeliveryResult::Retry);
        stats.record("blocked_request", DeliveryResult::Retry);
        stats.record("test", DeliveryResult::Delivered);
        stats.record("nonsense", DeliveryResult::Failed);
        let read = stats.read();
        assert_eq!(read.len(), 18);
        assert!(read.contains(&("blocked_request", "retry", 2)));
        assert!(read.contains(&("test", "delivered", 1)));
        assert_eq!(read.iter().map(|(_, _, n)| n).sum::<u64>(), 3);
        stats.set_outbox_depth(3);
        assert_eq!(stats.outbox_depth(), 3);
    }
}
