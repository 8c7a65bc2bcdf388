//! Connection and request limits, each answered as google.rpc.Status JSON: a slowloris client
//! is cut off without hurting others, oversized heads get 431/414, a slow body gets 408, and
//! requests over the concurrency limit are shed at once with 503 and Retry-After, and an
//! HTTP/2 connection gets no more streams at once than `http2_max_concurrent_streams`;
//! connections past `max_connections` are closed at once, and an idle keep-alive
//! connection gives its slot back after `header_read_timeout`.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use support::eventually;
use support::gateway::TestGateway;
use support::http::{get, send};
use support::upstream::{RecordingUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// Reads until EOF (or 5 s) and returns what arrived.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slowloris_connection_is_closed_and_others_are_served() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nheader_read_timeout = \"300ms\"").await;
    let mut slow = TcpStream::connect(gateway.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Trickle: 1")
        .await
        .expect("write");
    let started = Instant::now();
    // Meanwhile a normal client is served.
    assert_eq!(get(&gateway.url("/healthz")).await.status, 200);
    let answer = read_all(&mut slow).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "slow connection held for {took:?}");
    assert!(
        !answer.contains("200 OK"),
        "the trickled request must not be served: {answer:?}"
    );
}

#[tokio::test]
async fn oversized_heads_get_json_431_and_414() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let many: Vec<(String, String)> = (0..150).map(|i| (format!("x-h{i}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let reply = send(Method::GET, &gateway.url("/users"), &many, Bytes::new()).await;
    assert_eq!(reply.status, 431);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("the limit is 100")),
        "{}",
        reply.json()
    );

    let big = "a".repeat(40 * 1024);
    let reply = send(
        Method::GET,
        &gateway.url("/users"),
        &[("x-big", &big)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 431);
    assert_eq!(reply.json()["code"], 3);

    let long = format!("/users?ids={}", "1,".repeat(5000));
    let reply = get(&gateway.url(&long)).await;
    assert_eq!(reply.status, 414);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn slow_body_gets_408() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nbody_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = "POST /MyService/User HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"userIDs\":";
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("content-type: application/json"), "{answer}");
    assert!(
        answer.contains("\"code\":4") && answer.contains("did not arrive within 300ms"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn excess_requests_are_shed_with_retry_after() {
    // The slow calls hold their permits for 2 s; shedding is measured well inside that.
    let upstream = RecordingUpstream::start(|_| ok().after(Duration::from_secs(2))).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nmax_concurrent_requests = 2").await;
    let url = gateway.url("/users?ids=1");
    let slow: Vec<_> = (0..2).map(|_| tokio::spawn(get_owned(url.clone()))).collect();
    // Wait until both slow calls hold their permits (the upstream has them).
    eventually(
        "both slow calls to reach the upstream",
        Duration::from_secs(5),
        || async { (upstream.calls().len() >= 2).then_some(()) },
    )
    .await;
    let started = Instant::now();
    for _ in 0..3 {
        let reply = get(&url).await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(reply.json()["code"], 14);
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "shedding must not wait: {:?}",
        started.elapsed()
    );
    // Probes are never shed.
    assert_eq!(get(&gateway.url("/healthz")).await.status, 200);
    for task in slow {
        assert_eq!(task.await.expect("no panic"), 200, "accepted requests finish");
    }
    assert_eq!(
        upstream.calls().len(),
        2,
        "shed requests never reached the upstream"
    );
    assert_eq!(get(&url).await.status, 200, "capacity is back");
}

async fn get_owned(url: String) -> u16 {
    get(&url).await.status.as_u16()
}

#[tokio::test]
async fn http2_streams_per_connection_are_capped() {
    let starts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let seen = starts.clone();
    let upstream = RecordingUpstream::start(move |_| {
        seen.lock().expect("lock").push(Instant::now());
        ok().after(Duration::from_millis(300))
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nhttp2_max_concurrent_streams = 2").await;
    // HTTP/2 with prior knowledge, on one connection.
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let url = gateway.url("/users?ids=1");
    let request = move || {
        http::Request::builder()
            .uri(url.as_str())
            .body(())
            .expect("request")
    };
    let call = |client: h2::client::SendRequest<Bytes>, request: http::Request<()>| async move {
        let mut client = client.ready().await.expect("stream capacity");
        let (response, _) = client.send_request(request, true).expect("send");
        let response = response.await.expect("response");
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("body");
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        (status, bytes)
    };
    // One call first, so that the client has the server's SETTINGS before the burst.
    let (status, _) = call(client.clone(), request()).await;
    assert_eq!(status, 200);
    assert_eq!(client.current_max_send_streams(), 2, "the advertised limit");
    starts.lock().expect("lock").clear();

    let burst: Vec<_> = (0..6)
        .map(|_| tokio::spawn(call(client.clone(), request())))
        .collect();
    for task in burst {
        let (status, body) = task.await.expect("no panic");
        assert_eq!(status, 200, "{:?}", String::from_utf8_lossy(&body));
        assert_eq!(body, br#"{"message":"success","data":[]}"#);
    }
    // Each upstream call lasts 300 ms, so three starts inside 300 ms would mean three
    // streams at once on the connection.
    let mut starts = starts.lock().expect("lock").clone();
    starts.sort();
    assert_eq!(starts.len(), 6, "every stream of the burst was served");
    for window in starts.windows(3) {
        assert!(
            window[2] - window[0] >= Duration::from_millis(290),
            "three streams in flight at once: starts {:?} apart",
            window[2] - window[0]
        );
    }
}

/// Sends one keep-alive `GET path` on `stream` and returns the whole answer (head and
/// `Content-Length` body), or what arrived before the connection ended.
async fn request_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => return text,
        }
    }
}

#[tokio::test]
async fn connections_past_max_connections_are_closed_at_once_and_slots_come_back() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nmax_connections = 2").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        let answer = request_on(&mut stream, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        held.push(stream);
    }

    // A third connection is closed without an answer, at once.
    let started = Instant::now();
    let mut third = TcpStream::connect(gateway.addr)
        .await
        .expect("the kernel accepts");
    let answer = request_on(&mut third, "/healthz").await;
    assert_eq!(answer, "", "a connection past the limit gets no answer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusing must not wait: {:?}",
        started.elapsed()
    );
    let mut refused = 1;

    // The held ones are unaffected.
    assert!(
        request_on(&mut held[0], "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );

    // Closing one gives its slot back as soon as the gateway sees the close.
    drop(held.pop());
    let refused_meanwhile = std::cell::Cell::new(0);
    let (mut fresh, answer) = eventually("the slot to come back", Duration::from_secs(5), || async {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        let answer = request_on(&mut stream, "/metrics").await;
        if answer.is_empty() {
            refused_meanwhile.set(refused_meanwhile.get() + 1);
            return None;
        }
        Some((stream, answer))
    })
    .await;
    refused += refused_meanwhile.get();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.contains("\nprotogate_open_connections 2\n"), "{answer}");
    assert!(
        answer.contains(&format!("\nprotogate_refused_connections_total {refused}\n")),
        "{refused} refused: {answer}"
    );
    assert!(
        request_on(&mut fresh, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_header_read_timeout() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nheader_read_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let answer = request_on(&mut stream, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {answer}"
    );
    let started = Instant::now();
    let rest = read_all(&mut stream).await;
    let idle = started.elapsed();
    assert_eq!(rest, "", "nothing more is sent before the close");
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(3),
        "an idle connection is closed after header_read_timeout, not {idle:?}"
    );
}
