//! gRPC message compression (gRPC's compression.md), gzip only: the `grpc-accept-encoding`
//! every call offers, the reply's `grpc-encoding`, decompression of reply messages whose
//! compressed flag is set, and gzip for request messages when `upstream.compress_requests`
//! asks for it. A compressed reply message is inflated into at most the reply limit plus
//! one byte, so a gzip bomb costs that much memory and no more before it is a 502.
//!
//! It does not read frames (`wire.rs`) or streams (`grpc.rs`).

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use http::{HeaderMap, HeaderValue};

use super::wire::{not_grpc, too_large};
use crate::error::GatewayError;

/// Sent with every call: the upstream may gzip its replies. grpcio and grpc-go compress
/// only with an algorithm the client listed (grpc-core assumes all of them when the header
/// is missing, which is how an uncompressing client got gzip before).
pub(super) const ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("identity,gzip");
/// `grpc-encoding` of a request whose message is compressed.
pub(super) const GZIP: HeaderValue = HeaderValue::from_static("gzip");

/// How the compressed messages of a reply are encoded: its head's `grpc-encoding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Encoding {
    Identity,
    Gzip,
    /// An algorithm we did not offer (deflate, snappy, …).
    Other(String),
}

impl Encoding {
    pub(super) fn of(headers: &HeaderMap) -> Encoding {
        match headers.get(&super::GRPC_ENCODING).map(HeaderValue::as_bytes) {
            None | Some(b"identity") => Encoding::Identity,
            Some(b"gzip") => Encoding::Gzip,
            Some(other) => Encoding::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }
}

/// A reply message from its frame's payload: as it is when the compressed flag is clear,
/// otherwise inflated. At most `limit` bytes come out; more is a 502.
pub(super) fn decode(
    compressed: bool,
    payload: Bytes,
    encoding: &Encoding,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    if !compressed {
        return Ok(payload);
    }
    match encoding {
        Encoding::Gzip => gunzip(&payload, limit),
        // The spec: a compressed flag with no (or identity) encoding is a protocol error.
        Encoding::Identity => Err(not_grpc(
            "a compressed message without a grpc-encoding".to_string(),
        )),
        Encoding::Other(name) => Err(not_grpc(format!(
            "a message compressed with {name:?}, which was not offered (identity,gzip)"
        ))),
    }
}

/// Inflates a gzip payload into at most `limit` bytes. Reading stops one byte past the
/// limit, so the memory of a bomb is bounded by the limit, not by what it expands to.
fn gunzip(payload: &[u8], limit: usize) -> Result<Bytes, GatewayError> {
    // A guess that fits most replies at once; the Vec grows (at most to about twice the
    // limit) for the rest.
    let mut out = Vec::with_capacity(payload.len().saturating_mul(4).min(limit.saturating_add(1)));
    GzDecoder::new(payload)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| not_grpc(format!("a gzip message that does not inflate: {e}")))?;
    if out.len() > limit {
        return Err(too_large(format!("more than {limit} bytes once inflated"), limit));
    }
    Ok(Bytes::from(out))
}

/// `framed` (one uncompressed frame, as `wire::frame` makes it) as a gzip frame: the
/// compressed flag, the new length, the deflated message. `None` if gzip failed, which
/// writing into memory cannot; the caller then sends the message as it is.
pub(super) fn gzip_frame(framed: &Bytes) -> Option<Bytes> {
    let message = framed.get(5..)?;
    let mut buf = Vec::with_capacity(5 + message.len() / 2);
    buf.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut encoder = GzEncoder::new(buf, Compression::default());
    encoder.write_all(message).ok()?;
    let mut buf = encoder.finish().ok()?;
    let len = u32::try_from(buf.len() - 5).ok()?;
    buf[1..5].copy_from_slice(&len.to_be_bytes());
    Some(Bytes::from(buf))
}

#[cfg(test)]
#[path = "compression_tests.rs"]
mod tests;
