//! The values of a JSON body, checked against the message before either codec reads them,
//! by the rules of the proto3 JSON mapping as the reference implementations (Go protojson,
//! C++, upb) apply them, and put in the one form both codecs read alike. A value that does
//! not fit is a 400 that names the field by its JSON path (`location.latitude`,
//! `points[3].latitude`, `labels["k"]`) in the words the query uses
//! (`invalid value "north" for field latitude: not an int32`); no library's message reaches
//! the client. Keys are not checked here (`codec/keys.rs` does), and `null`s are already gone
//! where they mean the default (`nulls.rs`).
//!
//! What it puts in the one form: a float rounded to float32 before its range check; an
//! integer written `1.0`, `1e2` or `"1e2"` as the integer; a number given as a string as
//! that number. Enum numbers stay as they are: proto3 enums are open, and any int32 is one.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::routing::field_path;

/// One step of a field's JSON path.
enum Step<'a> {
    Field(&'a str),
    Index(usize),
    Key(&'a str),
}

/// The JSON path of the value being checked; only printed when a value is refused.
#[derive(Default)]
pub struct Path<'a>(Vec<Step<'a>>);

impl<'a> Path<'a> {
    /// A path that starts at `prefix` (the body field of a `body: "field"` rule).
    pub fn at(prefix: &'a str) -> Path<'a> {
        Path(if prefix.is_empty() {
            Vec::new()
        } else {
            vec![Step::Field(prefix)]
        })
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for step in &self.0 {
            match step {
                Step::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key(key) => out.push_str(&format!("[{}]", Value::from(*key))),
            }
        }
        out
    }
}

/// Checks every member of `object` read as `message`.
pub fn check_message<'a>(
    object: &'a mut Map<String, Value>,
    message: &MessageDescriptor,
    path: &mut Path<'a>,
) -> Result<(), GatewayError> {
    for (key, value) in object.iter_mut() {
        // An unknown key is the codec's to refuse, by name.
        let Some(field) = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
        else {
            continue;
        };
        path.0.push(Step::Field(key.as_str()));
        check_field(value, &field, path)?;
        path.0.pop();
    }
    Ok(())
}

/// Checks the value of `field` (a list, a map or one value).
pub fn check_field<'a>(
    value: &'a mut Value,
    field: &FieldDescriptor,
    path: &mut Path<'a>,
) -> Result<(), GatewayError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Ok(());
        };
        let Value::Object(entries) = value else {
            return Err(refused(path, field, value, "not a JSON object (a map)"));
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        for (key, item) in entries.iter_mut() {
            path.0.push(Step::Key(key.as_str()));
            if let Err(why) = map_key(&key_field.kind(), key) {
                return Err(refused(path, field, &Value::from(key.as_str()), &why));
            }
            check_one(item, &value_field, field, path)?;
            path.0.pop();
        }
        return Ok(());
    }
    if field.is_list() {
        let Value::Array(items) = value else {
            return Err(refused(path, field, value, "not a JSON array (a repeated field)"));
        };
        for (i, item) in items.iter_mut().enumerate() {
            path.0.push(Step::Index(i));
            check_one(item, field, field, path)?;
            path.0.pop();
        }
        return Ok(());
    }
    check_one(value, field, field, path)
}

/// One value of `typed`'s type (an element, when the field is repeated; a map's value
/// field), refused in the name of `field`.
fn check_one<'a>(
    value: &'a mut Value,
    typed: &FieldDescriptor,
    field: &FieldDescriptor,
    path: &mut Path<'a>,
) -> Result<(), GatewayError> {
    let kind = typed.kind();
    if let Kind::Message(message) = &kind {
        return check_message_value(value, field, message, path);
    }
    match scalar(&kind, value) {
        Ok(Some(normal)) => {
            *value = normal;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(why) => Err(refused(path, field, value, &why)),
    }
}

fn check_message_value<'a>(
    value: &'a mut Value,
    field: &FieldDescriptor,
    message: &MessageDescriptor,
    path: &mut Path<'a>,
) -> Result<(), GatewayError> {
    let name = message.full_name();
    if !name.starts_with("google.protobuf.") {
        return match value {
            Value::Object(object) => check_message(object, message, path),
            other => Err(refused(
                path,
                field,
                other,
                &format!("not a JSON object ({name})"),
            )),
        };
    }
    // The wrappers read as their one value; the other well-known types have their own forms,
    // which the codecs read (Struct, Value, ListValue and Any hold anything).
    let scalar_of_wrapper = match name {
        "google.protobuf.DoubleValue" => Some(Kind::Double),
        "google.protobuf.FloatValue" => Some(Kind::Float),
        "google.protobuf.Int64Value" => Some(Kind::Int64),
        "google.protobuf.UInt64Value" => Some(Kind::Uint64),
        "google.protobuf.Int32Value" => Some(Kind::Int32),
        "google.protobuf.UInt32Value" => Some(Kind::Uint32),
        "google.protobuf.BoolValue" => Some(Kind::Bool),
        "google.protobuf.StringValue" => Some(Kind::String),
        "google.protobuf.BytesValue" => Some(Kind::Bytes),
        _ => None,
    };
    if name == "google.protobuf.Any" {
        return match value {
            Value::Object(object) => check_any(object, message, path),
            _ => Ok(()),
        };
    }
    let outcome = match (scalar_of_wrapper, name) {
        (Some(kind), _) => scalar(&kind, value),
        (None, "google.protobuf.Timestamp" | "google.protobuf.Duration") => match value {
            Value::String(_) => Ok(None),
            _ => Err(format!("not a string ({name})")),
        },
        _ => Ok(None),
    };
    match outcome {
        Ok(Some(normal)) => {
            *value = normal;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(why) => Err(refused(path, field, value, &why)),
    }
}

/// The message packed in an `Any`, found by its `@type` among the schema's messages (the
/// codec refuses a type it does not know). A well-known type sits under `value`; every
/// other message's fields sit beside `@type`. An `Empty` without `value` is taken as
/// `"value": {}`: Python's json_format writes it so, where Go and C++ write the member.
fn check_any<'a>(
    object: &'a mut Map<String, Value>,
    any: &MessageDescriptor,
    path: &mut Path<'a>,
) -> Result<(), GatewayError> {
    let Some(packed) = object
        .get("@type")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit('/').next())
        .and_then(|name| any.parent_pool().get_message_by_name(name))
    else {
        return Ok(());
    };
    if !packed.full_name().starts_with("google.protobuf.") {
        // `@type` is no field of the packed message: skipped, as unknown keys are.
        return check_message(object, &packed, path);
    }
    if packed.full_name() == "google.protobuf.Empty" && !object.contains_key("value") {
        object.insert("value".to_string(), Value::Object(Map::new()));
    }
    let Some((key, inner)) = object.iter_mut().find(|(key, _)| *key == "value") else {
        return Ok(());
    };
    // The field only names the value in errors; its kind is the packed type.
    let Some(named) = any.get_field_by_name("value") else {
        return Ok(());
    };
    path.0.push(Step::Field(key.as_str()));
    check_message_value(inner, &named, &packed, path)?;
    path.0.pop();
    Ok(())
}

/// Checks one scalar; `Some` is the form to hand on instead, `None` keeps the value.
fn scalar(kind: &Kind, value: &Value) -> Result<Option<Value>, String> {
    match kind {
        Kind::Double | Kind::Float => {
            let single = matches!(kind, Kind::Float);
            match value {
                // float_roundtrip (Cargo.toml) already read it to the nearest double.
                Value::Number(n) => match n.as_f64() {
                    Some(v) if single => field_path::finite(v, true).map(Some),
                    Some(_) => Ok(None),
                    None => Err(not(kind)),
                },
                Value::String(text) => field_path::float(text, single).map(Some),
                _ => Err(not(kind)),
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            int(value, i128::from(i32::MIN), i128::from(i32::MAX), kind)
        }
        Kind::Uint32 | Kind::Fixed32 => int(value, 0, i128::from(u32::MAX), kind),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            int(value, i128::from(i64::MIN), i128::from(i64::MAX), kind)
        }
        Kind::Uint64 | Kind::Fixed64 => int(value, 0, i128::from(u64::MAX), kind),
        Kind::Bool => match value {
            Value::Bool(_) => Ok(None),
            _ => Err(not(kind)),
        },
        Kind::String => match value {
            Value::String(_) => Ok(None),
            _ => Err(not(kind)),
        },
        Kind::Bytes => match value {
            Value::String(text) if field_path::is_base64(text) => Ok(None),
            _ => Err(not(kind)),
        },
        Kind::Enum(enum_type) => match value {
            Value::String(name) if enum_type.get_value_by_name(name).is_some() => Ok(None),
            Value::Number(_) => match int(value, i128::from(i32::MIN), i128::from(i32::MAX), &Kind::Int32) {
                Ok(normal) => Ok(normal),
                Err(_) => Err(field_path::not_an_enum(enum_type)),
            },
            // google.protobuf.NullValue's one value.
            Value::Null if enum_type.full_name() == "google.protobuf.NullValue" => Ok(None),
            _ => Err(field_path::not_an_enum(enum_type)),
        },
        Kind::Message(_) => Ok(None),
    }
}

/// An integer of the range `min..=max`: a JSON integer, an integral number (`1.0`, `1e2`)
/// or a string of either. What both codecs would not read alike is handed on as an integer.
fn int(value: &Value, min: i128, max: i128, kind: &Kind) -> Result<Option<Value>, String> {
    let range = || format!("out of range for {}", name(kind));
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)) {
                return if (min..=max).contains(&v) {
                    Ok(None)
                } else {
                    Err(range())
                };
            }
            let v = n.as_f64().ok_or_else(|| not(kind))?;
            integral(v, min, max, kind).map(Some)
        }
        Value::String(text) => {
            if let Ok(v) = text.parse::<i128>() {
                return if (min..=max).contains(&v) {
                    Ok(None)
                } else {
                    Err(range())
                };
            }
            // `"1e2"` and `"1.0"`: Go and upb read an integral number in a string too.
            if text
                .bytes()
                .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
            {
                return Err(not(kind));
            }
            let v: f64 = text.parse().map_err(|_| not(kind))?;
            integral(v, min, max, kind).map(Some)
        }
        _ => Err(not(kind)),
    }
}

fn integral(v: f64, min: i128, max: i128, kind: &Kind) -> Result<Value, String> {
    if v.fract() != 0.0 || !v.is_finite() {
        return Err(not(kind));
    }
    // Exact for every integral double in the range checked next.
    #[allow(clippy::cast_possible_truncation)]
    let wide = v as i128;
    if !(min..=max).contains(&wide) {
        return Err(format!("out of range for {}", name(kind)));
    }
    Ok(match i64::try_from(wide) {
        Ok(signed) => Value::from(signed),
        Err(_) => Value::from(u64::try_from(wide).map_err(|_| not(kind))?),
    })
}

/// A map key (always a JSON string) of the key field's kind.
fn map_key(kind: &Kind, key: &str) -> Result<(), String> {
    let fits = match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => key.parse::<i32>().is_ok(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => key.parse::<i64>().is_ok(),
        Kind::Uint32 | Kind::Fixed32 => key.parse::<u32>().is_ok(),
        Kind::Uint64 | Kind::Fixed64 => key.parse::<u64>().is_ok(),
        Kind::Bool => key == "true" || key == "false",
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("not a map key of type {}", name(kind)))
    }
}

fn name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Sint32 => "sint32",
        Kind::Sfixed32 => "sfixed32",
        Kind::Int64 => "int64",
        Kind::Sint64 => "sint64",
        Kind::Sfixed64 => "sfixed64",
        Kind::Uint32 => "uint32",
        Kind::Fixed32 => "fixed32",
        Kind::Uint64 => "uint64",
        Kind::Fixed64 => "fixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Enum(_) => "enum",
        Kind::Message(_) => "message",
    }
}

/// The query's words for a kind: "not an int32", "not a bool (true or false)".
fn not(kind: &Kind) -> String {
    match kind {
        Kind::Bool => "not a bool (true or false)".to_string(),
        Kind::Bytes => "not base64".to_string(),
        Kind::Int32 | Kind::Int64 => format!("not an {}", name(kind)),
        other => format!("not a {}", name(other)),
    }
}

/// The 400 for a refused value at `path`.
fn refused(path: &Path<'_>, field: &FieldDescriptor, value: &Value, why: &str) -> GatewayError {
    let mut shown = value.to_string();
    if shown.len() > 64 {
        let mut cut = 60;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    GatewayError::bad_field(
        &path.render(),
        format!("invalid value {shown} for field {}: {why}", field.json_name()),
    )
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
