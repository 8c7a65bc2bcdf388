//! The HTTP rendering of a server-streaming call's messages (the call itself is
//! `codec::server_streaming`). `Accept` picks the format:
//! `application/x-ndjson` (the default) gives `{"result":…}` lines and a final
//! `{"error":…}` line on failure, as grpc-gateway does; `text/event-stream` gives
//! Server-Sent Events (`data:` per message, `event: error` on failure) for `EventSource`;
//! `application/json` gives one JSON array, buffered, or a plain error response.
//! Messages are written as they arrive. When the client goes away the body is dropped, and
//! with it the upstream stream, which cancels the call upstream.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::StreamExt;
use http::{HeaderMap, HeaderValue, header};

use crate::codec::StreamReply;
use crate::error::GatewayError;

/// The most a stream answered as one JSON array (`Accept: application/json`) may hold.
pub const MAX_JSON_ARRAY_BYTES: usize = 16 * 1024 * 1024;

/// How the client asked to receive a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    NdJson,
    EventStream,
    JsonArray,
}

impl StreamFormat {
    /// Picks the format from `Accept`; NDJSON unless the client prefers SSE or a JSON array.
    pub fn from_headers(headers: &HeaderMap) -> StreamFormat {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let wants = |media: &str| {
            accept
                .split(',')
                .any(|part| part.split(';').next().is_some_and(|m| m.trim() == media))
        };
        if wants("text/event-stream") {
            StreamFormat::EventStream
        } else if wants("application/x-ndjson") || !wants("application/json") {
            StreamFormat::NdJson
        } else {
            StreamFormat::JsonArray
        }
    }
}

/// Renders the stream as an HTTP response in `format`.
/// Upstream metadata named in `plain` (`transcoding.response_headers`) comes back as plain
/// headers.
pub async fn respond(
    reply: StreamReply,
    format: StreamFormat,
    plain: &[http::HeaderName],
) -> Result<Response, GatewayError> {
    let (content_type, body) = match format {
        StreamFormat::JsonArray => {
            // Buffered by definition, so bounded: a long stream belongs in NDJSON or SSE.
            let mut out = vec![b'['];
            let mut messages = reply.messages;
            while let Some(message) = messages.next().await {
                let message = message?;
                if out.len() + message.len() + 2 > MAX_JSON_ARRAY_BYTES {
                    return Err(GatewayError::bad_upstream_reply(format!(
                        "the stream exceeds {MAX_JSON_ARRAY_BYTES} bytes as one JSON array; \
                         ask for application/x-ndjson or text/event-stream instead"
                    )));
                }
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(&message);
            }
            out.push(b']');
            ("application/json", Body::from(out))
        }
        StreamFormat::NdJson => (
            "application/x-ndjson",
            Body::from_stream(reply.messages.map(ndjson_line)),
        ),
        StreamFormat::EventStream => (
            "text/event-stream",
            Body::from_stream(reply.messages.map(sse_event)),
        ),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    crate::metadata::to_http_with(&reply.metadata, headers, plain);
    if format != StreamFormat::JsonArray {
        // The upstream's own cache-control (allow-listed) wins over the stream's default.
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
        // Tells nginx-style proxies in front of us not to buffer the stream.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    Ok(response)
}

fn ndjson_line(message: Result<Vec<u8>, GatewayError>) -> Result<Bytes, Infallible> {
    let (key, json) = match message {
        Ok(json) => ("result", json),
        Err(err) => ("error", serde_json::to_vec(&err.body()).unwrap_or_default()),
    };
    let mut line = Vec::with_capacity(json.len() + key.len() + 6);
    line.extend_from_slice(b"{\"");
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
    line.extend_from_slice(&json);
    line.extend_from_slice(b"}\n");
    Ok(Bytes::from(line))
}

fn sse_event(message: Result<Vec<u8>, GatewayError>) -> Result<Bytes, Infallible> {
    // JSON never contains a raw newline, so each message fits one `data:` line.
    let (prefix, json): (&[u8], Vec<u8>) = match message {
        Ok(json) => (b"data: ", json),
        Err(err) => (
            b"event: error\ndata: ",
            serde_json::to_vec(&err.body()).unwrap_or_default(),
        ),
    };
    let mut event = Vec::with_capacity(json.len() + prefix.len() + 2);
    event.extend_from_slice(prefix);
    event.extend_from_slice(&json);
    event.extend_from_slice(b"\n\n");
    Ok(Bytes::from(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> StreamFormat {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).expect("header"));
        StreamFormat::from_headers(&headers)
    }

    #[test]
    fn accept_picks_the_format() {
        assert_eq!(
            StreamFormat::from_headers(&HeaderMap::new()),
            StreamFormat::NdJson
        );
        assert_eq!(accept("*/*"), StreamFormat::NdJson);
        assert_eq!(accept("application/x-ndjson"), StreamFormat::NdJson);
        assert_eq!(accept("text/event-stream"), StreamFormat::EventStream);
        assert_eq!(accept("application/json"), StreamFormat::JsonArray);
        assert_eq!(
            accept("application/json, application/x-ndjson;q=0.9"),
            StreamFormat::NdJson
        );
        assert_eq!(
            accept("text/html, text/event-stream;q=0.5"),
            StreamFormat::EventStream
        );
    }

    #[test]
    fn lines_and_events() {
        let ok = ndjson_line(Ok(b"{\"a\":1}".to_vec())).expect("infallible");
        assert_eq!(&ok[..], b"{\"result\":{\"a\":1}}\n");
        let err = ndjson_line(Err(GatewayError::bad_request("x"))).expect("infallible");
        assert_eq!(
            &err[..],
            b"{\"error\":{\"code\":3,\"message\":\"x\",\"details\":[]}}\n"
        );
        let event = sse_event(Ok(b"{\"a\":1}".to_vec())).expect("infallible");
        assert_eq!(&event[..], b"data: {\"a\":1}\n\n");
        let event = sse_event(Err(GatewayError::bad_request("x"))).expect("infallible");
        assert_eq!(
            &event[..],
            b"event: error\ndata: {\"code\":3,\"message\":\"x\",\"details\":[]}\n\n"
        );
    }
}
