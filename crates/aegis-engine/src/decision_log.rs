//! The one log line of each request decision (SPEC.md §17.1) can be written by a sink the
//! process installs instead of going through `tracing`'s field visitors: a busy gate writes one
//! per request, and formatting it from the entry directly costs a fraction of the generic path.
//! Without a sink (human-readable logs, tests), the line goes through `tracing` as any other.

use std::sync::OnceLock;

use aegis_core::ledger::EntryContent;

/// Target of the decision lines.
pub const TARGET: &str = "aegis::request";

/// Writes decision lines.
pub trait DecisionSink: Send + Sync + 'static {
    /// Writes the line of `entry` at `level` (`info`, or `warn` for failures); `outcome` and
    /// `message` as the `tracing` line would carry them.
    fn write(&self, level: tracing::Level, entry: &EntryContent, outcome: &str, message: &str);
}

static SINK: OnceLock<Box<dyn DecisionSink>> = OnceLock::new();

/// Installs the process's sink (once; later calls are ignored).
pub fn install(sink: Box<dyn DecisionSink>) {
    let _ = SINK.set(sink);
}

/// The installed sink.
pub(crate) fn sink() -> Option<&'static dyn DecisionSink> {
    SINK.get().map(|sink| &**sink)
}
