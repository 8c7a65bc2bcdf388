//! gRPC-Web and Connect from a real browser (issue 24, point 4): Debian's headless Chromium
//! loads a page from another origin whose script calls the real binary, in front of the real
//! Python users service, with `fetch`: a `grpc-web-text` call (its request framed and base64
//! encoded by hand in the page, its answer decoded there, trailer frame included) and Connect
//! JSON calls, a success and an error. The preflights these non-simple requests need pass,
//! and the answers are readable across origins. The browser and page server are
//! `support/browser.rs`; without `chromium` see there (`PROTOGATE_SKIP_BROWSER=1`).

mod support;

use serde_json::json;
use support::browser::{chromium_or_skip, page_results, serve_page};
use support::process::{spawn_gateway, spawn_python_users};
use tokio::net::TcpListener;

/// The page: MyService.User([1,2]) in grpc-web-text, then in Connect JSON, then a Connect
/// call with a field the message does not have. Each result is what the script could read.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>protogate protocols</title></head>
<body><pre id="result">pending</pre>
<script>
const GATEWAY = "__GATEWAY__";
// UserReq{userIDs:[1,2]}: field 1, packed, 2 bytes; framed: flag 0, length 4.
const FRAMED = new Uint8Array([0, 0, 0, 0, 4, 0x0a, 0x02, 0x01, 0x02]);
function decodeChunks(text) {
  // Each relayed piece is its own padded base64 chunk: decode up to each padding.
  let bytes = "";
  let rest = text;
  while (rest.length > 0) {
    let end = rest.indexOf("=");
    if (end < 0) { end = rest.length; } else { while (rest[end] === "=") end++; }
    bytes += atob(rest.slice(0, end));
    rest = rest.slice(end);
  }
  return bytes;
}
function frames(bytes) {
  const out = {messages: [], trailers: null};
  let i = 0;
  while (i + 5 <= bytes.length) {
    const flag = bytes.charCodeAt(i);
    const len = (bytes.charCodeAt(i + 1) << 24) | (bytes.charCodeAt(i + 2) << 16) |
                (bytes.charCodeAt(i + 3) << 8) | bytes.charCodeAt(i + 4);
    const payload = bytes.slice(i + 5, i + 5 + len);
    if (flag & 0x80) out.trailers = payload; else out.messages.push(payload);
    i += 5 + len;
  }
  return out;
}
async function grpcWebText() {
  try {
    const response = await fetch(GATEWAY + "/MyService/User", {
      method: "POST",
      headers: {"content-type": "application/grpc-web-text", "x-grpc-web": "1",
                "accept": "application/grpc-web-text"},
      body: btoa(String.fromCharCode(...FRAMED)),
    });
    const parsed = frames(decodeChunks(await response.text()));
    return {status: response.status, contentType: response.headers.get("content-type"),
            messages: parsed.messages.length,
            names: ["Alice", "Bob"].filter(n => parsed.messages.join("").includes(n)),
            trailers: parsed.trailers};
  } catch (e) {
    return {error: e.name, message: e.message};
  }
}
async function connect(body) {
  try {
    const response = await fetch(GATEWAY + "/MyService/User", {
      method: "POST",
      headers: {"content-type": "application/json", "connect-protocol-version": "1"},
      body: JSON.stringify(body),
    });
    return {status: response.status, body: await response.json()};
  } catch (e) {
    return {error: e.name, message: e.message};
  }
}
(async () => {
  const results = {};
  results.grpcWebText = await grpcWebText();
  results.connect = await connect({userIDs: [1, 2]});
  results.connectError = await connect({nope: 1});
  results.done = true;
  document.getElementById("result").textContent = JSON.stringify(results);
})();
</script></body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_page_calls_in_grpc_web_text_and_connect_json() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let (_users, upstream) = spawn_python_users(&[]);
    let page = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let origin = format!("http://{}", page.local_addr().expect("addr"));
    let dir = support::TempDir::new("protocol-browser");
    let config = dir.join("protogate.toml");
    let toml = format!("[upstream]\nurl = \"http://{upstream}\"\n[cors]\nallowed_origins = [\"{origin}\"]\n");
    std::fs::write(&config, toml).expect("config");
    let config = config.to_str().expect("UTF-8").to_string();
    let (_gateway, addr, _log) = spawn_gateway(&["--config", &config, "--listen", "127.0.0.1:0"], &[]);
    let html = PAGE.replace("__GATEWAY__", &format!("http://{addr}"));
    tokio::spawn(serve_page(page, html));
    let results = page_results(&chromium, &format!("{origin}/")).await;

    assert_eq!(results["done"], true, "{results}");
    let web = &results["grpcWebText"];
    assert_eq!(web["status"], 200, "{results}");
    assert_eq!(web["contentType"], "application/grpc-web-text");
    assert_eq!(web["messages"], 1);
    assert_eq!(web["names"], json!(["Alice", "Bob"]));
    let trailers = web["trailers"].as_str().expect("a trailer frame");
    assert!(trailers.contains("grpc-status: 0\r\n"), "{trailers:?}");
    let connect = &results["connect"];
    assert_eq!(connect["status"], 200, "{results}");
    assert_eq!(connect["body"]["data"][1]["name"], "Bob");
    let error = &results["connectError"];
    assert_eq!(error["status"], 400, "{results}");
    assert_eq!(error["body"]["code"], "invalid_argument");
}
