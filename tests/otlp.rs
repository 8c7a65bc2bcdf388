//! OTLP trace export end to end (feature `otlp`, see `required-features` in Cargo.toml): the
//! real binary, a recording upstream and an in-process fake collector (a tonic
//! `TraceService` on `127.0.0.1:0`). It pins that the gateway exports one server span per
//! request named after the route template, parented by a valid incoming `traceparent`, that
//! the upstream receives the gateway's span as its parent, that a malformed `traceparent`
//! starts a fresh trace instead of failing, that queued spans are flushed on SIGTERM, and that
//! without an endpoint the feature build passes `traceparent` through untouched.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use protogate::pb::protogate_unpackaged::UserReply;
use support::http::send;
use support::process::{ChildGuard, READY_TIMEOUT, gateway_command, shipped_config};
use support::upstream::{RecordingUpstream, Reply};
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// How long an exported span may take to arrive (the test sets a 100 ms batch delay).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// One received span with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

/// The fake collector: records every span and wakes waiters on each export.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
            let service = string_attr(&resource, "service.name").unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    let service = service.clone();
                    self.spans.lock().expect("lock").push(Received { service, span });
                }
            }
        }
        self.arrived.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves on `127.0.0.1:0` until the test's runtime ends.
    async fn start() -> (Collector, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind collector");
        let addr = listener.local_addr().expect("collector addr");
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        (collector, addr)
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("lock").clone()
    }

    /// The first span of trace `trace_id` (hex), waiting for the batch export to deliver it.
    async fn span_of_trace(&self, trace_id: &str) -> Received {
        let deadline = tokio::time::Instant::now() + EXPORT_TIMEOUT;
        loop {
            // Created before the check, so an export in between still wakes it.
            let arrived = self.arrived.notified();
            if let Some(found) = self
                .spans()
                .into_iter()
                .find(|r| hex(&r.span.trace_id) == trace_id)
            {
                return found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "no span of trace {trace_id} within {EXPORT_TIMEOUT:?}; received: {:?}",
                    self.spans()
                );
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attr(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn int_attr(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)? {
        Value::IntValue(n) => Some(*n),
        other => panic!("{key} is not an int: {other:?}"),
    }
}

/// The request id, recorded as semconv's `http.request.header.x-request-id` (a string array).
fn request_id_attr(attributes: &[KeyValue]) -> Vec<String> {
    match attr(attributes, "http.request.header.x-request-id") {
        Some(Value::ArrayValue(array)) => array
            .values
            .iter()
            .filter_map(|v: &AnyValue| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("http.request.header.x-request-id is not a string array: {other:?}"),
    }
}

/// `version-traceid-parentid-flags` of the traceparent the upstream received.
fn traceparent_parts(call: &support::upstream::Recorded) -> Vec<String> {
    let traceparent = call.meta("traceparent").expect("upstream received a traceparent");
    let parts: Vec<String> = traceparent.split('-').map(str::to_string).collect();
    assert_eq!(parts.len(), 4, "traceparent {traceparent:?}");
    parts
}

/// The binary with the shipped config, for `upstream`, with every `OTEL_*` variable of the
/// developer's shell removed and `env` set; returned once it logs `listening`.
fn spawn_gateway(upstream: SocketAddr, env: &[(&str, &str)]) -> (ChildGuard, SocketAddr) {
    let mut command = gateway_command();
    let config = shipped_config();
    command.args([
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &format!("http://{upstream}"),
    ]);
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let child = ChildGuard::spawn("protogate", command);
    let listening = child.stdout().wait_for(READY_TIMEOUT, |line| {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["message"] == "listening")
    });
    let Some(line) = listening else {
        panic!(
            "protogate did not start\nstdout:\n{}\nstderr:\n{}",
            child.stdout().text(),
            child.stderr().text()
        );
    };
    let record: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let addr = record["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("\"listening\" line has no addr: {line}"));
    (child, addr)
}

async fn users_upstream() -> RecordingUpstream {
    RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await
}

async fn get_users(gateway: SocketAddr, headers: &[(&str, &str)]) {
    let url = format!("http://{gateway}/users?ids=1");
    let reply = send(Method::GET, &url, headers, Bytes::new()).await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_span_is_exported_as_child_of_the_caller_and_parent_of_the_upstream_call() {
    let (collector, collector_addr) = Collector::start().await;
    let upstream = users_upstream().await;
    let endpoint = format!("http://{collector_addr}");
    let (_gateway, addr) = spawn_gateway(
        upstream.addr,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    get_users(
        addr,
        &[
            ("traceparent", &traceparent),
            ("tracestate", "vendor=1"),
            ("x-request-id", "otlp-req-1"),
        ],
    )
    .await;

    // The upstream continues the caller's trace, as a child of the gateway's span.
    let call = upstream.only_call();
    let upstream_parent = traceparent_parts(&call);
    assert_eq!(upstream_parent[1], TRACE_ID, "same trace");
    assert_ne!(
        upstream_parent[2], CALLER_SPAN,
        "parent is the gateway, not the caller"
    );
    assert_eq!(upstream_parent[3], "01", "sampled");
    assert_eq!(call.meta("tracestate").as_deref(), Some("vendor=1"));

    let Received { service, span } = collector.span_of_trace(TRACE_ID).await;
    assert_eq!(service, "protogate", "default service.name");
    assert_eq!(
        span.name, "GET /users",
        "named by the route template, never the raw path"
    );
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.parent_span_id), CALLER_SPAN);
    assert_eq!(hex(&span.span_id), upstream_parent[2]);
    let attrs = &span.attributes;
    assert_eq!(string_attr(attrs, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(string_attr(attrs, "http.route").as_deref(), Some("/users"));
    assert_eq!(int_attr(attrs, "http.response.status_code"), Some(200));
    assert_eq!(string_attr(attrs, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        string_attr(attrs, "rpc.method").as_deref(),
        Some("MyService.User")
    );
    assert_eq!(int_attr(attrs, "rpc.grpc.status_code"), Some(0));
    assert_eq!(request_id_attr(attrs), ["otlp-req-1"]);
    assert!(
        attrs
            .iter()
            .all(|kv| kv.key != "url.path" && kv.key != "url.query"),
        "the raw path is never recorded: {attrs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_traceparent_starts_a_fresh_trace_and_the_request_still_succeeds() {
    let (collector, collector_addr) = Collector::start().await;
    let upstream = users_upstream().await;
    let endpoint = format!("http://{collector_addr}");
    // The signal-specific endpoint variable works alone, and OTEL_SERVICE_NAME names the
    // resource.
    let (_gateway, addr) = spawn_gateway(
        upstream.addr,
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "edge-gateway"),
        ],
    );
    let malformed = format!("00-{TRACE_ID}-{CALLER_SPAN}-01-");
    get_users(
        addr,
        &[
            // Version 00 has exactly four fields, so the trailing dash makes it malformed
            // (the OTel SDK's own parser would accept it: the gateway's rule must win).
            ("traceparent", &malformed),
            ("tracestate", "vendor=1"),
            ("x-request-id", "otlp-req-2"),
        ],
    )
    .await;

    let call = upstream.only_call();
    let upstream_parent = traceparent_parts(&call);
    let fresh = &upstream_parent[1];
    assert_ne!(fresh, TRACE_ID, "a new trace");
    assert_eq!(
        call.meta("tracestate"),
        None,
        "the caller's tracestate went with its traceparent"
    );

    let Received { service, span } = collector.span_of_trace(fresh).await;
    assert_eq!(service, "edge-gateway");
    assert!(span.parent_span_id.is_empty(), "a root span: {span:?}");
    assert_eq!(hex(&span.span_id), upstream_parent[2]);
    assert_eq!(request_id_attr(&span.attributes), ["otlp-req-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_spans_are_flushed_on_sigterm() {
    let (collector, collector_addr) = Collector::start().await;
    let upstream = users_upstream().await;
    let endpoint = format!("http://{collector_addr}");
    // A batch delay far beyond the test: only the shutdown flush can deliver the span.
    let (mut gateway, addr) = spawn_gateway(
        upstream.addr,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    );
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    get_users(addr, &[("traceparent", &traceparent)]).await;
    gateway.terminate();
    let status = tokio::task::spawn_blocking(move || gateway.finish(Duration::from_secs(20)))
        .await
        .expect("join");
    assert!(status.success(), "exit status {status}");
    // The exporter waited for the collector's answer before the process exited.
    let spans: HashMap<String, String> = collector
        .spans()
        .into_iter()
        .map(|r| (hex(&r.span.trace_id), r.span.name))
        .collect();
    assert_eq!(
        spans.get(TRACE_ID).map(String::as_str),
        Some("GET /users"),
        "{spans:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_the_feature_build_passes_traceparent_through_untouched() {
    let upstream = users_upstream().await;
    let (gateway, addr) = spawn_gateway(upstream.addr, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    // Version 01 with a future field: valid, and re-encoding it would show.
    let traceparent = format!("01-{TRACE_ID}-{CALLER_SPAN}-01-future");
    get_users(addr, &[("traceparent", &traceparent), ("tracestate", "vendor=1")]).await;
    let call = upstream.only_call();
    assert_eq!(call.meta("traceparent"), Some(traceparent));
    assert_eq!(call.meta("tracestate").as_deref(), Some("vendor=1"));
    assert!(
        !gateway.stdout().text().contains("exporting traces"),
        "no exporter without an endpoint:\n{}",
        gateway.stdout().text()
    );
}
