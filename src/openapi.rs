//! The live OpenAPI 3.1 document. It is built once at startup
//! from the route table (annotations, config rules and unbound `POST /Service/Method` routes
//! alike) and the descriptors: one operation per route, path and query parameters as the
//! binder reads them, the request body for `body: "*"` and `body: "field"`, the reply schema,
//! and `google.rpc.Status` for every error.
//!
//! Not described: the operational endpoints (`/healthz`, `/readyz`, `/openapi.json`, `/docs`),
//! request headers (`grpc-timeout`, `Grpc-Metadata-*`, forwarded headers), proto field names
//! (accepted, but json names are listed), and routes whose HTTP method OpenAPI cannot express
//! (listed under `x-protogate-unlisted-routes`). One operation is built in
//! `openapi/operation.rs`, type mapping lives in `openapi/schema.rs`, templates in
//! `openapi/path.rs`, query parameters in `openapi/query.rs`; serving the bytes and
//! the `/docs` page is `ops/docs.rs`'s job.

mod form;
mod operation;
mod path;
mod query;
mod schema;
mod streams;

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use http::Method;
use serde_json::{Map, Value, json};

use crate::routing::{RESERVED_PATHS, Route, RouteTable};
use schema::Schemas;

/// Error responses every operation lists, each a `components/responses` entry.
/// The names of the problem+json forms of `ERROR_RESPONSES` end in this.
const PROBLEM_SUFFIX: &str = "Problem";

const ERROR_RESPONSES: [(&str, &str, &str); 8] = [
    (
        "400",
        "BadRequest",
        "INVALID_ARGUMENT (3): a parameter or body field is malformed or unknown (details carry a \
         google.rpc.BadRequest naming it), or the upstream answered INVALID_ARGUMENT, \
         FAILED_PRECONDITION or OUT_OF_RANGE.",
    ),
    (
        "404",
        "NotFound",
        "NOT_FOUND (5): no route matches the path, or the upstream answered NOT_FOUND.",
    ),
    (
        "405",
        "MethodNotAllowed",
        "UNIMPLEMENTED (12): the path is routed under other methods, listed in `Allow`.",
    ),
    (
        "413",
        "PayloadTooLarge",
        "RESOURCE_EXHAUSTED (8): the request body exceeds server.max_body_bytes.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "INVALID_ARGUMENT (3): the request body is not application/json.",
    ),
    (
        "503",
        "Unavailable",
        "UNAVAILABLE (14): the upstream is unreachable, or the gateway is shutting down.",
    ),
    (
        "504",
        "DeadlineExceeded",
        "DEADLINE_EXCEEDED (4): the upstream did not answer within the deadline.",
    ),
    (
        "default",
        "Error",
        "Any other failure, with the HTTP status of grpc-gateway's table: the upstream's code \
         mapped (401, 403, 409, 429, 499, 500, 501, …), or 502 for a reply the gateway cannot \
         relay.",
    ),
];

const INFO_DESCRIPTION: &str = "The HTTP/JSON face of a gRPC service, generated at startup from \
the gateway's live route table.\n\n\
- Bodies and replies are proto3 JSON: lowerCamelCase json names (proto names are accepted \
too), 64-bit integers as strings, enums as names, bytes as base64.\n\
- Query parameters: repeated keys for repeated fields, comma lists for repeated numeric, bool \
and enum fields, dotted names into nested messages (listed down to three levels; deeper ones \
work too). Unknown parameters are rejected unless the gateway is configured to ignore them. A \
parameter never overrides a field bound by the path or the body.\n\
- Every error is google.rpc.Status JSON.\n\
- Not listed: /healthz, /readyz, this document and /docs; the request headers grpc-timeout \
(deadline), Grpc-Metadata-* and x-request-id.";

/// Builds the document as JSON.
pub fn document(routes: &RouteTable) -> Value {
    let mut schemas = Schemas::default();
    // In the reader's order (serde_json keeps insertion order): see `reading_order`.
    let mut paths: Map<String, Value> = Map::new();
    let mut unlisted = Vec::new();
    let mut tags: BTreeMap<String, Option<String>> = BTreeMap::new();

    let mut listed: Vec<&Route> = routes
        .routes()
        .iter()
        // The gateway answers these paths first (ops), so routes on them are never reached.
        .filter(|r| !RESERVED_PATHS.contains(&r.template.as_str()))
        .collect();
    // Stable: routes of one group keep their lookup order, which decides which route on a
    // path and method answers (below).
    listed.sort_by_key(|route| reading_order(route));
    let mut per_method: HashMap<&str, usize> = HashMap::new();
    for route in &listed {
        *per_method.entry(route.method.full_name.as_str()).or_default() += 1;
    }
    let mut used_ids = HashSet::new();
    let mut problems = false;

    for route in listed {
        let method = &route.method.descriptor;
        let names: Vec<String> = route.path_fields.iter().map(|p| p.json_path()).collect();
        let shape = path::openapi_path(&route.template, &names);
        let Some(key) = operation_key(&route.http_method) else {
            unlisted.push(json!({
                "method": route.http_method.as_str(),
                "path": shape.path,
                "rpc": route.method.full_name,
                "reason": "OpenAPI 3.1 has no operation field for this HTTP method",
            }));
            continue;
        };
        let Value::Object(item) = paths
            .entry(shape.path.clone())
            .or_insert_with(|| Value::Object(Map::new()))
        else {
            continue;
        };
        // Route order is lookup order, so the first route on a path and method is the one
        // that answers; a later one with an equivalent template is unreachable.
        if item.contains_key(key) {
            continue;
        }
        let service = method.parent_service();
        tags.entry(service.full_name().to_string())
            .or_insert_with(|| schemas.comments.lookup(&service.parent_file(), service.path()));
        let id = operation::operation_id(
            route,
            &shape,
            per_method
                .get(route.method.full_name.as_str())
                .copied()
                .unwrap_or(1),
            &mut used_ids,
        );
        problems |= route.error_format == crate::config::ErrorFormat::Problem;
        let operation = operation::operation(route, method, &shape, id, &mut schemas);
        item.insert(key.to_string(), operation);
    }

    let status = schemas.status_ref();
    let mut responses = Map::new();
    for (_, name, description) in ERROR_RESPONSES {
        let mut response = json!({
            "description": description,
            "content": { "application/json": { "schema": status } }
        });
        if name == "MethodNotAllowed" {
            response["headers"] = json!({
                "Allow": {
                    "description": "The methods this path is routed for.",
                    "schema": { "type": "string" }
                }
            });
        }
        responses.insert(name.to_string(), response);
    }
    if problems {
        let problem = schemas.problem_ref();
        for (_, name, description) in ERROR_RESPONSES {
            let mut response = json!({
                "description": description,
                "content": { "application/problem+json": { "schema": problem } }
            });
            if name == "MethodNotAllowed" {
                response["headers"] = responses[name]["headers"].clone();
            }
            responses.insert(format!("{name}{PROBLEM_SUFFIX}"), response);
        }
    }

    let tags: Vec<Value> = tags
        .into_iter()
        .map(|(name, comment)| match comment {
            Some(description) => json!({ "name": name, "description": description }),
            None => json!({ "name": name }),
        })
        .collect();
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "protogate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": INFO_DESCRIPTION,
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas.into_components(),
            "responses": responses,
        },
    });
    if !unlisted.is_empty() {
        document["x-protogate-unlisted-routes"] = Value::Array(unlisted);
    }
    document
}

/// Where a route comes in the document (and so on `/docs`): the routes that rules and
/// annotations made first, grouped by service, then the unbound `POST /Service/Method` ones,
/// which a reader looks for last.
fn reading_order(route: &Route) -> (bool, String) {
    let unbound = route.origin.starts_with("unbound method");
    let service = route.method.descriptor.parent_service().full_name().to_string();
    (unbound, service)
}

/// Builds the document as pretty-printed JSON bytes, ready to serve.
pub fn render(routes: &RouteTable) -> Result<Bytes, String> {
    let document = document(routes);
    serde_json::to_vec_pretty(&document)
        .map(Bytes::from)
        .map_err(|e| format!("openapi: cannot serialize the document: {e}"))
}

/// The lowercase operation field for `method`, or `None` when OpenAPI 3.1 has none.
fn operation_key(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "get",
        Method::PUT => "put",
        Method::POST => "post",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        Method::HEAD => "head",
        Method::PATCH => "patch",
        Method::TRACE => "trace",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
