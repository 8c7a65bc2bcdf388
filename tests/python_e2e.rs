//! End to end: the real `protogate` binary in front of the real Python users service
//! (`services/users`, venv from `scripts/setup-python`), driven over HTTP. This file owns
//! what only real processes show: the shipped config, the JSON access log, grpcio's own
//! behaviour (test hooks for delays, failures and metadata), an upstream that starts after
//! the gateway, and SIGTERM draining. Transcoding details are covered case by case against
//! the recording upstream in `transcoding.rs` and `errors.rs`, not here.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::eventually;
use support::http::{Reply, get, post_json, send};
use support::process::{free_port, spawn_gateway_for, spawn_python_users, spawn_python_users_on};

/// Hooks on: `x-test-delay-ms`, `x-test-fail-code`, and `x-served-by` in every reply.
const HOOKS: &[(&str, &str)] = &[("USERS_SERVICE_TEST_HOOKS", "1")];

fn alice() -> Value {
    json!({"name": "Alice", "age": 30, "email": "alice@example.com"})
}
fn bob() -> Value {
    json!({"name": "Bob", "age": 25, "email": "bob@example.com"})
}
fn carol() -> Value {
    json!({"name": "Carol", "age": 41, "email": "carol@example.com"})
}
fn users(data: &[Value]) -> Value {
    json!({"message": "success", "data": data})
}

/// One HTTP request to the gateway.
struct Request {
    method: Method,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

impl Request {
    fn get(path: &'static str) -> Request {
        Request {
            method: Method::GET,
            path,
            headers: &[],
            body: "",
        }
    }

    fn post(path: &'static str, content_type: &'static str, body: &'static str) -> Request {
        let headers: &'static [(&str, &str)] = match content_type {
            "" => &[],
            "application/json" => &[("content-type", "application/json")],
            "text/plain" => &[("content-type", "text/plain")],
            other => panic!("add a header table entry for {other}"),
        };
        Request {
            method: Method::POST,
            path,
            headers,
            body,
        }
    }

    async fn send(&self, gateway: SocketAddr) -> Reply {
        let url = format!("http://{gateway}{}", self.path);
        send(
            self.method.clone(),
            &url,
            self.headers,
            Bytes::from_static(self.body.as_bytes()),
        )
        .await
    }
}

/// Asserts the common frame of every gateway error: status, JSON content type, the gRPC
/// code, and that there is a request id. Returns the body for further checks.
fn assert_status_error(reply: &Reply, http: u16, code: i32) -> Value {
    let body = reply.json();
    assert_eq!(reply.status.as_u16(), http, "status; body: {body}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(body["code"], code, "gRPC code; body: {body}");
    assert!(body["message"].is_string(), "message; body: {body}");
    assert!(body["details"].is_array(), "details; body: {body}");
    body
}

#[tokio::test]
async fn shipped_config_serves_every_success_form() {
    let (_python, upstream) = spawn_python_users(&[]);
    let (_gateway, addr, _log) = spawn_gateway_for(&format!("http://{upstream}"));

    let cases = [
        (Request::get("/users?ids=1,2"), users(&[alice(), bob()])),
        (Request::get("/users?ids=1&ids=2"), users(&[alice(), bob()])),
        (
            Request::get("/users?userIDs=1&userIDs=2"),
            users(&[alice(), bob()]),
        ),
        // Unknown ids are skipped by the service, not an error.
        (Request::get("/users?ids=3,99,1"), users(&[carol(), alice()])),
        (Request::get("/health"), json!({})),
        (
            Request::post("/MyService/User", "application/json", r#"{"userIDs":[2,3]}"#),
            users(&[bob(), carol()]),
        ),
        // An empty body on a body:"*" route counts as `{}` and needs no content type.
        (Request::post("/MyService/Health", "", ""), json!({})),
    ];
    for (request, expected) in cases {
        let reply = request.send(addr).await;
        assert_eq!(
            reply.status.as_u16(),
            200,
            "{} {}: {:?}",
            request.method,
            request.path,
            reply.body
        );
        reply.assert_json(200, expected);
        assert!(
            reply.header("x-request-id").is_some_and(|id| !id.is_empty()),
            "{}",
            request.path
        );
    }
}

#[tokio::test]
async fn errors_are_google_rpc_status_json() {
    let (_python, upstream) = spawn_python_users(&[]);
    let (_gateway, addr, _log) = spawn_gateway_for(&format!("http://{upstream}"));
    let bad_request = "type.googleapis.com/google.rpc.BadRequest";

    // Binding errors: 400 INVALID_ARGUMENT naming the offending parameter.
    for (path, field, needle) in [
        ("/users?ids=abc", "ids", "not an int32"),
        ("/users?ids=2147483648", "ids", "out of range for int32"),
        ("/users?color=red", "color", "color"),
    ] {
        let reply = Request::get(path).send(addr).await;
        let body = assert_status_error(&reply, 400, 3);
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
        assert_eq!(body["details"][0]["@type"], bad_request, "{path}: {body}");
        assert_eq!(
            body["details"][0]["fieldViolations"][0]["field"], field,
            "{path}: {body}"
        );
    }

    // Body errors on the unbound POST route.
    let reply = post_json(
        &format!("http://{addr}/MyService/User"),
        r#"{"userIDs":[1],"bogus":1}"#,
    )
    .await;
    let body = assert_status_error(&reply, 400, 3);
    assert!(body["message"].as_str().unwrap().contains("bogus"), "{body}");
    let reply = post_json(&format!("http://{addr}/MyService/User"), r#"{"userIDs":"#).await;
    let body = assert_status_error(&reply, 400, 3);
    assert!(
        body["message"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );
    let reply = Request::post("/MyService/User", "text/plain", r#"{"userIDs":[1]}"#)
        .send(addr)
        .await;
    assert_status_error(&reply, 415, 3);

    // Routing errors.
    let reply = Request::get("/nope").send(addr).await;
    reply.assert_json(
        404,
        json!({"code": 5, "message": "no route for /nope", "details": []}),
    );
    let reply = send(Method::DELETE, &format!("http://{addr}/users"), &[], Bytes::new()).await;
    assert_status_error(&reply, 405, 12);
    assert_eq!(reply.header("allow"), Some("GET"));
    assert!(
        reply.header("x-request-id").is_some(),
        "errors carry a request id too"
    );
}

#[tokio::test]
async fn healthz_and_readyz_report_serving() {
    let (_python, upstream) = spawn_python_users(&[]);
    let (_gateway, addr, _log) = spawn_gateway_for(&format!("http://{upstream}"));
    get(&format!("http://{addr}/healthz"))
        .await
        .assert_json(200, json!({"status": "SERVING"}));
    assert_ready(addr).await;
}

#[tokio::test]
async fn request_id_is_echoed_or_generated_and_logged_without_secrets() {
    let (_python, upstream) = spawn_python_users(&[]);
    let (_gateway, addr, log) = spawn_gateway_for(&format!("http://{upstream}"));
    let url = format!("http://{addr}/users?ids=1");

    // A client's id is echoed and used in the access log; the bearer token is not logged.
    let headers = [
        ("x-request-id", "e2e-log-7f3a"),
        ("authorization", "Bearer s3cret"),
    ];
    let reply = send(Method::GET, &url, &headers, Bytes::new()).await;
    reply.assert_json(200, users(&[alice()]));
    assert_eq!(reply.header("x-request-id"), Some("e2e-log-7f3a"));
    let record = log.request("e2e-log-7f3a");
    assert_eq!(record["level"], "INFO", "{record}");
    assert_eq!(record["method"], "GET", "{record}");
    assert_eq!(record["route"], "/users", "{record}");
    assert_eq!(record["status"], 200, "{record}");
    assert_eq!(record["grpc_code"], 0, "{record}");
    assert!(
        record["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{record}"
    );

    // Errors are logged with their route label and gRPC code, still without the secret.
    let headers = [
        ("x-request-id", "e2e-log-404"),
        ("authorization", "Bearer s3cret"),
    ];
    let reply = send(
        Method::GET,
        &format!("http://{addr}/nope"),
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 404);
    let record = log.request("e2e-log-404");
    assert_eq!(
        (record["status"].clone(), record["grpc_code"].clone()),
        (json!(404), json!(5)),
        "{record}"
    );
    let leaks: Vec<String> = log.lines().into_iter().filter(|l| l.contains("s3cret")).collect();
    assert!(
        leaks.is_empty(),
        "the authorization value reached the log: {leaks:?}"
    );

    // Without one, the gateway makes one up (a UUID), returns it and logs it.
    let reply = get(&url).await;
    assert_eq!(reply.status.as_u16(), 200);
    let generated = reply.header("x-request-id").expect("generated x-request-id");
    assert_eq!(generated.len(), 36, "UUID-shaped: {generated}");
    log.request(generated);
}

#[tokio::test]
async fn test_hooks_delay_failure_and_metadata_come_through() {
    let (_python, upstream) = spawn_python_users(HOOKS);
    let (_gateway, addr, _log) = spawn_gateway_for(&format!("http://{upstream}"));
    let url = format!("http://{addr}/users?ids=1");

    // Upstream metadata comes back with the Grpc-Metadata- prefix.
    let reply = get(&url).await;
    reply.assert_json(200, users(&[alice()]));
    let served_by = reply.header("grpc-metadata-x-served-by");
    assert!(
        served_by.is_some_and(|h| !h.is_empty()),
        "headers: {:?}",
        reply.headers
    );

    // The client's deadline is enforced by the gateway itself, long before the 2 s delay.
    let started = Instant::now();
    let slow = [
        ("grpc-metadata-x-test-delay-ms", "2000"),
        ("grpc-timeout", "300m"),
    ];
    let reply = send(Method::GET, &url, &slow, Bytes::new()).await;
    let elapsed = started.elapsed();
    assert_status_error(&reply, 504, 4);
    assert!(elapsed < Duration::from_millis(1500), "504 took {elapsed:?}");

    // The upstream's own status maps through grpc-gateway's table, message intact.
    for (code, http) in [("7", 403), ("5", 404), ("14", 503), ("16", 401), ("8", 429)] {
        let headers = [("grpc-metadata-x-test-fail-code", code)];
        let reply = send(Method::GET, &url, &headers, Bytes::new()).await;
        let code: i32 = code.parse().unwrap();
        reply.assert_json(
            http,
            json!({"code": code, "message": "injected failure", "details": []}),
        );
        // grpcio sent its initial metadata before failing: an error keeps it too.
        assert_eq!(
            reply.header("grpc-metadata-x-served-by"),
            served_by,
            "code {code}"
        );
    }
}

#[tokio::test]
async fn gateway_starts_before_the_upstream_and_connects_once_it_is_up() {
    let port = free_port();
    let (_gateway, addr, _log) = spawn_gateway_for(&format!("http://127.0.0.1:{port}"));

    // Down: alive, not ready, and calls fail fast with UNAVAILABLE.
    get(&format!("http://{addr}/healthz"))
        .await
        .assert_json(200, json!({"status": "SERVING"}));
    let reply = get(&format!("http://{addr}/readyz")).await;
    assert_status_error(&reply, 503, 14);
    let started = Instant::now();
    let reply = get(&format!("http://{addr}/users?ids=1")).await;
    assert_status_error(&reply, 503, 14);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "503 took {:?}",
        started.elapsed()
    );

    // Up, on the port the gateway was given: the same gateway reaches it without a restart.
    let (_python, upstream) = spawn_python_users_on(port, &[]);
    assert_eq!(upstream.port(), port);
    let reply = eventually(
        "the gateway to reach the restarted service",
        Duration::from_secs(10),
        || async {
            let reply = get(&format!("http://{addr}/users?ids=1")).await;
            (reply.status.as_u16() == 200).then_some(reply)
        },
    )
    .await;
    reply.assert_json(200, users(&[alice()]));
    assert_ready(addr).await;
}

/// Sends one HTTP/1.1 request on its own connection from a plain thread and returns the raw
/// response. Raw, so that the test knows the request bytes were written before it signals.
fn raw_request(addr: SocketAddr, head: String) -> std::thread::JoinHandle<String> {
    let mut stream = TcpStream::connect(addr).expect("connect to the gateway");
    stream.write_all(head.as_bytes()).expect("write request");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    std::thread::spawn(move || {
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        response
    })
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_request_then_exits_zero() {
    let (_python, upstream) = spawn_python_users(HOOKS);
    let (mut gateway, addr, log) = spawn_gateway_for(&format!("http://{upstream}"));

    let head = format!(
        "GET /users?ids=1 HTTP/1.1\r\nHost: {addr}\r\nx-request-id: e2e-drain\r\n\
         Grpc-Metadata-X-Test-Delay-Ms: 1500\r\nConnection: close\r\n\r\n"
    );
    let reader = raw_request(addr, head);
    // "In flight": the connection is open and the request written; give the gateway 300 ms
    // (of the 1500 ms upstream delay) to read it and call the upstream. Nothing observable
    // marks the moment the call starts, so this is the one deliberate wait; the
    // `open_connections` check below catches a request that had not even been accepted.
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    gateway.terminate();

    let draining = log.wait_for("shutting down: draining", Duration::from_secs(5), |_| true);
    assert!(
        draining["open_connections"].as_u64().is_some_and(|n| n >= 1),
        "{draining}"
    );
    let response = reader.join().expect("reader thread");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "in-flight request was cut off: {response}"
    );
    let body: Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(body, users(&[alice()]));

    let status = gateway.finish(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        log.lines().join("\n")
    );
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM to exit took {took:?} (drain timeout is 20 s)"
    );
    assert_eq!(log.request("e2e-drain")["status"], 200);
    log.wait_for("drained", Duration::from_secs(1), |_| true);
}

/// `/readyz` is 200 `SERVING` and names the schema in use: the compiled one, with a hash.
async fn assert_ready(addr: SocketAddr) {
    let reply = get(&format!("http://{addr}/readyz")).await;
    let body = reply.json();
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(body["status"], "SERVING", "{body}");
    assert_eq!(body["schema"]["source"], "compiled", "{body}");
    assert_eq!(body["schema"]["hash"].as_str().map(str::len), Some(12), "{body}");
}
