//! Everything the binary writes: results to standard output (human text or JSON), warnings and
//! errors to standard error. The only module allowed to print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::{ContentArrangement, Table, presets};

use crate::error::CliError;

/// Prints one line of human output.
pub(crate) fn line(text: impl AsRef<str>) {
    write_stdout(format_args!("{}\n", text.as_ref()));
}

/// Prints a JSON value as one line.
pub(crate) fn json(value: &serde_json::Value) {
    write_stdout(format_args!("{value}\n"));
}

/// Prints `key: value` lines with the values aligned.
pub(crate) fn block(pairs: &[(&str, String)]) {
    // Padding counts characters, so the width must too (`allowed → blocked` is wider in bytes).
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, value) in pairs {
        write_stdout(format_args!(
            "{key:<width$}  {value}\n",
            key = format!("{key}:"),
            width = width + 1
        ));
    }
}

/// Prints an aligned table without borders.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    for line in table.lines() {
        write_stdout(format_args!("{}\n", line.trim_end()));
    }
}

/// Prints `warning: …` to standard error.
pub(crate) fn warn(text: impl AsRef<str>) {
    eprintln!("warning: {}", text.as_ref());
}

/// Asks a question on standard error (no newline, so the answer is typed after it).
pub(crate) fn prompt(text: impl AsRef<str>) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    // A prompt that cannot be shown is followed by a read that gets no answer, which refuses.
    let _ = write!(err, "{}", text.as_ref()).and_then(|()| err.flush());
}

/// Prints a failure: `error:` and `hint:` lines, or one JSON object with `--json`.
pub(crate) fn error(err: &CliError, as_json: bool) {
    if as_json {
        let mut body = serde_json::json!({ "code": err.code, "message": err.message });
        if let Some(hint) = &err.hint {
            body["hint"] = serde_json::Value::String(hint.clone());
        }
        eprintln!("{}", serde_json::json!({ "error": body }));
    } else {
        eprintln!("error: {}", err.message);
        if let Some(hint) = &err.hint {
            eprintln!("hint: {hint}");
        }
    }
}

/// Prints clap's help or version text unchanged.
pub(crate) fn raw(text: &str) {
    write_stdout(format_args!("{text}"));
}

/// Writes to standard output. A reader that went away (`aegis vault list | head`) ends the
/// process quietly; any other write failure is reported once and exits 1.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_fmt(args).and_then(|()| out.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {err}");
        std::process::exit(1);
    }
}
