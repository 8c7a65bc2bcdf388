//! Cross-site writes as a real browser sends them: headless Chromium loads a page from
//! another site (`http://localhost:PORT`, while the gateway is at `127.0.0.1`) that tries
//! every write a page can make without a preflight: a `no-cors` fetch of a Blob without a
//! type, one of a Blob typed `application/json`, `navigator.sendBeacon`, and a
//! `text/plain` form post into an iframe. The browser sends each (the wire tap sees them),
//! the gateway answers each with 403, and the recording upstream sees no call. (Chromium
//! drops the Blob's JSON type in `no-cors` mode, so the `Content-Type` check would refuse
//! these too; the `Sec-Fetch-Site` check does not rely on that.) A page on an
//! allowed origin, the control, gets its preflighted JSON POST through.
//!
//! Without `chromium` on `PATH` these tests fail and say to run `scripts/setup`, unless
//! `PROTOGATE_SKIP_BROWSER=1` is set (`support/browser.rs`).

mod support;

use std::time::{Duration, Instant};

use protogate::pb::protogate_unpackaged::{UserReply, UserReq};
use serde_json::json;
use support::browser::{Tap, chromium_or_skip, page_results, serve_page};
use support::gateway::TestGateway;
use support::upstream::{RecordingUpstream, Reply};
use tokio::net::TcpListener;

/// Every write a page can send without a preflight, then a CORS fetch; each records what
/// the script could see.
const ATTACK: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"></head><body><pre id="result">pending</pre>
<script>
const TARGET = "__GATEWAY__/MyService/User";
const BODY = JSON.stringify({userIDs: [7]});
async function noCors(blob) {
  try {
    const response = await fetch(TARGET, {method: "POST", mode: "no-cors", body: blob});
    return {type: response.type};
  } catch (e) {
    return {error: e.name};
  }
}
function formPost() {
  return new Promise(resolve => {
    const frame = document.createElement("iframe");
    frame.name = "sink";
    document.body.appendChild(frame);
    frame.onload = () => resolve("loaded");
    setTimeout(() => resolve("timeout"), 3000);
    const form = document.createElement("form");
    form.method = "POST";
    form.action = TARGET;
    form.enctype = "text/plain";
    form.target = "sink";
    const input = document.createElement("input");
    input.name = '{"userIDs":[7],"pad":"';
    input.value = '"}';
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
  });
}
(async () => {
  const results = {};
  results.blob = await noCors(new Blob([BODY]));
  results.jsonBlob = await noCors(new Blob([BODY], {type: "application/json"}));
  results.beacon = navigator.sendBeacon(TARGET, BODY);
  results.form = await formPost();
  try {
    const response = await fetch(TARGET, {method: "POST", body: BODY,
                                          headers: {"content-type": "application/json"}});
    results.cors = {status: response.status, body: await response.json()};
  } catch (e) {
    results.cors = {error: e.name};
  }
  results.done = true;
  document.getElementById("result").textContent = JSON.stringify(results);
})();
</script></body></html>
"#;

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// A page served at `http://localhost:PORT/` (another site than the gateway's 127.0.0.1),
/// calling the gateway through a tap.
async fn page(gateway: &TestGateway) -> (String, String, Tap) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let port = listener.local_addr().expect("addr").port();
    let tap = Tap::start(gateway.addr).await;
    let html = ATTACK.replace("__GATEWAY__", &format!("http://{}", tap.addr));
    tokio::spawn(serve_page(listener, html));
    let origin = format!("http://localhost:{port}");
    (format!("{origin}/"), origin, tap)
}

/// Waits until the tap has seen `n` POSTs (a beacon may leave after the page is dumped).
async fn posts(tap: &Tap, n: usize) -> Vec<support::browser::Head> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let posts = tap.requests("POST /MyService/User ");
        if posts.len() >= n || Instant::now() > deadline {
            return posts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_a_page_on_another_site_never_reach_the_upstream() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let upstream = RecordingUpstream::start(|_| ok()).await;
    // CORS allows some other origin, not the attacking page's.
    let gateway = TestGateway::start(
        upstream.addr,
        "[cors]\nallowed_origins = [\"http://app.example\"]",
    )
    .await;
    let (url, origin, tap) = page(&gateway).await;
    let results = page_results(&chromium, &url).await;
    assert_eq!(results["blob"], json!({"type": "opaque"}), "{results}");
    assert_eq!(results["jsonBlob"], json!({"type": "opaque"}), "{results}");
    assert_eq!(results["beacon"], true, "the beacon was queued: {results}");
    // Whether the iframe's load event fires within the virtual time budget varies; the
    // tap below shows that the form post was sent.
    assert!(results["form"].is_string(), "{results}");
    assert_eq!(results["cors"]["error"], "TypeError", "{results}");

    // The browser sent all four writes; the CORS fetch stopped at its preflight.
    let posts = posts(&tap, 4).await;
    assert_eq!(posts.len(), 4, "{posts:#?}");
    for post in &posts {
        assert_eq!(post.header("sec-fetch-site"), Some("cross-site"), "{post:?}");
        assert_eq!(post.header("origin"), Some(origin.as_str()), "{post:?}");
    }
    let types: Vec<_> = posts.iter().map(|p| p.header("content-type")).collect();
    // Chromium drops a no-cors Blob's JSON type, so today the Content-Type check alone
    // would stop each of these (415, as the allowed page's untyped writes show); the 403
    // does not depend on what a browser does with the type.
    assert_eq!(
        types,
        [None, None, Some("text/plain;charset=UTF-8"), Some("text/plain")],
        "blob, typed blob, beacon, form"
    );
    let answers: Vec<_> = tap
        .responses()
        .into_iter()
        .filter(|r| r.header("access-control-allow-methods").is_none())
        .collect();
    assert_eq!(answers.len(), 4, "{answers:#?}");
    for answer in &answers {
        assert!(answer.line.starts_with("HTTP/1.1 403"), "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
    assert!(
        upstream.calls().is_empty(),
        "a cross-site write reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_an_allowed_origin_still_posts_json() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let upstream = RecordingUpstream::start(|_| ok()).await;
    // The page's port is only known once it is bound: bind first, then allow it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let origin = format!("http://localhost:{}", listener.local_addr().expect("addr").port());
    let gateway = TestGateway::start(
        upstream.addr,
        &format!("[cors]\nallowed_origins = [\"{origin}\"]"),
    )
    .await;
    let tap = Tap::start(gateway.addr).await;
    let html = ATTACK.replace("__GATEWAY__", &format!("http://{}", tap.addr));
    tokio::spawn(serve_page(listener, html));
    let results = page_results(&chromium, &format!("{origin}/")).await;
    assert_eq!(
        results["cors"],
        json!({"status": 200, "body": {"message": "success", "data": []}}),
        "{results}"
    );
    // The allowed origin's own writes are its business; the untyped ones are still 415.
    let calls = upstream.calls();
    assert!(!calls.is_empty());
    for call in calls {
        assert_eq!(call.decode::<UserReq>().user_i_ds, vec![7]);
    }
    let statuses: Vec<_> = tap
        .responses()
        .into_iter()
        .filter(|r| r.header("access-control-allow-methods").is_none())
        .map(|r| r.line)
        .collect();
    assert!(
        statuses.iter().any(|s| s.starts_with("HTTP/1.1 415")),
        "{statuses:?}"
    );
}
