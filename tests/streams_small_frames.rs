//! A client stream of many small messages reaches an upstream that reads slowly, through the
//! real binary. h2 (0.4.20 on, the HTTP/2 of tonic and hyper servers) spends a budget on
//! each small DATA frame it holds unread, and answers a flood of them with GOAWAY
//! ENHANCE_YOUR_CALM "too_many_data_frames": one frame per message lost the upstream
//! connection mid-call (503) once about 150 small messages waited. The upstream here is an
//! `h2` server that reads nothing for 300 ms, then counts the DATA frames of the call: the
//! messages that one chunk of the body completes must share frames.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, Response};
use support::http::send;
use support::process::{manifest_dir, spawn_gateway};
use tokio::net::TcpListener;

const MESSAGES: usize = 1000;

/// DATA frames of each RecordRoute call the upstream saw.
type Seen = Arc<Mutex<Vec<usize>>>;

async fn serve(listener: TcpListener, seen: Seen) {
    while let Ok((socket, _)) = listener.accept().await {
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(mut connection) = h2::server::handshake(socket).await else {
                return;
            };
            while let Some(Ok((request, respond))) = connection.accept().await {
                tokio::spawn(answer(request, respond, seen.clone()));
            }
        });
    }
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    seen: Seen,
) {
    let grpc = |status: &'static str| {
        Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", status)
            .body(())
            .expect("head")
    };
    if request.uri().path() != "/routeguide.RouteGuide/RecordRoute" {
        let _ = respond.send_response(grpc("12"), true);
        return;
    }
    // The application lags: whatever arrives meanwhile waits unread in h2's buffers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut body = request.into_body();
    let (mut frames, mut bytes) = (0, 0);
    while let Some(Ok(data)) = body.data().await {
        let _ = body.flow_control().release_capacity(data.len());
        if !data.is_empty() {
            frames += 1;
            bytes += data.len();
        }
    }
    seen.lock().expect("seen").push(frames);
    // RouteSummary { point_count: the messages counted from their 5-byte prefixes }.
    let points = count_messages(bytes);
    let mut message = BytesMut::new();
    message.put_u8(0x08);
    let mut n = points as u64;
    while n >= 0x80 {
        message.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    message.put_u8(n as u8);
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    let head = Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .expect("head");
    let Ok(mut stream) = respond.send_response(head, false) else {
        return;
    };
    let _ = stream.send_data(framed.freeze(), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
}

/// Each point `{"latitude":i,"longitude":-1}` encodes to the same framed size for a given
/// number of digits; the test sends latitude 1 every time, so every message is 5 + 13 bytes.
fn count_messages(bytes: usize) -> usize {
    bytes / (5 + 13)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_small_messages_reach_a_slow_reading_upstream_in_few_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Seen::default();
    tokio::spawn(serve(listener, seen.clone()));
    let schema = format!("protos:{}", manifest_dir().join("tests/routeguide").display());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        &schema,
    ];
    let (_gateway, addr, _log) = spawn_gateway(&args, &[]);

    // Point { latitude: 1, longitude: -1 } is 13 bytes of protobuf (two varints, the
    // negative one ten bytes long).
    let body = "{\"latitude\":1,\"longitude\":-1}\n".repeat(MESSAGES);
    let reply = send(
        Method::POST,
        &format!("http://{addr}/routeguide.RouteGuide/RecordRoute"),
        &[("content-type", "application/x-ndjson")],
        body,
    )
    .await;
    reply.assert_json(
        200,
        serde_json::json!({ "pointCount": MESSAGES, "featureCount": 0, "distance": 0, "elapsedTime": 0 }),
    );
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // 18 KB of messages: a handful of frames, not a thousand.
    assert!(seen[0] <= 16, "{} DATA frames for {MESSAGES} messages", seen[0]);
}
