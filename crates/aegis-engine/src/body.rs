//! Response bodies on their way back to the agent: decoded when the upstream compressed them
//! (gzip, deflate, br) and passed through the streaming echo redactor, chunk by chunk, holding
//! back only what could still be the start of a secret.

use std::future::Future as _;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use aegis_core::redact::{RedactionSet, Redactor};

use crate::upstream::BoxError;

/// How the upstream encoded the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No content coding.
    Identity,
    /// `gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped).
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`: decoded only where a request body is buffered for inspection; a streamed body
    /// (a response, a `warn`-mode request) in it cannot be decoded.
    Zstd,
}

impl Encoding {
    /// Reads a `Content-Encoding` value; `None` for codings the gate cannot decode.
    pub fn from_header(value: Option<&str>) -> Option<Self> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Some(Self::Identity),
            Some("gzip" | "x-gzip") => Some(Self::Gzip),
            Some("deflate") => Some(Self::Deflate),
            Some("br") => Some(Self::Brotli),
            Some("zstd") => Some(Self::Zstd),
            Some(_) => None,
        }
    }
}

enum Decoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
    /// A coding that cannot be decoded while it streams: every byte fed is an error.
    Undecodable,
}

impl Decoder {
    fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Identity => Self::Identity,
            Encoding::Gzip => Self::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new()))),
            Encoding::Deflate => {
                Self::Deflate(Box::new(flate2::write::ZlibDecoder::new(Vec::new())))
            }
            Encoding::Brotli => Self::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(Vec::new(), 4096),
            )),
            Encoding::Zstd => Self::Undecodable,
        }
    }

    /// Feeds encoded bytes in small steps, so one chunk of a compression bomb cannot allocate
    /// more than a bounded amount before the ratio check stops it; returns the decoded bytes.
    fn feed(&mut self, input: &[u8], budget: &mut DecodeBudget) -> std::io::Result<Vec<u8>> {
        if matches!(self, Self::Identity) {
            return Ok(input.to_vec());
        }
        let mut out = Vec::new();
        for step in input.chunks(DECODE_STEP) {
            out.extend(self.feed_step(step)?);
            budget.account(step.len(), out.len())?;
        }
        Ok(out)
    }

    fn feed_step(&mut self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Identity => Ok(input.to_vec()),
            Self::Gzip(d) => {
                d.write_all(input)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Deflate(d) => {
                d.write_all(input)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Brotli(d) => {
                d.write_all(input)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Undecodable => Err(undecodable()),
        }
    }

    /// Signals the end of input; returns the last decoded bytes.
    fn finish(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Identity => Ok(Vec::new()),
            Self::Gzip(d) => {
                d.try_finish()?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Deflate(d) => {
                d.try_finish()?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Brotli(d) => {
                d.flush()?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Undecodable => Err(undecodable()),
        }
    }
}

fn undecodable() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this content coding cannot be decoded while it streams",
    )
}

/// A request body's content coding decoded while it streams, for `warn`-mode inspection: the
/// same decoders and expansion bound as responses.
pub(crate) struct StreamDecoder {
    decoder: Decoder,
    budget: DecodeBudget,
}

impl StreamDecoder {
    /// Starts decoding a body in `encoding`.
    pub(crate) fn new(encoding: Encoding) -> Self {
        Self {
            decoder: Decoder::new(encoding),
            budget: DecodeBudget::default(),
        }
    }

    /// Decodes the next encoded chunk; `Err` when it is malformed or expands too much.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<Vec<u8>, ()> {
        let decoded = self.decoder.feed(input, &mut self.budget).map_err(|_| ())?;
        self.budget.commit(decoded.len());
        Ok(decoded)
    }

    /// Ends the body; returns the last decoded bytes.
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, ()> {
        self.decoder.finish().map_err(|_| ())
    }
}

/// Encoded bytes fed to a decoder at a time.
const DECODE_STEP: usize = 256;
/// Decoded output may be at most this many times the encoded input (plus the allowance)...
const MAX_EXPANSION: u64 = 1_100;
/// ...above this allowance; gzip tops out near 1032:1.
const EXPANSION_ALLOWANCE: u64 = 16 * 1024 * 1024;

/// Tracks how much a response has expanded while decoding.
#[derive(Debug, Default)]
struct DecodeBudget {
    encoded: u64,
    decoded: u64,
}

impl DecodeBudget {
    fn account(&mut self, encoded: usize, decoded_in_chunk: usize) -> std::io::Result<()> {
        self.encoded += encoded as u64;
        let decoded = self.decoded + decoded_in_chunk as u64;
        if decoded > self.encoded.saturating_mul(MAX_EXPANSION) + EXPANSION_ALLOWANCE {
            return Err(std::io::Error::other(
                "the upstream response expands too much when decoded",
            ));
        }
        Ok(())
    }

    fn commit(&mut self, decoded: usize) {
        self.decoded += decoded as u64;
    }
}

/// A response body decoded and redacted while it streams.
pub struct RedactingBody<B> {
    inner: B,
    decoder: Decoder,
    budget: DecodeBudget,
    redactor: Redactor,
    redactions: Arc<AtomicU64>,
    finished: bool,
}

impl<B> RedactingBody<B> {
    /// Wraps `inner`; replacements are added to `redactions`.
    pub fn new(
        inner: B,
        encoding: Encoding,
        set: Arc<RedactionSet>,
        injected: Option<usize>,
        redactions: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            decoder: Decoder::new(encoding),
            budget: DecodeBudget::default(),
            redactor: Redactor::new(set, injected),
            redactions,
            finished: false,
        }
    }
}

impl<B> Body for RedactingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err.into()))),
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are dropped: they could echo a secret and agents rarely need them.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let decoded = this
                        .decoder
                        .feed(&data, &mut this.budget)
                        .map_err(|e| Box::new(e) as BoxError)?;
                    this.budget.commit(decoded.len());
                    let mut out = Vec::with_capacity(decoded.len());
                    let count = this.redactor.push(&decoded, &mut out);
                    this.redactions.fetch_add(count as u64, Ordering::Relaxed);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let decoded = this.decoder.finish().map_err(|e| Box::new(e) as BoxError)?;
                    let mut out = Vec::new();
                    let mut count = this.redactor.push(&decoded, &mut out);
                    count += this.redactor.finish(&mut out);
                    this.redactions.fetch_add(count as u64, Ordering::Relaxed);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}

/// A request body that fails once more than `limit` bytes have streamed through, and records
/// that it did so the pipeline can answer `body_too_large` whatever error the client reports.
pub struct CappedBody<B> {
    inner: B,
    remaining: u64,
    exceeded: Arc<std::sync::atomic::AtomicBool>,
    received: Arc<AtomicU64>,
}

impl<B> CappedBody<B> {
    /// Wraps `inner`; `exceeded` is set when the limit is crossed, and `received` counts the
    /// bytes let through.
    pub fn new(
        inner: B,
        limit: u64,
        exceeded: Arc<std::sync::atomic::AtomicBool>,
        received: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            remaining: limit,
            exceeded,
            received,
        }
    }
}

/// The error a [`CappedBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than gate.max_body_bytes")]
pub struct BodyLimitExceeded;

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            return match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers from the agent would dodge the header stripping: dropped.
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::SeqCst);
                        return Poll::Ready(Some(Err(Box::new(BodyLimitExceeded))));
                    }
                    this.remaining -= len;
                    this.received.fetch_add(len, Ordering::Relaxed);
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A body that fails when no frame arrives for `idle` (SPEC.md §5 `gate.timeouts.idle_body`),
/// recording that it did so the pipeline can answer `request_timeout`.
pub struct IdleBody<B> {
    inner: B,
    idle: std::time::Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
}

impl<B> IdleBody<B> {
    /// Wraps `inner`; `stalled` is set when the gap between frames exceeds `idle`.
    pub fn new(
        inner: B,
        idle: std::time::Duration,
        stalled: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        Self {
            inner,
            idle,
            timer: None,
            stalled,
        }
    }
}

/// The error an [`IdleBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the body stalled longer than gate.timeouts.idle_body")]
pub struct BodyStalled;

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                // The clock starts when the body is first waited on, not when it was wrapped,
                // so connecting to the upstream does not count against it.
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.stalled.store(true, Ordering::SeqCst);
                    return Poll::Ready(Some(Err(Box::new(BodyStalled))));
                }
                Poll::Pending
            }
            Poll::Ready(frame) => {
                if let Some(timer) = this.timer.as_mut() {
                    timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + this.idle);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
