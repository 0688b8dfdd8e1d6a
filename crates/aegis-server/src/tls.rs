//! The gate's TLS listener configuration: a PEM certificate chain and key loaded into rustls
//! (aws-lc-rs), TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServeError;

/// Loads the certificate chain and key and builds the server configuration.
///
/// # Errors
/// [`ServeError::Tls`] naming the file that could not be read or the mismatch rustls found.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let fail = |path: &Path, reason: String| ServeError::Tls {
        file: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(fail(cert, "it holds no PEM certificate".to_owned()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| fail(key, e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
