//! Receiving request bodies, apart from the concurrency limit. A request does not take one
//! of the `max_concurrent_requests` permits until its body has fully arrived: a client that
//! declares a body and then sends it slowly (or never) would otherwise hold a permit for
//! the whole `body_timeout`, and a handful of such clients would shed everyone else.
//! Bodies being received are bounded on their own instead, so that they cannot starve
//! requests that are ready:
//! - `server.max_concurrent_body_reads` bodies are received at once; one more gets 503 with
//!   `Retry-After` at once;
//! - `server.max_inflight_body_bytes` bounds the bytes of every body held by a request,
//!   counted as they arrive and held until the request ends; past it, 503 with
//!   `Retry-After`. Bytes are counted as they arrive rather than reserved from
//!   `Content-Length`: a client that declares a large body and sends nothing must not hold
//!   a share it never uses (a few such clients would shed every other body).
//!
//! Each body is still bounded by `max_body_bytes` (413) and `body_timeout` (408).
//!
//! Decoding a body costs memory of its own while it runs: a JSON tree, or the dynamic
//! codec's message, takes tens of bytes per JSON value, so a 1 MiB array of small integers
//! can take tens of MiB for the moment it is decoded. Bodies over `LARGE_BODY` therefore
//! take turns (`decode_turn`): one is decoded at a time, whatever the number of worker
//! threads, and the peak stays one such decode above the bodies held.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::config::ServerConfig;
use crate::error::GatewayError;

/// Bodies at least this large are decoded one at a time.
pub const LARGE_BODY: usize = 64 * 1024;

/// The gateway-wide budgets for request bodies.
#[derive(Debug)]
pub struct BodyIntake {
    /// One turn: the decode of a body of `LARGE_BODY` or more.
    decoding: Semaphore,
    reads: Arc<Semaphore>,
    max_reads: usize,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
    max_body_bytes: usize,
    timeout: Duration,
}

/// A received body and its share of `max_inflight_body_bytes`, given back on drop.
#[derive(Debug)]
pub struct ReceivedBody {
    pub bytes: Bytes,
    _reserved: Option<OwnedSemaphorePermit>,
}

impl BodyIntake {
    pub fn new(limits: &ServerConfig) -> BodyIntake {
        BodyIntake {
            decoding: Semaphore::new(1),
            reads: Arc::new(Semaphore::new(limits.max_concurrent_body_reads)),
            max_reads: limits.max_concurrent_body_reads,
            bytes: Arc::new(Semaphore::new(limits.max_inflight_body_bytes)),
            max_bytes: limits.max_inflight_body_bytes,
            max_body_bytes: limits.max_body_bytes,
            timeout: limits.body_timeout,
        }
    }

    /// Waits for the turn to decode a body of `len` bytes, held until the permit is
    /// dropped; `None` at once for a body under `LARGE_BODY`.
    pub async fn decode_turn(&self, len: usize) -> Option<SemaphorePermit<'_>> {
        if len < LARGE_BODY {
            return None;
        }
        // The semaphore is never closed.
        self.decoding.acquire().await.ok()
    }

    /// Bytes of request bodies held by requests now.
    pub fn bytes_in_flight(&self) -> usize {
        self.max_bytes - self.bytes.available_permits()
    }

    /// Receives the whole body, refusing more than `max_body_bytes` whether or not
    /// `Content-Length` declared them, and anything past the gateway-wide budgets.
    pub async fn receive(
        &self,
        body: Body,
        declared: Option<&HeaderValue>,
    ) -> Result<ReceivedBody, GatewayError> {
        self.receive_up_to(body, declared, self.max_body_bytes).await
    }

    /// Like [`BodyIntake::receive`], with `limit` in place of `max_body_bytes`: a raw upload
    /// (`google.api.HttpBody`) held whole is bounded by `transcoding.max_upload_bytes`, and
    /// always by `max_inflight_body_bytes`, which it can never pass.
    pub async fn receive_up_to(
        &self,
        body: Body,
        declared: Option<&HeaderValue>,
        limit: usize,
    ) -> Result<ReceivedBody, GatewayError> {
        // Most requests (every GET) have no body: no budget, no timer, no collecting.
        if hyper::body::Body::is_end_stream(&body) {
            return Ok(ReceivedBody {
                bytes: Bytes::new(),
                _reserved: None,
            });
        }
        let limit = limit.min(self.max_bytes);
        let declared = declared
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(GatewayError::body_too_large(limit));
        }
        let _reading = self.reads.clone().try_acquire_owned().map_err(|_| {
            GatewayError::shed(format!(
                "overloaded: {} request bodies are being received already; retry shortly",
                self.max_reads
            ))
        })?;
        let mut reserved: Option<OwnedSemaphorePermit> = None;
        let collect = async {
            let mut body = body;
            // Chunks are kept as they came and joined once at the end, into a buffer of the
            // size received: a buffer sized from Content-Length up front would hold memory
            // that the in-flight budget does not count (bytes count as they arrive).
            let mut chunks: Vec<Bytes> = Vec::new();
            let mut received = 0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|err| {
                    GatewayError::bad_request(format!("failed to read the request body: {err}"))
                })?;
                let Ok(data) = frame.into_data() else { continue };
                let n = data.len();
                received += n;
                if received > limit {
                    return Err(GatewayError::body_too_large(limit));
                }
                let more = self.reserve(n)?;
                match reserved.as_mut() {
                    Some(held) => held.merge(more),
                    None => reserved = Some(more),
                }
                chunks.push(data);
            }
            Ok(match chunks.len() {
                0 => Bytes::new(),
                1 => chunks.swap_remove(0),
                _ => {
                    let mut joined = BytesMut::with_capacity(received);
                    for chunk in chunks {
                        joined.extend_from_slice(&chunk);
                    }
                    joined.freeze()
                }
            })
        };
        let bytes = tokio::time::timeout(self.timeout, collect)
            .await
            .map_err(|_| GatewayError::body_timeout(self.timeout))??;
        Ok(ReceivedBody {
            bytes,
            _reserved: reserved,
        })
    }

    fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, GatewayError> {
        let refused = || {
            GatewayError::shed(format!(
                "overloaded: request bodies in flight would pass {} bytes; retry shortly",
                self.max_bytes
            ))
        };
        let n = u32::try_from(bytes).map_err(|_| refused())?;
        self.bytes
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| refused())
    }
}
