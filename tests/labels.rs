//! Label hygiene: what a client sends cannot grow `/metrics` or pollute logs. Methods outside
//! RFC 9110 (+ PATCH) are recorded as `_OTHER` in metrics and in the access log (spans
//! already were, `telemetry.rs`), and a client `x-request-id` that is longer than 128
//! bytes, not visible ASCII, or sent twice is replaced by a generated one everywhere: the
//! answer, the upstream metadata and the log.

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::http::{get, send};
use support::process::spawn_gateway_for;
use support::upstream::{RecordingUpstream, Reply};

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

async fn metrics_text(gateway: &TestGateway) -> String {
    String::from_utf8(get(&gateway.url("/metrics")).await.body.to_vec()).expect("UTF-8")
}

#[tokio::test]
async fn three_hundred_junk_methods_add_one_other_series_set_not_three_hundred() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    // One junk request first, so the rejection counter's series exists in the baseline.
    let junk = |i: usize| Method::from_bytes(format!("FOO{i}").as_bytes()).expect("a token");
    assert_eq!(
        send(junk(0), &gateway.url("/users"), &[], Bytes::new())
            .await
            .status,
        405
    );
    let before = metrics_text(&gateway).await;
    for i in 1..=300 {
        let reply = send(junk(i), &gateway.url("/users"), &[], Bytes::new()).await;
        assert_eq!(reply.status, 405);
    }
    let after = metrics_text(&gateway).await;
    let grown = after.len().saturating_sub(before.len());
    // The /metrics requests themselves add their own series; a few KB in all.
    assert!(grown < 4096, "300 junk methods grew /metrics by {grown} bytes");
    assert!(!after.contains("FOO"), "a junk method became a label:\n{after}");
    let other = "http_request_method=\"_OTHER\",http_route=\"(unmatched)\",http_response_status_code=\"405\"";
    assert!(
        after.contains(&format!(
            "http_server_request_duration_seconds_count{{{other}}} 301\n"
        )),
        "{after}"
    );
}

#[tokio::test]
async fn unacceptable_client_request_ids_are_replaced_everywhere() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let url = gateway.url("/users?ids=1");
    let long = "x".repeat(129);
    let fit = "y".repeat(128);
    for (sent, kept) in [
        (fit.as_str(), true),
        ("client-7", true),
        (long.as_str(), false),
        ("has space", false),
        ("new\tline", false),
    ] {
        let reply = send(Method::GET, &url, &[("x-request-id", sent)], Bytes::new()).await;
        assert_eq!(reply.status, 200);
        let echoed = reply.header("x-request-id").expect("an id is echoed");
        let forwarded = upstream.calls().last().expect("a call").meta("x-request-id");
        assert_eq!(
            forwarded.as_deref(),
            Some(echoed),
            "the upstream gets the same id"
        );
        if kept {
            assert_eq!(echoed, sent);
        } else {
            assert_ne!(echoed, sent);
            assert_eq!(echoed.len(), 36, "a generated UUID: {echoed}");
        }
    }
    // Two ids: one generated instead, so that the answer and the upstream agree.
    let reply = send(
        Method::GET,
        &url,
        &[("x-request-id", "a"), ("x-request-id", "b")],
        Bytes::new(),
    )
    .await;
    let echoed = reply.header("x-request-id").expect("echoed").to_string();
    assert_eq!(echoed.len(), 36, "{echoed}");
    let call = upstream.calls().pop().expect("a call");
    assert_eq!(call.meta("x-request-id"), Some(echoed));
}

/// The real binary's access log: a junk method is logged as `_OTHER`, and a replaced id is
/// logged as the id the client got back.
#[tokio::test]
async fn access_log_records_other_and_the_replacement_id() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let (_gateway, addr, log) = spawn_gateway_for(&format!("http://{}", upstream.addr));
    let junk = Method::from_bytes(b"BREW").expect("a token");
    let url = format!("http://{addr}/users?ids=1");
    let reply = send(junk, &url, &[("x-request-id", "brew-1")], Bytes::new()).await;
    assert_eq!(reply.status, 405);
    let line = log.request("brew-1");
    assert_eq!(line["method"], "_OTHER", "{line}");
    assert_eq!(line["status"], 405);

    let long = "z".repeat(300);
    let reply = send(Method::GET, &url, &[("x-request-id", &long)], Bytes::new()).await;
    let echoed = reply.header("x-request-id").expect("echoed");
    assert_eq!(echoed.len(), 36);
    let line = log.request(echoed);
    assert_eq!(line["method"], "GET");
    assert!(
        !log.lines().iter().any(|l| l.contains(&long)),
        "the client's long id reached the log"
    );
}
