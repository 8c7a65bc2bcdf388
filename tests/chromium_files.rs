//! Files to and from a real browser (issue 23, point 6): headless Chromium loads a page on an
//! allowed origin (its own `127.0.0.1:0` port) whose script, through the real binary in front
//! of the real grpcio file server (`support/files.rs`), sends a file from an
//! `<input type=file>` in a `<form enctype="multipart/form-data">` (`FormData` of the form
//! element) to the unary form route, sends a `File` as a raw `fetch` body to the raw upload
//! route and to `Echo`, and downloads a file. The page hashes what it sent and what it got
//! with `crypto.subtle` (sha256), and the test checks those hashes against the server's and
//! its own: the bytes went through the browser, the gateway and gRPC unchanged both ways.
//!
//! The page writes its results as JSON into `<pre id="result">`, read with
//! `chromium --dump-dom` (`support/browser.rs`). Without `chromium` on `PATH` this fails and
//! says to run `scripts/setup`, unless `PROTOGATE_SKIP_BROWSER=1` is set.

mod support;

use support::browser::{chromium_or_skip, page_results, serve_page};
use support::files::Files;
use tokio::net::TcpListener;

/// The uploaded file: byte i is (i * 7 + 3) % 256, this many bytes (past one 1 MiB chunk).
const FILE_BYTES: usize = 1_500_000;
/// The downloaded file: the server's pattern (byte i is i % 251).
const DOWNLOAD_BYTES: usize = 700_000;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>protogate files</title></head>
<body>
<form id="form" method="post" enctype="multipart/form-data">
  <input name="title" value="Dune">
  <input name="copies" value="3">
  <input name="meta.author" value="Frank Herbert">
  <input type="file" name="document" id="document">
</form>
<pre id="result">pending</pre>
<script>
const GATEWAY = "__GATEWAY__";
const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
const sha256 = async (data) => hex(await crypto.subtle.digest("SHA-256", data));
async function call(path, init, read) {
  try {
    const response = await fetch(GATEWAY + path, init);
    const contentType = response.headers.get("content-type");
    const body = read === "bytes" ? await response.arrayBuffer() : await response.json();
    const out = {status: response.status, contentType};
    if (read === "bytes") {
      out.size = body.byteLength;
      out.sha256 = await sha256(body);
    } else {
      out.body = body;
    }
    return out;
  } catch (e) {
    return {error: e.name, message: e.message};
  }
}
(async () => {
  const results = {};
  try {
    const bytes = new Uint8Array(__FILE_BYTES__);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) % 256;
    const file = new File([bytes], "dune.pdf", {type: "application/pdf"});
    results.sent = {size: file.size, sha256: await sha256(await file.arrayBuffer())};

    // The file goes into the form's <input type=file>, as a user's pick would put it.
    const input = document.getElementById("document");
    const picked = new DataTransfer();
    picked.items.add(file);
    input.files = picked.files;
    results.form = await call("/v1/shelves/s1/forms",
      {method: "POST", body: new FormData(document.getElementById("form"))}, "json");

    results.raw = await call("/v1/files/dune.pdf",
      {method: "POST", headers: {"content-type": "application/pdf"}, body: input.files[0]}, "json");
    results.echo = await call("/v1/echo",
      {method: "POST", headers: {"content-type": "application/pdf"}, body: input.files[0]}, "bytes");
    results.download = await call("/v1/files/report.csv?size=__DOWNLOAD_BYTES__", {}, "bytes");
  } catch (e) {
    results.failed = e.name + ": " + e.message;
  }
  results.done = true;
  document.getElementById("result").textContent = JSON.stringify(results);
})();
</script></body></html>
"#;

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_uploads_a_file_from_a_form_and_as_a_raw_body_and_gets_it_back() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let origin = format!("http://{}", listener.local_addr().expect("page addr"));
    let files = Files::start(&format!(
        "[transcoding]\nmax_upload_bytes = 8388608\n\n[cors]\nallowed_origins = [\"{origin}\"]\n"
    ));
    let page = PAGE
        .replace("__GATEWAY__", &files.url(""))
        .replace("__FILE_BYTES__", &FILE_BYTES.to_string())
        .replace("__DOWNLOAD_BYTES__", &DOWNLOAD_BYTES.to_string());
    tokio::spawn(serve_page(listener, page));
    let results = page_results(&chromium, &format!("{origin}/")).await;
    assert!(results.get("failed").is_none(), "{results}");

    let file: Vec<u8> = (0..FILE_BYTES).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    let file_sha = sha256(&file);
    assert_eq!(results["sent"]["size"], FILE_BYTES, "{results}");
    assert_eq!(results["sent"]["sha256"], file_sha.as_str(), "{results}");

    // The form: its text inputs set fields, its file input fills the HttpBody field.
    let form = &results["form"];
    assert_eq!(form["status"], 200, "{form}");
    assert_eq!(form["contentType"], "application/json", "{form}");
    let body = &form["body"];
    assert_eq!(body["shelf"], "s1", "{form}");
    assert_eq!(body["title"], "Dune", "{form}");
    assert_eq!(body["copies"], 3, "{form}");
    assert_eq!(body["author"], "Frank Herbert", "{form}");
    assert_eq!(body["documentContentType"], "application/pdf", "{form}");
    assert_eq!(body["documentSize"], FILE_BYTES.to_string(), "{form}");
    assert_eq!(body["documentSha256"], file_sha.as_str(), "{form}");

    // The raw upload: the File as the body, its type as the HttpBody's content type.
    let raw = &results["raw"];
    assert_eq!(raw["status"], 200, "{raw}");
    assert_eq!(raw["contentType"], "application/json", "{raw}");
    assert_eq!(raw["body"]["name"], "dune.pdf", "{raw}");
    assert_eq!(raw["body"]["contentType"], "application/pdf", "{raw}");
    assert_eq!(raw["body"]["size"], FILE_BYTES.to_string(), "{raw}");
    assert_eq!(raw["body"]["sha256"], file_sha.as_str(), "{raw}");

    // Echo: the same bytes back, raw, under the type they went up with.
    let echo = &results["echo"];
    assert_eq!(echo["status"], 200, "{echo}");
    assert_eq!(echo["contentType"], "application/pdf", "{echo}");
    assert_eq!(echo["size"], FILE_BYTES, "{echo}");
    assert_eq!(echo["sha256"], file_sha.as_str(), "{echo}");

    // A download: the server's pattern, hashed in the page.
    let expected: Vec<u8> = (0..DOWNLOAD_BYTES).map(|i| (i % 251) as u8).collect();
    let download = &results["download"];
    assert_eq!(download["status"], 200, "{download}");
    assert_eq!(download["contentType"], "text/csv", "{download}");
    assert_eq!(download["size"], DOWNLOAD_BYTES, "{download}");
    assert_eq!(download["sha256"], sha256(&expected).as_str(), "{download}");
}
