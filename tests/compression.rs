//! gzip between the gateway and the upstream. Every call offers
//! `grpc-accept-encoding: identity,gzip`; gzip replies are inflated, from grpcio started
//! with `compression=grpc.Compression.Gzip` and from grpc-go with its gzip compressor (the
//! issue's "such a service cannot be fronted at all"). The reply limit
//! (`upstream.max_reply_bytes`) counts inflated bytes, so a gzip bomb is a 502 without the
//! memory. With `upstream.compress_requests`, larger request messages go gzip-compressed.

mod support;

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::json;
use support::gateway::TestGateway;
use support::go::spawn_go_users;
use support::http::{get, post_json};
use support::process::spawn_python_users_with;
use support::raw_upstream::{Act, RawUpstream, alice_reply, frame};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("write");
    encoder.finish().expect("finish")
}

fn alice_and_bob() -> serde_json::Value {
    json!({"message": "success", "data": [
        {"name": "Alice", "age": 30, "email": "alice@example.com"},
        {"name": "Bob", "age": 25, "email": "bob@example.com"},
    ]})
}

/// `{"userIDs":[1,1,…]}` with `n` ids: a reply of `n` times Alice (30 bytes each).
fn many_alices(n: usize) -> String {
    format!("{{\"userIDs\":[{}]}}", vec!["1"; n].join(","))
}

#[tokio::test]
async fn grpcio_with_gzip_replies_is_fronted() {
    let (_python, addr) = spawn_python_users_with(0, &[], &["--compression", "gzip"]);
    let gateway = TestGateway::start(addr, "").await;
    get(&gateway.url("/users?ids=1,2"))
        .await
        .assert_json(200, alice_and_bob());
}

#[tokio::test]
async fn grpc_go_with_its_gzip_compressor_is_fronted() {
    let (_go, addr) = spawn_go_users(&["-gzip"]);
    let gateway = TestGateway::start(addr, "").await;
    get(&gateway.url("/users?ids=1,2"))
        .await
        .assert_json(200, alice_and_bob());
}

/// 1000 Alices are 30 000 bytes inflated and a few hundred deflated: the limit counts the
/// former.
#[tokio::test]
async fn the_reply_limit_counts_inflated_bytes() {
    let (_python, addr) = spawn_python_users_with(0, &[], &["--compression", "gzip"]);
    let gateway = TestGateway::start(addr, "[upstream]\nmax_reply_bytes = 10000").await;
    let fits = post_json(&gateway.url("/MyService/User"), &many_alices(300)).await;
    assert_eq!(fits.status, 200, "{:?}", String::from_utf8_lossy(&fits.body));
    assert_eq!(fits.json()["data"].as_array().map(Vec::len), Some(300));
    let reply = post_json(&gateway.url("/MyService/User"), &many_alices(1000)).await;
    reply.assert_json(
        502,
        json!({"code": 13, "message": "upstream reply too large: more than 10000 bytes once inflated, the limit is 10000 (upstream.max_reply_bytes)", "details": []}),
    );
}

/// 256 MiB of zeros in about 256 KiB of gzip: refused at the default 4 MiB limit.
#[tokio::test]
async fn a_gzip_bomb_is_502() {
    let bomb = Bytes::from(gzip(&vec![0u8; 256 << 20]));
    assert!(bomb.len() < 512 * 1024, "{}", bomb.len());
    let upstream = RawUpstream::start(move |_| Act::Reply {
        head: vec![("grpc-encoding", "gzip")],
        data: vec![frame(true, &bomb)],
        trailers: Some(vec![("grpc-status", "0")]),
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    get(&gateway.url("/users?ids=1")).await.assert_json(
        502,
        json!({"code": 13, "message": "upstream reply too large: more than 4194304 bytes once inflated, the limit is 4194304 (upstream.max_reply_bytes)", "details": []}),
    );
}

/// What the upstream receives: gzip offered always; a request message gzip-compressed
/// only from `compress_requests` bytes on.
#[tokio::test]
async fn request_messages_are_gzipped_from_the_threshold_on() {
    let upstream = RawUpstream::start(|_| Act::Reply {
        head: vec![("grpc-encoding", "gzip")],
        data: vec![frame(true, &gzip(&alice_reply()))],
        trailers: Some(vec![("grpc-status", "0")]),
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "[upstream]\ncompress_requests = 100").await;
    for n in [10, 100] {
        let reply = post_json(&gateway.url("/MyService/User"), &many_alices(n)).await;
        assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    }
    let received = upstream.received();
    assert_eq!(received.len(), 2);
    for request in &received {
        assert_eq!(request.headers["grpc-accept-encoding"], "identity,gzip");
    }
    // 10 ids: a 12-byte message (packed), below the threshold.
    let small = &received[0];
    assert!(small.headers.get("grpc-encoding").is_none());
    assert_eq!(
        &small.body[..],
        &frame(false, &[0x0a, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])[..]
    );
    // 100 ids: 102 bytes, compressed.
    let large = &received[1];
    assert_eq!(large.headers["grpc-encoding"], "gzip");
    assert_eq!(large.body[0], 1, "compressed flag");
    let mut inflated = Vec::new();
    GzDecoder::new(&large.body[5..])
        .read_to_end(&mut inflated)
        .expect("gzip");
    let mut expected = vec![0x0a, 100];
    expected.extend_from_slice(&[1; 100]);
    assert_eq!(inflated, expected);
}

/// Real servers take gzip requests: grpcio, and grpc-go, which answers a gzip request in
/// gzip even without its compressor option.
#[tokio::test]
async fn real_servers_take_gzip_requests() {
    let (_python, python) = spawn_python_users_with(0, &[], &[]);
    let (_go, go) = spawn_go_users(&[]);
    for addr in [python, go] {
        let gateway = TestGateway::start(addr, "[upstream]\ncompress_requests = 1").await;
        let reply = post_json(&gateway.url("/MyService/User"), r#"{"userIDs":[1,2]}"#).await;
        reply.assert_json(200, alice_and_bob());
    }
}
