//! CORS for browsers, per the configured origin list: preflights answered for every route
//! with `Vary: Origin`, requested headers allowed, reply headers exposed. Preflights, which
//! the CORS layer answers before the gateway handler sees them, get their access-log line
//! and metric here (through `gateway::access`, like every other request), saying whether
//! the origin was allowed.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::{BoxFuture, Either};
use http::{HeaderName, Method, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::config::CorsConfig;
use crate::gateway::{Gateway, access};

/// The CORS layer, or `None` when no origin is configured.
pub fn cors(config: &CorsConfig) -> Option<CorsLayer> {
    let origins = if config.any_origin {
        AllowOrigin::any()
    } else if config.allowed_origins.is_empty() {
        return None;
    } else {
        AllowOrigin::list(config.allowed_origins.clone())
    };
    let layer = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        // Whatever the preflight asks for is allowed: `Grpc-Metadata-*` cannot be listed in
        // advance, and allowing a header only lets the browser send it. What reaches the
        // upstream is still decided by the forwarding allow-list (metadata.rs).
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(expose_headers(config.allow_credentials))
        .allow_credentials(config.allow_credentials)
        .max_age(config.max_age);
    Some(layer)
}

/// Logs and counts the preflights that the CORS layer inside it answers: one `request` line
/// each, with route `(preflight)`, the origin and whether it was allowed, so that a page's
/// "CORS error" can be found in the log. Every other request passes through untouched.
#[derive(Clone)]
pub struct PreflightLogLayer(pub Arc<Gateway>);

impl<S> tower::Layer<S> for PreflightLogLayer {
    type Service = PreflightLog<S>;

    fn layer(&self, inner: S) -> PreflightLog<S> {
        PreflightLog {
            inner,
            gateway: self.0.clone(),
        }
    }
}

/// The service of [`PreflightLogLayer`].
#[derive(Clone)]
pub struct PreflightLog<S> {
    inner: S,
    gateway: Arc<Gateway>,
}

/// The longest origin written to the log; the rest is cut (origins are client input).
const MAX_LOGGED_ORIGIN: usize = 200;

impl<S, B, R> tower::Service<http::Request<B>> for PreflightLog<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<BoxFuture<'static, Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let headers = request.headers();
        if request.method() != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Either::Right(self.inner.call(request));
        }
        let started = Instant::now();
        let text = |name: &str| -> String {
            let value = headers.get(name).map(|v| v.to_str().unwrap_or("(not ASCII)"));
            let value = value.unwrap_or_default();
            // Visible ASCII only (to_str), so every byte index is a char boundary.
            value[..value.len().min(MAX_LOGGED_ORIGIN)].to_string()
        };
        let origin = text("origin");
        let requested_method = text("access-control-request-method");
        let request_id = text("x-request-id");
        let gateway = self.gateway.clone();
        let answer = self.inner.call(request);
        Either::Left(Box::pin(async move {
            let response = answer.await?;
            let allowed = response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN);
            access::record(
                gateway.metrics(),
                access::Entry {
                    request_id: &request_id,
                    method: "OPTIONS",
                    route: "(preflight)",
                    status: response.status().as_u16(),
                    error: None,
                    elapsed: started.elapsed(),
                    protocol: "rest",
                    preflight: Some(access::Preflight {
                        origin: &origin,
                        requested_method: &requested_method,
                        allowed,
                    }),
                },
            );
            Ok(response)
        }))
    }
}

/// Response headers a page's script may read. Without credentials, every one (`*`), so that
/// `Grpc-Metadata-*` reply headers and `Allow` are readable; the wildcard does not count for
/// credentialed requests (Fetch standard), so those get the gateway's own headers by name.
fn expose_headers(credentials: bool) -> ExposeHeaders {
    if credentials {
        ExposeHeaders::list([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::ALLOW,
            // A gRPC-Web answer's status when it is in the head (trailers-only).
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
        ])
    } else {
        ExposeHeaders::any()
    }
}
