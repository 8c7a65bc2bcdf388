//! JSON messages in envelopes: gRPC-Web's `+json` and Connect's `application/connect+json`
//! streams carry proto3 JSON in the same length-prefixed envelopes that their `+proto` forms
//! relay untouched (`passthrough.rs`). [`JsonEnvelopes`] sits in one direction of such a
//! relay and transcodes each whole message as it passes, through the method's codec: the
//! client's JSON into protobuf for the upstream ([`JsonEnvelopes::requests`]), the upstream's
//! protobuf into JSON for the client ([`JsonEnvelopes::replies`]). It holds one message at a
//! time; the relay's meters have already refused any message over its limit at its prefix.
//!
//! It does not touch the end of a call: gRPC-Web's trailer frame and Connect's end-of-stream
//! envelope are made from the trailers as for `+proto`. Compressed messages: a client's
//! gzip request message is inflated (as Connect's unary protocol does, `connect::inflate`);
//! the upstream is asked for identity replies, since they are decoded here.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;

use super::connect::{encode_json, inflate};
use crate::error::GatewayError;
use crate::grpc;
use crate::method::Method;

/// One direction of a call with JSON messages, transcoded message by message.
pub(super) struct JsonEnvelopes {
    method: Arc<Method>,
    /// The bytes of the message being read.
    pending: BytesMut,
    /// `Some` for the client's messages (the compression it named for them, if any);
    /// `None` for the upstream's.
    requests: Option<Option<HeaderValue>>,
    limit: usize,
    /// Messages seen so far, to name the one refused.
    count: usize,
}

impl JsonEnvelopes {
    /// The client's JSON messages into protobuf for the upstream. `coding` is the client's
    /// message compression (`grpc-encoding`, `connect-content-encoding`); `limit` bounds an
    /// inflated message.
    pub(super) fn requests(method: Arc<Method>, coding: Option<HeaderValue>, limit: usize) -> JsonEnvelopes {
        JsonEnvelopes::new(method, Some(coding), limit)
    }

    /// The upstream's protobuf messages into JSON for the client.
    pub(super) fn replies(method: Arc<Method>, limit: usize) -> JsonEnvelopes {
        JsonEnvelopes::new(method, None, limit)
    }

    fn new(method: Arc<Method>, requests: Option<Option<HeaderValue>>, limit: usize) -> JsonEnvelopes {
        JsonEnvelopes {
            method,
            pending: BytesMut::new(),
            requests,
            limit,
            count: 0,
        }
    }

    /// The next bytes of the stream: every envelope they complete, transcoded and framed
    /// again (empty while a message is still arriving).
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, GatewayError> {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some((flags, payload)) = grpc::take_envelope(&mut self.pending) {
            self.count += 1;
            let framed = match &self.requests {
                Some(coding) => self.request(flags, payload, coding.as_ref())?,
                None => self.reply(flags, payload)?,
            };
            out.extend_from_slice(&framed);
        }
        Ok(out.freeze())
    }

    /// The stream ended: an error when it ended inside a message.
    pub(super) fn finish(&self) -> Result<(), GatewayError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        Err(match self.requests {
            Some(_) => GatewayError::bad_request("the request body ends inside a message"),
            None => GatewayError::bad_upstream_reply("the upstream's reply ends inside a message"),
        })
    }

    /// One request message: JSON (inflated first when its flag says compressed) through the
    /// codec. A refusal names the message when the method takes a stream of them.
    fn request(
        &self,
        flags: u8,
        payload: Bytes,
        coding: Option<&HeaderValue>,
    ) -> Result<Bytes, GatewayError> {
        let which = format!("message {}", self.count);
        let named = |err: GatewayError| match self.method.streams_requests() {
            true => err.in_message(&which),
            false => err,
        };
        let json = match (flags, coding) {
            (0, _) => payload,
            (1, Some(coding)) => inflate(Some(coding.as_bytes()), payload, self.limit).map_err(named)?,
            (1, None) => {
                return Err(named(GatewayError::bad_request(
                    "a compressed message, but the request names no message encoding",
                )));
            }
            (other, _) => {
                return Err(named(GatewayError::bad_request(format!(
                    "envelope flags {other:#04x} do not mark a request message"
                ))));
            }
        };
        encode_json(&self.method, &json).map_err(named)
    }

    /// One reply message: protobuf through the codec into JSON, framed uncompressed.
    fn reply(&self, flags: u8, payload: Bytes) -> Result<Bytes, GatewayError> {
        if flags != 0 {
            // The call asked for identity replies: a compressed one breaks that.
            return Err(GatewayError::bad_upstream_reply(format!(
                "upstream reply message has flags {flags:#04x}, though the call accepts uncompressed replies only"
            )));
        }
        let json = self.method.codec.decode_reply(payload, None)?;
        Ok(grpc::envelope(0, &json))
    }
}

#[cfg(test)]
#[path = "json_envelopes_tests.rs"]
mod tests;
