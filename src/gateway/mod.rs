//! The request lifecycle and the shared `Gateway` state (schema, upstream, config, draining
//! flag, admission, metrics). Every request passes through [`handle`]: head limits, the
//! reserved operational paths (`ops`, never shed), then `transcode.rs` (route → body →
//! admission → binding → codec → call → response); and one access-log line and request metric
//! at the end (`access.rs`). Streams are rendered by `stream.rs`.

pub mod access;
pub mod reload;
pub mod stream;
mod transcode;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
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
                tracing::info!(
                    source = %self.schema.source(),
                    hash = schema.hash(),
                    routes = schema.routes().routes().len(),
                    "schema loaded"
                );
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

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
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
    let reserved = routing::reserved(request.uri().path());
    let active = gateway.metrics.active();
    // Kept to the end of the request: a reload meanwhile does not change what it runs on.
    let schema = gateway.schema.get();
    let (route, response) = if let Err(err) = admission::check_head(&gateway.config.server, &request) {
        ("(rejected)", err.into_response())
    } else if let Some(path) = reserved {
        // Probes are never shed: an overloaded gateway is still alive.
        (
            path,
            answer_reserved(&gateway, schema.as_deref(), &method, path).await,
        )
    } else if let Some(schema) = &schema {
        // Admission (the concurrency limit) happens in `transcode`, once the body is in.
        let work = transcode::transcode(&gateway, schema, request);
        #[cfg(feature = "otlp")]
        let work = span.scope(work);
        let (label, response) = work.await;
        (label, response.unwrap_or_else(IntoResponse::into_response))
    } else {
        ("(unmatched)", no_schema(&gateway).into_response())
    };
    drop(active);
    let status = response.status().as_u16();
    let request_id = request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    access::record(
        &gateway.metrics,
        access::Entry {
            request_id,
            method: crate::metrics::method_label(&method),
            route,
            status,
            error: response.extensions().get::<ErrorCode>().map(|e| (e.0, e.1)),
            elapsed: started.elapsed(),
            preflight: None,
        },
    );
    #[cfg(feature = "otlp")]
    span.finish(route, status, request_id);
    response
}

/// The answer while no schema has been loaded yet.
fn no_schema(gateway: &Gateway) -> GatewayError {
    GatewayError::unavailable(format!("no schema yet: {}", gateway.schema.waiting()))
}

/// Answers a request on one of the reserved operational paths.
async fn answer_reserved(
    gateway: &Gateway,
    schema: Option<&Schema>,
    method: &Method,
    path: &str,
) -> Response {
    if let Some(response) = ops::refuse_method(method) {
        return response;
    }
    match (path, schema) {
        ("/healthz", _) => probes::healthz(),
        ("/metrics", _) => ops::metrics(&gateway.metrics),
        ("/docs", _) => ops::docs::docs_response(),
        (_, None) => no_schema(gateway).into_response(),
        ("/openapi.json", Some(schema)) => ops::docs::json_response(schema.openapi()),
        (_, Some(schema)) => {
            probes::readyz(probes::ReadyCheck {
                upstream: &gateway.upstream,
                readiness: &gateway.config.upstream.readiness,
                schema,
                source: gateway.schema.source(),
                draining: gateway.is_draining(),
            })
            .await
        }
    }
}
