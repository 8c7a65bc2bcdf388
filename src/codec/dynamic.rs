//! The dynamic codec: methods learned at run time (server reflection, a descriptor file,
//! `.proto` files), with prost-reflect's `DynamicMessage` for both the JSON and the bytes.
//! It prints exactly what the compiled (pbjson) codec prints for the same message: every
//! field emitted, 64-bit integers as strings, enums as names (numbers unknown to the
//! descriptors as numbers), fields in pbjson's order; and refuses the same inputs
//! (`keys.rs` adds pbjson's key checks). Where pbjson departs from the proto3 JSON spec
//! (`Any`, non-finite floats, a `null` `Value`) this codec follows the spec, and the compiled
//! codec hands those types to it (`compiled.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use serde_json::Value;

use super::{Codec, keys, request_error};
use crate::error::GatewayError;
use crate::grpc;

/// prost-reflect for one method's request and reply descriptors.
pub struct Dynamic {
    input: MessageDescriptor,
    /// Whether a body may be decoded straight into the request (`straight.rs`), once
    /// `keys::accepts` has read it.
    straight: bool,
    output: Output,
}

/// The dynamic codec of `method`.
pub fn codec(method: &MethodDescriptor) -> Arc<dyn Codec> {
    let input = method.input();
    Arc::new(Dynamic {
        straight: super::straight::decodes_straight(&input),
        input,
        output: Output::new(method.output()),
    })
}

impl Codec for Dynamic {
    fn encode_request(&self, request: &Value) -> Result<Bytes, GatewayError> {
        encode(&self.input, request)
    }

    /// Two passes over the bytes, neither building a tree: the key rules (`keys::accepts`),
    /// which prost-reflect alone would not apply, then prost-reflect's own reading.
    fn encode_body(&self, body: &[u8]) -> Option<Bytes> {
        if !self.straight || !keys::accepts(&self.input, body) {
            return None;
        }
        let options = DeserializeOptions::new().deny_unknown_fields(true);
        let mut reader = serde_json::Deserializer::from_slice(body);
        let message =
            DynamicMessage::deserialize_with_options(self.input.clone(), &mut reader, &options).ok()?;
        reader.end().ok()?;
        Some(grpc::frame(&message))
    }

    fn decode_reply(&self, reply: Bytes) -> Result<Vec<u8>, GatewayError> {
        self.output.render(reply)
    }
}

/// The bound request object as one framed `message`.
pub(super) fn encode(message: &MessageDescriptor, request: &Value) -> Result<Bytes, GatewayError> {
    if let Some(problem) = request.as_object().and_then(|o| keys::check(message, o)) {
        return Err(request_error(problem));
    }
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(message.clone(), request, &options)
        .map_err(|e| request_error(e.to_string()))?;
    Ok(grpc::frame(&message))
}

/// How replies of one message type are printed.
pub(super) struct Output {
    descriptor: MessageDescriptor,
    /// Whether pbjson's field order differs from prost-reflect's anywhere in the message
    /// (a oneof, fields declared out of number order): then the printed JSON is reordered.
    reorder: bool,
}

impl Output {
    pub(super) fn new(descriptor: MessageDescriptor) -> Output {
        let reorder = any_message(&descriptor, &mut |m| {
            let order: Vec<u32> = keys::pbjson_order(m).iter().map(|f| f.number()).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            order != sorted
        });
        Output { descriptor, reorder }
    }

    /// One reply message's bytes as proto3 JSON.
    pub(super) fn render(&self, reply: Bytes) -> Result<Vec<u8>, GatewayError> {
        let message = DynamicMessage::decode(self.descriptor.clone(), reply)
            .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))?;
        let options = SerializeOptions::new()
            .skip_default_fields(false)
            .stringify_64_bit_integers(true);
        let cannot = |e: &dyn std::fmt::Display| {
            GatewayError::bad_upstream_reply(format!("reply cannot be rendered as JSON: {e}"))
        };
        if !self.reorder {
            let mut json = Vec::new();
            message
                .serialize_with_options(&mut serde_json::Serializer::new(&mut json), &options)
                .map_err(|e| cannot(&e))?;
            return Ok(json);
        }
        let mut value = message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| cannot(&e))?;
        reorder(&mut value, &self.descriptor);
        serde_json::to_vec(&value).map_err(|e| cannot(&e))
    }
}

/// Puts the members of every object that is a message into pbjson's field order.
fn reorder(value: &mut Value, message: &MessageDescriptor) {
    if is_well_known(message) {
        return;
    }
    let Value::Object(object) = value else {
        return;
    };
    let mut ordered = serde_json::Map::with_capacity(object.len());
    for field in keys::pbjson_order(message) {
        let Some(mut member) = object.remove(field.json_name()) else {
            continue;
        };
        if let Kind::Message(inner) = field.kind() {
            if field.is_map() {
                if let (Kind::Message(values), Value::Object(map)) =
                    (inner.map_entry_value_field().kind(), &mut member)
                {
                    map.values_mut().for_each(|v| reorder(v, &values));
                }
            } else if let Value::Array(items) = &mut member {
                items.iter_mut().for_each(|v| reorder(v, &inner));
            } else {
                reorder(&mut member, &inner);
            }
        }
        ordered.insert(field.json_name().to_string(), member);
    }
    // Anything else (an extension) keeps its place at the end.
    ordered.append(object);
    *object = ordered;
}

fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

/// Whether `test` holds for `message` or any message reachable from its fields.
pub(super) fn any_message(
    message: &MessageDescriptor,
    test: &mut dyn FnMut(&MessageDescriptor) -> bool,
) -> bool {
    fn walk(
        message: &MessageDescriptor,
        test: &mut dyn FnMut(&MessageDescriptor) -> bool,
        seen: &mut HashSet<String>,
    ) -> bool {
        if !seen.insert(message.full_name().to_string()) {
            return false;
        }
        if test(message) {
            return true;
        }
        message.fields().any(|f| match f.kind() {
            Kind::Message(inner) => walk(&inner, test, seen),
            _ => false,
        })
    }
    walk(message, test, &mut HashSet::new())
}
