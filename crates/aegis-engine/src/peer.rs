//! The peer a request came from, as the front door saw the connection: attached to the request
//! as an extension, read only to name the peer of agent-auth refusals (SPEC.md §18.1).

use std::net::SocketAddr;

/// The remote address of the connection that carried a request (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// `loopback`, the remote IP address, or `unknown` when the front door set none (stdio MCP).
pub(crate) fn peer_label(extensions: &http::Extensions) -> String {
    match extensions.get::<PeerAddr>() {
        Some(PeerAddr(addr)) if addr.ip().is_loopback() => "loopback".to_owned(),
        Some(PeerAddr(addr)) => addr.ip().to_string(),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_remote_peers_are_named() {
        let mut ext = http::Extensions::new();
        assert_eq!(peer_label(&ext), "unknown");
        ext.insert(PeerAddr("127.0.0.1:5000".parse().expect("addr")));
        assert_eq!(peer_label(&ext), "loopback");
        ext.insert(PeerAddr("10.1.2.3:5000".parse().expect("addr")));
        assert_eq!(peer_label(&ext), "10.1.2.3");
    }
}
