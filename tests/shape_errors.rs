//! `[errors] format = "problem"`: RFC 9457 `application/problem+json` for every error the
//! real gateway binary makes (404, 405, 413, 415, 400, 503) or relays (the real Python
//! users service's and Library server's statuses), globally and per route through both
//! codecs, and the OpenAPI error responses that follow the format.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::TempDir;
use support::http::{Reply, send};
use support::library::BothCodecs;
use support::process::{
    ChildGuard, GatewayLog, free_port, shipped_config, spawn_gateway, spawn_python_users,
};

const TYPE_BASE: &str = "https://grpc.github.io/grpc/core/md_doc_statuscodes.html#";

/// The shipped config with `[errors] format = "problem"`, on the binary in front of
/// `upstream`.
fn gateway(upstream: &str) -> (ChildGuard, std::net::SocketAddr, GatewayLog, TempDir) {
    let dir = TempDir::new("shape-errors");
    let shipped = std::fs::read_to_string(shipped_config()).expect("shipped config");
    let status = "[errors]\n";
    assert!(
        shipped.contains(status),
        "the shipped config has an [errors] table"
    );
    let problem = shipped.replace("\nformat = \"status\"\n", "\nformat = \"problem\"\n");
    assert_ne!(problem, shipped, "the shipped [errors] format is \"status\"");
    let path = dir.join("protogate.toml");
    std::fs::write(&path, problem).expect("config");
    let (child, addr, log) = spawn_gateway(
        &[
            "--config",
            path.to_str().expect("UTF-8"),
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
        ],
        &[],
    );
    (child, addr, log, dir)
}

/// Asserts a problem+json answer: status, content type, type and title by code, the
/// request id as `instance`, and returns the body.
fn assert_problem(reply: &Reply, status: u16, code: i32, name: &str, title: &str) -> Value {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let body = reply.json();
    assert_eq!(body["type"], format!("{TYPE_BASE}{name}"));
    assert_eq!(body["title"], title);
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code);
    assert!(body["detail"].is_string(), "{body}");
    assert!(body["details"].is_array(), "{body}");
    let id = reply.header("x-request-id").expect("x-request-id");
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        assert_eq!(body["instance"], id);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_gateway_and_the_upstream_is_problem_json() {
    let (_users, users) = spawn_python_users(&[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let (_gateway, addr, _log, _dir) = gateway(&format!("http://{users}"));
    let url = |path: &str| format!("http://{addr}{path}");
    let json = [("content-type", "application/json")];

    // The seed call itself is unchanged.
    let reply = send(Method::GET, &url("/users?ids=1"), &[], Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));

    let reply = send(
        Method::GET,
        &url("/nope"),
        &[("x-request-id", "req/1?x")],
        Bytes::new(),
    )
    .await;
    let body = assert_problem(&reply, 404, 5, "NOT_FOUND", "Not found");
    // The request id, percent-encoded into a URI reference.
    assert_eq!(body["instance"], "req%2F1%3Fx");
    assert_eq!(body["detail"], "no route for /nope");

    let reply = send(Method::DELETE, &url("/users"), &[], Bytes::new()).await;
    assert_problem(&reply, 405, 12, "UNIMPLEMENTED", "Unimplemented");
    assert_eq!(reply.header("allow"), Some("GET"));

    let reply = send(
        Method::POST,
        &url("/MyService/User"),
        &[("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_problem(&reply, 415, 3, "INVALID_ARGUMENT", "Invalid argument");

    let big = format!("{{\"userIDs\":[{}1]}}", "1,".repeat(1024 * 1024));
    let reply = send(Method::POST, &url("/MyService/User"), &json, big).await;
    assert_problem(&reply, 413, 8, "RESOURCE_EXHAUSTED", "Resource exhausted");

    let reply = send(Method::GET, &url("/users?ids=abc"), &[], Bytes::new()).await;
    let body = assert_problem(&reply, 400, 3, "INVALID_ARGUMENT", "Invalid argument");
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "ids");

    // Relayed: the upstream's own status.
    let headers = [("grpc-metadata-x-test-fail-code", "7")];
    let reply = send(Method::GET, &url("/users?ids=1"), &headers, Bytes::new()).await;
    let body = assert_problem(&reply, 403, 7, "PERMISSION_DENIED", "Permission denied");
    assert_eq!(body["detail"], "injected failure");

    // 503: nothing listens upstream.
    let (_down, down, _log, _dir2) = gateway(&format!("http://127.0.0.1:{}", free_port()));
    let reply = send(
        Method::GET,
        &format!("http://{down}/users?ids=1"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_problem(&reply, 503, 14, "UNAVAILABLE", "Unavailable");
    // The reserved paths' errors too: /readyz not ready, a POST to a probe.
    let reply = send(Method::GET, &format!("http://{down}/readyz"), &[], Bytes::new()).await;
    assert_problem(&reply, 503, 14, "UNAVAILABLE", "Unavailable");
    let reply = send(Method::POST, &url("/healthz"), &[], Bytes::new()).await;
    assert_problem(&reply, 405, 12, "UNIMPLEMENTED", "Unimplemented");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_format_is_per_route_in_both_codecs_and_openapi_follows() {
    let both = BothCodecs::start(
        r#"
[transcoding.methods."library.v1.Library.GetBook"]
error_format = "problem"
"#,
    );
    // GetBook's relayed NOT_FOUND: problem+json, alike from both codecs.
    let reply = both.get("/library/v1/shelves/1/books/9").await;
    let body = assert_problem(&reply, 404, 5, "NOT_FOUND", "Not found");
    assert_eq!(body["detail"], "no book shelves/1/books/9");
    // ListBooks keeps the gateway's default form.
    let reply = both.get("/library/v1/shelves/1/books?format=NOPE").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["code"], 3);
    // No route: the gateway's default too.
    let reply = both.get("/library/v9").await;
    assert_eq!(reply.header("content-type"), Some("application/json"));

    for gateway in &both.gateways {
        let doc = gateway.send(Method::GET, "/openapi.json", &[], "").await.json();
        let responses = |path: &str| doc["paths"][path]["get"]["responses"].clone();
        assert_eq!(
            responses("/library/v1/{name}")["404"]["$ref"],
            "#/components/responses/NotFoundProblem"
        );
        assert_eq!(
            responses("/library/v1/{parent}/books")["404"]["$ref"],
            "#/components/responses/NotFound"
        );
        let problem =
            &doc["components"]["responses"]["NotFoundProblem"]["content"]["application/problem+json"];
        assert_eq!(problem["schema"]["$ref"], "#/components/schemas/ProblemDetails");
        let schema = &doc["components"]["schemas"]["ProblemDetails"];
        assert_eq!(
            schema["required"],
            json!(["type", "title", "status", "detail", "code", "details"])
        );
    }
}

#[test]
fn an_unknown_error_format_stops_startup() {
    let dir = TempDir::new("shape-errors-bad");
    let path = dir.join("protogate.toml");
    std::fs::write(&path, "[errors]\nformat = \"html\"\n").expect("config");
    let mut command = support::process::gateway_command();
    command.args([
        "--config",
        path.to_str().expect("UTF-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let finished = support::process::run_to_exit(command, Duration::from_secs(10));
    assert_eq!(finished.status.code(), Some(2), "{:?}", finished.stderr);
    let stderr = finished.stderr.join("\n");
    assert!(
        stderr.contains("unknown variant `html`, expected `status` or `problem`"),
        "{stderr}"
    );
}
