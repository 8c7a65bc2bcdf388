//! The request lifecycle and the shared `Gateway` state (schema, upstream, config, draining
//! flag, admission, metrics). Every request passes through [`handle`]: head limits, the
//! reserved operational paths (`ops`, never shed), then `transcode.rs` (route → body →
//! admission → binding → codec → call → response); and one access-log line and request metric
//! at the end (`access.rs`). Streams are rendered by `stream.rs`.

pub mod access;
mod client_stream;
mod connect;
mod connect_error;
mod connect_stream;
mod duplex;
mod grpc_web;
mod json_envelopes;
mod messages;
mod passthrough;
mod raw_body;
mod relayed;
pub mod reload;
pub mod served;
pub mod stream;
mod transcode;
pub mod websocket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use http::Method;

use crate::admission::{self, Admission};
use crate::body_intake::BodyIntake;
use crate::config::Config;
use crate::error::ErrorCode;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::ops::{self, probes};
use crate::routing;
use crate::schema::Schema;
use crate::schema::live::{LiveSchema, LoadError};
use crate::startup::StartupError;
use crate::upstream::Upstream;

/// Everything a request needs, built once at startup and shared.
pub struct Gateway {
    schema: Arc<LiveSchema>,
    upstream: Arc<Upstream>,
    config: Config,
    draining: AtomicBool,
    admission: Admission,
    bodies: BodyIntake,
    metrics: Metrics,
    sockets: websocket::Sockets,
}

impl Gateway {
    /// Builds the upstream and, for a source on this machine, the schema (validating every
    /// rule); a reflection source is read by `first_schema`. Must run inside a tokio runtime.
    pub fn new(config: Config) -> Result<Gateway, StartupError> {
        let upstream = Upstream::new(&config.upstream).map_err(StartupError::Upstream)?;
        Self::with_upstream(config, upstream)
    }

    /// Like `new`, with an upstream built elsewhere (tests inject resolvers this way).
    pub fn with_upstream(config: Config, upstream: Arc<Upstream>) -> Result<Gateway, StartupError> {
        let schema = Arc::new(LiveSchema::new(config.schema.source.clone()));
        if *schema.source() != crate::config::SchemaSource::Reflection {
            let first = schema
                .read_local(&config)
                .map_err(|e| StartupError::Schema(e.to_string()))?;
            schema.install(first);
        }
        let admission = Admission::new(config.server.max_concurrent_requests);
        let bodies = BodyIntake::new(&config.server);
        Ok(Gateway {
            schema,
            upstream,
            config,
            draining: AtomicBool::new(false),
            admission,
            bodies,
            metrics: Metrics::default(),
            sockets: websocket::Sockets::default(),
        })
    }

    /// The schema in use; `None` until a reflection source gave a first one.
    pub fn schema(&self) -> Option<Arc<Schema>> {
        self.schema.get()
    }

    /// Reads a reflection source for the first time. An upstream that is down is no startup
    /// failure (the gateway answers 503 until the reload loop gets a schema); one that serves
    /// no reflection, or a schema that the rules refuse, is.
    pub async fn first_schema(&self) -> Result<(), StartupError> {
        if self.schema.get().is_some() {
            return Ok(());
        }
        match self.schema.fetch(&self.config, &self.upstream).await {
            Ok(None) => Ok(()),
            Ok(Some(schema)) => {
                reload::announce(self, &schema, "startup");
                self.schema.install(schema);
                self.metrics.schema_reloaded("changed");
                Ok(())
            }
            Err(err @ LoadError::Unavailable(_)) => {
                tracing::warn!(error = %err, "no schema yet: answering 503 until the upstream answers");
                self.metrics.schema_reloaded("error");
                self.schema.still_waiting(&err);
                Ok(())
            }
            Err(err) => Err(StartupError::Schema(err.to_string())),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Why there is no schema yet (while `schema()` is `None`).
    pub fn schema_waiting(&self) -> String {
        self.schema.waiting()
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The open WebSocket sessions (the drain waits for them, then closes them).
    pub fn sockets(&self) -> &websocket::Sockets {
        &self.sockets
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
    let request_id = request.headers().get(&crate::request_id::X_REQUEST_ID).cloned();
    let reserved = routing::reserved(request.uri().path());
    // The front-end: gRPC by its content type; everything else is REST. One header lookup,
    // which a REST GET (no content type) answers at once.
    let active = gateway.metrics.active();
    // Kept to the end of the request: a reload meanwhile does not change what it runs on.
    let schema = gateway.schema.get();
    let front = front(&gateway, schema.as_deref(), &request);
    let mut label = String::new();
    // Errors in the route's form, else the gateway's; a problem body names the request id.
    let errors = gateway.config.transcoding.output.global.error_format;
    let id = request_id.as_ref().and_then(|v| v.to_str().ok());
    let answer = |err: GatewayError| err.in_format(errors).into_response_for(id);
    let (route, response) = if let Err(err) = admission::check_head(&gateway.config.server, &request) {
        ("(rejected)", answer(err))
    } else if let Some(path) = reserved {
        // Probes are never shed: an overloaded gateway is still alive.
        (
            path,
            answer_reserved(&gateway, schema.as_deref(), &method, path)
                .await
                .unwrap_or_else(answer),
        )
    } else if front != Front::Rest {
        let response = match front {
            Front::Connect => connect::serve(&gateway, schema.as_deref(), request, &mut label).await,
            Front::GrpcWeb => grpc_web::serve(&gateway, schema.as_deref(), request, &mut label).await,
            Front::ConnectStream => {
                connect_stream::serve(&gateway, schema.as_deref(), request, &mut label).await
            }
            _ => passthrough::pass(&gateway, schema.as_deref(), request, &mut label).await,
        };
        let label = if label.is_empty() {
            "(unmatched)"
        } else {
            label.as_str()
        };
        (label, response)
    } else if let Some(schema) = &schema {
        // Admission (the concurrency limit) happens in `transcode`, once the body is in.
        let work = transcode::transcode(&gateway, schema, request);
        #[cfg(feature = "otlp")]
        let work = span.scope(work);
        let (label, response) = work.await;
        (label, response.unwrap_or_else(answer))
    } else {
        ("(unmatched)", answer(no_schema(&gateway)))
    };
    drop(active);
    let status = response.status().as_u16();
    let request_id = id.unwrap_or_default();
    access::record(
        &gateway.metrics,
        access::Entry {
            request_id,
            method: crate::metrics::method_label(&method),
            route,
            status,
            error: response.extensions().get::<ErrorCode>(),
            elapsed: started.elapsed(),
            preflight: None,
            protocol: front.name(),
        },
    );
    #[cfg(feature = "otlp")]
    span.finish(route, status, request_id);
    response
}

/// The front-ends beside REST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Rest,
    Grpc,
    GrpcWeb,
    Connect,
    ConnectStream,
}

impl Front {
    /// The access log's and the metric's name (`metrics::PROTOCOLS`).
    fn name(self) -> &'static str {
        match self {
            Front::Rest => "rest",
            Front::Grpc => "grpc",
            Front::GrpcWeb => "grpc-web",
            Front::Connect | Front::ConnectStream => "connect",
        }
    }
}

/// Picks the front-end by the content type (and, for JSON, Connect's header): one header
/// lookup; a GET without a content type is Connect's only when its query has `message=` and
/// `encoding=` on a method's path (a substring test of the query, for the seed's GET). gRPC answers even when it is
/// turned off (it says so in its own form); Connect turned off leaves its requests to REST,
/// as before it was served.
fn front(gateway: &Gateway, schema: Option<&Schema>, request: &Request) -> Front {
    let headers = request.headers();
    let Some(content_type) = headers.get(http::header::CONTENT_TYPE) else {
        // A Connect GET carries its message in the query, on a method's path.
        let connect_get = request.method() == Method::GET
            && gateway.config.protocols.connect
            && connect::is_connect_get(schema, request.uri());
        return if connect_get { Front::Connect } else { Front::Rest };
    };
    let content_type = content_type.as_bytes();
    if passthrough::is_grpc(content_type) {
        Front::Grpc
    } else if grpc_web::is_grpc_web(content_type).is_some() {
        Front::GrpcWeb
    } else if gateway.config.protocols.connect && connect::is_connect(content_type, headers) {
        Front::Connect
    } else if gateway.config.protocols.connect && connect_stream::is_connect_stream(content_type).is_some() {
        Front::ConnectStream
    } else {
        Front::Rest
    }
}

/// The answer while no schema has been loaded yet.
fn no_schema(gateway: &Gateway) -> GatewayError {
    GatewayError::unavailable(format!("no schema yet: {}", gateway.schema.waiting()))
}

/// Answers a request on one of the reserved operational paths; its errors (405, no schema
/// yet, not ready) in the gateway's error format.
async fn answer_reserved(
    gateway: &Gateway,
    schema: Option<&Schema>,
    method: &Method,
    path: &str,
) -> Result<Response, GatewayError> {
    if let Some(err) = ops::refuse_method(method) {
        return Err(err);
    }
    match (path, schema) {
        ("/healthz", _) => Ok(probes::healthz()),
        ("/metrics", _) => Ok(ops::metrics(&gateway.metrics)),
        ("/docs", _) => Ok(ops::docs::docs_response()),
        (_, None) => Err(no_schema(gateway)),
        ("/openapi.json", Some(schema)) => Ok(ops::docs::json_response(schema.openapi())),
        (_, Some(schema)) => {
            probes::readyz(probes::ReadyCheck {
                upstream: &gateway.upstream,
                readiness: &gateway.config.upstream.readiness,
                schema,
                source: gateway.schema.source(),
                mismatch: gateway.schema.mismatch(),
                draining: gateway.is_draining(),
            })
            .await
        }
    }
}
