//! The interop matrix: one suite of gateway calls and faults, run against three real
//! upstreams of MyService: the Python grpcio service (`services/users`), the grpc-go server
//! (`clients/go/server`, built from Debian's Go packages) and the tonic test upstream
//! (`support/seed_service.rs`). All three serve the same users and honour the same test
//! hooks, so every row expects one answer; where an upstream cannot give it, the row says
//! so and why. Each upstream also runs gzip-compressed (grpcio `--compression gzip`,
//! grpc-go `-gzip`, tonic `send_compressed`), where the answers must not change.
//!
//! Rows: the seed's routes; every status code 1–16 and one with rich details; a deadline;
//! a reply just under and just over the 4 MiB reply limit; metadata both ways (request
//! metadata in, head metadata as headers, trailer metadata as headers or HTTP trailers);
//! a server stream (tonic only: MyService has none); and all of it again under gzip where
//! it matters. Run with `--nocapture` to see one line per row and upstream.

mod support;

use std::net::SocketAddr;

use http::Method;
use serde_json::{Value, json};
use support::gateway::TestGateway;
use support::go::spawn_go_users;
use support::http::{Reply, send};
use support::process::{ChildGuard, spawn_python_users_with};
use support::upstream::RecordingUpstream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Grpcio,
    GrpcGo,
    Tonic,
}

/// A running upstream of one kind; held only to stop it on drop.
#[allow(dead_code)]
enum Running {
    Process(ChildGuard),
    Tonic(RecordingUpstream),
}

async fn start(kind: Kind, gzip: bool) -> (Running, SocketAddr) {
    match kind {
        Kind::Grpcio => {
            let args: &[&str] = if gzip { &["--compression", "gzip"] } else { &[] };
            let (child, addr) = spawn_python_users_with(0, &[("USERS_SERVICE_TEST_HOOKS", "1")], args);
            (Running::Process(child), addr)
        }
        Kind::GrpcGo => {
            let args: &[&str] = if gzip { &["-gzip"] } else { &[] };
            let (child, addr) = spawn_go_users(args);
            (Running::Process(child), addr)
        }
        Kind::Tonic => {
            let upstream = match gzip {
                false => RecordingUpstream::start(support::seed_service::answer).await,
                true => RecordingUpstream::start_gzip(support::seed_service::answer).await,
            };
            let addr = upstream.addr;
            (Running::Tonic(upstream), addr)
        }
    }
}

fn row(kind: Kind, name: &str) {
    println!("interop | {kind:?} | {name} | ok");
}

fn user(name: &str) -> Value {
    match name {
        "Alice" => json!({"name": "Alice", "age": 30, "email": "alice@example.com"}),
        "Bob" => json!({"name": "Bob", "age": 25, "email": "bob@example.com"}),
        _ => json!({"name": "Carol", "age": 41, "email": "carol@example.com"}),
    }
}

fn users(names: &[&str]) -> Value {
    json!({"message": "success", "data": names.iter().map(|n| user(n)).collect::<Vec<_>>()})
}

async fn post_user(gateway: &TestGateway, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(
        Method::POST,
        &gateway.url("/MyService/User"),
        &all,
        body.to_string(),
    )
    .await
}

/// `{"userIDs":[1,1,…]}`: a reply of `n` Alices, 30 bytes each on the wire plus 9 for
/// `message`.
fn alices(n: usize) -> String {
    format!("{{\"userIDs\":[{}]}}", vec!["1"; n].join(","))
}

/// The most Alices that fit the 4 MiB limit: 9 + 30 n <= 4 194 304.
const FITS: usize = (4 * 1024 * 1024 - 9) / 30;

/// grpc-gateway's table for codes 1..=16.
const HTTP_OF_CODE: [u16; 17] = [
    200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
];

async fn seed_routes(kind: Kind, gateway: &TestGateway) {
    get_alice_and_bob(gateway).await;
    send(Method::GET, &gateway.url("/health"), &[], "")
        .await
        .assert_json(200, json!({}));
    post_user(gateway, r#"{"userIDs":[3,9,3]}"#, &[])
        .await
        .assert_json(200, users(&["Carol", "Carol"]));
    row(
        kind,
        "seed routes: GET /users?ids=1,2, GET /health, POST /MyService/User",
    );
}

async fn every_status_code(kind: Kind, gateway: &TestGateway, gzip: bool) {
    let tag = if gzip { " (gzip)" } else { "" };
    for code in 1..=16u16 {
        let code_text = code.to_string();
        let reply = post_user(
            gateway,
            r#"{"userIDs":[1]}"#,
            &[("grpc-metadata-x-test-fail-code", &code_text)],
        )
        .await;
        reply.assert_json(
            HTTP_OF_CODE[usize::from(code)],
            json!({"code": code, "message": "injected failure", "details": []}),
        );
        // Head metadata sent before the failure survives it.
        assert!(
            reply.header("grpc-metadata-x-served-by").is_some(),
            "{kind:?} code {code}"
        );
    }
    row(
        kind,
        &format!("every status code 1-16 -> grpc-gateway's HTTP status, x-served-by kept{tag}"),
    );
    let reply = post_user(
        gateway,
        r#"{"userIDs":[1]}"#,
        &[
            ("grpc-metadata-x-test-fail-code", "5"),
            ("grpc-metadata-x-test-fail-details", "1"),
        ],
    )
    .await;
    reply.assert_json(
        404,
        json!({"code": 5, "message": "injected failure", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INJECTED", "domain": "users.example", "metadata": {}}
        ]}),
    );
    row(
        kind,
        &format!("status with details (ErrorInfo) -> 404 with @type details{tag}"),
    );
}

async fn deadline(kind: Kind, gateway: &TestGateway) {
    let headers = [
        ("grpc-timeout", "300m"),
        ("grpc-metadata-x-test-delay-ms", "3000"),
    ];
    let started = std::time::Instant::now();
    let reply = post_user(gateway, r#"{"userIDs":[1]}"#, &headers).await;
    assert_eq!(
        reply.status,
        504,
        "{kind:?}: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!((&body["code"], &body["details"]), (&json!(4), &json!([])));
    // The gateway sends what is left of the deadline as grpc-timeout, so the upstream's own
    // deadline passes at about the same moment as the gateway's: grpcio answers "Deadline
    // Exceeded", grpc-go "context deadline exceeded", tonic CANCELLED ("Timeout expired").
    // Whichever comes first, an upstream expiry at the deadline is the gateway's deadline
    // (grpc::is_the_deadline), so every upstream gives the same words.
    assert_eq!(
        body["message"], "upstream did not answer within 300ms",
        "{kind:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{kind:?}: at the deadline"
    );
    row(
        kind,
        "deadline: grpc-timeout 300m, upstream 3 s -> 504 at the deadline",
    );
}

async fn near_the_limit(kind: Kind, gateway: &TestGateway, gzip: bool) {
    let fits = post_user(gateway, &alices(FITS), &[]).await;
    assert_eq!(
        fits.status,
        200,
        "{kind:?}: {:?}",
        String::from_utf8_lossy(&fits.body[..200.min(fits.body.len())])
    );
    assert_eq!(fits.json()["data"].as_array().map(Vec::len), Some(FITS));
    let over = post_user(gateway, &alices(FITS + 1), &[]).await;
    let message = match gzip {
        // A compressed reply is refused once inflating passes the limit.
        true => {
            "upstream reply too large: more than 4194304 bytes once inflated, the limit is 4194304 (upstream.max_reply_bytes)"
        }
        false => "upstream reply too large: 4194309 bytes, the limit is 4194304 (upstream.max_reply_bytes)",
    };
    over.assert_json(502, json!({"code": 13, "message": message, "details": []}));
    let gzip = if gzip { " (gzip)" } else { "" };
    row(
        kind,
        &format!("reply of 4194279 bytes -> 200; 4194309 bytes -> 502{gzip}"),
    );
}

async fn metadata_both_ways(kind: Kind, gateway: &TestGateway) {
    let url = gateway.url("/users?ids=1");
    let echo = ("grpc-metadata-x-test-echo", "hello");
    // Without TE: trailers, trailer metadata is a header too.
    let reply = send(Method::GET, &url, &[echo], "").await;
    reply.assert_json(200, users(&["Alice"]));
    assert_eq!(reply.header("grpc-metadata-x-echo"), Some("hello"), "{kind:?}");
    let served_by = reply.header("grpc-metadata-x-served-by").map(str::to_string);
    match kind {
        Kind::GrpcGo => assert_eq!(served_by.as_deref(), Some("grpc-go")),
        Kind::Tonic => assert_eq!(served_by.as_deref(), Some("tonic")),
        // grpcio's hooks send the host name.
        Kind::Grpcio => assert!(served_by.is_some_and(|s| !s.is_empty())),
    }
    // With TE: trailers, trailer metadata is an HTTP trailer.
    let with_te = send(Method::GET, &url, &[echo, ("te", "trailers")], "").await;
    with_te.assert_json(200, users(&["Alice"]));
    assert_eq!(with_te.header("grpc-metadata-x-echo"), Some("hello"));
    match kind {
        Kind::Grpcio | Kind::GrpcGo => {
            assert_eq!(
                reply.header("grpc-metadata-x-echo-trailer"),
                Some("hello"),
                "{kind:?}"
            );
            let trailers = with_te.trailers.as_ref().expect("trailers");
            assert_eq!(trailers["grpc-trailer-x-echo-trailer"], "hello", "{kind:?}");
            assert_eq!(with_te.header("grpc-metadata-x-echo-trailer"), None);
        }
        // tonic's server API has no trailing metadata on a successful unary reply: the
        // tonic upstream sends none, so there is nothing to forward either way.
        Kind::Tonic => {
            assert_eq!(reply.header("grpc-metadata-x-echo-trailer"), None);
            assert!(with_te.trailers.is_none());
        }
    }
    row(
        kind,
        "metadata both ways: request metadata in, head as Grpc-Metadata-*, trailers as Grpc-Trailer-* with TE",
    );
}

async fn server_stream(kind: Kind, gateway: &TestGateway) {
    let reply = send(Method::GET, &gateway.url("/v1/items?count=2"), &[], "").await;
    match kind {
        Kind::Tonic => {
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
            assert_eq!(
                String::from_utf8_lossy(&reply.body),
                "{\"result\":{\"index\":1,\"text\":\"item 1\"}}\n{\"result\":{\"index\":2,\"text\":\"item 2\"}}\n"
            );
            row(kind, "server stream: GET /v1/items?count=2 -> NDJSON");
        }
        // MyService has no streaming method, so grpcio and grpc-go answer the test protos'
        // StreamItems with UNIMPLEMENTED: the same 501 for both.
        Kind::Grpcio | Kind::GrpcGo => {
            assert_eq!(reply.status, 501, "{:?}", String::from_utf8_lossy(&reply.body));
            assert_eq!(reply.json()["code"], 12);
            row(
                kind,
                "server stream: not served (MyService has none) -> 501 UNIMPLEMENTED",
            );
        }
    }
}

async fn matrix(kind: Kind) {
    let (_upstream, addr) = start(kind, false).await;
    let gateway = TestGateway::start(addr, "").await;
    seed_routes(kind, &gateway).await;
    every_status_code(kind, &gateway, false).await;
    deadline(kind, &gateway).await;
    near_the_limit(kind, &gateway, false).await;
    metadata_both_ways(kind, &gateway).await;
    server_stream(kind, &gateway).await;

    let (_compressed, addr) = start(kind, true).await;
    let gateway = TestGateway::start(addr, "").await;
    get_alice_and_bob(&gateway).await;
    row(kind, "gzip replies: GET /users?ids=1,2 -> 200, same JSON");
    near_the_limit(kind, &gateway, true).await;
    every_status_code(kind, &gateway, true).await;
}

async fn get_alice_and_bob(gateway: &TestGateway) {
    send(Method::GET, &gateway.url("/users?ids=1,2"), &[], "")
        .await
        .assert_json(200, users(&["Alice", "Bob"]));
}

#[tokio::test]
async fn interop_grpcio() {
    matrix(Kind::Grpcio).await;
}

#[tokio::test]
async fn interop_grpc_go() {
    matrix(Kind::GrpcGo).await;
}

#[tokio::test]
async fn interop_tonic() {
    matrix(Kind::Tonic).await;
}
