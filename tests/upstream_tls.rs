//! TLS to the upstream: an `https://` upstream is reached with rustls, trusting the
//! configured CA, verifying the configured server name (or the URL's host), and presenting a
//! client certificate when the upstream demands one. Every certificate is made in the test
//! (`support/tls.rs`). A certificate the gateway cannot verify is a 503 `google.rpc.Status`
//! answer, and in every failed case the upstream never sees the call.

mod support;

use protogate::pb::protogate_unpackaged::{User, UserReply, UserReq};
use serde_json::json;
use support::gateway::TestGateway;
use support::http::get;
use support::tls::{PemDir, TestCa, server_config};
use support::upstream::{RecordingUpstream, Reply};

fn alice() -> Reply {
    Reply::message(&UserReply {
        message: "success".into(),
        data: vec![User {
            name: "Alice".into(),
            age: 30,
            email: "alice@example.com".into(),
        }],
    })
}

/// `[upstream.tls]` with the given keys, each a `(key, value)` pair.
fn tls_section(keys: &[(&str, &str)]) -> String {
    let mut text = String::from("[upstream.tls]\n");
    for (key, value) in keys {
        text.push_str(&format!("{key} = {value:?}\n"));
    }
    text
}

fn assert_ok(reply: &support::http::Reply) {
    assert_eq!(
        reply.status,
        200,
        "body: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
}

fn assert_unavailable(reply: &support::http::Reply) {
    assert_eq!(
        reply.status,
        503,
        "body: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["code"], 14, "{body}");
}

#[tokio::test]
async fn https_upstream_is_called_over_tls_trusting_the_configured_ca() {
    let ca = TestCa::new("protogate test ca");
    let upstream =
        RecordingUpstream::start_tls(server_config(&ca.server(&["users.internal"]), None), |_| alice()).await;
    let pem = PemDir::new();
    let extra = tls_section(&[
        ("ca_file", &pem.write("ca.pem", &ca.pem())),
        ("server_name", "users.internal"),
    ]);
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), &extra).await;

    let reply = get(&gateway.url("/users?ids=1")).await;
    reply.assert_json(
        200,
        json!({"message": "success", "data": [{"name": "Alice", "age": 30, "email": "alice@example.com"}]}),
    );
    let call = upstream.only_call();
    assert_eq!(call.path, "/MyService/User");
    assert_eq!(call.decode::<UserReq>().user_i_ds, vec![1]);
}

#[tokio::test]
async fn server_name_defaults_to_the_url_host() {
    // The certificate names the IP the URL uses, and no server_name is configured.
    let ca = TestCa::new("protogate test ca");
    let upstream =
        RecordingUpstream::start_tls(server_config(&ca.server(&["127.0.0.1"]), None), |_| alice()).await;
    let pem = PemDir::new();
    let extra = tls_section(&[("ca_file", &pem.write("ca.pem", &ca.pem()))]);
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), &extra).await;

    assert_ok(&get(&gateway.url("/users?ids=1")).await);
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test]
async fn certificate_from_an_untrusted_ca_is_refused_with_503() {
    let trusted = TestCa::new("trusted ca");
    let other = TestCa::new("some other ca");
    let upstream =
        RecordingUpstream::start_tls(server_config(&other.server(&["users.internal"]), None), |_| {
            alice()
        })
        .await;
    let pem = PemDir::new();
    let extra = tls_section(&[
        ("ca_file", &pem.write("ca.pem", &trusted.pem())),
        ("server_name", "users.internal"),
    ]);
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), &extra).await;

    assert_unavailable(&get(&gateway.url("/users?ids=1")).await);
    assert!(
        upstream.calls().is_empty(),
        "no call may reach an unverified upstream"
    );
}

#[tokio::test]
async fn certificate_for_another_name_is_refused_with_503() {
    let ca = TestCa::new("protogate test ca");
    let upstream =
        RecordingUpstream::start_tls(server_config(&ca.server(&["payments.internal"]), None), |_| {
            alice()
        })
        .await;
    let pem = PemDir::new();
    let extra = tls_section(&[
        ("ca_file", &pem.write("ca.pem", &ca.pem())),
        ("server_name", "users.internal"),
    ]);
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), &extra).await;

    assert_unavailable(&get(&gateway.url("/users?ids=1")).await);
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn mutual_tls_presents_the_configured_client_certificate() {
    let ca = TestCa::new("protogate test ca");
    let clients = TestCa::new("client ca");
    let tls = || server_config(&ca.server(&["users.internal"]), Some(&clients));
    let upstream = RecordingUpstream::start_tls(tls(), |_| alice()).await;
    let pem = PemDir::new();
    let ca_file = pem.write("ca.pem", &ca.pem());
    let client = clients.client("protogate");

    // Without a client certificate the upstream ends the handshake. Under TLS 1.3 the client
    // learns it only from the alert after its own Finished, so the call fails as a broken
    // exchange (502) rather than as a failed connect (503); either way it never arrives.
    let anonymous = tls_section(&[("ca_file", &ca_file), ("server_name", "users.internal")]);
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), &anonymous).await;
    let reply = get(&gateway.url("/users?ids=1")).await;
    assert!(
        reply.status == 503 || reply.status == 502,
        "a refused client certificate is an upstream failure, got {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    assert!(upstream.calls().is_empty());

    let with_identity = tls_section(&[
        ("ca_file", &ca_file),
        ("server_name", "users.internal"),
        ("cert_file", &pem.write("client.pem", &client.cert_pem)),
        ("key_file", &pem.write("client-key.pem", &client.key_pem)),
    ]);
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), &with_identity).await;
    assert_ok(&get(&gateway.url("/users?ids=1")).await);
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test]
async fn https_url_against_a_plaintext_upstream_is_503_not_a_downgrade() {
    let upstream = RecordingUpstream::start(|_| alice()).await;
    let gateway = TestGateway::start_for(&format!("https://{}", upstream.addr), "").await;
    assert_unavailable(&get(&gateway.url("/users?ids=1")).await);
    assert!(upstream.calls().is_empty());
}
