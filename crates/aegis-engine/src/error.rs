//! `EngineError`: failures of the engine itself (as opposed to `Denial`s, which are decisions).

/// A failure while building snapshots or talking to upstreams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A stored secret cannot be placed in a header (control characters).
    #[error("the credential's secret cannot be sent in a header")]
    MalformedSecret,
    /// The store failed while building a snapshot.
    #[error("cannot read the vault: {0}")]
    Store(#[from] aegis_store::StoreError),
    /// A credential row failed its MAC or could not be decrypted.
    #[error("credential '{name}' failed its integrity check")]
    Integrity {
        /// The credential's name.
        name: String,
    },
    /// The TLS configuration for upstreams could not be built.
    #[error("cannot set up upstream TLS: {0}")]
    Tls(String),
    /// The extra CA file could not be read or parsed.
    #[error("cannot read the upstream CA file {path}: {reason}")]
    UpstreamCa {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl EngineError {
    /// A stable snake_case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedSecret => "malformed_secret",
            Self::Store(_) => "store",
            Self::Integrity { .. } => "integrity",
            Self::Tls(_) => "tls_setup",
            Self::UpstreamCa { .. } => "upstream_ca",
        }
    }
}
