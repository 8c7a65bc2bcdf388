//! What the document says about methods that stream (design §3, issue 22): a request body
//! that is a stream of messages (NDJSON, a JSON array, or one object) for client-streaming
//! and bidirectional methods, and the sentences every streaming operation's description
//! ends with, naming its shape and how it is carried, the WebSocket contract included. The reply side of a stream is
//! `operation.rs`'s `streaming_response`.

use serde_json::{Value, json};

use crate::method::MethodKind;
use crate::routing::Route;

/// The request body of a method that takes a stream of `message` (its schema).
pub(super) fn request_body(route: &Route, message: Value) -> Value {
    json!({
        "description": format!(
            "The stream of {} request messages, each sent upstream as soon as it is read: \
             one per line (application/x-ndjson), one per element of a JSON array, or one \
             JSON object, the only message. A bad message N is answered with 400 naming \
             `line N` or `element N`, and the upstream call is cancelled.",
            route.input.full_name()
        ),
        "required": false,
        "content": {
            "application/x-ndjson": {
                "schema": { "type": "string", "description": "One request message as proto3 JSON per line." }
            },
            "application/json": {
                "schema": { "oneOf": [ { "type": "array", "items": message }, message ] }
            }
        }
    })
}

/// The sentence that ends a streaming operation's description, or `None` for a unary one.
pub(super) fn shape_note(route: &Route) -> Option<String> {
    let note = match route.method.kind {
        MethodKind::Unary => return None,
        MethodKind::ServerStreaming if route.method.raw_reply => {
            "Server streaming of google.api.HttpBody: one response of the replies' bytes, \
             written as they arrive; a failure after the first byte ends the response \
             abnormally (an HTTP/2 reset, or an HTTP/1.1 body without its last chunk)."
        }
        MethodKind::ClientStreaming if route.raw_body.is_some() => {
            "Client streaming of google.api.HttpBody: the body is the upload, sent upstream in \
             messages of `transcoding.upload_chunk_bytes` as it arrives; the answer is the one \
             reply."
        }
        MethodKind::ServerStreaming => {
            "Server streaming: the replies come as NDJSON, SSE or a JSON array, as `Accept` asks."
        }
        MethodKind::ClientStreaming => {
            "Client streaming: the body is the stream of request messages; the answer is the \
             one reply."
        }
        MethodKind::BidiStreaming => {
            "Bidirectional streaming: the body is the stream of request messages; the replies \
             come as NDJSON, SSE or a JSON array, as `Accept` asks, while the body is still \
             being sent where the connection allows it (HTTP/2, or an HTTP/1.1 client that \
             reads while it writes)."
        }
    };
    Some(format!("{note} {WEBSOCKET}"))
}

/// The WebSocket contract, in every streaming operation's description (issue 22).
const WEBSOCKET: &str = "Also a WebSocket: `GET` this path with `Upgrade: websocket` (the \
    `Origin` must be in `[cors] allowed_origins`); each text frame sent is one request message \
    as proto3 JSON and an empty text frame half-closes the request stream; each reply is one \
    text frame; the socket closes with 1000 when the call ends OK, else 4000 + the gRPC code \
    (4005 for NOT_FOUND) with the status message as the reason.";
