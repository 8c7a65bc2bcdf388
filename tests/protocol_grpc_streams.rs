//! gRPC pass-through of a server stream against the recording upstream (test protos'
//! `Everything.StreamItems`): messages relayed as they come, a client that goes away
//! cancelling the upstream call, the deadline enforced mid-stream with the status in the
//! trailers, and the protocol turned off. grpcio and grpc-go calls are in `protocol_grpc.rs`.

mod support;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use protogate::pb::protogate::test::v1::{Item, StreamRequest};
use support::eventually;
use support::gateway::TestGateway;
use support::upstream::{RecordingUpstream, Reply};

const STREAM: &str = "/protogate.test.v1.Everything/StreamItems";

fn items(n: i32) -> Vec<Item> {
    (1..=n)
        .map(|index| Item {
            index,
            text: format!("item {index}"),
        })
        .collect()
}

fn framed(message: &impl Message) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(u32::try_from(message.encoded_len()).expect("small"));
    message.encode(&mut buf).expect("encodes");
    buf.freeze()
}

/// Opens a gRPC call on `path` over HTTP/2 with `headers`; the response, head first.
async fn grpc_call(
    gateway: &TestGateway,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<hyper::body::Incoming> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let mut request = http::Request::post(gateway.url(path))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = Full::new(framed(&StreamRequest::default()));
    client
        .request(request.body(body).expect("request"))
        .await
        .expect("response")
}

#[tokio::test]
async fn stream_messages_are_relayed_as_they_come_with_the_trailers_last() {
    let upstream = RecordingUpstream::start(|_| Reply::stream(&items(3), Duration::from_millis(400))).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let started = Instant::now();
    let response = grpc_call(&gateway, STREAM, &[]).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut data = BytesMut::new();
    let mut first_at = None;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("frame");
        match frame.into_data() {
            Ok(chunk) => {
                first_at.get_or_insert(started.elapsed());
                data.extend_from_slice(&chunk);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    // Three messages 400 ms apart: relayed as they come, the first arrives well before the
    // end (a buffered relay would deliver them together, however loaded the machine is).
    let first_at = first_at.expect("messages came");
    let ended_at = started.elapsed();
    assert!(
        ended_at.saturating_sub(first_at) >= Duration::from_millis(600),
        "first message after {first_at:?}, end after {ended_at:?}: buffered?"
    );
    assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
    // Three messages, byte for byte as the upstream framed them.
    let mut expected = BytesMut::new();
    for item in items(3) {
        expected.extend_from_slice(&framed(&item));
    }
    assert_eq!(data.freeze(), expected.freeze());
}

#[tokio::test]
async fn client_that_goes_away_cancels_the_upstream_stream() {
    let upstream = RecordingUpstream::start(|_| Reply::stream(&items(50), Duration::from_millis(100))).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let response = grpc_call(&gateway, STREAM, &[]).await;
    let mut body = response.into_body();
    body.frame().await.expect("a frame").expect("data");
    drop(body);
    eventually(
        "the upstream to see the cancellation",
        Duration::from_secs(5),
        || async { (upstream.cancelled_streams() > 0).then_some(()) },
    )
    .await;
    assert_eq!(upstream.cancelled_streams(), 1);
    let metrics = support::http::get(&gateway.url("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.lines()
            .any(|l| l.contains("protogate.test.v1.Everything.StreamItems") && l.contains("CANCELLED")),
        "no cancelled RPC in the metrics:\n{text}"
    );
    // The request is counted under its protocol (the /metrics request itself under rest).
    assert!(
        text.contains("protogate_requests_by_protocol_total{protocol=\"grpc\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn deadline_passing_mid_stream_ends_it_with_deadline_exceeded_in_the_trailers() {
    let upstream = RecordingUpstream::start(|_| Reply::stream(&items(50), Duration::from_millis(100))).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let started = Instant::now();
    let response = grpc_call(&gateway, STREAM, &[("grpc-timeout", "350m")]).await;
    let collected = response.into_body().collect().await.expect("body");
    let elapsed = started.elapsed();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "4", "{trailers:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // Some messages came before the deadline, whole.
    let data = collected.to_bytes();
    assert!(data.len() >= 5, "no message before the deadline");
}

#[tokio::test]
async fn passthrough_turned_off_answers_unimplemented_and_calls_nothing() {
    let upstream = RecordingUpstream::start(|_| Reply::stream(&items(1), Duration::ZERO)).await;
    let gateway = TestGateway::start(upstream.addr, "[protocols]\ngrpc = false").await;
    let response = grpc_call(&gateway, STREAM, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "12");
    assert_eq!(
        response.headers()["grpc-message"],
        "gRPC pass-through is turned off (protocols.grpc = false)"
    );
    assert!(upstream.calls().is_empty());
}

/// Connect's streaming protocol over the same relay: the envelopes as the upstream framed
/// them, then the end-of-stream envelope; an upstream failure after some messages is the
/// end-of-stream's error, in an HTTP 200 answer.
#[tokio::test]
async fn connect_stream_ends_with_the_end_of_stream_envelope() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::stream(&items(2), Duration::ZERO).then_fail(tonic::Status::aborted("halfway"))
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let answer = support::http::send(
        http::Method::POST,
        &gateway.url(STREAM),
        &[
            ("content-type", "application/connect+proto"),
            ("connect-protocol-version", "1"),
        ],
        framed(&StreamRequest::default()),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/connect+proto"));
    let mut expected = BytesMut::new();
    for item in items(2) {
        expected.extend_from_slice(&framed(&item));
    }
    let body = answer.body.clone();
    assert!(body.starts_with(&expected), "{body:?}");
    let end = &body[expected.len()..];
    assert_eq!(end[0], 0x02, "end-of-stream flag");
    let json: serde_json::Value = serde_json::from_slice(&end[5..]).expect("JSON");
    assert_eq!(json["error"]["code"], "aborted", "{json}");
    assert_eq!(json["error"]["message"], "halfway");
}
