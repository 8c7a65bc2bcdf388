//! Bad input answered by the gateway itself, as google.rpc.Status JSON with the documented
//! HTTP status, and never forwarded: malformed values and bodies, unknown fields and
//! parameters, wrong methods and content types, and bodies over the limit.

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use serde_json::json;
use support::gateway::TestGateway;
use support::http::{get, post_json, send};
use support::upstream::{RecordingUpstream, Reply};

fn ok_reply() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// method, path, headers, body, expected status, text the error message must contain.
type BadCase<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], &'a str, u16, &'a str);

/// Bad input is answered by the gateway; the upstream never sees it.
#[tokio::test]
async fn bad_input_never_reaches_the_upstream() {
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nmax_body_bytes = 64").await;
    let json_ct = [("content-type", "application/json")];
    let cases: Vec<BadCase> = vec![
        (
            Method::GET,
            "/users?ids=abc",
            &[],
            "",
            400,
            "invalid value \"abc\" for field userIDs: not an int32",
        ),
        (
            Method::GET,
            "/users?ids=2147483648",
            &[],
            "",
            400,
            "out of range for int32",
        ),
        (Method::GET, "/users?ids=1,,2", &[], "", 400, "invalid value \"\""),
        (
            Method::GET,
            "/users?color=red",
            &[],
            "",
            400,
            "unknown query parameter \"color\"",
        ),
        (
            Method::GET,
            "/users",
            &json_ct,
            "{}",
            400,
            "takes no request body",
        ),
        (
            Method::GET,
            "/users?ids=1",
            &[("grpc-timeout", "soon")],
            "",
            400,
            "invalid grpc-timeout",
        ),
        (
            Method::POST,
            "/MyService/User",
            &json_ct,
            "{\"userIDs\":",
            400,
            "malformed JSON body",
        ),
        (
            Method::POST,
            "/MyService/User",
            &json_ct,
            "{\"userIDs\":[1],\"userIDs\":[2]}",
            400,
            "duplicate key",
        ),
        (
            Method::POST,
            "/MyService/User",
            &json_ct,
            "{\"nope\":1}",
            400,
            "unknown field `nope`",
        ),
        (
            Method::POST,
            "/MyService/User",
            &json_ct,
            "{\"userIDs\":[2147483648]}",
            400,
            "invalid value 2147483648 for field userIDs: out of range for int32",
        ),
        (
            Method::POST,
            "/MyService/User",
            &json_ct,
            "[1]",
            400,
            "must be a JSON object",
        ),
        (
            Method::POST,
            "/MyService/User?ids=1",
            &json_ct,
            "{}",
            400,
            "takes its fields from the body",
        ),
        (
            Method::POST,
            "/MyService/User",
            &[("content-type", "text/plain")],
            "{}",
            415,
            "unsupported content type",
        ),
        (
            Method::POST,
            "/MyService/User",
            &json_ct,
            "{\"userIDs\":[100,200,300,400,500,600,700,800,900,1000,1100,1200,1300,1400,1500]}",
            413,
            "exceeds the limit of 64 bytes",
        ),
        (Method::GET, "/nowhere", &[], "", 404, "no route for /nowhere"),
        (
            Method::PUT,
            "/users",
            &[],
            "",
            405,
            "method PUT is not allowed here; allowed: GET",
        ),
    ];
    for (method, path, headers, body, status, needle) in cases {
        let reply = send(method.clone(), &gateway.url(path), headers, body.to_string()).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path} {body}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{method} {path}"
        );
        let json = reply.json();
        let message = json["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{method} {path}: {message:?} lacks {needle:?}"
        );
        assert!(
            json["code"].as_i64().is_some_and(|c| c > 0),
            "{method} {path}: code in {json}"
        );
    }
    assert!(
        upstream.calls().is_empty(),
        "no bad request may reach the upstream: {:?}",
        upstream.calls()
    );
}

#[tokio::test]
async fn binding_errors_carry_bad_request_details() {
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=abc")).await;
    let message = "query parameter ids: invalid value \"abc\" for field userIDs: not an int32";
    reply.assert_json(
        400,
        json!({"code":3,"message":message,"details":[{"@type":"type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations":[{"field":"ids","description":message,"reason":""}]}]}),
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(Method::DELETE, &gateway.url("/MyService/User"), &[], Bytes::new()).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    assert_eq!(reply.json()["code"], 12);
}

/// A chunked body with no Content-Length that crosses the limit part-way is still 413.
#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use hyper_util::client::legacy::Client;
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nmax_body_bytes = 1000").await;
    let chunks =
        (0..20).map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b' '; 100]))));
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::post(gateway.url("/MyService/User"))
        .header("content-type", "application/json")
        .body(body)
        .expect("request");
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(upstream.calls().is_empty());
}

/// A client that declares a body over the limit and writes all of it before it reads (as
/// simple clients do) still reads the 413: the gateway answers before reading the body, and
/// then keeps reading and discarding it until the client closes (server/linger.rs) instead
/// of closing on unread data, which would reset the connection and lose the answer (8 MiB
/// here: without the linger, the write fails with a broken pipe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_writes_its_whole_oversized_body_before_reading_gets_the_413() {
    use std::io::{Read as _, Write as _};
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "[server]\nmax_body_bytes = 1000").await;
    let addr = gateway.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let body = vec![b' '; 8 * 1024 * 1024];
        let head = format!(
            "POST /MyService/User HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("head written");
        stream.write_all(&body).expect("the whole body is written: the gateway reads it");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("the answer, then the gateway's close");
        String::from_utf8(answer).expect("UTF-8")
    })
    .await
    .expect("no panic");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let status: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(
        status,
        json!({"code": 8, "message": "request body exceeds the limit of 1000 bytes", "details": []})
    );
    assert!(upstream.calls().is_empty());
}

/// A page on another site can POST a Blob without a `Content-Type` and without a
/// preflight; such a body is never read as JSON. An empty body needs no type.
#[tokio::test]
async fn body_without_content_type_is_415_and_never_forwarded() {
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let url = gateway.url("/MyService/User");
    let reply = send(Method::POST, &url, &[], "{\"userIDs\":[1]}").await;
    reply.assert_json(
        415,
        json!({"code": 3, "message": "a request body needs Content-Type: application/json", "details": []}),
    );
    assert!(upstream.calls().is_empty());
    let reply = send(Method::POST, &url, &[], Bytes::new()).await;
    reply.assert_json(200, json!({"message":"success","data":[]}));
    let reply = post_json(&url, "{\"userIDs\":[1]}").await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.calls().len(), 2);
}
