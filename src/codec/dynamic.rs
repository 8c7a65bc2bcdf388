//! The dynamic codec: methods learned at run time (a descriptor file, `.proto` files), with
//! prost-reflect's `DynamicMessage` for both the JSON and the bytes. Same options as the
//! compiled path: every field emitted, 64-bit integers as strings, enums as names (numbers
//! unknown to the descriptors as numbers), unknown JSON fields rejected.

use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};

use super::{Codec, request_error};
use crate::error::GatewayError;
use crate::grpc;

/// prost-reflect for one method's request and reply descriptors.
pub struct Dynamic {
    input: MessageDescriptor,
    output: MessageDescriptor,
}

/// The dynamic codec of `method`.
pub fn codec(method: &MethodDescriptor) -> Arc<dyn Codec> {
    Arc::new(Dynamic {
        input: method.input(),
        output: method.output(),
    })
}

impl Codec for Dynamic {
    fn encode_request(&self, request: &serde_json::Value) -> Result<Bytes, GatewayError> {
        let options = DeserializeOptions::new().deny_unknown_fields(true);
        let message = DynamicMessage::deserialize_with_options(self.input.clone(), request, &options)
            .map_err(|e| request_error(&e))?;
        Ok(grpc::frame(&message))
    }

    fn decode_reply(&self, reply: Bytes) -> Result<Vec<u8>, GatewayError> {
        let message = DynamicMessage::decode(self.output.clone(), reply)
            .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))?;
        let options = SerializeOptions::new()
            .skip_default_fields(false)
            .stringify_64_bit_integers(true);
        let mut json = Vec::new();
        message
            .serialize_with_options(&mut serde_json::Serializer::new(&mut json), &options)
            .map_err(|e| {
                GatewayError::bad_upstream_reply(format!("reply cannot be rendered as JSON: {e}"))
            })?;
        Ok(json)
    }
}
