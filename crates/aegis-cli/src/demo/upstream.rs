//! A local HTTPS echo server with a throwaway CA: it records what it received (so the demo can
//! show the injected credential, masked) and, on `/echo-auth`, echoes the `Authorization` header
//! back the way a careless API might.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use crate::error::CliError;

/// What the upstream saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) authorization: Option<String>,
}

/// A running echo upstream.
pub(crate) struct EchoUpstream {
    pub(crate) addr: SocketAddr,
    pub(crate) ca_file: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl EchoUpstream {
    /// Generates a CA and a `localhost` certificate, writes the CA to `dir`, and starts serving
    /// on a free loopback port.
    pub(crate) async fn start(dir: &Path) -> Result<Self, CliError> {
        let internal = |_| CliError::internal();
        let ca_key = rcgen::KeyPair::generate().map_err(internal)?;
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "aegis demo CA (throwaway)");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(internal)?;
        let leaf_key = rcgen::KeyPair::generate().map_err(internal)?;
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(internal)?;
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .map_err(internal)?;
        let ca_file = dir.join("demo-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).map_err(|e| CliError::io("write", &ca_file, &e))?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| CliError::internal())?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key_der)
            .map_err(|_| CliError::internal())?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| CliError::io("listen on", Path::new("127.0.0.1:0"), &e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::io("read", Path::new("listener"), &e))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, acceptor, seen.clone(), stop.clone()));
        Ok(Self {
            addr,
            ca_file,
            seen,
            stop,
        })
    }

    /// Requests received so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |request: http::Request<Incoming>| {
                let seen = seen.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(request, &seen).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn answer(
    request: http::Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
) -> http::Response<Full<Bytes>> {
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let entry = Seen {
        method: request.method().to_string(),
        target: target.clone(),
        authorization: authorization.clone(),
    };
    if let Ok(mut list) = seen.lock() {
        list.push(entry);
    }
    let _ = request.into_body().collect().await;
    let body = if target.ends_with("/echo-auth") {
        format!(
            "{{\"note\":\"this upstream echoes your credential\",\"authorization\":\"{}\"}}",
            authorization.unwrap_or_default()
        )
    } else {
        "{\"hello\":\"from the demo upstream\"}".to_owned()
    };
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
