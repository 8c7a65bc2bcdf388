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
        Kind::Bytes if is_base64(text) => Ok(Value::String(text.to_string())),
        Kind::Bytes => Err(invalid("not base64")),
        Kind::Enum(enum_type) => {
            if enum_type.get_value_by_name(text).is_some() {
                return Ok(Value::String(text.to_string()));
            }
            // proto3 enums are open: any int32 is a value, known to these descriptors or not
            // (a value added upstream later), as the body and the JSON mapping accept it.
            match text.parse::<i32>() {
                Ok(n) => Ok(Value::from(n)),
                _ => Err(invalid(&not_an_enum(&enum_type))),
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
        "google.protobuf.DoubleValue" => float(text, false).ok(),
        "google.protobuf.FloatValue" => float(text, true).ok(),
        _ => None,
    }
}

fn int<T: TryFrom<i128> + std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    match text.parse::<i128>() {
        Ok(wide) => T::try_from(wide).map_err(|_| format!("out of range for {name}")),
        Err(_) => Err(format!("not an {name}")),
    }
}

/// Whether `text` is base64, standard or URL-safe, padded or not, as proto3 JSON reads bytes.
pub fn is_base64(text: &str) -> bool {
    use base64::Engine as _;
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ];
    let trimmed = text.trim_end_matches('=');
    engines.iter().any(|e| e.decode(text).is_ok())
        || base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .is_ok()
        || base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .is_ok()
}

/// The refusal of a text that is neither a name nor a number of `enum_type`.
pub fn not_an_enum(enum_type: &prost_reflect::EnumDescriptor) -> String {
    let names: Vec<String> = enum_type.values().map(|v| v.name().to_string()).collect();
    format!(
        "not a value of {} (one of {}, or an int32)",
        enum_type.name(),
        names.join(", ")
    )
}

/// A float or double in text (a query value, a path segment, a quoted JSON number).
pub fn float(text: &str, single: bool) -> Result<Value, String> {
    match text {
        "NaN" | "Infinity" | "-Infinity" => return Ok(Value::String(text.to_string())),
        _ => {}
    }
    let name = if single { "float" } else { "double" };
    // Rust also reads "inf", "nan" and "infinity" in any case; proto3 JSON spells the
    // specials only as above.
    if text
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return Err(format!("not a {name}"));
    }
    let value: f64 = text.parse().map_err(|_| format!("not a {name}"))?;
    finite(value, single)
}

/// A parsed number as the JSON value both codecs read to the same float or double: a
/// float is rounded to float32 first and then range-checked, as Go's protojson, C++ and
/// upb do (protobuf issue 3615), so `3.4028235e+38`, the shortest form of the largest
/// float that they all print, is accepted and `3.5e+38` is not. The value handed on is the
/// float32 itself, widened, which every reader takes back exactly.
pub fn finite(value: f64, single: bool) -> Result<Value, String> {
    let name = if single { "float" } else { "double" };
    if !value.is_finite() {
        return Err(format!("out of range for {name}"));
    }
    let value = if single {
        // `as` rounds to the nearest float32 and overflows to infinity.
        let rounded = value as f32;
        if rounded.is_infinite() {
            return Err(format!("out of range for {name}"));
        }
        f64::from(rounded)
    } else {
        value
    };
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
        for special in ["inf", "nan", "infinity", "-inf", "Inf"] {
            assert_eq!(
                float(special, false),
                Err("not a double".to_string()),
                "{special}"
            );
        }
    }

    #[test]
    fn enums_are_open_in_text() {
        let pool = crate::test_protos::compile(
            "syntax = \"proto3\";\nenum Continent { CONTINENT_UNSPECIFIED = 0; EUROPE = 1; }\nmessage M { Continent continent = 1; }",
        );
        let message = pool.get_message_by_name("M").expect("M");
        let field = message.get_field_by_name("continent").expect("continent");
        assert_eq!(text_to_json(&field, "EUROPE"), Ok(Value::from("EUROPE")));
        assert_eq!(text_to_json(&field, "1"), Ok(Value::from(1)));
        // Numbers the descriptors do not name, as `?continent=-3852` and `/…/99` send them.
        assert_eq!(text_to_json(&field, "-3852"), Ok(Value::from(-3852)));
        assert_eq!(text_to_json(&field, "2147483647"), Ok(Value::from(i32::MAX)));
        let refused = "not a value of Continent (one of CONTINENT_UNSPECIFIED, EUROPE, or an int32)";
        assert_eq!(
            text_to_json(&field, "2147483648"),
            Err(format!(
                "invalid value \"2147483648\" for field continent: {refused}"
            ))
        );
        assert_eq!(
            text_to_json(&field, "ASIA"),
            Err(format!("invalid value \"ASIA\" for field continent: {refused}"))
        );
    }

    #[test]
    fn floats_round_to_float32_before_the_range_check() {
        // The largest float as Go, C++ and Python print it, and its exact value.
        let max = Ok(Value::from(f64::from(f32::MAX)));
        assert_eq!(float("3.4028235e+38", true), max);
        assert_eq!(float("3.4028234663852886e+38", true), max);
        assert_eq!(
            float("-3.4028235e+38", true),
            Ok(Value::from(-f64::from(f32::MAX)))
        );
        assert_eq!(float("3.5e+38", true), Err("out of range for float".to_string()));
        assert_eq!(float("-3.5e38", true), Err("out of range for float".to_string()));
        // The float32 nearest to 0.1, not the double.
        assert_eq!(float("0.1", true), Ok(Value::from(f64::from(0.1f32))));
        // Below the smallest subnormal rounds to zero, as elsewhere.
        assert_eq!(float("1e-50", true), Ok(Value::from(0.0)));
        assert_eq!(float("1e400", false), Err("out of range for double".to_string()));
        assert_eq!(
            float("1.2345678901234567e+100", false),
            Ok(Value::from(1.2345678901234567e100))
        );
    }
}
