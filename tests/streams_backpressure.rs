//! Backpressure (issue 22, point 4): an upstream that would stream 1 GiB to a client that
//! reads nothing, over HTTP (NDJSON) and over WebSocket. The upstream is a raw HTTP/2
//! server that sends only as the gateway's flow-control window allows, and counts what it
//! could send; the client is a raw socket that sends its request and never reads. The
//! upstream is held back (what it sent levels off far below the gigabyte) and the
//! gateway's peak RSS stays under 64 MiB: no buffer grows with a peer that does not read.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use support::process::{ChildGuard, manifest_dir, spawn_gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GIB: u64 = 1 << 30;
const HELD_BACK: u64 = 64 << 20;

/// One `Feature` reply (field 1, `name`, of 16 000 bytes) as a gRPC frame.
fn feature_frame() -> Bytes {
    let name_len: usize = 16_000;
    let mut message = BytesMut::new();
    message.put_u8(0x0A);
    // The length as a varint (two bytes for 16 000).
    message.put_u8((name_len & 0x7f) as u8 | 0x80);
    message.put_u8((name_len >> 7) as u8);
    message.put_bytes(b'x', name_len);
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.extend_from_slice(&message);
    frame.freeze()
}

/// An HTTP/2 server that answers every call with up to 1 GiB of replies, each sent only
/// once the peer's window has room for it; `sent` counts what left.
async fn firehose() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let counter = counter.clone();
                    // Only the call under test gets the hose; the gateway's own calls (its
                    // reflection check) get UNIMPLEMENTED.
                    if request.uri().path() != "/routeguide.RouteGuide/ListFeatures" {
                        let head = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", "12")
                            .body(())
                            .expect("head");
                        let _ = respond.send_response(head, true);
                        continue;
                    }
                    tokio::spawn(async move {
                        let head = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .expect("head");
                        let Ok(mut stream) = respond.send_response(head, false) else {
                            return;
                        };
                        let frame = feature_frame();
                        let mut total = 0u64;
                        while total < GIB {
                            // A stream the gateway reset (h2 would still grant capacity and
                            // discard what is sent) ends the hose.
                            let reset = futures_util::FutureExt::now_or_never(std::future::poll_fn(|cx| {
                                stream.poll_reset(cx)
                            }));
                            if reset.is_some() {
                                return;
                            }
                            let mut left = frame.clone();
                            while !left.is_empty() {
                                stream.reserve_capacity(left.len());
                                let Some(Ok(granted)) =
                                    std::future::poll_fn(|cx| stream.poll_capacity(cx)).await
                                else {
                                    return;
                                };
                                let piece = left.split_to(granted.min(left.len()));
                                counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
                                if stream.send_data(piece, false).is_err() {
                                    return;
                                }
                            }
                            total += frame.len() as u64;
                        }
                    });
                }
            });
        }
    });
    (addr, sent)
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn gateway(upstream: SocketAddr) -> (ChildGuard, SocketAddr) {
    let upstream = format!("http://{upstream}");
    let schema = format!("protos:{}", manifest_dir().join("tests/routeguide").display());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        &schema,
    ];
    let (gateway, addr, _log) = spawn_gateway(&args, &[]);
    (gateway, addr)
}

/// Waits until the upstream's count stops growing (unchanged for a second), and returns it.
async fn levels_off(sent: &AtomicU64) -> u64 {
    let mut last = u64::MAX;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sent.load(Ordering::Relaxed);
        if now == last && now > 0 {
            return now;
        }
        last = now;
    }
    panic!("the upstream never stopped sending: {last} bytes");
}

async fn held_back(request: &[u8], what: &str, answer: &str) {
    let (upstream, sent) = firehose().await;
    let (gateway, addr) = gateway(upstream);
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(request).await.expect("request");
    // The client reads nothing from here on.
    let plateau = levels_off(&sent).await;
    let peak = peak_rss_kib(gateway.pid());
    eprintln!(
        "{what}: the upstream sent {} KiB before it was held back; gateway peak RSS {peak} KiB",
        plateau / 1024
    );
    assert!(plateau < HELD_BACK, "{what}: the upstream sent {plateau} bytes");
    assert!(peak < 64 * 1024, "{what}: peak RSS {peak} KiB");
    // What was held back is the stream, not an error: the answer is there, unread.
    let mut start = vec![0u8; 4096];
    let mut read = 0;
    while read < start.len() {
        let n = socket.read(&mut start[read..]).await.expect("read");
        assert!(
            n > 0,
            "the gateway closed the connection: {:?}",
            String::from_utf8_lossy(&start[..read])
        );
        read += n;
    }
    let start = String::from_utf8_lossy(&start);
    assert!(start.starts_with(answer), "{what}: {start}");
    assert!(start.contains("xxxxxxxx"), "{what}: {start}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_holds_the_upstream_back_over_http() {
    let request = b"POST /routeguide.RouteGuide/ListFeatures HTTP/1.1\r\nhost: gateway\r\n\
                    grpc-timeout: 30S\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    held_back(request, "HTTP NDJSON", "HTTP/1.1 200 OK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_holds_the_upstream_back_over_websocket() {
    let mut request = b"GET /routeguide.RouteGuide/ListFeatures HTTP/1.1\r\nhost: gateway\r\n\
                        upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\n\
                        sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\ngrpc-timeout: 30S\r\n\r\n"
        .to_vec();
    // One masked text frame `{}` (a zero mask leaves the payload as it is), then an empty
    // one: the half-close.
    request.extend_from_slice(&[0x81, 0x82, 0, 0, 0, 0, b'{', b'}']);
    request.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0]);
    held_back(&request, "WebSocket", "HTTP/1.1 101 Switching Protocols").await;
}
