//! What browsers need beyond plain HTTP: CORS (per configured origin list; preflight answered
//! for every route with `Vary: Origin`; requested headers allowed, reply headers exposed) and gzip response compression negotiated with
//! `Accept-Encoding`. Streams (NDJSON and SSE) are never compressed, so that each message is
//! flushed as it arrives instead of waiting in a compressor's buffer.

use http::{HeaderName, Method, header};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

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
        // Whatever the preflight asks for is allowed: `Grpc-Metadata-*` cannot be listed in
        // advance, and allowing a header only lets the browser send it. What reaches the
        // upstream is still decided by the forwarding allow-list (metadata.rs).
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(expose_headers(config.allow_credentials))
        .allow_credentials(config.allow_credentials)
        .max_age(config.max_age);
    Some(layer)
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
        ])
    } else {
        ExposeHeaders::any()
    }
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
