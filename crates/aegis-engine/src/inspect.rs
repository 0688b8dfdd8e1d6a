//! Step 9: outbound requests are inspected before anything is sent (SPEC §14).
//!
//! The URL and the headers that will be forwarded are scanned for vault secrets and key formats
//! for every credential whose mode is not `off`. In `block` and `redact` modes the body is
//! buffered (up to `gate.max_inspect_bytes`), decoded when it has a content coding the gate
//! knows (gzip, deflate, br; decoded bytes count against the limit, the original bytes are
//! forwarded) and scanned; `redact` also masks PII in place. In `warn` mode the body streams and
//! an [`InspectingBody`] scans it alongside, leaving its findings for the ledger entry. The
//! detectors live in `aegis_core::inspect`; this module reads bodies and decides.

use std::io::Read as _;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;

use aegis_core::denial::Denial;
use aegis_core::inspect::{self, Detector, Finding, Location, Scanner, pii};
use aegis_core::redact::RedactionSet;

use crate::body::{Encoding, StreamDecoder};
use crate::upstream::BoxError;

/// Scans the path, the query string and every forwarded header value.
pub(crate) fn scan_head(
    set: &RedactionSet,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Vec<Finding> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut findings = inspect::scan(set, path.as_bytes(), &Location::Path);
    if let Some(query) = query {
        findings.extend(inspect::scan(set, query.as_bytes(), &Location::Query));
    }
    for (name, value) in headers {
        let location = Location::Header(name.as_str().to_owned());
        findings.extend(inspect::scan(set, value.as_bytes(), &location));
    }
    findings.truncate(inspect::MAX_FINDINGS);
    findings
}

/// What reading a body for inspection produced.
pub(crate) enum Buffered<B> {
    /// The whole body.
    Whole(Bytes),
    /// The first `max_inspect_bytes` and the rest of the stream, unscanned
    /// (`gate.oversize_inspection: pass`).
    Prefix(Bytes, B),
}

/// What inspecting a buffered body found, and the body to forward.
pub(crate) struct Inspected {
    /// Findings, at most [`inspect::MAX_FINDINGS`].
    pub(crate) findings: Vec<Finding>,
    /// The body to send: the original bytes, or the PII-masked ones in `redact` mode.
    pub(crate) body: Bytes,
    /// Whether only a prefix of the (decoded) body was scanned.
    pub(crate) truncated: bool,
}

/// Reads up to `limit` bytes of the body.
///
/// # Errors
/// [`Denial::BodyTooLarge`] when the body is larger than `limit` and oversize bodies are
/// refused; [`Denial::RequestTimeout`] when reading fails.
pub(crate) async fn buffer<B>(
    mut body: B,
    limit: u64,
    pass_oversize: bool,
) -> Result<Buffered<B>, Denial>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Denial::RequestTimeout)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if (buffer.len() + data.len()) as u64 > limit {
            if !pass_oversize {
                return Err(too_large(limit));
            }
            buffer.extend_from_slice(&data);
            return Ok(Buffered::Prefix(buffer.freeze(), body));
        }
        buffer.extend_from_slice(&data);
    }
    Ok(Buffered::Whole(buffer.freeze()))
}

/// Scans a buffered body (the first `limit` bytes of it, decoded when `encoding` says so) for
/// vault secrets and key formats, and in `redact` mode finds and masks PII.
///
/// # Errors
/// [`Denial::BodyBlocked`] for a vault secret or key format, for PII inside an encoded body in
/// `redact` mode, or for a body its coding cannot decode; [`Denial::BodyTooLarge`] when the
/// decoded body exceeds `limit` and oversize bodies are refused. The findings come with it.
pub(crate) fn inspect_buffered(
    set: &RedactionSet,
    body: Bytes,
    encoding: Encoding,
    redact: bool,
    limit: u64,
    pass_oversize: bool,
) -> Result<Inspected, (Denial, Vec<Finding>)> {
    let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut truncated = body.len() > limit_bytes;
    let decoded: Option<Vec<u8>> = if encoding == Encoding::Identity {
        None
    } else {
        let (decoded, over) =
            decode_bounded(encoding, &body, limit_bytes, !truncated).map_err(|()| {
                let finding = body_finding(Detector::UnscannableEncoding, 0);
                (blocked(&finding), vec![finding])
            })?;
        if over && !pass_oversize {
            return Err((too_large(limit), Vec::new()));
        }
        truncated |= over;
        Some(decoded)
    };
    let scanned: &[u8] = match &decoded {
        Some(decoded) => decoded,
        None => body.get(..body.len().min(limit_bytes)).unwrap_or_default(),
    };
    let mut findings = inspect::scan(set, scanned, &Location::Body);
    if let Some(first) = findings.first() {
        return Err((blocked(first), findings));
    }
    if !redact {
        return Ok(Inspected {
            findings,
            body,
            truncated,
        });
    }
    let matches = pii::find(scanned);
    findings = pii::findings(&matches);
    if matches.is_empty() {
        return Ok(Inspected {
            findings,
            body,
            truncated,
        });
    }
    if decoded.is_some() {
        // Masking the decoded text would change the encoded bytes: refuse instead.
        let denial = findings.first().map(blocked).unwrap_or(Denial::Internal);
        return Err((denial, findings));
    }
    let mut masked = body.to_vec();
    pii::mask(&mut masked, &matches);
    Ok(Inspected {
        findings,
        body: Bytes::from(masked),
        truncated,
    })
}

/// The refusal for a finding: the detector and the location, never the text.
pub(crate) fn blocked(finding: &Finding) -> Denial {
    Denial::BodyBlocked {
        detector: finding.detector.name(),
        location: finding.location.to_string(),
    }
}

/// A finding in the body at `offset`.
pub(crate) fn body_finding(detector: Detector, offset: u64) -> Finding {
    Finding {
        offset,
        detector,
        location: Location::Body,
    }
}

/// Findings left by an [`InspectingBody`] when its stream ends.
pub(crate) type SharedFindings = Arc<OnceLock<Vec<Finding>>>;

/// `warn` mode: the request body streams to the upstream unchanged while a [`Scanner`] reads
/// it (decoded, when it has a content coding); its findings are set when the stream ends.
pub(crate) struct InspectingBody<B> {
    inner: B,
    scanner: Option<Scanner>,
    decoder: Option<StreamDecoder>,
    findings: SharedFindings,
}

impl<B> InspectingBody<B> {
    /// Wraps `inner`; `encoding` is its content coding.
    pub(crate) fn new(
        inner: B,
        set: Arc<RedactionSet>,
        encoding: Encoding,
        findings: SharedFindings,
    ) -> Self {
        let decoder = (encoding != Encoding::Identity).then(|| StreamDecoder::new(encoding));
        Self {
            inner,
            scanner: Some(Scanner::new(set)),
            decoder,
            findings,
        }
    }

    fn scan(&mut self, data: &[u8]) {
        let Some(scanner) = self.scanner.as_mut() else {
            return;
        };
        match self.decoder.as_mut() {
            None => scanner.push(data),
            Some(decoder) => match decoder.feed(data) {
                Ok(decoded) => scanner.push(&decoded),
                Err(()) => self.give_up(),
            },
        }
    }

    /// The coding could not be decoded (or expands too much): stop scanning and say so.
    fn give_up(&mut self) {
        self.scanner = None;
        let _ = self
            .findings
            .set(vec![body_finding(Detector::UnscannableEncoding, 0)]);
    }

    /// Finishes the scan once; later calls do nothing.
    fn end(&mut self) {
        if let Some(mut decoder) = self.decoder.take() {
            match decoder.finish() {
                Ok(rest) => {
                    if let Some(scanner) = self.scanner.as_mut() {
                        scanner.push(&rest);
                    }
                }
                Err(()) => self.give_up(),
            }
        }
        if let Some(scanner) = self.scanner.take() {
            let _ = self.findings.set(scanner.finish(&Location::Body));
        }
    }
}

impl<B> Drop for InspectingBody<B> {
    fn drop(&mut self) {
        // Dropped before its end (the upstream answered early, or the request failed): record
        // what was found in the part that was read.
        self.end();
    }
}

impl<B> Body for InspectingBody<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    this.scan(&data);
                }
                // Clients stop polling a body that says it has ended.
                if this.inner.is_end_stream() {
                    this.end();
                }
            }
            Poll::Ready(None) => this.end(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Decodes at most `limit` bytes of an encoded body, reading through a fixed buffer so a
/// compression bomb never costs more than `limit` bytes of memory. Returns the decoded bytes
/// and whether there was more. When `input` is only the start of the body (oversize bodies
/// passed with their prefix scanned), the stream ending early is not an error: what decoded so
/// far is the scanned prefix.
fn decode_bounded(
    encoding: Encoding,
    input: &[u8],
    limit: usize,
    complete: bool,
) -> Result<(Vec<u8>, bool), ()> {
    let mut reader: Box<dyn std::io::Read + '_> = match encoding {
        Encoding::Identity => return Ok((input.to_vec(), false)),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Encoding::Deflate => Box::new(flate2::read::ZlibDecoder::new(input)),
        Encoding::Brotli => Box::new(brotli_decompressor::Decompressor::new(input, 4096)),
        Encoding::Zstd => Box::new(ZstdFrames {
            rest: input,
            frame: None,
        }),
    };
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    // On an error `read_to_end` keeps what it had decoded.
    let read = reader.by_ref().take(cap).read_to_end(&mut out);
    if read.is_err() && complete {
        return Err(());
    }
    let over = out.len() > limit || read.is_err();
    out.truncate(limit);
    Ok((out, over))
}

/// Every zstd frame of a body, one after the other (a body may hold several; a decoder that
/// stopped after the first would leave the rest unscanned). A skippable or malformed frame is
/// an error: the body is then refused as unscannable.
struct ZstdFrames<'a> {
    rest: &'a [u8],
    frame: Option<ruzstd::decoding::StreamingDecoder<&'a [u8], ruzstd::decoding::FrameDecoder>>,
}

impl std::io::Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let read = frame.read(buf)?;
                if read > 0 || buf.is_empty() {
                    return Ok(read);
                }
                // This frame is done: the next one starts where its decoder stopped reading.
                if let Some(done) = self.frame.take() {
                    self.rest = done.into_inner();
                }
            }
            if self.rest.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(self.rest)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            self.frame = Some(frame);
        }
    }
}

fn too_large(limit: u64) -> Denial {
    Denial::BodyTooLarge {
        limit,
        setting: "gate.max_inspect_bytes (or set gate.oversize_inspection: pass)",
    }
}

/// Refusal for a body whose content coding the gate cannot scan.
pub(crate) fn unscannable() -> Denial {
    blocked(&body_finding(Detector::UnscannableEncoding, 0))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use aegis_core::redact::RedactionSecret;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).expect("compress");
        encoder.finish().expect("compress")
    }

    fn set() -> RedactionSet {
        RedactionSet::new(vec![RedactionSecret::new(b"inner-secret-0123", 0, "c")])
    }

    /// `data` compressed by the zstd command-line tool (an encoder independent of ours).
    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut child = std::process::Command::new("zstd")
            .args(["-q", "-c", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the zstd tool (Debian package zstd) is needed for this test");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input).expect("write"));
        let output = child.wait_with_output().expect("zstd");
        writer.join().expect("writer");
        assert!(output.status.success());
        output.stdout
    }

    #[test]
    fn zstd_bodies_are_scanned_frame_after_frame() {
        let clean = zstd(b"{\"note\":\"nothing to see\"}");
        let passed = inspect_buffered(
            &set(),
            Bytes::from(clean),
            Encoding::Zstd,
            false,
            1 << 20,
            false,
        )
        .map_err(|(denial, _)| denial.code())
        .expect("a clean zstd body passes");
        assert!(passed.findings.is_empty());
        // The secret sits in the second of two frames.
        let mut two = zstd(b"first frame, harmless ");
        two.extend(zstd(b"second frame: inner-secret-0123"));
        let (denial, findings) = inspect_buffered(
            &set(),
            Bytes::from(two),
            Encoding::Zstd,
            false,
            1 << 20,
            false,
        )
        .err()
        .expect("refused");
        assert_eq!(denial.code(), "body_blocked");
        assert_eq!(findings[0].detector, Detector::VaultSecret);
        assert_eq!(
            findings[0].offset,
            "first frame, harmless second frame: ".len() as u64
        );
    }

    #[test]
    fn a_zstd_bomb_decodes_to_at_most_the_limit_and_garbage_is_unscannable() {
        let bomb = zstd(&vec![0u8; 32 * 1024 * 1024]);
        let (decoded, over) =
            decode_bounded(Encoding::Zstd, &bomb, 1024 * 1024, true).expect("zstd");
        assert_eq!(decoded.len(), 1024 * 1024);
        assert!(over);
        let (denial, findings) = inspect_buffered(
            &set(),
            Bytes::from_static(b"\x28\xb5\x2f\xfd not really zstd"),
            Encoding::Zstd,
            false,
            1 << 20,
            false,
        )
        .err()
        .expect("refused");
        assert_eq!(denial.code(), "body_blocked");
        assert_eq!(findings[0].detector, Detector::UnscannableEncoding);
    }

    #[test]
    fn a_bomb_decodes_to_at_most_the_limit() {
        let bomb = gzip(&vec![0u8; 32 * 1024 * 1024]);
        let (decoded, over) =
            decode_bounded(Encoding::Gzip, &bomb, 1024 * 1024, true).expect("gzip");
        assert!(over);
        assert_eq!(decoded.len(), 1024 * 1024);
        let refused = inspect_buffered(
            &set(),
            Bytes::from(bomb),
            Encoding::Gzip,
            false,
            1 << 20,
            false,
        );
        assert!(matches!(refused, Err((Denial::BodyTooLarge { .. }, _))));
    }

    #[test]
    fn a_secret_inside_gzip_is_found_and_the_original_bytes_kept() {
        let packed = gzip(b"{\"x\":\"inner-secret-0123\"}");
        let refused = inspect_buffered(
            &set(),
            Bytes::from(packed),
            Encoding::Gzip,
            false,
            1 << 20,
            false,
        );
        let Err((denial, findings)) = refused else {
            panic!("not refused");
        };
        assert_eq!(denial.code(), "body_blocked");
        assert_eq!(findings[0].offset, 6);
        let clean = gzip(b"{\"x\":\"nothing here\"}");
        let passed = inspect_buffered(
            &set(),
            Bytes::from(clean.clone()),
            Encoding::Gzip,
            true,
            1 << 20,
            false,
        )
        .map_err(|(d, _)| d)
        .expect("clean");
        assert_eq!(passed.body, clean);
    }

    #[test]
    fn redact_masks_plain_bodies_and_refuses_pii_in_encoded_ones() {
        let body = b"ssn 123-45-6789".to_vec();
        let masked = inspect_buffered(
            &set(),
            Bytes::from(body.clone()),
            Encoding::Identity,
            true,
            1 << 20,
            false,
        )
        .map_err(|(d, _)| d)
        .expect("masked");
        assert_eq!(&masked.body[..], b"ssn ***-**-****");
        assert_eq!(masked.findings[0].detector, Detector::UsSsn);
        let refused = inspect_buffered(
            &set(),
            Bytes::from(gzip(&body)),
            Encoding::Gzip,
            true,
            1 << 20,
            false,
        );
        assert!(matches!(
            refused,
            Err((
                Denial::BodyBlocked {
                    detector: "us_ssn",
                    ..
                },
                _
            ))
        ));
    }

    #[test]
    fn an_oversize_encoded_body_passed_on_has_its_decoded_prefix_scanned() {
        let mut text = b"{\"x\":\"inner-secret-0123\"}".to_vec();
        text.extend((0..200_000u32).flat_map(|i| i.to_le_bytes()));
        let packed = gzip(&text);
        let prefix = Bytes::copy_from_slice(&packed[..packed.len() / 2]);
        let refused = inspect_buffered(&set(), prefix, Encoding::Gzip, false, 1024, true);
        assert!(matches!(
            refused,
            Err((
                Denial::BodyBlocked {
                    detector: "vault_secret",
                    ..
                },
                _
            ))
        ));
        let clean = gzip(&vec![7u8; 1 << 20]);
        let prefix = Bytes::copy_from_slice(&clean[..clean.len() / 2]);
        let passed = inspect_buffered(&set(), prefix, Encoding::Gzip, false, 64, true)
            .map_err(|(d, _)| d)
            .expect("passed");
        assert!(passed.truncated);
    }

    #[test]
    fn a_corrupt_coding_is_unscannable() {
        let refused = inspect_buffered(
            &set(),
            Bytes::from_static(b"not gzip"),
            Encoding::Gzip,
            false,
            1 << 20,
            false,
        );
        assert!(matches!(
            refused,
            Err((
                Denial::BodyBlocked {
                    detector: "unscannable_encoding",
                    ..
                },
                _
            ))
        ));
    }
}
