//! CORS as a real browser sees it: Debian's headless Chromium loads a page from another origin
//! (a tiny static server on its own `127.0.0.1:0` port) whose script calls the real `protogate`
//! binary, in front of the real Python users service, with `fetch`. This file owns what only a
//! browser proves: that a page on the allowed origin can read bodies, error bodies and the
//! exposed `x-request-id`, that a non-simple request passes its preflight, and that a page on
//! any other origin is refused by the browser (`fetch` rejects with a `TypeError`). Header-level
//! CORS cases against the in-process gateway live in `tests/browser.rs`, not here; the browser,
//! page server and wire tap are `support/browser.rs`.
//!
//! The page writes its results as JSON into `<pre id="result">`, and the test reads them from
//! `chromium --dump-dom`; `--virtual-time-budget` holds the dump until pending fetches settle.
//! The gateway's access log never records a preflight (the CORS layer answers it before the
//! handler), so the page calls the gateway through a TCP tap that keeps a copy of the bytes
//! on the wire: the test asserts the browser's own `OPTIONS` and the gateway's answer to it.
//!
//! Without `chromium` on `PATH` these tests fail and say to run `scripts/setup`, unless
//! `PROTOGATE_SKIP_BROWSER=1` is set, in which case they print that they skipped.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::browser::{Tap, TempPath, chromium_or_skip, page_results, serve_page};
use support::http::send;
use support::process::{ChildGuard, GatewayLog, shipped_config, spawn_gateway, spawn_python_users};
use tokio::net::TcpListener;

/// The `x-request-id` the page's preflighted POST sends, to find it in the access log.
const POST_REQUEST_ID: &str = "chromium-cors-post";

/// The page: a simple GET, a POST that needs a preflight (JSON content type, `authorization`
/// and `x-request-id`), and a GET that fails binding, each recorded as what the script could
/// read of the answer (status, exposed `x-request-id`, JSON body) or the error `fetch` threw.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>protogate CORS</title></head>
<body><pre id="result">pending</pre>
<script>
const GATEWAY = "__GATEWAY__";
async function call(path, init) {
  try {
    const response = await fetch(GATEWAY + path, init);
    const requestId = response.headers.get("x-request-id");
    return {status: response.status, requestId, body: await response.json()};
  } catch (e) {
    return {error: e.name, message: e.message};
  }
}
(async () => {
  const results = {};
  results.simple = await call("/users?ids=1,2");
  results.preflighted = await call("/MyService/User", {
    method: "POST",
    headers: {"content-type": "application/json", "authorization": "Bearer browser-token",
              "x-request-id": "__POST_REQUEST_ID__"},
    body: JSON.stringify({userIDs: [3]}),
  });
  results.error = await call("/users?ids=abc");
  results.done = true;
  document.getElementById("result").textContent = JSON.stringify(results);
})();
</script></body></html>
"#;

/// A page origin: its URL, its origin as the browser sends it, and the tap its page calls.
struct Page {
    url: String,
    origin: String,
    tap: Tap,
}

/// The users service, the gateway allowing exactly one page origin, and two page origins
/// (two ports): `allowed` and `other`.
struct Stack {
    gateway: SocketAddr,
    log: GatewayLog,
    allowed: Page,
    other: Page,
    _children: (ChildGuard, ChildGuard),
    _config: TempPath,
}

impl Stack {
    async fn start() -> Stack {
        let allowed_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
        let other_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
        let origin = |l: &TcpListener| format!("http://{}", l.local_addr().expect("page addr"));
        let (allowed_origin, other_origin) = (origin(&allowed_listener), origin(&other_listener));

        // The shipped config with CORS on for exactly the allowed page origin.
        let shipped = std::fs::read_to_string(shipped_config()).expect("read shipped config");
        let off = "allowed_origins = []";
        assert_eq!(
            shipped.matches(off).count(),
            1,
            "shipped [cors] changed: {off:?} not found once"
        );
        let config = TempPath::new(&format!("{}.toml", allowed_listener.local_addr().expect("addr")));
        let cors = format!("allowed_origins = [\"{allowed_origin}\"]");
        std::fs::write(&config.0, shipped.replace(off, &cors)).expect("write config");

        let (users, users_addr) = spawn_python_users(&[]);
        let upstream = format!("http://{users_addr}");
        let config_path = config.0.to_str().expect("UTF-8 temp path");
        let args = [
            "--config",
            config_path,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
        ];
        let (gateway_child, gateway, log) = spawn_gateway(&args, &[]);

        let mut pages = Vec::new();
        for (listener, origin) in [(allowed_listener, allowed_origin), (other_listener, other_origin)] {
            let tap = Tap::start(gateway).await;
            let html = PAGE
                .replace("__GATEWAY__", &format!("http://{}", tap.addr))
                .replace("__POST_REQUEST_ID__", POST_REQUEST_ID);
            tokio::spawn(serve_page(listener, html));
            pages.push(Page {
                url: format!("{origin}/"),
                origin,
                tap,
            });
        }
        let other = pages.pop().expect("two pages");
        let allowed = pages.pop().expect("two pages");
        Stack {
            gateway,
            log,
            allowed,
            other,
            _children: (users, gateway_child),
            _config: config,
        }
    }
}

fn bad_ids_status() -> Value {
    let message = "query parameter ids: invalid value \"abc\" for field userIDs: not an int32";
    json!({"code": 3, "message": message, "details": [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "ids", "description": message, "reason": ""}],
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_on_allowed_origin_reads_bodies_errors_and_request_id_after_preflight() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let stack = Stack::start().await;
    let results = page_results(&chromium, &stack.allowed.url).await;

    // What the page's script could read: statuses, bodies (errors too) and x-request-id.
    let simple = &results["simple"];
    assert_eq!(simple["status"], 200, "simple GET: {results}");
    assert_eq!(
        simple["body"],
        json!({"message": "success", "data": [
            {"name": "Alice", "age": 30, "email": "alice@example.com"},
            {"name": "Bob", "age": 25, "email": "bob@example.com"},
        ]})
    );
    let preflighted = &results["preflighted"];
    assert_eq!(preflighted["status"], 200, "preflighted POST: {results}");
    assert_eq!(
        preflighted["requestId"], POST_REQUEST_ID,
        "exposed x-request-id is readable"
    );
    assert_eq!(
        preflighted["body"],
        json!({"message": "success", "data": [{"name": "Carol", "age": 41, "email": "carol@example.com"}]})
    );
    let error = &results["error"];
    assert_eq!(error["status"], 400, "error GET: {results}");
    assert_eq!(
        error["body"],
        bad_ids_status(),
        "a cross-origin page reads the Status body"
    );

    // The generated request ids the page read join the gateway's access log.
    for (name, status) in [("simple", 200), ("error", 400)] {
        let id = results[name]["requestId"]
            .as_str()
            .expect("page read x-request-id");
        assert_eq!(stack.log.request(id)["status"], status, "{name}");
    }
    // The preflight, answered by the CORS layer, has its own access-log line.
    let preflight = stack
        .log
        .wait_for("request", Duration::from_secs(5), |v| v["route"] == "(preflight)");
    assert_eq!(preflight["method"], "OPTIONS");
    assert_eq!(preflight["status"], 200);
    assert_eq!(preflight["cors"], "allowed");
    assert_eq!(preflight["origin"], stack.allowed.origin.as_str());
    assert_eq!(preflight["requested_method"], "POST");
    assert!(preflight["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    let post = stack.log.request(POST_REQUEST_ID);
    assert_eq!(post["method"], "POST");
    assert_eq!(post["route"], "/MyService/User");
    assert_eq!(post["status"], 200);

    // The browser's own preflight, and the gateway's answer on the wire.
    let tap = &stack.allowed.tap;
    let [preflight] = &tap.requests("OPTIONS /MyService/User ")[..] else {
        panic!("one preflight expected: {:?}", tap.requests("OPTIONS "));
    };
    assert_eq!(preflight.header("origin"), Some(stack.allowed.origin.as_str()));
    assert_eq!(preflight.header("access-control-request-method"), Some("POST"));
    assert_eq!(
        preflight.header("access-control-request-headers"),
        Some("authorization,content-type,x-request-id")
    );
    let responses = tap.responses();
    assert_eq!(
        responses.len(),
        4,
        "three fetches and one preflight: {responses:#?}"
    );
    let answers: Vec<_> = responses
        .iter()
        .filter(|r| r.header("access-control-allow-methods").is_some())
        .collect();
    let [answer] = &answers[..] else {
        panic!("one preflight answer expected: {responses:#?}")
    };
    assert!(answer.line.starts_with("HTTP/1.1 200"), "{answer:?}");
    let allowed = answer.header("access-control-allow-headers").unwrap_or_default();
    for name in ["authorization", "content-type", "x-request-id"] {
        assert!(
            allowed.split(',').any(|h| h.trim() == name),
            "{name} not allowed: {answer:?}"
        );
    }
    for response in &responses {
        let origin = response.header("access-control-allow-origin");
        assert_eq!(origin, Some(stack.allowed.origin.as_str()), "{response:?}");
        assert!(response.varies_on_origin(), "no Vary: Origin: {response:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_on_other_origin_is_refused_by_the_browser() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let stack = Stack::start().await;
    let results = page_results(&chromium, &stack.other.url).await;

    for name in ["simple", "preflighted", "error"] {
        assert_eq!(
            results[name]["error"], "TypeError",
            "{name} must be blocked: {results}"
        );
        assert!(results[name].get("status").is_none(), "{name}: {results}");
    }

    // The gateway answered, but with no Access-Control-Allow-Origin, so the browser withheld
    // the answers; after the refused preflight it never sent the POST.
    let tap = &stack.other.tap;
    let preflights = tap.requests("OPTIONS /MyService/User ");
    assert_eq!(preflights.len(), 1, "{preflights:?}");
    assert_eq!(preflights[0].header("origin"), Some(stack.other.origin.as_str()));
    assert!(
        tap.requests("POST ").is_empty(),
        "the browser sent the POST after a refused preflight"
    );
    assert_eq!(
        tap.requests("GET /users?ids=").len(),
        2,
        "the GETs reached the gateway"
    );
    let responses = tap.responses();
    assert_eq!(responses.len(), 3, "two GETs and one preflight: {responses:#?}");
    for response in &responses {
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "{response:?}"
        );
        assert!(response.varies_on_origin(), "no Vary: Origin: {response:?}");
    }

    // A plain request from the other origin: Vary: Origin even without CORS headers, so a
    // cache never serves it to the allowed origin. Once it is logged, everything the page
    // caused is logged too, and the POST is not.
    let origin = stack.other.origin.as_str();
    let headers = [("origin", origin), ("x-request-id", "after-page")];
    let url = format!("http://{}/users?ids=1", stack.gateway);
    let reply = send(Method::GET, &url, &headers, Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let vary = reply
        .headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok());
    assert!(vary.flat_map(|v| v.split(',')).any(|v| v.trim() == "origin"));
    stack.log.request("after-page");
    let logged = stack.log.records();
    let preflights: Vec<_> = logged.iter().filter(|r| r["route"] == "(preflight)").collect();
    let [preflight] = &preflights[..] else {
        panic!("one logged preflight expected: {preflights:#?}")
    };
    assert_eq!(preflight["cors"], "refused", "{preflight}");
    assert_eq!(preflight["origin"], origin);
    assert_eq!(preflight["status"], 200);
    assert!(
        !logged.iter().any(|r| r["request_id"] == POST_REQUEST_ID),
        "a refused preflight must stop the POST"
    );
}
