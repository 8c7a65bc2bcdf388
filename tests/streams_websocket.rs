//! WebSocket (RFC 6455) calls through the real binary in front of grpc's RouteGuide
//! (grpcio, reflection), driven by the Python `websockets` library
//! (`tests/python/websocket_client.py`): a bidirectional chat whose replies arrive while it
//! is still sending, half-close by an empty text frame, server and client streams, close
//! codes (1000, 4000 + the gRPC code with its message, 1001 on idle and on drain), a bad
//! message, an upstream error mid-stream, the deadline, an oversize message, a client that
//! closes mid-stream (the upstream sees its call cancelled), the `Origin` check, and the
//! cap on open sockets (`server.max_websockets`).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use support::TempDir;
use support::process::{
    ChildGuard, manifest_dir, python_venv, run_to_exit, spawn_gateway_with_schema, spawn_routeguide,
};

const APP: &str = "http://app.example.test";
const BERKSHIRE: (i64, i64) = (409146138, -746188906);

struct Setup {
    routeguide: ChildGuard,
    gateway: ChildGuard,
    addr: SocketAddr,
    _dir: TempDir,
}

fn setup(extra: &str) -> Setup {
    let (routeguide, upstream) = spawn_routeguide();
    let dir = TempDir::new("streams-websocket");
    let config = dir.join("protogate.toml");
    let toml = format!("[cors]\nallowed_origins = [\"{APP}\"]\n[server]\nmax_body_bytes = 65536\n{extra}");
    std::fs::write(&config, toml).expect("config");
    let upstream = format!("http://{upstream}");
    let config = config.to_str().expect("path").to_string();
    let (gateway, addr, _log) = spawn_gateway_with_schema(&config, &upstream, "reflection");
    Setup {
        routeguide,
        gateway,
        addr,
        _dir: dir,
    }
}

impl Setup {
    /// Runs the client script against `method`, from `origin`, and returns what it printed.
    fn client(&self, method: &str, script: Value, origin: &str, headers: &[&str]) -> Vec<Value> {
        let mut command = std::process::Command::new(python_venv());
        command
            .arg(manifest_dir().join("tests/python/websocket_client.py"))
            .arg(format!("ws://{}/routeguide.RouteGuide/{method}", self.addr))
            .arg(script.to_string())
            .arg(origin)
            .args(headers);
        let finished = run_to_exit(command, Duration::from_secs(30));
        assert!(finished.status.success(), "client failed: {:?}", finished.stderr);
        finished
            .stdout
            .iter()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    fn upstream_says(&self, prefix: &str) {
        let said = self
            .routeguide
            .stdout()
            .wait_for(Duration::from_secs(10), |line| line.starts_with(prefix));
        assert!(
            said.is_some(),
            "routeguide never said {prefix:?}: {}",
            self.routeguide.stdout().text()
        );
    }
}

fn note(message: &str) -> String {
    let (latitude, longitude) = BERKSHIRE;
    json!({ "location": { "latitude": latitude, "longitude": longitude }, "message": message }).to_string()
}

fn received(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["recv"].as_str())
        .map(|text| serde_json::from_str::<Value>(text).expect("json reply")["message"].to_string())
        .collect()
}

fn closed(events: &[Value]) -> (i64, String) {
    let last = events.last().expect("events");
    let code = last["closed"]
        .as_i64()
        .unwrap_or_else(|| panic!("not closed: {events:?}"));
    (code, last["reason"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_chat_gets_replies_while_it_is_still_sending_and_ends_with_1000() {
    let setup = setup("");
    // Each reply is read before the next note goes: the socket is full duplex.
    let script = json!([
        { "send": note("one") },
        { "send": note("two") },
        { "recv": 1 },
        { "send": note("three") },
        { "recv": 2 },
        { "send": "" },
        { "wait_close": true }
    ]);
    let events = setup.client("RouteChat", script, APP, &[]);
    assert_eq!(received(&events), ["\"one\"", "\"one\"", "\"two\""]);
    assert_eq!(closed(&events), (1000, String::new()));
    setup.upstream_says("RouteChat complete after 3 notes");
}

#[test]
fn server_and_client_streams_ride_a_socket_too() {
    let setup = setup("");
    let rectangle = json!({ "lo": { "latitude": 400000000, "longitude": -750000000 },
                            "hi": { "latitude": 420000000, "longitude": -730000000 } });
    let script = json!([{ "send": rectangle.to_string() }, { "wait_close": true }]);
    let events = setup.client("ListFeatures", script, APP, &[]);
    assert_eq!(received(&events).len(), 4, "{events:?}");
    assert_eq!(closed(&events), (1000, String::new()));

    let (latitude, longitude) = BERKSHIRE;
    let point = json!({ "latitude": latitude, "longitude": longitude }).to_string();
    let script = json!([{ "send": point }, { "send": point }, { "send": "" }, { "wait_close": true }]);
    let events = setup.client("RecordRoute", script, "", &[]);
    let summary = events.iter().find_map(|e| e["recv"].as_str()).expect("summary");
    let summary: Value = serde_json::from_str(summary).expect("json");
    assert_eq!(summary["pointCount"], 2);
    assert_eq!(summary["featureCount"], 2);
    assert_eq!(closed(&events), (1000, String::new()));
}

#[test]
fn errors_close_with_4000_plus_the_grpc_code_and_cancel_the_upstream() {
    let setup = setup("");
    // An upstream error mid-stream: FAILED_PRECONDITION (9).
    let script = json!([{ "send": note("a") }, { "send": note("b") }, { "send": note("fail") }, { "wait_close": true }]);
    let events = setup.client("RouteChat", script, APP, &[]);
    assert_eq!(received(&events), ["\"a\""]);
    assert_eq!(closed(&events), (4009, "the chat was told to fail".to_string()));

    // A bad message: INVALID_ARGUMENT (3) naming it, and the upstream call is cancelled.
    let bad = json!({ "location": { "latitude": "north" } }).to_string();
    let script = json!([{ "send": note("a") }, { "send": bad }, { "wait_close": true }]);
    let events = setup.client("RouteChat", script, APP, &[]);
    let (code, reason) = closed(&events);
    assert_eq!(code, 4003, "{events:?}");
    assert!(
        reason.starts_with("message 2: ") && reason.contains("latitude"),
        "{reason}"
    );
    assert!(reason.len() <= 123);
    setup.upstream_says("RouteChat cancelled after ");

    // A binary frame is not a message.
    let script = json!([{ "binary": note("a") }, { "wait_close": true }]);
    let (code, _) = closed(&setup.client("RouteChat", script, APP, &[]));
    assert_eq!(code, 4003);

    // A message over server.max_body_bytes (64 KiB here): RESOURCE_EXHAUSTED (8).
    let script = json!([{ "send_bytes": 100000 }, { "wait_close": true }]);
    let (code, reason) = closed(&setup.client("RouteChat", script, APP, &[]));
    assert_eq!(code, 4008, "{reason}");

    // The deadline from grpc-timeout: DEADLINE_EXCEEDED (4).
    let script = json!([{ "send": note("a") }, { "wait_close": true }]);
    let (code, _) = closed(&setup.client("RouteChat", script, APP, &["grpc-timeout=300m"]));
    assert_eq!(code, 4004);
}

#[test]
fn a_client_close_mid_stream_cancels_the_upstream_call() {
    let setup = setup("");
    let script = json!([{ "send": note("a") }, { "send": note("b") }, { "recv": 1 }, { "close": true }]);
    let events = setup.client("RouteChat", script, APP, &[]);
    assert_eq!(received(&events), ["\"a\""]);
    setup.upstream_says("RouteChat cancelled after 2 notes");
}

#[test]
fn a_page_from_another_origin_is_refused_before_the_upgrade() {
    let setup = setup("");
    let script = json!([{ "send": note("a") }, { "send": "" }, { "wait_close": true }]);
    let events = setup.client("RouteChat", script.clone(), "http://evil.example.test", &[]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["refused"], 403, "{events:?}");
    assert_eq!(events[0]["body"]["code"], 7, "{events:?}");
    let message = events[0]["body"]["message"].as_str().expect("message");
    assert!(message.contains("http://evil.example.test"), "{message}");
    // No Origin at all is no browser page: allowed.
    let events = setup.client("RouteChat", script, "", &[]);
    assert_eq!(closed(&events).0, 1000);
}

#[test]
fn an_idle_socket_closes_with_1001() {
    let setup = setup("idle_timeout = \"1s\"\nhttp2_keepalive_interval = \"200ms\"\n");
    let script = json!([{ "send": note("a") }, { "wait_close": true }]);
    let started = std::time::Instant::now();
    let (code, reason) = closed(&setup.client("RouteChat", script, APP, &[]));
    assert_eq!((code, reason.as_str()), (1001, "idle timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));
    setup.upstream_says("RouteChat cancelled after ");
}

#[test]
fn a_drain_closes_open_sockets_with_1001_after_the_drain_timeout() {
    let setup = setup("drain_timeout = \"1s\"\n");
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/websocket_client.py"))
        .arg(format!("ws://{}/routeguide.RouteGuide/RouteChat", setup.addr))
        .arg(json!([{ "send": note("a") }, { "wait_close": true }]).to_string());
    let client = ChildGuard::spawn("websocket_client", command);
    let open = client
        .stdout()
        .wait_for(Duration::from_secs(10), |line| line.contains("\"open\""));
    assert!(
        open.is_some(),
        "the socket never opened: {:?}",
        client.stderr().text()
    );
    setup.gateway.terminate();
    let closed_line = client
        .stdout()
        .wait_for(Duration::from_secs(10), |line| line.contains("\"closed\""))
        .expect("the socket closed");
    let event: Value = serde_json::from_str(&closed_line).expect("json");
    assert_eq!(event["closed"], 1001, "{event}");
    assert_eq!(event["reason"], "the gateway is shutting down");
}

#[test]
fn sockets_past_max_websockets_get_503_before_the_upgrade() {
    let setup = setup("max_websockets = 1\n");
    let url = format!("ws://{}/routeguide.RouteGuide/RouteChat", setup.addr);
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/websocket_client.py"))
        .arg(&url)
        .arg(
            json!([{ "send": note("a") }, { "send": note("a2") }, { "recv": 1 }, { "wait_close": true }])
                .to_string(),
        );
    let first = ChildGuard::spawn("websocket_client", command);
    let replied = first
        .stdout()
        .wait_for(Duration::from_secs(10), |line| line.contains("\"recv\""));
    assert!(
        replied.is_some(),
        "the first socket got no reply: {:?}",
        first.stderr().text()
    );

    // RouteChat answers a note with the notes sent before it at the same place.
    let script =
        json!([{ "send": note("b") }, { "send": note("c") }, { "send": "" }, { "wait_close": true }]);
    let events = setup.client("RouteChat", script.clone(), APP, &[]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["refused"], 503, "{events:?}");
    assert_eq!(events[0]["retry_after"], "1", "{events:?}");
    assert_eq!(events[0]["body"]["code"], 14, "{events:?}");
    let message = events[0]["body"]["message"].as_str().expect("message");
    assert!(message.contains("server.max_websockets"), "{message}");

    // The first client goes away: its call is cancelled and its place freed.
    first.terminate();
    setup.upstream_says("RouteChat cancelled after 2 notes");
    let freed = std::time::Instant::now();
    loop {
        let events = setup.client("RouteChat", script.clone(), APP, &[]);
        if events.first().is_some_and(|e| e["refused"] == 503) && freed.elapsed() < Duration::from_secs(10) {
            continue;
        }
        assert_eq!(closed(&events).0, 1000, "{events:?}");
        assert_eq!(received(&events), ["\"b\""]);
        break;
    }
}

/// A WebSocket over an HTTP/2 stream (RFC 8441), from a client built here on `h2` (no
/// packaged client speaks it over cleartext HTTP/2) with tungstenite's framing: the
/// extended CONNECT is answered 200 without `Sec-WebSocket-Accept`, and the chat then runs
/// as over HTTP/1.1, closing with 1000.
#[test]
fn a_chat_runs_over_an_http2_extended_connect() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let setup = setup("");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(setup.addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(connection);
        let mut client = client.ready().await.expect("ready");
        // The server's SETTINGS have surely arrived once a first answer has.
        let probe = http::Request::get(format!("http://{}/healthz", setup.addr))
            .body(())
            .expect("probe");
        let (probe, _) = client.send_request(probe, true).expect("probe sent");
        assert_eq!(probe.await.expect("probe answer").status(), 200);
        let mut client = client.ready().await.expect("ready");
        assert!(
            client.is_extended_connect_protocol_enabled(),
            "the gateway's SETTINGS do not offer extended CONNECT"
        );
        let mut request =
            http::Request::connect(format!("http://{}/routeguide.RouteGuide/RouteChat", setup.addr))
                .header("sec-websocket-version", "13")
                .header("origin", APP)
                .body(())
                .expect("request");
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        let (response, mut send) = client.send_request(request, false).expect("send");
        let response = response.await.expect("response");
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("sec-websocket-accept"));
        let mut recv = response.into_body();

        // The h2 stream's two halves, joined into one byte stream for tungstenite.
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (mut from_socket, mut to_socket) = tokio::io::split(theirs);
        tokio::spawn(async move {
            let mut buf = vec![0; 16 * 1024];
            while let Ok(n @ 1..) = from_socket.read(&mut buf).await {
                if send
                    .send_data(bytes::Bytes::copy_from_slice(&buf[..n]), false)
                    .is_err()
                {
                    return;
                }
            }
            let _ = send.send_data(bytes::Bytes::new(), true);
        });
        tokio::spawn(async move {
            while let Some(Ok(data)) = recv.data().await {
                let _ = recv.flow_control().release_capacity(data.len());
                if to_socket.write_all(&data).await.is_err() {
                    return;
                }
            }
        });
        let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(ours, Role::Client, None).await;
        socket.send(Message::text(note("a"))).await.expect("send a");
        socket.send(Message::text(note("b"))).await.expect("send b");
        let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a reply in time")
            .expect("a frame")
            .expect("no error");
        let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
        assert_eq!(reply["message"], "a");
        socket.send(Message::text("")).await.expect("half-close");
        let closing = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the close in time")
            .expect("a frame")
            .expect("no error");
        let Message::Close(Some(frame)) = closing else {
            panic!("expected a close frame, got {closing:?}");
        };
        assert_eq!(u16::from(frame.code), 1000);
    });
}

/// `?fields=` on the upgrade request selects every reply's members, as on a server stream
/// over HTTP; an unknown path refuses the handshake with 400.
#[test]
fn a_socket_answers_only_the_selected_fields() {
    let setup = setup("");
    let script = json!([
        { "send": note("one") },
        { "send": note("two") },
        { "recv": 1 },
        { "send": note("three") },
        { "recv": 2 },
        { "send": "" },
        { "wait_close": true }
    ]);
    let events = setup.client("RouteChat?fields=message", script, APP, &[]);
    // Without the selection each reply also has its `location`.
    let replies: Vec<&str> = events.iter().filter_map(|e| e["recv"].as_str()).collect();
    assert_eq!(
        replies,
        [
            r#"{"message":"one"}"#,
            r#"{"message":"one"}"#,
            r#"{"message":"two"}"#
        ]
    );
    assert_eq!(closed(&events), (1000, String::new()));

    let script = json!([{ "wait_close": true }]);
    let events = setup.client("RouteChat?fields=nope", script, APP, &[]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["refused"], 400, "{events:?}");
    assert_eq!(events[0]["body"]["code"], 3, "{events:?}");
    let message = events[0]["body"]["message"].as_str().expect("message");
    assert!(message.contains("nope"), "{message}");
}
