//! Broken calls, as gRPC's PROTOCOL-HTTP2.md says and grpc-go and tonic do, against a
//! scripted raw HTTP/2 upstream (`support/raw_upstream.rs`; tonic never breaks a call on
//! purpose). Every `RST_STREAM` reason maps to its gRPC code and then through the HTTP
//! table; a connection lost mid-call is UNAVAILABLE; a reply without `grpc-status` is
//! UNKNOWN. Only a call the spec proves unprocessed (`REFUSED_STREAM`, a GOAWAY below the
//! call's stream id) is retried, even for a POST; nothing else is. Broken status details
//! never panic.

mod support;

use h2::Reason;
use serde_json::json;
use support::gateway::TestGateway;
use support::http::{Reply, get, post_json};
use support::raw_upstream::{Act, Lose, RawUpstream, alice_reply, frame};

fn assert_status(reply: &Reply, http: u16, code: i64, message: &str) {
    assert_eq!(
        reply.status,
        http,
        "body: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"code": code, "message": message, "details": []})
    );
}

fn alice() -> serde_json::Value {
    json!({"message": "success", "data": [{"name": "Alice", "age": 30, "email": "alice@example.com"}]})
}

/// Every reset reason, before and after the reply head: the spec's code, grpc-gateway's
/// HTTP status, and one call only (a POST the upstream may have processed never goes again).
#[tokio::test]
async fn every_reset_reason_maps_to_the_specs_code() {
    let table = [
        (Reason::NO_ERROR, 500, 13),
        (Reason::PROTOCOL_ERROR, 500, 13),
        (Reason::INTERNAL_ERROR, 500, 13),
        (Reason::FLOW_CONTROL_ERROR, 500, 13),
        (Reason::CANCEL, 499, 1),
        (Reason::ENHANCE_YOUR_CALM, 429, 8),
        (Reason::INADEQUATE_SECURITY, 403, 7),
    ];
    for (reason, http, code) in table {
        for after_head in [false, true] {
            let upstream = RawUpstream::start(move |_| match after_head {
                false => Act::ResetAtOnce(reason),
                true => Act::ResetAfterHeaders(reason),
            })
            .await;
            let gateway = TestGateway::start(upstream.addr, "").await;
            let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
            assert_status(
                &reply,
                http,
                code,
                &format!("upstream reset the call ({reason:?})"),
            );
            assert_eq!(upstream.calls(), 1, "{reason:?}, after the head: {after_head}");
        }
    }
}

#[tokio::test]
async fn refused_stream_is_retried_once_even_for_a_post() {
    let upstream = RawUpstream::start(|n| match n {
        0 => Act::ResetAtOnce(Reason::REFUSED_STREAM),
        _ => Act::Answer,
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
    reply.assert_json(200, alice());
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn stream_refused_twice_is_503() {
    let upstream = RawUpstream::start(|_| Act::ResetAtOnce(Reason::REFUSED_STREAM)).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["code"], 14);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("upstream unavailable: upstream refused the call")),
        "{}",
        reply.json()
    );
    assert_eq!(upstream.calls(), 2, "one retry, no more");
}

#[tokio::test]
async fn call_above_a_goaways_last_stream_id_is_retried_on_a_new_connection() {
    let upstream = RawUpstream::start_with(|_| Act::Answer, Some(Lose::GoAwayUnprocessed)).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    // A POST: only a call the upstream provably never processed may go again.
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
    reply.assert_json(200, alice());
    assert_eq!(upstream.connections(), 2, "a fresh connection");
    assert_eq!(
        upstream.received().len(),
        1,
        "processed once, on the second connection"
    );
}

/// The connection lost while a call was open is UNAVAILABLE (503), as gRPC clients report
/// it; the upstream may have acted on the call, so a POST is not retried.
#[tokio::test]
async fn connection_lost_mid_call_is_503_and_a_post_is_not_retried() {
    for lose in [Lose::BeforeTheHead, Lose::AfterTheHead] {
        let upstream = RawUpstream::start_with(|_| Act::Answer, Some(lose)).await;
        let gateway = TestGateway::start(upstream.addr, "").await;
        let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
        assert_status(&reply, 503, 14, "upstream connection lost during the call");
        assert_eq!(upstream.connections(), 1, "{lose:?}: not retried");
    }
}

/// A GET is safe to repeat: after a lost connection it goes again, on a new connection.
#[tokio::test]
async fn connection_lost_mid_call_retries_a_get_once() {
    let upstream = RawUpstream::start_with(|_| Act::Answer, Some(Lose::AfterTheHead)).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    get(&gateway.url("/users?ids=1")).await.assert_json(200, alice());
    assert_eq!(upstream.connections(), 2);
}

/// A reply that ends without `grpc-status` is UNKNOWN (500), as tonic 0.14 and grpc-go
/// report it, whether the stream ends after a message, with trailers that lack it, or with
/// a head that ends the stream.
#[tokio::test]
async fn reply_without_grpc_status_is_unknown() {
    let message = frame(false, &alice_reply());
    let cases = [
        (
            Act::Reply {
                head: Vec::new(),
                data: vec![message.clone()],
                trailers: None,
            },
            "the stream ended without trailers",
        ),
        (
            Act::Reply {
                head: Vec::new(),
                data: vec![message],
                trailers: Some(vec![("x-other", "1")]),
            },
            "trailers without it",
        ),
        (
            Act::Reply {
                head: Vec::new(),
                data: Vec::new(),
                trailers: Some(Vec::new()),
            },
            "trailers without it",
        ),
    ];
    for (act, why) in cases {
        let upstream = RawUpstream::start(move |_| act.clone()).await;
        let gateway = TestGateway::start(upstream.addr, "").await;
        let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
        assert_status(
            &reply,
            500,
            2,
            &format!("upstream ended the call without a grpc-status ({why})"),
        );
        assert_eq!(upstream.calls(), 1);
    }
}

#[tokio::test]
async fn status_details_that_are_not_base64_are_dropped_not_a_panic() {
    let upstream = RawUpstream::start(|_| Act::Status("3", "!!not*base64!!")).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    reply.assert_json(400, json!({"code": 3, "message": "bad things", "details": []}));
}
