//! Step 8 of the pipeline: in-memory rate limits (SPEC.md §12) — at most N admitted requests in
//! any window of the limit's period, with bounded state per key. Admission is all-or-nothing
//! across the limiters that apply, so a refused request consumes no quota anywhere.

use std::collections::HashMap;
use std::sync::Mutex;

use aegis_core::denial::Denial;
use aegis_core::rate::Rate;
use aegis_core::rate_window::Window;

/// Per-credential windows, keyed by credential id and rate (an edited limit starts fresh).
#[derive(Debug, Default)]
pub struct Limits {
    credentials: Mutex<HashMap<(uuid::Uuid, String), Window>>,
}

impl Limits {
    /// Admits one request for `credential` under `rate` at `now_ms`, or says when to retry.
    ///
    /// # Errors
    /// [`Denial::RateLimited`] with the seconds until the oldest counted sub-bucket leaves the
    /// window; [`Denial::Internal`] if the limiter state was poisoned by a panic.
    pub fn admit_credential(
        &self,
        credential: uuid::Uuid,
        rate: Rate,
        now_ms: u64,
    ) -> Result<(), Denial> {
        let mut windows = self.credentials.lock().map_err(|_| Denial::Internal)?;
        let window = windows
            .entry((credential, rate.to_string()))
            .or_insert_with(|| Window::from_rate(rate));
        window.admit(now_ms).map_err(|retry| Denial::RateLimited {
            retry_after_secs: retry.as_secs_rounded_up(),
        })
    }

    /// Drops the state of credentials that no longer exist (called after a reload).
    pub fn retain(&self, live: &[uuid::Uuid]) {
        if let Ok(mut windows) = self.credentials.lock() {
            windows.retain(|(id, _), _| live.contains(id));
        }
    }
}
