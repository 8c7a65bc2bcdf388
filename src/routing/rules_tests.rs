//! Rule validation against the seed's descriptors, and lookup over the built table.

use super::*;
use crate::routing::Lookup;

fn pool() -> DescriptorPool {
    crate::descriptors::load().expect("descriptors")
}

fn rule(selector: &str, method: Method, template: &str, body: &str, aliases: &[(&str, &str)]) -> RuleSpec {
    RuleSpec {
        selector: selector.to_string(),
        http_method: method,
        template: template.to_string(),
        body: body.to_string(),
        query_aliases: aliases
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        origin: "config rule 1".to_string(),
        ..RuleSpec::default()
    }
}

#[test]
fn seed_rules_and_unbound_methods_build() {
    let rules = [
        rule("MyService.User", Method::GET, "/users", "", &[("ids", "userIDs")]),
        rule("MyService.Health", Method::GET, "/health", "", &[]),
    ];
    let table = build_table(
        &pool(),
        &crate::method::MethodTable::compiled(&pool()).expect("methods"),
        &rules,
        true,
    )
    .expect("valid");
    // Only the seed's routes: the test protos, when compiled in, add their own.
    let mut listed: Vec<String> = table
        .routes()
        .iter()
        .filter(|r| r.method.full_name.starts_with("MyService."))
        .map(|r| format!("{} {}", r.http_method, r.template.as_str()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /health",
            "GET /users",
            "POST /MyService/Health",
            "POST /MyService/User"
        ]
    );

    let Lookup::Found { route, vars } = table.lookup(&Method::GET, "/users") else {
        panic!("GET /users routes")
    };
    assert_eq!(route.method.grpc_path, "/MyService/User");
    assert!(vars.is_empty());
    match table.lookup(&Method::PUT, "/users") {
        Lookup::MethodNotAllowed(allow) => assert_eq!(allow, vec![Method::GET]),
        other => panic!("expected 405, got {other:?}"),
    }
    assert!(matches!(table.lookup(&Method::GET, "/nope"), Lookup::NotFound));
}

#[test]
fn unbound_methods_can_be_turned_off() {
    let table = build_table(
        &pool(),
        &crate::method::MethodTable::compiled(&pool()).expect("methods"),
        &[],
        false,
    )
    .expect("valid");
    assert!(
        build_table(
            &pool(),
            &crate::method::MethodTable::compiled(&pool()).expect("methods"),
            &[],
            true
        )
        .expect("valid")
        .routes()
        .len()
            > table.routes().len()
    );
    assert!(
        table
            .routes()
            .iter()
            .all(|r| !r.origin.starts_with("unbound method"))
    );
}

#[test]
fn bad_rules_fail_with_their_name() {
    let cases = [
        (
            rule("MyService.Nope", Method::GET, "/x", "", &[]),
            "config rule 1 (MyService.Nope GET /x): no method \"MyService.Nope\"",
        ),
        (
            rule("MyService.User", Method::GET, "users", "", &[]),
            "must start with '/'",
        ),
        (
            rule("MyService.User", Method::GET, "/users/{nope}", "", &[]),
            "message UserReq has no field \"nope\"",
        ),
        (
            rule("MyService.User", Method::GET, "/users/{userIDs}", "", &[]),
            "must be a singular scalar or enum field",
        ),
        (
            rule("MyService.User", Method::GET, "/users", "*", &[]),
            "a GET rule cannot take a body",
        ),
        (
            rule("MyService.User", Method::POST, "/users", "nope", &[]),
            "has no field \"nope\"",
        ),
        (
            rule("MyService.User", Method::GET, "/users", "", &[("ids", "missing")]),
            "query alias \"ids\"",
        ),
        (
            rule(
                "MyService.User",
                Method::POST,
                "/users",
                "*",
                &[("ids", "userIDs")],
            ),
            "can never apply",
        ),
    ];
    let with = |response_body: &str, status: Option<u16>| RuleSpec {
        response_body: response_body.to_string(),
        success_status: status,
        ..rule("MyService.User", Method::POST, "/users", "*", &[])
    };
    let cases = cases.into_iter().chain([
        (
            with("nope", None),
            "response_body: reply UserReply has no field \"nope\"",
        ),
        (with("", Some(302)), "success_status 302 is not a 2xx status"),
        (with("data", Some(204)), "response_body cannot apply"),
    ]);
    for (spec, want) in cases {
        let err = build_table(
            &pool(),
            &crate::method::MethodTable::compiled(&pool()).expect("methods"),
            std::slice::from_ref(&spec),
            false,
        )
        .expect_err(want);
        assert!(err.contains(want), "got {err:?}, want {want:?}");
        assert!(err.starts_with("config rule 1"), "{err}");
    }
}

#[test]
fn duplicate_routes_are_rejected_but_unbound_yields() {
    let twice = [
        rule("MyService.User", Method::GET, "/users", "", &[]),
        rule("MyService.Health", Method::GET, "/users", "", &[]),
    ];
    let err = build_table(
        &pool(),
        &crate::method::MethodTable::compiled(&pool()).expect("methods"),
        &twice,
        false,
    )
    .expect_err("duplicate");
    assert!(
        err.contains("GET /users is already routed by config rule 1"),
        "{err}"
    );
    // An explicit rule on the unbound path wins over the generated one.
    let explicit = [rule(
        "MyService.Health",
        Method::POST,
        "/MyService/User",
        "*",
        &[],
    )];
    let table = build_table(
        &pool(),
        &crate::method::MethodTable::compiled(&pool()).expect("methods"),
        &explicit,
        true,
    )
    .expect("valid");
    let Lookup::Found { route, .. } = table.lookup(&Method::POST, "/MyService/User") else {
        panic!("routes")
    };
    assert_eq!(route.method.full_name, "MyService.Health");
}

#[test]
fn annotations_and_additional_bindings_become_routes() {
    let pool = crate::test_protos::compile(crate::test_protos::ANNOTATED);
    let table = build_table(
        &pool,
        &crate::method::MethodTable::compiled(&pool).expect("methods"),
        &[],
        false,
    )
    .expect("annotated proto is valid");
    let mut listed: Vec<String> = table
        .routes()
        .iter()
        .map(|r| format!("{} {} <- {}", r.http_method, r.template.as_str(), r.origin))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /v1/teams/{team.name}/users <- annotation on MyService.User",
            "HEAD /v1/health <- annotation on MyService.Health",
            "POST /v1/users:search <- annotation on MyService.User, additional binding 1",
            "PUT /v1/users/{team.id} <- annotation on MyService.User, additional binding 2",
        ]
    );
    let Lookup::Found { route, vars } = table.lookup(&Method::GET, "/v1/teams/blue/users") else {
        panic!("GET routes")
    };
    assert_eq!(
        (route.method.full_name.as_str(), vars),
        ("MyService.User", vec!["blue".to_string()])
    );
    assert!(matches!(
        table.lookup(&Method::POST, "/v1/users:search"),
        Lookup::Found { .. }
    ));
    match table.lookup(&Method::GET, "/v1/users:search") {
        Lookup::MethodNotAllowed(allow) => assert_eq!(allow, vec![Method::POST]),
        other => panic!("expected 405, got {other:?}"),
    }
}

/// What a lookup found, comparable.
fn found(lookup: Lookup<'_>) -> String {
    match lookup {
        Lookup::Found { route, vars } => {
            format!("{} {} {vars:?}", route.http_method, route.template.as_str())
        }
        Lookup::MethodNotAllowed(allow) => format!("405 {allow:?}"),
        Lookup::NotFound => "404".to_string(),
    }
}

#[test]
fn the_first_segment_index_finds_what_trying_every_route_finds() {
    let pool = crate::test_protos::compile(crate::test_protos::ANNOTATED);
    let rules = [
        // Routes that start with a variable can match any first segment.
        rule("MyService.User", Method::GET, "/{team.name}", "", &[]),
        rule("MyService.User", Method::DELETE, "/{team.name=**}", "", &[]),
        // A literal first segment with a custom verb: the raw segment is `v1:batch`.
        rule("MyService.User", Method::POST, "/v1:batch", "*", &[]),
    ];
    let table = build_table(
        &pool,
        &crate::method::MethodTable::compiled(&pool).expect("methods"),
        &rules,
        true,
    )
    .expect("valid");
    let paths = [
        "/v1/teams/blue/users",
        "/v1/users:search",
        "/v1/users/7",
        "/v1:batch",
        "/v%31/teams/blue/users",
        "/v1/health",
        "/v1",
        "/blue",
        "/blue/green",
        "/MyService/User",
        "/MyService/Nope",
        "/nothing",
        "/",
        "",
        "*",
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
    ];
    for path in paths {
        for method in &methods {
            assert_eq!(
                found(table.lookup(method, path)),
                found(RouteTable::scan(table.routes().iter(), method, path)),
                "{method} {path}"
            );
        }
    }
    // The index is used, and still honours route order across literal and open routes.
    assert_eq!(
        found(table.lookup(&Method::GET, "/v1/teams/blue/users")),
        "GET /v1/teams/{team.name}/users [\"blue\"]"
    );
    assert_eq!(
        found(table.lookup(&Method::GET, "/blue")),
        "GET /{team.name} [\"blue\"]"
    );
    assert_eq!(
        found(table.lookup(&Method::POST, "/v1:batch")),
        "POST /v1:batch []"
    );
}
