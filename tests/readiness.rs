//! `/readyz` against servers with and without `grpc.health.v1`. The default, `auto`, asks
//! grpc.health.v1 and takes a live gRPC UNIMPLEMENTED (the seed's server as the seed writes
//! it has no health service) as ready; `grpc.health.v1` insists on the health service. A
//! health service that says NOT_SERVING, or a server that is not gRPC, is never ready.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use serde_json::json;
use support::gateway::TestGateway;
use support::go::spawn_go_users;
use support::http::get;
use support::process::spawn_python_users_with;
use support::upstream::{RecordingUpstream, Reply};
use tonic_health::pb::HealthCheckResponse;
use tonic_health::pb::health_check_response::ServingStatus;

const STRICT: &str = "[upstream]\nreadiness = \"grpc.health.v1\"";

async fn readyz(upstream: SocketAddr, config: &str) -> support::http::Reply {
    let gateway = TestGateway::start(upstream, config).await;
    get(&gateway.url("/readyz")).await
}

/// A 200 whose body says SERVING (it also names the live schema, not asserted here).
fn assert_ready(reply: &support::http::Reply) {
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["status"], "SERVING");
}

fn not_ready(message: &str) -> serde_json::Value {
    json!({"code": 14, "message": format!("not ready: {message}"), "details": []})
}

#[tokio::test]
async fn seed_style_grpcio_server_is_ready_by_default_and_not_under_strict_health() {
    let (_python, addr) = spawn_python_users_with(0, &[], &["--seed-style"]);
    assert_ready(&readyz(addr, "").await);
    readyz(addr, STRICT)
        .await
        .assert_json(503, not_ready("Method not found!"));
}

#[tokio::test]
async fn grpc_go_server_without_health_is_ready_by_default_and_not_under_strict_health() {
    let (_go, addr) = spawn_go_users(&[]);
    assert_ready(&readyz(addr, "").await);
    readyz(addr, STRICT)
        .await
        .assert_json(503, not_ready("unknown service grpc.health.v1.Health"));
}

#[tokio::test]
async fn a_server_with_health_is_asked_and_believed() {
    let (_python, addr) = spawn_python_users_with(0, &[], &[]);
    assert_ready(&readyz(addr, "").await);
    assert_ready(&readyz(addr, STRICT).await);

    let not_serving = RecordingUpstream::start(|_| {
        Reply::message(&HealthCheckResponse {
            status: ServingStatus::NotServing as i32,
        })
    })
    .await;
    readyz(not_serving.addr, "").await.assert_json(
        503,
        json!({"code": 14, "message": "upstream health is NOT_SERVING", "details": []}),
    );
    assert_eq!(not_serving.only_call().path, "/grpc.health.v1.Health/Check");
}

/// An HTTP/2 server that answers 404 is not a gRPC server saying UNIMPLEMENTED.
#[tokio::test]
async fn an_http_404_is_not_a_live_grpc_answer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((_, mut respond))) = connection.accept().await {
                    let head = http::Response::builder().status(404).body(()).expect("head");
                    let _: Result<h2::SendStream<Bytes>, _> = respond.send_response(head, true);
                }
            });
        }
    });
    readyz(addr, "").await.assert_json(
        503,
        not_ready("upstream answered HTTP 404 Not Found without a gRPC status"),
    );
}
