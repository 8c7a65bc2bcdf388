//! One route → one OpenAPI operation object: its `operationId`, path parameters (with the
//! field types they bind), query parameters (from `query.rs`), request body (`body: "*"` minus
//! path fields, or `body: "field"`), the success response (the reply, its `response_body`
//! field, or nothing for 204) and the error responses every operation shares. The document
//! around the operations is assembled in `openapi.rs`.

use std::collections::HashSet;

use http::StatusCode;
use prost_reflect::{Kind, MethodDescriptor};
use serde_json::{Map, Value, json};

use super::path::{self, ParamKind, PathShape};
use super::query;
use super::schema::Schemas;
use super::streams;
use super::{ERROR_RESPONSES, PROBLEM_SUFFIX};
use crate::binding::multipart;
use crate::config::ErrorFormat;
use crate::routing::template::Segment;
use crate::routing::{BodyRule, Route};

/// The operation object of one route.
pub(super) fn operation(
    route: &Route,
    method: &MethodDescriptor,
    shape: &PathShape,
    id: String,
    schemas: &mut Schemas,
) -> Value {
    let mut parameters: Vec<Value> = shape
        .params
        .iter()
        .map(|param| path_parameter(route, param, schemas))
        .collect();
    parameters.extend(query::parameters(route, schemas));

    let mut operation = json!({
        "operationId": id,
        "summary": route.method.full_name,
        "tags": [method.parent_service().full_name()],
    });
    let comment = schemas.comments.lookup(&method.parent_file(), method.path());
    let description = match (comment, streams::shape_note(route)) {
        (Some(comment), Some(note)) => Some(format!("{comment}\n\n{note}")),
        (comment, note) => comment.or(note),
    };
    if let Some(description) = description {
        operation["description"] = Value::String(description);
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = request_body(route, schemas) {
        operation["requestBody"] = body;
    }
    let mut responses = Map::new();
    responses.insert(
        route.success_status.as_str().to_string(),
        success_response(route, method, schemas),
    );
    // `[errors] format = "problem"` routes refer to the problem+json forms (`openapi.rs`).
    let form = match route.error_format {
        ErrorFormat::Problem => PROBLEM_SUFFIX,
        ErrorFormat::Status => "",
    };
    for (status, name, _) in ERROR_RESPONSES {
        responses.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/{name}{form}") }),
        );
    }
    operation["responses"] = Value::Object(responses);
    operation["x-grpc-method"] = Value::String(route.method.grpc_path.to_string());
    operation["x-protogate-origin"] = Value::String(route.origin.clone());
    operation
}

/// The success response: the reply, one field of it (`response_body`), or nothing (204).
fn success_response(route: &Route, method: &MethodDescriptor, schemas: &mut Schemas) -> Value {
    // The reply is described in the form the route prints it in (`form.rs`).
    let saved = std::mem::replace(&mut schemas.form, route.reply_form);
    let response = reply_response(route, method, schemas);
    schemas.form = saved;
    response
}

fn reply_response(route: &Route, method: &MethodDescriptor, schemas: &mut Schemas) -> Value {
    let output = method.output();
    if route.success_status == StatusCode::NO_CONTENT {
        return json!({ "description": format!("{} succeeded; no body.", route.method.full_name) });
    }
    if route.method.raw_reply {
        return raw_response(route);
    }
    let selected = route.response_body.as_deref().and_then(|name| {
        output
            .get_field_by_json_name(name)
            .or_else(|| output.get_field_by_name(name))
    });
    let (schema, description) = match selected {
        Some(field) => {
            let mut schema = schemas.field(&field);
            // An unset message field is absent from the reply, so the selection is null.
            if matches!(field.kind(), Kind::Message(_)) && !field.is_list() && !field.is_map() {
                schema = json!({ "anyOf": [schema, { "type": "null" }] });
            }
            let description = format!(
                "The `{}` field of the {} reply, as proto3 JSON.",
                schemas.key_of(&field),
                route.method.full_name
            );
            (schema, description)
        }
        None => (
            schemas.message(&output),
            format!("The reply of {}, as proto3 JSON.", route.method.full_name),
        ),
    };
    if method.is_server_streaming() {
        return streaming_response(route, schema, schemas);
    }
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } }
    })
}

/// A `google.api.HttpBody` reply: its bytes, in the content type the reply names (so any),
/// streamed for a server-streaming method.
fn raw_response(route: &Route) -> Value {
    let streamed = match route.method.streams_replies() {
        true => ", written as its messages arrive (the first one's content type heads the response)",
        false => "",
    };
    json!({
        "description": format!(
            "The raw bytes of the {} reply (google.api.HttpBody){streamed}; Content-Type is the reply's content_type.",
            route.method.full_name
        ),
        "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } }
    })
}

/// A server-streaming reply, in the three formats `Accept` picks between (design §3):
/// NDJSON `{"result":…}` lines ending in `{"error":…}` on failure, SSE, or one JSON array.
fn streaming_response(route: &Route, message: Value, schemas: &mut Schemas) -> Value {
    let status = schemas.status_ref();
    json!({
        "description": format!(
            "The stream of {} replies, in the format `Accept` asks for (NDJSON by default).",
            route.method.full_name
        ),
        "content": {
            "application/x-ndjson": {
                "schema": {
                    "description": "One JSON object per line: a message, or the error that ended the stream.",
                    "oneOf": [
                        { "type": "object", "required": ["result"], "properties": { "result": message },
                          "additionalProperties": false },
                        { "type": "object", "required": ["error"], "properties": { "error": status },
                          "additionalProperties": false }
                    ]
                }
            },
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": "Server-Sent Events; each event's data is one message as proto3 JSON."
                }
            },
            "application/json": {
                "schema": { "type": "array", "items": message }
            }
        }
    })
}

fn path_parameter(route: &Route, param: &path::PathParam, schemas: &mut Schemas) -> Value {
    let (schema, description) = match &param.kind {
        ParamKind::Field { index, pattern } => {
            let leaf = route.path_fields.get(*index).map(|p| p.leaf().clone());
            let comment = leaf
                .as_ref()
                .and_then(|f| schemas.comments.lookup(&f.parent_file(), f.path()));
            match pattern {
                Some(pattern) => {
                    let segments = route
                        .template
                        .variables
                        .get(*index)
                        .map(|v| render_segments(&route.template.segments[v.start..v.end]))
                        .unwrap_or_default();
                    let note = format!(
                        "Spans path segments: the value matches `{segments}` and its slashes are \
                         sent as they are, not percent-encoded."
                    );
                    let text = match comment {
                        Some(comment) => format!("{comment}\n\n{note}"),
                        None => note,
                    };
                    (json!({ "type": "string", "pattern": pattern }), Some(text))
                }
                None => {
                    let schema =
                        leaf.map_or_else(|| json!({ "type": "string" }), |f| schemas.value(&f.kind()));
                    (schema, comment)
                }
            }
        }
        ParamKind::Wildcard { multi: false } => (
            json!({ "type": "string" }),
            Some("Any one path segment (`*`); bound to no field.".to_string()),
        ),
        ParamKind::Wildcard { multi: true } => (
            json!({ "type": "string" }),
            Some(
                "Zero or more path segments (`**`), slashes sent as they are; bound to no field.".to_string(),
            ),
        ),
    };
    let mut parameter = json!({
        "name": param.name,
        "in": "path",
        "required": true,
        "schema": schema,
    });
    if let Some(description) = description {
        parameter["description"] = Value::String(description);
    }
    parameter
}

/// `shelves/*/books/*`, as written in the template.
fn render_segments(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.as_str(),
            Segment::Single => "*",
            Segment::Multi => "**",
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The request body: the whole message (minus top-level path fields) or one field.
fn request_body(route: &Route, schemas: &mut Schemas) -> Option<Value> {
    if route.raw_body.is_some() {
        return Some(raw_request_body(route));
    }
    let (schema, description) = match &route.body {
        BodyRule::None => return None,
        BodyRule::Whole => {
            let from_path: Vec<&str> = route
                .path_fields
                .iter()
                .filter(|p| p.fields.len() == 1)
                .map(|p| p.leaf().json_name())
                .collect();
            if route.method.streams_requests() {
                let mut body = streams::request_body(route, schemas.message(&route.input));
                // A form to it is streamed, each file in pieces (gateway/client_stream.rs).
                if multipart::takes_forms(route) {
                    body["content"]["multipart/form-data"] = json!({ "schema": form_schema(route, schemas) });
                }
                return Some(body);
            }
            if from_path.is_empty() {
                let description = format!(
                    "The {} request message; an empty body means {{}}.",
                    route.input.full_name()
                );
                (schemas.message(&route.input), description)
            } else {
                let mut schema = schemas.message_body(&route.input);
                if let Some(Value::Object(properties)) = schema.get_mut("properties") {
                    for name in &from_path {
                        properties.shift_remove(*name);
                    }
                }
                let description = format!(
                    "The {} request message without {}, which the path binds; an empty body means {{}}.",
                    route.input.full_name(),
                    from_path.join(", ")
                );
                (schema, description)
            }
        }
        BodyRule::Field(field) => (
            schemas.field(field.leaf()),
            format!(
                "The `{}` field of {}.",
                field.json_path(),
                route.input.full_name()
            ),
        ),
    };
    let mut content = json!({ "application/json": { "schema": schema } });
    if multipart::takes_forms(route) {
        content["multipart/form-data"] = json!({ "schema": form_schema(route, schemas) });
    }
    Some(json!({
        "description": description,
        "required": false,
        "content": content
    }))
}

/// The form a route also takes (`binding/multipart.rs`): one part per field the path leaves
/// free, files as binary; nested fields go by dotted names (`meta.author`).
fn form_schema(route: &Route, schemas: &mut Schemas) -> Value {
    let mut properties = Map::new();
    for field in route.input.fields() {
        if route
            .path_fields
            .iter()
            .any(|p| p.fields.len() == 1 && p.leaf() == &field)
        {
            continue;
        }
        let file = match field.kind() {
            Kind::Bytes => true,
            Kind::Message(m) => crate::codec::http_body::is_http_body(&m),
            _ => false,
        };
        let schema = match file {
            true => json!({ "type": "string", "format": "binary" }),
            false => schemas.field(&field),
        };
        properties.insert(field.json_name().to_string(), schema);
    }
    json!({
        "type": "object",
        "description": "Text parts are read as query values are (nested fields by dotted names); \
                        file parts fill bytes and google.api.HttpBody fields.",
        "properties": properties
    })
}

/// An upload into a `google.api.HttpBody`: the raw bytes, whatever their content type.
fn raw_request_body(route: &Route) -> Value {
    let target = match &route.body {
        BodyRule::Field(field) => format!("the `{}` field (google.api.HttpBody)", field.json_path()),
        _ => "the google.api.HttpBody request".to_string(),
    };
    let streamed = match route.method.streams_requests() {
        true => ", sent upstream in messages of `transcoding.upload_chunk_bytes` as it arrives",
        false => "",
    };
    json!({
        "description": format!(
            "The raw bytes of {target} of {}, with the request's Content-Type as its content_type{streamed}.",
            route.method.full_name
        ),
        "required": false,
        "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } }
    })
}

/// The method's full name; with the HTTP method and path added when the method has several
/// routes, so that every id is unique.
pub(super) fn operation_id(
    route: &Route,
    shape: &PathShape,
    routes_of_method: usize,
    used: &mut HashSet<String>,
) -> String {
    let base = if routes_of_method > 1 {
        let mut suffix = String::new();
        for c in shape.path.chars() {
            let c = if c.is_ascii_alphanumeric() { c } else { '_' };
            if !(c == '_' && suffix.ends_with('_')) {
                suffix.push(c);
            }
        }
        format!(
            "{}_{}_{}",
            route.method.full_name,
            route.http_method.as_str(),
            suffix.trim_matches('_')
        )
    } else {
        route.method.full_name.to_string()
    };
    let mut id = base.clone();
    let mut n = 1;
    while !used.insert(id.clone()) {
        n += 1;
        id = format!("{base}_{n}");
    }
    id
}
