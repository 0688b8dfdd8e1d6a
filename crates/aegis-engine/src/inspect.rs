//! Step 9, first part: outbound requests are scanned for vault secrets before anything is sent.
//! The URL and the headers that will be forwarded are scanned for every credential whose mode is
//! not `off`; in `block` and `redact` modes the body is buffered (up to `gate.max_inspect_bytes`)
//! and scanned too. A request body with a content coding cannot be scanned yet and is refused
//! in those modes (fail closed). Key-format and PII detectors come with the inspection work.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt as _;

use aegis_core::denial::Denial;
use aegis_core::redact::RedactionSet;

use crate::upstream::BoxError;

/// The detector name for exact vault-secret matches.
const VAULT_SECRET: &str = "vault_secret";

/// Refuses a path, query or forwarded header value that carries any vault secret form.
///
/// # Errors
/// [`Denial::BodyBlocked`] naming the location (never the value).
pub(crate) fn scan_head(
    set: &RedactionSet,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<(), Denial> {
    if set.is_empty() {
        return Ok(());
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if found(set, path.as_bytes()) {
        return Err(blocked("path".to_owned()));
    }
    if query.is_some_and(|q| found(set, q.as_bytes())) {
        return Err(blocked("query".to_owned()));
    }
    for (name, value) in headers {
        if found(set, value.as_bytes()) {
            return Err(blocked(format!("header:{name}")));
        }
    }
    Ok(())
}

/// What reading a body for inspection produced.
pub(crate) enum Buffered<B> {
    /// The whole body, scanned and clean.
    Whole(Bytes),
    /// The first `max_inspect_bytes`, scanned and clean, and the rest of the stream unscanned
    /// (`gate.oversize_inspection: pass`).
    Prefix(Bytes, B),
}

/// Reads up to `limit` bytes of the body and scans them.
///
/// # Errors
/// [`Denial::BodyBlocked`] on a finding, [`Denial::BodyTooLarge`] when the body is larger than
/// `limit` and oversize bodies are refused, [`Denial::RequestTimeout`]/[`Denial::Internal`] when
/// reading fails.
pub(crate) async fn buffer_and_scan<B>(
    set: &RedactionSet,
    mut body: B,
    limit: u64,
    pass_oversize: bool,
) -> Result<Buffered<B>, Denial>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut buffer = BytesMut::new();
    let mut overflow = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Denial::RequestTimeout)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if (buffer.len() + data.len()) as u64 > limit {
            overflow = Some(data);
            break;
        }
        buffer.extend_from_slice(&data);
    }
    if found(set, &buffer) {
        return Err(blocked("body".to_owned()));
    }
    match overflow {
        None => Ok(Buffered::Whole(buffer.freeze())),
        Some(_) if !pass_oversize => Err(Denial::BodyTooLarge {
            limit,
            setting: "gate.max_inspect_bytes (or set gate.oversize_inspection: pass)",
        }),
        Some(first_unscanned) => {
            buffer.extend_from_slice(&first_unscanned);
            Ok(Buffered::Prefix(buffer.freeze(), body))
        }
    }
}

fn found(set: &RedactionSet, bytes: &[u8]) -> bool {
    !bytes.is_empty() && set.redact(bytes, None).1 > 0
}

fn blocked(location: String) -> Denial {
    Denial::BodyBlocked {
        detector: VAULT_SECRET,
        location,
    }
}

/// Refusal for a body whose content coding the gate cannot scan.
pub(crate) fn unscannable() -> Denial {
    Denial::BodyBlocked {
        detector: "unscannable_encoding",
        location: "body".to_owned(),
    }
}
