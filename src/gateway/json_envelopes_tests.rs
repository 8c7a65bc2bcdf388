//! Unit tests of `json_envelopes.rs`: messages transcoded both ways whatever the chunking,
//! and the refusals that name what is wrong.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use super::*;
use crate::method::MethodTable;
use crate::pb::protogate_unpackaged::{User, UserReply, UserReq};

fn user_method() -> Arc<Method> {
    let pool = crate::descriptors::load().expect("descriptors");
    let table = MethodTable::compiled(&pool).expect("methods");
    table.find("MyService.User").expect("MyService.User").clone()
}

#[test]
fn request_messages_become_protobuf_however_the_bytes_are_cut() {
    let stream = [grpc::envelope(0, br#"{"userIDs":[1,2]}"#), grpc::envelope(0, b"")].concat();
    let expected = [
        grpc::frame(&UserReq {
            user_i_ds: vec![1, 2],
        }),
        grpc::frame(&UserReq::default()),
    ]
    .concat();
    for cut in 0..stream.len() {
        let mut json = JsonEnvelopes::requests(user_method(), None, 1024);
        let mut out = json.feed(&stream[..cut]).expect("first part").to_vec();
        out.extend_from_slice(&json.feed(&stream[cut..]).expect("second part"));
        assert_eq!(out, expected, "cut at {cut}");
        json.finish().expect("ends between messages");
    }
}

#[test]
fn gzip_request_messages_are_inflated() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(br#"{"userIDs":[7]}"#).expect("gzip");
    let compressed = gz.finish().expect("gzip");
    let mut json = JsonEnvelopes::requests(user_method(), Some(HeaderValue::from_static("gzip")), 1024);
    let out = json.feed(&grpc::envelope(1, &compressed)).expect("inflates");
    assert_eq!(out, grpc::frame(&UserReq { user_i_ds: vec![7] }));
    let mut plain = JsonEnvelopes::requests(user_method(), None, 1024);
    let err = plain
        .feed(&grpc::envelope(1, &compressed))
        .expect_err("no encoding named");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[test]
fn bad_json_in_a_request_message_is_invalid_argument_naming_the_field() {
    let mut json = JsonEnvelopes::requests(user_method(), None, 1024);
    let err = json
        .feed(&grpc::envelope(0, br#"{"userIDs":[1],"nope":2}"#))
        .expect_err("unknown field");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("nope"), "{}", err.message());
    let mut json = JsonEnvelopes::requests(user_method(), None, 1024);
    let err = json
        .feed(&grpc::envelope(0, br#"{"userIDs":["one"]}"#))
        .expect_err("not an int32");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.message(),
        r#"invalid value "one" for field userIDs: not an int32"#
    );
    let mut json = JsonEnvelopes::requests(user_method(), None, 1024);
    let err = json.feed(&grpc::envelope(0, b"{not json")).expect_err("not JSON");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let mut json = JsonEnvelopes::requests(user_method(), None, 1024);
    json.feed(&grpc::envelope(0, b"{}")[..6])
        .expect("a partial message waits");
    assert_eq!(
        json.finish().expect_err("cut").message(),
        "the request body ends inside a message"
    );
}

#[test]
fn reply_messages_become_json_envelopes() {
    let reply = UserReply {
        message: "success".into(),
        data: vec![User {
            name: "Alice".into(),
            age: 30,
            email: "a@example.com".into(),
        }],
    };
    let framed = grpc::frame(&reply);
    let mut json = JsonEnvelopes::replies(user_method(), 1024);
    assert_eq!(json.feed(&framed[..3]).expect("partial"), Bytes::new());
    let out = json.feed(&framed[3..]).expect("whole");
    assert_eq!(out[0], 0);
    let body: serde_json::Value = serde_json::from_slice(&out[5..]).expect("JSON");
    assert_eq!(body["data"][0]["name"], "Alice");
    assert_eq!(body["message"], "success");
    assert_eq!(
        out.len(),
        5 + usize::try_from(u32::from_be_bytes([out[1], out[2], out[3], out[4]])).expect("len")
    );
    // A compressed reply though identity was asked for: the upstream's fault.
    let err = json
        .feed(&grpc::envelope(1, &reply.encode_to_vec()))
        .expect_err("compressed");
    assert_eq!(err.fault(), crate::error::Fault::Upstream);
}
