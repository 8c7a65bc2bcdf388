//! Reply metadata, split as grpc-gateway splits it: the reply head's metadata goes out as
//! `Grpc-Metadata-*` headers; the trailers' metadata as `Grpc-Trailer-*` HTTP trailers
//! (announced in `Trailer`) when the client sent `TE: trailers`, over HTTP/1.1 (chunked) and
//! HTTP/2 alike, and otherwise as `Grpc-Metadata-*` headers, as before.

mod support;

use http::Method;
use serde_json::json;
use support::gateway::TestGateway;
use support::http::{Reply, send, send_h2};
use support::raw_upstream::{Act, RawUpstream, alice_reply, frame};

async fn upstream() -> RawUpstream {
    RawUpstream::start(|_| Act::Reply {
        head: vec![("x-head", "h")],
        data: vec![frame(false, &alice_reply())],
        trailers: Some(vec![("grpc-status", "0"), ("x-trail", "t")]),
    })
    .await
}

fn assert_alice(reply: &Reply) {
    reply.assert_json(
        200,
        json!({"message": "success", "data": [{"name": "Alice", "age": 30, "email": "alice@example.com"}]}),
    );
    assert_eq!(reply.header("grpc-metadata-x-head"), Some("h"));
}

#[tokio::test]
async fn trailer_metadata_is_an_http_trailer_when_the_client_asks() {
    let upstream = upstream().await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let url = gateway.url("/users?ids=1");
    for http2 in [false, true] {
        let te = [("te", "trailers")];
        let reply = match http2 {
            false => send(Method::GET, &url, &te, "").await,
            true => send_h2(Method::GET, &url, &te, "").await,
        };
        assert_alice(&reply);
        assert_eq!(
            reply.header("trailer"),
            Some("grpc-trailer-x-trail"),
            "http2: {http2}"
        );
        assert_eq!(reply.header("grpc-metadata-x-trail"), None, "not a header too");
        let trailers = reply.trailers.expect("trailers");
        assert_eq!(trailers["grpc-trailer-x-trail"], "t", "http2: {http2}");
        assert_eq!(trailers.len(), 1, "only metadata: no grpc-status: {trailers:?}");
    }
}

/// Behind the gateway's gzip (the tower-http compression layer), the trailers survive.
#[tokio::test]
async fn trailers_survive_response_compression() {
    let upstream = upstream().await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let headers = [("te", "trailers"), ("accept-encoding", "gzip")];
    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &headers, "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let trailers = reply.trailers.expect("trailers");
    assert_eq!(trailers["grpc-trailer-x-trail"], "t");
}

#[tokio::test]
async fn without_te_trailers_trailer_metadata_is_a_header() {
    let upstream = upstream().await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &[], "").await;
    assert_alice(&reply);
    assert_eq!(reply.header("grpc-metadata-x-trail"), Some("t"));
    assert_eq!(reply.header("trailer"), None);
    assert!(reply.trailers.is_none());
}
