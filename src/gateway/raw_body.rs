//! Bodies that are not JSON: `google.api.HttpBody` over REST (`codec/http_body.rs` has the
//! message). Downloads: a unary `HttpBody` reply is answered with its data as the body and
//! its content type as `Content-Type`; a server-streaming one is one response in the first
//! message's content type, each message's data written as it arrives (hyper polls the
//! stream only as the client reads, and the upstream's window opens only as messages are
//! taken, so a slow reader holds the upstream back instead of filling memory). An error
//! after the first byte ends the response abnormally: hyper resets the HTTP/2 stream, or
//! closes an HTTP/1.1 connection before the chunked body's last chunk, so a client never
//! takes a broken download for a whole one.
//!
//! Uploads: the raw request bytes and `Content-Type` go into the route's `HttpBody` field
//! (the unary case frames them in `transcode.rs`); a client-streaming method gets them in
//! messages of `transcoding.upload_chunk_bytes` as they arrive ([`pump`]), never holding
//! more than about one chunk, bounded by `transcoding.max_upload_bytes`.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::stream::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use http_body_util::BodyExt as _;
use tonic::metadata::MetadataMap;

use super::duplex::Failure;
use crate::codec::StreamReply;
use crate::codec::http_body::{self, HttpBody, RawTarget};
use crate::error::GatewayError;
use crate::grpc::Requests;
use crate::metadata;

/// The response to a unary call (or a client-streaming one) whose reply is an `HttpBody`.
pub fn unary_response(
    message: Bytes,
    initial: &MetadataMap,
    trailing: &MetadataMap,
    plain: &[HeaderName],
) -> Result<Response, GatewayError> {
    let reply = http_body::decode(message)?;
    let mut response = Response::new(Body::from(reply.data.clone()));
    let headers = response.headers_mut();
    set_content_type(headers, &reply);
    metadata::to_http_with(initial, headers, plain);
    metadata::to_http_with(trailing, headers, plain);
    Ok(response)
}

/// The response to a server-streaming call of `HttpBody` replies. The first message is
/// awaited, so that its content type heads the response and an error before it is a
/// plain error answer; the rest is written as it arrives.
pub async fn stream_response(
    reply: StreamReply<HttpBody>,
    plain: &[HeaderName],
) -> Result<Response, GatewayError> {
    let mut messages = reply.messages;
    let first = messages.next().await.transpose()?;
    let mut head = Response::new(Body::empty());
    let headers = head.headers_mut();
    match &first {
        Some(first) => set_content_type(headers, first),
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(http_body::DEFAULT_CONTENT_TYPE),
            );
        }
    }
    metadata::to_http_with(&reply.metadata, headers, plain);
    // The upstream's own cache-control (allow-listed) wins over the stream's default.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    // Proxies in front of us (and our own compression layer) must not buffer it.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let first = futures_util::stream::iter(first.map(|m| Ok(m.data)));
    // An Err ends the body abnormally (the module's comment says how).
    let data = first
        .chain(messages.map(|m| m.map(|m| m.data)))
        .filter(|m| std::future::ready(m.as_ref().map_or(true, |d| !d.is_empty())));
    let (parts, _) = head.into_parts();
    Ok(Response::from_parts(parts, Body::from_stream(data)))
}

fn set_content_type(headers: &mut HeaderMap, reply: &HttpBody) {
    let value = HeaderValue::from_str(reply.content_type())
        .unwrap_or_else(|_| HeaderValue::from_static(http_body::DEFAULT_CONTENT_TYPE));
    headers.insert(header::CONTENT_TYPE, value);
}

/// The request's `Content-Type`, as the upload's `HttpBody.content_type` (empty without one).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// How the messages of one streamed upload are made: what the path and query bound, the
/// target field, the content type, the chunk size and the upload's bound.
pub struct Chunker {
    pub target: RawTarget,
    pub bound: Bytes,
    pub content_type: String,
    pub chunk_bytes: usize,
    pub max_bytes: u64,
}

/// Messages of small chunks leave together in DATA frames of about this size (as
/// `client_stream.rs` batches small JSON messages: one small frame per message would spend
/// the upstream's budget of small frames).
const BATCH_BYTES: usize = 16 * 1024;

/// The request side of a streamed upload: reads the body, sends each full chunk as one
/// message as soon as it is in, the rest at the end, then half-closes. Every message
/// carries the content type and what the path and query bound. An upload past
/// `max_bytes`, or a body that breaks off or stalls, leaves its failure for the reply side
/// and resets the upstream stream with CANCEL, so the upstream never takes it for whole.
pub async fn pump(
    mut body: Body,
    chunker: Chunker,
    mut requests: Requests,
    failure: Failure,
    idle: Duration,
) {
    let outcome = async {
        let mut pending = BytesMut::new();
        let mut received: u64 = 0;
        let mut sent_any = false;
        loop {
            let data = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(GatewayError::body_timeout(idle)),
                Ok(None) => break,
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Ok(Some(Err(err))) => {
                    return Err(GatewayError::bad_request(format!(
                        "the request body broke off: {err}"
                    )));
                }
            };
            received += data.len() as u64;
            if received > chunker.max_bytes {
                return Err(too_large(chunker.max_bytes));
            }
            pending.extend_from_slice(&data);
            let mut batch = BytesMut::new();
            while pending.len() >= chunker.chunk_bytes {
                let chunk = pending.split_to(chunker.chunk_bytes);
                batch.extend_from_slice(&chunker.frame(&chunk)?);
                sent_any = true;
                if batch.len() >= BATCH_BYTES && requests.send(batch.split().freeze()).await.is_err() {
                    return Ok(false);
                }
            }
            if !batch.is_empty() && requests.send(batch.freeze()).await.is_err() {
                return Ok(false);
            }
        }
        // The last, shorter chunk; an empty upload is one message with no data.
        if !pending.is_empty() || !sent_any {
            let framed = chunker.frame(&pending)?;
            if requests.send(framed).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
    .await;
    failure.end(&mut requests, outcome);
}

impl Chunker {
    fn frame(&self, data: &[u8]) -> Result<Bytes, GatewayError> {
        self.target.frame(&self.bound, &self.content_type, data)
    }
}

/// 413 for an upload past `transcoding.max_upload_bytes`.
pub fn too_large(limit: u64) -> GatewayError {
    GatewayError::body_too_large(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// Whether a declared `Content-Length` already passes `limit` (413 before any byte is read).
pub fn declared_too_large(headers: &HeaderMap, limit: u64) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}
