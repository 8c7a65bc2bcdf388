//! `[server]`: the limits and timeouts of the client side (bodies, headers, connections,
//! concurrency, WebSockets, keep-alive, drain), from `RawServer` to the validated
//! `ServerConfig`.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::values::{duration, positive};

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
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

impl RawServer {
    pub(super) fn validate(self) -> Result<ServerConfig, ConfigError> {
        let server = ServerConfig {
            max_body_bytes: self.max_body_bytes.unwrap_or(1024 * 1024),
            body_timeout: duration("server.body_timeout", self.body_timeout, "10s")?,
            header_read_timeout: duration("server.header_read_timeout", self.header_read_timeout, "10s")?,
            max_header_bytes: positive(
                "server.max_header_bytes",
                self.max_header_bytes.unwrap_or(32 * 1024),
            )?,
            max_headers: positive("server.max_headers", self.max_headers.unwrap_or(100))?,
            max_uri_bytes: positive("server.max_uri_bytes", self.max_uri_bytes.unwrap_or(8 * 1024))?,
            max_concurrent_requests: positive(
                "server.max_concurrent_requests",
                self.max_concurrent_requests.unwrap_or(256),
            )?,
            max_concurrent_body_reads: positive(
                "server.max_concurrent_body_reads",
                self.max_concurrent_body_reads.unwrap_or(256),
            )?,
            max_inflight_body_bytes: positive(
                "server.max_inflight_body_bytes",
                self.max_inflight_body_bytes.unwrap_or(32 * 1024 * 1024),
            )?,
            http2_max_concurrent_streams: positive(
                "server.http2_max_concurrent_streams",
                self.http2_max_concurrent_streams.unwrap_or(100) as usize,
            )? as u32,
            max_connections: positive("server.max_connections", self.max_connections.unwrap_or(4096))?,
            max_websockets: positive("server.max_websockets", self.max_websockets.unwrap_or(128))?,
            idle_timeout: duration("server.idle_timeout", self.idle_timeout, "60s")?,
            http2_keepalive_interval: duration(
                "server.http2_keepalive_interval",
                self.http2_keepalive_interval,
                "30s",
            )?,
            http2_keepalive_timeout: duration(
                "server.http2_keepalive_timeout",
                self.http2_keepalive_timeout,
                "20s",
            )?,
            drain_timeout: duration("server.drain_timeout", self.drain_timeout, "20s")?,
        };
        if server.max_body_bytes > server.max_inflight_body_bytes {
            return Err(ConfigError(
                "server.max_body_bytes must not exceed server.max_inflight_body_bytes".to_string(),
            ));
        }
        Ok(server)
    }
}
