//! The printed JSON tree of a reply, written again where prost-reflect's printing is not
//! the gateway's: pbjson's field order, float32s in their shortest form, the spec's strings
//! for non-finite wrapped floats, and the output options (`ReplyForm`: proto names, `null`
//! for unset messages, enum prefixes stripped). The dynamic codec's `Output` calls it, and
//! so, through it, the compiled codec for every form but the default one.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage};
use serde_json::Value;

use super::dynamic::is_well_known;
use super::{ReplyForm, enum_prefix, keys};

/// prost-reflect prints a `FloatValue` or `DoubleValue` that holds NaN or an infinity as
/// `null` (a bare float would be `"NaN"`); this writes the spec's string in its place, read
/// from the message beside its JSON.
pub(super) fn wrapped_floats(value: &mut Value, message: &DynamicMessage) {
    let Value::Object(object) = value else {
        return;
    };
    for (field, field_value) in message.fields() {
        let Some(member) = object.get_mut(field.json_name()) else {
            continue;
        };
        match field_value {
            prost_reflect::Value::List(items) => {
                if let Value::Array(json) = member {
                    json.iter_mut().zip(items).for_each(|(j, v)| wrapped_float(j, v));
                }
            }
            prost_reflect::Value::Map(map) => {
                if let Value::Object(json) = member {
                    for (key, v) in map {
                        let key = match key {
                            prost_reflect::MapKey::Bool(b) => b.to_string(),
                            prost_reflect::MapKey::I32(n) => n.to_string(),
                            prost_reflect::MapKey::I64(n) => n.to_string(),
                            prost_reflect::MapKey::U32(n) => n.to_string(),
                            prost_reflect::MapKey::U64(n) => n.to_string(),
                            prost_reflect::MapKey::String(s) => s.clone(),
                        };
                        if let Some(j) = json.get_mut(&key) {
                            wrapped_float(j, v);
                        }
                    }
                }
            }
            single => wrapped_float(member, single),
        }
    }
}

fn wrapped_float(json: &mut Value, value: &prost_reflect::Value) {
    let prost_reflect::Value::Message(inner) = value else {
        return;
    };
    match inner.descriptor().full_name() {
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" if json.is_null() => {
            let number = match inner.get_field_by_number(1).as_deref() {
                Some(prost_reflect::Value::F32(x)) => f64::from(*x),
                Some(prost_reflect::Value::F64(x)) => *x,
                _ => 0.0,
            };
            let special = match number {
                n if n.is_nan() => "NaN",
                n if n > 0.0 => "Infinity",
                _ => "-Infinity",
            };
            *json = Value::String(special.to_string());
        }
        "google.protobuf.Any" => wrapped_in_any(json, inner),
        name if name.starts_with("google.protobuf.") => {}
        _ => wrapped_floats(json, inner),
    }
}

/// The message packed in an `Any`, decoded by its type URL, beside the `Any`'s JSON (its
/// fields beside `@type`, or a well-known type's `value`).
fn wrapped_in_any(json: &mut Value, any: &DynamicMessage) {
    let url = any.get_field_by_number(1);
    let bytes = any.get_field_by_number(2);
    let (Some(prost_reflect::Value::String(url)), Some(prost_reflect::Value::Bytes(bytes))) =
        (url.as_deref(), bytes.as_deref())
    else {
        return;
    };
    let Some(packed) = url
        .rsplit('/')
        .next()
        .and_then(|name| any.descriptor().parent_pool().get_message_by_name(name))
    else {
        return;
    };
    let Ok(message) = DynamicMessage::decode(packed.clone(), bytes.clone()) else {
        return;
    };
    if is_well_known(&packed) {
        if let Some(inner) = json.get_mut("value") {
            wrapped_float(inner, &prost_reflect::Value::Message(message));
        }
        return;
    }
    wrapped_floats(json, &message);
}

/// Puts the members of every object that is a message into pbjson's field order, writes
/// every float again in its shortest float32 form (the tree holds it widened to a double,
/// which would print as `3.3999999521443642e+38` where Go, C++ and Python print `3.4e+38`),
/// and applies `form`'s options: keys renamed to proto names, unset singular messages
/// written as `null`, enum prefixes stripped.
pub(super) fn reorder(value: &mut Value, message: &MessageDescriptor, form: ReplyForm) {
    if message.full_name() == "google.protobuf.FloatValue" {
        shortest_float(value);
        return;
    }
    if message.full_name() == "google.protobuf.Any" {
        reorder_any(value, message, form);
        return;
    }
    if is_well_known(message) {
        return;
    }
    let Value::Object(object) = value else {
        return;
    };
    let mut ordered = serde_json::Map::with_capacity(object.len());
    for field in keys::pbjson_order(message) {
        let mut member = match object.remove(field.json_name()) {
            Some(member) => member,
            None if form.emit_unpopulated && prints_null_when_unset(&field) => Value::Null,
            None => continue,
        };
        if let Kind::Message(inner) = field.kind() {
            if field.is_map() {
                let values = inner.map_entry_value_field().kind();
                if let Value::Object(map) = &mut member {
                    match values {
                        Kind::Message(values) => map.values_mut().for_each(|v| reorder(v, &values, form)),
                        Kind::Float => map.values_mut().for_each(shortest_float),
                        Kind::Enum(e) if strips(form) => {
                            let prefix = enum_prefix::prefix(&e);
                            map.values_mut().for_each(|v| strip_enum(v, &prefix));
                        }
                        _ => {}
                    }
                }
            } else if let Value::Array(items) = &mut member {
                items.iter_mut().for_each(|v| reorder(v, &inner, form));
            } else {
                reorder(&mut member, &inner, form);
            }
        } else if matches!(field.kind(), Kind::Float) {
            match &mut member {
                Value::Array(items) => items.iter_mut().for_each(shortest_float),
                single => shortest_float(single),
            }
        } else if let Kind::Enum(e) = field.kind()
            && strips(form)
        {
            strip_enum(&mut member, &enum_prefix::prefix(&e));
        }
        let key = if form.proto_names {
            field.name()
        } else {
            field.json_name()
        };
        ordered.insert(key.to_string(), member);
    }
    // Anything else (an extension) keeps its place at the end.
    ordered.append(object);
    *object = ordered;
}

/// Whether `emit_unpopulated` prints `field` as `null` when it is unset: a singular message
/// outside any oneof. Scalars, lists and maps print their defaults anyway; a oneof's members
/// and proto3 `optional` fields (a synthetic oneof) stay out, as protojson's
/// `EmitUnpopulated` leaves them.
fn prints_null_when_unset(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Message(_))
        && !field.is_list()
        && !field.is_map()
        && field.containing_oneof().is_none()
}

fn strips(form: ReplyForm) -> bool {
    form.strip_enum_prefix && !form.enum_numbers
}

/// An enum name (or a list of them) without `prefix`; numbers stay as they are.
fn strip_enum(value: &mut Value, prefix: &str) {
    match value {
        Value::String(name) => {
            let stripped = enum_prefix::strip(prefix, name);
            if stripped.len() != name.len() {
                *name = stripped.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip_enum(v, prefix)),
        _ => {}
    }
}

/// The message packed in an `Any`, found by its `@type`: its fields (after `@type`, which
/// stays first) or, for a well-known type, its `value`.
fn reorder_any(value: &mut Value, any: &MessageDescriptor, form: ReplyForm) {
    let Value::Object(object) = value else {
        return;
    };
    let Some(packed) = object
        .get("@type")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit('/').next())
        .and_then(|name| any.parent_pool().get_message_by_name(name))
    else {
        return;
    };
    if is_well_known(&packed) {
        if let Some(inner) = object.get_mut("value") {
            reorder(inner, &packed, form);
        }
        return;
    }
    let Some(type_url) = object.shift_remove("@type") else {
        return;
    };
    let mut fields = Value::Object(std::mem::take(object));
    reorder(&mut fields, &packed, form);
    object.insert("@type".to_string(), type_url);
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
}

/// A float32 held widened in a double, as the double nearest to its shortest decimal form,
/// which prints as that form (at most 9 digits, which a double always keeps).
fn shortest_float(value: &mut Value) {
    let Some(wide) = value.as_f64() else {
        return;
    };
    #[allow(clippy::cast_possible_truncation)]
    let single = wide as f32;
    if let Some(number) = format!("{single:e}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        *value = Value::Number(number);
    }
}
