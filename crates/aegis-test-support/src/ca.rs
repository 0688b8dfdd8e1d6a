//! A throwaway certificate authority generated at test time.
//!
//! [`TestCa`] makes a fresh ECDSA P-256 root with rcgen (aws-lc-rs backend) and issues server
//! certificates for DNS names and IP addresses. Its rustls configurations pass the aws-lc-rs
//! provider explicitly and trust only this CA, so a test never depends on the machine's roots.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// File name used by [`TestCa::write_ca_pem`].
pub const CA_PEM_FILE: &str = "aegis-test-ca.pem";
/// File name of the certificate written by [`TestCa::write_server_pair`].
pub const SERVER_CERT_FILE: &str = "aegis-test-server.crt.pem";
/// File name of the private key written by [`TestCa::write_server_pair`].
pub const SERVER_KEY_FILE: &str = "aegis-test-server.key.pem";

/// The ALPN protocols offered by both configurations, most preferred first.
fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// The single crypto provider Aegis uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate authority that exists only for the lifetime of a test.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate issued by a [`TestCa`], both halves PEM-encoded.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The leaf certificate alone (no chain): one `CERTIFICATE` PEM block.
    pub cert_pem: String,
    /// Its PKCS#8 private key: one `PRIVATE KEY` PEM block.
    pub key_pem: String,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Generates a new root CA (ECDSA P-256, `CN=Aegis Test CA`).
    ///
    /// # Panics
    /// When key generation or self-signing fails.
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("generate test CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Aegis Test CA");
        dn.push(DnType::OrganizationName, "Aegis tests");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign test CA");
        Self { cert, key }
    }

    /// The CA certificate as one PEM block.
    pub fn ca_cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate in DER form.
    pub fn ca_cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Writes the CA certificate to `dir/aegis-test-ca.pem` and returns the path, for
    /// `AEGIS_UPSTREAM_CA` or `gate.upstream_ca_file`.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_ca_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join(CA_PEM_FILE);
        fs::write(&path, self.ca_cert_pem()).expect("write test CA PEM");
        path
    }

    /// Issues a server certificate valid for `names`; each entry that parses as an IP address
    /// (`127.0.0.1`, `::1`) becomes an IP SAN, anything else a DNS SAN. The first name is also
    /// the subject common name.
    ///
    /// # Panics
    /// When `names` is empty or holds a name rcgen rejects.
    pub fn issue(&self, names: &[&str]) -> IssuedCert {
        let (cert, key) = self.issue_raw(names);
        IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn issue_raw(&self, names: &[&str]) -> (Certificate, KeyPair) {
        assert!(
            !names.is_empty(),
            "a server certificate needs at least one name"
        );
        let key = KeyPair::generate().expect("generate server key");
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("valid subject alt names");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names[0]);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign server certificate");
        (cert, key)
    }

    /// Writes a fresh server certificate and key for `names` into `dir`
    /// (`aegis-test-server.crt.pem`, `aegis-test-server.key.pem`, the key mode 0600 on Unix),
    /// for the gate's `--cert`/`--key`. Returns `(cert path, key path)`; a second call with the
    /// same `dir` overwrites the pair.
    ///
    /// # Panics
    /// When issuing or writing fails.
    pub fn write_server_pair(&self, dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
        let issued = self.issue(names);
        let cert_path = dir.join(SERVER_CERT_FILE);
        let key_path = dir.join(SERVER_KEY_FILE);
        fs::write(&cert_path, &issued.cert_pem).expect("write server certificate");
        write_private(&key_path, issued.key_pem.as_bytes());
        (cert_path, key_path)
    }

    /// A rustls client configuration (aws-lc-rs provider) that trusts only this CA and offers
    /// ALPN `h2` then `http/1.1`.
    ///
    /// # Panics
    /// When rustls rejects the CA certificate or the protocol versions.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_cert_der())
            .expect("test CA is a valid trust anchor");
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn();
        Arc::new(config)
    }

    /// A rustls server configuration (aws-lc-rs provider) presenting a fresh certificate for
    /// `names`, with ALPN `h2` and `http/1.1`.
    ///
    /// # Panics
    /// When issuing fails or rustls rejects the certificate.
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let (cert, key) = self.issue_raw(names);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("rustls accepts the issued certificate");
        config.alpn_protocols = alpn();
        Arc::new(config)
    }
}

/// Writes `bytes` to `path`, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).expect("create private key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode above only applies when the file is created; tighten an existing one too.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .expect("restrict private key file");
    }
    file.write_all(bytes).expect("write private key file");
}
