//! Browser-facing behaviour: CORS preflight and headers per configured origin (errors
//! included), and gzip negotiated with Accept-Encoding.

mod support;

use std::io::Read;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::{User, UserReply};
use serde_json::json;
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

const APP: &str = "http://app.example.test:3000";

async fn gateway(cors: &str) -> (RecordingUpstream, TestGateway) {
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&UserReply {
            message: "success".into(),
            data: vec![
                User {
                    name: "Alice".into(),
                    age: 30,
                    email: "alice@example.com".into()
                };
                3
            ],
        })
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, cors).await;
    (upstream, gateway)
}

#[tokio::test]
async fn preflight_is_answered_for_allowed_origins_only() {
    let (upstream, gateway) = gateway(&format!("[cors]\nallowed_origins = [\"{APP}\"]")).await;
    let preflight = [
        ("origin", APP),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type, authorization, grpc-metadata-tenant",
        ),
    ];
    let reply = send(
        Method::OPTIONS,
        &gateway.url("/MyService/User"),
        &preflight,
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert!(
        reply
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST"))
    );
    assert!(
        reply
            .header("access-control-allow-headers")
            .is_some_and(|h| h.contains("authorization") && h.contains("grpc-metadata-tenant")),
        "every requested header is allowed; the forwarding allow-list decides what passes"
    );
    assert!(
        reply
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("origin")))
    );

    let other = [
        ("origin", "http://evil.test"),
        ("access-control-request-method", "POST"),
    ];
    let reply = send(
        Method::OPTIONS,
        &gateway.url("/MyService/User"),
        &other,
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert!(upstream.calls().is_empty(), "preflights never reach the upstream");

    // Both are counted under the route "(preflight)", never the raw path.
    let metrics = send(Method::GET, &gateway.url("/metrics"), &[], Bytes::new()).await;
    let count = "http_server_request_duration_seconds_count{http_request_method=\"OPTIONS\",\
                 http_route=\"(preflight)\",http_response_status_code=\"200\"} 2\n";
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains(count), "{text}");
}

#[tokio::test]
async fn responses_and_errors_carry_cors_headers() {
    let (_upstream, gateway) = gateway(&format!(
        "[cors]\nallowed_origins = [\"{APP}\"]\nallow_credentials = true"
    ))
    .await;
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("origin", APP)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("x-request-id,retry-after,allow,grpc-status,grpc-message"),
        "with credentials the wildcard does not count, so the gateway's headers are named"
    );
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=x"),
        &[("origin", APP)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(APP),
        "a browser must be able to read errors"
    );
}

#[tokio::test]
async fn upstream_metadata_is_readable_by_pages_without_credentials() {
    let upstream =
        RecordingUpstream::start(|_| Reply::message(&UserReply::default()).with_metadata("x-tenant", "blue"))
            .await;
    let gateway = TestGateway::start(upstream.addr, &format!("[cors]\nallowed_origins = [\"{APP}\"]")).await;
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("origin", APP)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("grpc-metadata-x-tenant"), Some("blue"));
    assert_eq!(reply.header("access-control-expose-headers"), Some("*"));
}

#[tokio::test]
async fn cors_is_off_without_origins() {
    let (_upstream, gateway) = gateway("").await;
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("origin", APP)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn gzip_is_negotiated() {
    let (_upstream, gateway) = gateway("").await;
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("accept-encoding", "gzip")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON inside");
    assert_eq!(
        body["data"][2],
        json!({"name":"Alice","age":30,"email":"alice@example.com"})
    );

    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &[], Bytes::new()).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.json()["message"], "success");
}
