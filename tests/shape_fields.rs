//! Response field selection: `?fields=`, `$fields` and `X-Goog-FieldMask` (AIP-157) on the
//! real binary, in front of the real Python users service (the seed call) and the Python
//! Library server through both codecs, unary and server-streaming; an unknown path is a
//! 400 that names it.

mod support;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::http::send;
use support::library::BothCodecs;
use support::process::{spawn_gateway_for, spawn_python_users};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_call_answers_only_the_selected_fields() {
    let (_users, users) = spawn_python_users(&[]);
    let (_gateway, addr, _log) = spawn_gateway_for(&format!("http://{users}"));
    let get = |path: &str, headers: &'static [(&'static str, &'static str)]| {
        let url = format!("http://{addr}{path}");
        async move { send(Method::GET, &url, headers, Bytes::new()).await }
    };
    let reply = get("/users?ids=1,2&fields=data.name", &[]).await;
    reply.assert_json(200, json!({"data": [{"name": "Alice"}, {"name": "Bob"}]}));
    let reply = get("/users?%24fields=data.email,message&ids=2", &[]).await;
    reply.assert_json(
        200,
        json!({"message": "success", "data": [{"email": "bob@example.com"}]}),
    );
    let reply = get("/users?ids=1", &[("x-goog-fieldmask", "message")]).await;
    reply.assert_json(200, json!({"message": "success"}));
    let reply = get("/users?ids=1&fields=*", &[]).await;
    assert_eq!(reply.json()["data"][0]["age"], 30);

    let reply = get("/users?ids=1&fields=data.nope", &[]).await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(
        body["message"],
        "fields: unknown field path \"data.nope\": User has no field \"nope\""
    );
    assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "fields");
    let reply = get("/users?ids=1&fields=message", &[("x-goog-fieldmask", "message")]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["details"][0]["fieldViolations"][0]["field"],
        "x-goog-fieldmask"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_works_in_both_codecs_unary_and_streaming() {
    let both = BothCodecs::start("");
    let reply = both
        .get("/library/v1/shelves/1/books/1?fields=title,author.address.city,chapters.pages")
        .await;
    assert_eq!(
        std::str::from_utf8(&reply.body).expect("UTF-8"),
        r#"{"title":"The Left Hand of Darkness","author":{"address":{"city":"Portland"}},"chapters":[{"pages":20}]}"#
    );
    // A path into a map's entries is refused: a map prints as one value.
    let reply = both
        .get("/library/v1/shelves/1/books/1?fields=labels.genre")
        .await;
    assert_eq!(reply.status, 400);

    let reply = both
        .send(
            Method::GET,
            "/library/v1/shelves/1/books:stream?pageSize=2&fields=name",
            &[("accept", "application/x-ndjson")],
            "",
        )
        .await;
    let lines: Vec<Value> = std::str::from_utf8(&reply.body)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines,
        vec![
            json!({"result": {"name": "shelves/1/books/1"}}),
            json!({"result": {"name": "shelves/1/books/2"}})
        ]
    );
    let reply = both
        .send(
            Method::GET,
            "/library/v1/shelves/1/books:stream?fields=nope",
            &[("accept", "application/x-ndjson")],
            "",
        )
        .await;
    assert_eq!(reply.status, 400);
}
