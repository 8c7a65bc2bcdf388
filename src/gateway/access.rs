//! The access log and the request metric: one `request` line and one histogram sample per
//! answered request, written by [`record`] for routed requests, probes and rejections
//! (`gateway::handle`) and for the preflights that the CORS layer answers alike.

use std::time::Duration;

use crate::error::Fault;
use crate::metrics::Metrics;

/// A preflight's extra fields: the origin, the method it asks for, and whether CORS allowed
/// it, so that a page's "CORS error" can be found in the log.
pub struct Preflight<'a> {
    pub origin: &'a str,
    pub requested_method: &'a str,
    pub allowed: bool,
}

/// One answered request.
pub struct Entry<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    /// The route template, a reserved path, or `(unmatched)`, `(rejected)`, `(preflight)`;
    /// never the raw path.
    pub route: &'a str,
    pub status: u16,
    /// The gRPC code and who was at fault, for error answers.
    pub error: Option<(tonic::Code, Fault)>,
    pub elapsed: Duration,
    pub preflight: Option<Preflight<'a>>,
}

/// Writes the access-log line and observes the request metric.
pub fn record(metrics: &Metrics, entry: Entry<'_>) {
    let Entry {
        request_id,
        method,
        route,
        status,
        error,
        elapsed,
        preflight,
    } = entry;
    let seconds = elapsed.as_secs_f64();
    metrics.observe_http(method, route, status, seconds, error);
    let grpc_code = error.map_or(0, |(code, _)| code as i32);
    let latency_ms = seconds * 1000.0;
    if let Some(Preflight {
        origin,
        requested_method,
        allowed,
    }) = preflight
    {
        let cors = if allowed { "allowed" } else { "refused" };
        tracing::info!(
            request_id,
            method,
            route,
            status,
            grpc_code,
            latency_ms,
            origin,
            requested_method,
            cors,
            "request"
        );
    } else if status >= 500 {
        tracing::warn!(
            request_id, method, route, status, grpc_code, latency_ms, "request"
        );
    } else {
        tracing::info!(
            request_id, method, route, status, grpc_code, latency_ms, "request"
        );
    }
}
