//! Connect unary (issue 24, point 3) beside REST on one port: the `connectrpc` package's
//! Python client (`tests/python/connect_client.py`, JSON and proto, gzip requests, metadata
//! and trailers, errors with details, deadlines, an unknown method) through the real binary
//! in front of the users service; and against the recording upstream, how a Connect POST and
//! the REST unbound route `POST /{Service}/{Method}` are told apart.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use prost::Message;
use protogate::pb::protogate_unpackaged::{User, UserReply, UserReq};
use serde_json::{Value, json};
use support::gateway::TestGateway;
use support::http::send;
use support::process::{manifest_dir, python_venv, run_to_exit, spawn_gateway, spawn_python_users};
use support::upstream::{RecordingUpstream, Reply};

#[test]
fn connectrpc_python_client_calls_through_the_gateway() {
    let (_users, upstream) = spawn_python_users(&[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let dir = support::TempDir::new("protocol-connect");
    let config = dir.join("protogate.toml");
    let toml = format!(
        r#"
[upstream]
url = "http://{upstream}"
timeout = "400ms"
max_timeout = "500ms"
[transcoding]
client_metadata = ["x-test-echo", "x-test-fail-code", "x-test-fail-details", "x-test-delay-ms"]
"#
    );
    std::fs::write(&config, toml).expect("config");
    let config = config.to_str().expect("UTF-8").to_string();
    let (_gateway, addr, log) = spawn_gateway(&["--config", &config, "--listen", "127.0.0.1:0"], &[]);
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/connect_client.py"))
        .arg(format!("http://{addr}"));
    let finished = run_to_exit(command, Duration::from_secs(60));
    assert!(
        finished.status.success(),
        "connect client failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    let report: Value = serde_json::from_str(finished.stdout.last().expect("report")).expect("JSON");
    for codec in ["json", "proto"] {
        let seen = &report[codec];
        assert_eq!(seen["users"], json!(["Alice", "Bob"]), "{codec}: {report}");
        assert_eq!(seen["message"], "success");
        assert_eq!(seen["echo"], "hello", "{codec}: leading metadata");
        assert_eq!(seen["echo_trailer"], "hello", "{codec}: trailing metadata");
        let failure = &seen["failure"];
        assert_eq!(failure["code"], "NOT_FOUND", "{codec}: {report}");
        assert_eq!(failure["message"], "injected failure");
        assert_eq!(failure["details"][0]["type"], "google.rpc.ErrorInfo");
        // The detail's bytes as the service sent them: ErrorInfo{reason: "INJECTED", ...}.
        let value = failure["details"][0]["value"].as_str().expect("hex");
        assert!(value.contains(&hex("INJECTED")), "{value}");
    }
    assert_eq!(report["gzip"]["users"], 600, "{report}");
    assert_eq!(report["gzip"]["first"], "Alice");
    assert_eq!(report["client_deadline"]["code"], "DEADLINE_EXCEEDED", "{report}");
    assert!(report["client_deadline"]["seconds"].as_f64().expect("secs") < 2.0);
    let capped = &report["capped_deadline"];
    assert_eq!(capped["code"], "DEADLINE_EXCEEDED", "{report}");
    assert_eq!(capped["message"], "upstream did not answer within 500ms");
    assert!(capped["seconds"].as_f64().expect("secs") < 2.0);
    assert_eq!(report["unknown_method"]["code"], "UNIMPLEMENTED", "{report}");
    let line = log.wait_for("request", Duration::from_secs(5), |r| {
        r["route"] == "/MyService/User" && r["grpc_code"] == 5
    });
    assert_eq!(line["status"], 404, "{line}");
    assert_eq!(line["protocol"], "connect", "{line}");
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn alice() -> UserReply {
    UserReply {
        message: "success".into(),
        data: vec![User {
            name: "Alice".into(),
            age: 30,
            email: "alice@example.com".into(),
        }],
    }
}

#[tokio::test]
async fn connect_post_and_the_rest_unbound_route_share_a_path() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&alice())).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let url = gateway.url("/MyService/User");
    // Plain JSON: the REST unbound route, as before.
    let rest = send(
        Method::POST,
        &url,
        &[("content-type", "application/json")],
        "{\"userIDs\":[1]}",
    )
    .await;
    assert_eq!(rest.status, 200);
    assert_eq!(rest.json()["data"][0]["name"], "Alice");
    // The same with Connect's header: Connect, whose success looks the same...
    let connect_headers = [
        ("content-type", "application/json"),
        ("connect-protocol-version", "1"),
    ];
    let connect = send(Method::POST, &url, &connect_headers, "{\"userIDs\":[1]}").await;
    assert_eq!(connect.status, 200);
    assert_eq!(connect.header("content-type"), Some("application/json"));
    assert_eq!(connect.json()["data"][0]["name"], "Alice");
    // ... and whose errors are Connect's: the code by name, not google.rpc.Status.
    let rest_error = send(
        Method::POST,
        &url,
        &[("content-type", "application/json")],
        "{\"nope\":1}",
    )
    .await;
    assert_eq!(rest_error.status, 400);
    assert_eq!(rest_error.json()["code"], 3);
    let connect_error = send(Method::POST, &url, &connect_headers, "{\"nope\":1}").await;
    assert_eq!(connect_error.status, 400);
    assert_eq!(connect_error.json()["code"], "invalid_argument");
    // Binary proto is Connect without the header too; the reply is the bare message.
    let body = UserReq { user_i_ds: vec![7] }.encode_to_vec();
    let proto = send(Method::POST, &url, &[("content-type", "application/proto")], body).await;
    assert_eq!(proto.status, 200);
    assert_eq!(proto.header("content-type"), Some("application/proto"));
    assert_eq!(UserReply::decode(proto.body.clone()).expect("proto"), alice());
    let sent: UserReq = upstream.calls().last().expect("call").decode();
    assert_eq!(sent.user_i_ds, vec![7]);
    // Gzip both ways: a gzip request body is inflated, and the answer is gzipped for a
    // client that accepts it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"{\"userIDs\":[1,2,3,4,5,6,7,8,9]}").expect("gzip");
    let gzipped = gz.finish().expect("gzip");
    let mut headers = connect_headers.to_vec();
    headers.extend([("content-encoding", "gzip"), ("accept-encoding", "gzip")]);
    let both = send(Method::POST, &url, &headers, gzipped).await;
    assert_eq!(both.status, 200);
    assert_eq!(both.header("content-encoding"), Some("gzip"));
    let sent: UserReq = upstream.calls().last().expect("call").decode();
    assert_eq!(sent.user_i_ds, (1..=9).collect::<Vec<i32>>());
    // An unsupported protocol version is refused before any call.
    let calls = upstream.calls().len();
    let old = send(
        Method::POST,
        &url,
        &[
            ("content-type", "application/json"),
            ("connect-protocol-version", "2"),
        ],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(old.status, 400);
    assert_eq!(old.json()["code"], "invalid_argument");
    assert_eq!(upstream.calls().len(), calls);
}

/// An upstream that ends the call itself as the deadline it was sent passes (tonic answers
/// CANCELLED "Timeout expired", grpcio DEADLINE_EXCEEDED) gives a Connect client the
/// gateway's deadline, as REST gets it; the same status well before the deadline is relayed.
#[tokio::test]
async fn an_upstream_expiry_at_the_deadline_is_the_deadline_over_connect() {
    let upstream = RecordingUpstream::start(|call| {
        let request: UserReq = call.decode();
        let status = match request.user_i_ds[..] {
            [1] => tonic::Status::cancelled("Timeout expired"),
            _ => tonic::Status::deadline_exceeded("Deadline Exceeded"),
        };
        // Just inside the gateway's 300 ms, so the upstream's answer is usually read first.
        Reply::status(status).after(Duration::from_millis(297))
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let url = gateway.url("/MyService/User");
    for ids in ["[1]", "[2]"] {
        let headers = [
            ("content-type", "application/json"),
            ("connect-protocol-version", "1"),
            ("connect-timeout-ms", "300"),
        ];
        let reply = send(Method::POST, &url, &headers, format!("{{\"userIDs\":{ids}}}")).await;
        assert_eq!(reply.status, 504, "{ids}: {:?}", reply.json());
        assert_eq!(reply.json()["code"], "deadline_exceeded", "{ids}");
        assert_eq!(
            reply.json()["message"],
            "upstream did not answer within 300ms",
            "{ids}"
        );
    }
    // Long before its deadline, the upstream's CANCELLED is its own.
    let early = RecordingUpstream::start(|_| Reply::status(tonic::Status::cancelled("stopped"))).await;
    let gateway = TestGateway::start(early.addr, "").await;
    let headers = [
        ("content-type", "application/json"),
        ("connect-protocol-version", "1"),
        ("connect-timeout-ms", "5000"),
    ];
    let reply = send(
        Method::POST,
        &gateway.url("/MyService/User"),
        &headers,
        "{\"userIDs\":[1]}",
    )
    .await;
    assert_eq!(reply.status, 499, "{:?}", reply.json());
    assert_eq!(reply.json()["code"], "canceled");
    assert_eq!(reply.json()["message"], "stopped");
}

#[tokio::test]
async fn connect_turned_off_leaves_json_posts_to_rest() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&alice())).await;
    let gateway = TestGateway::start(upstream.addr, "[protocols]\nconnect = false").await;
    let url = gateway.url("/MyService/User");
    let headers = [
        ("content-type", "application/json"),
        ("connect-protocol-version", "1"),
    ];
    let reply = send(Method::POST, &url, &headers, "{\"nope\":1}").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], 3, "REST's google.rpc.Status");
    let body = UserReq { user_i_ds: vec![1] }.encode_to_vec();
    let proto = send(Method::POST, &url, &[("content-type", "application/proto")], body).await;
    assert_eq!(proto.status, 415);
}

const LOOKUP_PROTO: &str = r#"syntax = "proto3";
package lookup.v1;
message GetRequest { string key = 1; }
message GetResponse { string value = 1; }
service Lookup {
  rpc Get(GetRequest) returns (GetResponse) { option idempotency_level = NO_SIDE_EFFECTS; }
  rpc Put(GetRequest) returns (GetResponse);
}
"#;

/// Connect's GET, for a method marked NO_SIDE_EFFECTS (a schema read from `.proto` files),
/// in JSON and in base64 proto; a method without the mark refuses GET.
#[tokio::test]
async fn connect_get_calls_methods_without_side_effects() {
    // GetResponse{value:"v"} and GetRequest{key} are one string field 1, as StringValue is.
    let upstream = RecordingUpstream::start(|_| Reply::message(&"v".to_string())).await;
    let dir = support::TempDir::new("connect-get");
    std::fs::write(dir.join("lookup.proto"), LOOKUP_PROTO).expect("proto");
    let toml = format!(
        "[schema]\nsource = \"protos:{}\"\ncheck_upstream = false\n",
        dir.0.display()
    );
    let overrides = protogate::Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(format!("http://{}", upstream.addr)),
        ..Default::default()
    };
    let config = protogate::Config::from_toml(&toml, &overrides).expect("config");
    let gateway = TestGateway::start_with(config).await;
    let json_get =
        gateway.url("/lookup.v1.Lookup/Get?connect=v1&encoding=json&message=%7B%22key%22%3A%22k%22%7D");
    let reply = send(Method::GET, &json_get, &[], Bytes::new()).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"value": "v"}));
    let call = upstream.only_call();
    assert_eq!(call.path, "/lookup.v1.Lookup/Get");
    assert_eq!(call.decode::<String>(), "k");
    // GetRequest{key:"k2"} as URL-safe base64 proto.
    let proto_get = gateway.url("/lookup.v1.Lookup/Get?encoding=proto&base64=1&message=CgJrMg");
    let reply = send(Method::GET, &proto_get, &[], Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/proto"));
    assert_eq!(String::decode(reply.body.clone()).expect("proto"), "v");
    assert_eq!(upstream.calls().last().expect("call").decode::<String>(), "k2");
    // Without NO_SIDE_EFFECTS: 405, POST allowed, nothing called.
    let calls = upstream.calls().len();
    let put = gateway.url("/lookup.v1.Lookup/Put?encoding=json&message=%7B%7D");
    let refused = send(Method::GET, &put, &[], Bytes::new()).await;
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("POST"));
    assert_eq!(refused.json()["code"], "unimplemented");
    // An encoding the gateway does not speak: 415.
    let xml = gateway.url("/lookup.v1.Lookup/Get?encoding=xml&message=x");
    let refused = send(Method::GET, &xml, &[], Bytes::new()).await;
    assert_eq!(refused.status, 415);
    assert_eq!(upstream.calls().len(), calls);

    // The connectrpc client's own GET (`use_get=True`), JSON and proto: REST has no GET route
    // on this path, so only Connect's GET can answer it.
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/connect_client.py"))
        .arg("get")
        .arg(format!("http://{}", gateway.addr))
        .arg(&dir.0);
    let finished = tokio::task::spawn_blocking(move || run_to_exit(command, Duration::from_secs(60)))
        .await
        .expect("client ran");
    assert!(
        finished.status.success(),
        "connect client failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    let report: Value = serde_json::from_str(finished.stdout.last().expect("report")).expect("JSON");
    assert_eq!(report, json!({"json": "v", "proto": "v"}));
    let keys: Vec<String> = upstream
        .calls()
        .iter()
        .skip(calls)
        .map(|c| c.decode::<String>())
        .collect();
    assert_eq!(keys, ["key-json", "key-proto"]);
}

/// Connect's streaming protocol (`application/connect+proto`) from the connectrpc client:
/// RouteGuide's server stream through the real binary.
#[test]
fn connectrpc_client_streams_routeguide_features_through_the_gateway() {
    let (_routeguide, upstream) = support::process::spawn_routeguide();
    let dir = support::TempDir::new("protocol-connect-stream");
    let config = dir.join("protogate.toml");
    std::fs::write(&config, format!("[upstream]\nurl = \"http://{upstream}\"\n")).expect("config");
    let config = config.to_str().expect("UTF-8").to_string();
    let (_gateway, addr, log) = spawn_gateway(
        &[
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--schema",
            "reflection",
        ],
        &[],
    );
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/connect_client.py"))
        .arg("stream")
        .arg(format!("http://{addr}"));
    let finished = run_to_exit(command, Duration::from_secs(60));
    assert!(
        finished.status.success(),
        "connect client failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    let report: Value = serde_json::from_str(finished.stdout.last().expect("report")).expect("JSON");
    let listed = report["server_stream"].as_array().expect("list");
    assert_eq!(listed.len(), 4, "{report}");
    assert_eq!(
        listed[0],
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"
    );
    let line = log.wait_for("request", Duration::from_secs(5), |r| {
        r["route"] == "/routeguide.RouteGuide/ListFeatures"
    });
    assert_eq!(line["protocol"], "connect", "{line}");
}
