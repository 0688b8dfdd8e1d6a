//! Logs of the long-running commands (SPEC.md §17.1): `tracing` to standard error, as one JSON
//! object per line or as human-readable lines, at `observability.log_level`.
//!
//! Every formatted line passes through [`LogFilter`] before it is written: each form of each
//! vault secret (the snapshot's echo-redaction automaton) and each known key format is replaced
//! by `[REDACTED]`. The types holding secrets cannot be formatted and request logging never
//! includes header values, queries or bodies; the filter is the last layer, for the bug that
//! gets past the others.

use std::fmt;
use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, OnceLock};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use aegis_core::config::{ConfigEnum as _, LogFormat};
use aegis_core::inspect::{self, DetectorClass, Location};
use aegis_core::redact::RedactionSet;
use aegis_core::timestamp::Timestamp;
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
fn clean_line(vault: Option<&Arc<RedactionSet>>, line: &[u8]) -> Vec<u8> {
    let mut text = match vault {
        Some(set) => set.redact(line, None).0.into_owned(),
        None => line.to_vec(),
    };
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

/// Standard error, through the filter: a line is buffered while it is formatted and written
/// cleaned, in one write, when the formatter is done with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilteredStderr;

impl<'a> MakeWriter<'a> for FilteredStderr {
    type Writer = LineWriter<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter::new(std::io::stderr(), filter())
    }
}

/// Buffers one formatted event and writes it cleaned when dropped.
pub(crate) struct LineWriter<W: Write> {
    buffer: Vec<u8>,
    out: W,
    filter: &'static LogFilter,
}

impl<W: Write> LineWriter<W> {
    fn new(out: W, filter: &'static LogFilter) -> Self {
        Self {
            buffer: Vec::with_capacity(512),
            out,
            filter,
        }
    }
}

impl<W: Write> Write for LineWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for LineWriter<W> {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let cleaned = self.filter.clean(&self.buffer);
        // Nowhere to report a failed write to standard error.
        let _ = self.out.write_all(&cleaned);
    }
}

/// One JSON object per line: `ts`, `level`, `target`, `message`, the event's fields, and the
/// fields of the spans it happened in (the request id). Each value is cleaned before it is
/// escaped into JSON (a secret with a quote or a backslash in it would not match the escaped
/// text), and the whole line once more by the writer.
struct JsonLine {
    secrets: Box<dyn Fn() -> Option<Arc<RedactionSet>> + Send + Sync>,
}

impl JsonLine {
    /// Cleans every string in `value`, recursively.
    fn clean_value(vault: Option<&Arc<RedactionSet>>, value: &mut serde_json::Value) {
        match value {
            // Text that JSON writes as it is gets the same scan in the whole line; only text
            // with something to escape must be cleaned here.
            serde_json::Value::String(text) if text.bytes().any(needs_json_escape) => {
                let cleaned = clean_line(vault, text.as_bytes());
                if cleaned != text.as_bytes() {
                    *text = String::from_utf8_lossy(&cleaned).into_owned();
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    Self::clean_value(vault, item);
                }
            }
            serde_json::Value::Object(fields) => {
                for item in fields.values_mut() {
                    Self::clean_value(vault, item);
                }
            }
            _ => {}
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = serde_json::Map::new();
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        line.insert("ts".into(), now.to_rfc3339().into());
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        line.insert("level".into(), level.into());
        line.insert("target".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(serde_json::Value::Object(fields)) =
                    serde_json::from_str::<serde_json::Value>(fields)
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        if !line.contains_key("message") {
            line.insert("message".into(), "".into());
        }
        let vault = (self.secrets)();
        let mut line = serde_json::Value::Object(line);
        Self::clean_value(vault.as_ref(), &mut line);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writer.write_str(&text)?;
        writer.write_char('\n')
    }
}

/// Whether JSON writes `byte` escaped (so the raw text would not appear in the line).
fn needs_json_escape(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// Records an event's fields into the line's JSON object.
struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
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
        self.0.insert(field.name().to_owned(), text.into());
    }
}

/// Installs the process's subscriber: `observability.log_format` and `log_level` (`auto` is
/// human-readable on a terminal, JSON otherwise), writing through the filter.
pub(crate) fn init(ctx: &Context) {
    let observability = &ctx.loaded.config.observability;
    let level = observability.log_level.as_str();
    let env_filter =
        tracing_subscriber::EnvFilter::try_new(format!("{level},hyper=warn,rustls=warn,rmcp=warn"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match observability.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    if json {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(env_filter)
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine {
                secrets: Box::new(|| filter().secrets()),
            })
            .with_writer(FilteredStderr)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(env_filter)
            .with_writer(FilteredStderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
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
            .fmt_fields(JsonFields::new())
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
        let sink = captured.clone();
        let secrets = set.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine {
                secrets: Box::new(move || Some(secrets.clone())),
            })
            .with_writer(move || sink.clone())
            .finish();
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
}
