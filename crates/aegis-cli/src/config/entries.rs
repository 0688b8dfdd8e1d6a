//! The `config show` listing: every key's value as text, with secrets masked, and its source.
//!
//! Masking happens here, once, so no caller ever holds an unmasked secret as text.

use std::collections::BTreeMap;
use std::path::Path;

use aegis_core::config::Config;
use aegis_core::units::{format_duration, format_size};
use secrecy::{ExposeSecret, SecretString};

use super::schema::{KEYS, Slot};
use super::{ResolvedEntry, Source};

/// What a masked secret prints as.
pub(crate) const MASK: &str = "********";

/// One entry per key of the table, then the webhooks, in table order.
pub(crate) fn entries(
    config: &Config,
    sources: &BTreeMap<&'static str, Source>,
    webhook_lines: &BTreeMap<String, usize>,
    file: Option<&Path>,
) -> Vec<ResolvedEntry> {
    let mut out: Vec<ResolvedEntry> = KEYS
        .iter()
        .map(|spec| {
            let shown = shown(&spec.slot, config);
            ResolvedEntry {
                key: spec.path.to_owned(),
                is_set: shown.is_some(),
                shown: shown.unwrap_or_default(),
                source: sources.get(spec.path).cloned().unwrap_or(Source::Default),
            }
        })
        .collect();
    let source_of = |key: &str| match (file, webhook_lines.get(key)) {
        (Some(path), Some(line)) => Source::File {
            path: path.to_path_buf(),
            line: *line,
        },
        _ => Source::Default,
    };
    if config.webhooks.is_empty() {
        out.push(ResolvedEntry {
            key: "webhooks".to_owned(),
            shown: "[]".to_owned(),
            is_set: true,
            source: source_of("webhooks"),
        });
    }
    for (index, hook) in config.webhooks.iter().enumerate() {
        let values = [
            ("url", Some(hook.url.as_str().to_owned())),
            ("events", Some(hook.events.to_display())),
            ("secret", hook.secret.as_ref().map(|_| MASK.to_owned())),
            ("allow_http", Some(hook.allow_http.to_string())),
        ];
        for (name, value) in values {
            let key = format!("webhooks[{index}].{name}");
            out.push(ResolvedEntry {
                source: source_of(&key),
                key,
                is_set: value.is_some(),
                shown: value.unwrap_or_default(),
            });
        }
    }
    out
}

/// A URL with its password (and any `password=` query value) replaced by [`MASK`].
///
/// The one place a secret URL is exposed for display; only the non-secret parts are copied.
/// Text that is not a URL at all is masked whole.
pub(crate) fn mask_url(url: &SecretString) -> String {
    let text = url.expose_secret().trim();
    let Some((scheme, rest)) = text.split_once("://") else {
        return MASK.to_owned();
    };
    // Past the last '@' is the host (a password may contain '/', so search the whole rest).
    let (userinfo, host_part) = match rest.rsplit_once('@') {
        Some((userinfo, host_part)) => (Some(userinfo), host_part),
        None => (None, rest),
    };
    let mut shown = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => shown.push_str(&format!("{user}:{MASK}@")),
            None => shown.push_str(&format!("{MASK}@")),
        }
    }
    match host_part.split_once('?') {
        Some((before, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.to_ascii_lowercase().contains("pass") => {
                        format!("{name}={MASK}")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            shown.push_str(&format!("{before}?{}", params.join("&")));
        }
        None => shown.push_str(host_part),
    }
    shown
}

fn shown(slot: &Slot, config: &Config) -> Option<String> {
    Some(match slot {
        Slot::Text(field) => (field.get)(config).clone(),
        Slot::Bool(field) => (field.get)(config).to_string(),
        Slot::Port(field) => (field.get)(config).to_string(),
        Slot::U32(field) => (field.get)(config).to_string(),
        Slot::U64(field) => (field.get)(config).to_string(),
        Slot::Ip(field) => (field.get)(config).to_string(),
        Slot::Duration(field) => format_duration(*(field.get)(config)),
        Slot::Size(field) => format_size(*(field.get)(config)),
        Slot::Path(field) => (field.get)(config).display().to_string(),
        Slot::OptPath(field) => (field.get)(config).as_ref()?.display().to_string(),
        Slot::List(field) => format!("[{}]", (field.get)(config).join(", ")),
        Slot::Secret(field) => (field.get)(config).as_ref().map(|_| MASK.to_owned())?,
        Slot::SecretUrl(field) => mask_url((field.get)(config).as_ref()?),
        Slot::Enum(field) => (field.get)(config).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(text: &str) -> String {
        mask_url(&SecretString::from(text))
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask("postgres://aegis:hunter2@db:5432/aegis"),
            "postgres://aegis:********@db:5432/aegis"
        );
        assert_eq!(
            mask("rediss://:hunter2@cache:6380/0"),
            "rediss://:********@cache:6380/0"
        );
        assert_eq!(mask("redis://hunter2@cache"), "redis://********@cache");
        assert_eq!(mask("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(
            mask("postgres://db/a?sslmode=require&password=hunter2"),
            "postgres://db/a?sslmode=require&password=********"
        );
        assert_eq!(
            mask("postgres://u:pa/ss@word@db/a"),
            "postgres://u:********@db/a"
        );
        assert_eq!(mask("not a url hunter2"), MASK);
    }

    #[test]
    fn every_default_has_a_shown_value_except_unset_options() {
        let config = Config::default();
        let listed = entries(&config, &BTreeMap::new(), &BTreeMap::new(), None);
        assert_eq!(listed.len(), KEYS.len() + 1);
        let find = |key: &str| listed.iter().find(|entry| entry.key == key).unwrap();
        assert_eq!(find("gate.max_body_bytes").shown, "100MiB");
        assert_eq!(find("ledger.batch_max_delay").shown, "20ms");
        assert_eq!(find("gate.policy_mode").shown, "enforce");
        assert!(!find("gate.tls.cert").is_set);
        assert!(!find("vault.master_key").is_set);
        assert_eq!(find("webhooks").shown, "[]");
    }
}
