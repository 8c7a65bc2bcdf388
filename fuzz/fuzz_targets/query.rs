//! Fuzz target `query`: query-string binding (`binding::bind` with no body, through
//! `binding::query` and `routing::field_path`) against the seed route table of the shipped
//! config. Input: UTF-8 text, a request target `PATH` or `PATH?QUERY`. Checks that lookup
//! and binding never panic, in both `UnknownParams` modes; that a query accepted under
//! `Reject` binds to the same object under `Ignore`; and that every object binding accepts
//! decodes into the route's request type (`UserReq`, `Empty`) with pbjson. An object that
//! binds but does not decode means binding let through something the message cannot hold.

#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use protogate::binding;
use protogate::config::UnknownParams;
use protogate::routing::{Lookup, Route};
use protogate_fuzz::{SEED_TABLE, decode_request};

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    // Lookup, as the gateway does it, for every method the table serves.
    for method in [Method::GET, Method::POST, Method::PUT] {
        if let Lookup::Found { route, vars } = SEED_TABLE.lookup(&method, path) {
            check_binding(route, &vars, query);
        }
    }
    // The query alone against every route, whatever the path, so that inputs which do not
    // route still exercise each route's binding. The seed routes have no path variables.
    for route in SEED_TABLE.routes() {
        if route.path_fields.is_empty() {
            check_binding(route, &[], query);
        }
    }
});

fn check_binding(route: &Route, vars: &[String], query: Option<&str>) {
    let strict = binding::bind(route, vars, query, None, UnknownParams::Reject);
    let lenient = binding::bind(route, vars, query, None, UnknownParams::Ignore);
    if let Ok(strict) = &strict {
        match &lenient {
            Ok(lenient) => assert_eq!(strict, lenient, "{}: modes disagree on {query:?}", route.origin),
            Err(e) => panic!(
                "{}: query {query:?} binds under Reject but fails under Ignore: {}",
                route.origin,
                e.message()
            ),
        }
    }
    for json in [strict, lenient].into_iter().flatten() {
        if let Some(Err(e)) = decode_request(route, json.clone()) {
            panic!(
                "{}: query {query:?} binds to {json} but {} does not decode it: {e}",
                route.origin,
                route.input.full_name()
            );
        }
    }
}
