//! Step 0 (browser and DNS-rebinding protection, SPEC.md §9.3): a web page must not be able to
//! spend the operator's credentials through the gate. The `Host` must name the gate itself, an
//! `Origin` must be allowed explicitly, and `Sec-Fetch-Site` must not say cross-site.

use core::net::IpAddr;

use crate::denial::Denial;

/// Which `Host` and `Origin` values the gate accepts besides loopback names.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    bind: Option<IpAddr>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
}

impl OriginPolicy {
    /// A policy for a listener bound to `bind`, with the extra hosts and origins configured.
    pub fn new(bind: IpAddr, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        Self {
            bind: Some(bind),
            allowed_hosts: allowed_hosts.iter().map(|h| normalise_host(h)).collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Checks the `Host` (or `:authority`), `Origin` and `Sec-Fetch-Site` values.
    ///
    /// # Errors
    /// [`Denial::OriginDenied`] naming the rule that refused.
    pub fn check(
        &self,
        host: Option<&[u8]>,
        origin: Option<&[u8]>,
        sec_fetch_site: Option<&[u8]>,
    ) -> Result<(), Denial> {
        let denied = |reason: &str| Denial::OriginDenied {
            reason: reason.to_owned(),
        };
        let host = host
            .and_then(|h| std::str::from_utf8(h).ok())
            .ok_or_else(|| denied("the request has no valid Host header"))?;
        if !self.is_allowed_host(host) {
            return Err(denied(
                "unexpected Host header; add it to gate.allowed_hosts if it is yours",
            ));
        }
        if let Some(origin) = origin {
            let origin = std::str::from_utf8(origin)
                .unwrap_or("")
                .trim_end_matches('/')
                .to_ascii_lowercase();
            if !self.allowed_origins.contains(&origin) {
                return Err(denied(
                    "browser origins are refused; add it to gate.allowed_origins if it is yours",
                ));
            }
        }
        if let Some(site) = sec_fetch_site
            && site != b"none"
            && site != b"same-origin"
        {
            return Err(denied("cross-site browser requests are refused"));
        }
        Ok(())
    }

    fn is_allowed_host(&self, host: &str) -> bool {
        let name = normalise_host(host);
        if matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1") {
            return true;
        }
        if let Some(bind) = self.bind
            && !bind.is_unspecified()
            && name.parse::<IpAddr>().is_ok_and(|ip| ip == bind)
        {
            return true;
        }
        self.allowed_hosts.contains(&name)
    }
}

/// Lowercases, drops the port, the IPv6 brackets and one trailing dot.
fn normalise_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    without_port
        .strip_suffix('.')
        .unwrap_or(without_port)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OriginPolicy {
        OriginPolicy::new(
            IpAddr::from([127, 0, 0, 1]),
            &["gate.internal".to_owned()],
            &["https://tools.example".to_owned()],
        )
    }

    #[test]
    fn loopback_names_bind_address_and_allowed_hosts_pass() {
        let p = policy();
        for host in [
            "localhost:3100",
            "127.0.0.1:3100",
            "[::1]:3100",
            "LOCALHOST",
            "gate.internal:80",
            "localhost.",
        ] {
            assert!(p.check(Some(host.as_bytes()), None, None).is_ok(), "{host}");
        }
    }

    #[test]
    fn rebinding_hosts_origins_and_cross_site_fetches_are_denied() {
        let p = policy();
        for host in [
            "evil.example",
            "evil.example:3100",
            "localhost.evil.example",
            "10.0.0.1",
        ] {
            assert_eq!(
                p.check(Some(host.as_bytes()), None, None)
                    .map_err(|d| d.code()),
                Err("origin_denied")
            );
        }
        assert!(p.check(None, None, None).is_err());
        let local = Some(&b"localhost:3100"[..]);
        assert!(p.check(local, Some(b"https://evil.example"), None).is_err());
        assert!(p.check(local, Some(b"null"), None).is_err());
        assert!(p.check(local, Some(b"https://tools.example"), None).is_ok());
        assert!(p.check(local, None, Some(b"cross-site")).is_err());
        assert!(p.check(local, None, Some(b"same-site")).is_err());
        assert!(p.check(local, None, Some(b"none")).is_ok());
        assert!(p.check(local, None, Some(b"same-origin")).is_ok());
    }
}
