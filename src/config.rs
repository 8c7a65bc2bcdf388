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
        let server = self.server.validate()?;
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
mod server;
mod values;

pub use client_metadata::ClientMetadata;
use client_metadata::RawClientMetadata;
pub use output::{ErrorFormat, OutputConfig, OutputOptions, OutputOverrides};
pub use protocols::{ProtocolOverrides, ProtocolsConfig};
pub use raw_bodies::RawBodyConfig;
pub use schema::{SchemaConfig, SchemaSource};
use server::RawServer;
pub use server::ServerConfig;

use rules::RawRule;
pub use rules::{RuleSpec, UnknownParams};

pub use values::parse_duration;
use values::{duration, parse_upstream_url, positive};

mod tls;
pub use tls::UpstreamTls;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
