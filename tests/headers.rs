//! What crosses the gateway as metadata, and what never does; request ids.

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

#[tokio::test]
async fn allow_listed_headers_become_metadata_and_nothing_else_does() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[transcoding]\nforward_headers = [\"x-tenant-id\"]",
    )
    .await;
    let headers = [
        ("authorization", "Bearer abc"),
        ("x-request-id", "req-123"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "vendor=1"),
        ("grpc-metadata-tenant", "acme"),
        ("x-tenant-id", "t-9"),
        // None of these may reach the upstream, and none may break the request.
        ("cookie", "session=secret"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-unlisted", "nope"),
        ("connection", "keep-alive, x-tenant-id"),
        ("keep-alive", "timeout=5"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
        ("proxy-authorization", "Basic xyz"),
        ("grpc-status", "0"),
        ("grpc-metadata-content-type", "text/html"),
        ("grpc-metadata-grpc-message", "spoofed"),
        ("grpc-metadata-cookie", "sneaky"),
        ("grpc-metadata-te", "trailers"),
    ];
    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &headers, Bytes::new()).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    let call = upstream.only_call();
    assert_eq!(call.meta("authorization").as_deref(), Some("Bearer abc"));
    assert_eq!(call.meta("x-request-id").as_deref(), Some("req-123"));
    assert_eq!(
        call.meta("traceparent").as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(call.meta("tracestate").as_deref(), Some("vendor=1"));
    assert_eq!(call.meta("tenant").as_deref(), Some("acme"));
    // x-tenant-id is configured, but this request's Connection header names it: hop-by-hop.
    assert_eq!(call.meta("x-tenant-id"), None);
    for absent in [
        "cookie",
        "x-forwarded-for",
        "x-unlisted",
        "connection",
        "keep-alive",
        "upgrade",
        "proxy-authorization",
        "host",
    ] {
        assert_eq!(call.meta(absent), None, "{absent} must not be forwarded");
    }
    assert_eq!(call.meta("grpc-message"), None);
    assert_ne!(call.meta("content-type").as_deref(), Some("text/html"));
    assert_eq!(
        call.meta("te").as_deref(),
        Some("trailers"),
        "only the protocol's own te"
    );
}

#[tokio::test]
async fn configured_header_is_forwarded() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[transcoding]\nforward_headers = [\"X-Tenant-Id\"]",
    )
    .await;
    let reply = send(
        Method::GET,
        &gateway.url("/users"),
        &[("x-tenant-id", "t-9")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.only_call().meta("x-tenant-id").as_deref(), Some("t-9"));
}

#[tokio::test]
async fn request_id_is_generated_forwarded_and_echoed() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(Method::GET, &gateway.url("/users"), &[], Bytes::new()).await;
    let generated = reply.header("x-request-id").expect("generated id").to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    assert_eq!(upstream.only_call().meta("x-request-id"), Some(generated));

    let reply = send(
        Method::GET,
        &gateway.url("/users"),
        &[("x-request-id", "mine-1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.header("x-request-id"), Some("mine-1"));
    // Errors carry it too.
    let reply = send(
        Method::GET,
        &gateway.url("/nowhere"),
        &[("x-request-id", "mine-2")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("x-request-id"), Some("mine-2"));
}

#[tokio::test]
async fn non_ascii_header_values_are_dropped_not_fatal() {
    let upstream = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::get(gateway.url("/users"))
        .header(
            "grpc-metadata-name",
            http::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).expect("obs-text"),
        )
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.only_call().meta("name"), None);
}
