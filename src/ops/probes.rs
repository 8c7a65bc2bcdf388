//! The probes: `/healthz` (liveness; never touches the upstream) and `/readyz` (503 while
//! draining, else asks the upstream: grpc.health.v1 when it serves it and a live gRPC
//! answer otherwise (`auto`, the default), grpc.health.v1 strictly, or a configured method;
//! 503 with the warning's words while the upstream is known to serve none of the schema's
//! services, `gateway/served.rs`). They take the
//! narrow pieces they read (the upstream, the readiness setting, the method table, the
//! draining flag), never the whole gateway.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use prost::Message as _;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::codec::{self, Call};
use crate::config::Readiness;
use crate::config::SchemaSource;
use crate::error::GatewayError;
use crate::grpc::{self, Outgoing};
use crate::schema::Schema;
use crate::upstream::Upstream;

const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// What `/readyz` needs to know.
pub struct ReadyCheck<'a> {
    pub upstream: &'a Upstream,
    pub readiness: &'a Readiness,
    /// The schema in use (its methods, its hash) and where it came from.
    pub schema: &'a Schema,
    pub source: &'a SchemaSource,
    /// Why the upstream does not serve the schema, when a check found that
    /// (`gateway/served.rs`): not ready, whatever its health says.
    pub mismatch: Option<String>,
    pub draining: bool,
}

/// `/healthz`: the process is alive.
pub fn healthz() -> Response {
    status_json("SERVING")
}

/// `/readyz`: 200 when the upstream says it is ready, else 503. The answer names the schema
/// in use: its source and hash.
pub async fn readyz(check: ReadyCheck<'_>) -> Result<Response, GatewayError> {
    let schema = serde_json::json!({"source": check.source.to_string(), "hash": check.schema.hash()});
    match ready(check).await {
        Ok(()) => {
            let body = serde_json::json!({"status": "SERVING", "schema": schema});
            let mut response = (StatusCode::OK, body.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        // Not ready is 503 whatever the cause (a probe timeout would otherwise be 504):
        // orchestrators read any non-2xx as not ready, and people read 503 as "not yet".
        Err(err) if err.code() == tonic::Code::Unavailable => Err(err),
        Err(err) => Err(GatewayError::unavailable(format!("not ready: {}", err.message()))),
    }
}

fn status_json(status: &'static str) -> Response {
    let mut response = (StatusCode::OK, format!("{{\"status\":\"{status}\"}}")).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn ready(check: ReadyCheck<'_>) -> Result<(), GatewayError> {
    if check.draining {
        return Err(GatewayError::unavailable("draining: shutting down"));
    }
    if let Some(why) = check.mismatch {
        return Err(GatewayError::unavailable(format!("not ready: {why}")));
    }
    match check.readiness {
        Readiness::GrpcHealth(service) => health_check(check.upstream, service).await,
        // The seed's server has no grpc.health.v1: its UNIMPLEMENTED answer still proves a
        // gRPC server that takes calls. A missing server, a non-gRPC one (an HTTP 404 is
        // not such an answer) or a health service that says NOT_SERVING is not ready.
        Readiness::Auto => match health_check(check.upstream, "").await {
            Err(err) if grpc::is_unimplemented_answer(&err) => Ok(()),
            outcome => outcome,
        },
        Readiness::Method(name) => {
            let method = check.schema.methods().find(name).ok_or_else(|| {
                GatewayError::internal(format!("readiness method {name} is not in the method table"))
            })?;
            if method.is_streaming() {
                return Err(GatewayError::internal(format!(
                    "readiness method {name} streams; it must be unary"
                )));
            }
            let call = Call {
                connection: check.upstream.connection()?,
                grpc_path: method.grpc_path.clone(),
                body: method.codec.encode_request(&serde_json::json!({}))?,
                metadata: Default::default(),
                timeout: READY_TIMEOUT,
                printing: Default::default(),
            };
            codec::unary(&*method.codec, call).await.map(|_| ())
        }
    }
}

/// `grpc.health.v1.Health/Check` for `service`: ready when it says SERVING.
async fn health_check(upstream: &Upstream, service: &str) -> Result<(), GatewayError> {
    let outgoing = Outgoing {
        path: http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check"),
        metadata: Default::default(),
        timeout: READY_TIMEOUT,
        body: grpc::frame(&HealthCheckRequest {
            service: service.to_string(),
        }),
    };
    let connection = upstream.connection()?;
    let reply = tokio::time::timeout(READY_TIMEOUT, grpc::unary(&connection, outgoing))
        .await
        .map_err(|_| GatewayError::deadline_exceeded(READY_TIMEOUT))??;
    let reply = HealthCheckResponse::decode(reply.message)
        .map_err(|e| GatewayError::bad_upstream_reply(format!("upstream reply does not decode: {e}")))?;
    match reply.status() {
        ServingStatus::Serving => Ok(()),
        other => Err(GatewayError::unavailable(format!(
            "upstream health is {}",
            other.as_str_name()
        ))),
    }
}
