//! Output options (`emit_unpopulated`, `use_proto_names`, `enums_as_numbers`,
//! `strip_enum_prefix`), set globally in `[transcoding]` and per service, method and rule,
//! against the real Python Library server and real gateway binaries through both codecs,
//! which must answer byte for byte alike (`support/library.rs`); and the startup refusals
//! (an enum whose stripped names collide, an override naming no service).

mod support;

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use support::TempDir;
use support::library::BothCodecs;
use support::process::{gateway_command, run_to_exit};

/// The stored book as the gateway prints it by default.
const DEFAULT_BOOK: &str = concat!(
    r#"{"name":"shelves/1/books/1","title":"The Left Hand of Darkness","#,
    r#""author":{"displayName":"Ursula K. Le Guin","address":{"city":"Portland","countryCode":"US"}},"#,
    r#""format":"BOOK_FORMAT_HARDCOVER","labels":{"genre":"sf"},"#,
    r#""chapters":[{"title":"A Parade in Erhenrang","pages":20}],"pageCount":"304","#,
    r#""availableFormats":["BOOK_FORMAT_HARDCOVER","BOOK_FORMAT_PAPERBACK"],"editions":{"1969":"Ace"}}"#
);

/// Every level at once: emit_unpopulated globally, stripped enum names for the service,
/// enum numbers for one method, and one rule with proto names and without nulls.
const LEVELS: &str = r#"
[transcoding]
emit_unpopulated = true

[transcoding.services."library.v1.Library"]
strip_enum_prefix = true

[transcoding.methods."library.v1.Library.ListBooks"]
enums_as_numbers = true

[[rules]]
selector = "library.v1.Library.GetBook"
get = "/library/v2/{name=shelves/*/books/*}"
use_proto_names = true
emit_unpopulated = false

[[rules]]
selector = "library.v1.Library.ListBooks"
get = "/library/v2/{parent=shelves/*}/books"
response_body = "nextPageToken"
use_proto_names = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_output_is_unchanged_and_alike_in_both_codecs() {
    let both = BothCodecs::start("");
    let reply = both.get("/library/v1/shelves/1/books/1").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(std::str::from_utf8(&reply.body).expect("UTF-8"), DEFAULT_BOOK);
    // No options: a stripped name is not an enum name.
    let reply = both.get("/library/v1/shelves/1/books?format=PAPERBACK").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["message"],
        "query parameter format: invalid value \"PAPERBACK\" for field format: not a value of BookFormat \
         (one of BOOK_FORMAT_UNSPECIFIED, BOOK_FORMAT_HARDCOVER, BOOK_FORMAT_PAPERBACK, BOOK_FORMAT_EBOOK, or an int32)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_resolve_per_service_method_and_rule_in_both_codecs() {
    let both = BothCodecs::start(LEVELS);

    // The annotation's route: global emit_unpopulated + the service's stripped enums.
    let reply = both.get("/library/v1/shelves/1/books/1").await;
    let want = DEFAULT_BOOK.replace("BOOK_FORMAT_", "").replace(
        r#""editions":{"1969":"Ace"}}"#,
        r#""editions":{"1969":"Ace"},"publisher":null}"#,
    );
    assert_eq!(std::str::from_utf8(&reply.body).expect("UTF-8"), want);

    // The rule's route: proto names, stripped enums, no nulls.
    let reply = both.get("/library/v2/shelves/1/books/1").await;
    assert_eq!(
        reply.json(),
        json!({
            "name": "shelves/1/books/1", "title": "The Left Hand of Darkness",
            "author": {"display_name": "Ursula K. Le Guin", "address": {"city": "Portland", "country_code": "US"}},
            "format": "HARDCOVER", "labels": {"genre": "sf"},
            "chapters": [{"title": "A Parade in Erhenrang", "pages": 20}], "page_count": "304",
            "available_formats": ["HARDCOVER", "PAPERBACK"], "editions": {"1969": "Ace"}
        })
    );

    // response_body answers the field printed under its proto name.
    let reply = both.get("/library/v2/shelves/1/books").await;
    assert_eq!((reply.status.as_u16(), &reply.body[..]), (200, &b"\"\""[..]));

    // The method's numbers beat the service's stripped names; unset messages are null at
    // every depth; stripped names are read in the query, full ones still too.
    for format in ["PAPERBACK", "BOOK_FORMAT_PAPERBACK", "2"] {
        let reply = both
            .get(&format!("/library/v1/shelves/1/books?pageSize=1&format={format}"))
            .await;
        assert_eq!(
            reply.json(),
            json!({"books": [{
                "name": "shelves/1/books/1", "title": "Book 1",
                "author": {"displayName": "Author 1", "address": null},
                "format": 2, "labels": {}, "chapters": [], "pageCount": "100",
                "availableFormats": [], "editions": {}, "publisher": null
            }], "nextPageToken": ""}),
            "format={format}"
        );
    }
    let reply = both.get("/library/v1/shelves/1/books?format=NOPE").await;
    assert_eq!(reply.status, 400);

    // `$alt=json;enum-encoding=int` still turns names into numbers on top.
    let reply = both
        .get("/library/v1/shelves/1/books/1?$alt=json;enum-encoding=int")
        .await;
    assert_eq!(reply.json()["format"], 1);
    assert_eq!(reply.json()["availableFormats"], json!([1, 2]));

    // A stripped name in a body (PATCH with an explicit mask) is read in full.
    let reply = both
        .send(
            Method::PATCH,
            "/library/v1/shelves/1/books/1?updateMask=format",
            &[("content-type", "application/json")],
            r#"{"format":"EBOOK"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["format"], "EBOOK");
    assert_eq!(reply.json()["title"], "The Left Hand of Darkness");

    // A server stream's messages are printed by the same options.
    let reply = both
        .send(
            Method::GET,
            "/library/v1/shelves/1/books:stream?pageSize=2&format=HARDCOVER",
            &[("accept", "application/x-ndjson")],
            "",
        )
        .await;
    let lines: Vec<Value> = std::str::from_utf8(&reply.body)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert_eq!(line["result"]["format"], "HARDCOVER");
        assert_eq!(line["result"]["publisher"], Value::Null);
        assert!(
            line["result"]
                .as_object()
                .expect("object")
                .contains_key("publisher")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_follows_each_routes_options() {
    let both = BothCodecs::start(LEVELS);
    for gateway in &both.gateways {
        let reply = gateway.send(Method::GET, "/openapi.json", &[], "").await;
        let doc = reply.json();
        let schemas = &doc["components"]["schemas"];
        let reply_ref = |path: &str, method: &str| {
            doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no reply $ref at {path}", gateway.codec))
                .trim_start_matches("#/components/schemas/")
                .to_string()
        };
        // Global emit_unpopulated + the service's stripped names.
        let book = reply_ref("/library/v1/{name}", "get");
        assert_eq!(book, "library.v1.Book__unpopulated__enum_stripped");
        let book = &schemas[&book];
        assert!(
            book["required"]
                .as_array()
                .expect("required")
                .contains(&json!("publisher"))
        );
        assert_eq!(
            book["properties"]["publisher"]["anyOf"][1],
            json!({"type": "null"})
        );
        assert_eq!(
            book["properties"]["format"]["$ref"],
            "#/components/schemas/library.v1.BookFormat__enum_stripped"
        );
        assert_eq!(
            schemas["library.v1.BookFormat__enum_stripped"]["enum"],
            json!(["UNSPECIFIED", "HARDCOVER", "PAPERBACK", "EBOOK"])
        );
        // The rule's proto names.
        let v2 = reply_ref("/library/v2/{name}", "get");
        assert_eq!(v2, "library.v1.Book__proto_names__enum_stripped");
        assert!(schemas[&v2]["properties"]["page_count"].is_object());
        assert!(schemas[&v2].get("required").is_none());
        // The method's numbers.
        let list = reply_ref("/library/v1/{parent}/books", "get");
        assert_eq!(list, "library.v1.ListBooksResponse__unpopulated__enum_numbers");
        assert_eq!(
            schemas["library.v1.BookFormat__enum_numbers"],
            json!({"type": "integer", "format": "int32", "enum": [0, 1, 2, 3]})
        );
        // Request bodies keep the default form: full names, json names.
        assert_eq!(
            schemas["library.v1.BookFormat"]["enum"],
            json!([
                "BOOK_FORMAT_UNSPECIFIED",
                "BOOK_FORMAT_HARDCOVER",
                "BOOK_FORMAT_PAPERBACK",
                "BOOK_FORMAT_EBOOK"
            ])
        );
    }
}

/// Runs the binary on `config` with `--schema protos:DIR` of `proto` and returns its
/// stderr, expecting the startup refusal (exit 2).
fn refused(config: &str, proto: &str) -> String {
    let dir = TempDir::new("shape-refusal");
    std::fs::create_dir_all(dir.join("protos")).expect("dir");
    std::fs::write(dir.join("protos/clash.proto"), proto).expect("proto");
    std::fs::write(dir.join("protogate.toml"), config).expect("config");
    let mut command = gateway_command();
    command.args([
        "--config",
        dir.join("protogate.toml").to_str().expect("UTF-8"),
        "--listen",
        "127.0.0.1:0",
        "--schema",
        &format!("protos:{}", dir.join("protos").display()),
    ]);
    let finished = run_to_exit(command, Duration::from_secs(10));
    assert_eq!(finished.status.code(), Some(2), "stderr: {:?}", finished.stderr);
    finished.stderr.join("\n")
}

const CLASH: &str = r#"
syntax = "proto3";
package clash.v1;
enum Color { COLOR_RED = 0; RED = 1; }
message Paint { Color color = 1; }
service Painter { rpc Mix(Paint) returns (Paint); }
"#;

#[test]
fn stripped_enum_names_that_collide_stop_startup() {
    let stderr = refused("[transcoding]\nstrip_enum_prefix = true\n", CLASH);
    assert!(
        stderr.contains(
            "strip_enum_prefix: enum clash.v1.Color has values COLOR_RED and RED that both print as RED"
        ),
        "{stderr}"
    );
    // An override naming nothing in the schema is a mistake, not a no-op.
    let stderr = refused(
        "[transcoding.methods.\"clash.v1.Painter.Nope\"]\nuse_proto_names = true\n",
        CLASH,
    );
    assert!(
        stderr.contains("transcoding.methods.\"clash.v1.Painter.Nope\": the schema has no such method"),
        "{stderr}"
    );
    let stderr = refused(
        "[transcoding.services.\"clash.v1.Nope\"]\nemit_unpopulated = true\n",
        CLASH,
    );
    assert!(
        stderr.contains("transcoding.services.\"clash.v1.Nope\": the schema has no such service"),
        "{stderr}"
    );
}

/// A WebSocket carries the same reply printing and reads the same stripped names as a
/// plain request: StreamBooks at its unbound route, the request message as a text frame
/// with a stripped enum name (the codecs' straight path cannot read it; the binder does),
/// `?fields=` on the upgrade, replies with stripped names, through both codecs.
#[test]
fn a_socket_reads_stripped_names_and_prints_the_selection() {
    let both = BothCodecs::start("[transcoding.services.\"library.v1.Library\"]\nstrip_enum_prefix = true\n");
    let request = json!({"parent": "shelves/7", "pageSize": 2, "format": "PAPERBACK"});
    let script = json!([{ "send": request.to_string() }, { "send": "" }, { "wait_close": true }]);
    for gateway in &both.gateways {
        let mut command = std::process::Command::new(support::process::python_venv());
        command
            .arg(support::process::manifest_dir().join("tests/python/websocket_client.py"))
            .arg(format!(
                "ws://{}/library.v1.Library/StreamBooks?fields=name,format",
                gateway.addr
            ))
            .arg(script.to_string());
        let finished = run_to_exit(command, Duration::from_secs(30));
        assert!(finished.status.success(), "{:?}", finished.stderr);
        let events: Vec<Value> = finished
            .stdout
            .iter()
            .map(|line| serde_json::from_str(line).expect("json line"))
            .collect();
        assert_eq!(
            events,
            [
                json!({"open": true}),
                json!({"recv": r#"{"name":"shelves/7/books/1","format":"PAPERBACK"}"#}),
                json!({"recv": r#"{"name":"shelves/7/books/2","format":"PAPERBACK"}"#}),
                json!({"closed": 1000, "reason": ""}),
            ],
            "{}",
            gateway.codec
        );
    }
}
