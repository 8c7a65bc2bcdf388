//! Connect's error form (connectrpc.com/docs/protocol, "Error Codes"): the code by name, the
//! HTTP status Connect gives it, and the JSON body `{"code","message","details":[{"type",
//! "value"}]}` with each detail's bytes as unpadded base64, for the upstream's statuses (their
//! details as the upstream sent them) and the gateway's own failures alike.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message as _;
use serde_json::{Value, json};
use tonic::Code;

use crate::error::{ErrorCode, Fault, GatewayError};
use crate::metadata;

/// Connect's name for a code.
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// Connect's HTTP status for a code, from its protocol's table (the same as grpc-gateway's
/// but for FAILED_PRECONDITION, ABORTED and OUT_OF_RANGE). `Ok` never reaches here.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error body: code, message, and details as Connect sends them (the type name and the
/// unpadded base64 of the detail's bytes).
fn error_body(code: Code, message: &str, details: &[(String, Vec<u8>)]) -> Bytes {
    let mut body = json!({ "code": code_name(code) });
    if !message.is_empty() {
        body["message"] = Value::from(message);
    }
    if !details.is_empty() {
        let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
        body["details"] = details
            .iter()
            .map(|(kind, value)| json!({ "type": kind, "value": engine.encode(value) }))
            .collect();
    }
    Bytes::from(body.to_string())
}

fn json_error(code: Code, body: Bytes, mut headers: HeaderMap) -> Response {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = http_status(code);
    *response.headers_mut() = headers;
    response
}

/// The upstream's status as a Connect error, with its details (from
/// `grpc-status-details-bin`) and its metadata (initial in `headers`, trailing prefixed).
pub(super) fn upstream_error(status: &tonic::Status, mut headers: HeaderMap) -> Response {
    let details: Vec<(String, Vec<u8>)> = crate::pb::google::rpc::Status::decode(status.details())
        .map(|s| {
            s.details
                .into_iter()
                .map(|any| {
                    let kind = any.type_url.rsplit('/').next().unwrap_or_default().to_string();
                    (kind, any.value.to_vec())
                })
                .collect()
        })
        .unwrap_or_default();
    metadata::to_http_prefixed(status.metadata(), &mut headers, "trailer-");
    let body = error_body(status.code(), status.message(), &details);
    let mut response = json_error(status.code(), body, headers);
    response.extensions_mut().insert(ErrorCode(
        status.code(),
        Fault::Upstream,
        std::borrow::Cow::Borrowed("the upstream answered with an error"),
    ));
    response
}

/// The gateway's own failure as a Connect error; the access log gets its code and reason.
pub(super) fn error_response(err: GatewayError) -> Response {
    let code = err.code();
    let body = error_body(code, err.message(), &[]);
    // The protocol's HTTP-level refusals keep their status: 405 (GET for a method with side
    // effects) and 415 (a codec not spoken); every other error takes the code's status.
    let status = match err.http_status() {
        s @ (StatusCode::METHOD_NOT_ALLOWED | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
        _ => http_status(code),
    };
    let (mut parts, _) = err.into_response().into_parts();
    let mut headers = HeaderMap::new();
    if let Some(allow) = parts.headers.remove(header::ALLOW) {
        headers.insert(header::ALLOW, allow);
    }
    let mut response = json_error(code, body, headers);
    std::mem::swap(response.extensions_mut(), &mut parts.extensions);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_as_connect_says() {
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(http_status(Code::ResourceExhausted).as_u16(), 429);
        assert_eq!(http_status(Code::Unimplemented).as_u16(), 501);
        assert_eq!(http_status(Code::FailedPrecondition).as_u16(), 400);
        assert_eq!(http_status(Code::Aborted).as_u16(), 409);
        assert_eq!(code_name(Code::Cancelled), "canceled");
        let body = error_body(
            Code::NotFound,
            "gone",
            &[("google.rpc.ErrorInfo".into(), vec![1, 2, 3])],
        );
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body,
            json!({"code":"not_found","message":"gone","details":[{"type":"google.rpc.ErrorInfo","value":"AQID"}]})
        );
    }
}
