//! `GatewayError`: every failure the gateway reports, and the only conversion from a failure
//! to an HTTP response (`render.rs`). The body is `google.rpc.Status` proto3 JSON
//! (`{"code":…,"message":"…","details":[…]}`) with `Content-Type: application/json`, or,
//! where `[errors] format = "problem"` says so, RFC 9457 `application/problem+json`.
//!
//! Each error knows its gRPC code, its HTTP status and who is at fault. Client faults are
//! 4xx; upstream faults are 502/503/504 or the upstream's own code mapped through
//! [`http_status`]; gateway faults are 500 and their internals go to the log, never to the
//! client. Rendering of `details` lives in `details.rs`; the status table in `status_table.rs`.

mod render;
mod status_table;

use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tonic::Code;

pub use crate::config::ErrorFormat;
use crate::details;
pub use render::ErrorCode;
pub use status_table::http_status;

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
    /// What the access log says about this error (`ErrorCode::reason`).
    logged: Logged,
    /// The body's form: the route's, once routed (`in_format`); else the gateway's.
    format: Option<ErrorFormat>,
}

/// What the access log may say about an error's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logged {
    /// The message the client got: the gateway wrote it.
    Message,
    /// The upstream wrote the message, which may carry user data: only its code is logged.
    UpstreamCode,
    /// No route: a fixed text instead of the message, which carries the raw path. (No
    /// payload: the enum sits in `GatewayError`'s padding, which keeps the error, returned on
    /// every path of a request, as small as it was.)
    NoRoute,
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
            logged: Logged::Message,
            format: None,
        }
    }

    fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }

    /// No route matches the path under any method.
    pub fn route_not_found(path: &str) -> Self {
        let mut err = Self::new(Code::NotFound, Fault::Client, format!("no route for {path}"));
        // Logs carry route templates, never raw paths.
        err.logged = Logged::NoRoute;
        err
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

    /// The gateway does not serve what was asked for in this protocol: a method outside its
    /// schema, or a protocol turned off (UNIMPLEMENTED, 501).
    pub fn not_served(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, Fault::Client, message)
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
        Self::shed(format!(
            "overloaded: {limit} requests already in flight; retry shortly"
        ))
    }

    /// A request refused at once because a gateway-wide budget is spent (requests, body
    /// reads, body bytes): 503 with `Retry-After: 1`.
    pub fn shed(message: impl Into<String>) -> Self {
        let mut err = Self::new(Code::Unavailable, Fault::Gateway, message);
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

    /// A request body without a `Content-Type`: it is not read as JSON (`cross_site.rs`).
    pub fn missing_content_type() -> Self {
        Self::new(
            Code::InvalidArgument,
            Fault::Client,
            "a request body needs Content-Type: application/json",
        )
        .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    }

    /// An unsafe request from a page on another site whose origin CORS does not allow.
    pub fn cross_site(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, Fault::Client, message)
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
        err.logged = Logged::UpstreamCode;
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

    /// The same error about one message of a request stream: its message starts with
    /// `which` (`line 3`, `element 3`), so that the client knows which message was refused.
    pub fn in_message(mut self, which: &str) -> Self {
        self.message = format!("{which}: {}", self.message);
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

    /// This error answered in `format`, unless a more specific one (the route's) is set.
    pub fn in_format(mut self, format: ErrorFormat) -> Self {
        self.format.get_or_insert(format);
        self
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

#[cfg(test)]
#[path = "error/tests.rs"]
mod tests;
