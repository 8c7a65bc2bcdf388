//! `/metrics` after real traffic: request durations by route template (never the raw path),
//! upstream call durations by method and code, rejections by reason, upstream errors by kind.

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::http::{get, send};
use support::upstream::{RecordingUpstream, Reply};
use tonic::Status;

#[tokio::test]
async fn metrics_count_routes_rpcs_rejections_and_upstream_errors() {
    let upstream = RecordingUpstream::start(|call| match call.meta("x-fail").as_deref() {
        Some("yes") => Reply::status(Status::permission_denied("no")),
        _ => Reply::message(&UserReply::default()),
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    assert_eq!(get(&gateway.url("/users?ids=1")).await.status, 200);
    assert_eq!(get(&gateway.url("/users?ids=2,3")).await.status, 200);
    assert_eq!(get(&gateway.url("/users?ids=abc")).await.status, 400);
    assert_eq!(get(&gateway.url("/secret/path/42")).await.status, 404);
    let fail = [("grpc-metadata-x-fail", "yes")];
    assert_eq!(
        send(Method::GET, &gateway.url("/users"), &fail, Bytes::new())
            .await
            .status,
        403
    );

    let reply = get(&gateway.url("/metrics")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    has(
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/users\",http_response_status_code=\"200\"} 2",
    );
    has(
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/users\",http_response_status_code=\"400\"} 1",
    );
    has(
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"(unmatched)\",http_response_status_code=\"404\"} 1",
    );
    has(
        "rpc_client_call_duration_seconds_count{rpc_system=\"grpc\",rpc_method=\"MyService.User\",rpc_grpc_status_code=\"OK\"} 2",
    );
    has(
        "rpc_client_call_duration_seconds_count{rpc_system=\"grpc\",rpc_method=\"MyService.User\",rpc_grpc_status_code=\"PERMISSION_DENIED\"} 1",
    );
    has("protogate_rejected_requests_total{reason=\"bad_request\"} 1");
    has("protogate_rejected_requests_total{reason=\"no_route\"} 1");
    has("protogate_upstream_errors_total{kind=\"error_status\"} 1");
    has("http_server_active_requests 1");
    assert!(
        !text.contains("/secret") && !text.contains("ids="),
        "raw paths must never become labels"
    );
}
