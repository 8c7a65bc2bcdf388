//! One HTTP/2 connection to one upstream address, straight on the `h2` crate: dialled lazily
//! on the first call (TCP with a connect timeout, then TLS when configured, then the HTTP/2
//! handshake), shared by every call to that address, and dialled again when it dies. A
//! driver task per connection runs the HTTP/2 state machine and the keepalive.
//!
//! Why not tonic's `Channel`: it puts a tower `Buffer` (a channel and a worker task), a
//! reconnect layer, its own timeout layer and hyper's client dispatch between a call and the
//! socket, and it writes a unary call's HEADERS and DATA frames in two syscalls. Going
//! straight to `h2` removed about a third of the gateway's instructions per request
//! (bench/README.md). What the channel gave is done here: lazy connect, connect timeout,
//! reconnect, keepalive, TLS, `:authority` from the configured URL.
//!
//! Keepalive follows grpcio's default policy: a PING only every `keepalive_interval` and only
//! while calls are in flight; no PONG within `keepalive_timeout` closes the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::tls::TlsSettings;

/// What every connection to the upstream shares.
pub struct Settings {
    /// `http` or `https`, and the configured host as `:authority`, as a client of the name
    /// would send them (the connection dials a resolved address).
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub tls: Option<TlsSettings>,
}

/// Why a connection could not be made; the call provably never left the gateway.
#[derive(Debug)]
pub struct ConnectError {
    /// Short, for the client: `tcp connect error`, `tls handshake error`, ….
    pub stage: &'static str,
    /// The whole cause, for the log.
    pub cause: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage, self.cause)
    }
}

/// The live HTTP/2 connection of an address, if any, and its generation.
struct Live {
    generation: u64,
    sender: SendRequest<Bytes>,
}

/// The connection to one upstream address.
pub struct Connection {
    addr: SocketAddr,
    settings: Arc<Settings>,
    live: Mutex<Option<Live>>,
    /// Serialises dialling: concurrent first calls wait for one connection.
    dialling: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Calls in flight on this address (the keepalive pings only while there are some).
    active: Arc<AtomicUsize>,
}

/// Counts a call as in flight for its lifetime.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    pub fn new(addr: SocketAddr, settings: Arc<Settings>) -> Arc<Connection> {
        Arc::new(Connection {
            addr,
            settings,
            live: Mutex::new(None),
            dialling: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            active: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Marks a call in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.active.fetch_add(1, Ordering::Relaxed);
        InFlight(self.active.clone())
    }

    /// A sender on the live connection (and the connection's generation, for `forget`),
    /// dialling one first when there is none.
    pub async fn sender(self: &Arc<Self>) -> Result<(u64, SendRequest<Bytes>), ConnectError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _dialling = self.dialling.lock().await;
        // Another call may have connected while this one waited.
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let sender = tokio::time::timeout(self.settings.connect_timeout, self.dial())
            .await
            .map_err(|_| ConnectError {
                stage: "tcp connect error",
                cause: format!(
                    "no connection to {} within {}ms",
                    self.addr,
                    self.settings.connect_timeout.as_millis()
                ),
            })??;
        Ok(sender)
    }

    /// Forgets connection `generation` (a call found it closed), unless a newer one already
    /// replaced it; the next call dials again.
    pub fn forget(&self, generation: u64, reason: &h2::Error) {
        let mut live = lock(&self.live);
        if live.as_ref().is_some_and(|l| l.generation == generation) {
            tracing::debug!(addr = %self.addr, error = %reason, "upstream connection closed; the next call dials again");
            *live = None;
        }
    }

    fn current(&self) -> Option<(u64, SendRequest<Bytes>)> {
        lock(&self.live)
            .as_ref()
            .map(|live| (live.generation, live.sender.clone()))
    }

    async fn dial(self: &Arc<Self>) -> Result<(u64, SendRequest<Bytes>), ConnectError> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| ConnectError {
            stage: "tcp connect error",
            cause: format!("{}: {e}", self.addr),
        })?;
        let _ = tcp.set_nodelay(true);
        match &self.settings.tls {
            None => self.handshake(tcp).await,
            Some(tls) => {
                let stream = tls.connect(tcp).await.map_err(|e| ConnectError {
                    stage: "tls handshake error",
                    cause: format!("{}: {}", self.addr, crate::error::chain(&e)),
                })?;
                self.handshake(stream).await
            }
        }
    }

    /// The HTTP/2 handshake, then the driver task that runs the connection until it ends.
    async fn handshake<T>(self: &Arc<Self>, io: T) -> Result<(u64, SendRequest<Bytes>), ConnectError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, mut connection) = h2::client::Builder::new()
            // hyper's client defaults: room for large replies without a WINDOW_UPDATE
            // round trip per 64 KiB.
            .initial_window_size(2 * 1024 * 1024)
            .initial_connection_window_size(5 * 1024 * 1024)
            .max_header_list_size(64 * 1024)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| ConnectError {
                stage: "http/2 handshake error",
                cause: format!("{}: {e}", self.addr),
            })?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&self.live) = Some(Live {
            generation,
            sender: sender.clone(),
        });
        let ping = connection.ping_pong();
        let keepalive = keepalive(
            ping,
            self.active.clone(),
            self.settings.keepalive_interval,
            self.settings.keepalive_timeout,
        );
        let owner = Arc::downgrade(self);
        let addr = self.addr;
        tokio::spawn(async move {
            tokio::select! {
                ended = &mut connection => {
                    if let Err(err) = ended {
                        tracing::debug!(%addr, error = %err, "upstream connection ended");
                    }
                }
                () = keepalive => {
                    tracing::warn!(%addr, "upstream did not answer a keepalive ping in time; closing the connection");
                }
            }
            retire(&owner, generation);
        });
        tracing::debug!(%addr, generation, "upstream connection established");
        Ok((generation, sender))
    }
}

/// Drops the connection of `generation` from its owner, unless a newer one replaced it.
fn retire(owner: &Weak<Connection>, generation: u64) {
    let Some(owner) = owner.upgrade() else { return };
    let mut live = lock(&owner.live);
    if live.as_ref().is_some_and(|l| l.generation == generation) {
        *live = None;
    }
}

/// Pings every `interval` while calls are in flight; returns when a PONG is late, which
/// ends the connection. Never returns while the connection is healthy.
async fn keepalive(
    ping: Option<h2::PingPong>,
    active: Arc<AtomicUsize>,
    interval: Duration,
    timeout: Duration,
) {
    let Some(mut ping) = ping else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(interval).await;
        if active.load(Ordering::Relaxed) == 0 {
            continue;
        }
        match tokio::time::timeout(timeout, ping.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            // The connection failed: its own future reports that.
            Ok(Err(_)) => return std::future::pending().await,
            Err(_) => return,
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the state is a plain `Option`.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
