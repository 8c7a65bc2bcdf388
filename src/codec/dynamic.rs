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

use super::selection::{Selection, to_json};
use super::{Codec, ReplyForm, keys, request_error, tree};
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

    fn decode_reply(&self, reply: Bytes, selection: Option<&Selection>) -> Result<Vec<u8>, GatewayError> {
        self.output.render(reply, selection)
    }

    fn decode_reply_shaped(
        &self,
        reply: Bytes,
        form: ReplyForm,
        selection: Option<&Selection>,
    ) -> Result<Vec<u8>, GatewayError> {
        self.output.render_with(reply, form, selection)
    }
}

/// The bound request object as one framed `message`.
pub(super) fn encode(message: &MessageDescriptor, request: &Value) -> Result<Bytes, GatewayError> {
    if let Some(problem) = request.as_object().and_then(|o| keys::check(message, o)) {
        return Err(request_error(problem, message));
    }
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let decoded = DynamicMessage::deserialize_with_options(message.clone(), request, &options)
        .map_err(|e| request_error(e.to_string(), message))?;
    Ok(grpc::frame(&decoded))
}

/// How replies of one message type are printed.
pub(super) struct Output {
    descriptor: MessageDescriptor,
    /// Whether pbjson's field order differs from prost-reflect's anywhere in the message
    /// (a oneof, fields declared out of number order): then the printed JSON is reordered.
    reorder: bool,
    /// Whether the message can hold a `FloatValue` or `DoubleValue` (`wrapped_floats`).
    wrapped_floats: bool,
}

impl Output {
    pub(super) fn new(descriptor: MessageDescriptor) -> Output {
        // An `Any` goes through the tree too: prost-reflect prints the packed message's
        // floats widened to doubles, which `reorder` writes again.
        let reorder = any_message(&descriptor, &mut |m| {
            let order: Vec<u32> = keys::pbjson_order(m).iter().map(|f| f.number()).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            order != sorted || m.full_name() == "google.protobuf.Any"
        });
        let wrapped_floats = any_message(&descriptor, &mut |m| {
            m.fields().any(|f| {
                matches!(f.kind(), Kind::Message(t)
                    if matches!(t.full_name(), "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" | "google.protobuf.Any"))
            })
        });
        Output {
            descriptor,
            reorder,
            wrapped_floats,
        }
    }

    /// One reply message's bytes as proto3 JSON, cut to `selection`.
    pub(super) fn render(
        &self,
        reply: Bytes,
        selection: Option<&Selection>,
    ) -> Result<Vec<u8>, GatewayError> {
        self.render_with(reply, ReplyForm::default(), selection)
    }

    /// One reply message's bytes as proto3 JSON in `form`, cut to `selection`. prost-reflect
    /// prints the default form and enums as numbers straight; the other options, pbjson's
    /// field order and the float fixes are written on the JSON tree (`tree.rs`), and the
    /// selection applies when the tree is printed (its keys are the printed ones by then).
    pub(super) fn render_with(
        &self,
        reply: Bytes,
        form: ReplyForm,
        selection: Option<&Selection>,
    ) -> Result<Vec<u8>, GatewayError> {
        let message = DynamicMessage::decode(self.descriptor.clone(), reply)
            .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))?;
        let options = SerializeOptions::new()
            .skip_default_fields(false)
            .stringify_64_bit_integers(true)
            .use_enum_numbers(form.enum_numbers);
        let cannot = |e: &dyn std::fmt::Display| {
            GatewayError::bad_upstream_reply(format!("reply cannot be rendered as JSON: {e}"))
        };
        let straight = form
            == ReplyForm {
                enum_numbers: form.enum_numbers,
                ..ReplyForm::default()
            };
        if straight && !self.reorder {
            let json = to_json(&WithOptions(&message, &options), selection).map_err(|e| cannot(&e))?;
            if !(self.wrapped_floats && json.windows(4).any(|w| w == b"null")) {
                return Ok(json);
            }
        }
        let mut value = message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| cannot(&e))?;
        // Before any key is renamed: it finds members by their json names.
        if self.wrapped_floats {
            tree::wrapped_floats(&mut value, &message);
        }
        if self.reorder || !straight {
            tree::reorder(&mut value, &self.descriptor, form);
        }
        to_json(&value, selection).map_err(|e| cannot(&e))
    }
}

/// A message with prost-reflect's printing options, as one `Serialize` value.
struct WithOptions<'a>(&'a DynamicMessage, &'a SerializeOptions);

impl serde::Serialize for WithOptions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with_options(serializer, self.1)
    }
}

pub(super) fn is_well_known(message: &MessageDescriptor) -> bool {
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
