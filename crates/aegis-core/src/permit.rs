//! `Permit`: proof that every check passed for one request. It names the credential, the exact
//! upstream to connect to and the path to send; only a permit unlocks the credential's secret
//! ([`crate::snapshot::SecretTable::reveal`]).
//!
//! A permit can only come from [`crate::checks::Admission::into_permit`], and an admission only
//! from [`crate::checks::admit`]: there is no other constructor.

use crate::domain::{Scheme, TargetHost};

/// Everything the forwarder needs for one admitted request.
pub struct Permit {
    credential: usize,
    scheme: Scheme,
    target: TargetHost,
    port: u16,
    path_and_query: String,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The path and query may hold the injected secret (query auth): never shown.
        f.debug_struct("Permit")
            .field("credential", &self.credential)
            .field("target", &self.target.to_string())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Permit {
    pub(crate) fn new(
        credential: usize,
        scheme: Scheme,
        target: TargetHost,
        port: u16,
        path_and_query: String,
    ) -> Self {
        Self {
            credential,
            scheme,
            target,
            port,
            path_and_query,
        }
    }

    /// Index of the selected credential in the snapshot.
    pub fn credential_index(&self) -> usize {
        self.credential
    }

    /// `https`, or `http` for `http://` entries of credentials with `allow_http`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host that was checked against the allowlist: the one to connect to.
    pub fn target(&self) -> &TargetHost {
        &self.target
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path and query to send, byte for byte as the agent sent them.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// Replaces the query (query-auth injection rewrites it).
    pub fn set_path_and_query(&mut self, path_and_query: String) {
        self.path_and_query = path_and_query;
    }
}
