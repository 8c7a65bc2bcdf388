//! Field paths (`a.b.c`) resolved against message descriptors, and the conversion of one
//! text value (from a path variable or a query parameter) into the JSON value that pbjson
//! accepts for that field. Both json names and proto names resolve. Errors name the field and
//! say what was expected: `invalid value "abc" for field userIDs: not an int32`.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Number, Value};

/// A resolved path of fields from a request message down to a leaf.
#[derive(Debug, Clone)]
pub struct FieldPath {
    pub fields: Vec<FieldDescriptor>,
}

impl FieldPath {
    /// Resolves `names` (json or proto names) from `message`. Every step but the last must be
    /// a singular message field.
    pub fn resolve<S: AsRef<str>>(message: &MessageDescriptor, names: &[S]) -> Result<FieldPath, String> {
        let mut fields = Vec::with_capacity(names.len());
        let mut current = message.clone();
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let field = current
                .get_field_by_json_name(name)
                .or_else(|| current.get_field_by_name(name))
                .ok_or_else(|| format!("message {} has no field {name:?}", current.full_name()))?;
            if i + 1 < names.len() {
                match field.kind() {
                    Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                    _ => {
                        return Err(format!(
                            "field {} is not a singular message, so {name}.… cannot go through it",
                            field.name()
                        ));
                    }
                }
            }
            fields.push(field);
        }
        if fields.is_empty() {
            return Err("empty field path".to_string());
        }
        Ok(FieldPath { fields })
    }

    pub fn leaf(&self) -> &FieldDescriptor {
        // `resolve` never builds an empty path.
        &self.fields[self.fields.len() - 1]
    }

    /// The json names joined with dots: the path as clients see it in JSON.
    pub fn json_path(&self) -> String {
        self.fields
            .iter()
            .map(FieldDescriptor::json_name)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// True when one path is a prefix of the other: binding one would override the other.
    pub fn overlaps(&self, other: &FieldPath) -> bool {
        self.fields.iter().zip(&other.fields).all(|(a, b)| a == b)
    }
}

/// Whether a repeated field of this kind accepts `a,b,c` in one query value. Never strings
/// or bytes, where a comma can be data.
pub fn splits_commas(field: &FieldDescriptor) -> bool {
    field.is_list()
        && matches!(
            field.kind(),
            Kind::Double
                | Kind::Float
                | Kind::Int32
                | Kind::Int64
                | Kind::Uint32
                | Kind::Uint64
                | Kind::Sint32
                | Kind::Sint64
                | Kind::Fixed32
                | Kind::Fixed64
                | Kind::Sfixed32
                | Kind::Sfixed64
                | Kind::Bool
                | Kind::Enum(_)
        )
}

/// Converts text into the proto3 JSON form of one (non-repeated) value of `field`.
pub fn text_to_json(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let invalid = |why: &str| format!("invalid value {text:?} for field {}: {why}", field.json_name());
    match field.kind() {
        // Validated here, then handed on as JSON strings, which proto3 JSON accepts for every
        // integer: pbjson tries a string first and a number second, and a number costs it a
        // failed attempt (an error built and dropped) per value.
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => int::<i32>(text, "int32")
            .map(|v| Value::String(v.to_string()))
            .map_err(|w| invalid(&w)),
        Kind::Uint32 | Kind::Fixed32 => int::<u32>(text, "uint32")
            .map(|v| Value::String(v.to_string()))
            .map_err(|w| invalid(&w)),
        // 64-bit integers travel as JSON strings in proto3 JSON; validate here so the error
        // names the field instead of surfacing from deep inside pbjson.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => int::<i64>(text, "int64")
            .map(|v| Value::String(v.to_string()))
            .map_err(|w| invalid(&w)),
        Kind::Uint64 | Kind::Fixed64 => int::<u64>(text, "uint64")
            .map(|v| Value::String(v.to_string()))
            .map_err(|w| invalid(&w)),
        Kind::Double | Kind::Float => {
            float(text, matches!(field.kind(), Kind::Float)).map_err(|w| invalid(&w))
        }
        Kind::Bool => match text {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(invalid("not a bool (true or false)")),
        },
        Kind::String => Ok(Value::String(text.to_string())),
        Kind::Bytes => {
            use base64::Engine as _;
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE,
            ];
            let trimmed = text.trim_end_matches('=');
            let ok = engines.iter().any(|e| e.decode(text).is_ok())
                || base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(trimmed)
                    .is_ok()
                || base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(trimmed)
                    .is_ok();
            if ok {
                Ok(Value::String(text.to_string()))
            } else {
                Err(invalid("not base64"))
            }
        }
        Kind::Enum(enum_type) => {
            if enum_type.get_value_by_name(text).is_some() {
                return Ok(Value::String(text.to_string()));
            }
            match text.parse::<i32>() {
                Ok(n) if enum_type.get_value(n).is_some() => Ok(Value::from(n)),
                _ => {
                    let names: Vec<String> = enum_type.values().map(|v| v.name().to_string()).collect();
                    Err(invalid(&format!(
                        "not a value of {} (one of {})",
                        enum_type.name(),
                        names.join(", ")
                    )))
                }
            }
        }
        Kind::Message(message) => well_known_from_text(&message, text).ok_or_else(|| {
            invalid(&format!(
                "{} is a message; bind its fields with dotted names instead",
                message.full_name()
            ))
        }),
    }
}

/// Well-known types whose proto3 JSON form is a string or a scalar, so that a query value can
/// carry them. pbjson validates the string itself.
fn well_known_from_text(message: &MessageDescriptor, text: &str) -> Option<Value> {
    match message.full_name() {
        "google.protobuf.Timestamp"
        | "google.protobuf.Duration"
        | "google.protobuf.FieldMask"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Some(Value::String(text.to_string())),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => Some(Value::String(text.to_string())),
        "google.protobuf.Int32Value" => int::<i32>(text, "int32").ok().map(Value::from),
        "google.protobuf.UInt32Value" => int::<u32>(text, "uint32").ok().map(Value::from),
        "google.protobuf.BoolValue" => text.parse::<bool>().ok().map(Value::Bool),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => float(text, false).ok(),
        _ => None,
    }
}

fn int<T: TryFrom<i128> + std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    match text.parse::<i128>() {
        Ok(wide) => T::try_from(wide).map_err(|_| format!("out of range for {name}")),
        Err(_) => Err(format!("not an {name}")),
    }
}

fn float(text: &str, single: bool) -> Result<Value, String> {
    match text {
        "NaN" | "Infinity" | "-Infinity" => return Ok(Value::String(text.to_string())),
        _ => {}
    }
    let name = if single { "float" } else { "double" };
    let value: f64 = text.parse().map_err(|_| format!("not a {name}"))?;
    if !value.is_finite() || (single && value.abs() > f64::from(f32::MAX)) {
        return Err(format!("out of range for {name}"));
    }
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| format!("not a {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_req() -> MessageDescriptor {
        crate::descriptors::load()
            .expect("descriptors")
            .get_message_by_name("UserReq")
            .expect("UserReq")
    }

    #[test]
    fn resolves_json_and_proto_names() {
        let path = FieldPath::resolve(&user_req(), &["userIDs"]).expect("resolves");
        assert_eq!(path.json_path(), "userIDs");
        assert!(FieldPath::resolve(&user_req(), &["nope"]).is_err());
        assert!(FieldPath::resolve(&user_req(), &["userIDs", "x"]).is_err());
    }

    #[test]
    fn int32_values_are_range_checked() {
        let field = FieldPath::resolve(&user_req(), &["userIDs"])
            .expect("resolves")
            .leaf()
            .clone();
        assert_eq!(text_to_json(&field, "7"), Ok(Value::from("7")));
        assert_eq!(
            text_to_json(&field, "-2147483648"),
            Ok(Value::from("-2147483648"))
        );
        // Leading zeros and a plus sign are normalised away by the range check.
        assert_eq!(text_to_json(&field, "+007"), Ok(Value::from("7")));
        assert_eq!(
            text_to_json(&field, "2147483648"),
            Err("invalid value \"2147483648\" for field userIDs: out of range for int32".to_string())
        );
        assert_eq!(
            text_to_json(&field, "abc"),
            Err("invalid value \"abc\" for field userIDs: not an int32".to_string())
        );
        assert_eq!(
            text_to_json(&field, "1.5"),
            Err("invalid value \"1.5\" for field userIDs: not an int32".to_string())
        );
        assert!(splits_commas(&field));
    }

    #[test]
    fn floats_reject_overflow_and_accept_specials() {
        assert_eq!(float("1.5", false), Ok(serde_json::json!(1.5)));
        assert_eq!(float("NaN", true), Ok(Value::String("NaN".into())));
        assert!(float("1e39", true).is_err());
        assert!(float("1e39", false).is_ok());
        assert!(float("x", false).is_err());
    }
}
