//! Protobuf types → JSON Schema (the OpenAPI 3.1 dialect), following the proto3 JSON mapping
//! the gateway really speaks: json names, 64-bit integers as decimal strings, enums as names,
//! bytes as base64, and the well-known types in their JSON forms (Timestamp as an RFC 3339
//! string, Duration as `1.5s`, wrappers as nullable primitives, Struct/Value as any JSON).
//! Messages and enums become `components/schemas` entries named by full name; proto comments
//! become descriptions. It does not decide which fields an operation exposes: that is the
//! caller's (`openapi.rs`, `query.rs`).

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::codec::ReplyForm;

/// The error body of every failure.
pub(super) const STATUS: &str = "google.rpc.Status";
const ANY: &str = "google.protobuf.Any";
/// proto3 JSON form of `google.protobuf.Duration`.
pub(super) const DURATION_PATTERN: &str = r"^-?[0-9]+(\.[0-9]+)?s$";
/// The largest finite `float`; the gateway rejects larger query values as out of range.
const FLOAT_MAX: f64 = f32::MAX as f64;

/// A `$ref` to a component schema.
pub(super) fn ref_to(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Component schemas, collected as operations reference them, plus the proto comments.
#[derive(Default)]
pub(super) struct Schemas {
    pub(super) components: BTreeMap<String, Value>,
    pub(super) comments: Comments,
    /// The form replies are printed in, while a route's reply is described (`form.rs`);
    /// the default (request bodies, and replies of routes without output options) otherwise.
    pub(super) form: ReplyForm,
}

impl Schemas {
    /// The collected components, sorted by name.
    pub(super) fn into_components(self) -> Map<String, Value> {
        self.components.into_iter().collect()
    }

    /// A `$ref` to `message`'s component, registering it and every type it reaches.
    pub(super) fn message(&mut self, message: &MessageDescriptor) -> Value {
        let name = message.full_name();
        let known = well_known(name);
        // Status and the well-known types print alike in every form.
        let key = match name == STATUS || known.is_some() {
            true => name.to_string(),
            false => self.message_key(name),
        };
        if !self.components.contains_key(&key) {
            // Registered before it is built, so that recursive messages terminate.
            self.components.insert(key.clone(), Value::Null);
            let schema = if name == STATUS {
                self.status()
            } else {
                match known {
                    Some(schema) => schema,
                    None => self.message_body(message),
                }
            };
            self.components.insert(key.clone(), schema);
        }
        ref_to(&key)
    }

    /// A `$ref` to the `google.rpc.Status` schema, registering it.
    pub(super) fn status_ref(&mut self) -> Value {
        if !self.components.contains_key(STATUS) {
            let schema = self.status();
            self.components.insert(STATUS.to_string(), schema);
        }
        ref_to(STATUS)
    }

    /// `google.rpc.Status` written by hand: it is the shape `error.rs` always sends (all
    /// three keys present), whether or not the pool holds the message.
    fn status(&mut self) -> Value {
        let any = self.any_ref();
        json!({
            "type": "object",
            "description": "The error body of every failure: a gRPC status code, a message, and \
                            typed details (google.rpc.BadRequest for binding errors, and whatever \
                            the upstream sent in grpc-status-details-bin).",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {
                    "type": "integer",
                    "format": "int32",
                    "description": "The gRPC status code (google.rpc.Code), such as 3 for INVALID_ARGUMENT."
                },
                "message": { "type": "string", "description": "What went wrong, for developers." },
                "details": { "type": "array", "items": any }
            },
            "additionalProperties": false
        })
    }

    pub(super) fn any_ref(&mut self) -> Value {
        if !self.components.contains_key(ANY) {
            self.components
                .insert(ANY.to_string(), well_known(ANY).unwrap_or_default());
        }
        ref_to(ANY)
    }

    /// The JSON object of `message`, inline: one property per field under its json name.
    /// Unknown keys are a 400 at the gateway, hence `additionalProperties: false` (proto
    /// names are accepted too, but are not listed).
    pub(super) fn message_body(&mut self, message: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        let mut always = Vec::new();
        for field in message.fields() {
            let mut schema = self.field(&field);
            let key = self.key_of(&field);
            if self.form.emit_unpopulated && field.containing_oneof().is_none() {
                // Every field outside a oneof is printed; an unset message as null.
                if matches!(field.kind(), Kind::Message(_)) && !field.is_list() && !field.is_map() {
                    schema = json!({ "anyOf": [schema, { "type": "null" }] });
                }
                always.push(Value::String(key.to_string()));
            }
            properties.insert(key.to_string(), schema);
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false
        });
        if !always.is_empty() {
            schema["required"] = Value::Array(always);
        }
        let mut notes: Vec<String> = self
            .comments
            .lookup(&message.parent_file(), message.path())
            .into_iter()
            .collect();
        // A oneof allows at most one of its fields: no pair of them may appear together.
        let mut pairs = Vec::new();
        for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
            let names: Vec<String> = oneof.fields().map(|f| self.key_of(&f).to_string()).collect();
            for (i, a) in names.iter().enumerate() {
                for b in &names[i + 1..] {
                    pairs.push(json!({ "required": [a, b] }));
                }
            }
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            notes.push(format!(
                "At most one of {} (oneof {}).",
                quoted.join(", "),
                oneof.name()
            ));
        }
        if !pairs.is_empty() {
            schema["not"] = json!({ "anyOf": pairs });
        }
        describe(&mut schema, &notes.join("\n\n"));
        schema
    }

    /// One field as it appears in a JSON object (array, map or single value), with its comment.
    pub(super) fn field(&mut self, field: &FieldDescriptor) -> Value {
        let mut schema = match field.kind() {
            Kind::Message(entry) if field.is_map() => self.map(&entry),
            kind if field.is_list() => json!({ "type": "array", "items": self.value(&kind) }),
            kind => self.value(&kind),
        };
        if let Some(comment) = self.comments.lookup(&field.parent_file(), field.path()) {
            describe(&mut schema, &comment);
        }
        schema
    }

    /// A map field's object, from its entry message: values by key.
    pub(super) fn map(&mut self, entry: &MessageDescriptor) -> Value {
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        let mut map = json!({
            "type": "object",
            "additionalProperties": self.value(&value.kind())
        });
        if let Some(names) = map_key_names(&key.kind()) {
            map["propertyNames"] = names;
        }
        map
    }

    /// One value of `kind`: a scalar schema, or a `$ref` to a message or enum component.
    pub(super) fn value(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Message(message) => self.message(message),
            Kind::Enum(enumeration) => self.enumeration(enumeration),
            scalar => scalar_schema(scalar),
        }
    }
}

pub(super) fn scalar_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Double => float_schema("double", None),
        Kind::Float => float_schema("float", Some(FLOAT_MAX)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({
            "type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX
        }),
        Kind::Uint32 | Kind::Fixed32 => json!({
            "type": "integer", "format": "uint32", "minimum": 0, "maximum": u32::MAX
        }),
        // proto3 JSON prints 64-bit integers as strings (JavaScript numbers lose precision
        // past 2^53); the gateway accepts JSON numbers too.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
            "type": "string", "format": "int64", "pattern": "^-?[0-9]+$",
            "description": "A 64-bit integer as a decimal string; a JSON number is accepted too."
        }),
        Kind::Uint64 | Kind::Fixed64 => json!({
            "type": "string", "format": "uint64", "pattern": "^[0-9]+$",
            "description": "An unsigned 64-bit integer as a decimal string; a JSON number is accepted too."
        }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "format": "byte", "contentEncoding": "base64" }),
        // Callers route messages and enums through `Schemas::value`.
        Kind::Message(_) | Kind::Enum(_) => json!({}),
    }
}

/// A number, or one of the strings proto3 JSON uses for the values JSON cannot hold.
fn float_schema(format: &str, max: Option<f64>) -> Value {
    let mut number = json!({ "type": "number", "format": format });
    if let Some(max) = max {
        number["minimum"] = json!(-max);
        number["maximum"] = json!(max);
    }
    json!({
        "oneOf": [number, { "type": "string", "enum": ["NaN", "Infinity", "-Infinity"] }]
    })
}

/// `propertyNames` for a map key kind; string keys need none.
fn map_key_names(kind: &Kind) -> Option<Value> {
    match kind {
        Kind::Bool => Some(json!({ "enum": ["true", "false"] })),
        Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => Some(json!({ "pattern": "^[0-9]+$" })),
        Kind::String => None,
        _ => Some(json!({ "pattern": "^-?[0-9]+$" })),
    }
}

/// The JSON forms of the well-known types (and `None` for every other message).
pub(super) fn well_known(name: &str) -> Option<Value> {
    let wrapper = |kind: Kind, what: &str| {
        let mut schema = nullable(scalar_schema(&kind));
        describe(&mut schema, &format!("{what}, or null for unset."));
        schema
    };
    Some(match name {
        "google.protobuf.Timestamp" => json!({
            "type": "string", "format": "date-time",
            "description": "An RFC 3339 timestamp, such as 2024-05-01T12:00:00Z."
        }),
        "google.protobuf.Duration" => json!({
            "type": "string", "pattern": DURATION_PATTERN,
            "description": "Seconds with an s suffix and up to 9 fractional digits, such as 1.5s."
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths in lowerCamelCase, separated by commas, such as name,team.id."
        }),
        "google.protobuf.Struct" => json!({
            "type": "object", "additionalProperties": true, "description": "Any JSON object."
        }),
        "google.protobuf.Value" => json!({ "description": "Any JSON value." }),
        "google.protobuf.ListValue" => json!({
            "type": "array", "items": {}, "description": "Any JSON array."
        }),
        "google.protobuf.Empty" => json!({
            "type": "object", "additionalProperties": false, "description": "An empty JSON object."
        }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "description": "A message of any type: `@type` names it, the other keys are its \
                            fields in proto3 JSON.",
            "required": ["@type"],
            "properties": {
                "@type": {
                    "type": "string",
                    "description": "The type URL, such as type.googleapis.com/google.rpc.BadRequest."
                }
            },
            "additionalProperties": true
        }),
        "google.protobuf.DoubleValue" => wrapper(Kind::Double, "A double"),
        "google.protobuf.FloatValue" => wrapper(Kind::Float, "A float"),
        "google.protobuf.Int64Value" => wrapper(Kind::Int64, "An int64 as a decimal string"),
        "google.protobuf.UInt64Value" => wrapper(Kind::Uint64, "A uint64 as a decimal string"),
        "google.protobuf.Int32Value" => wrapper(Kind::Int32, "An int32"),
        "google.protobuf.UInt32Value" => wrapper(Kind::Uint32, "A uint32"),
        "google.protobuf.BoolValue" => wrapper(Kind::Bool, "A bool"),
        "google.protobuf.StringValue" => wrapper(Kind::String, "A string"),
        "google.protobuf.BytesValue" => wrapper(Kind::Bytes, "Base64 bytes"),
        _ => return None,
    })
}

/// The primitive a wrapper type carries, for places (query parameters) where null cannot be
/// sent.
pub(super) fn wrapped_kind(message: &MessageDescriptor) -> Option<Kind> {
    match message.full_name() {
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => message.get_field_by_name("value").map(|f| f.kind()),
        _ => None,
    }
}

/// Lets a schema also accept `null`.
fn nullable(mut schema: Value) -> Value {
    if let Some(Value::String(single)) = schema.get("type") {
        schema["type"] = json!([single.clone(), "null"]);
    } else if let Some(Value::Array(options)) = schema.get_mut("oneOf") {
        options.push(json!({ "type": "null" }));
    }
    schema
}

/// Adds `text` to a schema's description (after any description it already has).
pub(super) fn describe(schema: &mut Value, text: &str) {
    if text.is_empty() {
        return;
    }
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let merged = match object.get("description").and_then(Value::as_str) {
        Some(existing) if !existing.is_empty() => format!("{text}\n\n{existing}"),
        _ => text.to_string(),
    };
    object.insert("description".to_string(), Value::String(merged));
}

/// Proto comments from the descriptors' source info, indexed per file on first use.
#[derive(Default)]
pub(super) struct Comments {
    files: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Comments {
    /// The leading (else trailing) comment of the element at `path` in `file`, cleaned up.
    pub(super) fn lookup(&mut self, file: &FileDescriptor, path: &[i32]) -> Option<String> {
        let index = self
            .files
            .entry(file.name().to_string())
            .or_insert_with(|| index_file(file));
        index.get(path).cloned()
    }
}

fn index_file(file: &FileDescriptor) -> HashMap<Vec<i32>, String> {
    let mut index = HashMap::new();
    let Some(info) = &file.file_descriptor_proto().source_code_info else {
        return index;
    };
    for location in &info.location {
        let raw = location
            .leading_comments
            .as_deref()
            .or(location.trailing_comments.as_deref());
        if let Some(text) = raw.map(clean_comment).filter(|t| !t.is_empty()) {
            index.insert(location.path.clone(), text);
        }
    }
    index
}

/// Trims every line of a comment and drops blank lines at either end.
pub(super) fn clean_comment(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().map(str::trim).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    lines[start..end].join("\n")
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
