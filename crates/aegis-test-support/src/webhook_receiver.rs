//! A webhook receiver for tests: HTTPS on 127.0.0.1 with a certificate from the test CA,
//! recording every delivery's headers and raw body, and answering as told: 200, a failure
//! status for the next N deliveries, or hanging until released.
//!
//! It verifies nothing itself: tests check signatures with their own HMAC, independently of
//! Aegis's code.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::TestCa;

/// How the receiver answered one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It answered with this status.
    Status(u16),
    /// It held the request open (hanging mode); whatever happened later was not recorded.
    Hung,
}

/// One delivery as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// What the receiver did with it.
    pub answer: Answer,
}

impl Delivery {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }
}

#[derive(Debug, Default)]
struct Behaviour {
    fail_remaining: usize,
    fail_status: u16,
}

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    behaviour: Mutex<Behaviour>,
    hanging: watch::Sender<bool>,
}

impl Shared {
    fn deliveries(&self) -> MutexGuard<'_, Vec<Delivery>> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running receiver; stops when dropped.
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// Starts a receiver with a certificate from `ca` for `localhost` and `127.0.0.1`, on its
    /// own thread and runtime.
    ///
    /// # Panics
    /// When the port cannot be bound or the thread cannot start.
    pub fn start(ca: &TestCa) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver port");
        listener
            .set_nonblocking(true)
            .expect("make receiver listener non-blocking");
        let addr = listener.local_addr().expect("receiver address");
        let tls = ca.server_config(&["localhost", "127.0.0.1"]);
        let shared = Arc::new(Shared {
            deliveries: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour::default()),
            hanging: watch::Sender::new(false),
        });
        let (shutdown, stop) = oneshot::channel();
        let server_shared = Arc::clone(&shared);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("receiver runtime");
        let thread = std::thread::Builder::new()
            .name(format!("webhook-receiver-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stop => {}
                        () = accept_loop(listener, TlsAcceptor::from(tls), server_shared) => {}
                    }
                });
            })
            .expect("spawn receiver thread");
        Self {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Answers the next `count` deliveries with `status` (then 200 again).
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut behaviour = self.shared.behaviour();
        behaviour.fail_remaining = count;
        behaviour.fail_status = status;
    }

    /// In hanging mode every delivery (after the failures) is held open until the mode ends.
    pub fn set_hanging(&self, hanging: bool) {
        self.shared.hanging.send_replace(hanging);
    }

    /// Every delivery so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries().clone()
    }

    /// Waits until `probe` accepts the deliveries so far and returns them.
    ///
    /// # Panics
    /// When `deadline` passes first; the message names `what` and the count received.
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        mut probe: impl FnMut(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let start = std::time::Instant::now();
        loop {
            let seen = self.deliveries();
            if probe(&seen) {
                return seen;
            }
            assert!(
                start.elapsed() < deadline,
                "gave up after {deadline:?} waiting for {what}; {} deliveries so far",
                seen.len()
            );
            std::thread::park_timeout(Duration::from_millis(10)); // poll interval, not a guess
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.set_hanging(false);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: std::net::TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::task::yield_now().await;
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| receive(Arc::clone(&shared), req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn receive(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let failing = {
        let mut behaviour = shared.behaviour();
        if behaviour.fail_remaining > 0 {
            behaviour.fail_remaining -= 1;
            Some(behaviour.fail_status)
        } else {
            None
        }
    };
    let hanging = failing.is_none() && *shared.hanging.borrow();
    let answer = match (failing, hanging) {
        (Some(status), _) => Answer::Status(status),
        (None, true) => Answer::Hung,
        (None, false) => Answer::Status(200),
    };
    shared.deliveries().push(Delivery {
        headers,
        body,
        answer,
    });
    if hanging {
        let mut released = shared.hanging.subscribe();
        let _ = released.wait_for(|hanging| !*hanging).await;
    }
    let status = match answer {
        Answer::Status(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Answer::Hung => StatusCode::OK,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = status;
    Ok(response)
}
