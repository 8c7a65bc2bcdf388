//! Binding: the route's path variables, the query string and the body become one JSON object
//! that pbjson then decodes into the request message. Precedence follows google.api.http:
//! the path binds first, then the body, and a query parameter never overrides a field that
//! either of them bound. Every failure is a 400 with a `google.rpc.BadRequest` violation, and
//! nothing here touches the network.

pub mod body;

mod nulls;
mod query;

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
            nulls::drop_nulls(&mut fields, &route.input);
            object = fields;
        }
        (BodyRule::Whole, Some(_)) => {
            return Err(GatewayError::bad_field(
                "body",
                "the request body must be a JSON object",
            ));
        }
        (BodyRule::Field(path), value) => {
            if let Some(mut value) = value.filter(|v| !v.is_null()) {
                nulls::drop_nulls_in_field(&mut value, path.leaf());
                set(&mut object, path, value);
            }
            bound.push(path.clone());
        }
    }

    for (path, text) in route.path_fields.iter().zip(vars) {
        let value = field_path::text_to_json(path.leaf(), text)
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
    Ok(Value::Object(object))
}

/// Sets `value` at `path`, creating intermediate objects. The key is the json name; a value
/// the client sent under the proto name is replaced, so pbjson never sees both spellings.
fn set(object: &mut Map<String, Value>, path: &FieldPath, value: Value) {
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
