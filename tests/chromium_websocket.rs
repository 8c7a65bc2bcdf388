//! A bidirectional chat over WebSocket from a real browser: headless Chromium loads a page
//! on an allowed origin that opens a socket to RouteGuide's `RouteChat` through the real
//! binary (grpcio RouteGuide behind `--schema reflection`), sends two notes at one place,
//! waits for the first reply before it sends the third (so replies arrive while it is still
//! sending), half-closes with an empty frame and sees the close 1000. A page on another
//! origin is refused before the upgrade: the gateway answers 403 and the browser's socket
//! never opens.
//!
//! The page is driven by Selenium (`tests/browser/page_result.py`, in `.venv-browser`, which
//! `scripts/setup-browser` installs): a socket is no fetch, so `chromium --dump-dom` would
//! dump the page before the chat ends. Without `chromium` on `PATH` these tests fail and say
//! to run `scripts/setup`, unless `PROTOGATE_SKIP_BROWSER=1` is set (`support/browser.rs`).

mod support;

use std::time::Duration;

use serde_json::json;
use support::TempDir;
use support::browser::{chromium_or_skip, serve_page};
use support::process::{manifest_dir, spawn_gateway, spawn_routeguide};
use tokio::net::TcpListener;

const CHAT: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"></head><body><pre id="result">pending</pre>
<script>
const events = [];
const note = (message) => JSON.stringify({location: {latitude: 409146138, longitude: -746188906}, message});
function finish(extra) {
  document.getElementById("result").textContent = JSON.stringify(Object.assign({events, done: true}, extra));
}
const socket = new WebSocket("__GATEWAY__/routeguide.RouteGuide/RouteChat");
let replies = 0;
socket.onopen = () => {
  events.push("open");
  socket.send(note("one")); events.push("sent one");
  socket.send(note("two")); events.push("sent two");
};
socket.onmessage = (event) => {
  replies += 1;
  events.push("got " + JSON.parse(event.data).message);
  if (replies === 1) {
    socket.send(note("three")); events.push("sent three");
  }
  if (replies === 3) {
    socket.send(""); events.push("half-closed");
  }
};
socket.onerror = () => events.push("error");
socket.onclose = (event) => finish({code: event.code, reason: event.reason});
</script></body></html>
"#;

/// A gateway in front of RouteGuide that allows `origin`, and a page on `listener` that
/// chats with it.
async fn chat_from(
    listener: TcpListener,
    allowed: &str,
) -> (serde_json::Value, support::process::GatewayLog) {
    let (_routeguide, upstream) = spawn_routeguide();
    let dir = TempDir::new("chromium-websocket");
    let config = dir.join("protogate.toml");
    std::fs::write(&config, format!("[cors]\nallowed_origins = [\"{allowed}\"]\n")).expect("config");
    let (config, upstream) = (
        config.to_str().expect("path").to_string(),
        format!("http://{upstream}"),
    );
    let args = [
        "--config",
        &config,
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        "reflection",
    ];
    let (_gateway, addr, log) = spawn_gateway(&args, &[]);
    let origin = format!("http://localhost:{}", listener.local_addr().expect("addr").port());
    tokio::spawn(serve_page(
        listener,
        CHAT.replace("__GATEWAY__", &format!("ws://{addr}")),
    ));
    let results = page_result(&format!("{origin}/")).await;
    (results, log)
}

/// What the page at `url` wrote into `<pre id="result">`, once it wrote it.
async fn page_result(url: &str) -> serde_json::Value {
    let python = manifest_dir().join(".venv-browser/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup-browser (scripts/setup does)",
        python.display()
    );
    let script = manifest_dir().join("tests/browser/page_result.py");
    let url = url.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(url)
            .output()
            .expect("run the browser script")
    })
    .await
    .expect("browser task");
    assert!(
        output.status.success(),
        "the browser script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_an_allowed_origin_chats_in_full_duplex() {
    if chromium_or_skip().is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let origin = format!("http://localhost:{}", listener.local_addr().expect("addr").port());
    let (results, _log) = chat_from(listener, &origin).await;
    assert_eq!(
        results["events"],
        json!([
            "open",
            "sent one",
            "sent two",
            // The first reply came while the request stream was still open, and the third
            // note went only after it.
            "got one",
            "sent three",
            "got one",
            "got two",
            "half-closed"
        ]),
        "{results}"
    );
    assert_eq!(results["code"], 1000, "{results}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_is_refused() {
    if chromium_or_skip().is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let (results, log) = chat_from(listener, "http://app.example.test").await;
    assert_eq!(results["events"], json!(["error"]), "{results}");
    assert_eq!(results["code"], 1006, "{results}");
    let refused = log.wait_for("request", Duration::from_secs(5), |r| {
        r["route"] == "(rejected)" || r["status"] == 403
    });
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(refused["method"], "GET", "{refused}");
}
