//! Which unary methods Connect may call with GET (connectrpc.com/docs/protocol, "Unary-Get
//! Request"): the reads. A method is a read when its proto marks it `option
//! idempotency_level = NO_SIDE_EFFECTS`, or when one of its HTTP rules (a `google.api.http`
//! annotation or a `[[rules]]` entry, additional bindings included) is a `get:`: whoever
//! bound it to GET already declared it safe to repeat and cache. `[protocols.services]` and
//! `[protocols.methods]` `connect_get` override both ways. Decided once per schema, so a
//! request asks a set, not the descriptors; the Connect front-end (`gateway/connect.rs`)
//! holds the GET itself.

use std::collections::HashSet;

use crate::config::ProtocolsConfig;
use crate::method::{Method, MethodTable};
use crate::routing::RouteTable;

/// The full names of the methods Connect may call with GET.
pub(super) fn readable(
    methods: &MethodTable,
    routes: &RouteTable,
    protocols: &ProtocolsConfig,
) -> HashSet<String> {
    let bound_to_get: HashSet<&str> = routes
        .routes()
        .iter()
        .filter(|route| route.http_method == http::Method::GET)
        .map(|route| route.method.full_name.as_str())
        .collect();
    methods
        .iter()
        .filter(|method| !method.is_streaming())
        .filter(|method| {
            let declared = has_no_side_effects(method) || bound_to_get.contains(method.full_name.as_str());
            protocols.connect_get(&method.full_name).unwrap_or(declared)
        })
        .map(|method| method.full_name.clone())
        .collect()
}

/// Whether a method is marked `option idempotency_level = NO_SIDE_EFFECTS` (value 1 of
/// `MethodOptions.IdempotencyLevel`).
fn has_no_side_effects(method: &Method) -> bool {
    method
        .descriptor
        .method_descriptor_proto()
        .options
        .as_ref()
        .is_some_and(|o| o.idempotency_level == Some(1))
}
