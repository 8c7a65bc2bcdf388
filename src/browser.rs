//! What browsers need beyond plain HTTP: CORS (per configured origin list; preflight answered
//! for every route with `Vary: Origin`) and gzip response compression negotiated with
//! `Accept-Encoding`. Streams (NDJSON and SSE) are never compressed, so that each message is
//! flushed as it arrives instead of waiting in a compressor's buffer.

use http::{HeaderName, Method, header};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsConfig;

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
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .allow_credentials(config.allow_credentials)
        .max_age(config.max_age);
    Some(layer)
}

/// gzip when the client accepts it, for bodies over 32 bytes, except streams.
pub fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = DefaultPredicate::new()
        .and(NotForContentType::const_new("text/event-stream"))
        .and(NotForContentType::const_new("application/x-ndjson"));
    CompressionLayer::new()
        .no_br()
        .no_deflate()
        .no_zstd()
        .gzip(true)
        .compress_when(predicate)
}
