//! Connection slots cannot be held for free: a connection that has not sent a complete
//! request head within `header_read_timeout` is closed whatever the protocol (nothing sent
//! at all, a bare HTTP/2 preface, an HTTP/2 connection that opens no stream), and an HTTP/2
//! connection with no request in flight is closed after `idle_timeout` with a GOAWAY. A
//! client whose HTTP/2 connection stops answering pings is dropped after
//! `http2_keepalive_timeout`. Each test fills `max_connections` and then shows that a new
//! client is served once the slots come back.

mod support;

use std::time::{Duration, Instant};

use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::upstream::{RecordingUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// Reads until the gateway closes the connection; how long that took, or `None` after
/// `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end)
        .await
        .ok()
        .map(|()| started.elapsed())
}

/// One HTTP/1 `GET /healthz` on a fresh connection: its status line, or `None` when the
/// connection was closed without an answer (refused at `max_connections`).
async fn healthz(gateway: &TestGateway) -> Option<String> {
    let mut stream = TcpStream::connect(gateway.addr).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer
        .lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

/// Fills every slot with `max + 5` connections that each send `opening`, checks that a
/// new client is refused while they hold the slots, then that each held one is closed
/// within about `header_read_timeout` and a new client is served.
async fn silent_connections_give_their_slots_back(opening: &[u8]) {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[server]\nmax_connections = 4\nheader_read_timeout = \"400ms\"",
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 + 5 {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        if !opening.is_empty() {
            // The five past the limit may already be closed: a failed write is expected.
            let _ = stream.write_all(opening).await;
        }
        held.push(stream);
    }
    let started = Instant::now();
    assert_eq!(
        healthz(&gateway).await,
        None,
        "every slot is held, so a new client is refused"
    );
    for stream in &mut held {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "a silent connection was never closed");
    }
    let all_closed = started.elapsed();
    assert!(
        all_closed < Duration::from_secs(3),
        "silent connections held their slots for {all_closed:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(status) = healthz(&gateway).await {
            assert_eq!(status, "HTTP/1.1 200 OK");
            break;
        }
        assert!(Instant::now() < deadline, "no slot came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_after_header_read_timeout() {
    silent_connections_give_their_slots_back(b"").await;
}

#[tokio::test]
async fn bare_http2_prefaces_are_closed_after_header_read_timeout() {
    silent_connections_give_their_slots_back(PREFACE).await;
}

#[tokio::test]
async fn a_partial_http2_preface_is_closed_after_header_read_timeout() {
    silent_connections_give_their_slots_back(&PREFACE[..10]).await;
}

/// An HTTP/2 client that completes the handshake (SETTINGS both ways) but never opens a
/// stream is closed with a GOAWAY after `header_read_timeout`.
#[tokio::test]
async fn http2_connection_without_a_stream_is_closed_with_goaway() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nheader_read_timeout = \"300ms\"").await;
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let (_client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the gateway closed the connection");
    let took = started.elapsed();
    assert!(
        ended.is_ok(),
        "closed gracefully (GOAWAY NO_ERROR), not reset: {ended:?}"
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "closed after header_read_timeout, not {took:?}"
    );
}

/// An HTTP/2 connection that served a request and then stays idle is closed with a GOAWAY
/// after `idle_timeout`; while a request is in flight it is not.
#[tokio::test]
async fn idle_http2_connection_is_closed_after_idle_timeout() {
    let upstream = RecordingUpstream::start(|_| ok().after(Duration::from_millis(700))).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[server]\nheader_read_timeout = \"300ms\"\nidle_timeout = \"400ms\"",
    )
    .await;
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::builder()
        .uri(gateway.url("/users?ids=1"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    // The call takes 700 ms, longer than the idle timeout: a stream in flight is not idle.
    let response = response.await.expect("answered, not cut off as idle");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        chunk.expect("body");
    }
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the idle connection was closed")
        .expect("no panic");
    let took = started.elapsed();
    assert!(ended.is_ok(), "closed with GOAWAY NO_ERROR: {ended:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "closed after idle_timeout, not {took:?}"
    );
    assert_eq!(upstream.calls().len(), 1);
}
