//! The output options in the OpenAPI document (`ReplyForm`, resolved per route): a reply
//! printed with proto names, enum numbers, stripped enum names or `null`s for unset
//! messages is described by its own component schemas, named after the type plus the
//! options that change it (`library.v1.Book__proto_names`), so that routes with different
//! options never share a schema that is wrong for one of them. Request bodies keep the
//! default form: every route reads full enum names and both field spellings. Also the enum
//! components themselves: names, numbers, or names without their prefix.

use prost_reflect::{EnumDescriptor, FieldDescriptor};
use serde_json::{Value, json};

use super::schema::{Schemas, describe, ref_to};
use crate::codec::enum_prefix;

/// The problem details component's name.
const PROBLEM: &str = "ProblemDetails";

impl Schemas {
    /// A `$ref` to the RFC 9457 problem details body that routes with
    /// `[errors] format = "problem"` answer errors with (`error/render.rs`), registering it.
    pub(super) fn problem_ref(&mut self) -> Value {
        if !self.components.contains_key(PROBLEM) {
            let any = self.any_ref();
            let schema = json!({
                "type": "object",
                "description": "RFC 9457 problem details: the error of a route whose errors are \
                                answered as application/problem+json, with the gRPC status kept \
                                in the extension members code and details.",
                "required": ["type", "title", "status", "detail", "code", "details"],
                "properties": {
                    "type": { "type": "string", "format": "uri",
                              "description": "Names the gRPC code: gRPC's status-code table with the code's name as fragment." },
                    "title": { "type": "string", "description": "The code's short title, such as \"Invalid argument\"." },
                    "status": { "type": "integer", "description": "The HTTP status." },
                    "detail": { "type": "string", "description": "What went wrong, for developers." },
                    "instance": { "type": "string", "description": "The request id (x-request-id)." },
                    "code": { "type": "integer", "format": "int32", "description": "The gRPC status code." },
                    "details": { "type": "array", "items": any,
                                 "description": "The google.rpc error details, as in google.rpc.Status." }
                }
            });
            self.components.insert(PROBLEM.to_string(), schema);
        }
        ref_to(PROBLEM)
    }

    /// The component name of message `name` in the current form.
    pub(super) fn message_key(&self, name: &str) -> String {
        let form = self.form;
        let mut key = name.to_string();
        for (on, suffix) in [
            (form.emit_unpopulated, "__unpopulated"),
            (form.proto_names, "__proto_names"),
            (form.enum_numbers, "__enum_numbers"),
            (form.strip_enum_prefix && !form.enum_numbers, "__enum_stripped"),
        ] {
            if on {
                key.push_str(suffix);
            }
        }
        key
    }

    /// The key `field` is printed under in the current form.
    pub(super) fn key_of<'f>(&self, field: &'f FieldDescriptor) -> &'f str {
        if self.form.proto_names {
            field.name()
        } else {
            field.json_name()
        }
    }

    /// A `$ref` to an enum component: a string enum of the value names (without their
    /// prefix under `strip_enum_prefix`), or an integer enum of the numbers under
    /// `enums_as_numbers`. The gateway also accepts the numbers, and prints a number it
    /// does not know as a number.
    pub(super) fn enumeration(&mut self, enumeration: &EnumDescriptor) -> Value {
        let name = enumeration.full_name();
        if name == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        let (key, mut schema) = if self.form.enum_numbers {
            let numbers: Vec<i32> = enumeration.values().map(|v| v.number()).collect();
            (
                format!("{name}__enum_numbers"),
                json!({ "type": "integer", "format": "int32", "enum": numbers }),
            )
        } else if self.form.strip_enum_prefix {
            let prefix = enum_prefix::prefix(enumeration);
            let names: Vec<String> = enumeration
                .values()
                .map(|v| enum_prefix::strip(&prefix, v.name()).to_string())
                .collect();
            (
                format!("{name}__enum_stripped"),
                json!({ "type": "string", "enum": names }),
            )
        } else {
            let names: Vec<String> = enumeration.values().map(|v| v.name().to_string()).collect();
            (name.to_string(), json!({ "type": "string", "enum": names }))
        };
        if !self.components.contains_key(&key) {
            let mut notes: Vec<String> = self
                .comments
                .lookup(&enumeration.parent_file(), enumeration.path())
                .into_iter()
                .collect();
            for value in enumeration.values() {
                if let Some(comment) = self.comments.lookup(&value.parent_file(), value.path()) {
                    notes.push(format!("- `{}`: {comment}", value.name()));
                }
            }
            describe(&mut schema, &notes.join("\n"));
            self.components.insert(key.clone(), schema);
        }
        ref_to(&key)
    }
}
