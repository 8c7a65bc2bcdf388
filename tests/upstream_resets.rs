//! An upstream that resets the HTTP/2 stream. A raw h2 server (not tonic: tonic never sends
//! these on purpose) answers each call as the test scripts: `RST_STREAM` before any reply,
//! after the reply headers, or `REFUSED_STREAM`, which RFC 9113 §8.7 guarantees was not
//! processed. A reset is a 502 `google.rpc.Status` answer and is not retried; a refused
//! stream is retried once, even for a POST, and is a 503 when refused again; so is a call
//! above a GOAWAY's last stream id (RFC 9113 §6.8). Broken status details never panic.

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
    /// A trailers-only reply with this `grpc-status` and raw `grpc-status-details-bin`.
    Status(&'static str, &'static str),
}

struct RawUpstream {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start(script: fn(usize) -> Act) -> RawUpstream {
        Self::start_with(script, false).await
    }

    /// Like `start`, except that the first connection gets, after the client's first
    /// HEADERS frame, a GOAWAY whose last stream id is 0: the call was not processed.
    async fn start_with(script: fn(usize) -> Act, goaway_first: bool) -> RawUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let calls = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (counter, accepted) = (calls.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let counter = counter.clone();
                if accepted.fetch_add(1, Ordering::SeqCst) == 0 && goaway_first {
                    tokio::spawn(goaway_after_first_headers(tcp));
                    continue;
                }
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
        RawUpstream {
            addr,
            calls,
            connections,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Speaks just enough HTTP/2 by hand (the h2 crate always counts a received stream as
/// processed): reads the client preface and frames until a HEADERS frame, then answers
/// SETTINGS and GOAWAY(last stream id 0, NO_ERROR) and closes.
async fn goaway_after_first_headers(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut preface = [0u8; 24];
    if tcp.read_exact(&mut preface).await.is_err() {
        return;
    }
    loop {
        let mut head = [0u8; 9];
        if tcp.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if tcp.read_exact(&mut payload).await.is_err() {
            return;
        }
        if head[3] == 0x1 {
            break;
        }
    }
    let settings = [0u8, 0, 0, 0x4, 0, 0, 0, 0, 0];
    let goaway = [0u8, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let _ = tcp.write_all(&settings).await;
    let _ = tcp.write_all(&goaway).await;
    let _ = tcp.shutdown().await;
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
        Act::Status(code, details) => {
            let head = Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", code)
                .header("grpc-message", "bad%20things")
                .header("grpc-status-details-bin", details)
                .body(())
                .expect("head");
            let _ = respond.send_response(head, true);
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

#[tokio::test]
async fn call_above_a_goaways_last_stream_id_is_retried_on_a_new_connection() {
    let upstream = RawUpstream::start_with(|_| Act::Answer, true).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    // A POST: only a call the upstream provably never processed may go again.
    let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1]}"#).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        2,
        "a fresh connection"
    );
    assert_eq!(upstream.calls(), 1, "processed once, on the second connection");
}

#[tokio::test]
async fn status_details_that_are_not_base64_are_dropped_not_a_panic() {
    let upstream = RawUpstream::start(|_| Act::Status("3", "!!not*base64!!")).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    reply.assert_json(400, json!({"code": 3, "message": "bad things", "details": []}));
}
