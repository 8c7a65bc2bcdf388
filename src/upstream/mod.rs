//! The upstream: the only place that knows its address. One lazily dialled HTTP/2
//! connection per resolved address (`connection.rs`), picked round-robin, so that
//! `docker compose --scale users=3` (one DNS name, several addresses) spreads calls over
//! every replica. A hostname is resolved again every `upstream.resolve_interval`; the
//! connections of addresses that stay are kept, new addresses get one, gone ones are dropped.
//! An IP literal is used as it is, with no resolving.
//!
//! Connections are made on the first call, so the gateway starts and serves while the
//! upstream is down and connects once it is up; they have a connect timeout and an HTTP/2
//! keepalive within grpcio's default ping policy (one ping per 5 minutes without data;
//! faster pings earn a GOAWAY `too_many_pings`).
//!
//! An `https://` upstream is dialled with rustls (`tls.rs`): the configured CA or the system
//! roots, an optional client certificate, and the configured server name (the URL's host by
//! default) as SNI and verified name.

mod connection;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;

use connection::Settings;
pub use connection::{ConnectError, Connection, InFlight, Live};
use tls::TlsSettings;

use crate::config::UpstreamConfig;
use crate::error::GatewayError;

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
        Box::pin(async move {
            // getaddrinfo has no timeout of its own; a hung resolver must not stop the loop.
            let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(host_port))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "name resolution timed out")
                })??;
            Ok(found.collect())
        })
    }
}

const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The connections to the upstream's addresses and the round-robin cursor.
pub struct Upstream {
    backends: RwLock<Arc<Vec<Arc<Connection>>>>,
    next: AtomicUsize,
    config: UpstreamConfig,
    settings: Arc<Settings>,
}

impl Upstream {
    /// Builds the upstream for `config`. Must run inside a tokio runtime: for a hostname it
    /// spawns the re-resolving task, which stops when the `Upstream` is dropped.
    pub fn new(config: &UpstreamConfig) -> Result<Arc<Upstream>, String> {
        let upstream = Arc::new(Self::empty(config)?);
        let host = config
            .url
            .host()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']');
        let port = config.url.port_u16().unwrap_or(match config.tls {
            Some(_) => 443,
            None => 80,
        });
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, port);
                upstream.replace(vec![Connection::new(addr, upstream.settings.clone())]);
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

    /// An upstream with no address yet; checks the TLS settings, so that a bad certificate
    /// or key is a startup error and not a failure per call.
    fn empty(config: &UpstreamConfig) -> Result<Upstream, String> {
        if config.keepalive_interval < GRPC_CORE_MIN_PING_INTERVAL {
            tracing::warn!(
                keepalive_interval_ms = config.keepalive_interval.as_millis() as u64,
                "upstream.keepalive_interval is below 300s: a grpc-core server (C++, Python, \
                 Ruby, PHP) with default settings closes the connection with GOAWAY \
                 too_many_pings during calls longer than about three intervals"
            );
        }
        let tls = config.tls.as_ref().map(TlsSettings::new).transpose()?;
        let scheme = if tls.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let authority = config
            .url
            .authority()
            .cloned()
            .ok_or_else(|| format!("upstream.url {} has no host", config.url))?;
        Ok(Upstream {
            backends: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            config: config.clone(),
            settings: Arc::new(Settings {
                scheme,
                authority,
                connect_timeout: config.connect_timeout,
                keepalive_interval: config.keepalive_interval,
                keepalive_timeout: config.keepalive_timeout,
                tls,
                max_reply_bytes: config.max_reply_bytes,
                compress_requests: config.compress_requests,
            }),
        })
    }

    /// Builds an upstream whose addresses come from `resolver` (tests).
    pub fn with_resolver(
        config: &UpstreamConfig,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Arc<Upstream>, String> {
        let upstream = Arc::new(Self::empty(config)?);
        Self::keep_resolving(&upstream, resolver);
        Ok(upstream)
    }

    /// The next connection, round-robin, skipping addresses whose last dial failed recently
    /// while another is usable; `None` while no address is known.
    pub fn pick(&self) -> Option<Arc<Connection>> {
        self.pick_avoiding(None)
    }

    /// Like `pick`, but never `avoid` while another address is known: a retry after a
    /// refused connection goes to another replica, whatever other calls took from the
    /// rotation meanwhile.
    pub fn pick_avoiding(&self, avoid: Option<SocketAddr>) -> Option<Arc<Connection>> {
        let backends = self.snapshot();
        if backends.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        let mut rotation = (0..backends.len()).map(|k| &backends[(start + k) % backends.len()]);
        let other = |c: &&Arc<Connection>| Some(c.addr()) != avoid;
        let chosen = rotation
            .clone()
            .find(|c| other(c) && !c.backing_off())
            .or_else(|| rotation.find(other))
            .unwrap_or(&backends[start]);
        Some(chosen.clone())
    }

    /// The next connection, or 503 while no upstream address is known (nothing was sent: a
    /// retry may find an address by then).
    pub fn connection(&self) -> Result<Arc<Connection>, GatewayError> {
        self.connection_avoiding(None)
    }

    /// `connection`, avoiding `avoid` while another address is known (see `pick_avoiding`).
    pub fn connection_avoiding(&self, avoid: Option<SocketAddr>) -> Result<Arc<Connection>, GatewayError> {
        self.pick_avoiding(avoid).ok_or_else(|| {
            GatewayError::connect_failed(format!("{} resolves to no address yet", self.config.url))
        })
    }

    /// The addresses currently in rotation.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.snapshot().iter().map(|c| c.addr()).collect()
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Connection>>> {
        match self.backends.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, backends: Vec<Arc<Connection>>) {
        let mut guard = match self.backends.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(backends);
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
            Ok(addrs) if addrs.is_empty() => {
                tracing::warn!(upstream = %self.config.url, "upstream name resolved to no address; keeping the last ones");
                return;
            }
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
        if current.iter().map(|c| c.addr()).eq(addrs.iter().copied()) {
            return;
        }
        let next: Vec<Arc<Connection>> = addrs
            .into_iter()
            .map(|addr| match current.iter().find(|c| c.addr() == addr) {
                Some(kept) => kept.clone(),
                None => Connection::new(addr, self.settings.clone()),
            })
            .collect();
        let listed: Vec<String> = next.iter().map(|c| c.addr().to_string()).collect();
        tracing::info!(upstream = %self.config.url, addresses = ?listed, "upstream addresses changed");
        self.replace(next);
    }
}
