//! Turning one raw value (YAML node, environment variable or flag text) into the typed field
//! its key names.
//!
//! Type errors are reported here ("expected an integer, found 'abc'"); ranges and cross-key
//! rules are aegis-core's `Config::check`. A secret's text is never part of a message.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use aegis_core::config::Config;
use aegis_core::units::{parse_duration, parse_size};
use secrecy::SecretString;

use super::schema::Slot;
use super::yaml::Node;

/// A value before it has a type.
#[derive(Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// Text from an environment variable.
    Env(&'a str),
    /// Text from a command-line flag.
    Flag(&'a str),
    /// A value from the config file.
    Node(&'a Node),
}

/// Parses `raw` as the kind of `slot` and stores it in `config`.
///
/// Relative paths are resolved against `base`. With `is_millis` a duration is read as an
/// integer of milliseconds (the legacy `gate.request_timeout`).
///
/// # Errors
/// What was expected and, for non-secrets, what was found.
pub(crate) fn assign(
    slot: &Slot,
    config: &mut Config,
    raw: Raw<'_>,
    base: &Path,
    is_millis: bool,
) -> Result<(), String> {
    let mismatch = |found: String| format!("expected {}, found {found}", slot.expected());
    if let Slot::List(field) = slot {
        *(field.set)(config) = list(raw).map_err(mismatch)?;
        return Ok(());
    }
    let (text, is_quoted) = match raw {
        Raw::Env(text) | Raw::Flag(text) => (text, false),
        Raw::Node(Node::Scalar {
            text, is_quoted, ..
        }) => (text.as_str(), *is_quoted),
        Raw::Node(other) => return Err(mismatch(other.kind().to_owned())),
    };
    let is_yaml = matches!(raw, Raw::Node(_));
    let shown = || {
        if slot.is_secret() {
            "a value that is not shown".to_owned()
        } else if is_yaml && is_quoted {
            format!("the quoted string {}", quote(text))
        } else {
            quote(text)
        }
    };
    // Numbers and booleans written in quotes are strings in YAML: a type error.
    let typed_text = if is_yaml && is_quoted {
        None
    } else {
        Some(text.trim())
    };
    match slot {
        Slot::Text(field) => *(field.set)(config) = text.to_owned(),
        Slot::Bool(field) => {
            let value = match raw {
                Raw::Node(_) => typed_text.and_then(yaml_bool),
                _ => env_bool(text),
            };
            *(field.set)(config) = value.ok_or_else(|| match raw {
                Raw::Node(_) => mismatch(shown()),
                _ => format!("expected true, false, 1, 0, yes or no, found {}", shown()),
            })?;
        }
        Slot::Port(field) => {
            *(field.set)(config) = typed_text
                .and_then(integer)
                .ok_or_else(|| mismatch(shown()))?;
        }
        Slot::U32(field) => {
            *(field.set)(config) = typed_text
                .and_then(integer)
                .ok_or_else(|| mismatch(shown()))?;
        }
        Slot::U64(field) => {
            *(field.set)(config) = typed_text
                .and_then(integer)
                .ok_or_else(|| mismatch(shown()))?;
        }
        Slot::Ip(field) => {
            let text = text.trim();
            let bare = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(text);
            *(field.set)(config) = bare.parse::<IpAddr>().map_err(|_| mismatch(shown()))?;
        }
        Slot::Duration(field) => {
            let value = if is_millis {
                typed_text
                    .and_then(integer::<u64>)
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        format!(
                            "expected an integer number of milliseconds, found {}",
                            shown()
                        )
                    })?
            } else {
                parse_duration(text).map_err(|_| mismatch(shown()))?
            };
            *(field.set)(config) = value;
        }
        Slot::Size(field) => {
            *(field.set)(config) = parse_size(text).map_err(|_| mismatch(shown()))?;
        }
        Slot::Path(field) => *(field.set)(config) = path(text, base)?,
        Slot::OptPath(field) => *(field.set)(config) = Some(path(text, base)?),
        Slot::Secret(field) | Slot::SecretUrl(field) => {
            let text = text.trim();
            if text.is_empty() {
                return Err(format!(
                    "expected {}, found an empty value",
                    slot.expected()
                ));
            }
            *(field.set)(config) = Some(SecretString::from(text));
        }
        Slot::Enum(field) => {
            if !(field.parse_into)(config, text) {
                return Err(mismatch(shown()));
            }
        }
        Slot::List(_) => {}
    }
    Ok(())
}

/// Parses an environment or flag boolean: `true/false/1/0/yes/no`, any case.
pub(crate) fn env_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Parses a YAML 1.2 boolean: `true`/`false` in the three spellings of the core schema.
pub(crate) fn yaml_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Resolves `text` against `base` unless absolute, dropping `.` components.
pub(crate) fn path(text: &str, base: &Path) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err("expected a path, found an empty string".to_owned());
    }
    let joined = base.join(text);
    Ok(joined
        .components()
        .filter(|part| !matches!(part, Component::CurDir))
        .collect())
}

/// Quotes user text for a message: control characters escaped, long text cut short.
pub(crate) fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut shown: String = text
        .chars()
        .take(MAX_CHARS)
        .collect::<String>()
        .escape_debug()
        .collect();
    if text.chars().count() > MAX_CHARS {
        shown.push('…');
    }
    format!("'{shown}'")
}

fn integer<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn list(raw: Raw<'_>) -> Result<Vec<String>, String> {
    match raw {
        Raw::Env(text) | Raw::Flag(text) => Ok(text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()),
        Raw::Node(Node::Seq { items, .. }) => items
            .iter()
            .map(|item| match item {
                Node::Scalar { text, .. } => Ok(text.as_str().to_owned()),
                other => Err(format!("a list containing {}", other.kind())),
            })
            .collect(),
        Raw::Node(other) => Err(other.kind().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::schema;

    fn set(path: &str, raw: Raw<'_>) -> Result<Config, String> {
        let mut config = Config::default();
        let spec = schema::key(path).unwrap();
        assign(&spec.slot, &mut config, raw, Path::new("/base"), false)?;
        Ok(config)
    }

    fn node(text: &str, is_quoted: bool) -> Node {
        Node::Scalar {
            text: zeroize::Zeroizing::new(text.to_owned()),
            is_quoted,
            line: 1,
        }
    }

    #[test]
    fn yaml_scalars_take_their_field_type() {
        assert_eq!(
            set("gate.port", Raw::Node(&node("8080", false)))
                .unwrap()
                .gate
                .port,
            8080
        );
        let config = set("gate.timeouts.connect", Raw::Node(&node("5s", false))).unwrap();
        assert_eq!(config.gate.timeouts.connect, Duration::from_secs(5));
        let config = set("gate.max_body_bytes", Raw::Node(&node("1MiB", false))).unwrap();
        assert_eq!(config.gate.max_body_bytes, 1 << 20);
        let config = set("gate.bind", Raw::Node(&node("[::1]", true))).unwrap();
        assert_eq!(config.gate.bind, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn quoted_numbers_and_booleans_are_type_errors() {
        let err = set("gate.port", Raw::Node(&node("3100", true))).unwrap_err();
        assert_eq!(
            err,
            "expected an integer from 0 to 65535 (0 picks a free port), found the quoted string '3100'"
        );
        assert!(set("gate.watch", Raw::Node(&node("true", true))).is_err());
        assert!(set("gate.watch", Raw::Node(&node("yes", false))).is_err());
    }

    #[test]
    fn out_of_type_range_integers_are_rejected() {
        let err = set("gate.port", Raw::Env("70000")).unwrap_err();
        assert_eq!(
            err,
            "expected an integer from 0 to 65535 (0 picks a free port), found '70000'"
        );
        assert!(set("vault.kdf.iterations", Raw::Flag("-1")).is_err());
    }

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let config = set("gate.policies_dir", Raw::Node(&node("./policies", false))).unwrap();
        assert_eq!(
            config.gate.policies_dir,
            Some(PathBuf::from("/base/policies"))
        );
        let config = set("gate.policies_dir", Raw::Env("/abs/p")).unwrap();
        assert_eq!(config.gate.policies_dir, Some(PathBuf::from("/abs/p")));
    }

    #[test]
    fn secrets_are_never_echoed() {
        let err = set(
            "vault.master_key",
            Raw::Node(&Node::Seq {
                items: vec![],
                line: 1,
            }),
        );
        assert_eq!(err.unwrap_err(), "expected a string, found a list");
        let mut config = Config::default();
        let slot = &schema::key("storage.url").unwrap().slot;
        assign(
            slot,
            &mut config,
            Raw::Env("postgres://u:hunter2@h/d"),
            Path::new("/"),
            false,
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn legacy_milliseconds_become_durations() {
        let mut config = Config::default();
        let slot = &schema::key("gate.timeouts.idle_body").unwrap().slot;
        assign(
            slot,
            &mut config,
            Raw::Node(&node("1500", false)),
            Path::new("/"),
            true,
        )
        .unwrap();
        assert_eq!(config.gate.timeouts.idle_body, Duration::from_millis(1500));
        let err = assign(
            slot,
            &mut config,
            Raw::Node(&node("15s", false)),
            Path::new("/"),
            true,
        );
        assert!(err.unwrap_err().contains("milliseconds"));
    }

    #[test]
    fn lists_come_from_sequences_or_comma_separated_flags() {
        let seq = Node::Seq {
            items: vec![node("a.example", false), node("b.example", true)],
            line: 1,
        };
        let config = set("gate.allowed_hosts", Raw::Node(&seq)).unwrap();
        assert_eq!(config.gate.allowed_hosts, ["a.example", "b.example"]);
        let config = set("mcp.allowed_origins", Raw::Flag("https://a, https://b")).unwrap();
        assert_eq!(config.mcp.allowed_origins, ["https://a", "https://b"]);
        assert!(set("gate.allowed_hosts", Raw::Node(&node("a", false))).is_err());
    }

    #[test]
    fn quoting_escapes_and_shortens() {
        assert_eq!(quote("a\nb"), "'a\\nb'");
        assert!(quote(&"x".repeat(100)).ends_with("…'"));
    }

    proptest! {
        #[test]
        fn every_env_bool_spelling_round_trips(value: bool, style in 0usize..3, upper: bool) {
            let spellings = if value { ["true", "1", "yes"] } else { ["false", "0", "no"] };
            let mut text = spellings[style].to_owned();
            if upper {
                text = text.to_uppercase();
            }
            prop_assert_eq!(env_bool(&text), Some(value));
        }

        #[test]
        fn anything_else_is_not_an_env_bool(text in "[a-z2-9]{1,6}") {
            prop_assume!(!["true", "false", "yes", "no"].contains(&text.as_str()));
            prop_assert_eq!(env_bool(&text), None);
        }

        #[test]
        fn assign_never_panics_on_env_text(index in 0usize..66, text in "\\PC{0,20}") {
            let spec = &schema::KEYS[index % schema::KEYS.len()];
            let mut config = Config::default();
            let _ = assign(&spec.slot, &mut config, Raw::Env(&text), Path::new("/"), false);
        }
    }
}
