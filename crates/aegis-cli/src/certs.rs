//! `init --generate-cert`: a self-signed certificate for `localhost` so the gate can serve TLS
//! out of the box (compatibility with the earlier implementation).

use std::path::{Path, PathBuf};

use aegis_store::secure_fs;

use crate::error::CliError;

/// Where the generated certificate and key were written.
#[derive(Debug, Clone)]
pub(crate) struct CertPaths {
    /// PEM certificate.
    pub(crate) cert: PathBuf,
    /// PEM private key (0600).
    pub(crate) key: PathBuf,
}

/// Writes `aegis.crt` and `aegis.key` (0600) valid for 365 days into `dir`.
pub(crate) fn write_self_signed(dir: &Path) -> Result<CertPaths, CliError> {
    secure_fs::create_private_dir(dir).map_err(|e| CliError::io("create", dir, &e))?;
    let cert_path = dir.join("aegis.crt");
    let key_path = dir.join("aegis.key");
    for existing in [&cert_path, &key_path] {
        if existing.exists() {
            return Err(CliError::failure(
                "conflict",
                format!("{} already exists", existing.display()),
            )
            .with_hint("move it aside to generate a new certificate"));
        }
    }
    let key_pair = rcgen::KeyPair::generate().map_err(|_| CliError::internal())?;
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(|_| CliError::internal())?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(365);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost (aegis)");
    let cert = params
        .self_signed(&key_pair)
        .map_err(|_| CliError::internal())?;
    let key_pem = zeroize::Zeroizing::new(key_pair.serialize_pem());
    secure_fs::write_atomic(&key_path, key_pem.as_bytes())
        .map_err(|e| CliError::io("write", &key_path, &e))?;
    secure_fs::write_atomic(&cert_path, cert.pem().as_bytes())
        .map_err(|e| CliError::io("write", &cert_path, &e))?;
    Ok(CertPaths {
        cert: cert_path,
        key: key_path,
    })
}
