//! `/openapi.json` and `/docs`: the live OpenAPI document as built by `openapi.rs`, served as
//! is, and a self-contained HTML page that reads it and loads nothing else.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, header};

/// The docs page, served as is.
const DOCS_HTML: &str = include_str!("docs.html");

/// What the docs page may load: only itself and same-origin requests.
pub const DOCS_CSP: &str =
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'";

/// `GET /openapi.json`.
pub fn json_response(document: Bytes) -> Response {
    let mut response = Response::new(Body::from(document));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /docs`: the page, locked to its own origin by CSP.
pub fn docs_response() -> Response {
    let mut response = Response::new(Body::from(DOCS_HTML));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
