//! Cross-site writes at the header level (the browser's view is `chromium_cross_site.rs`):
//! an unsafe method that a browser marks `Sec-Fetch-Site: cross-site` (or `same-site`) from
//! an origin `[cors]` does not allow is 403 with `google.rpc.Status` code 7, before any
//! upstream call; an allowed origin, a same-origin request and a request without Fetch
//! Metadata (curl) are served.

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use serde_json::json;
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

#[tokio::test]
async fn cross_site_write_from_a_disallowed_origin_is_403_and_never_forwarded() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, &format!("[cors]\nallowed_origins = [\"{APP}\"]")).await;
    let url = gateway.url("/MyService/User");
    let body = r#"{"userIDs":[1]}"#;
    let json_ct = ("content-type", "application/json");
    for site in ["cross-site", "same-site"] {
        let headers = [json_ct, ("sec-fetch-site", site), ("origin", EVIL)];
        let reply = send(Method::POST, &url, &headers, body).await;
        let message = format!(
            "a POST from another site (origin \"{EVIL}\") is not allowed; the origin must be listed in cors.allowed_origins"
        );
        reply.assert_json(403, json!({"code": 7, "message": message, "details": []}));
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    // A form post with no Origin it may show is refused all the same.
    let headers = [("content-type", "text/plain"), ("sec-fetch-site", "cross-site")];
    assert_eq!(send(Method::POST, &url, &headers, body).await.status, 403);
    assert!(upstream.calls().is_empty(), "refused before any upstream call");

    let served: [&[(&str, &str)]; 4] = [
        &[json_ct, ("sec-fetch-site", "cross-site"), ("origin", APP)],
        &[json_ct, ("sec-fetch-site", "same-origin"), ("origin", EVIL)],
        &[json_ct, ("origin", EVIL)],
        &[json_ct],
    ];
    for headers in served {
        let reply = send(Method::POST, &url, headers, body).await;
        assert_eq!(reply.status, 200, "{headers:?}: {:?}", reply.body);
    }
    // Safe methods are never refused for their site.
    let headers = [("sec-fetch-site", "cross-site"), ("origin", EVIL)];
    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &headers, Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.calls().len(), 5);
}

#[tokio::test]
async fn any_origin_cors_allows_cross_site_writes() {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let gateway = TestGateway::start(upstream.addr, "[cors]\nallowed_origins = [\"*\"]").await;
    let headers = [
        ("content-type", "application/json"),
        ("sec-fetch-site", "cross-site"),
        ("origin", EVIL),
    ];
    let reply = send(Method::POST, &gateway.url("/MyService/User"), &headers, "{}").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
}
