//! Client-facing HTTP/2 abuse, from a raw frame writer (no HTTP/2 library on the attacking
//! side, so nothing polite happens by accident): a rapid-reset flood (CVE-2023-44487), a
//! CONTINUATION flood (CVE-2024-27316's family), and SETTINGS and PING floods from a client
//! that never reads. Each ends with the connection closed (a GOAWAY first where the client
//! reads), the test process's memory about flat, and other clients served meanwhile. The
//! limits are set explicitly in `server/mod.rs`; h2 enforces them.

mod support;

use std::time::{Duration, Instant};

use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::http::get;
use support::upstream::{RecordingUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// One frame: 24-bit length, type, flags, stream id, payload (RFC 9113 §4.1).
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK block for `GET path` (static-table indexes, literals without Huffman).
fn get_block(path: &str) -> Vec<u8> {
    // :method GET (2), :scheme http (6); :path (4) and :authority (1) as literals.
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 1, b'x']);
    block
}

/// A raw connection that has sent the preface and an empty SETTINGS frame.
async fn connect(gateway: &TestGateway) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    stream.write_all(&hello).await.expect("preface");
    stream
}

/// Reads frames until EOF (or `within`); returns the GOAWAY error codes seen and whether
/// the connection was closed.
async fn read_until_closed(mut read: OwnedReadHalf, within: Duration) -> (Vec<u32>, bool) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut goaways = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let closed = loop {
        match tokio::time::timeout_at(deadline, read.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
        while buffer.len() >= 9 {
            let len = (usize::from(buffer[0]) << 16) | (usize::from(buffer[1]) << 8) | usize::from(buffer[2]);
            if buffer.len() < 9 + len {
                break;
            }
            if buffer[3] == GOAWAY && len >= 8 {
                let code = u32::from_be_bytes([buffer[13], buffer[14], buffer[15], buffer[16]]);
                goaways.push(code);
            }
            buffer.drain(..9 + len);
        }
    };
    (goaways, closed)
}

/// Resident memory of this test process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = status
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("rss");
    pages * 4096
}

/// Another client is served while (or right after) the attack runs.
async fn others_are_served(gateway: &TestGateway) {
    let started = Instant::now();
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Writes `frames` in batches until the gateway closes the connection or `total` batches
/// are written; returns how many batches went out.
async fn flood(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    total: usize,
    mut batch: impl FnMut(usize) -> Vec<u8>,
) -> usize {
    for i in 0..total {
        let bytes = batch(i);
        match tokio::time::timeout(Duration::from_secs(2), write.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            // Closed by the gateway, or it stopped reading: either way the flood is over.
            _ => return i,
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_flood_gets_goaway_and_others_are_served() {
    let upstream = RecordingUpstream::start(|_| ok().after(Duration::from_millis(50))).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let before = rss();
    let (read, mut write) = connect(&gateway).await.into_split();
    let reader = tokio::spawn(read_until_closed(read, Duration::from_secs(10)));
    // 100 HEADERS + RST_STREAM(CANCEL) pairs per write, up to 200 000 streams.
    let block = get_block("/users?ids=1");
    let sent = flood(&mut write, 2_000, |i| {
        let mut bytes = Vec::new();
        for j in 0..100u32 {
            let id = ((i as u32) * 100 + j) * 2 + 1;
            bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
            bytes.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
        }
        bytes
    })
    .await;
    let (goaways, closed) = reader.await.expect("reader");
    assert!(
        closed,
        "the flooding connection was not closed ({sent} batches sent)"
    );
    assert!(
        goaways.contains(&0xb),
        "GOAWAY ENHANCE_YOUR_CALM expected, got {goaways:?} after {sent} batches"
    );
    assert!(sent < 2_000, "the whole flood was accepted");
    others_are_served(&gateway).await;
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "memory grew by {} MiB", grown >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_gets_goaway_and_others_are_served() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let before = rss();
    let (read, mut write) = connect(&gateway).await.into_split();
    let reader = tokio::spawn(read_until_closed(read, Duration::from_secs(10)));
    // HEADERS without END_HEADERS, then CONTINUATION frames that never end the block, each
    // full of literal headers (name "x-N", 4 KiB value): up to 400 MiB if nothing stops it.
    let block = get_block("/users?ids=1");
    let mut literal = Vec::new();
    for n in 0..3u8 {
        // Literal without indexing, new name (RFC 7541 §6.2.2); value length 4000 as a
        // 7-bit-prefix integer: 127, then 3873 in base 128.
        literal.extend_from_slice(&[
            0x00,
            3,
            b'x',
            b'-',
            b'0' + n,
            0x7f,
            0x80 | (3873 % 128) as u8,
            (3873 / 128) as u8,
        ]);
        literal.extend(std::iter::repeat_n(b'a', 4000));
    }
    let sent = flood(&mut write, 100_000, |i| {
        if i == 0 {
            frame(HEADERS, END_STREAM, 1, &block)
        } else {
            frame(CONTINUATION, 0, 1, &literal)
        }
    })
    .await;
    let (goaways, closed) = reader.await.expect("reader");
    assert!(
        closed,
        "the flooding connection was not closed ({sent} frames sent)"
    );
    assert!(
        !goaways.is_empty(),
        "a GOAWAY before the close ({sent} frames sent)"
    );
    assert!(sent < 100_000, "the whole flood was read");
    others_are_served(&gateway).await;
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "memory grew by {} MiB", grown >> 20);
    assert_eq!(upstream.calls().len(), 1, "only the other client's call");
}

/// SETTINGS and PING frames each ask for an answer; a client that never reads them makes
/// the gateway's writes back up. h2 keeps one answer pending and stops reading, so memory
/// stays flat, and the connection, which never sent a request, is closed after
/// `header_read_timeout` like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_ping_floods_from_a_client_that_never_reads_are_cut_off() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nheader_read_timeout = \"500ms\"").await;
    let before = rss();
    for kind in [SETTINGS, PING] {
        let stream = connect(&gateway).await;
        let (read, mut write) = stream.into_split();
        let started = Instant::now();
        let payload: &[u8] = if kind == PING {
            &[1, 2, 3, 4, 5, 6, 7, 8]
        } else {
            // SETTINGS_INITIAL_WINDOW_SIZE = 65535, again and again.
            &[0x00, 0x04, 0x00, 0x00, 0xff, 0xff]
        };
        let one = frame(kind, 0, 0, payload);
        let sent = flood(&mut write, 1_000_000, |_| one.repeat(1_000)).await;
        assert!(sent < 1_000_000, "kind {kind}: the whole flood was read");
        // Only now does the client read: the answers that backed up, then the close.
        let (_, closed) = read_until_closed(read, Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(closed, "kind {kind}: the connection was never closed");
        assert!(took < Duration::from_secs(8), "kind {kind}: held for {took:?}");
        others_are_served(&gateway).await;
    }
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "memory grew by {} MiB", grown >> 20);
}

/// A client that reads the acknowledgements but opens no stream is closed after
/// `header_read_timeout`, with a GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_from_a_reading_client_without_streams_gets_goaway() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nheader_read_timeout = \"500ms\"").await;
    let (read, mut write) = connect(&gateway).await.into_split();
    let reader = tokio::spawn(read_until_closed(read, Duration::from_secs(10)));
    let ping = frame(PING, 0, 0, &[9; 8]);
    let started = Instant::now();
    let sent = flood(&mut write, 1_000_000, |_| ping.repeat(100)).await;
    let (goaways, closed) = reader.await.expect("reader");
    assert!(closed && sent < 1_000_000, "not closed ({sent} batches)");
    assert_eq!(goaways.first(), Some(&0), "a GOAWAY NO_ERROR first: {goaways:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    others_are_served(&gateway).await;
}

/// A client that vanishes mid-request (it stops reading, so it answers no PING) is dropped
/// after `http2_keepalive_interval` + `http2_keepalive_timeout`, long before its call ends;
/// a client that answers pings keeps its connection through the same slow call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_pings_is_dropped_by_keepalive() {
    let upstream = RecordingUpstream::start(|_| ok().after(Duration::from_millis(2500))).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[server]\nhttp2_keepalive_interval = \"300ms\"\nhttp2_keepalive_timeout = \"300ms\"",
    )
    .await;
    let (read, mut write) = connect(&gateway).await.into_split();
    let request = frame(HEADERS, END_HEADERS | END_STREAM, 1, &get_block("/users?ids=1"));
    write.write_all(&request).await.expect("request");
    let started = Instant::now();
    // It reads what the gateway sends, but never acknowledges a PING.
    let (_, closed) = read_until_closed_unacked(read, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(closed, "the silent client was never dropped");
    assert!(
        took < Duration::from_millis(2000),
        "dropped by keepalive, not after the call: {took:?}"
    );

    // Control: the h2 crate answers pings, and the same 2.5 s call completes.
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::builder()
        .uri(gateway.url("/users?ids=2"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    let response = response.await.expect("answered through the pings");
    assert_eq!(response.status(), 200);
}

/// Reads the raw bytes the gateway sends until it closes (or `within`), answering nothing.
async fn read_until_closed_unacked(mut read: OwnedReadHalf, within: Duration) -> (Vec<u8>, bool) {
    let deadline = tokio::time::Instant::now() + within;
    let mut kinds = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, read.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (kinds, true),
            Ok(Ok(n)) => kinds.extend_from_slice(&chunk[..n]),
            Err(_) => return (kinds, false),
        }
    }
}
