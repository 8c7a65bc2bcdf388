//! Binding precedence and query forms, against the seed's `UserReq`.

use super::*;
use crate::routing::{RuleSpec, build_table};
use http::Method;
use serde_json::json;

fn table(body: &str, method: Method, template: &str) -> crate::routing::RouteTable {
    let spec = RuleSpec {
        selector: "MyService.User".into(),
        http_method: method,
        template: template.into(),
        body: body.into(),
        query_aliases: if body == "*" {
            Vec::new()
        } else {
            vec![("ids".into(), "userIDs".into())]
        },
        origin: "test rule".into(),
        ..RuleSpec::default()
    };
    build_table(
        &crate::descriptors::load().expect("descriptors"),
        &crate::method::MethodTable::compiled(&crate::descriptors::load().expect("descriptors"))
            .expect("methods"),
        &[spec],
        false,
    )
    .expect("valid rule")
}

/// The route the test rule made (the test protos, when compiled in, add annotated ones).
fn only(table: &crate::routing::RouteTable) -> &crate::routing::Route {
    let mut ours = table.routes().iter().filter(|r| r.origin == "test rule");
    let route = ours.next().expect("the test rule's route");
    assert!(ours.next().is_none());
    route
}

fn bind_get(query: &str, unknown: UnknownParams) -> Result<Value, GatewayError> {
    let table = table("", Method::GET, "/users");
    bind(only(&table), &[], Some(query), None, unknown)
}

#[test]
fn query_forms_all_reach_the_repeated_field() {
    for query in [
        "ids=1,2",
        "ids=1&ids=2",
        "userIDs=1&userIDs=2",
        "userIDs=1,2",
        "ids=1&userIDs=2",
        "ids=1,%202",
    ] {
        assert_eq!(
            bind_get(query, UnknownParams::Reject).expect(query),
            // Query integers travel as JSON strings (text_to_json), which pbjson decodes.
            json!({"userIDs": ["1", "2"]}),
            "{query}"
        );
    }
    assert_eq!(bind_get("", UnknownParams::Reject).expect("empty"), json!({}));
}

#[test]
fn bad_values_name_the_parameter() {
    let err = bind_get("ids=1,abc", UnknownParams::Reject).expect_err("abc");
    assert_eq!(err.body()["details"][0]["fieldViolations"][0]["field"], "ids");
    assert!(
        err.message()
            .contains("invalid value \"abc\" for field userIDs: not an int32"),
        "{}",
        err.message()
    );
    let err = bind_get("ids=2147483648", UnknownParams::Reject).expect_err("range");
    assert!(err.message().contains("out of range for int32"));
    let err = bind_get("ids=", UnknownParams::Reject).expect_err("empty value");
    assert!(err.message().contains("not an int32"));
}

#[test]
fn unknown_query_param_is_rejected_not_ignored() {
    let err = bind_get("ids=1&color=red", UnknownParams::Reject).expect_err("unknown");
    assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
    assert!(err.message().contains("unknown query parameter \"color\""));
    assert_eq!(
        bind_get("ids=1&color=red", UnknownParams::Ignore).expect("ignored"),
        json!({"userIDs": ["1"]})
    );
}

#[test]
fn get_route_rejects_a_body() {
    let table = table("", Method::GET, "/users");
    let err = bind(
        only(&table),
        &[],
        None,
        Some(json!({"userIDs": [1]})),
        UnknownParams::Reject,
    )
    .expect_err("body on GET");
    assert!(err.message().contains("takes no request body"));
}

#[test]
fn body_star_takes_the_body_and_no_query() {
    let table = table("*", Method::POST, "/users");
    let route = only(&table);
    let got = bind(
        route,
        &[],
        None,
        Some(json!({"userIDs": [5]})),
        UnknownParams::Reject,
    )
    .expect("bound");
    assert_eq!(got, json!({"userIDs": [5]}));
    assert_eq!(
        bind(route, &[], None, None, UnknownParams::Reject).expect("empty body is {}"),
        json!({})
    );
    let err = bind(route, &[], Some("ids=1"), None, UnknownParams::Reject).expect_err("query on body *");
    assert!(err.message().contains("takes its fields from the body"));
    let err = bind(route, &[], None, Some(json!([1])), UnknownParams::Reject).expect_err("array body");
    assert!(err.message().contains("must be a JSON object"));
}

#[test]
fn query_never_overrides_the_body_field() {
    let table = table("userIDs", Method::POST, "/users");
    let route = only(&table);
    let got = bind(
        route,
        &[],
        Some("ids=9"),
        Some(json!([1, 2])),
        UnknownParams::Reject,
    )
    .expect("bound");
    assert_eq!(got, json!({"userIDs": [1, 2]}));
}

mod nested {
    use super::*;
    use crate::routing::{Lookup, RouteTable};

    fn annotated() -> RouteTable {
        let pool = crate::test_protos::compile(crate::test_protos::ANNOTATED);
        build_table(
            &pool,
            &crate::method::MethodTable::compiled(&pool).expect("methods"),
            &[],
            false,
        )
        .expect("valid")
    }

    fn bind_at(
        table: &RouteTable,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> Result<Value, GatewayError> {
        let Lookup::Found { route, vars } = table.lookup(&method, path) else {
            panic!("{method} {path} routes")
        };
        bind(route, &vars, Some(query), body, UnknownParams::Reject)
    }

    #[test]
    fn dotted_paths_enums_bools_and_doubles() {
        let table = annotated();
        let got = bind_at(
            &table,
            Method::GET,
            "/v1/teams/blue/users",
            "filter.roles=ADMIN,2&filter.active_only=true&minScore=1.5&userIDs=1",
            None,
        )
        .expect("binds");
        assert_eq!(
            got,
            json!({"team":{"name":"blue"},"filter":{"roles":["ADMIN",2],"activeOnly":true},"minScore":1.5,"userIDs":["1"]})
        );
        // json and proto spellings of a nested field reach the same slot.
        let got = bind_at(
            &table,
            Method::GET,
            "/v1/teams/x/users",
            "filter.activeOnly=false",
            None,
        )
        .expect("binds");
        assert_eq!(got, json!({"team":{"name":"x"},"filter":{"activeOnly":false}}));
    }

    #[test]
    fn path_variable_wins_over_query() {
        let got = bind_at(
            &annotated(),
            Method::GET,
            "/v1/teams/blue/users",
            "team.name=red&team.id=7",
            None,
        )
        .expect("binds");
        assert_eq!(got, json!({"team":{"name":"blue","id":"7"}}));
    }

    #[test]
    fn body_field_and_path_field_together() {
        let got = bind_at(
            &annotated(),
            Method::PUT,
            "/v1/users/42",
            "filter.active_only=true&minScore=2",
            Some(json!({"roles":["MEMBER"]})),
        )
        .expect("binds");
        assert_eq!(
            got,
            json!({"filter":{"roles":["MEMBER"]},"team":{"id":"42"},"minScore":2.0})
        );
        let err = bind_at(&annotated(), Method::PUT, "/v1/users/abc", "", None).expect_err("id not int64");
        assert!(
            err.message()
                .contains("invalid value \"abc\" for field id: not an int64"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn bad_enum_and_bool_values_are_named() {
        let table = annotated();
        let err = bind_at(
            &table,
            Method::GET,
            "/v1/teams/x/users",
            "filter.roles=OWNER",
            None,
        )
        .expect_err("enum");
        assert!(
            err.message()
                .contains("not a value of Role (one of ROLE_UNSPECIFIED, ADMIN, MEMBER, or an int32)"),
            "{}",
            err.message()
        );
        let err = bind_at(
            &table,
            Method::GET,
            "/v1/teams/x/users",
            "filter.active_only=yes",
            None,
        )
        .expect_err("bool");
        assert!(err.message().contains("not a bool"), "{}", err.message());
        let err = bind_at(
            &table,
            Method::GET,
            "/v1/teams/x/users",
            "minScore=1&minScore=2",
            None,
        )
        .expect_err("twice");
        assert!(err.message().contains("is not repeated"), "{}", err.message());
        let err = bind_at(&table, Method::GET, "/v1/teams/x/users", "filter=1", None).expect_err("message");
        assert!(
            err.message().contains("bind its fields with dotted names"),
            "{}",
            err.message()
        );
    }
}
