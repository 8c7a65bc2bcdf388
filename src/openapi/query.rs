//! The query parameters of one route, described as `binding/query.rs` really reads them:
//! every field the path and the body leave unbound, by json name, with dotted names into
//! singular nested messages (down to [`MAX_DEPTH`] names, which also ends recursive
//! messages), repeated fields as exploded arrays (plus comma lists where the binder splits
//! them), and the route's aliases. Maps and repeated messages (`binding/query_paths.rs`):
//! a map of scalars is a `deepObject` parameter (`labels[key]=v`), which OpenAPI defines;
//! a map of messages (`m[key].f=v`) and a repeated message (`items[0].name=a`) are listed
//! with their JSON schema and a description of the form, which no OpenAPI style expresses.
//! JSON-only well-known types (Struct, Value, Any, …) cannot come from a query string and
//! are left out.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::schema::{self, Schemas};
use crate::routing::field_path::{self, FieldPath};
use crate::routing::{BodyRule, Route};

/// Dotted parameter names have at most this many parts. Deeper fields still bind; they are
/// just not listed (and recursive messages would otherwise never end).
pub(super) const MAX_DEPTH: usize = 3;

/// The query parameters of `route`, fields first (in field order), then aliases by name.
pub(super) fn parameters(route: &Route, schemas: &mut Schemas) -> Vec<Value> {
    let mut bound: Vec<FieldPath> = route.path_fields.clone();
    match &route.body {
        // body "*" takes every field the path leaves; the binder rejects any parameter.
        BodyRule::Whole => return Vec::new(),
        BodyRule::Field(path) => bound.push(path.clone()),
        BodyRule::None => {}
    }
    let mut aliases: Vec<(&String, &FieldPath)> = route
        .query_aliases
        .iter()
        .filter(|(_, path)| !is_bound(&bound, &path.fields))
        .collect();
    aliases.sort_by(|a, b| a.0.cmp(b.0));

    let mut fields = Vec::new();
    walk(&route.input, &mut Vec::new(), &bound, &mut fields);
    let mut params: Vec<Value> = fields
        .iter()
        // An alias wins over a field of the same name in the binder, so it wins here too.
        .filter(|path| {
            let name = json_path(path);
            !aliases.iter().any(|(alias, _)| **alias == name)
        })
        .filter_map(|path| {
            let leaf = path.last()?;
            Some(parameter(&json_path(path), leaf, None, schemas))
        })
        .collect();
    for (alias, target) in aliases {
        params.push(parameter(
            alias,
            target.leaf(),
            Some(&target.json_path()),
            schemas,
        ));
    }
    params
}

/// Collects the field paths that can be query parameters, depth-first in field order.
fn walk(
    message: &MessageDescriptor,
    prefix: &mut Vec<FieldDescriptor>,
    bound: &[FieldPath],
    out: &mut Vec<Vec<FieldDescriptor>>,
) {
    for field in message.fields() {
        prefix.push(field.clone());
        if !is_bound(bound, prefix) {
            match field.kind() {
                _ if field.is_map() => out.push(prefix.clone()),
                Kind::Message(inner) if query_text_type(&inner) => out.push(prefix.clone()),
                Kind::Message(_) if field.is_list() => out.push(prefix.clone()),
                Kind::Message(inner) => {
                    let opaque = inner.full_name().starts_with("google.protobuf.");
                    if !field.is_list() && !opaque && prefix.len() < MAX_DEPTH {
                        walk(&inner, prefix, bound, out);
                    }
                }
                _ => out.push(prefix.clone()),
            }
        }
        prefix.pop();
    }
}

/// True when the path or body already binds `path` (or a message containing it): the binder
/// drops such parameters. A bound `team.name` leaves `team.id` free.
fn is_bound(bound: &[FieldPath], path: &[FieldDescriptor]) -> bool {
    bound
        .iter()
        .any(|b| b.fields.len() <= path.len() && b.fields.iter().zip(path).all(|(a, b)| a == b))
}

/// Well-known types whose JSON form is a string or a scalar, which `field_path::text_to_json`
/// accepts from a query value.
fn query_text_type(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    ) || schema::wrapped_kind(message).is_some()
}

fn json_path(path: &[FieldDescriptor]) -> String {
    path.iter()
        .map(FieldDescriptor::json_name)
        .collect::<Vec<_>>()
        .join(".")
}

/// One query parameter object for `leaf`, named `name`; `alias_of` is the target's json path.
fn parameter(name: &str, leaf: &FieldDescriptor, alias_of: Option<&str>, schemas: &mut Schemas) -> Value {
    let kind = leaf.kind();
    let single = match &kind {
        // A query value cannot be null, so wrappers take their primitive's schema.
        Kind::Message(message) => match schema::wrapped_kind(message) {
            Some(inner) => schema::scalar_schema(&inner),
            None => schemas.value(&kind),
        },
        _ => schemas.value(&kind),
    };
    let mut notes: Vec<String> = Vec::new();
    if let Some(target) = alias_of {
        notes.push(format!("Alias of `{target}`."));
    }
    if let Some(comment) = schemas.comments.lookup(&leaf.parent_file(), leaf.path()) {
        notes.push(comment);
    }
    let mut param = json!({ "name": name, "in": "query", "required": false });
    if let Some(how) = keyed(name, leaf, &mut param, schemas) {
        notes.push(how);
    } else if leaf.is_list() {
        let (a, b) = sample_values(&kind);
        let mut how = format!("Repeat the parameter for several values (`?{name}={a}&{name}={b}`).");
        if field_path::splits_commas(leaf) {
            how.push_str(&format!(" A comma list works too (`?{name}={a},{b}`)."));
        }
        notes.push(how);
        param["schema"] = json!({ "type": "array", "items": single });
        param["style"] = json!("form");
        param["explode"] = json!(true);
    } else {
        param["schema"] = single;
    }
    if !notes.is_empty() {
        param["description"] = Value::String(notes.join("\n\n"));
    }
    param
}

/// A map or a repeated message field's schema and style on `param`, and how to send it;
/// `None` for any other field. A map of values that are text in a query is OpenAPI's
/// `deepObject` (`?labels[a]=x`, one level of keys); the binder's other keyed forms go deeper
/// than any OpenAPI style, so the schema says what the value is and the description how to
/// send it.
fn keyed(name: &str, leaf: &FieldDescriptor, param: &mut Value, schemas: &mut Schemas) -> Option<String> {
    let Kind::Message(message) = leaf.kind() else {
        return None;
    };
    if leaf.is_map() {
        let (key, value) = (message.map_entry_key_field(), message.map_entry_value_field());
        let (a, b) = sample_values(&key.kind());
        param["schema"] = schemas.map(&message);
        let inner = match value.kind() {
            Kind::Message(inner) if !query_text_type(&inner) => inner,
            _ => {
                let (x, y) = sample_values(&value.kind());
                param["style"] = json!("deepObject");
                param["explode"] = json!(true);
                return Some(format!(
                    "One map entry per parameter (`?{name}[{a}]={x}&{name}[{b}]={y}`); \
                     `?{name}.{a}={x}` works too."
                ));
            }
        };
        let example = element_example(&inner);
        return Some(format!(
            "OpenAPI's `deepObject` style has no form for a map of messages: set one field of \
             an entry per parameter (`?{name}[{a}].{example}`)."
        ));
    }
    if !leaf.is_list() || query_text_type(&message) {
        return None;
    }
    param["schema"] = json!({ "type": "array", "items": schemas.value(&leaf.kind()) });
    let example = element_example(&message);
    Some(format!(
        "No OpenAPI style expresses a list of messages in a query: set one field of one \
         element per parameter (`?{name}[0].{example}`); indices are dense from 0, in any \
         order."
    ))
}

/// `field=value` for the first field of `message`, for the examples in descriptions.
fn element_example(message: &MessageDescriptor) -> String {
    match message.fields().next() {
        Some(field) => format!("{}={}", field.json_name(), sample_values(&field.kind()).0),
        None => "field=value".to_string(),
    }
}

/// Two plausible values of `kind`, for the examples in descriptions.
fn sample_values(kind: &Kind) -> (String, String) {
    match kind {
        Kind::Bool => ("true".into(), "false".into()),
        Kind::Enum(enumeration) => {
            let mut names = enumeration.values().map(|v| v.name().to_string());
            let a = names.next().unwrap_or_default();
            let b = names.next().unwrap_or_else(|| a.clone());
            (a, b)
        }
        Kind::String | Kind::Bytes | Kind::Message(_) => ("a".into(), "b".into()),
        _ => ("1".into(), "2".into()),
    }
}
