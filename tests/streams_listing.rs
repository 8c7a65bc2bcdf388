//! No method vanishes (issue 22, point 5): with grpc's RouteGuide fronted through
//! `--schema reflection` (grpcio, `tests/python/routeguide_server.py`), all four methods are
//! in the startup line, in `check-config` with their shapes, in `/openapi.json` with their
//! stream forms, on the `/docs` page's document, and a streaming call is in the access log
//! like a unary one.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use support::http::{get, send};
use support::process::{gateway_command, run_to_exit, spawn_gateway, spawn_routeguide};

const METHODS: [(&str, &str); 4] = [
    ("GetFeature", ""),
    ("ListFeatures", " [server streaming]"),
    ("RecordRoute", " [client streaming]"),
    ("RouteChat", " [bidirectional streaming]"),
];

#[test]
fn check_config_lists_every_method_with_its_shape() {
    let (_routeguide, upstream) = spawn_routeguide();
    let mut command = gateway_command();
    let upstream = format!("http://{upstream}");
    command.args(["check-config", "--upstream", &upstream, "--schema", "reflection"]);
    let finished = run_to_exit(command, Duration::from_secs(20));
    assert!(finished.status.success(), "{:?}", finished.stderr);
    assert_eq!(finished.stdout[0], "# schema reflection: 4 methods, 4 routes");
    for (method, shape) in METHODS {
        let line = format!(
            "POST /routeguide.RouteGuide/{method} -> routeguide.RouteGuide.{method}{shape} \
             (unbound method routeguide.RouteGuide.{method})"
        );
        assert!(
            finished.stdout.contains(&line),
            "no {line:?} in {:?}",
            finished.stdout
        );
    }
    assert!(
        !finished.stdout.iter().any(|l| l.contains("not served")),
        "{:?}",
        finished.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_is_announced_documented_and_logged() {
    let (_routeguide, upstream) = spawn_routeguide();
    let upstream = format!("http://{upstream}");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        "reflection",
    ];
    let (_gateway, addr, log) = spawn_gateway(&args, &[]);
    let loaded = log.wait_for("schema loaded", Duration::from_secs(5), |_| true);
    assert_eq!(loaded["methods"], 4, "{loaded}");
    assert_eq!(loaded["routes"], 4, "{loaded}");
    assert!(loaded.get("not_served").is_none(), "{loaded}");

    let document = get(&format!("http://{addr}/openapi.json")).await.json();
    let operation =
        |method: &str| document["paths"][format!("/routeguide.RouteGuide/{method}")]["post"].clone();
    for (method, _) in METHODS {
        assert!(operation(method).is_object(), "{method} missing from {document}");
    }
    let record = operation("RecordRoute");
    let body = &record["requestBody"]["content"];
    assert!(body["application/x-ndjson"].is_object(), "{record}");
    assert_eq!(
        body["application/json"]["schema"]["oneOf"][0]["type"], "array",
        "{record}"
    );
    assert!(
        record["responses"]["200"]["content"]["application/json"].is_object(),
        "{record}"
    );
    assert!(
        record["description"]
            .as_str()
            .is_some_and(|d| d.contains("Client streaming")),
        "{record}"
    );
    let chat = operation("RouteChat");
    assert!(
        chat["requestBody"]["content"]["application/x-ndjson"].is_object(),
        "{chat}"
    );
    let replies = &chat["responses"]["200"]["content"];
    assert!(
        replies["application/x-ndjson"].is_object() && replies["text/event-stream"].is_object(),
        "{chat}"
    );
    // The /docs page renders this same document.
    assert_eq!(get(&format!("http://{addr}/docs")).await.status, 200);

    // A streaming call is in the access log with its route, like any call.
    let reply = send(
        Method::POST,
        &format!("http://{addr}/routeguide.RouteGuide/RecordRoute"),
        &[
            ("content-type", "application/x-ndjson"),
            ("x-request-id", "stream-1"),
        ],
        Bytes::from("{\"latitude\":5,\"longitude\":2}\n{\"latitude\":3,\"longitude\":4}\n"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let line: Value = log.request("stream-1");
    assert_eq!(line["route"], "/routeguide.RouteGuide/RecordRoute", "{line}");
    assert_eq!(line["status"], 200, "{line}");
}
