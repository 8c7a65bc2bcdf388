//! Memory stays bounded on a request stream (issue 22, point 1): NDJSON sent to RouteGuide's
//! bidirectional `RouteChat` in notes of 256 KiB goes through the real binary, message by
//! message, and the gateway's peak RSS (`VmHWM`) stays under 64 MiB. The upstream is a raw
//! HTTP/2 sink that reads every byte (so the whole body provably went through) and then
//! answers OK; the schema is RouteGuide's proto (`--schema protos:`).
//!
//! `scripts/test` sends 128 MiB (a debug build moves about 6 MiB/s of 256 KiB JSON strings);
//! `STREAMS_MEMORY_MIB=1024` sends the full gigabyte (measured: 24.2 MiB peak RSS,
//! debug build, docs/streaming.md).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::process::{manifest_dir, memory_kib, spawn_gateway_with_schema};

const NOTE_BYTES: usize = 256 * 1024;

/// How many notes to send: 128 MiB unless `STREAMS_MEMORY_MIB` says otherwise.
fn notes() -> usize {
    let mib: usize = std::env::var("STREAMS_MEMORY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    mib * 4
}

/// An HTTP/2 server that reads each stream to its end, counting the bytes, then answers
/// with a trailers-only OK.
async fn sink() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        let response = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", "0")
                            .body(())
                            .expect("response");
                        let _ = respond.send_response(response, true);
                    });
                }
            });
        }
    });
    (addr, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_ndjson_upload_keeps_the_gateway_under_64mib_peak_rss() {
    let notes = notes();
    let (upstream, received) = sink().await;
    let upstream = format!("http://{upstream}");
    let schema = format!("protos:{}", manifest_dir().join("tests/routeguide").display());
    // A long enough deadline for a debug build to move a gigabyte.
    let dir = support::TempDir::new("streams-memory");
    let config = dir.join("protogate.toml");
    std::fs::write(&config, "[upstream]\nmax_timeout = \"600s\"\n").expect("config");
    let config = config.to_str().expect("path");
    let (gateway, addr, _log) = spawn_gateway_with_schema(config, &upstream, &schema);

    let mut line = format!(
        "{{\"location\":{{\"latitude\":7,\"longitude\":8}},\"message\":\"{}\"}}\n",
        "x".repeat(NOTE_BYTES)
    );
    line.shrink_to_fit();
    let line = Bytes::from(line);
    let frames = futures_util::stream::iter(
        (0..notes).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(line.clone()))),
    );
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/routeguide.RouteGuide/RouteChat"))
        .header("content-type", "application/x-ndjson")
        .header("grpc-timeout", "600S")
        .body(StreamBody::new(frames))
        .expect("request");
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert!(body.is_empty(), "{:?}", String::from_utf8_lossy(&body));

    // Every note arrived: 256 KiB of text plus a few bytes of framing each.
    let sent = received.load(Ordering::Relaxed);
    assert!(
        sent >= (notes * NOTE_BYTES) as u64,
        "the upstream got {sent} bytes"
    );
    let peak = memory_kib(gateway.pid(), "VmHWM");
    eprintln!("{} MiB NDJSON upload: gateway peak RSS {peak} KiB", notes / 4);
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}
