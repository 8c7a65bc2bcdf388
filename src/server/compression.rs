//! gzip response compression negotiated with `Accept-Encoding`. Streams (NDJSON, SSE and
//! raw HttpBody streams, which carry `X-Accel-Buffering: no`) are never compressed, so that
//! each message is flushed as it arrives instead of waiting in a compressor's buffer.

use http::header;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::Predicate;

/// gzip when the client accepts it, for bodies over 32 bytes, except streams (and gRPC and
/// images, as tower-http's default predicate has it).
pub fn compression() -> CompressionLayer<Compressible> {
    CompressionLayer::new()
        .no_br()
        .no_deflate()
        .no_zstd()
        .gzip(true)
        .compress_when(Compressible)
}

/// tower-http's `DefaultPredicate` plus the two stream types, in one pass over the headers:
/// the combinator version looks the content type up once per condition, on every response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Compressible;

/// Content types never compressed: streams must flush per message.
const NOT_COMPRESSED: [&[u8]; 4] = [
    b"application/grpc",
    b"image/",
    b"text/event-stream",
    b"application/x-ndjson",
];

impl Predicate for Compressible {
    fn should_compress<B: hyper::body::Body>(&self, response: &http::Response<B>) -> bool {
        let size = response.body().size_hint().exact().or_else(|| {
            response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        if size.is_some_and(|size| size < 32) {
            return false;
        }
        // A stream that asks proxies not to buffer it (a raw HttpBody download of any
        // content type, gateway/raw_body.rs) is not buffered by a compressor either.
        if response
            .headers()
            .get("x-accel-buffering")
            .is_some_and(|v| v.as_bytes() == b"no")
        {
            return false;
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map_or(&[][..], |v| v.as_bytes());
        // image/svg+xml is text and compresses well; DefaultPredicate makes the same exception.
        if content_type.starts_with(b"image/svg+xml") {
            return true;
        }
        !NOT_COMPRESSED
            .iter()
            .any(|prefix| content_type.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(content_type: &str, body: &'static str) -> http::Response<String> {
        http::Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_string())
            .expect("response")
    }

    #[test]
    fn json_is_compressed_streams_and_small_bodies_are_not() {
        let long = "{\"message\":\"success\",\"data\":[1,2,3,4,5,6,7,8,9]}";
        assert!(Compressible.should_compress(&response("application/json", long)));
        assert!(Compressible.should_compress(&response("image/svg+xml", long)));
        assert!(!Compressible.should_compress(&response("application/json", "{}")));
        for stream in [
            "text/event-stream",
            "application/x-ndjson",
            "application/grpc+proto",
            "image/png",
        ] {
            assert!(!Compressible.should_compress(&response(stream, long)), "{stream}");
        }
    }
}
