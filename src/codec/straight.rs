//! Which request messages may be decoded straight from the body bytes, without the
//! `serde_json::Value` tree the binder builds (`Codec::encode_body`). The tree costs about
//! 32 bytes per JSON value, so a 1 MiB body of small integers (`[0,0,…]`, half a million
//! values) took tens of MiB before the codec saw it; decoded straight, it takes the message's
//! own size.
//!
//! Decoding straight must answer exactly as the tree would. Any failure does not matter:
//! the caller then takes the tree path, which gives the usual error. What matters is a body
//! that the codec accepts but the binder refuses: a duplicate key. pbjson (the compiled
//! codec) refuses duplicate fields of a message itself, and the dynamic codec reads the keys
//! first (`keys::accepts`); but pbjson keeps the last entry of a duplicated map key and of a
//! `google.protobuf.Struct` member, and `keys::accepts` does not follow those objects. So a
//! message qualifies when no field at any depth is a map, `Struct`, `Value`, `ListValue` or
//! `Any`. Nor a float or a double: both libraries read `3.5e+38` for a float, or `"inf"`,
//! as infinity where proto3 JSON refuses them, so those bodies take the tree, whose values
//! the binder checks (`binding/values.rs`).

use std::collections::HashSet;

use prost_reflect::{Kind, MessageDescriptor};

/// Well-known message types whose JSON form holds objects with arbitrary keys.
const OPEN_OBJECTS: [&str; 4] = [
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Any",
];

/// Whether pbjson's own checks on `message` are as strict as the binder's.
pub fn decodes_straight(message: &MessageDescriptor) -> bool {
    let mut seen = HashSet::new();
    strict(message, &mut seen)
}

fn strict(message: &MessageDescriptor, seen: &mut HashSet<String>) -> bool {
    if OPEN_OBJECTS.contains(&message.full_name()) {
        return false;
    }
    // A recursive type was already checked (or is being checked) on the way here.
    if !seen.insert(message.full_name().to_string()) {
        return true;
    }
    message.fields().all(|field| {
        if field.is_map() {
            return false;
        }
        match field.kind() {
            Kind::Message(inner) => strict(&inner, seen),
            Kind::Float | Kind::Double => false,
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str) -> MessageDescriptor {
        let pool = prost_reflect::DescriptorPool::decode(crate::pb::DESCRIPTOR_SET).expect("descriptors");
        pool.get_message_by_name(name).expect("message")
    }

    #[test]
    fn plain_messages_qualify() {
        assert!(decodes_straight(&message("UserReq")));
        assert!(decodes_straight(&message("UserReply")));
    }

    // google.protobuf.Struct is in the built-in descriptor set only with the test protos.
    #[cfg(feature = "test-protos")]
    #[test]
    fn open_objects_do_not_qualify() {
        assert!(!decodes_straight(&message("google.protobuf.Struct")));
    }
}
