//! One HTTP/2 connection to one upstream address, straight on the `h2` crate: dialled on the
//! first call (TCP, then TLS when configured, then the HTTP/2 handshake, all within the
//! connect timeout), shared by every call to that address, and dialled again when it dies.
//! A driver task per connection runs the HTTP/2 state machine and the keepalive.
//!
//! Why not tonic's `Channel`: it puts a tower `Buffer` (a channel and a worker task), a
//! reconnect layer, its own timeout layer and hyper's client dispatch between a call and the
//! socket, and it writes a unary call's HEADERS and DATA frames in two syscalls. Going
//! straight to `h2` removed about a fifth of the gateway's instructions per request
//! (bench/README.md). What the channel gave is done here:
//! - the dial runs in a task of its own and its outcome is shared: a caller whose deadline
//!   passes, or whose client leaves, stops waiting but does not cancel the dial for others;
//! - a failed dial is remembered for a short, growing backoff (100 ms to 1 s), during which
//!   calls fail at once as never sent (and are retried on another replica) instead of
//!   queueing behind connect timeouts;
//! - the socket has TCP keepalive and `TCP_USER_TIMEOUT`, so a peer that vanishes without a
//!   FIN is noticed in seconds, not minutes;
//! - HTTP/2 keepalive follows grpcio's default policy: a PING only every
//!   `keepalive_interval` and only while calls are in flight on that connection; no PONG
//!   within `keepalive_timeout` closes it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
// tokio's clock, not std's: the same instant in production, and the backoff follows paused
// time in the unit tests (connection_tests.rs).
use tokio::time::Instant;

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
    /// What the gRPC layer needs per call: the reply limit (after decompression) and the
    /// size from which request messages are compressed.
    pub max_reply_bytes: usize,
    pub compress_requests: Option<usize>,
}

/// HTTP/2 flow-control windows. A stream whose HTTP client stops reading holds at most one
/// stream window of unread data; the connection window is large enough that well over a
/// hundred such streams cannot starve the other calls on the connection.
const STREAM_WINDOW: u32 = 512 * 1024;
const CONNECTION_WINDOW: u32 = 128 * 1024 * 1024;
/// Room for large `grpc-status-details-bin` trailers (grpc-core allows 8 KiB by default).
const MAX_HEADER_LIST: u32 = 256 * 1024;
/// Backoff after a failed dial: calls fail at once meanwhile, then one dials again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Why a connection could not be made; the call provably never left the gateway.
#[derive(Debug, Clone)]
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

/// A live HTTP/2 connection: a sender for new streams, and its count of calls in flight.
#[derive(Clone)]
pub struct Live {
    pub generation: u64,
    pub sender: SendRequest<Bytes>,
    active: Arc<AtomicUsize>,
}

impl Live {
    /// Marks a call in flight on this connection until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.active.fetch_add(1, Ordering::Relaxed);
        InFlight(self.active.clone())
    }
}

/// Counts a call as in flight for its lifetime.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type Dial = Shared<BoxFuture<'static, Result<Live, ConnectError>>>;

enum Slot {
    /// No connection; after a failed dial, `retry_at` says when to dial again.
    Idle {
        retry_at: Option<Instant>,
        failures: u32,
        last: Option<ConnectError>,
    },
    /// A dial in progress; `failures` carries the backoff of the ones before it.
    Dialling {
        dial: Dial,
        failures: u32,
    },
    Live(Live),
}

/// The connection to one upstream address.
pub struct Connection {
    addr: SocketAddr,
    settings: Arc<Settings>,
    slot: Mutex<Slot>,
    generation: AtomicU64,
    /// In the unit tests: the transport instead of a TCP socket (an in-memory duplex).
    #[cfg(test)]
    transport: Option<tests::Transport>,
}

impl Connection {
    pub fn new(addr: SocketAddr, settings: Arc<Settings>) -> Arc<Connection> {
        Arc::new(Connection {
            addr,
            settings,
            slot: Mutex::new(Slot::Idle {
                retry_at: None,
                failures: 0,
                last: None,
            }),
            generation: AtomicU64::new(0),
            #[cfg(test)]
            transport: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// True while a recent dial failure is in its backoff: `Upstream::pick` prefers others.
    pub fn backing_off(&self) -> bool {
        matches!(&*lock(&self.slot), Slot::Idle { retry_at: Some(at), .. } if Instant::now() < *at)
    }

    /// The live connection, dialling one first when there is none. During the backoff of a
    /// failed dial this fails at once with that failure.
    pub async fn live(self: &Arc<Self>) -> Result<Live, ConnectError> {
        let dial = {
            let mut slot = lock(&self.slot);
            match &*slot {
                Slot::Live(live) => return Ok(live.clone()),
                Slot::Dialling { dial, .. } => dial.clone(),
                Slot::Idle {
                    retry_at: Some(at),
                    last: Some(last),
                    ..
                } if Instant::now() < *at => return Err(last.clone()),
                Slot::Idle { failures, .. } => {
                    let failures = *failures;
                    let dial = self.spawn_dial();
                    *slot = Slot::Dialling {
                        dial: dial.clone(),
                        failures,
                    };
                    dial
                }
            }
        };
        dial.await
    }

    /// Forgets connection `generation` (a call found it closed), unless a newer one already
    /// replaced it; the next call dials again at once.
    pub fn forget(&self, generation: u64, reason: &h2::Error) {
        let mut slot = lock(&self.slot);
        if matches!(&*slot, Slot::Live(live) if live.generation == generation) {
            tracing::debug!(addr = %self.addr, error = %reason, "upstream connection closed; the next call dials again");
            *slot = idle();
        }
    }

    /// Starts the dial in a task of its own; its outcome goes into the slot and to every
    /// caller waiting on it.
    fn spawn_dial(self: &Arc<Self>) -> Dial {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let timeout = this.settings.connect_timeout;
            let outcome = match tokio::time::timeout(timeout, this.dial()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ConnectError {
                    stage: "connect timeout",
                    cause: format!("no connection to {} within {}ms", this.addr, timeout.as_millis()),
                }),
            };
            this.settle(&outcome);
            outcome
        });
        let addr = self.addr;
        async move {
            task.await.unwrap_or_else(|e| {
                Err(ConnectError {
                    stage: "connect error",
                    cause: format!("the dial to {addr} failed: {e}"),
                })
            })
        }
        .boxed()
        .shared()
    }

    /// Records a dial's outcome: the live connection, or the failure and its backoff.
    fn settle(&self, outcome: &Result<Live, ConnectError>) {
        let mut slot = lock(&self.slot);
        let failures = match &*slot {
            Slot::Idle { failures, .. } | Slot::Dialling { failures, .. } => *failures,
            Slot::Live(_) => 0,
        };
        *slot = match outcome {
            Ok(live) => Slot::Live(live.clone()),
            Err(err) => {
                tracing::warn!(addr = %self.addr, error = %err, "upstream connect failed");
                let failures = failures.saturating_add(1);
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << (failures - 1).min(4))
                    .min(MAX_BACKOFF);
                Slot::Idle {
                    retry_at: Some(Instant::now() + backoff),
                    failures,
                    last: Some(err.clone()),
                }
            }
        };
    }

    async fn dial(self: &Arc<Self>) -> Result<Live, ConnectError> {
        #[cfg(test)]
        if let Some(transport) = &self.transport {
            let io = transport().await.map_err(|e| ConnectError {
                stage: "tcp connect error",
                cause: format!("{}: {e}", self.addr),
            })?;
            return self.handshake(io).await;
        }
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| ConnectError {
            stage: "tcp connect error",
            cause: format!("{}: {e}", self.addr),
        })?;
        self.tune(&tcp);
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

    /// No Nagle delay; TCP keepalive probes on an idle connection; and unacknowledged data
    /// older than the keepalive timeout drops the connection, as grpc-core and grpc-go do.
    /// None of this is an HTTP/2 PING, so grpcio's ping policy does not see it.
    fn tune(&self, tcp: &TcpStream) {
        let socket = socket2::SockRef::from(tcp);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(60))
            .with_interval(Duration::from_secs(10));
        let tuned = tcp
            .set_nodelay(true)
            .and_then(|()| socket.set_tcp_keepalive(&keepalive));
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let tuned = tuned.and_then(|()| socket.set_tcp_user_timeout(Some(self.settings.keepalive_timeout)));
        if let Err(err) = tuned {
            tracing::debug!(addr = %self.addr, error = %err, "socket options not set");
        }
    }

    /// The HTTP/2 handshake, then the driver task that runs the connection until it ends.
    async fn handshake<T>(self: &Arc<Self>, io: T) -> Result<Live, ConnectError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(MAX_HEADER_LIST)
            // Until the server's SETTINGS arrive, assume a common limit rather than none.
            .initial_max_send_streams(100)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| ConnectError {
                stage: "http/2 handshake error",
                cause: format!("{}: {e}", self.addr),
            })?;
        let live = Live {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            sender,
            active: Arc::new(AtomicUsize::new(0)),
        };
        let keepalive = keepalive(
            connection.ping_pong(),
            live.active.clone(),
            self.settings.keepalive_interval,
            self.settings.keepalive_timeout,
        );
        let owner = Arc::downgrade(self);
        let (addr, generation) = (self.addr, live.generation);
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
        Ok(live)
    }
}

fn idle() -> Slot {
    Slot::Idle {
        retry_at: None,
        failures: 0,
        last: None,
    }
}

/// Drops the connection of `generation` from its owner, unless a newer one replaced it.
fn retire(owner: &Weak<Connection>, generation: u64) {
    let Some(owner) = owner.upgrade() else { return };
    let mut slot = lock(&owner.slot);
    if matches!(&*slot, Slot::Live(live) if live.generation == generation) {
        *slot = idle();
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

/// A poisoned lock only means a panic elsewhere; the slot is plain data.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
