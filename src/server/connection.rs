//! The life of one client connection, whatever its protocol: how long it may hold one of the
//! `server.max_connections` slots without doing anything useful, and how it is closed.
//!
//! hyper times out an HTTP/1 head (`header_read_timeout`), but nothing times out the bytes
//! before hyper knows the protocol (hyper-util's version sniffing has no timer), an HTTP/2
//! preface or handshake that never completes, or an HTTP/2 connection that opens no stream:
//! each held a slot for as long as the client liked. Here every connection is watched:
//! - until its first request head is complete, for `header_read_timeout`;
//! - then, while no request is in flight (no handler running and no response body being
//!   sent), for `idle_timeout`.
//!
//! When a watch expires, or the server drains, the connection is shut down gracefully
//! (HTTP/2 GOAWAY; HTTP/1 closes once its current exchange ends); a peer that still holds
//! it open with nothing in flight is dropped [`GRACE`] later. Keepalive pings for HTTP/2
//! (hyper's, configured in `server.rs`) catch peers that vanished mid-request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a connection told to close may stay open with nothing in flight: long enough
/// for a GOAWAY exchange, short enough that a peer cannot keep the slot by ignoring it.
pub const GRACE: Duration = Duration::from_secs(1);

/// What one connection is doing, shared by its requests and its driver.
#[derive(Clone)]
pub struct Watch(Arc<State>);

struct State {
    accepted: Instant,
    /// A request head was complete and handed to the service at least once.
    begun: AtomicBool,
    /// Requests whose handler runs or whose response body is still being sent.
    active: AtomicUsize,
    /// When the last request in flight ended, in ms after `accepted`.
    last_end_ms: AtomicU64,
}

/// Why a watch expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request head arrived within `header_read_timeout`.
    NoRequest,
    /// No request was in flight for `idle_timeout`.
    Idle,
}

impl Watch {
    pub fn new() -> Watch {
        Watch(Arc::new(State {
            accepted: Instant::now(),
            begun: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
        }))
    }

    /// A request head arrived; the request counts as in flight until the guard drops.
    pub fn begin(&self) -> InFlight {
        self.0.begun.store(true, Ordering::Relaxed);
        self.0.active.fetch_add(1, Ordering::Relaxed);
        InFlight(self.0.clone())
    }

    fn active(&self) -> usize {
        self.0.active.load(Ordering::Relaxed)
    }

    /// Resolves when the connection has sent no request head within `head_timeout` of
    /// being accepted, or has had nothing in flight for `idle_timeout`.
    async fn expiry(&self, head_timeout: Duration, idle_timeout: Duration) -> Expiry {
        let state = &self.0;
        tokio::time::sleep_until(state.accepted + head_timeout).await;
        if !state.begun.load(Ordering::Relaxed) {
            return Expiry::NoRequest;
        }
        loop {
            if self.active() > 0 {
                // Checked again later; the idle time counts from the end of the last one.
                tokio::time::sleep(idle_timeout).await;
                continue;
            }
            let last_end = Duration::from_millis(state.last_end_ms.load(Ordering::Relaxed));
            let deadline = state.accepted + last_end + idle_timeout;
            if Instant::now() >= deadline {
                return Expiry::Idle;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A request in flight on a watched connection.
pub struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let since = self.0.accepted.elapsed().as_millis();
        self.0
            .last_end_ms
            .fetch_max(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it is sent or dropped.
    pub struct Tracked<B> {
        #[pin]
        body: B,
        in_flight: InFlight,
    }
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Tracked<B> {
        Tracked { body, in_flight }
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The timeouts a connection is watched with.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub head: Duration,
    pub idle: Duration,
}

/// Runs `connection` to its end. It is shut down gracefully (with `graceful_shutdown`) when
/// its watch expires or `drain` turns true, and dropped once it has had nothing in flight
/// for [`GRACE`] after that.
pub async fn drive<C, E>(
    connection: C,
    graceful_shutdown: impl Fn(Pin<&mut C>),
    watch: Watch,
    timeouts: Timeouts,
    mut drain: watch::Receiver<bool>,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut connection = std::pin::pin!(connection);
    let expiry = watch.expiry(timeouts.head, timeouts.idle);
    let mut expiry = std::pin::pin!(expiry);
    let draining = drain.wait_for(|draining| *draining);
    let mut draining = std::pin::pin!(draining);
    let mut closing = false;
    let grace = tokio::time::sleep(GRACE);
    let mut grace = std::pin::pin!(grace);
    loop {
        tokio::select! {
            ended = connection.as_mut() => return ended,
            why = &mut expiry, if !closing => {
                tracing::debug!(?why, "closing a client connection");
                graceful_shutdown(connection.as_mut());
                closing = true;
                grace.as_mut().reset(Instant::now() + GRACE);
            }
            _ = &mut draining, if !closing => {
                graceful_shutdown(connection.as_mut());
                closing = true;
                grace.as_mut().reset(Instant::now() + GRACE);
            }
            () = &mut grace, if closing => {
                if watch.active() == 0 {
                    return Ok(());
                }
                grace.as_mut().reset(Instant::now() + GRACE);
            }
        }
    }
}
