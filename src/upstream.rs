//! The upstream: the only place that knows its address. One lazily connecting tonic `Channel`
//! per resolved address, picked round-robin, so that `docker compose --scale users=3` (one
//! DNS name, several addresses) spreads calls over every replica. A hostname is resolved
//! again every `upstream.resolve_interval`; channels of addresses that stay are kept (with
//! their HTTP/2 connections), new addresses get a channel, gone ones are dropped. An IP
//! literal is used as it is, with no resolving.
//!
//! Each channel connects lazily, so the gateway starts and serves while the upstream is down
//! and connects once it is up; it has a connect timeout (tonic has none by default) and an
//! HTTP/2 keepalive within grpcio's default ping policy (one ping per 5 minutes without
//! data; faster pings earn a GOAWAY `too_many_pings`).
//!
//! An `https://` upstream is dialled with rustls: the configured CA or the system roots, an
//! optional client certificate, and the configured server name (the URL's host by default)
//! as SNI and verified name, since the endpoint itself dials a resolved IP.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use http::Uri;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{UpstreamConfig, UpstreamTls};

/// grpc-core's default `GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS`: a server
/// counts a strike for every ping sooner than this while it sends no data, and after two
/// strikes sends `GOAWAY ENHANCE_YOUR_CALM "too_many_pings"`.
const GRPC_CORE_MIN_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Resolves the upstream's host to addresses; replaced in tests.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The system resolver (`getaddrinfo` through tokio).
struct DnsResolver {
    host_port: String,
}

impl Resolve for DnsResolver {
    fn resolve(&self) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host_port = self.host_port.clone();
        Box::pin(async move { Ok(tokio::net::lookup_host(host_port).await?.collect()) })
    }
}

/// The set of upstream channels and the round-robin cursor.
pub struct Upstream {
    backends: RwLock<Arc<Vec<(SocketAddr, Channel)>>>,
    next: AtomicUsize,
    config: UpstreamConfig,
}

impl Upstream {
    /// Builds the upstream for `config`. Must run inside a tokio runtime: for a hostname it
    /// spawns the re-resolving task, which stops when the `Upstream` is dropped.
    pub fn new(config: &UpstreamConfig) -> Result<Arc<Upstream>, String> {
        Self::check_tls(config)?;
        if config.keepalive_interval < GRPC_CORE_MIN_PING_INTERVAL {
            tracing::warn!(
                keepalive_interval_ms = config.keepalive_interval.as_millis() as u64,
                "upstream.keepalive_interval is below 300s: a grpc-core server (C++, Python, \
                 Ruby, PHP) with default settings closes the connection with GOAWAY \
                 too_many_pings during calls longer than about three intervals"
            );
        }
        let host = config
            .url
            .host()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']');
        let port = config.url.port_u16().unwrap_or(match config.tls {
            Some(_) => 443,
            None => 80,
        });
        let upstream = Arc::new(Upstream {
            backends: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            config: config.clone(),
        });
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, port);
                upstream.replace(vec![(addr, upstream.endpoint(addr)?.connect_lazy())]);
            }
            Err(_) => Self::keep_resolving(
                &upstream,
                Arc::new(DnsResolver {
                    host_port: format!("{host}:{port}"),
                }),
            ),
        }
        Ok(upstream)
    }

    /// Builds an upstream whose addresses come from `resolver` (tests).
    pub fn with_resolver(config: &UpstreamConfig, resolver: Arc<dyn Resolve>) -> Arc<Upstream> {
        let upstream = Arc::new(Upstream {
            backends: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            config: config.clone(),
        });
        Self::keep_resolving(&upstream, resolver);
        upstream
    }

    /// The next channel, round-robin; `None` while no address is known.
    pub fn pick(&self) -> Option<Channel> {
        let backends = self.snapshot();
        if backends.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        Some(backends[i].1.clone())
    }

    /// The addresses currently in rotation.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.snapshot().iter().map(|(a, _)| *a).collect()
    }

    fn snapshot(&self) -> Arc<Vec<(SocketAddr, Channel)>> {
        match self.backends.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, backends: Vec<(SocketAddr, Channel)>) {
        let mut guard = match self.backends.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(backends);
    }

    fn endpoint(&self, addr: SocketAddr) -> Result<Endpoint, String> {
        let c = &self.config;
        let scheme = if c.tls.is_some() { "https" } else { "http" };
        let origin: Uri = c.url.clone();
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("upstream address {addr}: {e}"))?;
        if let Some(tls) = &c.tls {
            endpoint = endpoint
                .tls_config(client_tls(tls))
                .map_err(|e| format!("upstream TLS for {addr}: {}", crate::error::chain(&e)))?;
        }
        endpoint
            // Keep the configured host as :authority, as a client of the name would send.
            .origin(origin)
            .connect_timeout(c.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(c.keepalive_interval)
            .keep_alive_timeout(c.keepalive_timeout)
            .keep_alive_while_idle(false)
            .user_agent(concat!("protogate/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| format!("user agent: {e}"))
    }

    /// Checks that the TLS settings make a client (the PEM is valid, the key matches the
    /// certificate's type), so that a bad key is a startup error and not a failure per call.
    pub fn check_tls(config: &UpstreamConfig) -> Result<(), String> {
        let Some(tls) = &config.tls else { return Ok(()) };
        Endpoint::from_static("https://127.0.0.1")
            .tls_config(client_tls(tls))
            .map(|_| ())
            .map_err(|e| format!("upstream.tls: {}", crate::error::chain(&e)))
    }

    /// Resolves now and then every `resolve_interval`, for as long as the upstream lives.
    fn keep_resolving(upstream: &Arc<Upstream>, resolver: Arc<dyn Resolve>) {
        let weak = Arc::downgrade(upstream);
        let interval = upstream.config.resolve_interval;
        tokio::spawn(async move {
            loop {
                let result = resolver.resolve().await;
                let Some(upstream) = weak.upgrade() else { return };
                upstream.apply(result);
                drop(upstream);
                tokio::time::sleep(interval).await;
            }
        });
    }

    /// Applies one resolution: keeps channels of surviving addresses, adds new ones.
    fn apply(&self, result: std::io::Result<Vec<SocketAddr>>) {
        let mut addrs = match result {
            Ok(addrs) => addrs,
            Err(err) => {
                // Keep what we had: a DNS hiccup must not empty a working rotation.
                tracing::warn!(upstream = %self.config.url, error = %err, "upstream name did not resolve");
                return;
            }
        };
        addrs.sort();
        addrs.dedup();
        let current = self.snapshot();
        if current.iter().map(|(a, _)| *a).eq(addrs.iter().copied()) {
            return;
        }
        let mut next = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if let Some((_, channel)) = current.iter().find(|(a, _)| *a == addr) {
                next.push((addr, channel.clone()));
            } else {
                match self.endpoint(addr) {
                    Ok(endpoint) => next.push((addr, endpoint.connect_lazy())),
                    Err(err) => tracing::warn!(%addr, error = err, "skipping upstream address"),
                }
            }
        }
        let listed: Vec<String> = next.iter().map(|(a, _)| a.to_string()).collect();
        tracing::info!(upstream = %self.config.url, addresses = ?listed, "upstream addresses changed");
        self.replace(next);
    }
}

/// The rustls client settings: the configured CA, or the system roots; the client identity;
/// and the name to verify, which is not the resolved IP the endpoint dials.
fn client_tls(tls: &UpstreamTls) -> ClientTlsConfig {
    let mut config = ClientTlsConfig::new().domain_name(tls.server_name.clone());
    config = match &tls.ca_pem {
        Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
        None => config.with_native_roots(),
    };
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    config
}
