//! Operational endpoints, answered before routing: `/healthz` (liveness; never touches the
//! upstream), `/readyz` (503 while draining, else asks the upstream: grpc.health.v1 or a
//! configured method), `/openapi.json` and `/docs` (built by `openapi.rs`). These paths are
//! reserved and shadow any route with the same path.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::config::Readiness;
use crate::error::GatewayError;
use crate::forward::UnaryCall;
use crate::gateway::Gateway;
use crate::grpc::{self, Outgoing};
use crate::methods;

const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The paths answered here; they shadow any route with the same path.
pub const RESERVED_PATHS: [&str; 5] = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];

/// The reserved path `path` is, if it is one (as a `'static` label for logs and metrics).
pub fn reserved(path: &str) -> Option<&'static str> {
    RESERVED_PATHS.iter().copied().find(|p| *p == path)
}

/// Answers an operational request on one of the [`RESERVED_PATHS`].
pub async fn answer(gateway: &Gateway, method: &Method, path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return GatewayError::method_not_allowed(method, &[Method::GET, Method::HEAD]).into_response();
    }
    match path {
        "/healthz" => status_json("SERVING"),
        "/metrics" => {
            let mut response = gateway.metrics().render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/openapi.json" => crate::openapi::json_response(gateway.openapi()),
        "/docs" => crate::openapi::docs_response(),
        _ => match ready(gateway).await {
            Ok(()) => status_json("SERVING"),
            // Not ready is 503 whatever the cause (a probe timeout would otherwise be 504):
            // orchestrators read any non-2xx as not ready, and people read 503 as "not yet".
            Err(err) if err.code() == tonic::Code::Unavailable => err.into_response(),
            Err(err) => GatewayError::unavailable(format!("not ready: {}", err.message())).into_response(),
        },
    }
}

fn status_json(status: &'static str) -> Response {
    let mut response = (StatusCode::OK, format!("{{\"status\":\"{status}\"}}")).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn ready(gateway: &Gateway) -> Result<(), GatewayError> {
    if gateway.is_draining() {
        return Err(GatewayError::unavailable("draining: shutting down"));
    }
    match &gateway.config().upstream.readiness {
        Readiness::GrpcHealth(service) => {
            let outgoing = Outgoing {
                path: "/grpc.health.v1.Health/Check",
                metadata: Default::default(),
                timeout: READY_TIMEOUT,
                body: grpc::frame(&HealthCheckRequest {
                    service: service.clone(),
                }),
            };
            let (_, reply) =
                tokio::time::timeout(READY_TIMEOUT, grpc::unary(&gateway.connection()?, outgoing))
                    .await
                    .map_err(|_| GatewayError::deadline_exceeded(READY_TIMEOUT))??;
            let reply = crate::forward::decode::<HealthCheckResponse>(reply)?;
            match reply.status() {
                ServingStatus::Serving => Ok(()),
                other => Err(GatewayError::unavailable(format!(
                    "upstream health is {}",
                    other.as_str_name()
                ))),
            }
        }
        Readiness::Method(name) => {
            let entry = methods::find(name).ok_or_else(|| {
                GatewayError::internal(format!("readiness method {name} is not in the method table"))
            })?;
            let call = UnaryCall {
                connection: gateway.connection()?,
                grpc_path: entry.grpc_path,
                request: std::sync::Arc::new(serde_json::json!({})),
                metadata: Default::default(),
                timeout: READY_TIMEOUT,
                output: None,
            };
            match entry.call {
                crate::methods::MethodCall::Unary(unary) => unary(call).await.map(|_| ()),
                crate::methods::MethodCall::ServerStreaming(_) => Err(GatewayError::internal(format!(
                    "readiness method {name} streams; it must be unary"
                ))),
            }
        }
    }
}

/// `protogate healthcheck`: a minimal HTTP/1.1 GET that exits 0 on a 200 answer. Slim
/// images carry no curl, so the binary probes itself.
pub async fn probe(url: &str, timeout: Duration) -> std::process::ExitCode {
    match tokio::time::timeout(timeout, probe_status(url)).await {
        Ok(Ok(200)) => std::process::ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("healthcheck: {url} answered {status}");
            std::process::ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("healthcheck: {url}: {err}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck: {url}: no answer within {}ms", timeout.as_millis());
            std::process::ExitCode::FAILURE
        }
    }
}

async fn probe_status(url: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs can be probed".to_string());
    }
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nUser-Agent: protogate-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        let n = stream
            .read(&mut head[filled..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let line = String::from_utf8_lossy(&head[..filled]);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}
