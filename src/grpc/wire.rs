//! gRPC's wire format, apart from the HTTP/2 transport: the length-prefixed message framing
//! (gRPC's PROTOCOL-HTTP2.md), the check that a reply head is
//! gRPC at all, and the status (`grpc-status`, `grpc-message`, `grpc-status-details-bin`)
//! with the metadata beside it. Pure functions over bytes and headers; `grpc.rs` runs the
//! streams.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tonic::metadata::MetadataMap;

use crate::error::GatewayError;

/// One message, framed: the uncompressed flag, the big-endian length, the bytes.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with the capacity reserved cannot fail.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

/// How a status inferred from the HTTP status begins (no gRPC server said it).
const INFERRED: &str = "upstream answered HTTP";

/// Whether `err` is UNIMPLEMENTED as a gRPC server says it (a method or service it does
/// not serve), not inferred from an HTTP 404 of some other server.
pub fn is_unimplemented_answer(err: &GatewayError) -> bool {
    err.code() == tonic::Code::Unimplemented
        && err.fault() == crate::error::Fault::Upstream
        && !err.message().starts_with(INFERRED)
}

/// A gRPC reply is HTTP 200 with a gRPC content type. Other HTTP statuses map to gRPC codes
/// as gRPC's http-grpc-status-mapping.md says; anything else is not a gRPC server.
pub(super) fn check_head(status: StatusCode, headers: &HeaderMap) -> Result<(), GatewayError> {
    if status != StatusCode::OK {
        // A status the upstream (or a proxy before it) did give beats one inferred.
        if let Some(status) = status_from(headers).filter(|s| s.code() != tonic::Code::Ok) {
            return Err(upstream_error(&status));
        }
        let code = match status {
            StatusCode::BAD_REQUEST => tonic::Code::Internal,
            StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
            StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
            StatusCode::NOT_FOUND => tonic::Code::Unimplemented,
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => tonic::Code::Unavailable,
            _ => {
                return Err(not_grpc(format!("HTTP status {status}")));
            }
        };
        let status = tonic::Status::new(code, format!("{INFERRED} {status} without a gRPC status"));
        return Err(upstream_error(&status));
    }
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if !grpc {
        let found = headers
            .get(header::CONTENT_TYPE)
            .map_or("no content type".to_string(), |v| format!("content type {v:?}"));
        return Err(not_grpc(found));
    }
    Ok(())
}

/// The gRPC status in `headers` (`grpc-status`, `grpc-message` percent-decoded,
/// `grpc-status-details-bin`), with the rest as its metadata. tonic's own parser panics on
/// details that are not base64; here such details are dropped and logged.
pub(super) fn status_from(headers: &HeaderMap) -> Option<tonic::Status> {
    use base64::Engine as _;
    let code = tonic::Code::from_bytes(headers.get(&super::GRPC_STATUS)?.as_bytes());
    let message = headers
        .get(&super::GRPC_MESSAGE)
        .map(|v| {
            percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let details = match headers.get(&super::GRPC_STATUS_DETAILS) {
        None => Bytes::new(),
        Some(value) => {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            match engine.decode(value.as_bytes()) {
                Ok(bytes) => Bytes::from(bytes),
                Err(err) => {
                    tracing::warn!(error = %err, "upstream sent grpc-status-details-bin that is not base64; details dropped");
                    Bytes::new()
                }
            }
        }
    };
    Some(tonic::Status::with_details_and_metadata(
        code,
        message,
        details,
        metadata_of(headers.iter()),
    ))
}

/// Upstream metadata from reply headers: everything but the gRPC status and the content
/// type. Most replies have none, and then nothing is allocated.
pub(super) fn metadata_of<'a>(
    headers: impl Iterator<Item = (&'a http::HeaderName, &'a HeaderValue)>,
) -> MetadataMap {
    let mut metadata = HeaderMap::new();
    for (name, value) in headers {
        if !matches!(
            name.as_str(),
            "grpc-status" | "grpc-message" | "grpc-status-details-bin" | "content-type"
        ) {
            metadata.append(name.clone(), value.clone());
        }
    }
    MetadataMap::from_headers(metadata)
}

/// A complete frame from the front of `pending`, if there is one: its compressed flag and
/// its payload. A header that announces more than `limit` bytes fails at once, before the
/// rest arrives (a compressed payload can only grow).
pub(super) fn split_frame(
    pending: &mut BytesMut,
    limit: usize,
) -> Result<Option<(bool, Bytes)>, GatewayError> {
    let Some((flags, len)) = envelope_prefix(pending) else {
        return Ok(None);
    };
    let compressed = compressed_flag(flags)?;
    if len > limit {
        return Err(too_large(format!("{len} bytes"), limit));
    }
    Ok(take_envelope(pending).map(|(_, payload)| (compressed, payload)))
}

/// One envelope: the flags byte, the big-endian length, the payload. gRPC's message framing,
/// which gRPC-Web's trailer frame (flags `0x80`) and Connect's envelopes (end of stream
/// `0x02`) share.
pub fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(flags);
    buf.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    buf.put_slice(payload);
    buf.freeze()
}

/// The flags and the announced length of the envelope at the front of `pending`, once its
/// 5-byte prefix is in.
pub fn envelope_prefix(pending: &[u8]) -> Option<(u8, usize)> {
    (pending.len() >= 5).then(|| (pending[0], frame_len(pending)))
}

/// The envelope at the front of `pending` once it is whole, taken off: its flags and its
/// payload. Nothing is judged here: the caller checks the flags and the length
/// (`envelope_prefix` reads them before the payload is in).
pub fn take_envelope(pending: &mut BytesMut) -> Option<(u8, Bytes)> {
    let (flags, len) = envelope_prefix(pending)?;
    if pending.len() < 5 + len {
        return None;
    }
    pending.advance(5);
    Some((flags, pending.split_to(len).freeze()))
}

/// Whether `chunk` is exactly one frame.
pub(super) fn whole_frame(chunk: &Bytes) -> bool {
    chunk.len() >= 5 && frame_len(chunk) == chunk.len() - 5
}

pub(super) fn frame_len(bytes: &[u8]) -> usize {
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize
}

/// The compressed flag of a frame: 0 or 1 (compression.rs inflates); anything else breaks
/// the protocol.
pub(super) fn compressed_flag(flag: u8) -> Result<bool, GatewayError> {
    match flag {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(not_grpc(format!("message flag {other}"))),
    }
}

pub(super) fn too_large(what: String, limit: usize) -> GatewayError {
    GatewayError::bad_upstream_reply(format!(
        "upstream reply too large: {what}, the limit is {limit} (upstream.max_reply_bytes)"
    ))
}

pub(super) fn not_grpc(what: String) -> GatewayError {
    tracing::warn!(what, "upstream broke the gRPC protocol");
    GatewayError::bad_upstream_reply(format!("upstream is not answering gRPC: {what}"))
}

/// The upstream's status as the client's error: its details, and its metadata as
/// `Grpc-Metadata-*` headers.
pub(super) fn upstream_error(status: &tonic::Status) -> GatewayError {
    let mut headers = HeaderMap::new();
    crate::metadata::to_http(status.metadata(), &mut headers);
    GatewayError::upstream_status(status).with_headers(headers)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
