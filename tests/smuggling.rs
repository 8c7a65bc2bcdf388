//! HTTP/1 request smuggling, over raw sockets: a message whose framing two parsers could
//! read differently is refused, or read one safe way and the connection closed after it,
//! never read as two requests. Each case sends an ambiguous request with a second request
//! (`GET /users?ids=999`) hidden where another parser would find it, then asserts how many
//! answers came back, that the connection was closed, and that the hidden request never
//! reached the upstream. The refusals come from hyper's parser, before protogate sees the
//! request, so they are hyper's bare 400s, not `google.rpc.Status` JSON. hyper already held
//! every case when these tests were written; they pin that it keeps doing so.

mod support;

use std::time::Duration;

use protogate::pb::protogate_unpackaged::{UserReply, UserReq};
use support::gateway::TestGateway;
use support::upstream::{RecordingUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HIDDEN: &str = "GET /users?ids=999 HTTP/1.1\r\nHost: x\r\n\r\n";
const BODY: &str = r#"{"userIDs":[1]}"#;

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// What the gateway answered on one connection for `raw`, and whether it closed the
/// connection (within 3 s) afterwards.
struct Exchange {
    statuses: Vec<String>,
    text: String,
    closed: bool,
}

async fn exchange(gateway: &TestGateway, raw: &str) -> Exchange {
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream.write_all(raw.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&got).into_owned();
    let statuses = text
        .match_indices("HTTP/1.")
        .map(|(at, _)| text[at..].lines().next().unwrap_or_default().to_string())
        .collect();
    Exchange {
        statuses,
        text,
        closed,
    }
}

/// The gateway answered once with `status`, then closed; the hidden request never ran.
async fn refused_or_read_once(
    upstream: &RecordingUpstream,
    gateway: &TestGateway,
    raw: &str,
    status: &str,
) -> Exchange {
    let answer = exchange(gateway, raw).await;
    assert_eq!(answer.statuses.len(), 1, "one answer, not two: {}", answer.text);
    assert!(
        answer.statuses[0].starts_with(status),
        "expected {status}: {}",
        answer.text
    );
    assert!(
        answer.closed,
        "the connection must close after it: {}",
        answer.text
    );
    assert!(
        upstream
            .calls()
            .iter()
            .all(|c| c.decode::<UserReq>().user_i_ds != vec![999]),
        "the hidden request reached the upstream"
    );
    answer
}

async fn stack() -> (RecordingUpstream, TestGateway) {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    (upstream, gateway)
}

#[tokio::test]
async fn transfer_encoding_with_content_length_is_never_two_requests() {
    let (upstream, gateway) = stack().await;
    // By Content-Length (4) the body is "f\r\n{" and the rest a second request; by
    // Transfer-Encoding the body is the JSON and the hidden GET comes after it.
    let raw = format!(
        "POST /MyService/User HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{BODY}\r\n0\r\n\r\n{HIDDEN}",
        BODY.len()
    );
    // hyper reads it by Transfer-Encoding alone, drops the Content-Length and closes the
    // connection after answering (RFC 9112 §6.1), so the bytes after the chunked body are
    // never read as a request.
    let answer = refused_or_read_once(&upstream, &gateway, &raw, "HTTP/1.1 200").await;
    assert!(answer.text.contains("connection: close"), "{}", answer.text);
    let [call] = &upstream.calls()[..] else {
        panic!("one call: {:?}", upstream.calls().len())
    };
    assert_eq!(
        call.decode::<UserReq>().user_i_ds,
        vec![1],
        "the body read by Transfer-Encoding"
    );
}

#[tokio::test]
async fn two_different_content_lengths_are_refused() {
    let (upstream, gateway) = stack().await;
    let raw = format!(
        "POST /MyService/User HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nContent-Length: 0\r\n\r\n{BODY}{HIDDEN}",
        BODY.len()
    );
    refused_or_read_once(&upstream, &gateway, &raw, "HTTP/1.1 400").await;
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn http10_with_transfer_encoding_is_refused() {
    let (upstream, gateway) = stack().await;
    let raw = format!(
        "POST /MyService/User HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{BODY}\r\n0\r\n\r\n{HIDDEN}",
        BODY.len()
    );
    refused_or_read_once(&upstream, &gateway, &raw, "HTTP/1.1 400").await;
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn transfer_encoding_other_than_chunked_last_is_refused() {
    let (upstream, gateway) = stack().await;
    for coding in ["chunked, identity", "xchunked", "identity"] {
        let raw = format!(
            "POST /MyService/User HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: {coding}\r\n\r\n{:x}\r\n{BODY}\r\n0\r\n\r\n{HIDDEN}",
            BODY.len()
        );
        let answer = exchange(&gateway, &raw).await;
        assert!(answer.closed, "{coding}: {}", answer.text);
        assert!(
            answer.statuses.len() <= 1 && answer.statuses.iter().all(|s| !s.contains(" 200 ")),
            "{coding}: {}",
            answer.text
        );
    }
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn obs_fold_header_is_refused() {
    let (upstream, gateway) = stack().await;
    let raw = format!("GET /users?ids=1 HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n{HIDDEN}");
    refused_or_read_once(&upstream, &gateway, &raw, "HTTP/1.1 400").await;
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn bare_lf_line_endings_are_read_as_one_request_each() {
    let (upstream, gateway) = stack().await;
    // Bare LF is read as a line ending (RFC 9112 §2.2 allows it) consistently, so the
    // pipelined second request is a real second request, not a hidden one: two answers,
    // the first for ids=1, the second for ids=2, in order.
    let raw =
        "GET /users?ids=1 HTTP/1.1\nHost: x\n\nGET /users?ids=2 HTTP/1.1\nHost: x\nConnection: close\n\n";
    let answer = exchange(&gateway, raw).await;
    assert_eq!(answer.statuses.len(), 2, "{}", answer.text);
    assert!(
        answer.statuses.iter().all(|s| s.starts_with("HTTP/1.1 200")),
        "{}",
        answer.text
    );
    let ids: Vec<Vec<i32>> = upstream
        .calls()
        .iter()
        .map(|c| c.decode::<UserReq>().user_i_ds)
        .collect();
    assert_eq!(ids, vec![vec![1], vec![2]]);
    // A bare LF inside a header line, by contrast, is no line ending of a header value
    // that another parser could split differently: the head is one request.
    let raw = format!(
        "POST /MyService/User HTTP/1.1\nHost: x\nContent-Type: application/json\nConnection: close\nContent-Length: {}\n\n{BODY}",
        BODY.len()
    );
    let answer = exchange(&gateway, &raw).await;
    assert_eq!(answer.statuses.len(), 1, "{}", answer.text);
    assert!(answer.statuses[0].starts_with("HTTP/1.1 200"), "{}", answer.text);
}

#[tokio::test]
async fn bad_content_length_values_are_refused() {
    let (upstream, gateway) = stack().await;
    for value in ["+15", "0x0f", "15, 16", "-1", "1 5"] {
        let raw = format!(
            "POST /MyService/User HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {value}\r\n\r\n{BODY}{HIDDEN}"
        );
        refused_or_read_once(&upstream, &gateway, &raw, "HTTP/1.1 400").await;
    }
    assert!(upstream.calls().is_empty());
}
