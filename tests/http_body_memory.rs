//! Memory stays bounded on raw bodies (issue 23, points 1 and 2): a streamed
//! `google.api.HttpBody` upload goes through the real binary to a client-streaming method in
//! chunks, and a streamed download comes back through it, each with the gateway's peak RSS
//! (`VmHWM`) under 64 MiB. The upstream is a raw HTTP/2 peer (a sink that counts what it
//! reads, or a source that streams HttpBody messages as its window allows), so the gateway
//! is the only thing measured; the schema is the file service's proto (`--schema protos:`).
//!
//! `scripts/test` moves 256 MiB each way; `HTTP_BODY_MEMORY_MIB=1024` moves the issue's
//! full gigabyte (docs/raw-bodies.md has the figures).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::process::{ChildGuard, manifest_dir, memory_kib, spawn_gateway_with_schema};

const MIB: usize = 1024 * 1024;

/// How many MiB to move each way: 256 unless `HTTP_BODY_MEMORY_MIB` says otherwise.
fn mib() -> usize {
    std::env::var("HTTP_BODY_MEMORY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A raw HTTP/2 upstream. A call to `StreamUpload` is read to its end, counting the bytes,
/// and answered with an empty reply; a call to `StreamDownload` is answered with `download`
/// MiB of HttpBody messages of 1 MiB, sent as the gateway's window allows, counted; any
/// other call (reflection, health) with UNIMPLEMENTED.
async fn upstream(download: usize) -> (SocketAddr, Arc<AtomicU64>, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let (counter, sent_counter) = (received.clone(), sent.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            let sent_counter = sent_counter.clone();
            tokio::spawn(async move {
                // Windows of 1 MiB, as a grpc server's BDP probing would open them: the
                // default 64 KiB would measure the sink's window, not the gateway.
                let handshake = h2::server::Builder::new()
                    .initial_window_size(MIB as u32)
                    .initial_connection_window_size(4 * MIB as u32)
                    .handshake(tcp);
                let Ok(mut connection) = handshake.await else {
                    return;
                };
                while let Some(Ok((request, respond))) = connection.accept().await {
                    let counter = counter.clone();
                    let sent_counter = sent_counter.clone();
                    tokio::spawn(async move {
                        let path = request.uri().path();
                        if path.ends_with("/StreamUpload") {
                            sink(request, respond, counter).await;
                        } else if path.ends_with("/StreamDownload") {
                            source(respond, download, sent_counter).await;
                        } else {
                            unimplemented(respond);
                        }
                    });
                }
            });
        }
    });
    (addr, received, sent)
}

fn grpc_head() -> http::Response<()> {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .expect("response")
}

fn ok_trailers() -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    trailers
}

async fn sink(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    counter: Arc<AtomicU64>,
) {
    let mut body = request.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    let Ok(mut stream) = respond.send_response(grpc_head(), false) else {
        return;
    };
    // One empty UploadReply.
    let _ = stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
    let _ = stream.send_trailers(ok_trailers());
}

/// Anything else (the gateway's reflection and health questions): UNIMPLEMENTED.
fn unimplemented(mut respond: h2::server::SendResponse<Bytes>) {
    let response = http::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", "12")
        .body(())
        .expect("response");
    let _ = respond.send_response(response, true);
}

/// One framed HttpBody of 1 MiB of data (content_type field 1, data field 2).
fn message() -> Bytes {
    let content_type = b"application/octet-stream";
    let mut inner = BytesMut::new();
    inner.put_u8(0x0a);
    inner.put_u8(content_type.len() as u8);
    inner.put_slice(content_type);
    inner.put_u8(0x12);
    // MIB as a varint: 0x80 0x80 0x40.
    inner.put_slice(&[0x80, 0x80, 0x40]);
    inner.put_bytes(7, MIB);
    let mut framed = BytesMut::with_capacity(5 + inner.len());
    framed.put_u8(0);
    framed.put_u32(inner.len() as u32);
    framed.put_slice(&inner);
    framed.freeze()
}

async fn source(mut respond: h2::server::SendResponse<Bytes>, mib: usize, sent: Arc<AtomicU64>) {
    let Ok(mut stream) = respond.send_response(grpc_head(), false) else {
        return;
    };
    let message = message();
    for _ in 0..mib {
        let mut left = message.clone();
        while !left.is_empty() {
            stream.reserve_capacity(left.len());
            let granted = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(granted)) => granted,
                _ => return,
            };
            let piece = left.split_to(granted.min(left.len()));
            sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
            if stream.send_data(piece, false).is_err() {
                return;
            }
        }
    }
    let _ = stream.send_trailers(ok_trailers());
}

fn gateway(upstream: SocketAddr, dir: &support::TempDir) -> (ChildGuard, SocketAddr) {
    let upstream = format!("http://{upstream}");
    let schema = format!("protos:{}", manifest_dir().join("tests/protos/files").display());
    let config = dir.join("protogate.toml");
    // A long enough deadline for a debug build to move a gigabyte; uploads up to 2 GiB.
    let text = "[upstream]\nmax_timeout = \"600s\"\n[transcoding]\nmax_upload_bytes = 2147483648\n";
    std::fs::write(&config, text).expect("config");
    let (gateway, addr, _log) = spawn_gateway_with_schema(config.to_str().expect("path"), &upstream, &schema);
    (gateway, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_streamed_upload_and_download_keep_the_gateway_under_64mib_peak_rss() {
    let mib = mib();
    let (upstream, received, source_sent) = upstream(mib).await;
    let dir = support::TempDir::new("http-body-memory");
    let (gateway, addr) = gateway(upstream, &dir);
    let idle = memory_kib(gateway.pid(), "VmRSS");
    eprintln!("gateway RSS at start: {idle} KiB");

    // Upload: 64 KiB pieces, as a client streams a file.
    let piece = Bytes::from(vec![3u8; 64 * 1024]);
    let frames = futures_util::stream::iter(
        (0..mib * 16).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(piece.clone()))),
    );
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/v1/files/big.bin/stream"))
        .header("content-type", "application/octet-stream")
        .header("grpc-timeout", "600S")
        .body(StreamBody::new(frames))
        .expect("request");
    let started = std::time::Instant::now();
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    let upload_time = started.elapsed();
    assert!(body.starts_with(b"{"), "{:?}", String::from_utf8_lossy(&body));
    let sent = received.load(Ordering::Relaxed);
    assert!(sent >= (mib * MIB) as u64, "the upstream got {sent} bytes");
    let upload_peak = memory_kib(gateway.pid(), "VmHWM");
    eprintln!("{mib} MiB HttpBody upload in {upload_time:?}: gateway peak RSS {upload_peak} KiB");
    assert!(
        upload_peak < 64 * 1024,
        "peak RSS {upload_peak} KiB after the upload"
    );

    // A reader that reads nothing: the upstream is held back once the windows and the
    // socket buffers are full, whatever the size of the download.
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = b"GET /v1/files/big.bin/stream HTTP/1.1\r\nhost: gateway\r\ngrpc-timeout: 600S\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut socket, request)
        .await
        .expect("request");
    let mut last = u64::MAX;
    let plateau = loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = source_sent.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break now;
        }
        last = now;
    };
    let paused_peak = memory_kib(gateway.pid(), "VmHWM");
    eprintln!(
        "a reader that reads nothing: the upstream sent {} KiB, then was held back; gateway peak RSS {paused_peak} KiB",
        plateau / 1024
    );
    assert!(
        plateau < 16 * MIB as u64,
        "the upstream sent {plateau} bytes to a reader that reads nothing"
    );
    drop(socket);
    source_sent.store(0, Ordering::Relaxed);

    // Download: read as it comes, counted, never held.
    let client: Client<_, http_body_util::Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{addr}/v1/files/big.bin/stream");
    let request = http::Request::builder()
        .uri(uri)
        .header("grpc-timeout", "600S")
        .body(http_body_util::Empty::new())
        .expect("request");
    let started = std::time::Instant::now();
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            total += data.len();
        }
    }
    let download_time = started.elapsed();
    assert_eq!(total, mib * MIB);
    let peak = memory_kib(gateway.pid(), "VmHWM");
    eprintln!("{mib} MiB HttpBody download in {download_time:?}: gateway peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB after the download");
}
