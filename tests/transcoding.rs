//! Transcoding as a table of cases against a recording upstream: HTTP request → what the
//! upstream received (path, message) → upstream reply → HTTP response (status, headers, JSON).

mod support;

use bytes::Bytes;
use http::Method;
use prost::Message;
use protogate::pb::protogate_unpackaged::{User, UserReply, UserReq};
use serde_json::{Value, json};
use support::gateway::{TestGateway, dynamic_schema_config};
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

/// Two seeded users, as the reply to every User call.
fn users_reply() -> UserReply {
    UserReply {
        message: "success".into(),
        data: vec![
            User {
                name: "Alice".into(),
                age: 30,
                email: "alice@example.com".into(),
            },
            User {
                name: "Bob".into(),
                age: 25,
                email: "bob@example.com".into(),
            },
        ],
    }
}

fn users_json() -> Value {
    json!({"message":"success","data":[
        {"name":"Alice","age":30,"email":"alice@example.com"},
        {"name":"Bob","age":25,"email":"bob@example.com"}]})
}

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    body: &'static str,
    grpc_path: &'static str,
    /// The request message the upstream must receive, encoded.
    sent: Vec<u8>,
    response: Value,
}

fn user_case(
    name: &'static str,
    method: Method,
    path: &'static str,
    body: &'static str,
    ids: &[i32],
) -> Case {
    Case {
        name,
        method,
        path,
        body,
        grpc_path: "/MyService/User",
        sent: UserReq {
            user_i_ds: ids.to_vec(),
        }
        .encode_to_vec(),
        response: users_json(),
    }
}

/// The table runs through both codecs: the compiled one, and the dynamic one of a runtime
/// schema (the same descriptors as `--schema descriptors:`).
#[tokio::test]
async fn transcoding_table() {
    for config in [String::new(), dynamic_schema_config()] {
        transcoding_table_with(&config).await;
    }
}

async fn transcoding_table_with(config: &str) {
    let upstream = RecordingUpstream::start(|call| {
        if call.path == "/MyService/User" {
            Reply::message(&users_reply())
        } else {
            Reply::message(&())
        }
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, config).await;
    let cases = [
        user_case("comma list via alias", Method::GET, "/users?ids=1,2", "", &[1, 2]),
        user_case(
            "repeated alias keys",
            Method::GET,
            "/users?ids=1&ids=2",
            "",
            &[1, 2],
        ),
        user_case(
            "json name",
            Method::GET,
            "/users?userIDs=2&userIDs=1",
            "",
            &[2, 1],
        ),
        user_case(
            "mixed alias and name",
            Method::GET,
            "/users?ids=3&userIDs=4,5",
            "",
            &[3, 4, 5],
        ),
        user_case("no ids", Method::GET, "/users", "", &[]),
        user_case(
            "negative and extremes",
            Method::GET,
            "/users?ids=-2147483648,2147483647",
            "",
            &[i32::MIN, i32::MAX],
        ),
        user_case(
            "unbound method",
            Method::POST,
            "/MyService/User",
            r#"{"userIDs":[7,8]}"#,
            &[7, 8],
        ),
        user_case(
            "unbound with ids as strings",
            Method::POST,
            "/MyService/User",
            r#"{"userIDs":["9"]}"#,
            &[9],
        ),
        user_case(
            "unbound with empty body",
            Method::POST,
            "/MyService/User",
            "",
            &[],
        ),
        Case {
            name: "health route",
            method: Method::GET,
            path: "/health",
            body: "",
            grpc_path: "/MyService/Health",
            sent: Vec::new(),
            response: json!({}),
        },
        Case {
            name: "health unbound",
            method: Method::POST,
            path: "/MyService/Health",
            body: "{}",
            grpc_path: "/MyService/Health",
            sent: Vec::new(),
            response: json!({}),
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let headers: &[(&str, &str)] = if case.body.is_empty() {
            &[]
        } else {
            &[("content-type", "application/json")]
        };
        let reply = send(
            case.method.clone(),
            &gateway.url(case.path),
            headers,
            case.body.to_string(),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{}: {:?}",
            case.name,
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{}",
            case.name
        );
        assert_eq!(reply.json(), case.response, "{}", case.name);
        let calls = upstream.calls();
        assert_eq!(calls.len(), i + 1, "{}: one upstream call per request", case.name);
        let call = &calls[i];
        assert_eq!(call.path, case.grpc_path, "{}", case.name);
        assert_eq!(call.message, Bytes::from(case.sent.clone()), "{}", case.name);
    }
}

/// proto3 JSON as grpc-gateway emits it: unpopulated fields appear with their defaults.
#[tokio::test]
async fn unpopulated_fields_are_emitted() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&UserReply {
            message: String::new(),
            data: vec![User::default()],
        })
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &[], Bytes::new()).await;
    reply.assert_json(200, json!({"message":"","data":[{"name":"","age":0,"email":""}]}));
}

/// Upstream response metadata comes back as Grpc-Metadata-* headers.
#[tokio::test]
async fn upstream_metadata_returns_as_headers() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&users_reply()).with_metadata("x-served-by", "replica-1")
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(Method::GET, &gateway.url("/users?ids=1,2"), &[], Bytes::new()).await;
    reply.assert_json(200, users_json());
    assert_eq!(reply.header("grpc-metadata-x-served-by"), Some("replica-1"));
}

/// With the switch set, unknown query parameters are ignored instead of rejected.
#[tokio::test]
async fn unknown_query_parameters_can_be_ignored() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&users_reply())).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[transcoding]\nunknown_query_parameters = \"ignore\"",
    )
    .await;
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1&utm_source=mail"),
        &[],
        Bytes::new(),
    )
    .await;
    reply.assert_json(200, users_json());
    assert_eq!(upstream.only_call().decode::<UserReq>().user_i_ds, vec![1]);
}

/// With unbound methods off, POST /MyService/User is no longer a route.
#[tokio::test]
async fn unbound_methods_can_be_disabled() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&users_reply())).await;
    let gateway = TestGateway::start(upstream.addr, "[transcoding]\nunbound_methods = false").await;
    let reply = send(Method::POST, &gateway.url("/MyService/User"), &[], Bytes::new()).await;
    reply.assert_json(
        404,
        json!({"code":5,"message":"no route for /MyService/User","details":[]}),
    );
    assert!(upstream.calls().is_empty());
}

/// Config rules can answer with one reply field, and with 201 or 204 instead of 200.
#[tokio::test]
async fn response_body_and_success_status() {
    let upstream = RecordingUpstream::start(|call| {
        if call.path == "/MyService/User" {
            Reply::message(&users_reply())
        } else {
            Reply::message(&())
        }
    })
    .await;
    let rules = r#"
[[rules]]
selector = "MyService.User"
get = "/users/data"
response_body = "data"
query_aliases = { ids = "userIDs" }

[[rules]]
selector = "MyService.User"
post = "/users:lookup"
body = "*"
success_status = 201

[[rules]]
selector = "MyService.Health"
delete = "/health"
success_status = 204
"#;
    let gateway = TestGateway::start(upstream.addr, rules).await;
    let reply = send(
        Method::GET,
        &gateway.url("/users/data?ids=1,2"),
        &[],
        Bytes::new(),
    )
    .await;
    reply.assert_json(200, users_json()["data"].clone());

    let reply = send(
        Method::POST,
        &gateway.url("/users:lookup"),
        &[("content-type", "application/json")],
        r#"{"userIDs":[1]}"#,
    )
    .await;
    reply.assert_json(201, users_json());

    let reply = send(Method::DELETE, &gateway.url("/health"), &[], Bytes::new()).await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-type"), None);
    let paths: Vec<String> = upstream.calls().iter().map(|c| c.path.clone()).collect();
    assert_eq!(paths, ["/MyService/User", "/MyService/User", "/MyService/Health"]);
}
