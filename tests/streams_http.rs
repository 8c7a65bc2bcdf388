//! Client-streaming and bidirectional methods over plain HTTP, against the real binary in
//! front of grpc's RouteGuide served by grpcio with reflection
//! (`tests/python/routeguide_server.py`): every method of the service answers at its unbound
//! route; NDJSON, JSON arrays and single objects carry the request messages; a bad message
//! N is a 400 naming N and the field, and the upstream sees its call cancelled (the
//! server's own log line says so), never completed; an upstream error mid-stream, the
//! deadline, oversize messages; bidirectional replies in NDJSON, SSE and a JSON array, and
//! arriving while the request is still being sent (HTTP/2 and HTTP/1.1).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::http::send;
use support::process::{ChildGuard, GatewayLog, spawn_gateway, spawn_routeguide};

const BERKSHIRE: (i64, i64) = (409146138, -746188906);
const PATRIOTS: (i64, i64) = (407838351, -746143763);

struct Setup {
    routeguide: ChildGuard,
    _gateway: ChildGuard,
    addr: SocketAddr,
    log: GatewayLog,
}

fn setup() -> Setup {
    let (routeguide, upstream) = spawn_routeguide();
    let upstream = format!("http://{upstream}");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        "reflection",
    ];
    let (gateway, addr, log) = spawn_gateway(&args, &[]);
    Setup {
        routeguide,
        _gateway: gateway,
        addr,
        log,
    }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits for the RouteGuide server's line that starts with `prefix`.
    fn upstream_says(&self, prefix: &str) -> String {
        self.routeguide
            .stdout()
            .wait_for(Duration::from_secs(10), |line| line.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!(
                    "routeguide never said {prefix:?}: {}",
                    self.routeguide.stdout().text()
                )
            })
    }
}

fn point((latitude, longitude): (i64, i64)) -> Value {
    json!({ "latitude": latitude, "longitude": longitude })
}

fn ndjson(messages: &[Value]) -> String {
    messages.iter().map(|m| format!("{m}\n")).collect()
}

async fn record(setup: &Setup, content_type: &str, body: String) -> support::http::Reply {
    send(
        Method::POST,
        &setup.url("/routeguide.RouteGuide/RecordRoute"),
        &[("content-type", content_type)],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_route_takes_ndjson_arrays_and_single_objects() {
    let setup = setup();
    let points = [point(BERKSHIRE), point(PATRIOTS), point((1_000, 2_000))];
    let reply = record(&setup, "application/x-ndjson", ndjson(&points)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let summary = reply.json();
    assert_eq!(summary["pointCount"], 3);
    assert_eq!(summary["featureCount"], 2);
    assert!(
        summary["distance"].as_i64().is_some_and(|d| d > 100_000),
        "{summary}"
    );
    setup.upstream_says("RecordRoute complete after 3 points");

    let reply = record(&setup, "application/json", json!(points).to_string()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["pointCount"], 3);

    let reply = record(&setup, "application/json", point(BERKSHIRE).to_string()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["pointCount"], 1);
    assert_eq!(reply.json()["featureCount"], 1);

    // No message at all is a stream of none.
    let reply = record(&setup, "application/json", "[]".to_string()).await;
    assert_eq!(reply.json()["pointCount"], 0);

    // The call is counted like a unary one.
    let metrics = support::http::get(&setup.url("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    let counted = "rpc_client_call_duration_seconds_count{rpc_system=\"grpc\",\
                   rpc_method=\"routeguide.RouteGuide.RecordRoute\",rpc_grpc_status_code=\"OK\"} 4";
    assert!(text.contains(counted), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_is_a_400_naming_it_and_the_upstream_call_is_cancelled() {
    let setup = setup();
    let body = format!(
        "{}\n{}\n{{\"latitude\":\"north\"}}\n{}\n",
        point(BERKSHIRE),
        point(PATRIOTS),
        point(BERKSHIRE)
    );
    let reply = record(&setup, "application/x-ndjson", body).await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    let error = reply.json();
    assert_eq!(error["code"], 3);
    let message = error["message"].as_str().expect("message");
    assert!(message.starts_with("line 3: "), "{message}");
    assert!(message.contains("latitude"), "{message}");
    assert_eq!(
        error["details"][0]["fieldViolations"][0]["field"], "latitude",
        "{error}"
    );
    // The upstream saw a reset, not a stream of two points that ended well (how many of the
    // two it had read by then is grpcio's business).
    setup.upstream_says("RecordRoute cancelled after ");

    let body = json!([point(BERKSHIRE), { "altitude": 3 }]).to_string();
    let reply = record(&setup, "application/json", body).await;
    assert_eq!(reply.status, 400);
    let message = reply.json()["message"].as_str().expect("message").to_string();
    assert!(message.starts_with("element 2: "), "{message}");
    assert!(message.contains("altitude"), "{message}");
    setup.upstream_says("RecordRoute cancelled after ");

    // Broken framing is named too, and so is a wrong content type.
    let reply = record(&setup, "application/json", "[{}, {} {}]".to_string()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["message"], "element 2: expected `,` or `]` after it");
    let reply = record(&setup, "text/plain", "{}".to_string()).await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.json()["code"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_deadlines_and_oversize_messages() {
    let setup = setup();
    // RouteGuide fails on a point at latitude 1 (routeguide_server.py).
    let reply = record(
        &setup,
        "application/x-ndjson",
        ndjson(&[point(BERKSHIRE), point((1, 1)), point(PATRIOTS)]),
    )
    .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.json()["code"], 9);
    assert_eq!(reply.json()["message"], "point 2 is off the map");

    // A message over the body limit (1 MiB in the shipped config) is refused as it grows.
    let big = format!("{{\"latitude\":1,\"name\":\"{}\"}}\n", "x".repeat(2 << 20));
    let reply = record(
        &setup,
        "application/x-ndjson",
        format!("{}\n{big}", point(BERKSHIRE)),
    )
    .await;
    assert_eq!(reply.status, 413, "{:?}", String::from_utf8_lossy(&reply.body));
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("line 2: "))
    );

    // The deadline covers the whole stream: a body that never ends is cut off at it.
    let (sender, body) = channel_body();
    sender
        .send(format!("{}\n", point(BERKSHIRE)))
        .await
        .expect("send");
    let started = std::time::Instant::now();
    let response = streaming_post(
        false,
        &setup.url("/routeguide.RouteGuide/RecordRoute"),
        &[("content-type", "application/x-ndjson"), ("grpc-timeout", "300m")],
        body,
    )
    .await;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(sender);
    setup.upstream_says("RecordRoute cancelled after ");
    let _ = &setup.log;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_chat_answers_in_every_stream_format() {
    let setup = setup();
    let notes = [
        json!({ "location": point(BERKSHIRE), "message": "first" }),
        json!({ "location": point(PATRIOTS), "message": "second" }),
        json!({ "location": point(BERKSHIRE), "message": "third" }),
    ];
    let url = setup.url("/routeguide.RouteGuide/RouteChat");
    let reply = send(
        Method::POST,
        &url,
        &[("content-type", "application/x-ndjson")],
        ndjson(&notes),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = String::from_utf8_lossy(&reply.body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines, vec![json!({ "result": notes[0] })]);

    let reply = send(
        Method::POST,
        &url,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        json!(notes).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!([notes[0]]));

    let reply = send(
        Method::POST,
        &url,
        &[
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
        ],
        json!(notes).to_string(),
    )
    .await;
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        format!("data: {}\n\n", notes[0])
    );

    // An upstream error mid-stream ends the NDJSON with an error line.
    let failing = [notes[0].clone(), notes[2].clone(), json!({ "message": "fail" })];
    let reply = send(
        Method::POST,
        &url,
        &[("content-type", "application/x-ndjson")],
        ndjson(&failing),
    )
    .await;
    let lines: Vec<Value> = String::from_utf8_lossy(&reply.body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], json!({ "result": notes[0] }));
    assert_eq!(lines[1]["error"]["code"], 9);
    assert_eq!(lines[1]["error"]["message"], "the chat was told to fail");
}

type Sender = tokio::sync::mpsc::Sender<String>;
type ChannelBody =
    StreamBody<tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, std::convert::Infallible>>>;

/// A request body that sends what the test gives it, when it gives it.
fn channel_body() -> (Sender, ChannelBody) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<String>(4);
    let (frames, out) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(text) = receiver.recv().await {
            if frames.send(Ok(Frame::data(Bytes::from(text)))).await.is_err() {
                return;
            }
        }
    });
    (
        sender,
        StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(out)),
    )
}

async fn streaming_post(
    h2: bool,
    url: &str,
    headers: &[(&str, &str)],
    body: ChannelBody,
) -> http::Response<hyper::body::Incoming> {
    let client: Client<_, ChannelBody> = Client::builder(TokioExecutor::new()).http2_only(h2).build_http();
    let mut request = http::Request::builder().method(Method::POST).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client
        .request(request.body(body).expect("request"))
        .await
        .expect("response")
}

/// Replies arrive while the request is still open: each reply is read before the next note
/// is sent, which only a full-duplex exchange allows.
async fn chat_is_full_duplex(setup: &Setup, h2: bool) {
    let (sender, body) = channel_body();
    let note = |message: &str| {
        format!(
            "{}\n",
            json!({ "location": point(BERKSHIRE), "message": message })
        )
    };
    sender.send(note("one")).await.expect("send");
    sender.send(note("two")).await.expect("send");
    let response = streaming_post(
        h2,
        &setup.url("/routeguide.RouteGuide/RouteChat"),
        &[("content-type", "application/x-ndjson")],
        body,
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut replies = response.into_body();
    let mut pending = String::new();
    let mut next_line = async || loop {
        if let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            return serde_json::from_str::<Value>(&line).expect("json line");
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), replies.frame())
            .await
            .expect("a reply while the request is open")
            .expect("a frame")
            .expect("no error");
        if let Ok(data) = frame.into_data() {
            pending.push_str(&String::from_utf8_lossy(&data));
        }
    };
    assert_eq!(next_line().await["result"]["message"], "one");
    sender.send(note("three")).await.expect("send");
    assert_eq!(next_line().await["result"]["message"], "one");
    assert_eq!(next_line().await["result"]["message"], "two");
    drop(sender);
    setup.upstream_says("RouteChat complete after 3 notes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_chat_is_full_duplex_over_http2_and_http1() {
    let setup = setup();
    chat_is_full_duplex(&setup, true).await;
    chat_is_full_duplex(&setup, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_stream_cancels_the_upstream_call() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = setup();
    // HTTP/1.1 by hand: a chunked body that is never finished, and a socket closed once the
    // first reply is in.
    let mut socket = tokio::net::TcpStream::connect(setup.addr).await.expect("connect");
    let note = format!(
        "{}\n",
        json!({ "location": point(BERKSHIRE), "message": "hello" })
    );
    let chunk = format!("{:x}\r\n{note}\r\n", note.len());
    let head = "POST /routeguide.RouteGuide/RouteChat HTTP/1.1\r\nhost: gateway\r\n\
                content-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
    socket
        .write_all(format!("{head}{chunk}{chunk}").as_bytes())
        .await
        .expect("write");
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\"result\"") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .expect("a reply in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    drop(socket);
    setup.upstream_says("RouteChat cancelled after ");
}

/// `?fields=` (and `X-Goog-FieldMask`) select the reply's members on a client-streaming
/// call as on a unary one; an unknown path is a 400 before the upstream is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stream_answers_only_the_selected_fields() {
    let setup = setup();
    let points = [point(BERKSHIRE), point(PATRIOTS)];
    let url = setup.url("/routeguide.RouteGuide/RecordRoute?fields=pointCount,featureCount");
    let headers = [("content-type", "application/x-ndjson")];
    let reply = send(Method::POST, &url, &headers, ndjson(&points)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        r#"{"pointCount":2,"featureCount":2}"#
    );
    setup.upstream_says("RecordRoute complete after 2 points");

    let url = setup.url("/routeguide.RouteGuide/RecordRoute");
    let headers = [
        ("content-type", "application/x-ndjson"),
        ("x-goog-fieldmask", "pointCount"),
    ];
    let reply = send(Method::POST, &url, &headers, ndjson(&points)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(String::from_utf8_lossy(&reply.body), r#"{"pointCount":2}"#);

    let url = setup.url("/routeguide.RouteGuide/RecordRoute?fields=nope");
    let headers = [("content-type", "application/x-ndjson")];
    let reply = send(Method::POST, &url, &headers, ndjson(&points)).await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(
        reply.json()["message"],
        "fields: unknown field path \"nope\": routeguide.RouteSummary has no field \"nope\""
    );
    assert_eq!(
        reply.json()["details"][0]["fieldViolations"][0]["field"],
        "fields"
    );
}
