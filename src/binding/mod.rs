//! Binding: the route's path variables, the query string and the body become one JSON object
//! that pbjson then decodes into the request message. Precedence follows google.api.http:
//! the path binds first, then the body, and a query parameter never overrides a field that
//! either of them bound. A PATCH without a field mask gets one from its body
//! (`update_mask.rs`, AIP-134). Every failure is a 400 with a `google.rpc.BadRequest` violation, and
//! nothing here touches the network.

pub mod body;

mod enum_names;
pub mod fields;
pub mod form_stream;
pub mod multipart;
mod nulls;
mod query;
mod query_paths;
pub mod system;
mod update_mask;
mod values;

use prost_reflect::Kind;
use serde_json::{Map, Value};

use crate::config::UnknownParams;
use crate::error::GatewayError;
use crate::routing::field_path::{self, FieldPath};
use crate::routing::{BodyRule, Route};

/// Builds the request object for `route`.
pub fn bind(
    route: &Route,
    vars: &[String],
    query: Option<&str>,
    body: Option<Value>,
    unknown: UnknownParams,
) -> Result<Value, GatewayError> {
    let mut object = Map::new();
    let mut bound: Vec<FieldPath> = Vec::new();
    // AIP-134: the mask a PATCH without one gets, read from the body as sent (its `null`s
    // included), set below unless the query binds one.
    let mut filled_mask = None;

    match (&route.body, body) {
        (BodyRule::None, Some(_)) => {
            return Err(GatewayError::bad_field(
                "body",
                format!(
                    "{} {} takes no request body",
                    route.http_method,
                    route.template.as_str()
                ),
            ));
        }
        (BodyRule::None, None) | (BodyRule::Whole, None) => {}
        (BodyRule::Whole, Some(Value::Object(mut fields))) => {
            if route.reply_form.strip_enum_prefix {
                enum_names::unstrip_message(&mut fields, &route.input);
            }
            nulls::drop_nulls(&mut fields, &route.input);
            values::check_message(&mut fields, &route.input, &mut values::Path::default())?;
            object = fields;
        }
        (BodyRule::Whole, Some(_)) => {
            return Err(GatewayError::bad_field(
                "body",
                "the request body must be a JSON object",
            ));
        }
        (BodyRule::Field(path), value) => {
            if let (Some(mask), Some(body), Kind::Message(resource)) =
                (update_mask::mask_field(route), &value, path.leaf().kind())
            {
                filled_mask = update_mask::paths_of(body, &resource).map(|paths| (mask, paths));
            }
            if let Some(mut value) = value.filter(|v| !v.is_null()) {
                if route.reply_form.strip_enum_prefix {
                    enum_names::unstrip_field(&mut value, path.leaf());
                }
                nulls::drop_nulls_in_field(&mut value, path.leaf());
                let prefix = path.json_path();
                values::check_field(&mut value, path.leaf(), &mut values::Path::at(&prefix))?;
                set(&mut object, path, value);
            }
            bound.push(path.clone());
        }
    }

    for (path, text) in route.path_fields.iter().zip(vars) {
        let text = match route.reply_form.strip_enum_prefix {
            true => enum_names::unstrip_text(path.leaf(), text),
            false => std::borrow::Cow::Borrowed(text.as_str()),
        };
        let value = field_path::text_to_json(path.leaf(), &text)
            .map_err(|why| GatewayError::bad_field(&path.json_path(), why))?;
        set(&mut object, path, value);
        bound.push(path.clone());
    }

    if let Some(query) = query.filter(|q| !q.is_empty()) {
        if matches!(route.body, BodyRule::Whole) {
            // body "*" maps every field that the path does not; nothing is left for the query.
            if unknown == UnknownParams::Reject
                && let Some((key, _)) = form_urlencoded::parse(query.as_bytes()).next()
            {
                return Err(GatewayError::bad_field(
                    &key,
                    format!("unknown query parameter {key:?}: this route takes its fields from the body"),
                ));
            }
        } else {
            query::bind_query(route, query, &bound, unknown, &mut object)?;
        }
    }
    if let Some((mask, paths)) = filled_mask
        && !object.contains_key(mask.json_name())
        && !object.contains_key(mask.name())
    {
        object.insert(mask.json_name().to_string(), Value::String(paths));
    }
    Ok(Value::Object(object))
}

/// One whole request message given as JSON, with no route around it (Connect's messages,
/// gRPC-Web's `+json` envelopes): read as a `body: "*"` route reads its body when nothing
/// else is bound, so a value that does not fit is refused naming its field, as for REST.
pub fn whole_message(
    value: Value,
    message: &prost_reflect::MessageDescriptor,
) -> Result<Value, GatewayError> {
    let Value::Object(mut fields) = value else {
        return Err(GatewayError::bad_field(
            "body",
            "the request message must be a JSON object",
        ));
    };
    nulls::drop_nulls(&mut fields, message);
    values::check_message(&mut fields, message, &mut values::Path::default())?;
    Ok(Value::Object(fields))
}

/// Sets `value` at `path`, creating intermediate objects. The key is the json name; a value
/// the client sent under the proto name is replaced, so pbjson never sees both spellings.
pub(super) fn set(object: &mut Map<String, Value>, path: &FieldPath, value: Value) {
    let mut current = object;
    for (i, field) in path.fields.iter().enumerate() {
        if field.name() != field.json_name() {
            current.remove(field.name());
        }
        if i + 1 == path.fields.len() {
            current.insert(field.json_name().to_string(), value);
            return;
        }
        let slot = current
            .entry(field.json_name().to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        current = next;
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
