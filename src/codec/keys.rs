//! The key-level rules of a JSON request object, checked the way pbjson's generated code
//! checks them, so that the dynamic codec refuses the same inputs with the same words: an
//! unknown field (`unknown field `x`, expected one of …`, listing proto then json names as
//! pbjson does), a field given twice under its two names, and a second member of a oneof.
//! prost-reflect alone would accept the last two. Values are not checked here: the
//! deserializer does that. It also knows pbjson's field order, which the dynamic codec
//! prints in.

use std::collections::HashSet;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

/// The first key-level problem of `object` read as a `message`, in pbjson's words.
pub fn check(message: &MessageDescriptor, object: &Map<String, Value>) -> Option<String> {
    let mut seen: HashSet<u32> = HashSet::new();
    let mut oneofs_set: HashSet<String> = HashSet::new();
    for (key, value) in object {
        let Some(field) = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
        else {
            return Some(unknown_field(key, message));
        };
        if !seen.insert(field.number()) {
            return Some(duplicate_field(&field));
        }
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic())
            && !value.is_null()
            && !oneofs_set.insert(oneof.full_name().to_string())
        {
            return Some(duplicate_field(&field));
        }
        if let Some(problem) = check_value(&field, value) {
            return Some(problem);
        }
    }
    None
}

/// Descends into the messages a field holds (not the well-known types, whose JSON forms are
/// not objects of fields).
fn check_value(field: &FieldDescriptor, value: &Value) -> Option<String> {
    let Kind::Message(message) = field.kind() else {
        return None;
    };
    if field.is_map() {
        let value_field = message.map_entry_value_field();
        let Kind::Message(inner) = value_field.kind() else {
            return None;
        };
        return value.as_object()?.values().find_map(|v| nested(&inner, v));
    }
    if field.is_list() {
        return value.as_array()?.iter().find_map(|v| nested(&message, v));
    }
    nested(&message, value)
}

fn nested(message: &MessageDescriptor, value: &Value) -> Option<String> {
    if message.full_name().starts_with("google.protobuf.") {
        return None;
    }
    check(message, value.as_object()?)
}

/// serde's `unknown_field` message over pbjson's field list: the fields outside real
/// oneofs in declaration order, then each oneof's, each as its proto name and then its json
/// name when that differs.
fn unknown_field(key: &str, message: &MessageDescriptor) -> String {
    let mut names: Vec<String> = Vec::new();
    for field in pbjson_order(message) {
        names.push(field.name().to_string());
        if field.json_name() != field.name() {
            names.push(field.json_name().to_string());
        }
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{key}`, there are no fields"),
        [one] => format!("unknown field `{key}`, expected {one}"),
        [a, b] => format!("unknown field `{key}`, expected {a} or {b}"),
        all => format!("unknown field `{key}`, expected one of {}", all.join(", ")),
    }
}

/// The order in which pbjson lists and prints a message's fields: those outside real oneofs
/// in declaration order, then the members of each real oneof. (prost-reflect uses field
/// number order.)
pub fn pbjson_order(message: &MessageDescriptor) -> Vec<FieldDescriptor> {
    let in_oneof = |f: &FieldDescriptor| f.containing_oneof().is_some_and(|o| !o.is_synthetic());
    let declared = message
        .descriptor_proto()
        .field
        .iter()
        .filter_map(|f| message.get_field_by_name(f.name()));
    let mut order: Vec<FieldDescriptor> = declared.filter(|f| !in_oneof(f)).collect();
    for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
        order.extend(oneof.fields());
    }
    order
}

fn duplicate_field(field: &FieldDescriptor) -> String {
    format!("duplicate field `{}`", field.json_name())
}
