//! gRPC pass-through (issue 24, point 1): native gRPC clients call the upstream through the
//! gateway's port, beside REST. grpcio (`tests/python/grpc_passthrough_client.py`) calls every
//! method shape of grpc's RouteGuide and MyService with the users service's test hooks
//! (metadata, trailers, errors with details, deadlines and their cap, an unknown method, an
//! oversized message); the seed's grpc-go client calls the Python service through the real
//! binary; a recording upstream shows which metadata passes the allow-list.

mod support;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::Method;
use prost::Message;
use protogate::pb::protogate_unpackaged::{UserReply, UserReq};
use serde_json::Value;
use support::gateway::TestGateway;
use support::go::run_seed_client;
use support::http::{get, send, send_h2};
use support::process::{
    ChildGuard, GatewayLog, manifest_dir, python_venv, run_to_exit, spawn_gateway, spawn_python_users,
    spawn_routeguide,
};
use support::upstream::{RecordingUpstream, Reply};

/// Runs one scenario of the grpcio client against `gateway`; its JSON report.
fn grpcio(scenario: &str, gateway: std::net::SocketAddr) -> Value {
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/grpc_passthrough_client.py"))
        .arg(scenario)
        .arg(gateway.to_string());
    let finished = run_to_exit(command, Duration::from_secs(60));
    assert!(
        finished.status.success(),
        "grpcio client failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    let line = finished.stdout.last().expect("the client printed its report");
    serde_json::from_str(line).expect("the report is JSON")
}

/// The real binary with `toml` (written to a temp file) and `args`.
fn gateway_with(
    toml: &str,
    args: &[&str],
) -> (ChildGuard, std::net::SocketAddr, GatewayLog, support::TempDir) {
    let dir = support::TempDir::new("protocol-grpc");
    let path = dir.join("protogate.toml");
    std::fs::write(&path, toml).expect("config written");
    let path = path.to_str().expect("UTF-8 path").to_string();
    let mut all = vec!["--config", path.as_str(), "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, addr, log) = spawn_gateway(&all, &[]);
    (child, addr, log, dir)
}

#[test]
fn grpcio_calls_every_method_shape_of_routeguide_through_the_gateway() {
    let (_routeguide, upstream) = spawn_routeguide();
    let toml = format!("[upstream]\nurl = \"http://{upstream}\"\n");
    let (_gateway, addr, log, _dir) = gateway_with(&toml, &["--schema", "reflection"]);
    let report = grpcio("routeguide", addr);
    assert_eq!(
        report["unary"],
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"
    );
    let listed = report["server_stream"].as_array().expect("a list");
    assert_eq!(listed.len(), 4, "{report}");
    assert_eq!(listed[3], "U.S. 6, Shohola, PA 18458, USA");
    assert_eq!(report["client_stream"]["points"], 3);
    assert_eq!(report["client_stream"]["features"], 2);
    assert!(report["client_stream"]["distance"].as_u64().unwrap() > 0);
    // Interleaved: each answer came before the next note was sent.
    assert_eq!(report["bidi"], serde_json::json!(["first", "first", "second"]));
    // The access log names each call by its gRPC path, status 200 with the gRPC code.
    for path in [
        "/routeguide.RouteGuide/GetFeature",
        "/routeguide.RouteGuide/ListFeatures",
        "/routeguide.RouteGuide/RecordRoute",
        "/routeguide.RouteGuide/RouteChat",
    ] {
        let line = log.wait_for("request", Duration::from_secs(5), |r| r["route"] == path);
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["grpc_code"], 0, "{line}");
        assert_eq!(line["protocol"], "grpc", "{line}");
    }
}

#[test]
fn grpcio_gets_metadata_trailers_errors_and_deadlines_through_the_gateway() {
    let (_users, upstream) = spawn_python_users(&[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let toml = format!(
        r#"
[upstream]
url = "http://{upstream}"
timeout = "400ms"
max_timeout = "500ms"
[server]
max_body_bytes = 4096
[transcoding]
client_metadata = ["x-test-echo", "x-test-fail-code", "x-test-fail-details", "x-test-delay-ms"]
[[rules]]
selector = "MyService.User"
get = "/users"
query_aliases = {{ ids = "userIDs" }}
"#
    );
    let (_gateway, addr, _log, _dir) = gateway_with(&toml, &[]);
    let report = grpcio("users", addr);
    assert_eq!(report["users"], serde_json::json!(["Alice", "Bob"]));
    // The allowed metadata reached the service (it echoed it), in the head and the trailers.
    assert_eq!(report["initial"]["x-echo"], "hello", "{report}");
    assert_eq!(report["trailing"]["x-echo-trailer"], "hello", "{report}");
    let failure = &report["failure"];
    assert_eq!(failure["code"], "NOT_FOUND", "{report}");
    assert_eq!(failure["details"], "injected failure");
    assert_eq!(failure["detail_reason"], "INJECTED");
    // The client's own short deadline, and a long one capped by upstream.max_timeout.
    assert_eq!(report["client_deadline"]["code"], "DEADLINE_EXCEEDED");
    assert!(report["client_deadline"]["seconds"].as_f64().unwrap() < 2.0);
    let capped = &report["capped_deadline"];
    assert_eq!(capped["code"], "DEADLINE_EXCEEDED", "{report}");
    // The gateway's timer and the upstream's own (it got `grpc-timeout` of what was left)
    // end the call at the same moment: either may say so first.
    let details = capped["details"].as_str().unwrap_or_default();
    assert!(
        details == "upstream did not answer within 500ms" || details == "Deadline Exceeded",
        "{report}"
    );
    assert!(capped["seconds"].as_f64().unwrap() < 2.0, "{report}");
    let unknown = &report["unknown_method"];
    assert_eq!(unknown["code"], "UNIMPLEMENTED", "{report}");
    assert_eq!(
        unknown["details"],
        "unknown method /MyService/Nope (not in the gateway's schema)"
    );
    let too_large = &report["too_large"];
    assert_eq!(too_large["code"], "RESOURCE_EXHAUSTED", "{report}");
    assert_eq!(
        too_large["details"],
        "request body exceeds the limit of 4096 bytes"
    );
    assert_eq!(report["after"], serde_json::json!(["Carol"]));

    // REST on the same port answers as before.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reply = rt.block_on(get(&format!("http://{addr}/users?ids=1")));
    reply.assert_json(
        200,
        serde_json::json!({"message":"success","data":[{"name":"Alice","age":30,"email":"alice@example.com"}]}),
    );
}

/// The seed's own grpc-go client, pointed at the gateway instead of the service.
#[test]
fn seed_go_client_calls_the_python_service_through_the_gateway() {
    let (_users, upstream) = spawn_python_users(&[]);
    let (_gateway, addr, _log) = support::process::spawn_gateway_for(&format!("http://{upstream}"));
    let finished = run_seed_client(addr);
    assert!(
        finished.status.success(),
        "the seed client failed through the gateway\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    assert_eq!(
        finished.stdout,
        [
            "health: ok",
            r#"gprc result: [name:"Alice" age:30 email:"alice@example.com"  name:"Bob" age:25 email:"bob@example.com" ]"#,
        ]
    );
}

fn framed(message: &impl Message) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(message.encoded_len() as u32);
    message.encode(&mut buf).expect("encodes");
    buf.freeze()
}

#[tokio::test]
async fn passthrough_forwards_allowed_metadata_only_and_returns_trailers_as_they_are() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&UserReply {
            message: "ok".into(),
            data: vec![],
        })
        .with_metadata("x-from-upstream", "yes")
    })
    .await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[transcoding]\nclient_metadata = [\"x-tenant\"]\nforward_headers = [\"x-configured\"]",
    )
    .await;
    let headers = [
        ("content-type", "application/grpc+proto"),
        ("te", "trailers"),
        ("grpc-timeout", "2S"),
        ("authorization", "Bearer abc"),
        ("x-tenant", "acme"),
        ("x-configured", "c"),
        ("x-unlisted", "nope"),
        ("cookie", "session=secret"),
        ("grpc-previous-rpc-attempts", "3"),
    ];
    let body = framed(&UserReq { user_i_ds: vec![1] });
    let reply = send_h2(Method::POST, &gateway.url("/MyService/User"), &headers, body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/grpc"));
    let trailers = reply.trailers.expect("gRPC trailers");
    assert_eq!(trailers["grpc-status"], "0");
    let message = UserReply::decode(&reply.body[5..]).unwrap();
    assert_eq!(message.message, "ok");
    let call = upstream.only_call();
    assert_eq!(call.path, "/MyService/User");
    assert_eq!(call.meta("authorization").as_deref(), Some("Bearer abc"));
    assert_eq!(call.meta("x-tenant").as_deref(), Some("acme"));
    assert_eq!(call.meta("x-configured").as_deref(), Some("c"));
    for absent in ["x-unlisted", "cookie", "grpc-previous-rpc-attempts"] {
        assert_eq!(call.meta(absent), None, "{absent} reached the upstream");
    }
    // The gateway's own deadline header, capped by the client's 2 s.
    let timeout = call.meta("grpc-timeout").expect("grpc-timeout sent");
    assert!(timeout.ends_with('m') || timeout.ends_with('u'), "{timeout}");
}

/// gRPC needs HTTP/2; an HTTP/1.1 request with a gRPC content type gets a JSON 415 that a
/// person with curl can read, and never reaches the upstream.
#[tokio::test]
async fn grpc_content_type_over_http1_is_refused_with_415() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(
        Method::POST,
        &gateway.url("/MyService/User"),
        &[("content-type", "application/grpc")],
        framed(&UserReq { user_i_ds: vec![1] }),
    )
    .await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.json()["code"], 3);
    assert!(upstream.calls().is_empty());
}
