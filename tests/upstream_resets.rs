//! An upstream that resets the HTTP/2 stream. A raw h2 server (not tonic: tonic never sends
//! these on purpose) answers each call as the test scripts: `RST_STREAM` before any reply,
//! after the reply headers, or `REFUSED_STREAM`, which RFC 9113 §8.7 guarantees was not
//! processed. A reset is a 502 `google.rpc.Status` answer and is not retried; a refused
//! stream is retried once, even for a POST, and is a 503 when refused again.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use h2::Reason;
use http::Response;
use prost::Message;
use protogate::pb::protogate_unpackaged::{User, UserReply};
use serde_json::json;
use support::gateway::TestGateway;
use support::http::{get, post_json};

/// What the raw upstream does with the n-th call (0-based).
#[derive(Clone, Copy, Debug)]
enum Act {
    ResetAtOnce(Reason),
    ResetAfterHeaders(Reason),
    Answer,
}

struct RawUpstream {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start(script: fn(usize) -> Act) -> RawUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((_request, respond))) = connection.accept().await {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(act(script(n), respond));
                    }
                });
            }
        });
        RawUpstream { addr, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn act(act: Act, mut respond: h2::server::SendResponse<Bytes>) {
    let headers = || {
        Response::builder()
            .header("content-type", "application/grpc")
            .body(())
            .expect("response head")
    };
    match act {
        Act::ResetAtOnce(reason) => respond.send_reset(reason),
        Act::ResetAfterHeaders(reason) => {
            let mut stream = respond.send_response(headers(), false).expect("headers");
            stream.send_reset(reason);
        }
        Act::Answer => {
            let reply = UserReply {
                message: "success".into(),
                data: vec![User {
                    name: "Alice".into(),
                    age: 30,
                    email: "alice@example.com".into(),
                }],
            }
            .encode_to_vec();
            // gRPC message framing: uncompressed flag, big-endian length, message.
            let mut frame = BytesMut::new();
            frame.put_u8(0);
            frame.put_u32(u32::try_from(reply.len()).expect("small"));
            frame.put_slice(&reply);
            let mut stream = respond.send_response(headers(), false).expect("headers");
            stream.send_data(frame.freeze(), false).expect("data");
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().expect("value"));
            stream.send_trailers(trailers).expect("trailers");
        }
    }
}

fn assert_status(reply: &support::http::Reply, http: u16, code: i64, message_part: &str) {
    assert_eq!(
        reply.status,
        http,
        "body: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(message_part),
        "{message:?} should contain {message_part:?}"
    );
}

#[tokio::test]
async fn reset_before_any_reply_is_502_and_not_retried() {
    let upstream = RawUpstream::start(|_| Act::ResetAtOnce(Reason::INTERNAL_ERROR)).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert_status(&reply, 502, 13, "upstream reset the call (INTERNAL_ERROR)");
    assert_eq!(
        upstream.calls(),
        1,
        "a call the upstream may have processed is never retried"
    );
}

#[tokio::test]
async fn reset_after_the_reply_headers_is_502() {
    let upstream = RawUpstream::start(|_| Act::ResetAfterHeaders(Reason::CANCEL)).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
    assert_status(&reply, 502, 13, "upstream reset the call (CANCEL)");
    assert_eq!(upstream.calls(), 1);
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
    reply.assert_json(
        200,
        json!({"message": "success", "data": [{"name": "Alice", "age": 30, "email": "alice@example.com"}]}),
    );
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn stream_refused_twice_is_503() {
    let upstream = RawUpstream::start(|_| Act::ResetAtOnce(Reason::REFUSED_STREAM)).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
    assert_status(&reply, 503, 14, "upstream refused the call");
    assert_eq!(upstream.calls(), 2, "one retry, no more");
}
