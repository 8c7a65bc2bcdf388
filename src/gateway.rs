//! The request lifecycle: route lookup → body read → binding → metadata and deadline →
//! upstream call → JSON response, plus the access log line for every request. The shared
//! `Gateway` state (route table, channel, config, draining flag) lives here too. Operational
//! endpoints (`/healthz`, `/readyz`) are answered by `ops.rs` before routing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::admission::{self, Admission};
use crate::binding::{self, body};
use crate::body_intake::BodyIntake;
use crate::config::Config;
use crate::error::{ErrorCode, Fault, GatewayError};
use crate::forward::UnaryCall;
use crate::methods::MethodCall;
use crate::metrics::Metrics;
use crate::routing::{Lookup, RouteTable};
use crate::stream::{self, StreamFormat};
use crate::upstream::Upstream;
use crate::{descriptors, metadata, ops, retry, routing};

/// Everything a request needs, built once at startup and shared.
pub struct Gateway {
    routes: RouteTable,
    upstream: Arc<Upstream>,
    config: Config,
    draining: AtomicBool,
    /// The OpenAPI document of `routes`, rendered once (served at `/openapi.json`).
    openapi: Bytes,
    admission: Admission,
    bodies: BodyIntake,
    metrics: Metrics,
}

impl Gateway {
    /// Builds the route table (validating every rule) and the upstream. Must run inside a
    /// tokio runtime.
    pub fn new(config: Config) -> Result<Gateway, String> {
        let upstream = Upstream::new(&config.upstream)?;
        Self::with_upstream(config, upstream)
    }

    /// Like `new`, with an upstream built elsewhere (tests inject resolvers this way).
    pub fn with_upstream(config: Config, upstream: Arc<Upstream>) -> Result<Gateway, String> {
        let pool = descriptors::load()?;
        let routes = routing::build_table(&pool, &config.rules, config.transcoding.unbound_methods)?;
        let openapi = crate::openapi::render(&pool, &routes)?;
        let admission = Admission::new(config.server.max_concurrent_requests);
        let bodies = BodyIntake::new(&config.server);
        Ok(Gateway {
            routes,
            upstream,
            config,
            draining: AtomicBool::new(false),
            openapi,
            admission,
            bodies,
            metrics: Metrics::default(),
        })
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The OpenAPI 3.1 document of the route table, as JSON bytes (cheap to clone).
    pub fn openapi(&self) -> Bytes {
        self.openapi.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The next upstream connection, or 503 while no upstream address is known.
    pub fn connection(&self) -> Result<Arc<crate::upstream::Connection>, GatewayError> {
        self.upstream.pick().ok_or_else(|| {
            // Nothing was sent: a retry may find an address by then.
            GatewayError::connect_failed(format!("{} resolves to no address yet", self.config.upstream.url))
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The request handler: every request passes through here.
pub async fn handle(gateway: Arc<Gateway>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    #[cfg(feature = "otlp")]
    let span = crate::telemetry::RequestSpan::start(&method, request.headers());
    // Set by the request-id layer when the client sent none.
    let request_id = request.headers().get("x-request-id").cloned();
    let reserved = ops::reserved(request.uri().path());
    let active = gateway.metrics.active();
    let (route, response) = if let Err(err) = admission::check_head(&gateway.config.server, &request) {
        ("(rejected)", err.into_response())
    } else if let Some(path) = reserved {
        // Probes are never shed: an overloaded gateway is still alive.
        (path, ops::answer(&gateway, &method, path).await)
    } else {
        let mut label = "(unmatched)";
        let work = transcode(&gateway, request, &mut label);
        #[cfg(feature = "otlp")]
        let work = span.scope(work);
        let response = work.await;
        (label, response.unwrap_or_else(IntoResponse::into_response))
    };
    drop(active);
    let status = response.status().as_u16();
    let error = response.extensions().get::<ErrorCode>().map(|e| (e.0, e.1));
    let grpc_code = error.map_or(0, |(code, _)| code as i32);
    let elapsed = started.elapsed().as_secs_f64();
    let latency_ms = elapsed * 1000.0;
    let request_id = request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let method = crate::metrics::method_label(&method);
    gateway
        .metrics
        .observe_http(method, route, status, elapsed, error);
    if status >= 500 {
        tracing::warn!(
            request_id, method, route, status, grpc_code, latency_ms, "request"
        );
    } else {
        tracing::info!(
            request_id, method, route, status, grpc_code, latency_ms, "request"
        );
    }
    #[cfg(feature = "otlp")]
    span.finish(route, status, request_id);
    response
}

/// Routes, binds and forwards one request; `label` becomes the route template once the
/// route is known.
async fn transcode<'g>(
    gateway: &'g Gateway,
    request: Request,
    label: &mut &'g str,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    crate::cross_site::check(&gateway.config.cors, &parts.method, &parts.headers)?;
    let (route, vars) = match gateway.routes.lookup(&parts.method, parts.uri.path()) {
        Lookup::Found { route, vars } => (route, vars),
        Lookup::MethodNotAllowed(allow) => {
            return Err(GatewayError::method_not_allowed(&parts.method, &allow));
        }
        Lookup::NotFound => return Err(GatewayError::route_not_found(parts.uri.path())),
    };
    *label = route.template.as_str();

    let config = &gateway.config;
    // Made again for a retry rather than cloned for every call that might need one.
    let forwarded_metadata = || metadata::to_grpc(&parts.headers, &config.transcoding.forward_headers);
    let metadata = forwarded_metadata()?;
    let timeout = metadata::deadline(
        &parts.headers,
        config.upstream.timeout,
        config.upstream.max_timeout,
    )?;
    let received = gateway
        .bodies
        .receive(body, parts.headers.get(header::CONTENT_LENGTH))
        .await?;
    // Only a request whose body has arrived takes a place among those in flight
    // (body_intake.rs says why).
    let _permit = gateway.admission.admit()?;
    let bytes = &received.bytes;
    let body = if bytes.is_empty() {
        None
    } else {
        body::check_content_type(
            parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        )?;
        body::parse(bytes)?
    };
    let request = binding::bind(
        route,
        &vars,
        parts.uri.query(),
        body,
        config.transcoding.unknown_query_parameters,
    )?;

    let request = Arc::new(request);
    let started = Instant::now();
    // Each call picks a connection anew, so a retry after a refused connection goes to the
    // next replica.
    let call = |timeout, metadata| -> Result<UnaryCall, GatewayError> {
        Ok(UnaryCall {
            connection: gateway.connection()?,
            grpc_path: route.method.grpc_path,
            request: request.clone(),
            metadata,
            timeout,
            output: Some(route.output.clone()),
        })
    };
    let unary = match route.method.call {
        MethodCall::Unary(unary) => unary,
        MethodCall::ServerStreaming(open) => {
            let reply = match open(call(timeout, metadata)?).await {
                // Only a stream that never left may go again: no message was sent yet.
                Err(err) if err.never_sent() => match retry::plan(timeout, started.elapsed()) {
                    Some((pause, left)) => {
                        tokio::time::sleep(pause).await;
                        open(call(left, forwarded_metadata()?)?).await?
                    }
                    None => return Err(err),
                },
                result => result?,
            };
            return stream::respond(reply, StreamFormat::from_headers(&parts.headers)).await;
        }
    };
    let attempt = |timeout, metadata| {
        let call = call(timeout, metadata);
        async move { unary(call?).await }
    };
    let outcome = match attempt(timeout, metadata).await {
        Err(err) if retry::retryable(&err, &parts.method) => match retry::plan(timeout, started.elapsed()) {
            Some((pause, left)) => {
                tracing::debug!(error = %err, pause_ms = pause.as_millis() as u64, "retrying once");
                tokio::time::sleep(pause).await;
                attempt(left, forwarded_metadata()?).await
            }
            None => Err(err),
        },
        result => result,
    };
    // A request that failed to decode never reached the upstream: no RPC to count.
    let rpc_code = match &outcome {
        Err(err) if err.fault() == Fault::Client => None,
        Ok(_) => Some(tonic::Code::Ok),
        Err(err) => Some(err.code()),
    };
    if let Some(code) = rpc_code {
        let elapsed = started.elapsed().as_secs_f64();
        gateway.metrics.observe_rpc(route.method.full_name, code, elapsed);
        #[cfg(feature = "otlp")]
        crate::telemetry::record_rpc(route.method.full_name, code);
    }
    let reply = outcome?;

    let body = match (&route.response_body, route.success_status) {
        (_, StatusCode::NO_CONTENT) => Body::empty(),
        (Some(field), _) => Body::from(select_field(&reply.json, field)?),
        (None, _) => Body::from(reply.json),
    };
    let mut response = Response::new(body);
    *response.status_mut() = route.success_status;
    let headers = response.headers_mut();
    if route.success_status != StatusCode::NO_CONTENT {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    metadata::to_http(&reply.metadata, headers);
    Ok(response)
}

/// `response_body`: the one reply field the route answers with. pbjson emits every field,
/// so it is always present.
fn select_field(json: &[u8], field: &str) -> Result<Vec<u8>, GatewayError> {
    let mut reply: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)
        .map_err(|e| GatewayError::internal(format!("reply JSON does not parse back: {e}")))?;
    let value = reply.remove(field).unwrap_or(serde_json::Value::Null);
    serde_json::to_vec(&value)
        .map_err(|e| GatewayError::internal(format!("reply field does not serialize: {e}")))
}
