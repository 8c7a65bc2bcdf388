//! Every error path of the gateway, each answered as google.rpc.Status JSON with the
//! documented HTTP status: upstream status codes and details, bad input that must never reach
//! the upstream, body limits, a dead upstream, a slow upstream, and an oversized reply.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use prost::Message;
use protogate::pb::google::rpc;
use protogate::pb::protogate_unpackaged::{User, UserReply};
use serde_json::json;
use support::gateway::TestGateway;
use support::http::{get, post_json, send};
use support::upstream::{RecordingUpstream, Reply};
use tonic::{Code, Status};

fn ok_reply() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

#[tokio::test]
async fn every_upstream_code_maps_to_grpc_gateway_status() {
    // (code, HTTP status) from grpc-gateway's HTTPStatusFromCode.
    let table = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    let upstream = RecordingUpstream::start(|call| {
        let code: i32 = call.meta("x-code").and_then(|c| c.parse().ok()).unwrap_or(2);
        Reply::status(Status::new(Code::from_i32(code), format!("upstream says {code}")))
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    for (code, http) in table {
        let header = code.to_string();
        let reply = send(
            Method::GET,
            &gateway.url("/users?ids=1"),
            &[("grpc-metadata-x-code", &header)],
            Bytes::new(),
        )
        .await;
        reply.assert_json(
            http,
            json!({"code": code, "message": format!("upstream says {code}"), "details": []}),
        );
    }
}

/// Metadata the upstream sent with a failure comes back like success metadata.
#[tokio::test]
async fn upstream_metadata_survives_an_error() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::status(Status::permission_denied("no")).with_metadata("x-served-by", "replica-2")
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    reply.assert_json(403, json!({"code":7,"message":"no","details":[]}));
    assert_eq!(reply.header("grpc-metadata-x-served-by"), Some("replica-2"));
}

#[tokio::test]
async fn upstream_details_render_with_type() {
    let upstream = RecordingUpstream::start(|_| {
        let violation = rpc::bad_request::FieldViolation {
            field: "userIDs".into(),
            description: "must be positive".into(),
            ..Default::default()
        };
        let details = rpc::Status {
            code: 3,
            message: "bad ids".into(),
            details: vec![
                pbjson_types::Any {
                    type_url: "type.googleapis.com/google.rpc.BadRequest".into(),
                    value: rpc::BadRequest {
                        field_violations: vec![violation],
                    }
                    .encode_to_vec()
                    .into(),
                },
                pbjson_types::Any {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                    value: rpc::ErrorInfo {
                        reason: "NEGATIVE_ID".into(),
                        domain: "users".into(),
                        ..Default::default()
                    }
                    .encode_to_vec()
                    .into(),
                },
            ],
        };
        Reply::status(Status::with_details(
            Code::InvalidArgument,
            "bad ids",
            details.encode_to_vec().into(),
        ))
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=-1")).await;
    reply.assert_json(
        400,
        json!({"code":3,"message":"bad ids","details":[
            {"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[
                {"field":"userIDs","description":"must be positive","reason":""}]},
            {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"NEGATIVE_ID","domain":"users","metadata":{}}
        ]}),
    );
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
            "invalid request",
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

#[tokio::test]
async fn dead_upstream_is_503_fast() {
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let addr = upstream.addr;
    upstream.kill().await;
    let gateway = TestGateway::start(addr, "[upstream]\ntimeout = \"20s\"\nmax_timeout = \"20s\"").await;
    let started = Instant::now();
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}: must not wait for the deadline",
        started.elapsed()
    );
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["code"], 14);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("upstream unavailable")),
        "{}",
        reply.json()
    );
}

#[tokio::test]
async fn slow_upstream_is_504_at_the_deadline() {
    let upstream = RecordingUpstream::start(|_| ok_reply().after(Duration::from_secs(5))).await;
    let gateway = TestGateway::start(upstream.addr, "[upstream]\ntimeout = \"300ms\"").await;
    let started = Instant::now();
    let reply = get(&gateway.url("/users?ids=1")).await;
    let took = started.elapsed();
    reply.assert_json(
        504,
        json!({"code":4,"message":"upstream did not answer within 300ms","details":[]}),
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    // The client's own, shorter grpc-timeout wins, and reaches the upstream.
    let started = Instant::now();
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("grpc-timeout", "100m")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "took {:?}",
        started.elapsed()
    );
    let sent = upstream.calls()[1]
        .meta("grpc-timeout")
        .expect("grpc-timeout sent upstream");
    let micros: u64 = sent
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .expect("number");
    assert!(
        sent.ends_with('u') && micros <= 100_000 && micros > 50_000,
        "{sent}"
    );
}

#[tokio::test]
async fn client_deadline_is_capped_by_max_timeout() {
    let upstream = RecordingUpstream::start(|_| ok_reply().after(Duration::from_secs(5))).await;
    let gateway = TestGateway::start(
        upstream.addr,
        "[upstream]\ntimeout = \"100ms\"\nmax_timeout = \"200ms\"",
    )
    .await;
    let started = Instant::now();
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("grpc-timeout", "10S")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn oversized_upstream_reply_is_502() {
    let big = "x".repeat(5 * 1024 * 1024);
    let upstream = RecordingUpstream::start(move |_| {
        Reply::message(&UserReply {
            message: big.clone(),
            data: vec![User::default()],
        })
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert_eq!(reply.status, 502, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["code"], 13);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("too large"))
    );
}

/// The gateway starts while the upstream is down and serves once it is up, with no restart.
#[tokio::test]
async fn gateway_recovers_when_upstream_comes_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let gateway = TestGateway::start(addr, "").await;
    assert_eq!(get(&gateway.url("/users?ids=1")).await.status, 503);
    assert_eq!(get(&gateway.url("/healthz")).await.status, 200);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the same port");
    let upstream = RecordingUpstream::serve(listener, std::sync::Arc::new(|_| ok_reply()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(&gateway.url("/users?ids=1")).await;
        if reply.status == 200 {
            reply.assert_json(200, json!({"message":"success","data":[]}));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gateway never reconnected: {}",
            reply.json()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!upstream.calls().is_empty());
}

#[tokio::test]
async fn post_without_content_type_is_json() {
    let upstream = RecordingUpstream::start(|_| ok_reply()).await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(
        Method::POST,
        &gateway.url("/MyService/User"),
        &[],
        "{\"userIDs\":[1]}",
    )
    .await;
    reply.assert_json(200, json!({"message":"success","data":[]}));
    let reply = post_json(&gateway.url("/MyService/User"), "{\"userIDs\":[1]}").await;
    assert_eq!(reply.status, 200);
}
