//! Streams both ways against grpc-go (`clients/go/routeguide`: grpc's RouteGuide with every
//! method shape and reflection), through the real binary with `--schema reflection`: a client
//! stream in NDJSON, a bad message that cancels the call (grpc-go's handler sees
//! CANCELLED, not io.EOF), a bidirectional stream over HTTP, and a WebSocket chat driven by
//! the Python `websockets` library, with grpc-go's error mid-stream as close 4009 and a client
//! close that cancels the call.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::go::spawn_go_routeguide;
use support::http::send;
use support::process::{ChildGuard, manifest_dir, python_venv, run_to_exit, spawn_gateway};

struct Setup {
    routeguide: ChildGuard,
    _gateway: ChildGuard,
    addr: SocketAddr,
}

fn setup() -> Setup {
    let (routeguide, upstream) = spawn_go_routeguide();
    let upstream = format!("http://{upstream}");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        "reflection",
    ];
    let (gateway, addr, _log) = spawn_gateway(&args, &[]);
    Setup {
        routeguide,
        _gateway: gateway,
        addr,
    }
}

impl Setup {
    fn upstream_says(&self, prefix: &str) {
        let said = self
            .routeguide
            .stdout()
            .wait_for(Duration::from_secs(10), |line| line.starts_with(prefix));
        assert!(
            said.is_some(),
            "grpc-go never said {prefix:?}: {}",
            self.routeguide.stdout().text()
        );
    }

    async fn post(&self, method: &str, body: &str) -> support::http::Reply {
        send(
            Method::POST,
            &format!("http://{}/routeguide.RouteGuide/{method}", self.addr),
            &[("content-type", "application/x-ndjson")],
            Bytes::from(body.to_string()),
        )
        .await
    }

    fn websocket(&self, script: Value) -> Vec<Value> {
        let mut command = std::process::Command::new(python_venv());
        command
            .arg(manifest_dir().join("tests/python/websocket_client.py"))
            .arg(format!("ws://{}/routeguide.RouteGuide/RouteChat", self.addr))
            .arg(script.to_string());
        let finished = run_to_exit(command, Duration::from_secs(30));
        assert!(finished.status.success(), "{:?}", finished.stderr);
        finished
            .stdout
            .iter()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }
}

fn note(message: &str) -> String {
    json!({ "location": { "latitude": 409146138, "longitude": -746188906 }, "message": message }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_takes_client_and_bidirectional_streams_over_http() {
    let setup = setup();
    let points = "{\"latitude\":409146138,\"longitude\":-746188906}\n{\"latitude\":407838351,\"longitude\":-746143763}\n";
    let reply = setup.post("RecordRoute", points).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["pointCount"], 2);
    assert_eq!(reply.json()["featureCount"], 2);
    setup.upstream_says("RecordRoute complete after 2 points");

    let bad = format!("{points}{{\"latitude\":true}}\n");
    let reply = setup.post("RecordRoute", &bad).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("line 3: "))
    );
    setup.upstream_says("RecordRoute cancelled after ");

    let chat = format!("{}\n{}\n", note("one"), note("two"));
    let reply = setup.post("RouteChat", &chat).await;
    assert_eq!(reply.status, 200);
    let line: Value =
        serde_json::from_slice(reply.body.split(|b| *b == b'\n').next().expect("line")).expect("json");
    assert_eq!(line["result"]["message"], "one");
    setup.upstream_says("RouteChat complete after 2 notes");
}

#[test]
fn grpc_go_chats_over_a_websocket() {
    let setup = setup();
    let events = setup.websocket(json!([
        { "send": note("one") }, { "send": note("two") }, { "recv": 1 },
        { "send": note("three") }, { "recv": 2 }, { "send": "" }, { "wait_close": true }
    ]));
    let replies: Vec<&Value> = events.iter().filter(|e| e.get("recv").is_some()).collect();
    assert_eq!(replies.len(), 3, "{events:?}");
    assert_eq!(events.last().expect("closed")["closed"], 1000, "{events:?}");

    let events = setup.websocket(json!([{ "send": note("fail") }, { "wait_close": true }]));
    let last = events.last().expect("closed");
    assert_eq!(
        (last["closed"].clone(), last["reason"].clone()),
        (json!(4009), json!("the chat was told to fail"))
    );

    let events = setup
        .websocket(json!([{ "send": note("a") }, { "send": note("b") }, { "recv": 1 }, { "close": true }]));
    assert!(events.iter().any(|e| e.get("recv").is_some()), "{events:?}");
    setup.upstream_says("RouteChat cancelled after 2 notes");
}
