//! The `/docs` page in a real browser, as a person would use it: headless Chromium, driven by
//! Selenium (`tests/browser/docs_try_it.py`), opens the page of a gateway whose schema came
//! from the real Python service's server reflection, finds the reflected method, fills in its
//! "try it" form, sends it, and reads the JSON answer on the page. Needs scripts/setup-browser
//! (chromium-driver and Selenium in .venv-browser), which scripts/setup runs.
//!
//! The page and the document list routes in the user's order: the routes of rules and
//! annotations first, grouped by service, then the unbound `POST /Service/Method` ones.

mod support;

use std::process::Command;

use serde_json::Value;
use support::http::get;
use support::process::{manifest_dir, shipped_config, spawn_gateway_with_schema, spawn_python_users};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_sends_a_reflected_method_and_shows_the_answer() {
    let python = manifest_dir().join(".venv-browser/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup-browser (scripts/setup does)",
        python.display()
    );
    let (_users, upstream) = spawn_python_users(&[]);
    let config = shipped_config();
    let (_gateway, addr, _log) = spawn_gateway_with_schema(
        config.to_str().expect("UTF-8"),
        &format!("http://{upstream}"),
        "reflection",
    );
    // The operation the page shows for the reflected method's unbound route.
    let openapi = get(&format!("http://{addr}/openapi.json")).await.json();
    let operation = openapi["paths"]["/MyService/User"]["post"]["operationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no POST /MyService/User in {openapi}"))
        .to_string();

    let script = manifest_dir().join("tests/browser/docs_try_it.py");
    let url = format!("http://{addr}/docs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([url.as_str(), operation.as_str(), r#"{"userIDs": [1, 2]}"#])
            .output()
            .expect("run the browser script")
    })
    .await
    .expect("browser task");
    assert!(
        output.status.success(),
        "the browser script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert!(
        page["operations"].as_array().is_some_and(|ops| ops.len() >= 3),
        "the page lists the routes: {page}"
    );
    // The rules' routes (GET /users, GET /health) come before the unbound ones.
    let listed: Vec<&str> = page["operations"]
        .as_array()
        .map(|ops| ops.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let position = |id: &str| {
        listed
            .iter()
            .position(|l| *l == id)
            .unwrap_or_else(|| panic!("no {id} in {listed:?}"))
    };
    let rules = [
        position("op-MyService.User_GET_users"),
        position("op-MyService.Health_GET_health"),
    ];
    let unbound = [
        position("op-MyService.User_POST_MyService_User"),
        position("op-MyService.Health_POST_MyService_Health"),
    ];
    assert!(
        rules.iter().max() < unbound.iter().min(),
        "the page lists unbound routes before the rules' routes: {listed:?}"
    );
    let status = page["status"].as_str().unwrap_or_default();
    assert!(status.starts_with("200 OK"), "{page}");
    let result = page["result"].as_str().unwrap_or_default();
    // The page shows the request line, then the pretty-printed JSON answer.
    let (request_line, answer) = result.split_once("\n\n").unwrap_or_else(|| panic!("{page}"));
    assert_eq!(request_line, "POST /MyService/User");
    let answer: Value = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(answer["message"], "success");
    let names: Vec<&str> = answer["data"]
        .as_array()
        .map(|users| users.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Alice", "Bob"], "{answer}");
}

/// `/openapi.json` lists its paths in the order `/docs` shows them: the rules' routes,
/// grouped by service, then the unbound ones. (No browser needed.)
#[tokio::test]
async fn openapi_lists_rule_routes_before_unbound_routes() {
    let (_users, upstream) = spawn_python_users(&[]);
    let config = shipped_config();
    let (_gateway, addr, _log) = spawn_gateway_with_schema(
        config.to_str().expect("UTF-8"),
        &format!("http://{upstream}"),
        "reflection",
    );
    let reply = get(&format!("http://{addr}/openapi.json")).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let openapi = reply.json();
    let paths: Vec<&String> = openapi["paths"]
        .as_object()
        .map(|paths| paths.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        paths,
        ["/users", "/health", "/MyService/Health", "/MyService/User"],
        "paths in the reader's order"
    );
}
