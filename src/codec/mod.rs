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
pub mod enum_prefix;
pub mod http_body;
mod keys;
pub mod selection;
pub mod straight;
mod tree;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use crate::config::OutputOptions;
use crate::error::GatewayError;
use crate::grpc::{self, Outgoing};
use crate::upstream::Connection;
use selection::Selection;

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

    /// One reply message as proto3 JSON, with only the selected members when there is a
    /// `selection` (`?fields=`: unselected members are never printed). A reply that does not
    /// decode is the upstream's fault (502).
    fn decode_reply(&self, reply: Bytes, selection: Option<&Selection>) -> Result<Vec<u8>, GatewayError>;

    /// One reply message as proto3 JSON shaped by `form` (output options, `$alt`), which is
    /// not the default form, and cut to `selection`. Off the common path: both codecs print
    /// it through the descriptors, so that they agree byte for byte.
    fn decode_reply_shaped(
        &self,
        reply: Bytes,
        form: ReplyForm,
        selection: Option<&Selection>,
    ) -> Result<Vec<u8>, GatewayError>;
}

/// How the reply's JSON is printed: a route's output options (resolved once, when the
/// route table is built), with what the client asked for by system parameters
/// (`binding/system.rs`) on top. The default is the gateway's usual JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyForm {
    /// Enums as numbers, not names.
    pub enum_numbers: bool,
    /// Unset singular message fields as `null`.
    pub emit_unpopulated: bool,
    /// Keys are proto field names.
    pub proto_names: bool,
    /// Enum names without their type's prefix (`enum_prefix.rs`).
    pub strip_enum_prefix: bool,
}

impl ReplyForm {
    /// The form of a route's resolved output options.
    pub fn of(options: OutputOptions) -> ReplyForm {
        ReplyForm {
            enum_numbers: options.enums_as_numbers,
            emit_unpopulated: options.emit_unpopulated,
            proto_names: options.use_proto_names,
            strip_enum_prefix: options.strip_enum_prefix,
        }
    }

    /// This form with what the client asked for by system parameters added.
    pub fn with(self, asked: ReplyForm) -> ReplyForm {
        ReplyForm {
            enum_numbers: self.enum_numbers || asked.enum_numbers,
            emit_unpopulated: self.emit_unpopulated || asked.emit_unpopulated,
            proto_names: self.proto_names || asked.proto_names,
            strip_enum_prefix: self.strip_enum_prefix || asked.strip_enum_prefix,
        }
    }

    /// One reply message printed in this form and cut to `selection`: the codec's own fast
    /// path when the form is the default one.
    pub fn decode(
        self,
        codec: &dyn Codec,
        reply: Bytes,
        selection: Option<&Selection>,
    ) -> Result<Vec<u8>, GatewayError> {
        if self == ReplyForm::default() {
            codec.decode_reply(reply, selection)
        } else {
            codec.decode_reply_shaped(reply, self, selection)
        }
    }
}

/// How a call's replies are printed: the form, and the members the client selected
/// (`?fields=`; `None` for all of them). Cloned into each reply stream, hence the `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Printing {
    pub form: ReplyForm,
    pub selection: Option<Arc<Selection>>,
}

impl Printing {
    /// One reply message printed this way.
    pub fn decode(&self, codec: &dyn Codec, reply: Bytes) -> Result<Vec<u8>, GatewayError> {
        self.form.decode(codec, reply, self.selection.as_deref())
    }
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
    /// How the reply is printed.
    pub printing: Printing,
}

impl Call {
    fn outgoing(self) -> (Arc<Connection>, Outgoing, Duration, Printing) {
        let outgoing = Outgoing {
            path: self.grpc_path,
            metadata: self.metadata,
            timeout: self.timeout,
            body: self.body,
        };
        (self.connection, outgoing, self.timeout, self.printing)
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
    let (connection, outgoing, timeout, printing) = call.outgoing();
    let reply = unary_within(&connection, outgoing, timeout).await?;
    let json = printing.decode(codec, reply.message)?;
    Ok(UnaryReply {
        json,
        metadata: reply.initial,
        trailers: reply.trailing,
    })
}

/// A unary call whose reply message is kept as it came (a `google.api.HttpBody` reply is
/// answered raw, `http_body.rs`).
pub async fn unary_message(call: Call) -> Result<grpc::Unary, GatewayError> {
    let (connection, outgoing, timeout, _) = call.outgoing();
    unary_within(&connection, outgoing, timeout).await
}

async fn unary_within(
    connection: &Arc<Connection>,
    outgoing: Outgoing,
    timeout: Duration,
) -> Result<grpc::Unary, GatewayError> {
    let started = Instant::now();
    tokio::time::timeout(timeout, grpc::unary(connection, outgoing))
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))?
        .map_err(|err| at_the_deadline(err, started, timeout))
}

/// An upstream CANCELLED or DEADLINE_EXCEEDED that arrives as the deadline passes is the
/// deadline (`grpc::is_the_deadline`): the same answer whichever timer is seen first.
fn at_the_deadline(err: GatewayError, started: Instant, timeout: Duration) -> GatewayError {
    let upstream = err.fault() == crate::error::Fault::Upstream;
    if upstream && grpc::is_the_deadline(err.code(), started.elapsed(), timeout) {
        return GatewayError::deadline_exceeded(timeout);
    }
    err
}

/// The upstream's answer to a server-streaming call: its header metadata and a stream of
/// messages (JSON-encoded unless said otherwise) that ends after the first error.
pub struct StreamReply<T = Vec<u8>> {
    pub metadata: MetadataMap,
    pub messages: BoxStream<'static, Result<T, GatewayError>>,
}

/// A server-streaming call. The deadline covers the whole stream, as a gRPC deadline does.
pub async fn server_streaming(codec: Arc<dyn Codec>, call: Call) -> Result<StreamReply, GatewayError> {
    let printing = call.printing.clone();
    server_streaming_with(call, move |bytes| printing.decode(&*codec, bytes)).await
}

/// A server-streaming call whose messages `decode` turns into what the front-end sends
/// (JSON for [`server_streaming`], an `HttpBody`'s data for a raw download).
pub async fn server_streaming_with<T: Send + 'static>(
    call: Call,
    decode: impl Fn(Bytes) -> Result<T, GatewayError> + Send + Sync + 'static,
) -> Result<StreamReply<T>, GatewayError> {
    let (connection, outgoing, timeout, _) = call.outgoing();
    let deadline = Instant::now() + timeout;
    let mut reply = tokio::time::timeout_at(deadline, grpc::call(&connection, outgoing))
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))??;
    // A trailers-only reply is an error before any message: a plain error answer.
    if reply.is_trailers_only() {
        reply.message().await?;
    }
    let metadata = reply.initial_metadata();
    let decode = Arc::new(decode);
    let messages = futures_util::stream::unfold(Some(reply), move |state| {
        let decode = decode.clone();
        async move {
            let mut reply = state?;
            let next = match tokio::time::timeout_at(deadline, reply.message()).await {
                Err(_) => Err(GatewayError::deadline_exceeded(timeout)),
                Ok(Ok(Some(bytes))) => decode(bytes),
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

/// A failure to decode the merged request object into `message` (a 400). The key rules'
/// refusals (`keys.rs`: an unknown field, a field or oneof given twice) are the gateway's
/// own words and name the field; anything else the binder's value checks
/// (`binding/values.rs`) did not catch first is worded here, with the library's text kept
/// for the log only.
fn request_error(text: String, message: &prost_reflect::MessageDescriptor) -> GatewayError {
    let ours = text.starts_with("unknown field") || text.starts_with("duplicate field");
    if let Some(field) = text.split('`').nth(1).filter(|_| ours) {
        return GatewayError::bad_field(field, format!("invalid request: {text}"));
    }
    tracing::debug!(error = %text, message = message.full_name(), "request refused by the codec");
    GatewayError::bad_field(
        "body",
        format!("invalid request: it does not fit message {}", message.full_name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_expiry_at_the_deadline_is_the_deadline() {
        let cancelled = || GatewayError::upstream_status(&tonic::Status::cancelled("Timeout expired"));
        let timeout = Duration::from_millis(300);
        let started = Instant::now() - timeout;
        let err = at_the_deadline(cancelled(), started, timeout);
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(err.message(), "upstream did not answer within 300ms");
        // grpcio's and grpc-go's own expiry: the gateway's words, whichever timer came first.
        let expired = GatewayError::upstream_status(&tonic::Status::deadline_exceeded("Deadline Exceeded"));
        let err = at_the_deadline(expired, started, timeout);
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
