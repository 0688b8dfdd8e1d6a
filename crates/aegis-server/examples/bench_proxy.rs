//! The floor under the gate's load figures: a bare forwarding proxy built from the same parts
//! as `aegis gate` (hyper's HTTP/1.1 server, the gate's own pooled upstream client
//! [`UpstreamClient`], a two-worker Tokio runtime) and nothing else: no routing, no
//! credential, no inspection, no ledger, no logs, no metrics.
//!
//! `bench/gate_load.sh` runs it in front of its own upstream beside the real gate, so the
//! report shows how much of the gap to a direct run is the cost of being a proxy at all on the
//! machine (two connections per request where a direct run has one) and how much is Aegis's.
//!
//! ```text
//! bench_proxy <upstream port> <CA PEM file>     # prints `port=<port>`, serves until killed
//! ```
//!
//! Every request is sent to `https://localhost:<upstream port>` with its path and query, its
//! body streamed; the response comes back as it is. Run with
//! `cargo run --release -p aegis-server --example bench_proxy -- PORT CA`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aegis_engine::upstream::{UpstreamClient, UpstreamSettings};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};

type Reply = http::Response<UnsyncBoxBody<bytes::Bytes, hyper::Error>>;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(ca)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_proxy <upstream port> <CA PEM file>");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("the upstream port is a number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(serve(port, &ca));
}

async fn serve(port: u16, ca: &str) {
    let settings = UpstreamSettings {
        extra_ca: Some(PathBuf::from(ca)),
        connect_timeout: Duration::from_secs(10),
        response_headers_timeout: Duration::from_secs(60),
        pool_idle_timeout: Duration::from_secs(90),
    };
    let client = Arc::new(UpstreamClient::new(&settings).expect("the upstream client"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let local = listener.local_addr().expect("the bound address");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "port={}", local.port()).expect("write the port to stdout");
    stdout.flush().expect("flush stdout");
    drop(stdout);
    let authority: Arc<str> = format!("localhost:{port}").into();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, authority) = (client.clone(), authority.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                forward(client.clone(), authority.clone(), request)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Sends `request` on to the upstream and hands back its response (a 502 if it fails).
async fn forward(
    client: Arc<UpstreamClient>,
    authority: Arc<str>,
    request: http::Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let uri = http::Uri::builder()
        .scheme("https")
        .authority(&*authority)
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return Ok(bad_gateway());
    };
    parts.uri = uri;
    if let Ok(host) = http::HeaderValue::from_str(&authority) {
        parts.headers.insert(http::header::HOST, host);
    }
    let body = body.map_err(Into::into).boxed_unsync();
    match client.send(http::Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response.map(BodyExt::boxed_unsync)),
        Err(_) => Ok(bad_gateway()),
    }
}

fn bad_gateway() -> Reply {
    let mut response = http::Response::new(
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = http::StatusCode::BAD_GATEWAY;
    response
}
