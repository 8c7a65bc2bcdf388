//! The proto3 JSON mapping, end to end over the test protos (`--features test-protos`): a
//! table of HTTP JSON in → the message the upstream received → JSON out, for every scalar
//! type, composite types and the well-known types. The upstream echoes what it received.
//!
//! Every case runs through both codecs: the compiled one (pbjson) and the dynamic one
//! (prost-reflect, the same descriptors loaded at run time with `--schema descriptors:`).
//! They must answer byte for byte the same, send the upstream the same bytes, and refuse the
//! same inputs; where pbjson departs from the spec (`Any`, non-finite floats, a `null`
//! `Value`) both give the spec's form.

mod support;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use support::gateway::{TestGateway, dynamic_schema_config};
use support::http::send;
use support::upstream::{RecordingUpstream, Reply};

/// The configs of the two codecs: compiled, dynamic.
fn both_codecs() -> [String; 2] {
    [String::new(), dynamic_schema_config()]
}

/// One echo upstream and gateway per codec.
struct Codecs {
    compiled: TestGateway,
    dynamic: TestGateway,
    compiled_upstream: RecordingUpstream,
    dynamic_upstream: RecordingUpstream,
}

impl Codecs {
    /// What the upstream received, asserting that both codecs sent the same bytes.
    fn calls(&self) -> Vec<support::upstream::Recorded> {
        let compiled = self.compiled_upstream.calls();
        let dynamic = self.dynamic_upstream.calls();
        let view = |calls: &[support::upstream::Recorded]| -> Vec<(String, Bytes)> {
            calls
                .iter()
                .map(|c| (c.path.clone(), c.message.clone()))
                .collect()
        };
        assert_eq!(
            view(&compiled),
            view(&dynamic),
            "the codecs sent different messages"
        );
        compiled
    }

    fn only_call(&self) -> support::upstream::Recorded {
        let mut calls = self.calls();
        assert_eq!(calls.len(), 1, "want exactly one upstream call");
        calls.remove(0)
    }
}

async fn echo_upstream() -> RecordingUpstream {
    RecordingUpstream::start(|call| Reply {
        result: Ok(call.message.clone()),
        ..Reply::message(&())
    })
    .await
}

/// An echo upstream and gateway for each codec.
async fn echo_gateway() -> Codecs {
    let compiled_upstream = echo_upstream().await;
    let dynamic_upstream = echo_upstream().await;
    codecs(compiled_upstream, dynamic_upstream).await
}

/// A gateway for each codec, in front of its upstream.
async fn codecs(compiled_upstream: RecordingUpstream, dynamic_upstream: RecordingUpstream) -> Codecs {
    Codecs {
        compiled: TestGateway::start(compiled_upstream.addr, "").await,
        dynamic: TestGateway::start(dynamic_upstream.addr, &dynamic_schema_config()).await,
        compiled_upstream,
        dynamic_upstream,
    }
}

/// Posts `body` through both codecs, asserts that they answer the same status and the same
/// bytes and sent the upstream the same message, and returns the answer.
async fn post(codecs: &Codecs, path: &str, body: &Value) -> (u16, Value) {
    let mut answers = Vec::new();
    for gateway in [&codecs.compiled, &codecs.dynamic] {
        let reply = send(
            Method::POST,
            &gateway.url(path),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await;
        answers.push((reply.status.as_u16(), reply.body.clone(), reply.json()));
    }
    let (compiled, dynamic) = (&answers[0], &answers[1]);
    assert_eq!(
        (compiled.0, &compiled.1),
        (dynamic.0, &dynamic.1),
        "{path} {body}: compiled answered {}, dynamic {}",
        String::from_utf8_lossy(&compiled.1),
        String::from_utf8_lossy(&dynamic.1)
    );
    codecs.calls();
    (compiled.0, compiled.2.clone())
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
    let gateway = echo_gateway().await;
    let upstream = &gateway;
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
    let gateway = echo_gateway().await;
    // (input, the members of the output that show the canonical form)
    let cases = [
        (json!({"int64Value": 5}), json!({"int64Value": "5"})),
        (json!({"int32Value": "7"}), json!({"int32Value": 7})),
        (json!({"color": 2}), json!({"color": "GREEN"})),
        (
            json!({"int32_value": 1, "string_value": "proto names"}),
            json!({"int32Value": 1, "stringValue": "proto names"}),
        ),
        // Non-finite floats as the spec writes them, both ways (pbjson alone prints null).
        (
            json!({"doubleValue": "NaN", "floatValue": "-Infinity"}),
            json!({"doubleValue": "NaN", "floatValue": "-Infinity"}),
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
    let gateway = echo_gateway().await;
    let upstream = &gateway;
    for (input, needle) in [
        (json!({"int32Value": 2147483648i64}), "int32Value"),
        (json!({"uint32Value": -1}), "uint32Value"),
        (json!({"color": "PURPLE"}), "PURPLE"),
        (json!({"bytesValue": "%%%"}), "bytesValue"),
        (json!({"boolValue": "yes"}), "boolValue"),
        (json!({"int64Value": "1e3x"}), "int64Value"),
        (json!({"int64Value": "1.5e0"}), "int64Value"),
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
    let gateway = echo_gateway().await;
    let upstream = &gateway;
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

/// proto3 JSON: `null` means the default, except for `google.protobuf.Value`, where it is the
/// null value (pbjson alone would make it unset).
#[tokio::test]
async fn null_means_default_except_for_value() {
    let gateway = echo_gateway().await;
    let upstream = &gateway;
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
    assert_eq!(out["anything"], Value::Null, "{out}");
    assert!(out.get("anything").is_some(), "the null value is printed: {out}");
    assert_eq!(
        out["inner"],
        json!({"label": "", "children": [{"label": "", "children": []}]})
    );
    assert_eq!(out["counts"], json!({}));
    let sent: Rich = upstream.calls()[1].decode();
    assert_eq!(
        sent.anything.and_then(|v| v.kind),
        Some(pbjson_types::value::Kind::NullValue(0)),
        "a null Value reaches the upstream as the null value"
    );
}

/// `Any` in the spec's form, both ways: `@type` and the packed message's own fields, resolved
/// through the descriptors (pbjson alone would want `typeUrl` and base64 `value`).
#[tokio::test]
async fn any_uses_the_spec_form_with_type() {
    let gateway = echo_gateway().await;
    let upstream = &gateway;
    let detail = json!({"detail":{"@type":"type.googleapis.com/protogate.test.v1.Book",
        "name":"shelves/1/books/2","title":"T","cover":"GREEN","pages":"300"}});
    let (status, out) = post(&gateway, "/v1/rich", &detail).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["detail"], detail["detail"]);
    let sent: Rich = upstream.only_call().decode();
    let any = sent.detail.expect("detail sent");
    assert_eq!(any.type_url, "type.googleapis.com/protogate.test.v1.Book");
    let book: Book = prost::Message::decode(any.value.as_ref()).expect("a Book inside");
    assert_eq!((book.title.as_str(), book.pages), ("T", 300));
    // pbjson's own form is not the spec's: refused by both codecs alike.
    let (status, out) = post(
        &gateway,
        "/v1/rich",
        &json!({"detail":{"typeUrl":"type.googleapis.com/protogate.test.v1.Book","value":"EgFU"}}),
    )
    .await;
    assert_eq!(status, 400, "{out}");
    // An Any whose type the schema does not know cannot be read either.
    let (status, _) = post(
        &gateway,
        "/v1/rich",
        &json!({"detail":{"@type":"type.googleapis.com/x.Unknown"}}),
    )
    .await;
    assert_eq!(status, 400);
}

/// An enum number the gateway does not know (added upstream later) must not turn a good
/// reply into an error: it prints as a number.
#[tokio::test]
async fn unknown_enum_number_from_upstream_still_succeeds() {
    let reply = || {
        RecordingUpstream::start(|_| {
            Reply::message(&Scalars {
                color: 99,
                colors: vec![1, 42],
                string_value: "ok".into(),
                ..Default::default()
            })
        })
    };
    let gateway = codecs(reply().await, reply().await).await;
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
    for config in both_codecs() {
        every_http_rule_form_binds_with(&config).await;
    }
}

async fn every_http_rule_form_binds_with(config: &str) {
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
    let gateway = TestGateway::start(upstream.addr, config).await;
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
