//! Configuration: `protogate.toml` text → `RawConfig` (serde, unknown keys rejected) →
//! overrides from flags and env vars → `validate()` → the typed `Config` the gateway runs on.
//! Tests build a `Config` from strings and never read the process environment. Whether a
//! rule's selector and fields exist is checked later, against the descriptors, when the route
//! table is built (`routing::rules`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, Uri};
use serde::Deserialize;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: UpstreamConfig,
    pub server: ServerConfig,
    pub transcoding: TranscodingConfig,
    pub cors: CorsConfig,
    pub schema: SchemaConfig,
    pub rules: Vec<RuleSpec>,
    pub protocols: ProtocolsConfig,
}

/// Cross-origin access for browsers. No origins (the default) means CORS is off.
#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `["*"]` for any.
    pub allowed_origins: Vec<http::HeaderValue>,
    pub any_origin: bool,
    pub allow_credentials: bool,
    pub max_age: Duration,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: Uri,
    pub connect_timeout: Duration,
    /// Deadline for a call whose client sent no `grpc-timeout`.
    pub timeout: Duration,
    /// Cap on any deadline, including one asked for by the client.
    pub max_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// How often a hostname is resolved again, to follow replicas coming and going.
    pub resolve_interval: Duration,
    pub readiness: Readiness,
    /// The largest reply message accepted, counted after decompression; more is a 502.
    pub max_reply_bytes: usize,
    /// Request messages of at least this many bytes go gzip-compressed; `None`: never.
    pub compress_requests: Option<usize>,
    /// Set exactly when `url` is `https://`.
    pub tls: Option<UpstreamTls>,
}

/// How `/readyz` asks the upstream whether it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `grpc.health.v1.Health/Check` for the whole server when the upstream serves it;
    /// when it does not (UNIMPLEMENTED, as from the seed's server), that live gRPC answer
    /// is enough. The default.
    Auto,
    /// `grpc.health.v1.Health/Check` for this service name (`""` = the whole server).
    GrpcHealth(String),
    /// A unary method called with an empty request, such as `MyService.Health`.
    Method(String),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_body_bytes: usize,
    /// Time for the whole request body to arrive; slower bodies get 408.
    pub body_timeout: Duration,
    pub header_read_timeout: Duration,
    /// Total size of the request headers (names and values); more gets 431.
    pub max_header_bytes: usize,
    /// Number of request headers; more gets 431.
    pub max_headers: usize,
    /// Length of the request target (path and query); longer gets 414.
    pub max_uri_bytes: usize,
    /// Requests in flight at once; the excess gets 503 with Retry-After at once. A request
    /// takes its place once its body has arrived.
    pub max_concurrent_requests: usize,
    /// Request bodies being received at once; the excess gets 503 with Retry-After.
    pub max_concurrent_body_reads: usize,
    /// Bytes of request bodies held by requests at once; past it, 503 with Retry-After.
    pub max_inflight_body_bytes: usize,
    /// HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// Client connections open at once; a connection past it is closed as soon as it is
    /// accepted, so memory stays bounded whatever the number of clients.
    pub max_connections: usize,
    /// WebSocket calls open at once. Each also holds a place among `max_concurrent_requests`
    /// for its whole life; this cap keeps long-lived sockets from taking all of them. One
    /// more gets 503 with Retry-After before the upgrade.
    pub max_websockets: usize,
    /// A connection with no request in flight for this long is closed (HTTP/2 with GOAWAY).
    pub idle_timeout: Duration,
    /// HTTP/2 pings to a client after this long without a frame from it ...
    pub http2_keepalive_interval: Duration,
    /// ... and the connection is closed when a ping is not acknowledged within this.
    pub http2_keepalive_timeout: Duration,
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct TranscodingConfig {
    pub unbound_methods: bool,
    pub unknown_query_parameters: UnknownParams,
    /// Request headers forwarded as metadata beyond the built-in allow-list.
    pub forward_headers: Vec<HeaderName>,
    /// Which `Grpc-Metadata-*` request headers are forwarded (all, none, or named ones).
    pub client_metadata: ClientMetadata,
    /// How replies are printed, globally and per service and method (`output.rs`).
    pub output: OutputConfig,
    /// Uploads and downloads of raw bodies, and response headers (`raw_bodies.rs`).
    pub raw_bodies: RawBodyConfig,
}

/// Values from flags or env vars that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    /// `--schema` / `PROTOGATE_SCHEMA`: replaces `[schema] source`.
    pub schema: Option<String>,
}

/// A configuration problem, as one line that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    transcoding: RawTranscoding,
    #[serde(default)]
    cors: RawCors,
    #[serde(default)]
    schema: schema::RawSchema,
    #[serde(default)]
    errors: RawErrors,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    protocols: protocols::RawProtocols,
}

/// `[errors]`: the form of error answers, for routes that set none of their own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrors {
    format: Option<ErrorFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<String>,
    connect_timeout: Option<String>,
    timeout: Option<String>,
    max_timeout: Option<String>,
    keepalive_interval: Option<String>,
    keepalive_timeout: Option<String>,
    resolve_interval: Option<String>,
    readiness: Option<String>,
    max_reply_bytes: Option<usize>,
    compress_requests: Option<usize>,
    tls: Option<tls::RawTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    max_body_bytes: Option<usize>,
    body_timeout: Option<String>,
    header_read_timeout: Option<String>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_uri_bytes: Option<usize>,
    max_concurrent_requests: Option<usize>,
    max_concurrent_body_reads: Option<usize>,
    max_inflight_body_bytes: Option<usize>,
    http2_max_concurrent_streams: Option<u32>,
    max_connections: Option<usize>,
    max_websockets: Option<usize>,
    idle_timeout: Option<String>,
    http2_keepalive_interval: Option<String>,
    http2_keepalive_timeout: Option<String>,
    drain_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTranscoding {
    unbound_methods: Option<bool>,
    unknown_query_parameters: Option<String>,
    #[serde(default)]
    forward_headers: Vec<String>,
    client_metadata: Option<RawClientMetadata>,
    upload_chunk_bytes: Option<usize>,
    max_upload_bytes: Option<u64>,
    #[serde(default)]
    response_headers: Vec<String>,
    emit_unpopulated: Option<bool>,
    use_proto_names: Option<bool>,
    enums_as_numbers: Option<bool>,
    strip_enum_prefix: Option<bool>,
    #[serde(default)]
    services: BTreeMap<String, OutputOverrides>,
    #[serde(default)]
    methods: BTreeMap<String, OutputOverrides>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    #[serde(default)]
    allowed_origins: Vec<String>,
    allow_credentials: Option<bool>,
    max_age: Option<String>,
}

impl Config {
    /// Parses and validates a config file's text, then applies `overrides`.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = e.message().replace('\n', " ");
            ConfigError(match line {
                Some(line) => format!("config line {line}: {message}"),
                None => format!("config: {message}"),
            })
        })?;
        raw.validate(overrides)
    }

    /// The configuration used when no file is given.
    pub fn defaults(overrides: &Overrides) -> Result<Config, ConfigError> {
        RawConfig::default().validate(overrides)
    }
}

impl RawConfig {
    fn validate(self, overrides: &Overrides) -> Result<Config, ConfigError> {
        let listen_text = overrides
            .listen
            .clone()
            .or(self.listen)
            .unwrap_or_else(|| "0.0.0.0:8080".to_string());
        let listen = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "listen: {listen_text:?} is not an address such as 0.0.0.0:8080"
            ))
        })?;
        let u = self.upstream;
        let url_text = overrides
            .upstream
            .clone()
            .or(u.url)
            .unwrap_or_else(|| "http://127.0.0.1:50051".to_string());
        let url = parse_upstream_url(&url_text)?;
        let readiness = match u.readiness.as_deref() {
            None | Some("auto") => Readiness::Auto,
            Some("grpc.health.v1") => Readiness::GrpcHealth(String::new()),
            Some(other) => match other.strip_prefix("grpc.health.v1:") {
                Some(service) => Readiness::GrpcHealth(service.to_string()),
                None => Readiness::Method(other.to_string()),
            },
        };
        let upstream = UpstreamConfig {
            connect_timeout: duration("upstream.connect_timeout", u.connect_timeout, "1s")?,
            timeout: duration("upstream.timeout", u.timeout, "5s")?,
            max_timeout: duration("upstream.max_timeout", u.max_timeout, "30s")?,
            keepalive_interval: duration("upstream.keepalive_interval", u.keepalive_interval, "300s")?,
            keepalive_timeout: duration("upstream.keepalive_timeout", u.keepalive_timeout, "20s")?,
            resolve_interval: duration("upstream.resolve_interval", u.resolve_interval, "5s")?,
            readiness,
            max_reply_bytes: positive(
                "upstream.max_reply_bytes",
                u.max_reply_bytes.unwrap_or(4 * 1024 * 1024),
            )?,
            compress_requests: u.compress_requests,
            tls: tls::RawTls::validate(u.tls, &url)?,
            url,
        };
        if upstream.timeout > upstream.max_timeout {
            return Err(ConfigError(
                "upstream.timeout must not exceed upstream.max_timeout".to_string(),
            ));
        }
        let s = self.server;
        let server = ServerConfig {
            max_body_bytes: s.max_body_bytes.unwrap_or(1024 * 1024),
            body_timeout: duration("server.body_timeout", s.body_timeout, "10s")?,
            header_read_timeout: duration("server.header_read_timeout", s.header_read_timeout, "10s")?,
            max_header_bytes: positive("server.max_header_bytes", s.max_header_bytes.unwrap_or(32 * 1024))?,
            max_headers: positive("server.max_headers", s.max_headers.unwrap_or(100))?,
            max_uri_bytes: positive("server.max_uri_bytes", s.max_uri_bytes.unwrap_or(8 * 1024))?,
            max_concurrent_requests: positive(
                "server.max_concurrent_requests",
                s.max_concurrent_requests.unwrap_or(256),
            )?,
            max_concurrent_body_reads: positive(
                "server.max_concurrent_body_reads",
                s.max_concurrent_body_reads.unwrap_or(256),
            )?,
            max_inflight_body_bytes: positive(
                "server.max_inflight_body_bytes",
                s.max_inflight_body_bytes.unwrap_or(32 * 1024 * 1024),
            )?,
            http2_max_concurrent_streams: positive(
                "server.http2_max_concurrent_streams",
                s.http2_max_concurrent_streams.unwrap_or(100) as usize,
            )? as u32,
            max_connections: positive("server.max_connections", s.max_connections.unwrap_or(4096))?,
            max_websockets: positive("server.max_websockets", s.max_websockets.unwrap_or(128))?,
            idle_timeout: duration("server.idle_timeout", s.idle_timeout, "60s")?,
            http2_keepalive_interval: duration(
                "server.http2_keepalive_interval",
                s.http2_keepalive_interval,
                "30s",
            )?,
            http2_keepalive_timeout: duration(
                "server.http2_keepalive_timeout",
                s.http2_keepalive_timeout,
                "20s",
            )?,
            drain_timeout: duration("server.drain_timeout", s.drain_timeout, "20s")?,
        };
        if server.max_body_bytes > server.max_inflight_body_bytes {
            return Err(ConfigError(
                "server.max_body_bytes must not exceed server.max_inflight_body_bytes".to_string(),
            ));
        }
        let t = self.transcoding;
        let unknown_query_parameters = match t.unknown_query_parameters.as_deref() {
            None | Some("reject") => UnknownParams::Reject,
            Some("ignore") => UnknownParams::Ignore,
            Some(other) => {
                return Err(ConfigError(format!(
                    "transcoding.unknown_query_parameters: {other:?} is neither \"reject\" nor \"ignore\""
                )));
            }
        };
        let forward_headers = t
            .forward_headers
            .iter()
            .map(|h| {
                HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    ConfigError(format!("transcoding.forward_headers: {h:?} is not a header name"))
                })
            })
            .collect::<Result<_, _>>()?;
        let transcoding = TranscodingConfig {
            unbound_methods: t.unbound_methods.unwrap_or(true),
            unknown_query_parameters,
            forward_headers,
            client_metadata: RawClientMetadata::validate(t.client_metadata)?,
            raw_bodies: raw_bodies::validate(t.upload_chunk_bytes, t.max_upload_bytes, &t.response_headers)?,
            output: OutputConfig {
                global: OutputOverrides {
                    emit_unpopulated: t.emit_unpopulated,
                    use_proto_names: t.use_proto_names,
                    enums_as_numbers: t.enums_as_numbers,
                    strip_enum_prefix: t.strip_enum_prefix,
                    error_format: self.errors.format,
                }
                .over(OutputOptions::default()),
                services: t.services,
                methods: t.methods,
            },
        };
        let cors = self.cors.validate()?;
        let schema = self.schema.validate(overrides.schema.as_deref())?;
        let rules = self
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_spec(i + 1))
            .collect::<Result<_, _>>()?;
        Ok(Config {
            listen,
            upstream,
            server,
            transcoding,
            cors,
            schema,
            rules,
            protocols: self.protocols.validate(),
        })
    }
}

mod client_metadata;
mod cors;
mod output;
mod protocols;
mod raw_bodies;
mod rules;
mod schema;
mod values;

pub use client_metadata::ClientMetadata;
use client_metadata::RawClientMetadata;
pub use output::{ErrorFormat, OutputConfig, OutputOptions, OutputOverrides};
pub use protocols::{ProtocolOverrides, ProtocolsConfig};
pub use raw_bodies::RawBodyConfig;
pub use schema::{SchemaConfig, SchemaSource};

use rules::RawRule;
pub use rules::{RuleSpec, UnknownParams};

pub use values::parse_duration;
use values::{duration, parse_upstream_url, positive};

mod tls;
pub use tls::UpstreamTls;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
