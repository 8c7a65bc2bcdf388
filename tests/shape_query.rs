//! Maps and repeated messages in the query string: `labels[key]=v`, `labels.key=v` (string
//! and integer keys) and `chapters[0].title=a` (indices dense from 0, in any order), on the
//! real binary in front of the real Python Library server (ListBooks echoes its request's
//! labels, editions and chapters into every book), through both codecs.

mod support;

use serde_json::json;
use support::library::BothCodecs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_and_repeated_messages_bind_from_the_query() {
    let both = BothCodecs::start("");
    // One entry per map where both codecs' bytes are compared: grpcio sends a map's
    // entries in no fixed order, so two calls may differ in it.
    let reply = both
        .get("/library/v1/shelves/1/books?labels[genre]=sf&editions.2001=Gollancz&chapters[1].title=B&chapters[0].title=A&chapters[0].pages=3")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let book = &reply.json()["books"][0];
    assert_eq!(book["labels"], json!({"genre": "sf"}));
    assert_eq!(book["editions"], json!({"2001": "Gollancz"}));
    assert_eq!(
        book["chapters"],
        json!([{"title": "A", "pages": 3}, {"title": "B", "pages": 0}])
    );
    // Several entries, both spellings, compared as JSON per codec.
    for gateway in &both.gateways {
        let reply = gateway
            .send(
                http::Method::GET,
                "/library/v1/shelves/1/books?labels[genre]=sf&labels.lang=en&editions[1969]=Ace&editions.2001=Gollancz",
                &[],
                "",
            )
            .await;
        let book = &reply.json()["books"][0];
        assert_eq!(
            book["labels"],
            json!({"genre": "sf", "lang": "en"}),
            "{}",
            gateway.codec
        );
        assert_eq!(
            book["editions"],
            json!({"1969": "Ace", "2001": "Gollancz"}),
            "{}",
            gateway.codec
        );
    }
    // Percent-encoded brackets, and a key with a dot inside brackets.
    let reply = both.get("/library/v1/shelves/1/books?labels%5Ba.b%5D=x").await;
    assert_eq!(reply.json()["books"][0]["labels"], json!({"a.b": "x"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_sparse_indices_are_refused_by_name() {
    let both = BothCodecs::start("");
    let refused = |path: &'static str| {
        let both = &both;
        async move {
            let reply = both.get(path).await;
            assert_eq!(reply.status, 400, "{path}: {:?}", reply.body);
            let body = reply.json();
            (
                body["message"].as_str().unwrap_or_default().to_string(),
                body["details"][0]["fieldViolations"][0]["field"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let (message, field) = refused("/library/v1/shelves/1/books?chapters[1].title=B").await;
    assert_eq!(
        message,
        "chapters: indices must be dense from 0, but [0] is missing"
    );
    assert_eq!(field, "chapters");
    let (message, _) = refused("/library/v1/shelves/1/books?editions[abc]=x").await;
    assert!(message.contains("not an int32"), "{message}");
    let (message, field) = refused("/library/v1/shelves/1/books?chapters[0].nope=1").await;
    assert!(
        message.contains("library.v1.Chapter has no field \"nope\""),
        "{message}"
    );
    assert_eq!(field, "chapters[0].nope");
    let (message, _) = refused("/library/v1/shelves/1/books?chapters.title=x").await;
    assert!(
        message.contains("field chapters is not a singular message"),
        "{message}"
    );
    let (message, _) = refused("/library/v1/shelves/1/books?chapters[x].title=x").await;
    assert!(message.contains("[x] is not an index"), "{message}");
}

/// The forms above as /openapi.json describes them on the ListBooks route: a map of scalars
/// is OpenAPI's `deepObject`; a repeated message has no OpenAPI style, which its description
/// says, with the form to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_maps_as_deep_objects() {
    let both = BothCodecs::start("");
    for gateway in &both.gateways {
        let reply = gateway.send(http::Method::GET, "/openapi.json", &[], "").await;
        assert_eq!(reply.status, 200, "{}", gateway.codec);
        assert_eq!(
            reply.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        let doc = reply.json();
        let params = doc["paths"]["/library/v1/{parent}/books"]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no ListBooks parameters", gateway.codec))
            .clone();
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{}: no parameter {name}", gateway.codec))
                .clone()
        };
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(
            names,
            ["parent", "pageSize", "format", "labels", "chapters", "editions"],
            "{}",
            gateway.codec
        );
        assert_eq!(
            param("labels"),
            json!({
                "name": "labels",
                "in": "query",
                "required": false,
                "style": "deepObject",
                "explode": true,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": "One map entry per parameter (`?labels[a]=a&labels[b]=b`); \
                    `?labels.a=a` works too."
            }),
            "{}",
            gateway.codec
        );
        assert_eq!(param("editions")["style"], "deepObject", "{}", gateway.codec);
        assert_eq!(param("editions")["explode"], true, "{}", gateway.codec);
        assert_eq!(
            param("editions")["schema"],
            json!({
                "type": "object",
                "additionalProperties": {"type": "string"},
                "propertyNames": {"pattern": "^-?[0-9]+$"}
            }),
            "{}",
            gateway.codec
        );
        assert_eq!(
            param("chapters"),
            json!({
                "name": "chapters",
                "in": "query",
                "required": false,
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/library.v1.Chapter"}},
                "description": "No OpenAPI style expresses a list of messages in a query: set \
                    one field of one element per parameter (`?chapters[0].title=a`); indices \
                    are dense from 0, in any order."
            }),
            "{}",
            gateway.codec
        );
    }
}
