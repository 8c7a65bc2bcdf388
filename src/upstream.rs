//! The upstream channel: the only place that knows the upstream's address. Builds one lazily
//! connecting tonic `Channel`, so the gateway starts and serves while the upstream is down
//! and connects once it is up, with a connect timeout (tonic has none by default) and an
//! HTTP/2 keepalive that stays within grpcio's default ping policy (one ping per 5 minutes
//! without data; faster pings earn a GOAWAY `too_many_pings`).

use tonic::transport::{Channel, Endpoint};

use crate::config::UpstreamConfig;

/// Builds the lazily connecting channel for `config`.
pub fn channel(config: &UpstreamConfig) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(config.url.to_string())
        .map_err(|e| format!("upstream.url {}: {e}", config.url))?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(false)
        .user_agent(concat!("protogate/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| format!("user agent: {e}"))?;
    Ok(endpoint.connect_lazy())
}
