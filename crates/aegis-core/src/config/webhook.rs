//! Webhooks declared in the config file (`webhooks:` list, SPEC §5 and §18.4).
//!
//! Parsing the URL and event list happens here; delivery, signing and the outbox live in the
//! engine and the store.

use secrecy::SecretString;

use super::choice::{ConfigEnum, WebhookEvent};

/// One entry of the `webhooks` list.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where deliveries are posted.
    pub url: WebhookUrl,
    /// Which events are sent.
    pub events: WebhookEvents,
    /// HMAC key for `X-Aegis-Signature`; `None` means one is generated and stored (§27).
    pub secret: Option<SecretString>,
    /// Allows an `http://` URL, and only to a loopback host.
    pub allow_http: bool,
}

/// A webhook URL: `https://` or `http://`, a host, no user credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    text: String,
    host: String,
    is_https: bool,
}

impl WebhookUrl {
    /// Parses an absolute `http://` or `https://` URL.
    ///
    /// # Errors
    /// A message saying what was expected, for a missing or other scheme, an empty host,
    /// user credentials in the URL, or whitespace.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (is_https, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(text, "http://") {
            (false, rest)
        } else {
            return Err("expected an https:// URL".to_owned());
        };
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a URL must not contain whitespace".to_owned());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err("the URL must not contain user credentials; use webhooks[].secret".into());
        }
        let host = if let Some(bracketed) = authority.strip_prefix('[') {
            match bracketed.split_once(']') {
                Some((inner, _)) => inner,
                None => return Err("unclosed [ in the URL's host".to_owned()),
            }
        } else {
            authority.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            return Err("the URL has no host".to_owned());
        }
        Ok(Self {
            text: text.to_owned(),
            host: host.to_ascii_lowercase(),
            is_https,
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host, lowercase, without brackets or port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.is_https
    }

    /// Whether the host is `localhost` or a loopback IP address.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The events a webhook receives: all of them (`["*"]`) or a chosen set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvents {
    /// Every event, written `["*"]`.
    All,
    /// Only these, without duplicates, in the order first written.
    Only(Vec<WebhookEvent>),
}

impl WebhookEvents {
    /// Parses the `events` list: event names of §18.1, or the single entry `*`.
    ///
    /// # Errors
    /// A message for an empty list, an unknown name, or `*` mixed with names.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        if names.is_empty() {
            return Err(format!(
                "expected at least one event: {} or \"*\"",
                WebhookEvent::expected()
            ));
        }
        if names.iter().any(|name| name.as_ref().trim() == "*") {
            return if names.len() == 1 {
                Ok(Self::All)
            } else {
                Err("\"*\" stands for every event and cannot be combined with names".to_owned())
            };
        }
        let mut events = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let event = WebhookEvent::parse(name).ok_or_else(|| {
                format!(
                    "unknown event '{name}'; expected {} or \"*\"",
                    WebhookEvent::expected()
                )
            })?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        Ok(Self::Only(events))
    }

    /// Whether `event` is delivered to this webhook.
    pub fn includes(&self, event: WebhookEvent) -> bool {
        match self {
            Self::All => true,
            Self::Only(events) => events.contains(&event),
        }
    }

    /// The list as `config show` prints it (`[blocked_request, body_inspection]` or `[*]`).
    pub fn to_display(&self) -> String {
        match self {
            Self::All => "[*]".to_owned(),
            Self::Only(events) => {
                let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
                format!("[{}]", names.join(", "))
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_url_keeps_its_host() {
        let url = WebhookUrl::parse("https://Hooks.Example.net:8443/aegis?x=1").unwrap();
        assert_eq!(url.host(), "hooks.example.net");
        assert!(url.is_https());
        assert!(!url.is_loopback());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for text in [
            "http://localhost:9000/h",
            "http://127.0.0.1/h",
            "http://[::1]:80/h",
        ] {
            let url = WebhookUrl::parse(text).unwrap();
            assert!(url.is_loopback(), "{text}");
            assert!(!url.is_https());
        }
    }

    #[test]
    fn urls_without_scheme_host_or_with_userinfo_are_rejected() {
        for bad in [
            "hooks.example.net",
            "ftp://x",
            "https://",
            "https://u:p@host/",
            "https://a b",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn star_means_all_events_and_names_are_checked() {
        assert_eq!(WebhookEvents::parse(&["*"]), Ok(WebhookEvents::All));
        let only = WebhookEvents::parse(&["blocked_request", "blocked_request"]).unwrap();
        assert_eq!(
            only,
            WebhookEvents::Only(vec![WebhookEvent::BlockedRequest])
        );
        assert!(WebhookEvents::parse(&["*", "blocked_request"]).is_err());
        assert!(WebhookEvents::parse::<&str>(&[]).is_err());
        let err = WebhookEvents::parse(&["blocked"]).unwrap_err();
        assert!(err.contains("blocked_request"), "{err}");
    }
}
