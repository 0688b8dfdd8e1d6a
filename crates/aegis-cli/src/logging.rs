//! Logs of the long-running commands (SPEC.md §17.1): `tracing` to standard error, as one JSON
//! object per line or as human-readable lines, at `observability.log_level`.
//!
//! Every formatted line passes through [`LogFilter`] before it is written: each form of each
//! vault secret (the snapshot's echo-redaction automaton) and each known key format is replaced
//! by `[REDACTED]`. The types holding secrets cannot be formatted and request logging never
//! includes header values, queries or bodies; the filter is the last layer, for the bug that
//! gets past the others.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, OnceLock};

use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use aegis_core::config::{ConfigEnum as _, LogFormat};
use aegis_core::inspect::{self, DetectorClass, Location};
use aegis_core::ledger::EntryContent;
use aegis_core::redact::RedactionSet;
use aegis_core::timestamp::Timestamp;
use aegis_engine::decision_log::DecisionSink;
use aegis_engine::holder::SnapshotHolder;

use crate::context::Context;

/// What replaces a secret in a log line.
const REDACTED: &[u8] = b"[REDACTED]";

/// Rounds of key-format replacement per line: each round replaces up to the scanner's
/// `MAX_FINDINGS`; a line with more than this many keys is withheld whole.
const KEY_ROUNDS: usize = 8;

/// The secrets to take out of log lines: those of the snapshot in force, once a process has
/// one (before that, only key formats are recognised).
#[derive(Debug, Default)]
pub(crate) struct LogFilter {
    holder: OnceLock<Arc<SnapshotHolder>>,
}

impl LogFilter {
    /// From now on, lines are cleaned of the secrets of `holder`'s snapshot in force.
    pub(crate) fn follow(&self, holder: Arc<SnapshotHolder>) {
        let _ = self.holder.set(holder);
    }

    /// `line` with every vault secret form and every known key format replaced.
    fn clean(&self, line: &[u8]) -> Vec<u8> {
        clean_line(self.secrets().as_ref(), line)
    }

    /// The echo-redaction automaton of the snapshot in force, once there is one.
    fn secrets(&self) -> Option<Arc<RedactionSet>> {
        self.holder
            .get()
            .map(|holder| holder.load().redaction().clone())
    }
}

/// The process's filter, which the gate and MCP server point at their snapshot holder.
pub(crate) fn filter() -> &'static LogFilter {
    static FILTER: OnceLock<LogFilter> = OnceLock::new();
    FILTER.get_or_init(LogFilter::default)
}

/// Replaces vault secrets (`vault`) and key formats in one formatted line.
fn clean_line<'a>(vault: Option<&Arc<RedactionSet>>, line: impl Into<Cow<'a, [u8]>>) -> Vec<u8> {
    let line = line.into();
    // A line handed over owned is kept (not copied) when no secret is in it.
    let redacted = vault.and_then(|set| match set.redact(&line, None).0 {
        Cow::Owned(replaced) => Some(replaced),
        Cow::Borrowed(_) => None,
    });
    let mut text = redacted.unwrap_or_else(|| line.into_owned());
    static NO_SECRETS: OnceLock<RedactionSet> = OnceLock::new();
    let no_secrets = NO_SECRETS.get_or_init(|| RedactionSet::new(Vec::new()));
    for _ in 0..KEY_ROUNDS {
        let mut keys: Vec<usize> = inspect::scan(no_secrets, &text, &Location::Body)
            .into_iter()
            .filter(|f| f.detector.class() == DetectorClass::Secret)
            .filter_map(|f| usize::try_from(f.offset).ok())
            .collect();
        if keys.is_empty() {
            return text;
        }
        keys.sort_unstable();
        keys.dedup();
        // Right to left, so earlier offsets stay valid.
        for start in keys.into_iter().rev() {
            let end = token_end(&text, start);
            text.splice(start..end, REDACTED.iter().copied());
        }
    }
    let mut withheld = REDACTED.to_vec();
    withheld.push(b'\n');
    withheld
}

/// Where the key token starting at `start` ends: the run of characters keys are made of.
fn token_end(text: &[u8], start: usize) -> usize {
    let is_key_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'/' | b'=');
    let mut end = start;
    // A PEM header has spaces inside: `-----BEGIN … PRIVATE KEY-----` up to the line's end.
    if text
        .get(start..)
        .is_some_and(|rest| rest.starts_with(b"-----BEGIN"))
    {
        while end < text.len() && !matches!(text[end], b'\n' | b'"') {
            end += 1;
        }
        return end;
    }
    while end < text.len() && is_key_byte(text[end]) {
        end += 1;
    }
    end.max(start + 1).min(text.len())
}

/// Standard error, through the filter: a line is buffered while it is formatted and handed to
/// [`Pending`] cleaned when the formatter is done with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilteredStderr;

impl<'a> MakeWriter<'a> for FilteredStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter::new(true)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        // Warnings and errors go out at once; the rest within FLUSH_EVERY.
        LineWriter::new(*meta.level() <= tracing::Level::WARN)
    }
}

/// Buffers one formatted event and hands it on cleaned when dropped.
pub(crate) struct LineWriter {
    buffer: Vec<u8>,
    urgent: bool,
}

impl LineWriter {
    fn new(urgent: bool) -> Self {
        Self {
            buffer: Vec::with_capacity(512),
            urgent,
        }
    }
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let cleaned = filter().clean(&self.buffer);
        pending().push(&cleaned, self.urgent);
    }
}

/// How long an `info` or `debug` line may wait before it is written.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Waiting lines beyond this are written at once.
const PENDING_MAX_BYTES: usize = 64 * 1024;

/// Cleaned lines not yet written to standard error: one write per batch instead of one per line
/// (a busy gate logs a line per request). Order is kept: every write takes all that waits.
#[derive(Debug, Default)]
struct Pending {
    lines: std::sync::Mutex<Vec<u8>>,
}

impl Pending {
    fn push(&self, line: &[u8], urgent: bool) {
        let Ok(mut lines) = self.lines.lock() else {
            // A panic while writing a line: write this one directly rather than lose it.
            let _ = std::io::stderr().write_all(line);
            return;
        };
        lines.extend_from_slice(line);
        if urgent || lines.len() >= PENDING_MAX_BYTES {
            write_out(&mut lines);
        }
    }

    fn flush(&self) {
        if let Ok(mut lines) = self.lines.lock() {
            write_out(&mut lines);
        }
    }
}

fn write_out(lines: &mut Vec<u8>) {
    if !lines.is_empty() {
        // Nowhere to report a failed write to standard error.
        let _ = std::io::stderr().write_all(lines);
        lines.clear();
    }
}

fn pending() -> &'static Pending {
    static PENDING: OnceLock<Pending> = OnceLock::new();
    PENDING.get_or_init(Pending::default)
}

/// Writes every waiting line; `main` calls it before the process exits.
pub(crate) fn flush() {
    pending().flush();
}

/// One JSON object per line: `ts`, `level`, `target`, `message`, the fields of the spans the
/// event happened in (the request id), and the event's fields. Written straight into the line
/// (no intermediate map): a busy gate logs one line per request. A value with something JSON
/// escapes (a quote, a backslash, a control character) is cleaned before it is escaped, since a
/// secret holding one would not match the escaped text; the writer cleans the whole line.
struct JsonLine {
    secrets: Box<dyn Fn() -> Option<Arc<RedactionSet>> + Send + Sync>,
}

impl<S> FormatEvent<S, SpanFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let vault = (self.secrets)();
        let mut line = String::with_capacity(512);
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        line.push_str("{\"ts\":\"");
        line.push_str(&now.to_rfc3339());
        line.push_str("\",\"level\":\"");
        line.push_str(level_name(*event.metadata().level()));
        line.push_str("\",\"target\":");
        push_json_str(&mut line, event.metadata().target(), vault.as_ref());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<SpanFields>>()
                    && !fields.is_empty()
                {
                    line.push(',');
                    line.push_str(fields);
                }
            }
        }
        let mut visitor = JsonVisitor {
            line: &mut line,
            vault: vault.as_ref(),
            has_message: false,
        };
        event.record(&mut visitor);
        if !visitor.has_message {
            line.push_str(",\"message\":\"\"");
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Decision lines in the JSON format, written straight from the ledger entry: the same object
/// the `tracing` path writes for them, at a fraction of the cost (one per request).
struct JsonDecisions;

impl DecisionSink for JsonDecisions {
    fn write(&self, level: tracing::Level, entry: &EntryContent, outcome: &str, message: &str) {
        let vault = filter().secrets();
        let line = decision_line(level, entry, outcome, message, vault.as_ref());
        pending().push(&line, level <= tracing::Level::WARN);
    }
}

/// The JSON line of one decision, cleaned.
fn decision_line(
    level: tracing::Level,
    entry: &EntryContent,
    outcome: &str,
    message: &str,
    vault: Option<&Arc<RedactionSet>>,
) -> Vec<u8> {
    let mut line = String::with_capacity(384);
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    line.push_str("{\"ts\":\"");
    line.push_str(&now.to_rfc3339());
    line.push_str("\",\"level\":\"");
    line.push_str(level_name(level));
    line.push_str("\",\"target\":\"");
    line.push_str(aegis_engine::decision_log::TARGET);
    line.push('"');
    let mut text = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            line.push_str(",\"");
            line.push_str(name);
            line.push_str("\":");
            push_json_str(&mut line, value, vault);
        }
    };
    text("request_id", entry.request_id());
    text("agent", entry.agent());
    text("service", entry.service());
    text("credential", entry.credential());
    text("method", entry.method());
    text("target_host", entry.target_host());
    text("path", entry.path());
    if let Some(status) = entry.status_code() {
        let _ = write!(line, ",\"status\":{status}");
    }
    line.push_str(",\"outcome\":");
    push_json_str(&mut line, outcome, None);
    if let Some(code) = entry.denial_code() {
        line.push_str(",\"code\":");
        push_json_str(&mut line, code, vault);
    }
    if let Some(latency) = entry.latency_ms() {
        let _ = write!(line, ",\"latency_ms\":{latency}");
    }
    line.push_str(",\"message\":");
    push_json_str(&mut line, message, None);
    line.push_str("}\n");
    clean_line(vault, line.into_bytes())
}

/// A level as the JSON line names it.
fn level_name(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

/// Appends `text` as a JSON string, cleaned first when escaping would hide a secret in it.
fn push_json_str(line: &mut String, text: &str, vault: Option<&Arc<RedactionSet>>) {
    if !text.bytes().any(needs_json_escape) {
        line.push('"');
        line.push_str(text);
        line.push('"');
        return;
    }
    let cleaned = clean_line(vault, text.as_bytes());
    let cleaned = String::from_utf8_lossy(&cleaned);
    // serde_json's escaping of a string cannot fail.
    if let Ok(escaped) = serde_json::to_string(cleaned.as_ref()) {
        line.push_str(&escaped);
    }
}

/// Whether JSON writes `byte` escaped (so the raw text would not appear in the line).
fn needs_json_escape(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// Writes fields as `,"name":value` into a line.
struct JsonVisitor<'a> {
    line: &'a mut String,
    vault: Option<&'a Arc<RedactionSet>>,
    has_message: bool,
}

impl JsonVisitor<'_> {
    fn key(&mut self, field: &tracing::field::Field) {
        let name = field.name();
        if name == "message" {
            self.has_message = true;
        }
        // Field names are identifiers written in the source (`db.statement` at most).
        if name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
        {
            self.line.push_str(",\"");
            self.line.push_str(name);
            self.line.push_str("\":");
        } else {
            self.line.push(',');
            push_json_str(self.line, name, None);
            self.line.push(':');
        }
    }

    fn number(&mut self, field: &tracing::field::Field, value: impl fmt::Display) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }
}

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.key(field);
        // Formatted in place; moved out again only when it needs cleaning and escaping.
        let start = self.line.len();
        self.line.push('"');
        let _ = write!(self.line, "{value:?}");
        if self.line.as_bytes()[start + 1..]
            .iter()
            .any(|b| needs_json_escape(*b))
        {
            let text = self.line.split_off(start + 1);
            self.line.truncate(start);
            push_json_str(self.line, &text, self.vault);
        } else {
            self.line.push('"');
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.key(field);
        push_json_str(self.line, value, self.vault);
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.number(field, value);
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if value.is_finite() {
            self.number(field, value);
        } else {
            self.key(field);
            push_json_str(self.line, &value.to_string(), None);
        }
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        // The cause chain, without a backtrace (SPEC.md §17.1).
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.key(field);
        push_json_str(self.line, &text, self.vault);
    }
}

/// `fields` as `,"name":value` pairs, cleaned as event fields are.
fn span_pairs(fields: impl tracing_subscriber::field::RecordFields) -> String {
    let mut text = String::new();
    let vault = filter().secrets();
    fields.record(&mut JsonVisitor {
        line: &mut text,
        vault: vault.as_ref(),
        has_message: false,
    });
    text
}

/// A span's fields as `"name":value` pairs joined by commas, ready to go into an event's line
/// (the request id of the request span).
#[derive(Debug, Default, Clone, Copy)]
struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let pairs = span_pairs(fields);
        // Each pair starts with a comma; the first one is the caller's to add.
        writer.write_str(pairs.strip_prefix(',').unwrap_or(&pairs))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let pairs = span_pairs(fields);
        let added = if current.fields.is_empty() {
            pairs.strip_prefix(',').unwrap_or(&pairs)
        } else {
            &pairs
        };
        current.fields.push_str(added);
        Ok(())
    }
}

/// Installs the process's subscriber: `observability.log_format` and `log_level` (`auto` is
/// human-readable on a terminal, JSON otherwise), writing through the filter. Levels are a
/// static [`Targets`] filter: unlike an `EnvFilter`, it does no per-span bookkeeping when a
/// request's span is entered and left.
pub(crate) fn init(ctx: &Context) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let observability = &ctx.loaded.config.observability;
    let level = observability
        .log_level
        .as_str()
        .parse::<LevelFilter>()
        .unwrap_or(LevelFilter::INFO);
    let quiet = level.min(LevelFilter::WARN);
    let targets = Targets::new()
        .with_default(level)
        .with_target("hyper", quiet)
        .with_target("h2", quiet)
        .with_target("rustls", quiet)
        .with_target("rmcp", quiet);
    let json = match observability.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    if json {
        aegis_engine::decision_log::install(Box::new(JsonDecisions));
    }
    let installed = if json {
        tracing_subscriber::fmt()
            .fmt_fields(SpanFields)
            .event_format(JsonLine {
                secrets: Box::new(|| filter().secrets()),
            })
            .with_writer(FilteredStderr)
            .with_max_level(level)
            .finish()
            .with(targets)
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .with_writer(FilteredStderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_max_level(level)
            .finish()
            .with(targets)
            .try_init()
    };
    if installed.is_ok() {
        let _ = std::thread::Builder::new()
            .name("aegis-log-flush".into())
            .spawn(|| {
                loop {
                    // A timer, not synchronisation: a spurious wake-up only flushes early.
                    std::thread::park_timeout(FLUSH_EVERY);
                    flush();
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aegis_core::redact::RedactionSecret;

    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn vault(secret: &str) -> Arc<RedactionSet> {
        Arc::new(RedactionSet::new(vec![RedactionSecret::new(
            secret.as_bytes(),
            0,
            "stripe",
        )]))
    }

    /// The JSON formatter over `set`, writing into `sink` (the line filter is not applied: the
    /// formatter's own cleaning is what these tests look at).
    fn json_subscriber(set: &Arc<RedactionSet>, sink: Captured) -> impl Subscriber + Send + Sync {
        let secrets = set.clone();
        tracing_subscriber::fmt()
            .fmt_fields(SpanFields)
            .event_format(JsonLine {
                secrets: Box::new(move || Some(secrets.clone())),
            })
            .with_writer(move || sink.clone())
            .finish()
    }

    #[test]
    fn a_logged_vault_secret_and_key_never_reach_the_output() {
        let secret = "vault-secret-value-8c1d3e55f0a2";
        let set = vault(secret);
        let captured = Captured::default();
        let sink = captured.clone();
        let for_writer = set.clone();
        let make = move || {
            // The filter of the test: the same cleaning as the process's, over this vault.
            struct Cleaning(Captured, Arc<RedactionSet>, Vec<u8>);
            impl Write for Cleaning {
                fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                    self.2.extend_from_slice(bytes);
                    Ok(bytes.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            impl Drop for Cleaning {
                fn drop(&mut self) {
                    let cleaned = clean_line(Some(&self.1), &self.2);
                    let _ = self.0.write_all(&cleaned);
                }
            }
            Cleaning(sink.clone(), for_writer.clone(), Vec::new())
        };
        let secrets = set.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SpanFields)
            .event_format(JsonLine {
                secrets: Box::new(move || Some(secrets.clone())),
            })
            .with_writer(make)
            .finish();
        let github = format!(
            "ghp_{}",
            "a1B2c3D4e5".repeat(4).get(..36).unwrap_or_default()
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "req-1");
            let _entered = span.enter();
            // Deliberately: a bug that logs a secret, in a field and in the message.
            tracing::info!(leaked = secret, "upstream said {secret} and {github}");
        });
        let output = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(!output.contains(secret), "{output}");
        assert!(!output.contains(&github), "{output}");
        assert!(output.contains("[REDACTED]"), "{output}");
        let line: serde_json::Value = serde_json::from_str(output.trim()).expect("one JSON line");
        assert_eq!(line["level"], "info");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["leaked"], "[REDACTED]");
        assert!(line["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')));
        assert!(
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("[REDACTED]"))
        );
    }

    #[test]
    fn a_secret_with_a_quote_and_a_backslash_is_caught_before_json_escapes_it() {
        let secret = "pa\"ss\\word-with-quote-1234";
        let set = vault(secret);
        let captured = Captured::default();
        let subscriber = json_subscriber(&set, captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(value = secret, "login failed with {secret}");
        });
        let output = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let line: serde_json::Value = serde_json::from_str(output.trim()).expect("one JSON line");
        assert_eq!(line["value"], "[REDACTED]", "{output}");
        assert!(
            !line["message"]
                .as_str()
                .unwrap_or_default()
                .contains(secret),
            "{output}"
        );
        assert!(!output.contains("ss\\\\word"), "{output}");
    }

    #[test]
    fn base64_and_url_encoded_forms_are_replaced_too() {
        let secret = "s3cr3t/with+chars=and-more-length";
        let set = vault(secret);
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret);
        let line =
            format!("{{\"a\":\"{encoded}\",\"b\":\"s3cr3t%2Fwith%2Bchars%3Dand-more-length\"}}\n");
        let cleaned = String::from_utf8(clean_line(Some(&set), line.as_bytes())).expect("utf-8");
        assert!(!cleaned.contains(&encoded), "{cleaned}");
        assert!(!cleaned.contains("s3cr3t%2F"), "{cleaned}");
    }

    #[test]
    fn ordinary_lines_pass_unchanged() {
        let line = b"{\"message\":\"request\",\"path\":\"/v1/chat\",\"status\":200}\n";
        assert_eq!(
            clean_line(Some(&vault("unrelated-secret-123456")), line),
            line
        );
        assert_eq!(clean_line(None, line), line);
    }

    #[test]
    fn a_pem_header_is_replaced_to_the_end_of_its_line() {
        let line = b"key: -----BEGIN RSA PRIVATE KEY-----\nnext\n";
        let cleaned = clean_line(None, line);
        assert_eq!(cleaned, b"key: [REDACTED]\nnext\n");
    }

    #[test]
    fn the_direct_decision_line_is_the_object_the_tracing_path_writes() {
        use aegis_core::ledger::{Outcome, Via};

        let set = vault("decision-secret-0123456789");
        let entry = EntryContent::request(Outcome::Blocked, Via::Gate, "i-1")
            .with_request_id("0190f4c2-0000-7000-8000-000000000001")
            .with_agent("bot")
            .with_service("github")
            .with_credential("gh")
            .with_method("POST")
            .with_target_host("api.github.com")
            .with_path(b"/github/repos/a\"b?token=decision-secret-0123456789")
            .with_status_code(403)
            .with_denial_code("body_blocked")
            .with_latency_ms(3);
        let direct = decision_line(
            tracing::Level::INFO,
            &entry,
            "blocked",
            "request",
            Some(&set),
        );
        let direct: serde_json::Value =
            serde_json::from_slice(&direct).expect("direct line is JSON");

        let captured = Captured::default();
        let subscriber = json_subscriber(&set, captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "aegis::request",
                request_id = entry.request_id(),
                agent = entry.agent(),
                service = entry.service(),
                credential = entry.credential(),
                method = entry.method(),
                target_host = entry.target_host(),
                path = entry.path(),
                status = entry.status_code(),
                outcome = "blocked",
                code = entry.denial_code(),
                latency_ms = entry.latency_ms(),
                "request"
            );
        });
        let output = captured.0.lock().expect("lock").clone();
        let mut through_tracing: serde_json::Value =
            serde_json::from_slice(&output).expect("tracing line is JSON");
        let mut direct = direct;
        for line in [&mut direct, &mut through_tracing] {
            line.as_object_mut().expect("object").remove("ts");
        }
        assert_eq!(direct, through_tracing);
        assert_eq!(direct["path"], "/github/repos/a\"b");
        assert_eq!(direct["status"], 403);
    }
}
