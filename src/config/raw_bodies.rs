//! The `[transcoding]` keys for bodies that are not JSON (`google.api.HttpBody`) and for
//! downloads: `upload_chunk_bytes` (the message size of a streamed upload),
//! `max_upload_bytes` (the bound of an upload, apart from `server.max_body_bytes`) and
//! `response_headers` (upstream header metadata answered as plain HTTP headers). How they
//! are used is the gateway's (`gateway/raw_body.rs`, `metadata.rs`).

use http::HeaderName;

use super::ConfigError;

/// Envoy's chunk size for streamed `HttpBody` uploads.
pub const DEFAULT_UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;
/// The largest upload by default: 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1024 * 1024 * 1024;
/// The largest chunk: well under grpcio's and grpc-go's 4 MiB receive limit once framed.
const MAX_UPLOAD_CHUNK_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// Validated `[transcoding]` keys of raw bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBodyConfig {
    /// A client-streaming `HttpBody` upload is sent in messages of this many bytes (the last
    /// one smaller).
    pub upload_chunk_bytes: usize,
    /// The most bytes an `HttpBody` upload or a `multipart/form-data` form may have (413
    /// past it). A unary upload or a form is held whole, so it is also bounded by
    /// `server.max_inflight_body_bytes`.
    pub max_upload_bytes: u64,
    /// Upstream header metadata of these names is answered as HTTP headers of the same name
    /// (not as `Grpc-Metadata-*`).
    pub response_headers: Vec<HeaderName>,
}

impl Default for RawBodyConfig {
    fn default() -> RawBodyConfig {
        RawBodyConfig {
            upload_chunk_bytes: DEFAULT_UPLOAD_CHUNK_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            response_headers: Vec::new(),
        }
    }
}

/// Names that an upstream must never set on the HTTP response: they frame the body or the
/// connection (or are the gRPC protocol's own), which the gateway alone decides.
fn is_refused(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "content-type"
            | "content-encoding"
    ) || name.starts_with("grpc-")
        || name.starts_with(':')
}

/// The typed keys from their TOML values.
pub(super) fn validate(
    upload_chunk_bytes: Option<usize>,
    max_upload_bytes: Option<u64>,
    response_headers: &[String],
) -> Result<RawBodyConfig, ConfigError> {
    let upload_chunk_bytes = upload_chunk_bytes.unwrap_or(DEFAULT_UPLOAD_CHUNK_BYTES);
    if !(1..=MAX_UPLOAD_CHUNK_BYTES).contains(&upload_chunk_bytes) {
        return Err(ConfigError(format!(
            "transcoding.upload_chunk_bytes: {upload_chunk_bytes} is not between 1 and {MAX_UPLOAD_CHUNK_BYTES}"
        )));
    }
    let max_upload_bytes = max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
    if max_upload_bytes == 0 {
        return Err(ConfigError(
            "transcoding.max_upload_bytes must be positive".to_string(),
        ));
    }
    let response_headers = response_headers
        .iter()
        .map(|name| {
            let key = "transcoding.response_headers";
            let header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| ConfigError(format!("{key}: {name:?} is not a header name")))?;
            if is_refused(header.as_str()) {
                return Err(ConfigError(format!(
                    "{key}: {name:?} frames the response, which only the gateway may set"
                )));
            }
            Ok(header)
        })
        .collect::<Result<_, _>>()?;
    Ok(RawBodyConfig {
        upload_chunk_bytes,
        max_upload_bytes,
        response_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let config = validate(None, None, &[]).expect("defaults");
        assert_eq!(config, RawBodyConfig::default());
        assert_eq!(config.upload_chunk_bytes, 1024 * 1024);
        let err = validate(Some(0), None, &[]).expect_err("zero chunk");
        assert!(
            err.0
                .starts_with("transcoding.upload_chunk_bytes: 0 is not between"),
            "{}",
            err.0
        );
        assert!(validate(Some(8 * 1024 * 1024), None, &[]).is_err());
        assert!(validate(None, Some(0), &[]).is_err());
    }

    #[test]
    fn response_headers_are_lowercased_and_framing_names_refused() {
        let names = ["Content-Disposition".to_string(), "ETag".to_string()];
        let config = validate(None, None, &names).expect("valid");
        let got: Vec<&str> = config.response_headers.iter().map(HeaderName::as_str).collect();
        assert_eq!(got, ["content-disposition", "etag"]);
        for refused in [
            "content-length",
            "Transfer-Encoding",
            "grpc-status",
            "content-type",
        ] {
            let err = validate(None, None, &[refused.to_string()]).expect_err(refused);
            assert!(err.0.contains("frames the response"), "{}", err.0);
        }
        assert!(validate(None, None, &["bad name".to_string()]).is_err());
    }
}
