//! The served OpenAPI document and docs page, on a gateway with the seed rules: the paths,
//! parameters, bodies and schemas of the seed's routes exactly, the Status schema on every
//! error, and a `/docs` page that loads nothing from the internet. With the `test-protos`
//! feature, the test service's annotated routes (multi-segment variables, verbs, field
//! bodies, streaming) are checked too.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::gateway::TestGateway;
use support::http::{get, send};
use support::upstream::{RecordingUpstream, Reply};

async fn gateway_with(extra_toml: &str) -> (RecordingUpstream, TestGateway) {
    let upstream = RecordingUpstream::start(|_| Reply::message(&())).await;
    let gateway = TestGateway::start(upstream.addr, extra_toml).await;
    (upstream, gateway)
}

/// The paths with an operation of `service` (tagged with it), sorted. The `test-protos`
/// feature adds the test service's routes to the same document.
fn paths_of<'a>(doc: &'a Value, service: &str) -> Vec<&'a str> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .filter(|(_, item)| {
            let operations = item.as_object().expect("path item").values();
            operations.into_iter().any(|op| op["tags"] == json!([service]))
        })
        .map(|(path, _)| path.as_str())
        .collect()
}

async fn served_document(gateway: &TestGateway) -> Value {
    let reply = get(&gateway.url("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json()
}

fn int32() -> Value {
    json!({"type":"integer","format":"int32","minimum":-2147483648i64,"maximum":2147483647})
}

fn errors() -> Value {
    let mut responses = serde_json::Map::new();
    for (code, name) in [
        ("400", "BadRequest"),
        ("404", "NotFound"),
        ("405", "MethodNotAllowed"),
        ("413", "PayloadTooLarge"),
        ("415", "UnsupportedMediaType"),
        ("503", "Unavailable"),
        ("504", "DeadlineExceeded"),
        ("default", "Error"),
    ] {
        responses.insert(
            code.to_string(),
            json!({"$ref": format!("#/components/responses/{name}")}),
        );
    }
    Value::Object(responses)
}

/// The 200 response plus every error response.
fn responses(output: &str, rpc: &str) -> Value {
    let mut all = json!({
        "200": {
            "description": format!("The reply of {rpc}, as proto3 JSON."),
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{output}")}}}
        }
    });
    if let (Some(all), Value::Object(errors)) = (all.as_object_mut(), errors()) {
        all.extend(errors);
    }
    all
}

#[tokio::test]
async fn seed_routes_are_documented_exactly() {
    let (_upstream, gateway) = gateway_with("").await;
    let doc = served_document(&gateway).await;

    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "protogate");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        paths_of(&doc, "MyService"),
        // The reader's order: the rules' routes, then the unbound ones.
        ["/users", "/health", "/MyService/Health", "/MyService/User"]
    );

    assert_eq!(
        doc["paths"]["/users"],
        json!({"get": {
            "operationId": "MyService.User_GET_users",
            "summary": "MyService.User",
            "tags": ["MyService"],
            "description": "定义一个批量查询 user 的方法",
            "parameters": [
                {
                    "name": "userIDs", "in": "query", "required": false,
                    "schema": {"type": "array", "items": int32()},
                    "style": "form", "explode": true,
                    "description": "Repeat the parameter for several values (`?userIDs=1&userIDs=2`). \
                                    A comma list works too (`?userIDs=1,2`)."
                },
                {
                    "name": "ids", "in": "query", "required": false,
                    "schema": {"type": "array", "items": int32()},
                    "style": "form", "explode": true,
                    "description": "Alias of `userIDs`.\n\nRepeat the parameter for several values \
                                    (`?ids=1&ids=2`). A comma list works too (`?ids=1,2`)."
                }
            ],
            "responses": responses("UserReply", "MyService.User"),
            "x-grpc-method": "/MyService/User",
            "x-protogate-origin": "config rule 1"
        }})
    );

    assert_eq!(
        doc["paths"]["/health"],
        json!({"get": {
            "operationId": "MyService.Health_GET_health",
            "summary": "MyService.Health",
            "tags": ["MyService"],
            "description": "定义一个探活方法",
            "responses": responses("google.protobuf.Empty", "MyService.Health"),
            "x-grpc-method": "/MyService/Health",
            "x-protogate-origin": "config rule 2"
        }})
    );

    let unbound = &doc["paths"]["/MyService/User"]["post"];
    assert_eq!(unbound["operationId"], "MyService.User_POST_MyService_User");
    assert!(
        unbound.get("parameters").is_none(),
        "body \"*\" leaves no query parameters"
    );
    assert_eq!(
        unbound["requestBody"],
        json!({
            "description": "The UserReq request message; an empty body means {}.",
            "required": false,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserReq"}}}
        })
    );
    assert_eq!(unbound["responses"], responses("UserReply", "MyService.User"));
    assert_eq!(unbound["x-protogate-origin"], "unbound method MyService.User");

    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["UserReq"],
        json!({
            "type": "object",
            "properties": {"userIDs": {"type": "array", "items": int32()}},
            "additionalProperties": false,
            "description": "message 关键字定义交互的数据结构"
        })
    );
    assert_eq!(
        schemas["User"],
        json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": int32(), "email": {"type": "string"}},
            "additionalProperties": false
        })
    );
    assert_eq!(
        schemas["UserReply"]["properties"]["data"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/User"},
               "description": "repeated 定义一个数组"})
    );
    let tags = doc["tags"].as_array().expect("tags");
    assert!(tags.contains(&json!({"name": "MyService", "description": "service 关键字定义提供的服务"})));
}

#[tokio::test]
async fn every_error_response_is_google_rpc_status() {
    let (_upstream, gateway) = gateway_with("").await;
    let doc = served_document(&gateway).await;
    let status = &doc["components"]["schemas"]["google.rpc.Status"];
    assert_eq!(status["required"], json!(["code", "message", "details"]));
    assert_eq!(
        status["properties"]["code"]["type"], "integer",
        "code is the numeric gRPC code"
    );
    assert_eq!(status["properties"]["message"]["type"], "string");
    assert_eq!(
        status["properties"]["details"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/google.protobuf.Any"}})
    );
    assert_eq!(
        doc["components"]["schemas"]["google.protobuf.Any"]["required"],
        json!(["@type"])
    );
    let responses = doc["components"]["responses"].as_object().expect("responses");
    assert_eq!(responses.len(), 8);
    for (name, response) in responses {
        assert_eq!(
            response["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/google.rpc.Status"}),
            "{name}"
        );
    }
    assert_eq!(
        doc["components"]["responses"]["MethodNotAllowed"]["headers"]["Allow"]["schema"],
        json!({"type": "string"})
    );
    // An error really served matches: the three keys, nothing else.
    let reply = get(&gateway.url("/users?ids=abc")).await;
    let body = reply.json();
    let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "details", "message"]);
}

#[tokio::test]
async fn unbound_methods_off_leaves_only_the_rules() {
    let (_upstream, gateway) = gateway_with("[transcoding]\nunbound_methods = false\n").await;
    let doc = served_document(&gateway).await;
    assert_eq!(paths_of(&doc, "MyService"), ["/users", "/health"]);
    // With one route per method, the operation id is the method's full name.
    assert_eq!(doc["paths"]["/users"]["get"]["operationId"], "MyService.User");
}

#[tokio::test]
async fn operational_paths_answer_get_and_head_only() {
    let (upstream, gateway) = gateway_with("").await;
    let head = send(Method::HEAD, &gateway.url("/openapi.json"), &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for path in ["/openapi.json", "/docs"] {
        let reply = send(Method::POST, &gateway.url(path), &[], "").await;
        reply.assert_json(
            405,
            json!({"code": 12, "message": "method POST is not allowed here; allowed: GET, HEAD", "details": []}),
        );
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    assert!(upstream.calls().is_empty(), "docs never touch the upstream");
}

#[tokio::test]
async fn docs_page_is_self_contained_html() {
    let (_upstream, gateway) = gateway_with("").await;
    let reply = get(&gateway.url("/docs")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        reply.header("content-security-policy"),
        Some("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'")
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let html = String::from_utf8(reply.body.to_vec()).expect("utf-8");
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("fetch(\"openapi.json\""),
        "the page reads the live document"
    );
    for external in ["http://", "https://", "//cdn", "@import", "<link"] {
        assert!(
            !html.contains(external),
            "the page must load nothing else: found {external:?}"
        );
    }
}

/// The test proto's annotations: every google.api.http form, as the document shows them.
#[cfg(feature = "test-protos")]
#[tokio::test]
async fn annotated_test_service_routes_are_documented() {
    let (_upstream, gateway) = gateway_with("").await;
    let doc = served_document(&gateway).await;
    let paths = paths_of(&doc, "protogate.test.v1.Everything");
    for path in [
        "/v1/echo",
        "/v1/echo/{stringValue}",
        "/v1/rich",
        "/v1/{name}",
        "/v1/{book.name}",
        "/v1/books/{book.name}",
        "/v1/{name}:publish",
        "/v1/files/{path}",
        "/v1/items",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    let book = &doc["paths"]["/v1/{name}"];
    let methods: Vec<&String> = book.as_object().expect("item").keys().collect();
    assert_eq!(methods, ["get", "delete"]);
    assert_eq!(
        book["get"]["parameters"][0]["schema"],
        json!({"type": "string", "pattern": "^shelves/[^/]+/books/[^/]+$"})
    );
    assert_eq!(book["get"]["parameters"][0]["in"], "path");
    assert_eq!(book["get"]["parameters"][1]["name"], "withReviews");
    // body: "book" → the Book schema; response_body: "title" → a string.
    assert_eq!(
        doc["paths"]["/v1/{book.name}"]["patch"]["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/protogate.test.v1.Book"})
    );
    assert_eq!(
        doc["paths"]["/v1/{name}:publish"]["post"]["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "string"})
    );
    // custom HEAD with `**`: one parameter that spans segments.
    assert_eq!(
        doc["paths"]["/v1/files/{path}"]["head"]["parameters"][0]["schema"],
        json!({"type": "string", "pattern": "^.*$"})
    );
    // Server streaming: NDJSON, SSE or one array.
    let content = doc["paths"]["/v1/items"]["get"]["responses"]["200"]["content"]
        .as_object()
        .expect("content");
    let formats: Vec<&String> = content.keys().collect();
    assert_eq!(
        formats,
        ["application/x-ndjson", "text/event-stream", "application/json"]
    );
    let scalars = &doc["components"]["schemas"]["protogate.test.v1.Scalars"]["properties"];
    assert_eq!(scalars["int64Value"]["type"], "string");
    assert_eq!(scalars["int64List"]["items"]["pattern"], "^-?[0-9]+$");
    assert_eq!(
        scalars["color"],
        json!({"$ref": "#/components/schemas/protogate.test.v1.Color"})
    );
}
