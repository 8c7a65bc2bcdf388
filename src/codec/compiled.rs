//! The compiled codec: the protos built into the binary, with pbjson's serde impls for the
//! JSON and prost for the bytes. `build.rs` writes one [`Factory`] per RPC (`COMPILED`, a
//! table of data plus one monomorphised constructor each); every branch is here.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Codec, request_error};
use crate::error::GatewayError;
use crate::grpc;

/// Makes the codec of one compiled RPC for its method descriptor.
pub type Factory = fn(&MethodDescriptor) -> Arc<dyn Codec>;

include!(concat!(env!("OUT_DIR"), "/method_table.rs"));

/// The compiled codec of the method named `full_name` (`MyService.User`), if it is built in.
pub fn find(full_name: &str) -> Option<Factory> {
    COMPILED
        .iter()
        .find(|(name, _)| *name == full_name)
        .map(|(_, factory)| *factory)
}

/// The full names of every compiled method, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    COMPILED.iter().map(|(name, _)| *name)
}

/// pbjson for request type `I` and reply type `O`.
struct Compiled<I, O> {
    /// The reply's descriptor, to render what pbjson cannot (see `render`).
    output: MessageDescriptor,
    types: PhantomData<fn(I) -> O>,
}

/// The [`Factory`] of the RPC from `I` to `O`, monomorphised per RPC by `build.rs`.
pub fn codec<I, O>(method: &MethodDescriptor) -> Arc<dyn Codec>
where
    I: prost::Message + DeserializeOwned + 'static,
    O: prost::Message + Default + Serialize + 'static,
{
    Arc::new(Compiled::<I, O> {
        output: method.output(),
        types: PhantomData,
    })
}

impl<I, O> Codec for Compiled<I, O>
where
    I: prost::Message + DeserializeOwned + 'static,
    O: prost::Message + Default + Serialize + 'static,
{
    fn encode_request(&self, request: &serde_json::Value) -> Result<Bytes, GatewayError> {
        let message = I::deserialize(request).map_err(|e| request_error(&e))?;
        Ok(grpc::frame(&message))
    }

    fn decode_reply(&self, reply: Bytes) -> Result<Vec<u8>, GatewayError> {
        let message = O::decode(reply)
            .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))?;
        render(&message, &self.output)
    }
}

/// A reply message as proto3 JSON. pbjson cannot print an enum number that the gateway's
/// descriptors do not know (a value added upstream after the gateway was built), and a
/// successful reply must not become an error for that: such a message is rendered again
/// through prost-reflect, which prints the unknown number as a number, as the proto3 JSON
/// mapping allows.
fn render<O: prost::Message + Serialize>(
    message: &O,
    output: &MessageDescriptor,
) -> Result<Vec<u8>, GatewayError> {
    let pbjson_error = match serde_json::to_vec(message) {
        Ok(json) => return Ok(json),
        Err(err) => err,
    };
    let cannot =
        |why: String| GatewayError::bad_upstream_reply(format!("reply cannot be rendered as JSON: {why}"));
    let dynamic = prost_reflect::DynamicMessage::decode(output.clone(), message.encode_to_vec().as_slice())
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
