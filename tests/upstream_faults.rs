//! Upstream faults, each answered as google.rpc.Status JSON with the documented HTTP status:
//! every gRPC status code, rich details, metadata on errors, a dead upstream (503), a slow one
//! (504 at the deadline), an oversized reply (502), and an upstream that comes back.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use prost::Message;
use protogate::pb::google::rpc;
use protogate::pb::protogate_unpackaged::{User, UserReply};
use serde_json::json;
use support::eventually;
use support::gateway::TestGateway;
use support::http::{get, send};
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
    // A default far above the client's 100 ms below, so that a busy machine's scheduling
    // delays cannot blur which deadline fired.
    let gateway = TestGateway::start(upstream.addr, "[upstream]\ntimeout = \"900ms\"").await;
    let started = Instant::now();
    let reply = get(&gateway.url("/users?ids=1")).await;
    let took = started.elapsed();
    reply.assert_json(
        504,
        json!({"code":4,"message":"upstream did not answer within 900ms","details":[]}),
    );
    assert!(
        took >= Duration::from_millis(890) && took < Duration::from_secs(3),
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
        started.elapsed() < Duration::from_millis(700),
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
    // X-Request-Timeout, for clients that do not speak gRPC, works the same way, and is
    // not itself forwarded.
    let reply = send(
        Method::GET,
        &gateway.url("/users?ids=1"),
        &[("x-request-timeout", "0.1")],
        Bytes::new(),
    )
    .await;
    reply.assert_json(
        504,
        json!({"code":4,"message":"upstream did not answer within 100ms","details":[]}),
    );
    let call = &upstream.calls()[2];
    assert!(call.meta("grpc-timeout").is_some_and(|t| t.ends_with('u')));
    assert_eq!(call.meta("x-request-timeout"), None);
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
    let reply = eventually("the gateway to reconnect", Duration::from_secs(10), || async {
        let reply = get(&gateway.url("/users?ids=1")).await;
        (reply.status == 200).then_some(reply)
    })
    .await;
    reply.assert_json(200, json!({"message":"success","data":[]}));
    assert!(!upstream.calls().is_empty());
}

/// One retry for a GET the upstream answered UNAVAILABLE; never for a POST that was sent.
#[tokio::test]
async fn unavailable_get_is_retried_once_post_never() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let upstream = RecordingUpstream::start(move |_| {
        // Every odd call fails: the first attempt of each request.
        if counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .is_multiple_of(2)
        {
            Reply::status(Status::unavailable("warming up"))
        } else {
            ok_reply()
        }
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    reply.assert_json(200, json!({"message":"success","data":[]}));
    assert_eq!(upstream.calls().len(), 2, "one retry");

    let reply = send(
        Method::POST,
        &gateway.url("/MyService/User"),
        &[("content-type", "application/json")],
        "{\"userIDs\":[1]}",
    )
    .await;
    reply.assert_json(503, json!({"code":14,"message":"warming up","details":[]}));
    assert_eq!(
        upstream.calls().len(),
        3,
        "the POST reached the upstream once and was not retried"
    );
}

/// /readyz is 503 for every kind of "not ready", a slow upstream health check included.
#[tokio::test]
async fn readyz_is_503_when_the_health_check_times_out() {
    let upstream = RecordingUpstream::start(|_| ok_reply().after(Duration::from_secs(5))).await;
    let gateway = TestGateway::start(upstream.addr, "[upstream]\nreadiness = \"MyService.Health\"").await;
    let started = Instant::now();
    let reply = get(&gateway.url("/readyz")).await;
    assert_eq!(reply.status, 503, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["code"], 14);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not ready: upstream did not answer"))
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(upstream.only_call().path, "/MyService/Health");
}

/// An HTTP/2 upstream that is not a gRPC server (no gRPC content type) is a bad gateway:
/// 502, not 500. A plain HTTP/1 server breaks the connection instead: 503, as grpc-go says.
#[tokio::test]
async fn upstream_that_is_not_grpc_is_502_and_one_not_http2_is_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let http1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http1_addr = http1.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = http1.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
                    .await;
            });
        }
    });
    let h2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let h2_addr = h2.local_addr().expect("addr");
    let app = axum::Router::new().fallback(|| async { "not grpc at all" });
    tokio::spawn(async move {
        while let Ok((socket, _)) = h2.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let builder =
                    hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    // An HTTP/2 server that is not gRPC answers, and its answer is no gRPC reply: 502.
    let gateway = TestGateway::start(h2_addr, "").await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert_eq!(reply.status, 502, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["code"], 13);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("upstream is not answering gRPC"))
    );
    // An HTTP/1 server never speaks HTTP/2: the connection ends under the call, which
    // every gRPC client reports as UNAVAILABLE (grpc-go: "connection closed before server
    // preface received"). It may have read the request, so a POST is not retried.
    let gateway = TestGateway::start(http1_addr, "").await;
    let reply = send(
        http::Method::POST,
        &gateway.url("/MyService/User"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, 503, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(
        reply.json(),
        serde_json::json!({"code": 14, "message": "upstream connection lost during the call", "details": []})
    );
}
