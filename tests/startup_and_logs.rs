//! What the real binary tells an operator: the `schema loaded` line at startup (source,
//! upstream, services, numbers of methods and routes), the warning and the 503 from `/readyz`
//! when the upstream serves other services than the schema's (a gateway left on the demo
//! schema in front of grpc's RouteGuide), the "no schema yet" wording while a reflection
//! upstream is down, the `reason` of 4xx and 5xx access-log lines (the gateway's own message,
//! only the code for the upstream's), and text logs without ANSI codes off a terminal.

mod support;

use std::time::Duration;

use http::Method;
use serde_json::Value;
use support::http::{get, send};
use support::process::{
    ChildGuard, READY_TIMEOUT, free_port, gateway_command, shipped_config, spawn_gateway, spawn_gateway_for,
    spawn_python_users, spawn_routeguide,
};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn startup_line_says_source_upstream_services_and_counts() {
    let (_users, addr) = spawn_python_users(&[]);
    let upstream = format!("http://{addr}");
    let (_gateway, gateway, log) = spawn_gateway_for(&upstream);
    let line = log.wait_for("schema loaded", WAIT, |_| true);
    assert_eq!(line["source"], "compiled");
    assert_eq!(line["upstream"], format!("{upstream}/"));
    assert_eq!(line["trigger"], "startup");
    let services = line["services"].as_str().unwrap_or_default();
    assert!(services.split(", ").any(|s| s == "MyService"), "{line}");
    assert!(line["methods"].as_u64().is_some_and(|n| n >= 2), "{line}");
    assert!(line["routes"].as_u64().is_some_and(|n| n >= 4), "{line}");
    // The same upstream serves MyService: no mismatch warning, and ready.
    let ready = get(&format!("http://{gateway}/readyz")).await;
    assert_eq!(ready.status.as_u16(), 200, "{:?}", ready.body);
    assert!(
        log.records()
            .iter()
            .all(|r| r["message"] != "the upstream does not serve the schema"),
        "{:?}",
        log.lines()
    );
}

#[tokio::test]
async fn demo_schema_in_front_of_routeguide_is_named_as_a_mismatch_and_not_ready() {
    let (_routeguide, addr) = spawn_routeguide();
    let upstream = format!("http://{addr}");
    // The newcomer's mistake: no --schema, so the built-in demo schema.
    let (_gateway, gateway, log) = spawn_gateway(&["--listen", "127.0.0.1:0", "--upstream", &upstream], &[]);
    let warning = log.wait_for("the upstream does not serve the schema", WAIT, |_| true);
    let text = warning["warning"].as_str().unwrap_or_default();
    let expected_start = format!("the upstream at {upstream}/ serves routeguide.RouteGuide, not MyService");
    assert!(text.starts_with(&expected_start), "{warning}");
    assert!(text.ends_with(": did you mean --schema reflection?"), "{warning}");

    let ready = get(&format!("http://{gateway}/readyz")).await;
    assert_eq!(ready.status.as_u16(), 503, "{:?}", ready.body);
    assert_eq!(ready.header("content-type"), Some("application/json"));
    let body = ready.json();
    assert_eq!(body["code"], 14);
    assert_eq!(body["message"], format!("not ready: {text}"));

    // Said once, not at every check: an UNIMPLEMENTED answer checks again.
    let unknown = send(
        Method::POST,
        &format!("http://{gateway}/MyService/User"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(unknown.status.as_u16(), 501, "{:?}", unknown.body);
    log.wait_for("request", WAIT, |r| r["status"] == 501);
    let warnings = log
        .records()
        .iter()
        .filter(|r| r["message"] == "the upstream does not serve the schema")
        .count();
    assert_eq!(warnings, 1, "{:?}", log.lines());
}

#[tokio::test]
async fn reflection_source_with_the_upstream_down_says_no_schema_yet() {
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}");
    let config = shipped_config();
    let (_gateway, gateway, log) = spawn_gateway(
        &[
            "--config",
            config.to_str().expect("UTF-8"),
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--schema",
            "reflection",
        ],
        &[],
    );
    // The reload loop's try after a second, with its own wording and the address it asked.
    let line = log.wait_for(
        "no schema yet: answering 503 until the source gives one",
        WAIT,
        |r| r["trigger"] == "interval",
    );
    assert_eq!(line["upstream"], format!("{upstream}/"));
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("the upstream at {upstream}/"))),
        "{line}"
    );
    assert!(
        log.records()
            .iter()
            .all(|r| r["message"] != "schema refused; the last good one keeps serving"),
        "{:?}",
        log.lines()
    );
    let answer = get(&format!("http://{gateway}/users?ids=1")).await;
    assert_eq!(answer.status.as_u16(), 503);
    assert!(
        answer.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no schema yet: ")),
        "{:?}",
        answer.body
    );
}

#[tokio::test]
async fn error_lines_of_the_access_log_carry_the_reason() {
    let (_users, addr) = spawn_python_users(&[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let (_gateway, gateway, log) = spawn_gateway_for(&format!("http://{addr}"));

    // The gateway's own error: the message the client got.
    let bad = send(
        Method::GET,
        &format!("http://{gateway}/users?ids=abc"),
        &[("x-request-id", "bad-1")],
        "",
    )
    .await;
    assert_eq!(bad.status.as_u16(), 400);
    let message = bad.json()["message"].as_str().unwrap_or_default().to_string();
    let line = log.request("bad-1");
    assert_eq!(line["status"], 400);
    assert_eq!(line["reason"], message.as_str(), "{line}");

    // The upstream's error: only its code; its message ("injected failure") is not logged.
    let failed = send(
        Method::GET,
        &format!("http://{gateway}/users?ids=1"),
        &[("x-request-id", "up-1"), ("grpc-metadata-x-test-fail-code", "5")],
        "",
    )
    .await;
    assert_eq!(failed.status.as_u16(), 404, "{:?}", failed.body);
    assert_eq!(failed.json()["message"], "injected failure");
    let line = log.request("up-1");
    assert_eq!(line["reason"], "the upstream answered NOT_FOUND", "{line}");
    assert!(
        log.lines().iter().all(|l| !l.contains("injected failure")),
        "the upstream's message reached the log"
    );

    // No route: the reason, without the raw path.
    let lost = send(
        Method::GET,
        &format!("http://{gateway}/secret-token-path"),
        &[("x-request-id", "nr-1")],
        "",
    )
    .await;
    assert_eq!(lost.status.as_u16(), 404);
    let line = log.request("nr-1");
    assert_eq!(line["reason"], "no route for the path", "{line}");
    assert!(log.lines().iter().all(|l| !l.contains("secret-token-path")));

    // A success has no reason.
    let ok = send(
        Method::GET,
        &format!("http://{gateway}/users?ids=1"),
        &[("x-request-id", "ok-1")],
        "",
    )
    .await;
    assert_eq!(ok.status.as_u16(), 200);
    assert_eq!(log.request("ok-1").get("reason"), None::<&Value>);
}

#[test]
fn text_logs_have_no_ansi_codes_off_a_terminal() {
    let mut command = gateway_command();
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:1",
        "--log-format",
        "text",
    ]);
    let gateway = ChildGuard::spawn("protogate", command);
    let listening = gateway
        .stdout()
        .wait_for(READY_TIMEOUT, |l| l.contains("listening"));
    assert!(
        listening.is_some(),
        "no listening line: {:?}",
        gateway.stdout().snapshot()
    );
    let lines = gateway.stdout().snapshot();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INFO") && l.contains("schema loaded")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI codes in {lines:?}"
    );
}
