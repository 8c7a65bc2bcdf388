//! The compiled codec: the protos built into the binary, with pbjson's serde impls for the
//! JSON and prost for the bytes. `build.rs` writes one [`Factory`] per RPC (`COMPILED`, a
//! table of data plus one monomorphised constructor each); every branch is here.
//!
//! pbjson departs from the proto3 JSON mapping in three places: it reads and prints `Any` as
//! `{typeUrl, value}` instead of `@type` and the packed message's fields, prints a NaN or an
//! infinity as `null` instead of `"NaN"`/`"Infinity"`, and reads a `null` `Value` as unset.
//! Types that can meet these go through the dynamic codec's descriptors instead, so that
//! both codecs answer the spec's form, byte for byte; the seed's and most types never do
//! and keep the fast path. The same fallback prints an enum number that the gateway's
//! descriptors do not know (a value added upstream later) as a number.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::{Kind, MessageDescriptor, MethodDescriptor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dynamic::{self, Output, any_message};
use super::selection::{Selection, to_json};
use super::{Codec, ReplyForm};
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

/// pbjson for request type `I` and reply type `O`, with the dynamic codec where pbjson is
/// off the spec.
struct Compiled<I, O> {
    input: MessageDescriptor,
    /// The request holds an `Any` or a `Value`: read through the descriptors.
    input_by_descriptor: bool,
    output: Output,
    /// The reply holds an `Any`: printed through the descriptors.
    output_any: bool,
    /// The reply holds floats, which pbjson prints as `null` when they are not finite.
    output_floats: bool,
    /// Whether a body may be decoded straight into `I` (`straight.rs`).
    straight: bool,
    types: PhantomData<fn(I) -> O>,
}

/// The [`Factory`] of the RPC from `I` to `O`, monomorphised per RPC by `build.rs`.
pub fn codec<I, O>(method: &MethodDescriptor) -> Arc<dyn Codec>
where
    I: prost::Message + DeserializeOwned + 'static,
    O: prost::Message + Default + Serialize + 'static,
{
    let input = method.input();
    let output = method.output();
    Arc::new(Compiled::<I, O> {
        straight: super::straight::decodes_straight(&input),
        input_by_descriptor: holds(&input, &["google.protobuf.Any", "google.protobuf.Value"]),
        output_any: holds(&output, &["google.protobuf.Any"]),
        output_floats: any_message(&output, &mut |m| {
            m.fields().any(|f| matches!(f.kind(), Kind::Double | Kind::Float))
        }),
        output: Output::new(output),
        input,
        types: PhantomData,
    })
}

/// Whether a field of `message`, or of a message it holds, is one of `types`.
fn holds(message: &MessageDescriptor, types: &[&str]) -> bool {
    any_message(message, &mut |m| {
        m.fields()
            .any(|f| matches!(f.kind(), Kind::Message(t) if types.contains(&t.full_name())))
    })
}

impl<I, O> Codec for Compiled<I, O>
where
    I: prost::Message + DeserializeOwned + 'static,
    O: prost::Message + Default + Serialize + 'static,
{
    fn encode_request(&self, request: &serde_json::Value) -> Result<Bytes, GatewayError> {
        if self.input_by_descriptor {
            return dynamic::encode(&self.input, request);
        }
        match I::deserialize(request) {
            Ok(message) => Ok(grpc::frame(&message)),
            // The dynamic codec words the refusal, so that both codecs answer one input with
            // one message (pbjson's can be as bare as "data did not match any variant"). What
            // it takes and pbjson does not is what pbjson gets wrong: an enum number that the
            // descriptors do not name (proto3 enums are open) or an integral `1e2`; the
            // binder has checked every value already (`binding/values.rs`), so its bytes go.
            Err(err) => match dynamic::encode(&self.input, request) {
                Err(refused) => Err(refused),
                Ok(framed) => {
                    tracing::debug!(error = %err, "request encoded through descriptors");
                    Ok(framed)
                }
            },
        }
    }

    fn encode_body(&self, body: &[u8]) -> Option<Bytes> {
        if !self.straight {
            return None;
        }
        let message: I = serde_json::from_slice(body).ok()?;
        Some(grpc::frame(&message))
    }

    fn decode_reply_shaped(
        &self,
        reply: Bytes,
        form: ReplyForm,
        selection: Option<&Selection>,
    ) -> Result<Vec<u8>, GatewayError> {
        // pbjson prints one form only; the descriptors print the same JSON in any form.
        self.output.render_with(reply, form, selection)
    }

    fn decode_reply(&self, reply: Bytes, selection: Option<&Selection>) -> Result<Vec<u8>, GatewayError> {
        if self.output_any {
            return self.output.render(reply, selection);
        }
        let message = O::decode(reply.clone())
            .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))?;
        match to_json(&message, selection) {
            // A `null` where floats may be is a non-finite float as pbjson prints it (or a
            // null elsewhere, which the descriptors print the same anyway).
            Ok(json) if !(self.output_floats && contains(&json, b"null")) => Ok(json),
            Ok(_) => self.output.render(reply, selection),
            Err(err) => {
                tracing::debug!(error = %err, "reply rendered through descriptors");
                self.output.render(reply, selection)
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
