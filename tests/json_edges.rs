//! proto3 JSON at the edges, as the reference implementations (Go protojson, C++, upb)
//! decide them, through both codecs (compiled pbjson and the dynamic codec over the same
//! descriptors) and in the body, the query and the path alike (issue 19): float32 rounding
//! before the range check, shortest float printing, correctly rounded doubles, open enums,
//! body errors that name the field by its JSON path, and the `$alt` system parameter. The
//! differential test (`json_differential.rs`) compares the same against Python's
//! `json_format` at random.

mod support;

use http::Method;
use protogate::pb::protogate::differential::v1::Plain;
use protogate::pb::protogate::test::v1::Scalars;
use serde_json::{Value, json};
use support::gateway::{TestGateway, dynamic_schema_config};
use support::http::{Reply, send};
use support::upstream::{Recorded, RecordingUpstream};

/// An echo upstream and a gateway in front of it, per codec.
struct Codec {
    name: &'static str,
    gateway: TestGateway,
    upstream: RecordingUpstream,
}

async fn codecs() -> Vec<Codec> {
    let mut out = Vec::new();
    for (name, config) in [("compiled", String::new()), ("dynamic", dynamic_schema_config())] {
        let upstream = RecordingUpstream::start(|call| support::upstream::Reply {
            result: Ok(call.message.clone()),
            ..support::upstream::Reply::message(&())
        })
        .await;
        let gateway = TestGateway::start(upstream.addr, &config).await;
        out.push(Codec {
            name,
            gateway,
            upstream,
        });
    }
    out
}

impl Codec {
    async fn get(&self, path: &str) -> Reply {
        send(Method::GET, &self.gateway.url(path), &[], "").await
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        let json = [("content-type", "application/json")];
        send(Method::POST, &self.gateway.url(path), &json, body.to_string()).await
    }

    /// The one message the upstream received since the last call.
    fn received(&self) -> Recorded {
        let mut calls = self.upstream.calls();
        assert_eq!(calls.len(), 1, "{}: one upstream call", self.name);
        self.upstream.clear();
        calls.remove(0)
    }
}

/// A 400 whose BadRequest names `field` with `message`, and that never reached the upstream.
fn assert_refused(codec: &Codec, reply: &Reply, field: &str, message: &str) {
    let body = json!({"code": 3, "message": message, "details": [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field, "description": message, "reason": ""}]}]});
    reply.assert_json(400, body);
    assert!(
        codec.upstream.calls().is_empty(),
        "{}: nothing reached the upstream",
        codec.name
    );
}

#[tokio::test]
async fn the_largest_float_is_accepted_and_a_larger_one_refused_everywhere() {
    for codec in codecs().await {
        let reply = codec.post("/v1/echo", r#"{"floatValue":3.4028235e+38}"#).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", codec.name);
        // Printed in the shortest form that reads back as the largest float.
        let text = String::from_utf8_lossy(&reply.body).to_string();
        assert!(
            text.contains(r#""floatValue":3.4028235e+38"#),
            "{}: {text}",
            codec.name
        );
        assert_eq!(codec.received().decode::<Scalars>().float_value, f32::MAX);
        let reply = codec.get("/v1/echo/x?floatValue=3.4028235e%2B38").await;
        assert_eq!(reply.status.as_u16(), 200, "{}", codec.name);
        assert_eq!(codec.received().decode::<Scalars>().float_value, f32::MAX);
        let reply = codec
            .get("/differential/plain/1/2/3.4028235e%2B38/1.5/true/BAR/s")
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", codec.name);
        assert_eq!(codec.received().decode::<Plain>().optional_float, f32::MAX);

        let reply = codec.post("/v1/echo", r#"{"floatValue":3.5e+38}"#).await;
        assert_refused(
            &codec,
            &reply,
            "floatValue",
            "invalid value 3.5e+38 for field floatValue: out of range for float",
        );
        let reply = codec.get("/v1/echo/x?floatValue=3.5e38").await;
        assert_refused(
            &codec,
            &reply,
            "floatValue",
            "query parameter floatValue: invalid value \"3.5e38\" for field floatValue: out of range for float",
        );
    }
}

#[tokio::test]
async fn floats_print_shortest_and_doubles_arrive_correctly_rounded() {
    for codec in codecs().await {
        let reply = codec
            .post(
                "/v1/echo",
                r#"{"floatValue":3.4e38,"doubleValue":1.2345678901234567e+100}"#,
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", codec.name);
        let text = String::from_utf8_lossy(&reply.body).to_string();
        assert!(text.contains(r#""floatValue":3.4e+38"#), "{}: {text}", codec.name);
        let sent: Scalars = codec.received().decode();
        assert_eq!(
            sent.double_value.to_bits(),
            1.2345678901234567e100f64.to_bits(),
            "{}",
            codec.name
        );
        // The same value from the query, and a float32 0.1 printed as 0.1.
        let reply = codec
            .get("/v1/echo/x?doubleValue=1.2345678901234567e%2B100&floatValue=0.1")
            .await;
        assert_eq!(reply.json()["floatValue"], json!(0.1), "{}", codec.name);
        assert_eq!(
            codec.received().decode::<Scalars>().double_value,
            1.2345678901234567e100
        );
    }
}

#[tokio::test]
async fn enums_are_open_in_the_query_and_the_path_and_print_as_numbers() {
    for codec in codecs().await {
        let reply = codec.get("/v1/echo/x?color=-3852&colors=RED,99").await;
        assert_eq!(reply.status.as_u16(), 200, "{}: {:?}", codec.name, reply.body);
        assert_eq!(
            (&reply.json()["color"], &reply.json()["colors"]),
            (&json!(-3852), &json!(["RED", 99]))
        );
        let sent: Scalars = codec.received().decode();
        assert_eq!((sent.color, sent.colors), (-3852, vec![1, 99]));
        let reply = codec.get("/differential/plain/1/2/0.5/1.5/true/99/s").await;
        assert_eq!(reply.json()["optionalNestedEnum"], json!(99), "{}", codec.name);
        assert_eq!(codec.received().decode::<Plain>().optional_nested_enum, 99);
        let reply = codec.post("/v1/echo", r#"{"color":2147483647}"#).await;
        assert_eq!(reply.json()["color"], json!(2147483647), "{}", codec.name);
        codec.received();
        let reply = codec.get("/v1/echo/x?color=2147483648").await;
        assert_refused(
            &codec,
            &reply,
            "color",
            "query parameter color: invalid value \"2147483648\" for field color: not a value of Color (one of COLOR_UNSPECIFIED, RED, GREEN, or an int32)",
        );
    }
}

#[tokio::test]
async fn body_errors_name_the_field_by_its_json_path() {
    for codec in codecs().await {
        let reply = codec
            .post("/v1/rich", r#"{"inners":[{},{"children":[{"label":5}]}]}"#)
            .await;
        assert_refused(
            &codec,
            &reply,
            "inners[1].children[0].label",
            "invalid value 5 for field label: not a string",
        );
        let reply = codec.post("/v1/rich", r#"{"counts":{"k":"north"}}"#).await;
        assert_refused(
            &codec,
            &reply,
            "counts[\"k\"]",
            "invalid value \"north\" for field counts: not an int32",
        );
        let reply = codec.post("/v1/echo", r#"{"int32Value":2147483648}"#).await;
        assert_refused(
            &codec,
            &reply,
            "int32Value",
            "invalid value 2147483648 for field int32Value: out of range for int32",
        );
        let reply = codec.post("/v1/echo", r#"{"int32Value":"north"}"#).await;
        assert_refused(
            &codec,
            &reply,
            "int32Value",
            "invalid value \"north\" for field int32Value: not an int32",
        );
    }
}

#[tokio::test]
async fn alt_json_with_int_enums_prints_enums_as_numbers() {
    for codec in codecs().await {
        let reply = codec
            .get("/v1/echo/x?color=GREEN&colors=RED&%24alt=json%3Benum-encoding%3Dint")
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}: {:?}", codec.name, reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            (&reply.json()["color"], &reply.json()["colors"]),
            (&json!(2), &json!([1])),
            "{}",
            codec.name
        );
        codec.received();
        let reply = codec.post("/v1/echo?$alt=json", r#"{"color":"RED"}"#).await;
        assert_eq!(reply.json()["color"], json!("RED"), "{}", codec.name);
        codec.received();
        // `$fields` selects reply fields (issue 25); other system parameters are refused.
        let reply = codec.get("/v1/echo/x?color=RED&$fields=color").await;
        assert_eq!(reply.status.as_u16(), 200, "{}: {:?}", codec.name, reply.body);
        assert_eq!(reply.json(), json!({"color": "RED"}), "{}", codec.name);
        codec.received();
        let reply = codec.get("/v1/echo/x?$prettyPrint=false").await;
        assert_refused(
            &codec,
            &reply,
            "$prettyPrint",
            "unknown system parameter \"$prettyPrint\": the gateway knows only $alt and $fields",
        );
        let _: Value = reply.json();
    }
}
