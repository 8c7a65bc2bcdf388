//! Forwarding of one unary call: bound JSON → typed request (pbjson) → upstream (tonic) →
//! typed reply → JSON bytes. Owns the deadline (enforced here, because tonic reports its own
//! timeout as CANCELLED) and the classification of upstream failures into `GatewayError`s.
//! It does not know routes, headers or HTTP statuses.

use std::time::Duration;

use futures_util::future::BoxFuture;
use http::uri::PathAndQuery;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use crate::error::GatewayError;

/// Everything one unary call needs, already validated.
pub struct UnaryCall {
    pub channel: Channel,
    pub grpc_path: &'static str,
    /// The request as one JSON object (path variables, query and body merged).
    pub request: std::sync::Arc<serde_json::Value>,
    pub metadata: MetadataMap,
    pub timeout: Duration,
    /// The reply's descriptor, to render what pbjson cannot (see `render`).
    pub output: Option<prost_reflect::MessageDescriptor>,
}

/// The upstream's successful answer, already encoded as proto3 JSON.
#[derive(Debug)]
pub struct UnaryReply {
    pub json: Vec<u8>,
    pub metadata: MetadataMap,
}

/// The signature of every entry in the method table.
pub type UnaryFn = fn(UnaryCall) -> BoxFuture<'static, Result<UnaryReply, GatewayError>>;

/// The typed call behind a method-table entry, monomorphised per RPC by `build.rs`.
pub fn unary<I, O>(call: UnaryCall) -> BoxFuture<'static, Result<UnaryReply, GatewayError>>
where
    I: prost::Message + DeserializeOwned + Send + Sync + 'static,
    O: prost::Message + Default + Serialize + Send + Sync + 'static,
{
    Box::pin(async move {
        let request = typed_request::<I>(&call.request, call.metadata, call.timeout)?;
        let path = PathAndQuery::from_static(call.grpc_path);
        let mut grpc = tonic::client::Grpc::new(call.channel);
        let exchange = async move {
            grpc.ready().await.map_err(GatewayError::upstream_unavailable)?;
            grpc.unary::<I, O, _>(request, path, tonic_prost::ProstCodec::default())
                .await
                .map_err(|s| classify(&s, call.timeout))
        };
        let response = tokio::time::timeout(call.timeout, exchange)
            .await
            .map_err(|_| GatewayError::deadline_exceeded(call.timeout))??;
        let (metadata, message, _) = response.into_parts();
        let json = render(&message, call.output.as_ref())?;
        Ok(UnaryReply { json, metadata })
    })
}

/// A reply message as proto3 JSON. pbjson cannot print an enum number that the gateway's
/// descriptors do not know (a value added upstream after the gateway was built), and a
/// successful reply must not become an error for that: such a message is rendered again
/// through prost-reflect, which prints the unknown number as a number, as the proto3 JSON
/// mapping allows.
pub(crate) fn render<O: prost::Message + Serialize>(
    message: &O,
    output: Option<&prost_reflect::MessageDescriptor>,
) -> Result<Vec<u8>, GatewayError> {
    let pbjson_error = match serde_json::to_vec(message) {
        Ok(json) => return Ok(json),
        Err(err) => err,
    };
    let cannot =
        |why: String| GatewayError::bad_upstream_reply(format!("reply cannot be rendered as JSON: {why}"));
    let Some(descriptor) = output else {
        return Err(cannot(pbjson_error.to_string()));
    };
    let dynamic =
        prost_reflect::DynamicMessage::decode(descriptor.clone(), message.encode_to_vec().as_slice())
            .map_err(|e| cannot(e.to_string()))?;
    let options = prost_reflect::SerializeOptions::new()
        .skip_default_fields(false)
        .stringify_64_bit_integers(true);
    let mut json = Vec::new();
    dynamic
        .serialize_with_options(&mut serde_json::Serializer::new(&mut json), &options)
        .map_err(|e| cannot(e.to_string()))?;
    tracing::debug!(error = %pbjson_error, "reply rendered through descriptors");
    Ok(json)
}

/// The bound JSON as a typed tonic request with its metadata and `grpc-timeout` (so the
/// upstream can give up too). Decoding happens before any I/O: a request that does not fit
/// the message type never reaches the upstream.
pub(crate) fn typed_request<I: DeserializeOwned>(
    json: &serde_json::Value,
    metadata: MetadataMap,
    timeout: Duration,
) -> Result<tonic::Request<I>, GatewayError> {
    let message = I::deserialize(json).map_err(|e| body_error(&e))?;
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata;
    request.set_timeout(timeout);
    Ok(request)
}

/// A pbjson decoding failure of the merged request object, reported against the field that
/// serde names when it names one.
fn body_error(err: &serde_json::Error) -> GatewayError {
    let text = err.to_string();
    let field = text
        .split('`')
        .nth(1)
        .filter(|_| text.starts_with("unknown field") || text.starts_with("duplicate field"))
        .unwrap_or("body");
    GatewayError::bad_field(field, format!("invalid request: {text}"))
}

/// Sorts a tonic `Status` into what actually happened: a status the upstream sent, or a
/// failure tonic generated locally (no connection, our own timeout, an oversized reply).
pub fn classify(status: &tonic::Status, timeout: Duration) -> GatewayError {
    // A connect failure means the request provably never left the gateway.
    if let Some(connect) = source_of::<tonic::ConnectError>(status) {
        // The client learns that the upstream is unreachable; the log learns why.
        tracing::warn!(error = %crate::error::chain(connect), "upstream connect failed");
        return GatewayError::connect_failed(connect);
    }
    if source_of::<tonic::TimeoutExpired>(status).is_some() {
        return GatewayError::deadline_exceeded(timeout);
    }
    // tonic's decoder turns a reply over `max_decoding_message_size` into OUT_OF_RANGE, which
    // would map to 400 although the client did nothing wrong.
    if status.code() == tonic::Code::OutOfRange
        && status
            .message()
            .starts_with("Error, decoded message length too large")
    {
        return GatewayError::bad_upstream_reply(format!("upstream reply too large: {}", status.message()));
    }
    // An HTTP/2 reset or GOAWAY from the upstream. tonic's own mapping of the reason to a
    // code exists only with its `server` feature, so the reason is read here, where it is
    // the same in every build.
    if let Some(h2) = source_of::<h2::Error>(status) {
        if h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
            return GatewayError::refused_by_upstream(h2);
        }
        if let (Some(reason), true) = (h2.reason(), h2.is_remote()) {
            let frame = if h2.is_go_away() { "GOAWAY" } else { "RST_STREAM" };
            tracing::warn!(error = %crate::error::chain(status), frame, "upstream ended the call");
            return GatewayError::bad_upstream_reply(format!("upstream reset the call ({reason:?})"));
        }
    }
    // A status tonic made itself from a transport failure (it carries the hyper or h2 error
    // as its source), or from a reply that is not gRPC ("protocol error: …"), means the
    // upstream is not speaking gRPC properly: a bad gateway, not a gateway bug (500). A
    // status the upstream sent has no source.
    if std::error::Error::source(status).is_some() || status.message().starts_with("protocol error") {
        // The cause (an h2 reset, a TLS alert such as a refused client certificate) is in
        // the source chain, not in the message.
        tracing::warn!(
            code = ?status.code(),
            error = %crate::error::chain(status),
            "upstream broke the gRPC protocol"
        );
        return GatewayError::bad_upstream_reply(format!(
            "upstream is not answering gRPC: {}",
            status.message()
        ));
    }
    GatewayError::upstream_status(status)
}

fn source_chain<'a>(
    status: &'a tonic::Status,
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(status), |e| e.source())
}

fn source_of<E: std::error::Error + 'static>(status: &tonic::Status) -> Option<&E> {
    source_chain(status).find_map(|e| e.downcast_ref::<E>())
}
