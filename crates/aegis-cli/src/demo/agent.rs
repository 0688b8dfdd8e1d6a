//! A minimal agent for `aegis demo`: one plain HTTP/1.1 request to the gate on loopback.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use crate::error::CliError;

/// The gate's answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Sends `method path` with `headers` and `body` to the gate at `gate` and reads the whole
/// answer.
pub(crate) async fn send(
    gate: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, CliError> {
    let failed = || CliError::failure("internal", "the demo agent could not reach the gate");
    let stream = tokio::net::TcpStream::connect(gate)
        .await
        .map_err(|_| failed())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| failed())?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, format!("127.0.0.1:{}", gate.port()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|_| failed())?;
    let response = sender.send_request(request).await.map_err(|_| failed())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| failed())?
        .to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
