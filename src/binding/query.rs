//! Query parameters → fields of the request object. Supports repeated keys
//! (`?userIDs=1&userIDs=2`), comma lists for repeated numeric, bool and enum fields
//! (`?ids=1,2`), dotted paths into nested messages (`a.b=1`), json and proto names, and
//! per-route aliases; map entries and repeated message elements (`labels[k]=v`,
//! `items[0].name=a`) through `query_paths.rs`. A parameter that would override a field bound by the path or the body
//! is dropped; a second value for a singular field is an error, as in grpc-gateway v2.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::UnknownParams;
use crate::error::GatewayError;
use crate::routing::Route;
use crate::routing::field_path::{self, FieldPath};

use super::query_paths::{self, Target};

pub(super) fn bind_query(
    route: &Route,
    query: &str,
    bound: &[FieldPath],
    unknown: UnknownParams,
    object: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    // Few parameters per request: a list beats hashing.
    let mut singular_seen: Vec<String> = Vec::new();
    // The indices each repeated message field was given (`query_paths.rs`).
    let mut indices = BTreeMap::new();
    for (key, text) in form_urlencoded::parse(query.as_bytes()) {
        let resolved = match key.contains('[') {
            true => Err(String::new()),
            false => resolve(route, &key),
        };
        let path = match resolved {
            Ok(path) => path,
            // Into a map or a repeated message: `labels[k]=v`, `labels.k=v`, `items[0].f=v`.
            Err(why) if key.contains(['[', '.']) && !route.query_aliases.contains_key(key.as_ref()) => {
                let target = match Target::parse(&route.input, &key) {
                    Ok(target) => target,
                    Err(_) if unknown == UnknownParams::Ignore => continue,
                    Err(deeper) => {
                        let why = if why.is_empty() { deeper } else { why };
                        return Err(GatewayError::bad_field(
                            &key,
                            format!("unknown query parameter {key:?}: {why}"),
                        ));
                    }
                };
                if bound.iter().any(|b| b.overlaps(&target.top())) {
                    continue;
                }
                target
                    .set(object, &text, &mut indices)
                    .map_err(|why| GatewayError::bad_field(&key, format!("query parameter {key}: {why}")))?;
                continue;
            }
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
        // A stripped enum name (`strip_enum_prefix`) is read in full.
        let to_json = |text: &str| match route.reply_form.strip_enum_prefix {
            true => field_path::text_to_json(leaf, &super::enum_names::unstrip_text(leaf, text)),
            false => field_path::text_to_json(leaf, text),
        };
        let named = |why: String| GatewayError::bad_field(&key, format!("query parameter {key}: {why}"));
        if leaf.is_list() {
            // Spaces around the pieces of a comma list go; a string's value is kept whole.
            let pieces: Vec<&str> = if field_path::splits_commas(leaf) {
                text.split(',').map(str::trim).collect()
            } else {
                vec![&text]
            };
            let slot = entry(object, &path)?;
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            for piece in pieces {
                let value = to_json(piece).map_err(named)?;
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
            let value = to_json(&text).map_err(named)?;
            *entry(object, &path)? = value;
        }
    }
    if let Some(holes) = query_paths::holes(&indices) {
        let list = holes.split(':').next().unwrap_or_default().to_string();
        return Err(GatewayError::bad_field(&list, holes));
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
