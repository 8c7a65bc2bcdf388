//! proto3 JSON reads `null` as "the field's default", but pbjson rejects `null` for scalar
//! and enum fields. Before decoding, body members that are `null` are dropped, walking the
//! message descriptor, except where `null` is itself a value: `google.protobuf.Value` and
//! `google.protobuf.NullValue`. Unknown members are left for pbjson to reject by name.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

/// Drops default-meaning nulls from an object decoded as `message`.
pub fn drop_nulls(object: &mut Map<String, Value>, message: &MessageDescriptor) {
    object.retain(|key, value| !value.is_null() || field(message, key).is_none_or(|f| null_is_a_value(&f)));
    for (key, value) in object.iter_mut() {
        if let Some(field) = field(message, key) {
            drop_nulls_in_field(value, &field);
        }
    }
}

/// Drops default-meaning nulls inside the value of `field` (a message, list or map).
pub fn drop_nulls_in_field(value: &mut Value, field: &FieldDescriptor) {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return;
        };
        // `is_map` guarantees a map entry, which always has a value field.
        let value_field = entry.map_entry_value_field();
        if let Value::Object(entries) = value {
            entries.retain(|_, v| !v.is_null() || null_is_a_value(&value_field));
            for v in entries.values_mut() {
                drop_nulls_in_message_value(v, &value_field);
            }
        }
    } else if field.is_list() {
        if let Value::Array(items) = value {
            for item in items {
                drop_nulls_in_message_value(item, field);
            }
        }
    } else {
        drop_nulls_in_message_value(value, field);
    }
}

fn drop_nulls_in_message_value(value: &mut Value, field: &FieldDescriptor) {
    if let (Kind::Message(message), Value::Object(object)) = (field.kind(), value) {
        // Well-known types have their own JSON shapes (Struct, Any, wrappers): not fields.
        if !message.full_name().starts_with("google.protobuf.") {
            drop_nulls(object, &message);
        }
    }
}

fn field(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_json_name(key)
        .or_else(|| message.get_field_by_name(key))
}

fn null_is_a_value(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::Message(m) => m.full_name() == "google.protobuf.Value",
        Kind::Enum(e) => e.full_name() == "google.protobuf.NullValue",
        _ => false,
    }
}
