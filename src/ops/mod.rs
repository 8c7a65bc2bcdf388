//! Operational endpoints, answered before routing on the reserved paths
//! (`routing::RESERVED_PATHS`, which shadow any route): the probes (`probes.rs`), Prometheus
//! text at `/metrics` (here), the OpenAPI document and the docs page (`docs.rs`); and the
//! client of the `healthcheck` subcommand (`healthcheck.rs`). The gateway dispatches to them;
//! each takes only what it reads.

pub mod docs;
pub mod healthcheck;
pub mod probes;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, header};

use crate::error::GatewayError;
use crate::metrics::Metrics;

/// Every operational endpoint answers GET and HEAD only: the 405 for any other method.
pub fn refuse_method(method: &Method) -> Option<GatewayError> {
    (method != Method::GET && method != Method::HEAD)
        .then(|| GatewayError::method_not_allowed(method, &[Method::GET, Method::HEAD]))
}

/// `/metrics`: Prometheus text.
pub fn metrics(metrics: &Metrics) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
