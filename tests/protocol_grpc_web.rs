//! gRPC-Web (issue 24, point 2): a gRPC-Web client someone else wrote (the `connectrpc`
//! package's, `tests/python/grpc_web_client.py`) through the real binary, unary with metadata,
//! trailers and error details against the users service and server streaming against
//! RouteGuide; `grpc-web-text` over HTTP/1.1 by hand against the recording upstream (base64
//! both ways, the status in the body's last frame); the CORS headers a browser needs.

mod support;

use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::Method;
use prost::Message;
use protogate::pb::protogate_unpackaged::{User, UserReply, UserReq};
use serde_json::{Value, json};
use support::gateway::TestGateway;
use support::http::send;
use support::process::{
    manifest_dir, python_venv, run_to_exit, spawn_gateway, spawn_python_users, spawn_routeguide,
};
use support::upstream::{RecordingUpstream, Reply};

fn client(scenario: &str, url: &str) -> Value {
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/grpc_web_client.py"))
        .arg(scenario)
        .arg(url);
    let finished = run_to_exit(command, Duration::from_secs(60));
    assert!(
        finished.status.success(),
        "gRPC-Web client failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    serde_json::from_str(finished.stdout.last().expect("report")).expect("JSON")
}

fn gateway_for(
    toml: &str,
    args: &[&str],
) -> (
    support::process::ChildGuard,
    std::net::SocketAddr,
    support::TempDir,
) {
    let dir = support::TempDir::new("protocol-grpc-web");
    let path = dir.join("protogate.toml");
    std::fs::write(&path, toml).expect("config");
    let path = path.to_str().expect("UTF-8").to_string();
    let mut all = vec!["--config", path.as_str(), "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, addr, _log) = spawn_gateway(&all, &[]);
    (child, addr, dir)
}

#[test]
fn grpc_web_client_calls_the_users_service_through_the_gateway() {
    let (_users, upstream) = spawn_python_users(&[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let toml = format!(
        "[upstream]\nurl = \"http://{upstream}\"\n[transcoding]\nclient_metadata = [\"x-test-echo\", \"x-test-fail-code\", \"x-test-fail-details\"]\n"
    );
    let (_gateway, addr, _dir) = gateway_for(&toml, &[]);
    let report = client("users", &format!("http://{addr}"));
    assert_eq!(report["users"], json!(["Alice", "Bob"]), "{report}");
    assert_eq!(report["echo"], "hello", "{report}");
    // The trailing metadata came in the body's trailer frame.
    assert_eq!(report["echo_trailer"], "hello", "{report}");
    assert_eq!(report["failure"]["code"], "NOT_FOUND", "{report}");
    assert_eq!(report["failure"]["message"], "injected failure");
    assert_eq!(report["failure"]["details"], json!(["google.rpc.ErrorInfo"]));
}

#[test]
fn grpc_web_client_streams_routeguide_features_through_the_gateway() {
    let (_routeguide, upstream) = spawn_routeguide();
    let toml = format!("[upstream]\nurl = \"http://{upstream}\"\n");
    let (_gateway, addr, _dir) = gateway_for(&toml, &["--schema", "reflection"]);
    let report = client("routeguide", &format!("http://{addr}"));
    assert_eq!(
        report["unary"],
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"
    );
    let listed = report["server_stream"].as_array().expect("list");
    assert_eq!(listed.len(), 4, "{report}");
}

fn framed(message: &impl Message) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(u32::try_from(message.encoded_len()).expect("small"));
    message.encode(&mut buf).expect("encodes");
    buf.freeze()
}

/// Splits a gRPC-Web body into its messages and its trailer block.
fn frames(mut body: Bytes) -> (Vec<Bytes>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.len() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let payload = body.split_to(len);
        match flag {
            0x80 => trailers = String::from_utf8(payload.to_vec()).expect("ASCII"),
            _ => messages.push(payload),
        }
    }
    assert!(body.is_empty(), "bytes after the frames");
    (messages, trailers)
}

#[tokio::test]
async fn grpc_web_text_over_http1_is_base64_both_ways_with_the_status_last() {
    let alice = UserReply {
        message: "success".into(),
        data: vec![User {
            name: "Alice".into(),
            age: 30,
            email: "alice@example.com".into(),
        }],
    };
    let reply = alice.clone();
    let upstream =
        RecordingUpstream::start(move |_| Reply::message(&reply).with_metadata("x-from", "upstream")).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[cors]\nallowed_origins = [\"https://app.example\"]",
    )
    .await;
    let engine = base64::engine::general_purpose::STANDARD;
    // Two padded base64 chunks, one after the other, as a streaming client may send them.
    let request = framed(&UserReq {
        user_i_ds: vec![1, 2],
    });
    let body = format!("{}{}", engine.encode(&request[..4]), engine.encode(&request[4..]));
    let headers = [
        ("content-type", "application/grpc-web-text"),
        ("x-grpc-web", "1"),
        ("origin", "https://app.example"),
    ];
    let answer = send(Method::POST, &gateway.url("/MyService/User"), &headers, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/grpc-web-text"));
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(answer.trailers.is_none(), "no HTTP trailers for gRPC-Web");
    // Each relayed piece is its own padded base64 chunk.
    let mut decoded = BytesMut::new();
    let text = std::str::from_utf8(&answer.body).expect("base64 text");
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find('=').map_or(rest.len(), |i| {
            let pad = rest[i..].bytes().take_while(|b| *b == b'=').count();
            i + pad
        });
        decoded.extend_from_slice(&engine.decode(&rest[..end]).expect("base64"));
        rest = &rest[end..];
    }
    let (messages, trailers) = frames(decoded.freeze());
    assert_eq!(messages.len(), 1);
    assert_eq!(UserReply::decode(messages[0].clone()).expect("reply"), alice);
    assert!(trailers.contains("grpc-status: 0\r\n"), "{trailers:?}");
    assert_eq!(upstream.only_call().decode::<UserReq>().user_i_ds, vec![1, 2]);
    assert_eq!(answer.header("x-from"), Some("upstream"));
}

#[tokio::test]
async fn grpc_web_preflight_lets_the_grpc_web_headers_in() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[cors]\nallowed_origins = [\"https://app.example\"]",
    )
    .await;
    let headers = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent,grpc-timeout",
        ),
    ];
    let preflight = send(
        Method::OPTIONS,
        &gateway.url("/MyService/User"),
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(preflight.status, 200);
    let allowed = preflight
        .header("access-control-allow-headers")
        .expect("allowed headers")
        .to_ascii_lowercase();
    for name in ["x-grpc-web", "x-user-agent", "grpc-timeout", "content-type"] {
        assert!(allowed.contains(name), "{name} not allowed: {allowed}");
    }
}

#[tokio::test]
async fn grpc_web_turned_off_answers_unimplemented_in_the_head() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(upstream.addr, "[protocols]\ngrpc_web = false").await;
    let answer = send(
        Method::POST,
        &gateway.url("/MyService/User"),
        &[("content-type", "application/grpc-web+proto")],
        framed(&UserReq::default()),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-status"), Some("12"));
    assert_eq!(answer.header("content-type"), Some("application/grpc-web+proto"));
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn grpc_web_binary_over_http2_passes_a_trailers_only_status_in_the_head() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::status(tonic::Status::not_found("no such user")).with_metadata("x-why", "gone")
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let answer = support::http::send_h2(
        Method::POST,
        &gateway.url("/MyService/User"),
        &[("content-type", "application/grpc-web+proto")],
        framed(&UserReq { user_i_ds: vec![9] }),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/grpc-web+proto"));
    // A trailers-only upstream answer: the status in the head, as gRPC-Web allows.
    assert_eq!(answer.header("grpc-status"), Some("5"), "{answer:?}");
    // As the upstream sent it (tonic percent-encodes spaces).
    assert_eq!(answer.header("grpc-message"), Some("no%20such%20user"));
    assert!(answer.trailers.is_none());
}
