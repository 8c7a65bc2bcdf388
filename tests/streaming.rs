//! Server streaming over HTTP: NDJSON by default, SSE and a JSON array by `Accept`, errors
//! after some messages, messages flushed as they arrive, and a client that goes away
//! cancelling the upstream call. Uses the test protos (`--features test-protos`).

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use protogate::pb::protogate::test::v1::{Item, StreamRequest};
use support::eventually;
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};
use tonic::Status;

fn items(n: i32) -> Vec<Item> {
    (1..=n)
        .map(|index| Item {
            index,
            text: format!("item {index}"),
        })
        .collect()
}

async fn gateway_for(reply: impl Fn() -> Reply + Send + Sync + 'static) -> (RecordingUpstream, TestGateway) {
    let upstream = RecordingUpstream::start(move |_| reply()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    (upstream, gateway)
}

/// `GET /v1/items` with this `Accept`.
async fn items_as(gateway: &TestGateway, accept: &str) -> support::http::Reply {
    send(
        Method::GET,
        &gateway.url("/v1/items"),
        &[("accept", accept)],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn ndjson_is_the_default() {
    let (upstream, gateway) = gateway_for(|| Reply::stream(&items(3), Duration::ZERO)).await;
    let reply = send(Method::GET, &gateway.url("/v1/items?count=3"), &[], Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        "{\"result\":{\"index\":1,\"text\":\"item 1\"}}\n\
         {\"result\":{\"index\":2,\"text\":\"item 2\"}}\n\
         {\"result\":{\"index\":3,\"text\":\"item 3\"}}\n"
    );
    let call = upstream.only_call();
    assert_eq!(call.path, "/protogate.test.v1.Everything/StreamItems");
    assert_eq!(
        call.decode::<StreamRequest>(),
        StreamRequest {
            count: 3,
            fail_code: 0
        }
    );
}

#[tokio::test]
async fn sse_and_json_array_by_accept() {
    let (_upstream, gateway) = gateway_for(|| Reply::stream(&items(2), Duration::ZERO)).await;
    let reply = items_as(&gateway, "text/event-stream").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        "data: {\"index\":1,\"text\":\"item 1\"}\n\ndata: {\"index\":2,\"text\":\"item 2\"}\n\n"
    );
    let reply = items_as(&gateway, "application/json").await;
    reply.assert_json(
        200,
        serde_json::json!([{"index":1,"text":"item 1"},{"index":2,"text":"item 2"}]),
    );
}

#[tokio::test]
async fn an_error_after_messages_ends_each_format_properly() {
    let (_upstream, gateway) = gateway_for(|| {
        Reply::stream(&items(2), Duration::ZERO).then_fail(Status::resource_exhausted("quota"))
    })
    .await;
    let reply = send(Method::GET, &gateway.url("/v1/items"), &[], Bytes::new()).await;
    assert_eq!(
        reply.status, 200,
        "the status line went out with the first message"
    );
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(
        lines[2],
        "{\"error\":{\"code\":8,\"message\":\"quota\",\"details\":[]}}"
    );

    let reply = items_as(&gateway, "text/event-stream").await;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(
        body.ends_with("event: error\ndata: {\"code\":8,\"message\":\"quota\",\"details\":[]}\n\n"),
        "{body}"
    );

    let reply = items_as(&gateway, "application/json").await;
    reply.assert_json(429, serde_json::json!({"code":8,"message":"quota","details":[]}));
}

#[tokio::test]
async fn messages_are_flushed_as_they_arrive() {
    // The upstream sends a message every GAP: the first must reach the client before the
    // upstream has even sent the second (at 2 × GAP), whatever the machine's load; a
    // buffered stream would show it only after the third (3 × GAP).
    const GAP: Duration = Duration::from_millis(1500);
    let (_upstream, gateway) = gateway_for(|| Reply::stream(&items(3), GAP)).await;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::get(gateway.url("/v1/items"))
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let started = Instant::now();
    let response = client.request(request).await.expect("response");
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    let first_at = started.elapsed();
    assert_eq!(
        first.into_data().expect("data frame"),
        Bytes::from_static(b"{\"result\":{\"index\":1,\"text\":\"item 1\"}}\n")
    );
    assert!(
        first_at < 2 * GAP,
        "first message took {first_at:?}, after the upstream sent the second: buffered?"
    );
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(rest.iter().filter(|b| **b == b'\n').count(), 2);
    assert!(
        started.elapsed() >= 3 * GAP,
        "all three arrived before the upstream sent them?"
    );
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_call() {
    let (upstream, gateway) = gateway_for(|| Reply::stream(&items(50), Duration::from_millis(100))).await;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::get(gateway.url("/v1/items"))
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(request).await.expect("response");
    let mut body = response.into_body();
    body.frame().await.expect("a frame").expect("data");
    drop(body);
    drop(client);
    eventually(
        "the upstream to see the cancellation",
        Duration::from_secs(5),
        || async { (upstream.cancelled_streams() > 0).then_some(()) },
    )
    .await;
    assert_eq!(upstream.cancelled_streams(), 1);
}

/// Streams are never gzipped, even when the client accepts gzip: a compressor would hold
/// messages back.
#[tokio::test]
async fn streams_are_not_compressed() {
    let (_upstream, gateway) = gateway_for(|| Reply::stream(&items(20), Duration::ZERO)).await;
    let reply = send(
        Method::GET,
        &gateway.url("/v1/items"),
        &[("accept-encoding", "gzip")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(String::from_utf8_lossy(&reply.body).lines().count(), 20);
}

#[tokio::test]
async fn a_json_array_too_large_to_buffer_is_refused_not_grown() {
    let big: Vec<Item> = (1..=5)
        .map(|index| Item {
            index,
            text: "x".repeat(3_500_000),
        })
        .collect();
    let (_upstream, gateway) = gateway_for(move || Reply::stream(&big, Duration::ZERO)).await;
    let reply = items_as(&gateway, "application/json").await;
    assert_eq!(reply.status, 502);
    let message = reply.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("as one JSON array"), "{message}");
    // The same stream as NDJSON is fine: nothing is buffered.
    let reply = send(Method::GET, &gateway.url("/v1/items"), &[], Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(String::from_utf8_lossy(&reply.body).lines().count(), 5);
}
