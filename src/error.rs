//! `GatewayError`: every failure the gateway reports, and the only conversion from a failure
//! to an HTTP response. The body is always `google.rpc.Status` proto3 JSON
//! (`{"code":…,"message":"…","details":[…]}`) with `Content-Type: application/json`.
//!
//! Each error knows its gRPC code, its HTTP status and who is at fault. Client faults are
//! 4xx; upstream faults are 502/503/504 or the upstream's own code mapped through
//! [`http_status`]; gateway faults are 500 and their internals go to the log, never to the
//! client. Rendering of `details` lives in `details.rs`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tonic::Code;

use crate::details;

/// Who caused a failure; decides the log level and whether internals may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong (4xx).
    Client,
    /// The upstream failed, was unreachable or too slow.
    Upstream,
    /// The gateway itself failed (a bug or a resource problem).
    Gateway,
}

/// A failure on the request path, ready to become a `google.rpc.Status` response.
#[derive(Debug)]
pub struct GatewayError {
    code: Code,
    http: StatusCode,
    message: String,
    details: Vec<Value>,
    fault: Fault,
    allow: Option<HeaderValue>,
    /// True when the call provably never left the gateway (no connection), so a retry
    /// cannot duplicate work.
    never_sent: bool,
    /// Upstream metadata that came with a failed call, returned as `Grpc-Metadata-*`.
    headers: Option<Box<http::HeaderMap>>,
}

impl GatewayError {
    fn new(code: Code, fault: Fault, message: impl Into<String>) -> Self {
        GatewayError {
            code,
            http: http_status(code),
            message: message.into(),
            details: Vec::new(),
            fault,
            allow: None,
            headers: None,
            never_sent: false,
        }
    }

    fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }

    /// No route matches the path under any method.
    pub fn route_not_found(path: &str) -> Self {
        Self::new(Code::NotFound, Fault::Client, format!("no route for {path}"))
    }

    /// The path is routed, but not for this method; `allow` lists the methods that are.
    pub fn method_not_allowed(method: &http::Method, allow: &[http::Method]) -> Self {
        let list = allow
            .iter()
            .map(http::Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut err = Self::new(
            Code::Unimplemented,
            Fault::Client,
            format!("method {method} is not allowed here; allowed: {list}"),
        )
        .with_http(StatusCode::METHOD_NOT_ALLOWED);
        err.allow = HeaderValue::from_str(&list).ok();
        err
    }

    /// A request field could not be bound; carries a `google.rpc.BadRequest` violation.
    pub fn bad_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut err = Self::new(Code::InvalidArgument, Fault::Client, description.clone());
        err.details.push(details::bad_request(field, &description));
        err
    }

    /// The request is malformed in a way that is not about one field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, Fault::Client, message)
    }

    /// The request body is larger than the configured limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            Code::ResourceExhausted,
            Fault::Client,
            format!("request body exceeds the limit of {limit} bytes"),
        )
        .with_http(StatusCode::PAYLOAD_TOO_LARGE)
    }

    /// The request body did not arrive within the body timeout.
    pub fn body_timeout(after: std::time::Duration) -> Self {
        Self::new(
            Code::DeadlineExceeded,
            Fault::Client,
            format!("request body did not arrive within {}ms", after.as_millis()),
        )
        .with_http(StatusCode::REQUEST_TIMEOUT)
    }

    /// The request head is over a limit: 431 for headers, 414 for the target.
    pub fn head_too_large(http: StatusCode, message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, Fault::Client, message).with_http(http)
    }

    /// Too many requests in flight: shed at once, and tell the client when to retry.
    pub fn overloaded(limit: usize) -> Self {
        let mut err = Self::new(
            Code::Unavailable,
            Fault::Gateway,
            format!("overloaded: {limit} requests already in flight; retry shortly"),
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        err.headers = Some(Box::new(headers));
        err
    }

    /// The request body has a media type the gateway does not decode.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            Code::InvalidArgument,
            Fault::Client,
            format!("unsupported content type {content_type:?}; send application/json"),
        )
        .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    }

    /// The upstream could not be reached (refused, unresolvable, connect timeout).
    pub fn upstream_unavailable(cause: impl std::fmt::Display) -> Self {
        Self::new(
            Code::Unavailable,
            Fault::Upstream,
            format!("upstream unavailable: {cause}"),
        )
    }

    /// No connection to the upstream could be made: the request never left.
    pub fn connect_failed(cause: impl std::fmt::Display) -> Self {
        let mut err = Self::upstream_unavailable(cause);
        err.never_sent = true;
        err
    }

    /// The upstream refused the stream (HTTP/2 `REFUSED_STREAM`), which RFC 9113 §8.7
    /// guarantees means it did no processing: like a failed connect, safe to retry.
    pub fn refused_by_upstream(cause: impl std::fmt::Display) -> Self {
        let mut err = Self::upstream_unavailable(format_args!("upstream refused the call: {cause}"));
        err.never_sent = true;
        err
    }

    pub fn never_sent(&self) -> bool {
        self.never_sent
    }

    /// The call did not finish within its deadline.
    pub fn deadline_exceeded(after: std::time::Duration) -> Self {
        Self::new(
            Code::DeadlineExceeded,
            Fault::Upstream,
            format!("upstream did not answer within {}ms", after.as_millis()),
        )
    }

    /// The upstream answered with something the gateway cannot relay (bad framing, too large).
    pub fn bad_upstream_reply(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, Fault::Upstream, message).with_http(StatusCode::BAD_GATEWAY)
    }

    /// The gateway is draining or unready; the client may retry elsewhere.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, Fault::Gateway, message)
    }

    /// A gateway bug or resource failure. `internal` is logged; the client sees a generic text.
    pub fn internal(internal: impl std::fmt::Display) -> Self {
        tracing::error!(error = %internal, "internal gateway error");
        Self::new(Code::Internal, Fault::Gateway, "internal gateway error")
    }

    /// The upstream's own status, with its details rendered from `grpc-status-details-bin`;
    /// its metadata is added with `with_headers`.
    pub fn upstream_status(status: &tonic::Status) -> Self {
        let mut err = Self::new(status.code(), Fault::Upstream, status.message());
        err.details = details::from_status_details(status.details());
        err
    }

    /// Headers that go out with the error answer (the upstream's metadata, rendered by the
    /// caller: this type knows no header rules).
    pub fn with_headers(mut self, headers: http::HeaderMap) -> Self {
        if !headers.is_empty() {
            match &mut self.headers {
                Some(existing) => existing.extend(headers),
                None => self.headers = Some(Box::new(headers)),
            }
        }
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn http_status(&self) -> StatusCode {
        self.http
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `google.rpc.Status` JSON body.
    pub fn body(&self) -> Value {
        json!({ "code": self.code as i32, "message": self.message, "details": self.details })
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?}): {}", self.http.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for GatewayError {}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_else(|_| b"{\"code\":13}".to_vec());
        let mut response = (self.http, body).into_response();
        let headers = response.headers_mut();
        if let Some(extra) = self.headers {
            headers.extend(*extra);
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, allow);
        }
        response.extensions_mut().insert(ErrorCode(self.code, self.fault));
        response
    }
}

/// Marks a response as an error with this gRPC code, for the access log and metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub Code, pub Fault);

/// grpc-gateway's `HTTPStatusFromCode`, copied (runtime/errors.go), not invented.
/// An error and all its sources on one line (`a: b: c`), for logs: the client gets the
/// short message, the operator the whole cause.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    for cause in std::iter::successors(err.source(), |e| e.source()) {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    text
}

pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 "Client Closed Request", as nginx and grpc-gateway use it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // Not 412: grpc-gateway notes that FailedPrecondition means "fix the system state",
        // which HTTP expresses as a plain 400.
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_covers_every_code() {
        let table = [
            (0, 200),
            (1, 499),
            (2, 500),
            (3, 400),
            (4, 504),
            (5, 404),
            (6, 409),
            (7, 403),
            (8, 429),
            (9, 400),
            (10, 409),
            (11, 400),
            (12, 501),
            (13, 500),
            (14, 503),
            (15, 500),
            (16, 401),
        ];
        for (code, http) in table {
            assert_eq!(http_status(Code::from_i32(code)).as_u16(), http, "code {code}");
        }
        // Any number outside the enum is UNKNOWN on the wire, so it must map like UNKNOWN.
        assert_eq!(http_status(Code::from_i32(99)), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn method_not_allowed_carries_allow_header_and_json() {
        let err =
            GatewayError::method_not_allowed(&http::Method::DELETE, &[http::Method::GET, http::Method::POST]);
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = GatewayError::internal("secret stack detail");
        assert_eq!(
            err.body(),
            json!({"code": 13, "message": "internal gateway error", "details": []})
        );
    }

    #[test]
    fn bad_field_has_bad_request_detail() {
        let body = GatewayError::bad_field("ids", "invalid value \"x\"").body();
        assert_eq!(body["code"], 3);
        assert_eq!(
            body["details"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
        assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "ids");
    }
}
