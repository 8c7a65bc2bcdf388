//! Forwarding of one unary call: bound JSON → typed request (pbjson) → framed bytes →
//! upstream (`grpc.rs`) → typed reply (prost) → JSON bytes (pbjson). Owns the deadline of
//! the whole exchange. It does not know routes, headers, HTTP statuses or the wire.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataMap;

use crate::error::GatewayError;
use crate::grpc::{self, Outgoing};
use crate::upstream::Connection;

/// Everything one call needs, already validated.
pub struct UnaryCall {
    pub connection: Arc<Connection>,
    pub grpc_path: &'static str,
    /// The request as one JSON object (path variables, query and body merged).
    pub request: Arc<serde_json::Value>,
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
        let Prepared {
            connection,
            outgoing,
            timeout,
            output,
        } = prepare::<I>(call)?;
        let (metadata, reply) = tokio::time::timeout(timeout, grpc::unary(&connection, outgoing))
            .await
            .map_err(|_| GatewayError::deadline_exceeded(timeout))??;
        let message = decode::<O>(reply)?;
        let json = render(&message, output.as_ref())?;
        Ok(UnaryReply { json, metadata })
    })
}

/// A call taken apart for the wire: the bound JSON decoded into the request type and
/// framed. Decoding happens before any I/O: a request that does not fit the message type
/// never reaches the upstream.
pub(crate) struct Prepared {
    pub connection: Arc<Connection>,
    pub outgoing: Outgoing,
    pub timeout: Duration,
    pub output: Option<prost_reflect::MessageDescriptor>,
}

pub(crate) fn prepare<I: prost::Message + DeserializeOwned>(
    call: UnaryCall,
) -> Result<Prepared, GatewayError> {
    let message = I::deserialize(&*call.request).map_err(|e| body_error(&e))?;
    Ok(Prepared {
        connection: call.connection,
        outgoing: Outgoing {
            path: call.grpc_path,
            metadata: call.metadata,
            timeout: call.timeout,
            body: grpc::frame(&message),
        },
        timeout: call.timeout,
        output: call.output,
    })
}

/// A reply message from its bytes; one that does not decode is the upstream's fault.
pub(crate) fn decode<O: prost::Message + Default>(bytes: bytes::Bytes) -> Result<O, GatewayError> {
    O::decode(bytes)
        .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))
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
