//! Connect's unary GET "for methods a rule allows" (issue 24, point 3): besides a method
//! marked `NO_SIDE_EFFECTS` (`tests/protocol_connect.rs`), a method whose HTTP binding is a
//! `get:` (in its proto, or a `[[rules]]` entry) is a read that Connect may call with GET, and
//! `[protocols.methods."…"] connect_get` allows it for any other method, or refuses it. Through
//! the real binary, with the `connectrpc` Python client's own GET (`use_get`) and by hand.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::http::{Reply as HttpReply, send};
use support::process::{ChildGuard, GatewayLog, manifest_dir, python_venv, run_to_exit, spawn_gateway};
use support::upstream::{RecordingUpstream, Reply};

const READS_PROTO: &str = r#"syntax = "proto3";
package reads.v1;
import "google/api/annotations.proto";
message ReadRequest { string key = 1; }
message ReadReply { string value = 1; }
service Reads {
  // A get: binding in the proto: a read.
  rpc Get(ReadRequest) returns (ReadReply) { option (google.api.http) = { get: "/v1/values/{key}" }; }
  // A get: rule in the config: a read.
  rpc Find(ReadRequest) returns (ReadReply);
  // A post: binding and no mark: POST only.
  rpc Put(ReadRequest) returns (ReadReply) { option (google.api.http) = { post: "/v1/values" body: "*" }; }
  // Neither, but the config's connect_get = true.
  rpc Peek(ReadRequest) returns (ReadReply);
  // NO_SIDE_EFFECTS, but the config's connect_get = false.
  rpc Count(ReadRequest) returns (ReadReply) { option idempotency_level = NO_SIDE_EFFECTS; }
}
"#;

/// The gateway binary on a `protos:` schema of `READS_PROTO`, with the rule and switches the
/// methods' comments name, in front of `upstream`.
fn start_gateway(dir: &Path, upstream: SocketAddr) -> (ChildGuard, SocketAddr, GatewayLog) {
    let protos = dir.join("protos");
    std::fs::create_dir_all(&protos).expect("dir");
    std::fs::write(protos.join("reads.proto"), READS_PROTO).expect("proto");
    let toml = format!(
        r#"
[upstream]
url = "http://{upstream}"
[schema]
source = "protos:{}"
check_upstream = false
[protocols.methods."reads.v1.Reads.Peek"]
connect_get = true
[protocols.methods."reads.v1.Reads.Count"]
connect_get = false
[[rules]]
selector = "reads.v1.Reads.Find"
get = "/v1/find"
"#,
        protos.display()
    );
    let config = dir.join("protogate.toml");
    std::fs::write(&config, toml).expect("config");
    let config = config.to_str().expect("UTF-8");
    spawn_gateway(&["--config", config, "--listen", "127.0.0.1:0"], &[])
}

/// A JSON Connect GET of `method` with `{"key": key}`.
async fn connect_get(addr: SocketAddr, method: &str, key: &str) -> HttpReply {
    let message = format!("%7B%22key%22%3A%22{key}%22%7D");
    let url = format!("http://{addr}/reads.v1.Reads/{method}?connect=v1&encoding=json&message={message}");
    send(Method::GET, &url, &[], Bytes::new()).await
}

#[tokio::test]
async fn connect_get_serves_get_bound_methods_and_the_config_switch() {
    // ReadReply{value:"v"} and ReadRequest{key} are one string field 1, as StringValue is.
    let upstream =
        RecordingUpstream::start(|_| Reply::message(&"v".to_string()).with_metadata("x-from", "upstream"))
            .await;
    let dir = support::TempDir::new("connect-get-reads");
    let upstream_addr = upstream.addr;
    let dir_path = dir.0.clone();
    let (_gateway, addr, log) = tokio::task::spawn_blocking(move || start_gateway(&dir_path, upstream_addr))
        .await
        .expect("gateway started");

    // A get: binding (proto or rule) or connect_get = true: the GET is served.
    for (method, key) in [("Get", "g"), ("Find", "f"), ("Peek", "p")] {
        let reply = connect_get(addr, method, key).await;
        assert_eq!(
            reply.status,
            200,
            "{method}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("content-type"), Some("application/json"), "{method}");
        assert_eq!(
            reply.header("x-from"),
            Some("upstream"),
            "{method}: leading metadata"
        );
        assert_eq!(reply.json(), json!({"value": "v"}), "{method}");
        let call = upstream.calls().pop().expect("call");
        assert_eq!(call.path, format!("/reads.v1.Reads/{method}"));
        assert_eq!(call.decode::<String>(), key);
    }
    // No mark and no get: binding, or connect_get = false over NO_SIDE_EFFECTS: 405 with
    // Allow: POST, Connect's error JSON, and nothing called.
    let calls = upstream.calls().len();
    for method in ["Put", "Count"] {
        let refused = connect_get(addr, method, "x").await;
        assert_eq!(refused.status, 405, "{method}");
        assert_eq!(refused.header("allow"), Some("POST"), "{method}");
        assert_eq!(
            refused.header("content-type"),
            Some("application/json"),
            "{method}"
        );
        assert_eq!(
            refused.json(),
            json!({"code": "unimplemented", "message": "method GET is not allowed here; allowed: POST"}),
            "{method}"
        );
    }
    assert_eq!(upstream.calls().len(), calls, "a refused GET calls nothing");
    // A POST still reaches every method, Count included.
    let url = format!("http://{addr}/reads.v1.Reads/Count");
    let headers = [
        ("content-type", "application/json"),
        ("connect-protocol-version", "1"),
    ];
    let posted = send(Method::POST, &url, &headers, "{\"key\":\"c\"}").await;
    assert_eq!(posted.status, 200);
    assert_eq!(posted.json(), json!({"value": "v"}));

    // The connectrpc client's own GET (use_get) for each method: the same answers.
    let calls = upstream.calls().len();
    let mut command = std::process::Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/connect_client.py"))
        .args(["reads", &format!("http://{addr}")])
        .arg(dir.join("protos"))
        .args(["Get", "Find", "Peek", "Put", "Count"]);
    let finished = tokio::task::spawn_blocking(move || run_to_exit(command, Duration::from_secs(60)))
        .await
        .expect("client ran");
    assert!(
        finished.status.success(),
        "connect client failed\nstdout:\n{}\nstderr:\n{}",
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    let report: Value = serde_json::from_str(finished.stdout.last().expect("report")).expect("JSON");
    let served = json!({"value": "v", "x-from": "upstream"});
    let refused =
        json!({"code": "UNIMPLEMENTED", "message": "method GET is not allowed here; allowed: POST"});
    assert_eq!(
        report,
        json!({"Get": served, "Find": served, "Peek": served, "Put": refused, "Count": refused})
    );
    let keys: Vec<String> = upstream
        .calls()
        .iter()
        .skip(calls)
        .map(|c| c.decode::<String>())
        .collect();
    assert_eq!(keys, ["key-Get", "key-Find", "key-Peek"]);
    // The client sent GETs, and the access log says so.
    for (method, status) in [("Find", 200), ("Put", 405)] {
        let route = format!("/reads.v1.Reads/{method}");
        let line = log.wait_for("request", Duration::from_secs(5), |r| {
            r["route"] == route.as_str() && r["method"] == "GET" && r["status"] == status
        });
        assert_eq!(line["protocol"], "connect", "{line}");
    }
}

#[test]
fn connect_get_for_a_method_the_schema_lacks_stops_startup() {
    let toml = "[protocols.methods.\"MyService.Nope\"]\nconnect_get = true\n";
    let dir = support::TempDir::new("connect-get-unknown");
    let config = dir.join("protogate.toml");
    std::fs::write(&config, toml).expect("config");
    let mut command = support::process::gateway_command();
    command.args([
        "--config",
        config.to_str().expect("UTF-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let finished = run_to_exit(command, Duration::from_secs(30));
    assert_eq!(finished.status.code(), Some(2), "{:?}", finished.stdout);
    let all = [finished.stdout.join("\n"), finished.stderr.join("\n")].join("\n");
    assert!(
        all.contains("protocols.methods.\"MyService.Nope\": the schema has no such method"),
        "{all}"
    );
}
