//! `ServeError`: why a listener could not start.

/// A failure to start or run a listener.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The port is taken by another process.
    #[error("Port {port} is already in use")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Binding failed for another reason.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS reason.
        reason: String,
    },
    /// The TLS certificate or key could not be used.
    #[error("cannot use TLS file {file}: {reason}")]
    Tls {
        /// The file.
        file: String,
        /// What went wrong.
        reason: String,
    },
}

impl ServeError {
    /// The stable CLI code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PortInUse { .. } => "port_in_use",
            Self::Bind { .. } => "io",
            Self::Tls { .. } => "config_invalid",
        }
    }
}
