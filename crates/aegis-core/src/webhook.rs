//! Webhooks (SPEC.md §18): the stored webhook row and its id, generated signing secrets, and the
//! JSON payload of one event.
//!
//! Everything here is pure: the caller passes the time and the random bytes. Signing lives in
//! `signature`, retry timing and classification in `retry`, turning ledger entries into events
//! (with coalescing) in `events`, credential expiry stages in `expiry`. Storing, sending and the
//! outbox are the store's and the engine's jobs.

pub mod events;
pub mod expiry;
pub mod retry;
pub mod signature;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::config::{ConfigEnum as _, WebhookEvent, WebhookEvents, WebhookUrl};
use crate::crypto::{CryptoError, random_bytes};
use crate::timestamp::Timestamp;

/// The event name of `aegis webhook test` deliveries (not subscribable, always sent).
pub const TEST_EVENT: &str = "test";
/// Prefix of generated signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest signing secret accepted, in characters (SPEC.md §5).
pub const MIN_SECRET_CHARS: usize = 16;

/// Every event name of SPEC.md §18.1, in table order.
pub const EVENT_NAMES: [&str; 6] = [
    "blocked_request",
    "credential_expiry",
    "rate_limit_exceeded",
    "agent_auth_failure",
    "body_inspection",
    TEST_EVENT,
];

/// The id of a webhook: `wh_` and 10 base32 characters for stored ones, `cfg-<position>` (from 1)
/// for entries of the config file's `webhooks` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(String);

impl WebhookId {
    /// Draws a new stored-webhook id.
    ///
    /// # Errors
    /// [`CryptoError::Random`] when the system generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; ID_CHARS];
        random_bytes(&mut bytes)?;
        let text: String = bytes
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)]))
            .collect();
        Ok(Self(format!("{STORED_PREFIX}{text}")))
    }

    /// The id of the config file's webhook at `index` (0-based): `cfg-<index + 1>`.
    pub fn for_config(index: usize) -> Self {
        Self(format!("{CONFIG_PREFIX}{}", index + 1))
    }

    /// Parses either form.
    ///
    /// # Errors
    /// A message saying what an id looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let stored = text.strip_prefix(STORED_PREFIX).is_some_and(|rest| {
            rest.len() == ID_CHARS && rest.bytes().all(|b| BASE32.contains(&b))
        });
        let config = text.strip_prefix(CONFIG_PREFIX).is_some_and(|rest| {
            !rest.is_empty()
                && !rest.starts_with('0')
                && rest.len() <= 6
                && rest.bytes().all(|b| b.is_ascii_digit())
        });
        if stored || config {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "expected a webhook id like wh_abcdefgh23 or cfg-1, found '{text}'"
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the webhook comes from the config file (and cannot be removed by a command).
    pub fn is_config(&self) -> bool {
        self.0.starts_with(CONFIG_PREFIX)
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored webhook's non-secret fields, covered by its row MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `wh_…` id.
    pub id: WebhookId,
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// What it receives.
    pub events: WebhookEvents,
    /// Whether `http://` to a loopback host is allowed.
    pub allow_http: bool,
    /// Free text shown by `webhook list`.
    pub label: Option<String>,
    /// When it was added.
    pub created_at: Timestamp,
}

impl Webhook {
    /// The canonical byte encoding covered by the row MAC: kind, vault id and every field.
    pub fn canonical_encoding(&self, vault_id: &uuid::Uuid) -> Vec<u8> {
        let events = events_text(&self.events);
        let created = self.created_at.as_millis().to_be_bytes();
        crate::agent::encode(&[
            b"webhook",
            vault_id.as_bytes(),
            self.id.as_str().as_bytes(),
            self.url.as_str().as_bytes(),
            events.as_bytes(),
            &[u8::from(self.allow_http)],
            self.label.as_deref().unwrap_or_default().as_bytes(),
            &created,
        ])
    }
}

/// A webhook in force: where to post, what to send, and the secret to sign with. Held by the
/// snapshot; `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct ActiveWebhook {
    /// `wh_…` or `cfg-<n>`.
    pub id: WebhookId,
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// What it receives.
    pub events: WebhookEvents,
    /// Whether `http://` to a loopback host is allowed.
    pub allow_http: bool,
    /// The signing secret.
    pub secret: SecretString,
}

impl ActiveWebhook {
    /// Whether `event` goes to this webhook.
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.events.includes(event)
    }
}

/// The events list as stored: `*` or the names joined by `,`.
pub fn events_text(events: &WebhookEvents) -> String {
    match events {
        WebhookEvents::All => "*".to_owned(),
        WebhookEvents::Only(list) => list
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Reads [`events_text`] (or a `--events` value) back.
///
/// # Errors
/// The message of [`WebhookEvents::parse`].
pub fn parse_events_text(text: &str) -> Result<WebhookEvents, String> {
    let names: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    WebhookEvents::parse(&names)
}

/// Checks the URL rules of SPEC.md §18.4: `https://`, or `http://` only when allowed and only to
/// `localhost` or a loopback address.
///
/// # Errors
/// A message saying what to change.
pub fn check_url(url: &WebhookUrl, allow_http: bool) -> Result<(), String> {
    if url.is_https() {
        return Ok(());
    }
    if !allow_http {
        return Err(format!(
            "webhook URL {} is not https://; plain http needs --allow-http and a loopback host",
            url.as_str()
        ));
    }
    if !url.is_loopback() {
        return Err(format!(
            "webhook URL {} uses http:// to a host that is not localhost or a loopback address",
            url.as_str()
        ));
    }
    Ok(())
}

/// Draws a signing secret: `whsec_` and 32 random bytes in unpadded base64url.
///
/// # Errors
/// [`CryptoError::Random`] when the system generator fails.
pub fn generate_secret() -> Result<SecretString, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    random_bytes(bytes.as_mut())?;
    let text = Zeroizing::new(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(*bytes)));
    Ok(SecretString::from(text.as_str().to_owned()))
}

/// What every payload carries besides the event's own data (SPEC.md §18.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadContext {
    /// The vault's name.
    pub vault: String,
    /// The process that produced the event.
    pub instance: String,
}

/// The JSON body of one event: `{"id","event","timestamp","vault","instance","data"}`. The same
/// bytes go to every webhook that receives the event, and to every retry.
pub fn payload_bytes(
    context: &PayloadContext,
    event_id: &uuid::Uuid,
    event: &str,
    at: Timestamp,
    data: Map<String, Value>,
) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("id".into(), event_id.to_string().into());
    body.insert("event".into(), event.into());
    body.insert("timestamp".into(), at.to_rfc3339().into());
    body.insert("vault".into(), context.vault.as_str().into());
    body.insert("instance".into(), context.instance.as_str().into());
    body.insert("data".into(), Value::Object(data));
    Value::Object(body).to_string().into_bytes()
}

/// The name of a subscribable event, or [`TEST_EVENT`].
pub fn event_name(event: Option<WebhookEvent>) -> &'static str {
    event.map_or(TEST_EVENT, |e| e.as_str())
}

/// Base32 alphabet of RFC 4648, lowercase.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const ID_CHARS: usize = 10;
const STORED_PREFIX: &str = "wh_";
const CONFIG_PREFIX: &str = "cfg-";

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::ConfigEnum;

    #[test]
    fn generated_ids_have_the_documented_shape_and_parse() {
        let id = WebhookId::generate().expect("random");
        assert_eq!(id.as_str().len(), 13);
        assert!(id.as_str().starts_with("wh_"));
        assert_eq!(WebhookId::parse(id.as_str()), Ok(id.clone()));
        assert!(!id.is_config());
        assert_eq!(WebhookId::for_config(0).as_str(), "cfg-1");
        assert!(WebhookId::parse("cfg-2").expect("cfg").is_config());
        for bad in [
            "wh_",
            "wh_ABCDEFGHIJ",
            "wh_abcdefghi1",
            "cfg-0",
            "cfg-",
            "x",
        ] {
            assert!(WebhookId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_secrets_are_whsec_and_43_characters() {
        let secret = generate_secret().expect("random");
        let text = secret.expose_secret();
        assert!(text.starts_with("whsec_"));
        assert_eq!(text.len(), 6 + 43);
        assert_ne!(text, generate_secret().expect("random").expose_secret());
    }

    #[test]
    fn http_urls_need_allow_http_and_loopback() {
        let https = WebhookUrl::parse("https://hooks.example.net/x").expect("url");
        let local = WebhookUrl::parse("http://127.0.0.1:9/x").expect("url");
        let remote = WebhookUrl::parse("http://hooks.example.net/x").expect("url");
        assert!(check_url(&https, false).is_ok());
        assert!(check_url(&local, false).is_err());
        assert!(check_url(&local, true).is_ok());
        assert!(check_url(&remote, true).is_err());
    }

    #[test]
    fn events_text_round_trips() {
        let events = parse_events_text("blocked_request, body_inspection").expect("parse");
        assert_eq!(events_text(&events), "blocked_request,body_inspection");
        assert_eq!(parse_events_text("*"), Ok(WebhookEvents::All));
        assert!(parse_events_text("nope").is_err());
        assert_eq!(
            event_name(Some(WebhookEvent::BlockedRequest)),
            "blocked_request"
        );
        for event in WebhookEvent::VARIANTS {
            assert!(EVENT_NAMES.contains(&event.as_str()));
        }
    }

    #[test]
    fn row_encoding_covers_every_field() {
        let hook = Webhook {
            id: WebhookId::parse("wh_abcdefghij").expect("id"),
            url: WebhookUrl::parse("https://h.example/x").expect("url"),
            events: WebhookEvents::All,
            allow_http: false,
            label: None,
            created_at: Timestamp::from_millis(1),
        };
        let vault = uuid::Uuid::from_bytes([3; 16]);
        let base = hook.canonical_encoding(&vault);
        let mut other = hook.clone();
        other.url = WebhookUrl::parse("https://evil.example/x").expect("url");
        assert_ne!(base, other.canonical_encoding(&vault));
        let mut other = hook.clone();
        other.allow_http = true;
        assert_ne!(base, other.canonical_encoding(&vault));
        let mut other = hook.clone();
        other.events = WebhookEvents::Only(vec![WebhookEvent::BlockedRequest]);
        assert_ne!(base, other.canonical_encoding(&vault));
        assert_ne!(base, hook.canonical_encoding(&uuid::Uuid::nil()));
    }

    #[test]
    fn payload_has_the_documented_fields() {
        let context = PayloadContext {
            vault: "default".into(),
            instance: "gate-1".into(),
        };
        let mut data = Map::new();
        data.insert("message".into(), "hi".into());
        let id = uuid::Uuid::from_bytes([1; 16]);
        let bytes = payload_bytes(
            &context,
            &id,
            TEST_EVENT,
            Timestamp::from_millis(1_772_357_400_125),
            data,
        );
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value["id"], id.to_string());
        assert_eq!(value["event"], "test");
        assert_eq!(value["timestamp"], "2026-03-01T09:30:00.125Z");
        assert_eq!(value["vault"], "default");
        assert_eq!(value["instance"], "gate-1");
        assert_eq!(value["data"]["message"], "hi");
    }
}
