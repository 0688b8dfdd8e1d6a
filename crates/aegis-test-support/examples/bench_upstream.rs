//! A standalone HTTPS upstream for the end-to-end load script (`bench/gate_load.sh`).
//!
//! Starts an [`HttpsUpstream`] on `127.0.0.1:0` with a certificate for `localhost` from a fresh
//! [`TestCa`], writes the CA certificate into the directory given as the only argument (the
//! current directory when absent), prints two lines on standard output and then serves until
//! the process is killed:
//!
//! ```text
//! port=<port>
//! ca=<path to the CA PEM>
//! ```
//!
//! Routes are those of [`HttpsUpstream`]: `/echo-body` streams the request body back,
//! `/upload…` counts the body without keeping it. Note that the upstream records every request
//! it answers (bodies up to 32 MiB, none for `/upload…`), so its own memory grows with the
//! number of requests served; that is the load generator's side, not the gate's.
//!
//! ALPN: by default the server offers only `http/1.1`, the protocol wrk speaks in the direct
//! runs, so the gate's runs and the direct ones meet the same server protocol (the gate offers
//! `h2` and `http/1.1` and takes the server's choice). `BENCH_UPSTREAM_ALPN=h2` offers `h2`
//! first, as the test upstream does, to measure the gate's HTTP/2 client instead.
//!
//! Run with `cargo run --release -p aegis-test-support --example bench_upstream -- DIR`.

use std::io::Write as _;
use std::path::PathBuf;

use aegis_test_support::{HttpsUpstream, TestCa};

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let ca = TestCa::new();
    let upstream = match std::env::var("BENCH_UPSTREAM_ALPN").as_deref() {
        Ok("h2") => HttpsUpstream::start_blocking(&ca),
        Ok("http/1.1") | Err(_) => HttpsUpstream::start_blocking_with_alpn(&ca, &[b"http/1.1"]),
        Ok(other) => panic!("BENCH_UPSTREAM_ALPN must be h2 or http/1.1, not {other:?}"),
    };
    let ca_file = ca.write_ca_pem(&dir);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "port={}", upstream.port()).expect("write the port to stdout");
    writeln!(stdout, "ca={}", ca_file.display()).expect("write the CA path to stdout");
    stdout.flush().expect("flush stdout");
    drop(stdout);
    // The server runs on its own thread; this one only keeps `upstream` alive until killed.
    // `park` may wake spuriously, hence the loop.
    loop {
        std::thread::park();
    }
}
