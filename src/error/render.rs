//! A `GatewayError` as an HTTP response, in the form its route (or the gateway) answers
//! errors in: `google.rpc.Status` JSON, or RFC 9457 problem details
//! (`application/problem+json`) with the gRPC status kept in extension members:
//!
//! ```json
//! {"type":"https://grpc.github.io/grpc/core/md_doc_statuscodes.html#INVALID_ARGUMENT",
//!  "title":"Invalid argument","status":400,"detail":"…","instance":"<x-request-id>",
//!  "code":3,"details":[…]}
//! ```
//!
//! `type` names the gRPC code (a URI into gRPC's status-code table), `title` is the code's
//! short text, `detail` the message, `instance` the request id (percent-encoded into a URI
//! reference), and `code` and `details` are `google.rpc.Status`'s own members. Every
//! response also carries [`ErrorCode`] for the access log and metrics.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::{Value, json};
use tonic::Code;

use super::status_table::{code_name, title, upstream_reason};
use super::{ErrorFormat, Fault, GatewayError, Logged};

/// Where each problem `type` URI starts; the code's name is its fragment.
const PROBLEM_TYPE_BASE: &str = "https://grpc.github.io/grpc/core/md_doc_statuscodes.html#";

impl GatewayError {
    /// The RFC 9457 problem details body, `instance` being `request_id` when there is one.
    pub fn problem_body(&self, request_id: Option<&str>) -> Value {
        let mut body = json!({
            "type": format!("{PROBLEM_TYPE_BASE}{}", code_name(self.code)),
            "title": title(self.code),
            "status": self.http.as_u16(),
            "detail": self.message,
        });
        if let Some(id) = request_id.filter(|id| !id.is_empty()) {
            let id: String = percent_encoding::utf8_percent_encode(id, INSTANCE).collect();
            body["instance"] = Value::String(id);
        }
        body["code"] = json!(self.code as i32);
        body["details"] = Value::Array(self.details.clone());
        body
    }

    /// The response, with the request id that a problem body names as its `instance`.
    pub fn into_response_for(self, request_id: Option<&str>) -> Response {
        let problem = self.format == Some(ErrorFormat::Problem);
        let (body, content_type) = match problem {
            true => (self.problem_body(request_id), "application/problem+json"),
            false => (self.body(), "application/json"),
        };
        let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"code\":13}".to_vec());
        let mut response = (self.http, body).into_response();
        let headers = response.headers_mut();
        if let Some(extra) = self.headers {
            headers.extend(*extra);
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, allow);
        }
        // The message moves into the extension rather than being dropped: the access log's
        // reason costs no allocation of its own.
        let reason = match self.logged {
            Logged::Message => Cow::Owned(self.message),
            Logged::UpstreamCode => Cow::Borrowed(upstream_reason(self.code)),
            Logged::NoRoute => Cow::Borrowed("no route for the path"),
        };
        response
            .extensions_mut()
            .insert(ErrorCode(self.code, self.fault, reason));
        response
    }
}

/// What a request id keeps unescaped in `instance`: RFC 3986's unreserved characters.
const INSTANCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.into_response_for(None)
    }
}

/// Marks a response as an error with this gRPC code, for the access log and metrics. The
/// third field is the access log's `reason`: the message the client got when the gateway
/// wrote it, or only the code when the upstream did (its messages may carry user data).
#[derive(Debug, Clone)]
pub struct ErrorCode(pub Code, pub Fault, pub Cow<'static, str>);
