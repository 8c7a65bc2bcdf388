//! Query parameters → fields of the request object. Supports repeated keys
//! (`?userIDs=1&userIDs=2`), comma lists for repeated numeric, bool and enum fields
//! (`?ids=1,2`), dotted paths into nested messages (`a.b=1`), json and proto names, and
//! per-route aliases. A parameter that would override a field bound by the path or the body
//! is dropped; a second value for a singular field is an error, as in grpc-gateway v2.

use serde_json::{Map, Value};

use crate::config::UnknownParams;
use crate::error::GatewayError;
use crate::routing::Route;
use crate::routing::field_path::{self, FieldPath};

pub(super) fn bind_query(
    route: &Route,
    query: &str,
    bound: &[FieldPath],
    unknown: UnknownParams,
    object: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    // Few parameters per request: a list beats hashing.
    let mut singular_seen: Vec<String> = Vec::new();
    for (key, text) in form_urlencoded::parse(query.as_bytes()) {
        let path = match resolve(route, &key) {
            Ok(path) => path,
            Err(why) if unknown == UnknownParams::Reject => {
                return Err(GatewayError::bad_field(
                    &key,
                    format!("unknown query parameter {key:?}: {why}"),
                ));
            }
            Err(_) => continue,
        };
        if bound.iter().any(|b| b.overlaps(&path)) {
            tracing::debug!(param = %key, "query parameter ignored: the path or body binds this field");
            continue;
        }
        let leaf = path.leaf();
        if leaf.is_map() {
            return Err(GatewayError::bad_field(
                &key,
                format!("map field {} cannot be set from the query", leaf.json_name()),
            ));
        }
        let named = |why: String| GatewayError::bad_field(&key, format!("query parameter {key}: {why}"));
        if leaf.is_list() {
            let pieces: Vec<&str> = if field_path::splits_commas(leaf) {
                text.split(',').collect()
            } else {
                vec![&text]
            };
            let slot = entry(object, &path)?;
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            for piece in pieces {
                let value = field_path::text_to_json(leaf, piece.trim()).map_err(named)?;
                if let Value::Array(items) = slot {
                    items.push(value);
                }
            }
        } else {
            let json_path = path.json_path();
            if singular_seen.contains(&json_path) {
                return Err(GatewayError::bad_field(
                    &key,
                    format!("query parameter {key} repeats, but field {json_path} is not repeated"),
                ));
            }
            singular_seen.push(json_path);
            let value = field_path::text_to_json(leaf, &text).map_err(named)?;
            *entry(object, &path)? = value;
        }
    }
    Ok(())
}

/// A parameter name → field path: route aliases first, then dotted json or proto names.
fn resolve(route: &Route, key: &str) -> Result<FieldPath, String> {
    if let Some(path) = route.query_aliases.get(key) {
        return Ok(path.clone());
    }
    if key.is_empty() {
        return Err("empty name".to_string());
    }
    let names: Vec<&str> = key.split('.').collect();
    FieldPath::resolve(&route.input, &names)
}

/// The JSON slot for `path`, created as `null` (with intermediate objects) when absent.
fn entry<'a>(object: &'a mut Map<String, Value>, path: &FieldPath) -> Result<&'a mut Value, GatewayError> {
    let Some((leaf, parents)) = path.fields.split_last() else {
        return Err(GatewayError::internal("empty field path in query binding"));
    };
    let mut current = object;
    for field in parents {
        let slot = current
            .entry(field.json_name().to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return Err(GatewayError::internal("query binding slot is not an object"));
        };
        current = next;
    }
    Ok(current.entry(leaf.json_name().to_string()).or_insert(Value::Null))
}
