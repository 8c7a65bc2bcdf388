//! JSON messages in envelopes (issue 24): `application/grpc-web+json` and
//! `application/connect+json`, through the real binary in front of the real Python services.
//! Clients someone else wrote first: the `connectrpc` package's gRPC-Web client and its
//! Connect client with their JSON codec (`tests/python/grpc_web_client.py`,
//! `tests/python/connect_client.py`), unary and server streaming. Then by hand, for what no
//! client sends: a message that does not fit its type (every client encodes valid JSON),
//! HTTP/2 on purpose, a JSON client stream; the framing is written here as PROTOCOL-WEB.md
//! and Connect's protocol page specify it (sonora, the Python gRPC-Web client, has no JSON).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::Method;
use serde_json::{Value, json};
use support::http::{Reply, post_json, send, send_h2};
use support::process::{
    ChildGuard, GatewayLog, manifest_dir, python_venv, run_to_exit, spawn_gateway, spawn_python_users,
    spawn_routeguide,
};

/// The gateway binary with `toml` and `args`, on `127.0.0.1:0`.
fn gateway_for(toml: &str, args: &[&str]) -> (ChildGuard, SocketAddr, GatewayLog, support::TempDir) {
    let dir = support::TempDir::new("protocol-json-messages");
    let path = dir.join("protogate.toml");
    std::fs::write(&path, toml).expect("config");
    let path = path.to_str().expect("UTF-8").to_string();
    let mut all = vec!["--config", path.as_str(), "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, addr, log) = spawn_gateway(&all, &[]);
    (child, addr, log, dir)
}

/// The gateway in front of the users service with its test hooks.
fn users_gateway() -> (ChildGuard, ChildGuard, SocketAddr, GatewayLog, support::TempDir) {
    let (users, upstream) = spawn_python_users(&[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let toml = format!(
        "[upstream]\nurl = \"http://{upstream}\"\n[transcoding]\nclient_metadata = [\"x-test-echo\", \"x-test-fail-code\", \"x-test-fail-details\"]\n"
    );
    let (gateway, addr, log, dir) = gateway_for(&toml, &[]);
    (users, gateway, addr, log, dir)
}

/// The gateway in front of RouteGuide, its schema by reflection.
fn routeguide_gateway() -> (ChildGuard, ChildGuard, SocketAddr, GatewayLog, support::TempDir) {
    let (routeguide, upstream) = spawn_routeguide();
    let toml = format!("[upstream]\nurl = \"http://{upstream}\"\n");
    let (gateway, addr, log, dir) = gateway_for(&toml, &["--schema", "reflection"]);
    (routeguide, gateway, addr, log, dir)
}

/// Runs a Python client of `tests/python/` and returns its report.
fn python(script: &str, args: &[&str]) -> Value {
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python").join(script))
        .args(args);
    let finished = run_to_exit(command, Duration::from_secs(60));
    assert!(
        finished.status.success(),
        "{script} failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    serde_json::from_str(finished.stdout.last().expect("report")).expect("JSON")
}

fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(flags);
    buf.put_u32(u32::try_from(payload.len()).expect("small"));
    buf.put_slice(payload);
    buf.freeze()
}

/// A body's envelopes: flags and payload each; nothing may be left over.
fn envelopes(mut body: Bytes) -> Vec<(u8, Bytes)> {
    let mut all = Vec::new();
    while body.len() >= 5 {
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        all.push((flags, body.split_to(len)));
    }
    assert!(body.is_empty(), "bytes after the envelopes");
    all
}

fn as_json(payload: &Bytes) -> Value {
    serde_json::from_slice(payload).unwrap_or_else(|e| panic!("not JSON ({e}): {payload:?}"))
}

#[test]
fn grpc_web_json_client_calls_the_users_service() {
    let (_users, _gateway, addr, log, _dir) = users_gateway();
    let report = python(
        "grpc_web_client.py",
        &["users", &format!("http://{addr}"), "json"],
    );
    assert_eq!(report["users"], json!(["Alice", "Bob"]), "{report}");
    assert_eq!(report["echo"], "hello", "{report}");
    assert_eq!(report["echo_trailer"], "hello", "{report}");
    assert_eq!(report["failure"]["code"], "NOT_FOUND", "{report}");
    assert_eq!(report["failure"]["message"], "injected failure");
    assert_eq!(report["failure"]["details"], json!(["google.rpc.ErrorInfo"]));
    let line = log.wait_for("request", Duration::from_secs(5), |r| {
        r["route"] == "/MyService/User"
    });
    assert_eq!(line["protocol"], "grpc-web", "{line}");
}

#[test]
fn grpc_web_json_and_connect_json_clients_stream_routeguide_features() {
    let (_routeguide, _gateway, addr, _log, _dir) = routeguide_gateway();
    let url = format!("http://{addr}");
    let web = python("grpc_web_client.py", &["routeguide", &url, "json"]);
    assert_eq!(
        web["unary"],
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"
    );
    assert_eq!(web["server_stream"].as_array().expect("list").len(), 4, "{web}");
    let connect = python("connect_client.py", &["stream", &url, "json"]);
    let listed = connect["server_stream"].as_array().expect("list");
    assert_eq!(listed.len(), 4, "{connect}");
    assert_eq!(listed, web["server_stream"].as_array().expect("list"));
}

/// The +json reply message is the REST answer's JSON, and the status is the last frame, over
/// HTTP/1.1 (and as base64 with `-text+json`); a message that does not fit `UserReq` is INVALID_ARGUMENT naming the field,
/// over HTTP/2. The refusal comes before any reply, so it is gRPC-Web's trailers-only form:
/// the status in the head, HTTP 200, an empty body (PROTOCOL-WEB.md allows trailers in the
/// head when there is no message), as for the gateway's other refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_json_by_hand_transcodes_both_ways_and_refuses_bad_json() {
    let (_users, _gateway, addr, _log, _dir) = users_gateway();
    let url = format!("http://{addr}/MyService/User");
    let headers = [("content-type", "application/grpc-web+json"), ("x-grpc-web", "1")];
    let body = envelope(0, br#"{"userIDs":[1,2]}"#);
    let answer = send(Method::POST, &url, &headers, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/grpc-web+json"));
    assert!(answer.trailers.is_none(), "no HTTP trailers for gRPC-Web");
    let frames = envelopes(answer.body.clone());
    assert_eq!(frames.len(), 2, "{answer:?}");
    assert_eq!(frames[0].0, 0);
    // The same call on the REST unbound route: the same JSON.
    let rest = post_json(&format!("http://{addr}/MyService/User"), r#"{"userIDs":[1,2]}"#).await;
    assert_eq!(rest.status, 200);
    assert_eq!(as_json(&frames[0].1), rest.json(), "the REST answer's JSON");
    assert_eq!(frames[1].0, 0x80);
    assert!(
        String::from_utf8_lossy(&frames[1].1).contains("grpc-status: 0\r\n"),
        "{frames:?}"
    );

    // -text+json: the same, base64 both ways (each relayed piece its own padded chunk).
    let text = base64::engine::general_purpose::STANDARD.encode(envelope(0, br#"{"userIDs":[1,2]}"#));
    let headers_text = [("content-type", "application/grpc-web-text+json")];
    let answer = send(Method::POST, &url, &headers_text, text).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/grpc-web-text+json")
    );
    let frames = envelopes(decode_padded_chunks(&answer.body));
    assert_eq!(as_json(&frames[0].1), rest.json(), "{frames:?}");
    assert!(String::from_utf8_lossy(&frames[1].1).contains("grpc-status: 0\r\n"));

    let bad = envelope(0, br#"{"userIDs":["one"]}"#);
    let refused = send_h2(Method::POST, &url, &headers, bad).await;
    assert_refused_naming(&refused, "userIDs");
    let unknown = envelope(0, br#"{"userIDs":[1],"nickname":"x"}"#);
    let refused = send_h2(Method::POST, &url, &headers, unknown).await;
    assert_refused_naming(&refused, "nickname");
}

/// A `-text` body: padded base64 chunks one after another.
fn decode_padded_chunks(body: &[u8]) -> Bytes {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut decoded = BytesMut::new();
    let mut rest = std::str::from_utf8(body).expect("base64 text");
    while !rest.is_empty() {
        let end = rest.find('=').map_or(rest.len(), |i| {
            i + rest[i..].bytes().take_while(|b| *b == b'=').count()
        });
        decoded.extend_from_slice(&engine.decode(&rest[..end]).expect("base64"));
        rest = &rest[end..];
    }
    decoded.freeze()
}

fn assert_refused_naming(answer: &Reply, field: &str) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/grpc-web+json"));
    assert_eq!(answer.header("grpc-status"), Some("3"), "{answer:?}");
    let message = answer.header("grpc-message").expect("grpc-message");
    assert!(message.contains(field), "{message}");
    assert!(answer.body.is_empty(), "{answer:?}");
}

/// gRPC-Web +json server streaming over HTTP/2, by hand: every feature a JSON message as it
/// came, then the trailer frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_json_server_stream_over_http2() {
    let (_routeguide, _gateway, addr, _log, _dir) = routeguide_gateway();
    let url = format!("http://{addr}/routeguide.RouteGuide/ListFeatures");
    let rect = json!({"lo":{"latitude":400000000,"longitude":-750000000},"hi":{"latitude":420000000,"longitude":-730000000}});
    let body = envelope(0, rect.to_string().as_bytes());
    let answer = send_h2(
        Method::POST,
        &url,
        &[("content-type", "application/grpc-web+json")],
        body,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/grpc-web+json"));
    let frames = envelopes(answer.body.clone());
    assert_eq!(frames.len(), 5, "four features and the trailers: {frames:?}");
    let first = as_json(&frames[0].1);
    assert_eq!(
        first,
        json!({"name":"Berkshire Valley Management Area Trail, Jefferson, NJ, USA","location":{"latitude":409146138,"longitude":-746188906}})
    );
    assert!(frames[..4].iter().all(|(flags, _)| *flags == 0));
    assert_eq!(frames[4].0, 0x80);
    assert!(String::from_utf8_lossy(&frames[4].1).contains("grpc-status: 0\r\n"));
}

/// Connect +json by hand: a client stream of JSON points (HTTP/2) answered by one JSON
/// summary and the end-of-stream envelope; a point that does not fit `Point` ends the call
/// with `invalid_argument` naming the message and the field, in the end-of-stream envelope
/// of an HTTP 200 answer, and the upstream never takes the half-stream for a whole one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_json_client_stream_and_a_bad_message_by_hand() {
    let (routeguide, _gateway, addr, log, _dir) = routeguide_gateway();
    let url = format!("http://{addr}/routeguide.RouteGuide/RecordRoute");
    let headers = [("content-type", "application/connect+json")];
    let points = [
        json!({"latitude":409146138,"longitude":-746188906}),
        json!({"latitude":413628156,"longitude":-749015468}),
        json!({}),
    ];
    let body: Vec<u8> = points
        .iter()
        .flat_map(|p| envelope(0, p.to_string().as_bytes()))
        .collect();
    let answer = send_h2(Method::POST, &url, &headers, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/connect+json"));
    let frames = envelopes(answer.body.clone());
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].0, 0);
    let summary = as_json(&frames[0].1);
    assert_eq!(summary["pointCount"], 3, "{summary}");
    assert_eq!(summary["featureCount"], 2, "{summary}");
    assert_eq!(frames[1].0, 0x02);
    assert!(as_json(&frames[1].1).get("error").is_none(), "{frames:?}");

    let body: Vec<u8> = [
        envelope(0, br#"{"latitude":409146138,"longitude":-746188906}"#),
        envelope(0, br#"{"latitude":"north"}"#),
    ]
    .concat();
    let answer = send_h2(Method::POST, &url, &headers, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/connect+json"));
    let frames = envelopes(answer.body.clone());
    assert_eq!(frames.len(), 1, "only the end of the stream: {frames:?}");
    assert_eq!(frames[0].0, 0x02);
    let end = as_json(&frames[0].1);
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
    let message = end["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("message 2: "), "{message}");
    assert!(message.contains("latitude"), "{message}");
    log.wait_for("request", Duration::from_secs(5), |r| {
        r["route"] == "/routeguide.RouteGuide/RecordRoute" && r["grpc_code"] == 3
    });
    // The upstream saw its call cancelled, not a complete stream of one point.
    let said = routeguide.stdout().wait_for(Duration::from_secs(10), |line| {
        line.starts_with("RecordRoute cancelled after ")
    });
    assert!(said.is_some(), "{}", routeguide.stdout().text());
}
