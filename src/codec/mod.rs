//! The codec layer: how a method's messages become JSON and back, and the calls that carry
//! them. A [`Codec`] turns the bound request object into one framed request message and a
//! reply message into proto3 JSON; `compiled.rs` is the pbjson implementation for the protos
//! built into the binary, `dynamic.rs` the prost-reflect one for schemas loaded at run time.
//! [`unary`] and [`server_streaming`] run one call through any codec
//! over the gRPC protocol layer (`grpc`), bounded by the call's deadline.
//!
//! It knows message types and the deadline of the exchange; it does not know routes, HTTP
//! headers or statuses (the gateway does), nor the wire format (the protocol layer does).

pub mod compiled;
pub mod dynamic;
mod keys;
pub mod straight;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use crate::error::GatewayError;
use crate::grpc::{self, Outgoing};
use crate::upstream::Connection;

/// JSON ↔ protobuf for one method's request and reply types.
pub trait Codec: Send + Sync + 'static {
    /// The bound request object as one framed request message. A request that does not fit
    /// the message type is the client's fault (400) and never reaches the upstream.
    fn encode_request(&self, request: &serde_json::Value) -> Result<Bytes, GatewayError>;

    /// A whole request body (a `body: "*"` route with nothing bound by the path or the
    /// query) as one framed request message, decoded straight from its bytes without a JSON
    /// tree (`straight.rs`), or `None` when this codec cannot, or the body does not decode:
    /// the caller then binds and calls `encode_request`, which answers as usual.
    fn encode_body(&self, _body: &[u8]) -> Option<Bytes> {
        None
    }

    /// One reply message as proto3 JSON. A reply that does not decode is the upstream's
    /// fault (502).
    fn decode_reply(&self, reply: Bytes) -> Result<Vec<u8>, GatewayError>;
}

/// One call, ready to go: the encoded request and where and how to send it.
pub struct Call {
    pub connection: Arc<Connection>,
    /// `/package.Service/Method`, from the method table.
    pub grpc_path: PathAndQuery,
    /// One framed message (`Codec::encode_request`).
    pub body: Bytes,
    pub metadata: MetadataMap,
    /// The whole exchange's deadline; also sent upstream as `grpc-timeout`.
    pub timeout: Duration,
}

impl Call {
    fn outgoing(self) -> (Arc<Connection>, Outgoing, Duration) {
        let outgoing = Outgoing {
            path: self.grpc_path,
            metadata: self.metadata,
            timeout: self.timeout,
            body: self.body,
        };
        (self.connection, outgoing, self.timeout)
    }
}

/// The upstream's successful answer, already encoded as proto3 JSON.
#[derive(Debug)]
pub struct UnaryReply {
    pub json: Vec<u8>,
    /// The reply head's metadata.
    pub metadata: MetadataMap,
    /// The trailers' metadata (sent as HTTP trailers when the client accepts them).
    pub trailers: MetadataMap,
}

/// A unary call: one request, one reply, then status OK.
pub async fn unary(codec: &dyn Codec, call: Call) -> Result<UnaryReply, GatewayError> {
    let (connection, outgoing, timeout) = call.outgoing();
    let started = Instant::now();
    let reply = tokio::time::timeout(timeout, grpc::unary(&connection, outgoing))
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))?
        .map_err(|err| at_the_deadline(err, started, timeout))?;
    let json = codec.decode_reply(reply.message)?;
    Ok(UnaryReply {
        json,
        metadata: reply.initial,
        trailers: reply.trailing,
    })
}

/// How close to the deadline an upstream CANCELLED still counts as the deadline.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// An upstream CANCELLED that arrives as the deadline passes is the deadline: tonic servers
/// answer their own `grpc-timeout` expiry with CANCELLED ("Timeout expired"), and grpc-go's
/// client turns a CANCEL at a passed deadline into DEADLINE_EXCEEDED the same way.
fn at_the_deadline(err: GatewayError, started: Instant, timeout: Duration) -> GatewayError {
    let cancelled = err.code() == tonic::Code::Cancelled && err.fault() == crate::error::Fault::Upstream;
    if cancelled && started.elapsed() + DEADLINE_SLACK >= timeout {
        return GatewayError::deadline_exceeded(timeout);
    }
    err
}

/// The upstream's answer to a server-streaming call: its header metadata and a stream of
/// JSON-encoded messages that ends after the first error.
pub struct StreamReply {
    pub metadata: MetadataMap,
    pub messages: BoxStream<'static, Result<Vec<u8>, GatewayError>>,
}

/// A server-streaming call. The deadline covers the whole stream, as a gRPC deadline does.
pub async fn server_streaming(codec: Arc<dyn Codec>, call: Call) -> Result<StreamReply, GatewayError> {
    let (connection, outgoing, timeout) = call.outgoing();
    let deadline = Instant::now() + timeout;
    let mut reply = tokio::time::timeout_at(deadline, grpc::call(&connection, outgoing))
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))??;
    // A trailers-only reply is an error before any message: a plain error answer.
    if reply.is_trailers_only() {
        reply.message().await?;
    }
    let metadata = reply.initial_metadata();
    let messages = futures_util::stream::unfold(Some(reply), move |state| {
        let codec = codec.clone();
        async move {
            let mut reply = state?;
            let next = match tokio::time::timeout_at(deadline, reply.message()).await {
                Err(_) => Err(GatewayError::deadline_exceeded(timeout)),
                Ok(Ok(Some(bytes))) => codec.decode_reply(bytes),
                Ok(Ok(None)) => return None,
                Ok(Err(err)) => Err(err),
            };
            // After an error the stream ends: the upstream call is over.
            let state = next.is_ok().then_some(reply);
            Some((next, state))
        }
    });
    Ok(StreamReply {
        metadata,
        messages: messages.boxed(),
    })
}

/// A failure to decode the merged request object into the request type (a 400), reported
/// against the field that the error names when it names one.
fn request_error(text: String) -> GatewayError {
    let field = text
        .split('`')
        .nth(1)
        .filter(|_| text.starts_with("unknown field") || text.starts_with("duplicate field"))
        .unwrap_or("body");
    GatewayError::bad_field(field, format!("invalid request: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_cancelled_at_the_deadline_is_the_deadline() {
        let cancelled = || GatewayError::upstream_status(&tonic::Status::cancelled("Timeout expired"));
        let timeout = Duration::from_millis(300);
        let started = Instant::now() - timeout;
        let err = at_the_deadline(cancelled(), started, timeout);
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(err.message(), "upstream did not answer within 300ms");
        // Well before the deadline, CANCELLED is what the upstream meant.
        let err = at_the_deadline(cancelled(), Instant::now(), Duration::from_secs(5));
        assert_eq!(err.code(), tonic::Code::Cancelled);
        // Other codes are never touched.
        let internal = GatewayError::upstream_status(&tonic::Status::internal("x"));
        assert_eq!(
            at_the_deadline(internal, started, timeout).code(),
            tonic::Code::Internal
        );
    }
}
