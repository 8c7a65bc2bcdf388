//! The proto3 JSON mapping, end to end over the test protos (`--features test-protos`): a
//! table of HTTP JSON in → the message the upstream received → JSON out, for every scalar
//! type, composite types and the well-known types. The upstream echoes what it received.
//! Where pbjson deviates from the spec, the expected output pins today's behaviour and the
//! README lists the deviation.

mod support;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::gateway::TestGateway;
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

async fn echo_gateway() -> (RecordingUpstream, TestGateway) {
    let upstream = RecordingUpstream::start(|call| Reply {
        result: Ok(call.message.clone()),
        ..Reply::message(&())
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    (upstream, gateway)
}

async fn post(gateway: &TestGateway, path: &str, body: &Value) -> (u16, Value) {
    let reply = send(
        Method::POST,
        &gateway.url(path),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    let json = reply.json();
    (reply.status.as_u16(), json)
}

use protogate::pb::protogate::test::v1::{
    Book, GetBookRequest, ListFilesRequest, Rich, Scalars, UpdateBookRequest,
};

/// Every scalar, set to a value that shows its JSON form.
fn all_scalars_json() -> Value {
    json!({"doubleValue":1.5,"floatValue":2.5,"int32Value":-3,"int64Value":"9007199254740993",
        "uint32Value":4,"uint64Value":"18446744073709551615","sint32Value":-5,"sint64Value":"-6",
        "fixed32Value":7,"fixed64Value":"8","sfixed32Value":-9,"sfixed64Value":"-10","boolValue":true,
        "stringValue":"h\u{e9}llo","bytesValue":"AQID","color":"RED","int64List":["1","-2"],
        "colors":["GREEN","RED"],"maybe":0})
}

#[tokio::test]
async fn every_scalar_round_trips() {
    let (upstream, gateway) = echo_gateway().await;
    let (status, out) = post(&gateway, "/v1/echo", &all_scalars_json()).await;
    assert_eq!((status, out), (200, all_scalars_json()));
    let sent: Scalars = upstream.only_call().decode();
    assert_eq!(
        sent.int64_value, 9_007_199_254_740_993,
        "int64 beyond 2^53 survives as a string"
    );
    assert_eq!(sent.uint64_value, u64::MAX);
    assert_eq!(sent.bytes_value, vec![1u8, 2, 3]);
    assert_eq!(sent.maybe, Some(0), "proto3 optional keeps presence");
}

#[tokio::test]
async fn lenient_inputs_print_canonically() {
    let (_upstream, gateway) = echo_gateway().await;
    // (input, the members of the output that show the canonical form)
    let cases = [
        (json!({"int64Value": 5}), json!({"int64Value": "5"})),
        (json!({"int32Value": "7"}), json!({"int32Value": 7})),
        (json!({"color": 2}), json!({"color": "GREEN"})),
        (
            json!({"int32_value": 1, "string_value": "proto names"}),
            json!({"int32Value": 1, "stringValue": "proto names"}),
        ),
        // Accepted in; pbjson prints non-finite floats as null (spec: "NaN", "-Infinity").
        // Pinned here; listed in the README.
        (
            json!({"doubleValue": "NaN", "floatValue": "-Infinity"}),
            json!({"doubleValue": null, "floatValue": null}),
        ),
        (json!({"bytesValue": "-_8="}), json!({"bytesValue": "+/8="})),
        (json!({"maybe": null}), json!({})),
    ];
    for (input, want) in cases {
        let (status, out) = post(&gateway, "/v1/echo", &input).await;
        assert_eq!(status, 200, "{input}: {out}");
        for (key, value) in want.as_object().expect("object") {
            assert_eq!(&out[key], value, "{input} → {key}");
        }
    }
    let (_, out) = post(&gateway, "/v1/echo", &json!({"maybe": null})).await;
    assert!(out.get("maybe").is_none(), "unset optional is omitted: {out}");
}

#[tokio::test]
async fn bad_values_are_400_naming_the_problem() {
    let (upstream, gateway) = echo_gateway().await;
    for (input, needle) in [
        (json!({"int32Value": 2147483648i64}), "int32Value"),
        (json!({"uint32Value": -1}), "uint32Value"),
        (json!({"color": "PURPLE"}), "PURPLE"),
        (json!({"bytesValue": "%%%"}), "bytesValue"),
        (json!({"boolValue": "yes"}), "boolValue"),
        (json!({"int64Value": "1e3"}), "int64Value"),
    ] {
        let (status, out) = post(&gateway, "/v1/echo", &input).await;
        assert_eq!(status, 400, "{input}");
        let message = out["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle) || message.contains("invalid"),
            "{input}: {message}"
        );
    }
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn composite_and_well_known_types_round_trip() {
    let (upstream, gateway) = echo_gateway().await;
    let input = json!({"inner":{"label":"a","children":[{"label":"b"}]},"counts":{"x":1},
        "byId":{"7":{"label":"seven"}},"text":"hi","at":"2024-01-02T03:04:05.123Z","took":"1.5s",
        "wrappedInt":5,"wrappedString":"s","wrappedBool":false,"attributes":{"k":[1,"two",null]},
        "anything":{"a":true},"mask":"a.b,updateMask","nothing":{},"list":[1,"x"]});
    let (status, out) = post(&gateway, "/v1/rich", &input).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!({"inner":{"label":"a","children":[{"label":"b","children":[]}]},"inners":[],"counts":{"x":1},
            "byId":{"7":{"label":"seven","children":[]}},"at":"2024-01-02T03:04:05.123Z","took":"1.500s",
            "wrappedInt":5,"wrappedString":"s","wrappedBool":false,"attributes":{"k":[1.0,"two",null]},
            "anything":{"a":true},"mask":"a.b,updateMask","nothing":{},"list":[1.0,"x"],"text":"hi"})
    );
    let sent: Rich = upstream.only_call().decode();
    assert_eq!(
        sent.at.map(|t| (t.seconds, t.nanos)),
        Some((1_704_164_645, 123_000_000))
    );
    assert_eq!(
        sent.mask.map(|m| m.paths),
        Some(vec!["a.b".to_string(), "update_mask".to_string()])
    );
    assert_eq!(sent.by_id.get(&7).map(|i| i.label.as_str()), Some("seven"));
}

/// proto3 JSON: `null` means the default. (For `google.protobuf.Value` it should be the null
/// value; pbjson makes it unset.)
#[tokio::test]
async fn null_means_default_except_for_value() {
    let (upstream, gateway) = echo_gateway().await;
    let (status, out) = post(
        &gateway,
        "/v1/echo",
        &json!({"doubleValue": null, "color": null, "int64List": null, "stringValue": "x"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (
            out["doubleValue"].clone(),
            out["color"].clone(),
            out["stringValue"].clone()
        ),
        (json!(0.0), json!("COLOR_UNSPECIFIED"), json!("x"))
    );
    let (status, out) = post(
        &gateway,
        "/v1/rich",
        &json!({"anything": null, "inner": {"label": null, "children": [{"label": null}]}, "counts": {"a": null}, "at": null}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert!(out.get("anything").is_none(), "{out}");
    assert_eq!(
        out["inner"],
        json!({"label": "", "children": [{"label": "", "children": []}]})
    );
    assert_eq!(out["counts"], json!({}));
    let sent: Rich = upstream.calls()[1].decode();
    // pbjson reads a null `google.protobuf.Value` as unset rather than as the null value
    // (a deviation, pinned here and listed in the README).
    assert_eq!(sent.anything, None);
}

/// pbjson does not resolve `Any` through a type registry: it prints `typeUrl` and base64
/// `value` instead of `@type` and the message's own fields. Pinned here; see the README.
#[tokio::test]
async fn any_uses_pbjson_form_pinned() {
    let (_upstream, gateway) = echo_gateway().await;
    let detail = json!({"detail":{"typeUrl":"type.googleapis.com/protogate.test.v1.Book","value":"EgFU"}});
    let (status, out) = post(&gateway, "/v1/rich", &detail).await;
    assert_eq!(status, 200);
    assert_eq!(out["detail"], detail["detail"]);
}

/// An enum number the gateway does not know (added upstream later) must not turn a good
/// reply into an error: it prints as a number.
#[tokio::test]
async fn unknown_enum_number_from_upstream_still_succeeds() {
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&Scalars {
            color: 99,
            colors: vec![1, 42],
            string_value: "ok".into(),
            ..Default::default()
        })
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let (status, out) = post(&gateway, "/v1/echo", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (out["color"].clone(), out["colors"].clone()),
        (json!(99), json!(["RED", 42]))
    );
    assert_eq!(out["stringValue"], "ok");
    assert_eq!(
        out["int64Value"], "0",
        "the fallback keeps 64-bit integers as strings and emits defaults"
    );
}

#[tokio::test]
async fn every_http_rule_form_binds() {
    let upstream = RecordingUpstream::start(|call| match call.path.rsplit('/').next().unwrap_or_default() {
        "GetBook" | "PublishBook" | "UpdateBook" | "ListFiles" => Reply::message(&Book {
            name: "shelves/1/books/2".into(),
            title: "T".into(),
            cover: 2,
            pages: 300,
        }),
        "Echo" => Reply {
            result: Ok(call.message.clone()),
            ..Reply::message(&())
        },
        _ => Reply::message(&()),
    })
    .await;
    let gateway = TestGateway::start(upstream.addr, "").await;
    let book = json!({"name":"shelves/1/books/2","title":"T","cover":"GREEN","pages":"300"});
    let json_ct = [("content-type", "application/json")];

    let reply = send(
        Method::GET,
        &gateway.url("/v1/shelves/1/books/2?withReviews=true"),
        &[],
        Bytes::new(),
    )
    .await;
    reply.assert_json(200, book.clone());
    assert_eq!(
        upstream.calls()[0].decode::<GetBookRequest>(),
        GetBookRequest {
            name: "shelves/1/books/2".into(),
            with_reviews: true
        }
    );

    let reply = send(
        Method::PATCH,
        &gateway.url("/v1/shelves/1/books/2?updateMask=title"),
        &json_ct,
        r#"{"title":"T"}"#,
    )
    .await;
    reply.assert_json(200, book.clone());
    let update: UpdateBookRequest = upstream.calls()[1].decode();
    assert_eq!(
        update.book.map(|b| (b.name, b.title)),
        Some(("shelves/1/books/2".into(), "T".into()))
    );
    assert_eq!(
        update.update_mask.map(|m| m.paths),
        Some(vec!["title".to_string()])
    );

    let reply = send(
        Method::PUT,
        &gateway.url("/v1/books/b7"),
        &json_ct,
        r#"{"pages":"12"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        upstream.calls()[2]
            .decode::<UpdateBookRequest>()
            .book
            .map(|b| (b.name, b.pages)),
        Some(("b7".into(), 12))
    );

    let reply = send(
        Method::POST,
        &gateway.url("/v1/shelves/1/books/2:publish"),
        &json_ct,
        "{}",
    )
    .await;
    reply.assert_json(200, json!("T"));
    assert_eq!(
        upstream.calls()[3].path,
        "/protogate.test.v1.Everything/PublishBook"
    );

    let reply = send(
        Method::DELETE,
        &gateway.url("/v1/shelves/1/books/2"),
        &[],
        Bytes::new(),
    )
    .await;
    reply.assert_json(200, json!({}));

    let reply = send(
        Method::HEAD,
        &gateway.url("/v1/files/a/b/c.txt"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.calls()[5].decode::<ListFilesRequest>().path, "a/b/c.txt");

    let reply = send(
        Method::GET,
        &gateway.url("/v1/echo/hi%20there?int64Value=5&colors=RED,GREEN&boolValue=true"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let sent: Scalars = upstream.calls()[6].decode();
    assert_eq!(
        (
            sent.string_value.as_str(),
            sent.int64_value,
            sent.colors,
            sent.bool_value
        ),
        ("hi there", 5, vec![1, 2], true)
    );
}
