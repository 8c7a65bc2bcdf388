//! The `/docs` page in a real browser, as a person would use it: headless Chromium, driven by
//! Selenium (`tests/browser/docs_try_it.py`), opens the page of a gateway whose schema came
//! from the real Python service's server reflection, finds the reflected method, fills in its
//! "try it" form, sends it, and reads the JSON answer on the page. Needs scripts/setup-browser
//! (chromium-driver and Selenium in .venv-browser), which scripts/setup runs.
//!
//! The page and the document list routes in the user's order: the routes of rules and
//! annotations first, grouped by service, then the unbound `POST /Service/Method` ones.
//!
//! Uploads from the page (`tests/browser/docs_upload.py`), in front of the grpcio file server
//! (`support/files.rs`): a raw `google.api.HttpBody` route offers a file input whose file is
//! the body, and a route that takes a `multipart/form-data` form offers text and file inputs
//! for its parts; the server's sha256 of what it received is checked against the file's.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::TempDir;
use support::files::Files;
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

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `docs_upload.py` on the `/docs` of `files` for the operation at `path` (POST) with
/// `spec`; returns the status line and the JSON answer the page shows.
async fn upload_from_docs(files: &Files, path: &str, spec: Value) -> (String, Value) {
    let python = manifest_dir().join(".venv-browser/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup-browser (scripts/setup does)",
        python.display()
    );
    let openapi = get(&files.url("/openapi.json")).await.json();
    let operation = openapi["paths"][path]["post"]["operationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no POST {path} in {openapi}"))
        .to_string();
    let script = manifest_dir().join("tests/browser/docs_upload.py");
    let url = files.url("/docs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([url.as_str(), operation.as_str(), spec.to_string().as_str()])
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
    let status = page["status"].as_str().unwrap_or_default().to_string();
    let result = page["result"].as_str().unwrap_or_default();
    let (_request_line, answer) = result.split_once("\n\n").unwrap_or_else(|| panic!("{page}"));
    let answer: Value = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_uploads_a_file_as_a_raw_body_and_in_a_form() {
    if support::browser::chromium_or_skip().is_none() {
        return;
    }
    let files = Files::start("[transcoding]\nmax_upload_bytes = 8388608\n");
    let dir = TempDir::new("docs-upload");
    let data: Vec<u8> = (0..300_000).map(|i: usize| (i * 13 % 256) as u8).collect();
    let pdf = dir.join("report.pdf");
    std::fs::write(&pdf, &data).expect("write the file");
    let pdf = pdf.to_str().expect("UTF-8 path").to_string();

    // The raw upload route: the picked file is the body, its type the content type.
    let spec = json!({ "params": { "name": "report.pdf" }, "file": pdf });
    let (status, answer) = upload_from_docs(&files, "/v1/files/{name}", spec).await;
    assert!(status.starts_with("200 OK"), "{status}: {answer}");
    assert_eq!(answer["name"], "report.pdf", "{answer}");
    assert_eq!(answer["contentType"], "application/pdf", "{answer}");
    assert_eq!(answer["size"], data.len().to_string(), "{answer}");
    assert_eq!(answer["sha256"], sha256(&data), "{answer}");

    // The form route: text inputs and a file input, sent as multipart/form-data.
    let spec = json!({
        "params": { "shelf": "s1" },
        "parts": { "title": "Dune", "copies": "3" },
        "files": { "document": pdf },
    });
    let (status, answer) = upload_from_docs(&files, "/v1/shelves/{shelf}/forms", spec).await;
    assert!(status.starts_with("200 OK"), "{status}: {answer}");
    assert_eq!(answer["shelf"], "s1", "{answer}");
    assert_eq!(answer["title"], "Dune", "{answer}");
    assert_eq!(answer["copies"], 3, "{answer}");
    assert_eq!(answer["documentContentType"], "application/pdf", "{answer}");
    assert_eq!(answer["documentSize"], data.len().to_string(), "{answer}");
    assert_eq!(answer["documentSha256"], sha256(&data), "{answer}");
}
