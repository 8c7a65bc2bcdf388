//! The HTTP server: the middleware stack around the gateway handler, our own hyper accept
//! loop, and graceful shutdown. The accept loop is ours because `axum::serve` installs no
//! timer, which silently disables hyper's header-read timeout (slowloris), and because it
//! has no connection limit: past `server.max_connections` a new connection is closed as
//! soon as it is accepted, and a connection that does nothing gives its slot back
//! (`connection.rs`). A connection that hyper closes lingers, reading what its client still
//! sends, so that an answer given before the body was read is not lost to a reset
//! (`linger.rs`). On shutdown the
//! gateway marks itself draining (`/readyz` → 503), stops accepting, lets in-flight requests
//! finish within `server.drain_timeout`, then returns.

mod compression;
mod cors;

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::BoxError;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{FutureExt as _, TryFutureExt as _};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{ServiceBuilder, ServiceExt as _};

use crate::config::Config;
use crate::error::GatewayError;
use crate::gateway::{Gateway, handle};
use crate::request_id;
use crate::startup::StartupError;

mod connection;
mod linger;

/// Streams reset by the client before they were served, per connection (hyper's default).
const HTTP2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the gateway reset because of the client's errors, per connection (h2's default).
const HTTP2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Validates `config` against the descriptors, then serves on `listener` until `shutdown`
/// resolves and the drain has finished. A bad rule fails here, before any request is served.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartupError> {
    let gateway = Arc::new(Gateway::new(config)?);
    serve_gateway(listener, gateway, shutdown).await
}

/// Serves an already built gateway; `serve` without the validation step.
pub async fn serve_gateway(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartupError> {
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Listen { addr: None, source })?;
    gateway.first_schema().await?;
    crate::gateway::reload::spawn(&gateway);
    let routes = gateway.schema().map_or(0, |s| s.routes().routes().len());
    tracing::info!(%addr, routes, "listening");
    run(listener, gateway, shutdown).await;
    Ok(())
}

/// The service every connection runs: the gateway handler, which owns routing so that 404
/// and 405 come back as `google.rpc.Status` JSON like every other error, inside the
/// middleware. A flat tower stack rather than an axum `Router`: the router boxes each layer
/// and clones the boxes for every request (about 30 allocations per request); this stack is
/// cloned per request by plain copies and `Arc` increments.
fn app(
    gateway: Arc<Gateway>,
) -> impl tower::Service<
    http::Request<Incoming>,
    Response = http::Response<impl hyper::body::Body<Data = Bytes, Error = BoxError> + Send + 'static>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    // CORS sits outside everything that can reject, the panic answer included, so that
    // preflights and error answers carry the CORS headers a browser needs to read them.
    let browser = cors::cors(&gateway.config().cors).map(|cors| {
        ServiceBuilder::new()
            .layer(cors::PreflightLogLayer(gateway.clone()))
            .layer(cors)
            .into_inner()
    });
    let inner = ServiceBuilder::new()
        .option_layer(browser)
        .layer(compression::compression())
        .service_fn(move |request: http::Request<Incoming>| {
            // A panic in the handler becomes a 500 answer; the connection lives on. The
            // handler's future is large (the whole upstream call): boxed once here, it is
            // not copied again at each layer's state change (about 1.3k instructions less
            // per request than the allocation costs).
            let id = request.headers().get(&crate::request_id::X_REQUEST_ID).cloned();
            let format = gateway.config().transcoding.output.global.error_format;
            let answer = AssertUnwindSafe(Box::pin(handle(gateway.clone(), request.map(Body::new))));
            async move {
                match answer.catch_unwind().await {
                    Ok(response) => Ok::<_, Infallible>(response),
                    Err(_panic) => Ok(panic_answer(format, id)),
                }
            }
        });
    // Outermost: the request id, so that every answer (preflights included) carries it.
    tower::service_fn(move |mut request: http::Request<Incoming>| {
        let id = request_id::ensure(&mut request);
        inner.clone().oneshot(request).map_ok(move |mut response| {
            request_id::echo(&mut response, id);
            response
        })
    })
}

/// The answer to a handler panic: 500 in the gateway's error format (`[errors] format`).
#[cold]
fn panic_answer(format: crate::config::ErrorFormat, id: Option<http::HeaderValue>) -> Response {
    let id = id.as_ref().and_then(|v| v.to_str().ok());
    GatewayError::internal("request handler panicked")
        .in_format(format)
        .into_response_for(id)
}

async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()> + Send) {
    let app = app(gateway.clone());
    let floor = tokio::spawn(timer_floor());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let limits = &gateway.config().server;
    // hyper's own limits sit above ours, so a client over ours gets admission.rs's JSON
    // answer; only a head beyond these gets hyper's bare 431.
    let head_buffer = (limits.max_header_bytes + limits.max_uri_bytes + 16 * 1024).max(8 * 1024);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(head_buffer)
        .max_headers(limits.max_headers + 100);
    // HTTP/2 limits, set explicitly rather than left to hyper's defaults (h2 enforces them):
    // streams a client opens and resets before they are served (rapid reset,
    // CVE-2023-44487) and streams the server had to reset for the client's errors each end
    // the connection with GOAWAY ENHANCE_YOUR_CALM past their limit; a header block (with
    // its CONTINUATION frames) is bounded by the header list size; at most one PING or
    // SETTINGS answer waits to be written, so a client that does not read stops being read.
    // tests/http2_abuse.rs.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(HTTP2_MAX_LOCAL_ERROR_RESETS)
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(head_buffer).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        // RFC 8441: WebSockets over HTTP/2 streams (gateway/websocket.rs).
        .enable_connect_protocol();
    let timeouts = connection::Timeouts {
        head: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    let (start_drain, draining) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut last_refusal_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Closing at once (an RST if the client already sent its request) tells the
            // client now; leaving it in the backlog would hang it until its own timeout.
            drop(stream);
            gateway.metrics().connection_refused();
            if last_refusal_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                last_refusal_warning = Some(Instant::now());
                tracing::warn!(
                    %peer,
                    max_connections = limits.max_connections,
                    "connection refused: server.max_connections are open"
                );
            }
            continue;
        };
        let slot = ConnectionSlot::new(slot, gateway.clone());
        let _ = stream.set_nodelay(true);
        let watch = connection::Watch::new();
        let service = watched(app.clone(), watch.clone());
        let (socket, linger) = linger::split(stream);
        // With upgrades: a WebSocket handshake hands the connection to its session
        // (gateway/websocket.rs).
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(socket), service)
            .into_owned();
        let draining = draining.clone();
        tokio::spawn(async move {
            let ended = connection::drive(served, |c| c.graceful_shutdown(), watch, timeouts, draining);
            if let Err(err) = ended.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            linger.run().await;
            drop(slot);
        });
    }
    drop(listener);
    floor.abort();
    gateway.start_draining();
    let _ = start_drain.send(true);
    let open = limits.max_connections - slots.available_permits();
    let drain = gateway.config().server.drain_timeout;
    tracing::info!(
        open_connections = open,
        drain_ms = drain.as_millis() as u64,
        "shutting down: draining"
    );
    // Every slot back means every connection has ended; an upgraded connection (a
    // WebSocket) gave its slot back and is counted by its session.
    let all_closed = async {
        let _slots = slots
            .acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
            .await;
        gateway.sockets().all_closed().await;
    };
    if tokio::time::timeout(drain, all_closed).await.is_err() {
        tracing::warn!(
            open_websockets = gateway.sockets().open(),
            "drain timeout passed with requests still in flight; closing them"
        );
    } else {
        tracing::info!("drained");
    }
    // Sockets still open get their close frame (1001) rather than a cut connection.
    gateway.sockets().close_all();
    let _ = tokio::time::timeout(Duration::from_secs(1), gateway.sockets().all_closed()).await;
}

/// How often the timer floor ticks.
const TIMER_FLOOR: Duration = Duration::from_secs(1);

/// A timer that always fires within [`TIMER_FLOOR`]. tokio's timer wheel wakes its driver
/// (a write to the runtime's eventfd, and one more turn of the event loop) whenever a timer
/// is set to fire before every timer that was pending when the runtime last parked. Each
/// call's deadline (5 s by default) is such a timer whenever no other call is in flight, so
/// a client that sends one request at a time paid that syscall and that turn on every
/// request (issue 20, `tests/counts.rs` with one connection). With a timer pending within a
/// second, only deadlines shorter than a second do. The cost: one wake-up a second.
async fn timer_floor() {
    loop {
        tokio::time::sleep(TIMER_FLOOR).await;
    }
}

/// `app` for one connection: each request counts as in flight on `watch` until its answer
/// has been sent, so that the connection is not closed as idle under it.
fn watched<S, B>(
    app: S,
    watch: connection::Watch,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = http::Response<connection::Tracked<B>>,
    Error = Infallible,
    Future: Send + 'static,
>
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body,
{
    hyper::service::service_fn(move |request| {
        let in_flight = watch.begin();
        app.clone()
            .oneshot(request)
            .map_ok(move |response| response.map(|body| connection::Tracked::new(body, in_flight)))
    })
}

/// One of the `server.max_connections` slots, held by a served connection for its lifetime;
/// it also keeps the open-connections gauge.
struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    gateway: Arc<Gateway>,
}

impl ConnectionSlot {
    fn new(permit: OwnedSemaphorePermit, gateway: Arc<Gateway>) -> ConnectionSlot {
        gateway.metrics().connection_opened();
        ConnectionSlot {
            _permit: permit,
            gateway,
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.gateway.metrics().connection_closed();
    }
}
