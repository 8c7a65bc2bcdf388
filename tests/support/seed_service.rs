//! MyService on the recording tonic upstream, written as the Python service and the grpc-go
//! server are (`services/users`, `clients/go/server`): the same three users, unknown ids
//! skipped, duplicates repeated, and the same test hooks (`x-test-delay-ms`,
//! `x-test-fail-code`, `x-test-fail-details`, `x-test-echo`, `x-served-by`), so that the
//! interop matrix (`tests/interop.rs`) runs one suite against all three. It also serves the
//! test protos' `StreamItems`, which the other two do not have.
//!
//! One thing it cannot do: tonic's server API has no trailing metadata for a successful
//! unary reply, so `x-echo-trailer` is not sent.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use protogate::pb::google::rpc;
use protogate::pb::protogate::test::v1::{Item, StreamRequest};
use protogate::pb::protogate_unpackaged::{User, UserReply, UserReq};
use tonic::{Code, Status};

use super::upstream::{Recorded, Reply};

fn user(id: i32) -> Option<User> {
    let (name, age, email) = match id {
        1 => ("Alice", 30, "alice@example.com"),
        2 => ("Bob", 25, "bob@example.com"),
        3 => ("Carol", 41, "carol@example.com"),
        _ => return None,
    };
    Some(User {
        name: name.into(),
        age,
        email: email.into(),
    })
}

/// The `google.rpc.Status` the hooks attach with `x-test-fail-details`.
pub fn injected_details(code: i32) -> Bytes {
    rpc::Status {
        code,
        message: "injected failure".into(),
        details: vec![pbjson_types::Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: rpc::ErrorInfo {
                reason: "INJECTED".into(),
                domain: "users.example".into(),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        }],
    }
    .encode_to_vec()
    .into()
}

/// The script for `RecordingUpstream::start`: MyService with the test hooks.
pub fn answer(call: &Recorded) -> Reply {
    let mut reply = match call.path.as_str() {
        "/MyService/Health" => Reply::message(&()),
        "/MyService/User" => {
            let request: UserReq = call.decode();
            Reply::message(&UserReply {
                message: "success".into(),
                data: request.user_i_ds.iter().filter_map(|id| user(*id)).collect(),
            })
        }
        "/protogate.test.v1.Everything/StreamItems" => {
            let request: StreamRequest = call.decode();
            let items: Vec<Item> = (1..=request.count)
                .map(|index| Item {
                    index,
                    text: format!("item {index}"),
                })
                .collect();
            Reply::stream(&items, Duration::ZERO)
        }
        other => Reply::status(Status::unimplemented(format!("no method {other}"))),
    };
    if let Some(ms) = call.meta("x-test-delay-ms") {
        reply = reply.after(Duration::from_millis(ms.parse().expect("x-test-delay-ms")));
    }
    reply = reply.with_metadata("x-served-by", "tonic");
    if let Some(echo) = call.meta("x-test-echo") {
        reply = reply.with_metadata("x-echo", echo);
    }
    if let Some(code) = call.meta("x-test-fail-code") {
        let code: i32 = code.parse().expect("x-test-fail-code");
        let details = match call.meta("x-test-fail-details") {
            Some(_) => injected_details(code),
            None => Bytes::new(),
        };
        reply.result = Err(Status::with_details(
            Code::from_i32(code),
            "injected failure",
            details,
        ));
    }
    reply
}
