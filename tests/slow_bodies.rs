//! Request bodies that arrive slowly, or never, hold no concurrency permit: a request takes
//! its place among `max_concurrent_requests` only once its body is in. Bodies being
//! received are bounded on their own, by count (`max_concurrent_body_reads`) and by bytes
//! (`max_inflight_body_bytes`); past either, 503 with `Retry-After` at once, and requests
//! without a body are served all the same.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::http::{get, post_json};
use support::upstream::{RecordingUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// A POST that declares `length` body bytes and sends only the first one.
async fn stalled_post(gateway: &TestGateway, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = format!(
        "POST /MyService/User HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
}

/// Waits until `/metrics` reports `n` requests in the handler.
async fn wait_for_active(gateway: &TestGateway, n: usize) {
    let wanted = format!("\nhttp_server_active_requests {}\n", n + 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The /metrics request itself is active while it renders.
        let metrics = get(&gateway.url("/metrics")).await;
        if String::from_utf8_lossy(&metrics.body).contains(&wanted) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} requests in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the gateway has answered anything on `stream` yet (without waiting).
async fn answered(stream: &mut TcpStream) -> Option<String> {
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn stalled_bodies_hold_no_concurrency_permit() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[server]\nmax_concurrent_requests = 2\nbody_timeout = \"5s\"",
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..2 + 4 {
        stalled.push(stalled_post(&gateway, 100).await);
    }
    wait_for_active(&gateway, 6).await;
    for stream in &mut stalled {
        assert_eq!(
            answered(stream).await,
            None,
            "a stalled body is waited for, not shed"
        );
    }
    let started = Instant::now();
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body,
        Bytes::from_static(br#"{"message":"success","data":[]}"#)
    );
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[2]}"#).await;
    assert_eq!(reply.status, 200, "a complete body is served too");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served at once, not after the stalled bodies: {:?}",
        started.elapsed()
    );
    assert_eq!(upstream.calls().len(), 2);
}

#[tokio::test]
async fn bodies_past_max_concurrent_body_reads_are_shed_at_once() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[server]\nmax_concurrent_body_reads = 2\nbody_timeout = \"5s\"",
    )
    .await;
    let _stalled = [
        stalled_post(&gateway, 100).await,
        stalled_post(&gateway, 100).await,
    ];
    wait_for_active(&gateway, 2).await;
    let started = Instant::now();
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[2]}"#).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.json()["code"], 14);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 request bodies are being received")),
        "{}",
        reply.json()
    );
    assert!(started.elapsed() < Duration::from_secs(1), "shed at once");
    // A request without a body needs no read.
    assert_eq!(get(&gateway.url("/users?ids=1")).await.status, 200);
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test]
async fn bodies_past_max_inflight_body_bytes_are_shed_at_once() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[server]\nmax_body_bytes = 600\nmax_inflight_body_bytes = 1000\nbody_timeout = \"5s\"",
    )
    .await;
    // A body that declares 600 bytes and stops after one holds one byte, not 600: bytes
    // count as they arrive.
    let declared_only = stalled_post(&gateway, 600).await;
    // One that sent 550 of its 600 holds 550.
    let mut half_sent = stalled_post(&gateway, 600).await;
    half_sent.write_all(&[b' '; 549]).await.expect("write");
    let body = format!(r#"{{"userIDs":[{}1]}}"#, "1,".repeat(220));
    assert!(body.len() > 449 && body.len() <= 600);
    // Wait until the 550 bytes are counted: a small body passes, this one does not.
    wait_for_active(&gateway, 2).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut served_early = 0;
    let reply = loop {
        let reply = post_json(&gateway.url("/MyService/User"), &body).await;
        if reply.status == 503 || Instant::now() > deadline {
            break reply;
        }
        served_early += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("would pass 1000 bytes")),
        "{}",
        reply.json()
    );
    // A chunked body (no Content-Length) is counted as it grows.
    let chunks = futures_util::stream::iter(
        [&body[..200], &body[200..]]
            .map(|part| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(part.to_string())))),
    );
    assert_eq!(chunked_post(&gateway, chunks).await, 503);
    // Small bodies still fit beside the stalled ones.
    let small = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[3]}"#).await;
    assert_eq!(small.status, 200);

    // The half-sent body's bytes come back when its request ends.
    drop(half_sent);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = post_json(&gateway.url("/MyService/User"), &body).await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the held bytes never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(declared_only);
    assert_eq!(upstream.calls().len(), 2 + served_early);
}

/// 40 clients that each declare a 1 MiB body and send one byte would have reserved more
/// than the 32 MiB budget if lengths were reserved up front; counted as bytes arrive, they
/// hold 40 bytes, and a real body is served beside them.
#[tokio::test]
async fn bodies_that_only_declare_a_length_hold_no_budget() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nbody_timeout = \"5s\"").await;
    let mut stalled = Vec::new();
    for _ in 0..40 {
        stalled.push(stalled_post(&gateway, 1024 * 1024).await);
    }
    wait_for_active(&gateway, 40).await;
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[4]}"#).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(upstream.calls().len(), 1);
}

/// POSTs a body of `chunks` without a `Content-Length` and returns the status.
async fn chunked_post<S>(gateway: &TestGateway, chunks: S) -> u16
where
    S: futures_util::Stream<Item = Result<http_body::Frame<Bytes>, std::io::Error>>
        + Send
        + Sync
        + Unpin
        + 'static,
{
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(gateway.url("/MyService/User"))
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(chunks))
        .expect("request");
    client.request(request).await.expect("answered").status().as_u16()
}

#[tokio::test]
async fn max_body_bytes_above_the_inflight_budget_is_a_startup_error() {
    let text = "[server]\nmax_body_bytes = 2000\nmax_inflight_body_bytes = 1000";
    let err = protogate::Config::from_toml(text, &protogate::Overrides::default()).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "server.max_body_bytes must not exceed server.max_inflight_body_bytes"
    );
}
