//! Connect's streaming protocol, `application/connect+proto` and `application/connect+json`:
//! the request's envelopes and the reply's have gRPC's framing (a flags byte, a big-endian
//! length, the message), so the call is relayed like gRPC (`passthrough.rs`; `+json`
//! messages transcoded one by one through the method's codec, `json_envelopes.rs`), and
//! only its end changes form: the upstream's status and trailing metadata become Connect's
//! end-of-stream envelope (flag `0x02`, then `{"error":{…},"metadata":{…}}` JSON), in an
//! answer that is HTTP 200 whatever the outcome. `connect-timeout-ms` is the deadline,
//! `connect-content-encoding` / `connect-accept-encoding` name the message compression.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message as _;
use serde_json::{Map, Value, json};
use std::sync::Arc;

use super::Gateway;
use super::connect_error::code_name;
use super::passthrough::{self, Web};
use crate::error::GatewayError;
use crate::schema::Schema;

/// `Some(json)` for Connect's streaming content types (`application/connect+proto`,
/// `application/connect+json`), `None` otherwise.
pub(super) fn is_connect_stream(content_type: &[u8]) -> Option<bool> {
    let base = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if base.eq_ignore_ascii_case(b"application/connect+proto") {
        Some(false)
    } else if base.eq_ignore_ascii_case(b"application/connect+json") {
        Some(true)
    } else {
        None
    }
}

/// Serves one Connect streaming call; `label` receives the method's gRPC path.
pub(super) async fn serve(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/connect+proto"));
    let json = is_connect_stream(content_type.as_bytes()).unwrap_or(false);
    let web = Web {
        text: false,
        json,
        content_type,
        connect: true,
    };
    passthrough::serve_web(gateway, schema, request, label, web).await
}

/// Connect's end-of-stream envelope for gRPC trailers (or a trailers-only head): the error
/// when `grpc-status` is not 0 (code by name, the percent-decoded message, the details of
/// `grpc-status-details-bin`), and the rest as metadata.
pub(super) fn end_stream(trailers: &HeaderMap) -> Bytes {
    let code = trailers
        .get("grpc-status")
        .map_or(tonic::Code::Unknown, |v| tonic::Code::from_bytes(v.as_bytes()));
    let mut end = Map::new();
    if code != tonic::Code::Ok {
        let mut error = json!({ "code": code_name(code) });
        if let Some(message) = trailers.get("grpc-message") {
            let message = percent_encoding::percent_decode(message.as_bytes()).decode_utf8_lossy();
            error["message"] = Value::from(message.as_ref());
        }
        let details = trailers
            .get("grpc-status-details-bin")
            .and_then(|v| details_engine().decode(v.as_bytes()).ok())
            .and_then(|bytes| crate::pb::google::rpc::Status::decode(&bytes[..]).ok());
        if let Some(status) = details.filter(|s| !s.details.is_empty()) {
            let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
            error["details"] = status
                .details
                .iter()
                .map(|any| {
                    let kind = any.type_url.rsplit('/').next().unwrap_or_default();
                    json!({ "type": kind, "value": engine.encode(&any.value) })
                })
                .collect();
        }
        end.insert("error".to_string(), error);
    }
    let mut metadata = Map::new();
    for (name, value) in trailers {
        if matches!(
            name.as_str(),
            "grpc-status" | "grpc-message" | "grpc-status-details-bin"
        ) {
            continue;
        }
        if let (Ok(value), Value::Array(values)) = (
            value.to_str(),
            metadata
                .entry(name.as_str().to_string())
                .or_insert_with(|| Value::Array(Vec::new())),
        ) {
            values.push(Value::from(value));
        }
    }
    if !metadata.is_empty() {
        end.insert("metadata".to_string(), Value::Object(metadata));
    }
    crate::grpc::envelope(0x02, Value::Object(end).to_string().as_bytes())
}

/// Standard base64, padded or not (gRPC sends `-bin` values unpadded; some servers pad).
fn details_engine() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}

/// The gateway's refusal of a Connect stream: HTTP 200 and the error in the end-of-stream
/// envelope (the protocol's form), except for the HTTP-level refusals (415, 405).
pub(super) fn refusal(err: GatewayError, content_type: HeaderValue) -> Response {
    if matches!(
        err.http_status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::METHOD_NOT_ALLOWED
    ) {
        return super::connect_error::error_response(err);
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(err.code() as i32));
    let message =
        percent_encoding::utf8_percent_encode(err.message(), percent_encoding::CONTROLS).to_string();
    if let Ok(message) = HeaderValue::try_from(message) {
        trailers.insert("grpc-message", message);
    }
    let body = end_stream(&trailers);
    let (mut parts, _) = err.into_response().into_parts();
    parts.status = StatusCode::OK;
    parts.headers = HeaderMap::new();
    parts.headers.insert(header::CONTENT_TYPE, content_type);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_stream_carries_the_error_and_the_metadata() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("5"));
        trailers.insert("grpc-message", HeaderValue::from_static("no%20user"));
        trailers.insert("x-cost", HeaderValue::from_static("7"));
        let envelope = end_stream(&trailers);
        assert_eq!(envelope[0], 0x02);
        let body: Value = serde_json::from_slice(&envelope[5..]).expect("JSON");
        assert_eq!(
            body,
            json!({"error":{"code":"not_found","message":"no user"},"metadata":{"x-cost":["7"]}})
        );
        let mut ok = HeaderMap::new();
        ok.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(&end_stream(&ok)[5..], b"{}");
    }

    #[test]
    fn streaming_content_types() {
        assert_eq!(is_connect_stream(b"application/connect+proto"), Some(false));
        assert_eq!(
            is_connect_stream(b"application/connect+json; charset=utf-8"),
            Some(true)
        );
        assert_eq!(is_connect_stream(b"application/proto"), None);
    }
}
