//! Everything the binary writes: results to standard output (human text or JSON), warnings and
//! errors to standard error. The only module allowed to print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::{ContentArrangement, Table, presets};

use crate::error::CliError;

/// Prints one line of human output.
pub(crate) fn line(text: impl AsRef<str>) {
    println!("{}", text.as_ref());
}

/// Prints a JSON value as one line.
pub(crate) fn json(value: &serde_json::Value) {
    println!("{value}");
}

/// Prints `key: value` lines with the values aligned.
pub(crate) fn block(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in pairs {
        println!(
            "{key:<width$}  {value}",
            key = format!("{key}:"),
            width = width + 1
        );
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
        println!("{}", line.trim_end());
    }
}

/// Prints `warning: …` to standard error.
pub(crate) fn warn(text: impl AsRef<str>) {
    eprintln!("warning: {}", text.as_ref());
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
    print!("{text}");
}
