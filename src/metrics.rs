//! Prometheus metrics, served as text at `/metrics`, named after the OpenTelemetry semantic
//! conventions: `http_server_request_duration_seconds` (by method, route template and
//! status), `http_server_active_requests`, `rpc_client_call_duration_seconds` (by RPC method
//! and gRPC code), and counters of requests the gateway rejected (by reason) and of upstream
//! failures (by kind), plus the open client connections and those refused at
//! `server.max_connections`. Labels carry route templates and method names from the route table,
//! never raw paths, so their number is bounded by the configuration.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tonic::Code;

use crate::error::Fault;

/// The OpenTelemetry advisory buckets for HTTP and RPC durations, in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {bucket}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// HTTP histograms by method, then route, then status: nested so that a request finds its
/// histogram by `&str` without allocating a key (only a first sighting allocates).
type HttpHistograms = BTreeMap<String, BTreeMap<String, BTreeMap<u16, Histogram>>>;

/// All metrics of one gateway.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<HttpHistograms>,
    /// By RPC method, then status code name.
    rpc: Mutex<BTreeMap<String, BTreeMap<&'static str, Histogram>>>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    upstream_errors: Mutex<BTreeMap<&'static str, u64>>,
    schema_reloads: Mutex<BTreeMap<&'static str, u64>>,
    active: AtomicI64,
    open_connections: AtomicI64,
    refused_connections: AtomicU64,
    /// Answered requests by front-end protocol, in the order of [`PROTOCOLS`].
    protocols: [AtomicU64; 4],
}

/// The front-end protocols, as the access log and `protogate_requests_by_protocol_total`
/// name them.
pub const PROTOCOLS: [&str; 4] = ["rest", "grpc", "grpc-web", "connect"];

/// Counts a request as active for as long as it lives.
pub struct Active<'a>(&'a AtomicI64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn active(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        Active(&self.active)
    }

    /// A client connection was accepted and is served.
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A served client connection ended.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A client connection was closed at once because `server.max_connections` were open.
    /// Counts one answered request of `protocol` (one of [`PROTOCOLS`]; others are ignored).
    pub fn count_protocol(&self, protocol: &str) {
        if let Some(i) = PROTOCOLS.iter().position(|p| *p == protocol) {
            self.protocols[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn connection_refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// One finished HTTP request; `fault` is set for error responses.
    pub fn observe_http(
        &self,
        method: &str,
        route: &str,
        status: u16,
        seconds: f64,
        error: Option<(Code, Fault)>,
    ) {
        {
            let mut http = lock(&self.http);
            let routes = match http.get_mut(method) {
                Some(routes) => routes,
                None => http.entry(method.to_string()).or_default(),
            };
            let statuses = match routes.get_mut(route) {
                Some(statuses) => statuses,
                None => routes.entry(route.to_string()).or_default(),
            };
            statuses.entry(status).or_default().observe(seconds);
        }
        match error {
            Some((_, Fault::Client)) => {
                *lock(&self.rejected).entry(rejection_reason(status)).or_default() += 1
            }
            Some((Code::Unavailable, Fault::Gateway)) if status == 503 => {
                *lock(&self.rejected).entry("overloaded_or_draining").or_default() += 1
            }
            Some((code, Fault::Upstream)) => {
                *lock(&self.upstream_errors)
                    .entry(upstream_kind(code, status))
                    .or_default() += 1
            }
            _ => {}
        }
    }

    /// One read of a runtime schema source: `changed`, `unchanged` or `error`.
    pub fn schema_reloaded(&self, result: &'static str) {
        *lock(&self.schema_reloads).entry(result).or_default() += 1;
    }

    /// One upstream call, with the gRPC code it ended with.
    pub fn observe_rpc(&self, method: &str, code: Code, seconds: f64) {
        let mut rpc = lock(&self.rpc);
        let codes = match rpc.get_mut(method) {
            Some(codes) => codes,
            None => rpc.entry(method.to_string()).or_default(),
        };
        codes.entry(code_name(code)).or_default().observe(seconds);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP http_server_request_duration_seconds Duration of HTTP server requests.\n");
        out.push_str("# TYPE http_server_request_duration_seconds histogram\n");
        for (method, routes) in lock(&self.http).iter() {
            for (route, statuses) in routes {
                for (status, h) in statuses {
                    let labels = format!(
                        "http_request_method=\"{}\",http_route=\"{}\",http_response_status_code=\"{status}\"",
                        escape(method),
                        escape(route)
                    );
                    h.render(&mut out, "http_server_request_duration_seconds", &labels);
                }
            }
        }
        let active = self.active.load(Ordering::Relaxed);
        scalar(
            &mut out,
            "http_server_active_requests",
            "gauge",
            "Number of active HTTP server requests.",
            active,
        );
        let open = self.open_connections.load(Ordering::Relaxed);
        scalar(
            &mut out,
            "protogate_open_connections",
            "gauge",
            "Client connections open now.",
            open,
        );
        scalar(
            &mut out,
            "protogate_refused_connections_total",
            "counter",
            "Client connections closed at once because server.max_connections were open.",
            self.refused_connections.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP protogate_requests_by_protocol_total Answered requests by front-end protocol.\n",
        );
        out.push_str("# TYPE protogate_requests_by_protocol_total counter\n");
        for (protocol, n) in PROTOCOLS.iter().zip(&self.protocols) {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "protogate_requests_by_protocol_total{{protocol=\"{protocol}\"}} {n}"
            );
        }
        out.push_str("# HELP rpc_client_call_duration_seconds Duration of gRPC calls to the upstream.\n");
        out.push_str("# TYPE rpc_client_call_duration_seconds histogram\n");
        for ((method, code), h) in lock(&self.rpc)
            .iter()
            .flat_map(|(method, codes)| codes.iter().map(move |(code, h)| ((method, code), h)))
        {
            let labels = format!(
                "rpc_system=\"grpc\",rpc_method=\"{}\",rpc_grpc_status_code=\"{code}\"",
                escape(method)
            );
            h.render(&mut out, "rpc_client_call_duration_seconds", &labels);
        }
        out.push_str("# HELP protogate_schema_reloads_total Reads of a runtime schema source, by result.\n");
        out.push_str("# TYPE protogate_schema_reloads_total counter\n");
        for (result, n) in lock(&self.schema_reloads).iter() {
            let _ = writeln!(out, "protogate_schema_reloads_total{{result=\"{result}\"}} {n}");
        }
        out.push_str("# HELP protogate_rejected_requests_total Requests the gateway refused, by reason.\n");
        out.push_str("# TYPE protogate_rejected_requests_total counter\n");
        for (reason, n) in lock(&self.rejected).iter() {
            let _ = writeln!(
                out,
                "protogate_rejected_requests_total{{reason=\"{reason}\"}} {n}"
            );
        }
        scalar(
            &mut out,
            "protogate_log_lines_dropped_total",
            "counter",
            "Log lines dropped because stdout could not keep up.",
            crate::logging::dropped_lines(),
        );
        out.push_str("# HELP protogate_upstream_errors_total Failed upstream calls, by kind.\n");
        out.push_str("# TYPE protogate_upstream_errors_total counter\n");
        for (kind, n) in lock(&self.upstream_errors).iter() {
            let _ = writeln!(out, "protogate_upstream_errors_total{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}

/// One unlabelled gauge or counter with its HELP and TYPE lines.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// A poisoned lock only means another request panicked mid-update; the counts stay usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn rejection_reason(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        404 => "no_route",
        405 => "method_not_allowed",
        408 => "body_timeout",
        413 => "body_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        431 => "headers_too_large",
        _ => "other",
    }
}

fn upstream_kind(code: Code, status: u16) -> &'static str {
    match (code, status) {
        (Code::Unavailable, _) => "unavailable",
        (Code::DeadlineExceeded, _) => "deadline_exceeded",
        (_, 502) => "bad_reply",
        _ => "error_status",
    }
}

/// The `http_request_method` label (and the access log's `method`): the methods of RFC 9110
/// and PATCH as they are, any other as `_OTHER` (OpenTelemetry HTTP semconv), so that a
/// client sending made-up methods cannot grow `/metrics` without bound.
pub fn method_label(method: &http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("_OTHER")
}

/// gRPC code names as the gRPC spec spells them.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe_http("GET", "/users", 200, 0.003, None);
        metrics.observe_http("GET", "/users", 200, 0.2, None);
        let text = metrics.render();
        let labels = "http_request_method=\"GET\",http_route=\"/users\",http_response_status_code=\"200\"";
        assert!(
            text.contains(&format!(
                "http_server_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "http_server_request_duration_seconds_bucket{{{labels},le=\"0.25\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "http_server_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "http_server_request_duration_seconds_count{{{labels}}} 2\n"
        )));
    }

    #[test]
    fn methods_outside_the_standard_set_are_other() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        assert_eq!(method_label(&http::Method::PATCH), "PATCH");
        let junk = http::Method::from_bytes(b"FOO1").expect("token");
        assert_eq!(method_label(&junk), "_OTHER");
        let lowercase = http::Method::from_bytes(b"get").expect("token");
        assert_eq!(method_label(&lowercase), "_OTHER", "methods are case-sensitive");
    }

    #[test]
    fn rejections_and_upstream_errors_are_counted_by_kind() {
        let metrics = Metrics::default();
        metrics.observe_http(
            "GET",
            "(unmatched)",
            404,
            0.0,
            Some((Code::NotFound, Fault::Client)),
        );
        metrics.observe_http(
            "GET",
            "/users",
            503,
            0.0,
            Some((Code::Unavailable, Fault::Upstream)),
        );
        metrics.observe_http("GET", "/users", 404, 0.0, Some((Code::NotFound, Fault::Upstream)));
        let text = metrics.render();
        assert!(
            text.contains("protogate_rejected_requests_total{reason=\"no_route\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("protogate_upstream_errors_total{kind=\"unavailable\"} 1\n"));
        assert!(text.contains("protogate_upstream_errors_total{kind=\"error_status\"} 1\n"));
    }

    #[test]
    fn active_requests_go_up_and_down() {
        let metrics = Metrics::default();
        let guard = metrics.active();
        assert!(metrics.render().contains("http_server_active_requests 1\n"));
        drop(guard);
        assert!(metrics.render().contains("http_server_active_requests 0\n"));
    }
}
