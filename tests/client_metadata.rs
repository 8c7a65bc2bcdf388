//! `transcoding.client_metadata`: which `Grpc-Metadata-*` request headers reach the upstream
//! as metadata. By default all of them (grpc-gateway's behaviour); `"none"` drops them; a
//! list forwards only the names it holds. The built-in allow-list (`authorization`,
//! `x-request-id`, …) and `forward_headers` are not affected, and forbidden names never go.

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::UserReply;
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

fn ok() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![],
    })
}

/// The metadata the upstream received for one request with client-set metadata, under
/// `setting` (TOML for `client_metadata`, or `None` for the default).
async fn forwarded(setting: Option<&str>) -> Vec<(&'static str, Option<String>)> {
    let upstream = RecordingUpstream::start(|_| ok()).await;
    let transcoding = match setting {
        Some(value) => format!("[transcoding]\nforward_headers = [\"x-team\"]\nclient_metadata = {value}"),
        None => "[transcoding]\nforward_headers = [\"x-team\"]".to_string(),
    };
    let gateway = TestGateway::start(upstream.addr, &transcoding).await;
    let headers = [
        ("grpc-metadata-tenant", "acme"),
        ("grpc-metadata-role", "admin"),
        ("grpc-metadata-host", "evil"),
        ("authorization", "Bearer t"),
        ("x-team", "blue"),
    ];
    let reply = send(Method::GET, &gateway.url("/users?ids=1"), &headers, Bytes::new()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let call = upstream.only_call();
    ["tenant", "role", "host", "authorization", "x-team"]
        .into_iter()
        .map(|key| (key, call.meta(key)))
        .collect()
}

fn expect(tenant: bool, role: bool) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("tenant", tenant.then(|| "acme".to_string())),
        ("role", role.then(|| "admin".to_string())),
        ("host", None),
        ("authorization", Some("Bearer t".to_string())),
        ("x-team", Some("blue".to_string())),
    ]
}

#[tokio::test]
async fn client_metadata_is_all_by_default() {
    assert_eq!(forwarded(None).await, expect(true, true));
    assert_eq!(forwarded(Some("\"all\"")).await, expect(true, true));
}

#[tokio::test]
async fn client_metadata_none_drops_every_grpc_metadata_header() {
    assert_eq!(forwarded(Some("\"none\"")).await, expect(false, false));
}

#[tokio::test]
async fn client_metadata_list_forwards_only_its_names() {
    // Names are matched after the prefix, case-insensitively; a forbidden name stays out.
    let list = "[\"Tenant\", \"grpc-metadata-host\"]";
    assert_eq!(forwarded(Some(list)).await, expect(true, false));
}
