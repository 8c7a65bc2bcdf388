//! Optional OpenTelemetry trace export (cargo feature `otlp`, off by default). It owns the
//! tracer provider (batch export over OTLP/gRPC through our tonic, resource `service.name`),
//! the one server span per request (parent from a valid incoming W3C `traceparent`, name and
//! attributes per the OTel HTTP semantic conventions) and the injection of that span's own
//! `traceparent` into the upstream metadata, so that the trace continues through the gateway.
//!
//! It does not decide what a malformed `traceparent` is (`metadata.rs` does: such a header is
//! ignored and the span starts a new trace), and it touches neither logs nor metrics. Unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, `init` does
//! nothing: no exporter, no connection attempt, no span, and `traceparent` passes through
//! untouched, exactly as in a build without the feature.

use std::future::Future;
use std::sync::OnceLock;

use http::{HeaderMap, Method};
use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, Context, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_otlp::{SpanExporter, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

/// The tracer of the running provider; unset while export is off.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The endpoint variables, most specific first (the exporter resolves them in this order).
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The running export, if any; `shutdown` flushes what is still queued.
pub struct Telemetry(Option<SdkTracerProvider>);

/// Starts trace export when an OTLP endpoint is configured. Everything else comes from the
/// standard `OTEL_*` variables, read by the SDK and the exporter themselves: sampler,
/// `OTEL_BSP_*` batching, `OTEL_EXPORTER_OTLP_{HEADERS,TIMEOUT,COMPRESSION}`, resource
/// attributes. The exporter's tonic channel connects lazily, but its worker task is spawned
/// at build time, hence the runtime handle.
pub fn init(runtime: &tokio::runtime::Handle) -> Result<Telemetry, String> {
    let Some((var, endpoint)) = configured_endpoint() else {
        return Ok(Telemetry(None));
    };
    // The spec's kill switch: the variables may be set by a platform, export still off.
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(Telemetry(None));
    }
    let _runtime = runtime.enter();
    let mut exporter = SpanExporter::builder().with_tonic();
    if endpoint.starts_with("https://") {
        // The exporter's own default TLS config trusts no root at all.
        exporter = exporter.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
    }
    let exporter = exporter
        .build()
        .map_err(|e| format!("{var}={endpoint}: cannot build the OTLP trace exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let scope = InstrumentationScope::builder("protogate")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    if TRACER.set(provider.tracer_with_scope(scope)).is_err() {
        return Err("trace export is already initialised".to_string());
    }
    tracing::info!(endpoint, "exporting traces over OTLP");
    Ok(Telemetry(Some(provider)))
}

impl Telemetry {
    /// Exports the spans still queued (bounded by the SDK's 5 s shutdown timeout). Call it
    /// after the drain, while the runtime that carries the exporter's channel still runs.
    pub fn shutdown(self) {
        if let Some(provider) = self.0
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "flushing traces at shutdown failed");
        }
    }
}

fn configured_endpoint() -> Option<(&'static str, String)> {
    ENDPOINT_VARS.iter().find_map(|var| {
        let value = std::env::var(var).ok()?;
        let value = value.trim();
        (!value.is_empty()).then(|| (*var, value.to_string()))
    })
}

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), except that a
/// service nobody named is `protogate` rather than the SDK's `unknown_service`.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let unnamed = detected
        .get(&Key::from_static_str("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"));
    if unnamed {
        Resource::builder().with_service_name("protogate").build()
    } else {
        detected
    }
}

/// The server span of one request (its context and the method part of its name); inert
/// (and free) while export is off.
pub struct RequestSpan(Option<(Context, &'static str)>);

impl RequestSpan {
    /// Starts the span, as a child of the caller's span when `traceparent` is valid. Its name
    /// is the method until `finish` knows the route template.
    pub fn start(method: &Method, headers: &HeaderMap) -> RequestSpan {
        let Some(tracer) = TRACER.get() else {
            return RequestSpan(None);
        };
        let parent = if crate::metadata::valid_traceparent(headers.get("traceparent")) {
            TraceContextPropagator::new().extract(&HeaderExtractor(headers))
        } else {
            // Not extracted at all, so the SDK's laxer parser cannot disagree with ours.
            Context::new()
        };
        let (method, name) = semconv_method(method);
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method),
                KeyValue::new("url.scheme", "http"),
            ])
            .start_with_context(tracer, &parent);
        RequestSpan(Some((parent.with_span(span), name)))
    }

    /// Runs `work` with this span as the current context, which is where `inject` and
    /// `record_rpc` find it.
    pub fn scope<F: Future>(&self, work: F) -> WithContext<F> {
        let cx = match &self.0 {
            Some((cx, _)) => cx.clone(),
            None => Context::current(),
        };
        work.with_context(cx)
    }

    /// Names the span after the route and ends it. `route` is the access log's label: a
    /// template, a reserved path, or `(unmatched)` / `(rejected)`, which are no route. The
    /// raw path is never recorded (the invariant the logs keep too), although the semantic
    /// conventions list `url.path`.
    pub fn finish(self, route: &str, status: u16, request_id: &str) {
        let Some((cx, method)) = self.0 else {
            return;
        };
        let span = cx.span();
        if !route.starts_with('(') {
            span.update_name(format!("{method} {route}"));
            span.set_attribute(KeyValue::new("http.route", route.to_string()));
        }
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if !request_id.is_empty() {
            let value = Array::String(vec![StringValue::from(request_id.to_string())]);
            span.set_attribute(KeyValue::new(
                "http.request.header.x-request-id",
                Value::Array(value),
            ));
        }
        // Server spans are errors on 5xx only: a 4xx is the client's doing.
        if status >= 500 {
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }
}

/// Records the upstream call on the current request span (a no-op outside one).
pub fn record_rpc(method: &str, code: tonic::Code) {
    let cx = Context::current();
    if !cx.has_active_span() {
        return;
    }
    cx.span().set_attributes([
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.method", method.to_string()),
        KeyValue::new("rpc.grpc.status_code", code as i64),
    ]);
}

/// Replaces any `traceparent`/`tracestate` in `metadata` with the current request span's,
/// so the upstream continues the trace as a child of the gateway. Outside a request span
/// (export off) the metadata is left exactly as `metadata::to_grpc` built it.
pub fn inject(metadata: &mut MetadataMap) {
    let cx = Context::current();
    if !cx.span().span_context().is_valid() {
        return;
    }
    metadata.remove("traceparent");
    metadata.remove("tracestate");
    TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(metadata));
}

/// `http.request.method` and the span name's method part: HTTP semconv reports methods
/// outside RFC 9110 (+ PATCH) as `_OTHER` and names such spans `HTTP`, which keeps span names
/// of low cardinality whatever a client sends.
fn semconv_method(method: &Method) -> (&'static str, &'static str) {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    match KNOWN.iter().find(|known| **known == method.as_str()) {
        Some(known) => (known, known),
        None => ("_OTHER", "HTTP"),
    }
}

/// Reads the incoming W3C headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the outgoing W3C headers as ASCII metadata; an empty `tracestate` is omitted.
struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(key), Ok(value)) = (
            AsciiMetadataKey::from_bytes(key.as_bytes()),
            AsciiMetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn caller_metadata() -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "traceparent",
            AsciiMetadataValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        metadata.insert("tracestate", AsciiMetadataValue::from_static("vendor=1"));
        metadata
    }

    #[test]
    fn inject_outside_a_request_span_leaves_the_callers_trace_context() {
        let mut metadata = caller_metadata();
        inject(&mut metadata);
        assert_eq!(metadata.into_headers(), caller_metadata().into_headers());
    }

    #[test]
    fn inject_inside_a_request_span_replaces_the_callers_trace_context() {
        let span = SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            SpanId::from(0xb7ad_6b71_6920_3331),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let _current = Context::new().with_remote_span_context(span).attach();
        let mut metadata = caller_metadata();
        inject(&mut metadata);
        let traceparent = metadata.get_all("traceparent").iter().collect::<Vec<_>>();
        assert_eq!(
            traceparent,
            ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
        );
        // An empty tracestate is omitted, and the caller's does not survive.
        assert!(metadata.get("tracestate").is_none());
    }

    #[test]
    fn methods_outside_the_http_registry_are_other() {
        assert_eq!(semconv_method(&Method::GET), ("GET", "GET"));
        assert_eq!(semconv_method(&Method::PATCH), ("PATCH", "PATCH"));
        let custom = Method::from_bytes(b"PURGE").expect("token");
        assert_eq!(semconv_method(&custom), ("_OTHER", "HTTP"));
    }
}
