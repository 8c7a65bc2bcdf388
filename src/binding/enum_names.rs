//! Enum names read with their prefix stripped (`strip_enum_prefix`, `codec/enum_prefix.rs`):
//! on such a route a client may send `PENDING` for `ORDER_STATUS_PENDING`, in the body, the
//! path or the query. The body is walked once, before its values are checked, and every
//! stripped name is written back in full, so the checks and both codecs see only the names
//! the descriptors know. Names that are neither stay as they are, for the usual 400.

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::codec::enum_prefix;

/// Every stripped enum name in `object`, read as `message`, written in full.
pub(super) fn unstrip_message(object: &mut Map<String, Value>, message: &MessageDescriptor) {
    if message.full_name().starts_with("google.protobuf.") {
        return;
    }
    for (key, value) in object.iter_mut() {
        let field = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key));
        if let Some(field) = field {
            unstrip_field(value, &field);
        }
    }
}

/// Every stripped enum name in `value`, read as `field`, written in full.
pub(super) fn unstrip_field(value: &mut Value, field: &FieldDescriptor) {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => {
            let Value::Object(map) = value else { return };
            let values = entry.map_entry_value_field();
            for item in map.values_mut() {
                unstrip_value(item, &values.kind());
            }
        }
        kind => match value {
            Value::Array(items) if field.is_list() => items.iter_mut().for_each(|v| unstrip_value(v, &kind)),
            single => unstrip_value(single, &kind),
        },
    }
}

fn unstrip_value(value: &mut Value, kind: &Kind) {
    match (kind, value) {
        (Kind::Enum(enumeration), Value::String(name)) => {
            if let Some(full) = enum_prefix::unstrip(enumeration, name) {
                *name = full;
            }
        }
        (Kind::Message(message), Value::Object(object)) => unstrip_message(object, message),
        _ => {}
    }
}

/// One enum name from the path or the query, in full when it was stripped.
pub(super) fn unstrip_text<'t>(field: &FieldDescriptor, text: &'t str) -> std::borrow::Cow<'t, str> {
    match field.kind() {
        Kind::Enum(enumeration) => unstrip_name(&enumeration, text),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

fn unstrip_name<'t>(enumeration: &EnumDescriptor, text: &'t str) -> std::borrow::Cow<'t, str> {
    match enum_prefix::unstrip(enumeration, text) {
        Some(full) => std::borrow::Cow::Owned(full),
        None => std::borrow::Cow::Borrowed(text),
    }
}
