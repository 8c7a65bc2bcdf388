//! What the fuzz targets share: the seed route table (built from the shipped
//! `config/protogate.toml`, the way the gateway builds it at startup) and the check that a
//! bound request object decodes into the route's request type. It owns no invariant of its
//! own; each target under `fuzz_targets/` states the ones it checks.

use std::sync::LazyLock;

use protogate::routing::{Route, RouteTable};
use serde_json::Value;

/// The shipped config, compiled in so that a target never reads the file system.
const SHIPPED_CONFIG: &str = include_str!("../../config/protogate.toml");

/// The route table of the shipped config: its `[[rules]]`, the annotations in the embedded
/// descriptors, and the unbound `POST /{Service}/{Method}` routes. Unbound routes are always
/// on here (whatever the file says), because the `body` target needs `POST /MyService/User`.
pub static SEED_TABLE: LazyLock<RouteTable> = LazyLock::new(|| {
    let config = protogate::Config::from_toml(SHIPPED_CONFIG, &Default::default())
        .unwrap_or_else(|e| panic!("config/protogate.toml does not load: {e}"));
    let pool = protogate::descriptors::load().unwrap_or_else(|e| panic!("{e}"));
    protogate::routing::build_table(
        &pool,
        &protogate::method::MethodTable::compiled(&pool).expect("methods"),
        &config.rules,
        true,
    )
    .unwrap_or_else(|e| panic!("the seed route table does not build: {e}"))
});

/// The route for `method` and `template` (as written in the config), for targets that bind
/// through one fixed route.
pub fn seed_route(method: &http::Method, template: &str) -> &'static Route {
    SEED_TABLE
        .routes()
        .iter()
        .find(|r| r.http_method == *method && r.template.as_str() == template)
        .unwrap_or_else(|| panic!("the seed route table has no {method} {template}"))
}

/// Decodes a bound request object into the route's request type with pbjson's serde impls,
/// as the compiled codec (`codec/compiled.rs`) does before calling the upstream. `None` for a request type
/// this crate does not know (a new RPC: add it here).
pub fn decode_request(route: &Route, json: Value) -> Option<Result<(), serde_json::Error>> {
    use protogate::pb::protogate_unpackaged::UserReq;
    Some(match route.input.full_name() {
        "UserReq" => serde_json::from_value::<UserReq>(json).map(drop),
        "google.protobuf.Empty" => serde_json::from_value::<pbjson_types::Empty>(json).map(drop),
        _ => return None,
    })
}
