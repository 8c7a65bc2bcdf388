//! The proto3 JSON mapping, end to end over the test protos (`--features test-protos`): a
//! table of HTTP JSON in → the message the upstream received → JSON out, for every scalar
//! type, composite types and the well-known types. The upstream echoes what it received.
//! Where pbjson deviates from the spec, the expected output pins today's behaviour and the
//! README lists the deviation.

mod support;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

async fn echo_gateway() -> (RecordingUpstream, TestGateway) {
    let upstream = RecordingUpstream::start(|call| Reply {
        result: Ok(call.message.clone()),
        ..Reply::message(&())
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    (upstream, gateway)
}

async fn post(gateway: &TestGateway, path: &str, body: &Value) -> (u16, Value) {
    let reply = send(
        Method::POST,
        &gateway.url(path),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    let json = reply.json();
    (reply.status.as_u16(), json)
}

#[tokio::test]
async fn print_rich() {
    let (_u, gateway) = echo_gateway().await;
    let input = json!({"inner":{"label":"a","children":[{"label":"b"}]},"counts":{"x":1},"byId":{"7":{"label":"seven"}},"text":"hi","at":"2024-01-02T03:04:05.123Z","took":"1.5s","wrappedInt":5,"wrappedString":"s","wrappedBool":false,"attributes":{"k":[1,"two",null]},"anything":{"a":true},"mask":"a.b,c","nothing":{},"list":[1,"x"]});
    println!("RICH {:?}", post(&gateway, "/v1/rich", &input).await);
    println!("RICHEMPTY {:?}", post(&gateway, "/v1/rich", &json!({})).await);
    println!("SCALARSEMPTY {:?}", post(&gateway, "/v1/echo", &json!({})).await);
    let _ = Bytes::new();
}
