//! The protocol layer's part of gRPC pass-through: a client's call relayed to the upstream
//! as it is, at the HTTP/2 level. It opens the upstream stream with the gateway's own head
//! (`:path` from the schema, `te`, `grpc-timeout` for the deadline left, the forwarded
//! metadata) and the client's own wire choices (its gRPC content type, `grpc-encoding`,
//! `grpc-accept-encoding`), checks the reply's head as `grpc.rs` does, and says what a broken
//! stream means (`failure.rs`). It also meters the messages that pass (`FrameMeter`), so the
//! message limits hold without decoding anything.
//!
//! It does not move the frames or build the client's answer: `gateway/passthrough.rs` does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::client::ResponseFuture;
use h2::{RecvStream, SendStream};
use http::uri::PathAndQuery;
use http::{HeaderValue, header};
use tonic::metadata::MetadataMap;

use super::compression::{self, Encoding};
use super::failure::{head_error, missing_status, sent, unsent};
use super::wire::{check_head, frame_len, metadata_of, not_grpc, split_frame, status_from, too_large};
use super::{head, open};
use crate::error::GatewayError;
use crate::upstream::{Connection, InFlight, Live};

/// The head of a relayed call.
pub struct RelayHead {
    /// `/package.Service/Method`, from the schema.
    pub path: PathAndQuery,
    pub metadata: MetadataMap,
    pub timeout: Duration,
    /// The client's `content-type` (`application/grpc`, `+proto`, …), sent on unchanged:
    /// the messages are the client's bytes.
    pub content_type: HeaderValue,
    /// The client's `grpc-encoding`: its compressed messages go on as they are.
    pub encoding: Option<HeaderValue>,
    /// The client's `grpc-accept-encoding`: the upstream's compressed messages reach the
    /// client as they are, so it may use only what the client accepts.
    pub accept_encoding: Option<HeaderValue>,
}

/// An opened relay: the stream to send the client's messages on, and the reply to come.
pub struct Relay {
    pub send: SendStream<Bytes>,
    pub reply: PendingReply,
}

/// The reply of a relayed call, before its head arrived.
pub struct PendingReply {
    response: ResponseFuture,
    link: Link,
}

/// What a relayed stream needs to classify its failures: the connection it runs on. It
/// counts the call as in flight on that connection while it lives.
pub struct Link {
    connection: Arc<Connection>,
    live: Live,
    _in_flight: InFlight,
}

/// Opens the relayed call on `connection`: sends the head, not yet any message.
pub async fn open_relay(connection: &Arc<Connection>, relay: RelayHead) -> Result<Relay, GatewayError> {
    let started = Instant::now();
    let (live, mut sender) = open(connection).await?;
    let in_flight = live.in_flight();
    let RelayHead {
        path,
        metadata,
        timeout,
        content_type,
        encoding,
        accept_encoding,
    } = relay;
    let mut request = head(
        connection,
        path,
        metadata,
        timeout.saturating_sub(started.elapsed()),
    )?;
    let headers = request.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(encoding) = encoding {
        headers.insert(&super::GRPC_ENCODING, encoding);
    }
    match accept_encoding {
        Some(accepted) => headers.insert(&super::GRPC_ACCEPT_ENCODING, accepted),
        None => headers.remove(&super::GRPC_ACCEPT_ENCODING),
    };
    let (response, send) = sender
        .send_request(request, false)
        .map_err(|e| unsent(connection, &live, e))?;
    Ok(Relay {
        send,
        reply: PendingReply {
            response,
            link: Link {
                connection: connection.clone(),
                live,
                _in_flight: in_flight,
            },
        },
    })
}

impl PendingReply {
    /// Waits for the reply's head: HTTP 200 with a gRPC content type, or the error it means.
    /// The head and the body to relay come back with the link.
    /// `local` is asked first when the stream failed: a failure the gateway caused itself
    /// (it reset the stream) is its own error, not the upstream's.
    pub async fn head(
        self,
        local: impl FnOnce() -> Option<GatewayError>,
    ) -> Result<(http::response::Parts, RecvStream, Link), GatewayError> {
        let PendingReply { response, link } = self;
        let response = response.await.map_err(|e| match local() {
            Some(ours) => ours,
            None => head_error(&link.connection, &link.live, e),
        })?;
        let (parts, body) = response.into_parts();
        check_head(parts.status, &parts.headers)?;
        Ok((parts, body, link))
    }
}

impl Link {
    /// What a failure of the relayed stream after its head means; a broken connection is
    /// forgotten, so that the next call dials again.
    pub fn broken(&self, err: h2::Error) -> GatewayError {
        sent(&self.connection, &self.live, err)
    }

    /// The reply ended without a `grpc-status`.
    pub fn missing_status(&self) -> GatewayError {
        missing_status("the stream ended without trailers")
    }
}

/// A unary call made through a relayed stream, as the gRPC layer saw it, for a front-end that
/// renders statuses in its own form (Connect): the reply's initial metadata, then its
/// message and trailing metadata, or the upstream's status with its raw details.
pub struct RawUnary {
    pub initial: MetadataMap,
    pub result: Result<(Bytes, MetadataMap), tonic::Status>,
}

/// Sends one framed message on a relayed call and reads the whole reply: one message of at
/// most `limit` bytes (inflated if the upstream compressed it), and the status.
pub async fn unary_raw(
    connection: &Arc<Connection>,
    head: RelayHead,
    framed: Bytes,
    limit: usize,
) -> Result<RawUnary, GatewayError> {
    let Relay { mut send, reply } = open_relay(connection, head).await?;
    // A body the window does not take yet is queued by h2 and sent as the window opens.
    let unsent = send.send_data(framed, true).err();
    let (parts, mut body, link) = reply.head(|| None).await?;
    let initial = metadata_of(parts.headers.iter());
    if body.is_end_stream() {
        let status =
            status_from(&parts.headers).ok_or_else(|| missing_status("a reply head that ends the stream"))?;
        return match status.code() {
            tonic::Code::Ok => Err(not_grpc("status OK without a reply message".to_string())),
            _ => Ok(RawUnary {
                initial: MetadataMap::new(),
                result: Err(status),
            }),
        };
    }
    if let Some(err) = unsent {
        return Err(link.broken(err));
    }
    let mut pending = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| link.broken(e))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        pending.extend_from_slice(&chunk);
        if pending.len() > limit.saturating_add(5) {
            return Err(too_large(format!("more than {limit} bytes"), limit));
        }
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| link.broken(e))?
        .ok_or_else(|| link.missing_status())?;
    let status = status_from(&trailers).ok_or_else(|| missing_status("trailers without it"))?;
    if status.code() != tonic::Code::Ok {
        return Ok(RawUnary {
            initial,
            result: Err(status),
        });
    }
    let (compressed, payload) = split_frame(&mut pending, limit)?
        .ok_or_else(|| not_grpc("status OK without a reply message".to_string()))?;
    if !pending.is_empty() {
        return Err(not_grpc("more than one message for a unary call".to_string()));
    }
    let message = compression::decode(compressed, payload, &Encoding::of(&parts.headers), limit)?;
    Ok(RawUnary {
        initial,
        result: Ok((message, status.metadata().clone())),
    })
}

/// Counts the messages of a relayed stream as its bytes pass, without holding them: it reads
/// each 5-byte message prefix and fails on a message that announces more than `limit` bytes
/// (counted as sent, so a compressed message is measured compressed).
#[derive(Debug)]
pub struct FrameMeter {
    limit: usize,
    prefix: [u8; 5],
    /// Bytes of the current prefix seen so far.
    have: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl FrameMeter {
    pub fn new(limit: usize) -> FrameMeter {
        FrameMeter {
            limit,
            prefix: [0; 5],
            have: 0,
            remaining: 0,
        }
    }

    /// Feeds the next bytes of the stream; `Err(len)` names a message over the limit.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), usize> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.have).min(bytes.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 5 {
                self.have = 0;
                let len = frame_len(&self.prefix);
                if len > self.limit {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }

    /// Whether the stream so far ends inside a message.
    pub fn inside_message(&self) -> bool {
        self.have > 0 || self.remaining > 0
    }
}

/// `grpc-status` of a head or trailers, when there is one and it parses.
pub fn status_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get(&super::GRPC_STATUS)
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
}

/// A relayed message's prefix and payload, for tests of the meter.
#[cfg(test)]
fn framed(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    bytes.resize(5 + len, 7);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_follows_messages_split_anywhere() {
        let mut stream = framed(3);
        stream.extend(framed(0));
        stream.extend(framed(10));
        // Every split point, fed byte by byte too: the meter never loses its place.
        for cut in 0..stream.len() {
            let mut meter = FrameMeter::new(10);
            meter.feed(&stream[..cut]).unwrap();
            meter.feed(&stream[cut..]).unwrap();
            assert!(!meter.inside_message(), "cut at {cut}");
        }
        let mut meter = FrameMeter::new(10);
        for byte in &stream {
            meter.feed(std::slice::from_ref(byte)).unwrap();
        }
        assert!(!meter.inside_message());
        meter.feed(&stream[..7]).unwrap();
        assert!(meter.inside_message());
    }

    #[test]
    fn meter_refuses_a_message_over_the_limit_at_its_prefix() {
        let mut meter = FrameMeter::new(10);
        meter.feed(&framed(10)).unwrap();
        let big = framed(11);
        assert_eq!(meter.feed(&big[..5]), Err(11));
    }
}
