//! A handler panic is survived: `GET /__protogate/panic` (compiled in only with the
//! `test-panic-route` feature, which `scripts/test` turns on through `--all-features`)
//! panics inside the handler; the answer is a 500 `google.rpc.Status` JSON (problem+json
//! with `[errors] format = "problem"`) with the CORS headers a page needs to read it, the same connection goes on serving, and so does the
//! process. A second test checks that no shipped build can carry the route.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use serde_json::json;
use support::gateway::TestGateway;
use support::http::{get, send};
use support::upstream::{RecordingUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const APP: &str = "https://app.example";

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// Reads one HTTP/1 answer with a `content-length` body from `stream`.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(n > 0, "connection closed after: {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_handler_panic_is_a_json_500_with_cors_and_the_gateway_keeps_serving() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, &format!("[cors]\nallowed_origins = [\"{APP}\"]")).await;
    let reply = send(
        Method::GET,
        &gateway.url("/__protogate/panic"),
        &[("origin", APP), ("x-request-id", "panic-1")],
        Bytes::new(),
    )
    .await;
    reply.assert_json(
        500,
        json!({"code": 13, "message": "internal gateway error", "details": []}),
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("x-request-id"), Some("panic-1"));

    // The same keep-alive connection serves on after a panic.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    for path in [
        "/__protogate/panic",
        "/users?ids=1",
        "/__protogate/panic",
        "/healthz",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = read_answer(&mut stream).await;
        let expected = if path.contains("panic") {
            "HTTP/1.1 500"
        } else {
            "HTTP/1.1 200"
        };
        assert!(answer.starts_with(expected), "{path}: {answer}");
    }
    assert_eq!(get(&gateway.url("/users?ids=2")).await.status, 200);
    assert_eq!(upstream.calls().len(), 2);
}

/// With `[errors] format = "problem"`, the panic's 500 is problem+json too, with the request
/// id as its `instance`.
#[tokio::test]
async fn a_handler_panic_follows_the_error_format() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[errors]\nformat = \"problem\"").await;
    let reply = send(
        Method::GET,
        &gateway.url("/__protogate/panic"),
        &[("x-request-id", "panic-2")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let body = reply.json();
    assert_eq!(body["status"], 500);
    assert_eq!(body["code"], 13);
    assert_eq!(body["instance"], "panic-2");
    assert_eq!(body["detail"], "internal gateway error");
}

/// The route must never ship: no default feature turns it on, and nothing that builds a
/// shipped binary (Dockerfile, scripts other than `scripts/test`, CI) enables it or
/// `--all-features`.
#[test]
fn the_panic_route_stays_out_of_shipped_builds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .expect("Cargo.toml")
        .parse()
        .expect("Cargo.toml parses");
    let features = manifest["features"].as_table().expect("[features]");
    for (name, enables) in features {
        let enables = enables.as_array().expect("a feature is a list");
        assert!(
            !enables.iter().any(|f| f.as_str() == Some("test-panic-route")),
            "feature {name} turns the panic route on"
        );
    }
    let mut builders = vec![root.join("Dockerfile"), root.join("docker-compose.yml")];
    for dir in ["scripts", ".ci"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        builders.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                // The test runners build tests with every feature (scripts/cargo-test passes on
                // the arguments scripts/test gives it); the shipped binary that test-counts
                // measures is built without any (`cargo build --release`).
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n != "test" && n != "cargo-test" && n != "test-counts")
                }),
        );
    }
    let mut checked = 0;
    for path in builders {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        checked += 1;
        for forbidden in ["test-panic-route", "--all-features"] {
            assert!(
                !text.contains(forbidden),
                "{} mentions {forbidden}",
                path.display()
            );
        }
    }
    assert!(checked >= 5, "only {checked} build files found");
}
