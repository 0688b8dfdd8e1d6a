//! The `webhooks:` list of the config file: each item's keys, with their lines, into
//! aegis-core's `WebhookConfig`.
//!
//! Only the file sets webhooks (no environment variable or flag does). The secret length and
//! the http/loopback rule are checked by `Config::check`, like every other range rule.

use std::collections::BTreeMap;
use std::path::Path;

use aegis_core::config::{WebhookConfig, WebhookEvents, WebhookUrl};
use secrecy::SecretString;

use super::assign::{quote, yaml_bool};
use super::error::ConfigError;
use super::file_layer::{duplicate, line_of, located};
use super::schema::{WEBHOOK_KEYS, closest};
use super::yaml::Node;

/// The webhooks of the file, the lines of their keys, and what was wrong with them.
#[derive(Default)]
pub(crate) struct FileWebhooks {
    /// Valid items, in file order.
    pub(crate) hooks: Vec<WebhookConfig>,
    /// Line of `webhooks` and of each `webhooks[i].<key>` written.
    pub(crate) lines: BTreeMap<String, usize>,
    /// Problems, in file order.
    pub(crate) errors: Vec<ConfigError>,
}

/// Reads the value of `webhooks` (found on `line`).
pub(crate) fn read(node: &Node, line: usize, file: &Path) -> FileWebhooks {
    let mut out = FileWebhooks::default();
    out.lines.insert("webhooks".to_owned(), line);
    match node {
        Node::Null => {}
        Node::Seq { items, .. } => {
            for (index, item) in items.iter().enumerate() {
                if let Some(hook) = read_item(index, item, file, &mut out) {
                    out.hooks.push(hook);
                }
            }
        }
        other => out.errors.push(located(
            file,
            line,
            "webhooks",
            format!(
                "webhooks: expected a list of webhooks, found {}",
                other.kind()
            ),
        )),
    }
    out
}

fn read_item(
    index: usize,
    item: &Node,
    file: &Path,
    out: &mut FileWebhooks,
) -> Option<WebhookConfig> {
    let prefix = format!("webhooks[{index}]");
    let Node::Map { entries, line } = item else {
        out.errors.push(located(
            file,
            line_of(item),
            &prefix,
            format!(
                "{prefix}: expected a mapping with url, events and secret, found {}",
                item.kind()
            ),
        ));
        return None;
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut url = None;
    let mut events = None;
    let mut secret = None;
    let mut allow_http = false;
    let mut is_complete = true;
    for entry in entries {
        let key = format!("{prefix}.{}", entry.key);
        if let Some(first) = seen.get(entry.key.as_str()) {
            out.errors.push(duplicate(file, entry.line, &key, *first));
            continue;
        }
        seen.insert(&entry.key, entry.line);
        if !WEBHOOK_KEYS.contains(&entry.key.as_str()) {
            let mut error = located(file, entry.line, &key, format!("unknown key {key}"));
            error.hint = closest(&entry.key, WEBHOOK_KEYS.iter().copied())
                .map(|near| format!("did you mean {prefix}.{near}?"));
            out.errors.push(error);
            continue;
        }
        out.lines.insert(key.clone(), entry.line);
        let parsed = match entry.key.as_str() {
            "url" => text(&entry.value, "an https:// URL")
                .and_then(WebhookUrl::parse)
                .map(|parsed| url = Some(parsed)),
            "events" => event_names(&entry.value)
                .and_then(|names| WebhookEvents::parse(&names))
                .map(|parsed| events = Some(parsed)),
            "secret" => text(&entry.value, "a string of at least 16 characters")
                .map(|t| secret = Some(SecretString::from(t.trim()))),
            _ => boolean(&entry.value).map(|value| allow_http = value),
        };
        if let Err(message) = parsed {
            out.errors
                .push(located(file, entry.line, &key, format!("{key}: {message}")));
            is_complete = false;
        }
    }
    for (name, present) in [("url", url.is_some()), ("events", events.is_some())] {
        if !present && !seen.contains_key(name) {
            out.errors.push(located(
                file,
                *line,
                &prefix,
                format!("{prefix}: missing required key {name}"),
            ));
            is_complete = false;
        }
    }
    match (url, events) {
        (Some(url), Some(events)) if is_complete => Some(WebhookConfig {
            url,
            events,
            secret,
            allow_http,
        }),
        _ => None,
    }
}

/// A non-empty scalar's text; the text never goes into the error.
fn text<'a>(node: &'a Node, expected: &str) -> Result<&'a str, String> {
    match node {
        Node::Scalar { text, .. } if !text.trim().is_empty() => Ok(text.as_str()),
        Node::Scalar { .. } => Err(format!("expected {expected}, found an empty value")),
        other => Err(format!("expected {expected}, found {}", other.kind())),
    }
}

fn event_names(node: &Node) -> Result<Vec<String>, String> {
    match node {
        Node::Seq { items, .. } => items
            .iter()
            .map(|item| match item {
                Node::Scalar { text, .. } => Ok(text.as_str().to_owned()),
                other => Err(format!(
                    "expected a list of event names, found {}",
                    other.kind()
                )),
            })
            .collect(),
        Node::Scalar { text, .. } if text.trim() == "*" => Ok(vec!["*".to_owned()]),
        other => Err(format!(
            "expected a list of event names or [\"*\"], found {}",
            other.kind()
        )),
    }
}

fn boolean(node: &Node) -> Result<bool, String> {
    match node {
        Node::Scalar {
            text,
            is_quoted: false,
            ..
        } => {
            yaml_bool(text).ok_or_else(|| format!("expected true or false, found {}", quote(text)))
        }
        Node::Scalar { text, .. } => Err(format!(
            "expected true or false, found the quoted string {}",
            quote(text)
        )),
        other => Err(format!("expected true or false, found {}", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::yaml;

    fn read_text(text: &str) -> FileWebhooks {
        let root = yaml::parse(text).unwrap();
        let Node::Map { entries, .. } = &root else {
            panic!("not a mapping")
        };
        read(
            &entries[0].value,
            entries[0].line,
            Path::new("aegis.config.yaml"),
        )
    }

    #[test]
    fn a_complete_item_is_read_with_its_lines() {
        let hooks = read_text(
            "webhooks:\n  - url: https://hooks.example.net/a\n    events: [blocked_request]\n    \
             secret: a-long-random-shared-secret\n",
        );
        assert!(hooks.errors.is_empty());
        assert_eq!(hooks.hooks.len(), 1);
        let hook = &hooks.hooks[0];
        assert_eq!(hook.url.as_str(), "https://hooks.example.net/a");
        assert_eq!(
            hook.secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .as_deref(),
            Some("a-long-random-shared-secret")
        );
        assert_eq!(hooks.lines.get("webhooks[0].events"), Some(&3));
    }

    #[test]
    fn unknown_missing_and_malformed_item_keys_are_all_reported() {
        let hooks = read_text(
            "webhooks:\n  - url: ftp://x\n    evnts: [x]\n  - events: [\"*\"]\n    allow_http: yes\n",
        );
        let errors: Vec<String> = hooks.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "aegis.config.yaml:2: webhooks[0].url: expected an https:// URL",
                "aegis.config.yaml:3: unknown key webhooks[0].evnts",
                "aegis.config.yaml:2: webhooks[0]: missing required key events",
                "aegis.config.yaml:5: webhooks[1].allow_http: expected true or false, found 'yes'",
                "aegis.config.yaml:4: webhooks[1]: missing required key url",
            ]
        );
        assert_eq!(
            hooks.errors[1].hint.as_deref(),
            Some("did you mean webhooks[0].events?")
        );
        assert!(hooks.hooks.is_empty());
    }

    #[test]
    fn secrets_are_not_echoed_in_errors() {
        let hooks = read_text(
            "webhooks:\n  - url: https://h.example/x\n    events: [\"*\"]\n    secret: [hunter2]\n",
        );
        assert_eq!(hooks.errors.len(), 1);
        assert!(!hooks.errors[0].to_string().contains("hunter2"));
    }

    #[test]
    fn a_mapping_instead_of_a_list_is_an_error() {
        let hooks = read_text("webhooks: { url: x }\n");
        assert_eq!(
            hooks.errors[0].to_string(),
            "aegis.config.yaml:1: webhooks: expected a list of webhooks, found a mapping"
        );
    }
}
