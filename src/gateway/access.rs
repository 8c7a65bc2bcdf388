//! The access log and the request metric: one `request` line and one histogram sample per
//! answered request, written by [`record`] for routed requests, probes and rejections
//! (`gateway::handle`) and for the preflights that the CORS layer answers alike.
//!
//! An error answer's line carries a `reason`: the status message the client got when the
//! gateway made the error (a binding error, a limit, an unreachable upstream), and only the
//! gRPC code when the upstream did, since its messages may carry user data. The text is the
//! one the error response already owned (`error::ErrorCode`); nothing is built for it.

use std::time::Duration;

use crate::error::ErrorCode;
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
    /// The gRPC code, who was at fault and the reason, for error answers.
    pub error: Option<&'a ErrorCode>,
    pub elapsed: Duration,
    pub preflight: Option<Preflight<'a>>,
    /// The front-end: `rest`, `grpc`, `grpc-web` or `connect` (`metrics::PROTOCOLS`).
    pub protocol: &'static str,
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
        protocol,
    } = entry;
    metrics.count_protocol(protocol);
    let seconds = elapsed.as_secs_f64();
    metrics.observe_http(method, route, status, seconds, error.map(|e| (e.0, e.1)));
    let grpc_code = error.map_or(0, |e| e.0 as i32);
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
            protocol,
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
    } else if let Some(ErrorCode(_, _, reason)) = error {
        let reason: &str = reason;
        if status >= 500 {
            tracing::warn!(
                request_id, protocol, method, route, status, grpc_code, latency_ms, reason, "request"
            );
        } else {
            tracing::info!(
                request_id, protocol, method, route, status, grpc_code, latency_ms, reason, "request"
            );
        }
    } else if status >= 500 {
        tracing::warn!(
            request_id, protocol, method, route, status, grpc_code, latency_ms, "request"
        );
    } else {
        tracing::info!(
            request_id, protocol, method, route, status, grpc_code, latency_ms, "request"
        );
    }
}
