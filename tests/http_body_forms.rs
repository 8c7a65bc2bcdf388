//! `multipart/form-data` onto a message (issue 23, point 4): a form's text parts set fields
//! as query values do, its file parts fill a `bytes` field and a `google.api.HttpBody`
//! field, through the real binary in front of the grpcio file server (`Submit`). To a
//! client-streaming method (`StreamSubmit`) the form is streamed: text parts in the first
//! message, each file in pieces of `upload_chunk_bytes`. The server answers what it
//! received with the files' sha256, checked here.

mod support;

use bytes::Bytes;
use http::Method;
use support::files::Files;
use support::http::send;

const CONFIG: &str = "[transcoding]\nmax_upload_bytes = 4194304\n";
const BOUNDARY: &str = "----protogate-form-7MA4YWxkTrZu0gW";

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One part: its name, the filename and content type of a file, and its data.
type FormPart<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A form as a browser sends it.
fn form(parts: &[FormPart]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some((filename, content_type)) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                     Content-Type: {content_type}\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

#[tokio::test]
async fn a_form_sets_text_fields_and_fills_bytes_and_http_body_fields() {
    let files = Files::start(CONFIG);
    let thumbnail: Vec<u8> = (0..70_000).map(|i: usize| (i * 31 % 256) as u8).collect();
    // The boundary inside a line of a file does not end it (only CRLF--boundary does, and a
    // sender picks a boundary that never starts a line of its data).
    let mut document = format!("%PDF x--{BOUNDARY} inside\r\n").into_bytes();
    document.extend((0..2 * 1024 * 1024).map(|i: usize| (i % 253) as u8));
    let body = form(&[
        ("title", None, "Dune \u{e9}dition".as_bytes()),
        ("copies", None, b"3"),
        ("ratings", None, b"4,5"),
        ("ratings", None, b"2"),
        ("meta.author", None, b"Frank Herbert"),
        ("thumbnail", Some(("t.png", "image/png")), &thumbnail),
        ("document", Some(("dune.pdf", "application/pdf")), &document),
    ]);
    let url = files.url("/v1/shelves/s1/forms");
    let ct = content_type();
    let reply = send(Method::POST, &url, &[("content-type", ct.as_str())], body).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    let json = reply.json();
    assert_eq!(json["shelf"], "s1");
    assert_eq!(json["title"], "Dune \u{e9}dition");
    assert_eq!(json["copies"], 3);
    assert_eq!(json["ratings"], serde_json::json!([4, 5, 2]));
    assert_eq!(json["author"], "Frank Herbert");
    assert_eq!(json["thumbnailSize"], thumbnail.len().to_string());
    assert_eq!(json["thumbnailSha256"], sha256(&thumbnail));
    assert_eq!(json["documentContentType"], "application/pdf");
    assert_eq!(json["documentSize"], document.len().to_string());
    assert_eq!(json["documentSha256"], sha256(&document));
}

#[tokio::test]
async fn a_form_with_an_unknown_or_bad_part_is_a_400_naming_it() {
    let files = Files::start(CONFIG);
    let url = files.url("/v1/shelves/s1/forms");
    let ct = content_type();
    let headers = [("content-type", ct.as_str())];

    let body = form(&[("title", None, b"x"), ("colour", None, b"red")]);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400);
    let json = reply.json();
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unknown form part \"colour\"")),
        "{json}"
    );
    assert_eq!(json["details"][0]["fieldViolations"][0]["field"], "colour");

    let body = form(&[("copies", None, b"many")]);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("copies"))
    );

    // A file for a field that is not bytes or HttpBody.
    let body = form(&[("title", Some(("a.txt", "text/plain")), b"x")]);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("neither bytes"))
    );

    // Cut short: no closing boundary.
    let mut body = form(&[("title", None, b"x")]);
    body.truncate(body.len() - 10);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400);

    // Past max_upload_bytes (4 MiB): 413.
    let big = vec![1u8; 4 * 1024 * 1024];
    let body = form(&[("thumbnail", Some(("t.png", "image/png")), &big)]);
    let reply = send(Method::POST, &url, &headers, Bytes::from(body)).await;
    assert_eq!(reply.status, 413);

    // A route whose request has no bytes or HttpBody field takes no form: 415 as before.
    let body = form(&[("name", None, b"x")]);
    let reply = send(
        Method::POST,
        &files.url("/files.v1.Files/Download"),
        &headers,
        body,
    )
    .await;
    assert_eq!(reply.status, 415);
}

#[tokio::test]
async fn openapi_offers_a_form_where_a_file_fits() {
    let files = Files::start(CONFIG);
    let reply = send(Method::GET, &files.url("/openapi.json"), &[], Bytes::new()).await;
    let doc = reply.json();
    let body = &doc["paths"]["/v1/shelves/{shelf}/forms"]["post"]["requestBody"]["content"];
    let schema = &body["multipart/form-data"]["schema"];
    assert_eq!(schema["type"], "object", "{body}");
    let binary = serde_json::json!({ "type": "string", "format": "binary" });
    assert_eq!(schema["properties"]["thumbnail"], binary, "{schema}");
    assert_eq!(schema["properties"]["document"], binary, "{schema}");
    assert!(schema["properties"]["title"].is_object(), "{schema}");
    assert!(
        schema["properties"].get("shelf").is_none(),
        "the path binds shelf: {schema}"
    );
    assert!(body["application/json"].is_object());
    // No form where no file fits.
    let download = &doc["paths"]["/files.v1.Files/Download"]["post"]["requestBody"]["content"];
    assert!(download.get("multipart/form-data").is_none(), "{download}");
}

/// A streamed form: 256 KiB pieces, up to 16 MiB.
const STREAM_CONFIG: &str = "[transcoding]\nmax_upload_bytes = 16777216\nupload_chunk_bytes = 262144\n";

#[tokio::test]
async fn a_form_to_a_client_streaming_method_goes_in_pieces() {
    let files = Files::start(STREAM_CONFIG);
    let chunk = 262_144usize;
    let thumbnail: Vec<u8> = (0..300_000).map(|i: usize| (i * 17 % 256) as u8).collect();
    // The boundary inside a line, and a line that starts with only a part of it, are data.
    let prefix = &BOUNDARY[..12];
    let mut document = format!("%PDF x--{BOUNDARY} inside\r\n--{prefix}\r\n").into_bytes();
    document.extend((0..6 * 1024 * 1024).map(|i: usize| (i % 241) as u8));
    let body = form(&[
        ("title", None, b"Dune"),
        ("copies", None, b"3"),
        ("ratings", None, b"4,5"),
        ("meta.author", None, b"Frank Herbert"),
        ("thumbnail", Some(("t.png", "image/png")), &thumbnail),
        ("document", Some(("dune.pdf", "application/pdf")), &document),
    ]);
    let url = files.url("/v1/shelves/s1/forms/stream");
    let ct = content_type();
    let reply = send(Method::POST, &url, &[("content-type", ct.as_str())], body).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let json = reply.json();
    assert_eq!(json["shelf"], "s1", "{json}");
    assert_eq!(json["title"], "Dune", "{json}");
    assert_eq!(json["copies"], 3, "{json}");
    assert_eq!(json["ratings"], serde_json::json!([4, 5]), "{json}");
    assert_eq!(json["author"], "Frank Herbert", "{json}");
    assert_eq!(json["thumbnailSize"], thumbnail.len().to_string(), "{json}");
    assert_eq!(json["thumbnailSha256"], sha256(&thumbnail), "{json}");
    assert_eq!(json["documentContentType"], "application/pdf", "{json}");
    assert_eq!(json["documentSize"], document.len().to_string(), "{json}");
    assert_eq!(json["documentSha256"], sha256(&document), "{json}");
    // One message per piece of each file, none larger than a chunk, the path's shelf in
    // every one, the text fields in the first only.
    let pieces = thumbnail.len().div_ceil(chunk) + document.len().div_ceil(chunk);
    assert_eq!(json["messages"], pieces, "{json}");
    assert_eq!(json["largestPiece"], chunk.to_string(), "{json}");
    assert_eq!(json["consistent"], true, "{json}");
    assert_eq!(json["textInFirstOnly"], true, "{json}");

    // OpenAPI offers the form on the streamed route too.
    let reply = send(Method::GET, &files.url("/openapi.json"), &[], Bytes::new()).await;
    let doc = reply.json();
    let content = &doc["paths"]["/v1/shelves/{shelf}/forms/stream"]["post"]["requestBody"]["content"];
    let schema = &content["multipart/form-data"]["schema"];
    let binary = serde_json::json!({ "type": "string", "format": "binary" });
    assert_eq!(schema["properties"]["document"], binary, "{content}");
}

#[tokio::test]
async fn a_streamed_form_answers_400_and_413_as_a_whole_one() {
    let files = Files::start("[transcoding]\nmax_upload_bytes = 1048576\nupload_chunk_bytes = 65536\n");
    let url = files.url("/v1/shelves/s1/forms/stream");
    let ct = content_type();
    let headers = [("content-type", ct.as_str())];

    // Text only: one message.
    let body = form(&[("title", None, b"Dune")]);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["messages"], 1);

    // A text part after a file part.
    let body = form(&[
        ("thumbnail", Some(("t.png", "image/png")), b"png"),
        ("title", None, b"late"),
    ]);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(&reply.body));
    let json = reply.json();
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("text after a file part")),
        "{json}"
    );

    // An unknown part.
    let body = form(&[("colour", None, b"red")]);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unknown form part \"colour\""))
    );

    // Cut short: no closing boundary.
    let mut body = form(&[("thumbnail", Some(("t.png", "image/png")), b"png")]);
    body.truncate(body.len() - 10);
    let reply = send(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(&reply.body));

    // Past max_upload_bytes (1 MiB): 413.
    let big = vec![1u8; 2 * 1024 * 1024];
    let body = form(&[("document", Some(("d.bin", "application/octet-stream")), &big)]);
    let reply = send(Method::POST, &url, &headers, Bytes::from(body)).await;
    assert_eq!(reply.status, 413);
}
