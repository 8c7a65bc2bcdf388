//! One WebSocket session: one call of the route's method, carried by the socket's frames.
//! The client's frames are read by their own task (each text frame is one request message,
//! an empty one half-closes; a close frame or a dropped socket cancels the upstream call
//! with RST_STREAM(CANCEL)), while this task writes each reply as a text frame, pings the
//! client, and ends the socket with the call's close frame: 1000 for OK, 4000 + the gRPC
//! code otherwise, or 1001 when the socket idled past `server.idle_timeout`, stopped
//! answering pings, or outlived a drain.
//!
//! Limits: a message (and a frame) is bounded by `server.max_body_bytes` (a larger one ends
//! the call with 4008, RESOURCE_EXHAUSTED); pings go every `server.http2_keepalive_interval`
//! and a client silent for that plus `server.http2_keepalive_timeout` is gone; the socket
//! holds its admission permit for its whole life. The request side waits for the upstream's
//! flow-control window, and the reply side for the socket's writes, so neither side's
//! buffers grow with a peer that does not read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{BoxStream, SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tonic::metadata::MetadataMap;

use super::super::Gateway;
use super::super::duplex::{self, Encoder, Failure, Held, RpcTimer};
use super::sockets::SocketGuard;
use crate::codec::Printing;
use crate::error::GatewayError;
use crate::grpc::Requests;
use crate::method::Method;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// How long a closing socket waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The longest close reason: a close frame's payload is at most 125 bytes, 2 of them the code.
const MAX_REASON: usize = 123;

/// Everything the session needs, decided at the upgrade.
pub struct Call {
    pub gateway: Arc<Gateway>,
    pub method: Arc<Method>,
    pub encoder: Encoder,
    pub metadata: MetadataMap,
    pub timeout: Duration,
    pub printing: Printing,
    pub permit: OwnedSemaphorePermit,
    pub socket: SocketGuard,
}

/// When the client last sent a frame, and when a message last went either way, in
/// milliseconds since the session started.
struct Activity {
    started: Instant,
    heard: AtomicU64,
    message: AtomicU64,
}

impl Activity {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn since(&self, at: &AtomicU64) -> Duration {
        Duration::from_millis(self.now().saturating_sub(at.load(Ordering::Relaxed)))
    }

    fn touch(&self, at: &AtomicU64) {
        at.store(self.now(), Ordering::Relaxed);
    }
}

/// Runs the session once the connection has been handed over.
pub async fn run(call: Call, on_upgrade: hyper::upgrade::OnUpgrade) {
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let gateway = call.gateway.clone();
    let limits = &gateway.config.server;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_body_bytes))
        .max_frame_size(Some(limits.max_body_bytes));
    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let (mut sink, stream) = socket.split();
    let Call {
        method,
        encoder,
        metadata,
        timeout,
        printing,
        permit,
        socket: mut guard,
        ..
    } = call;
    let deadline = Instant::now() + timeout;
    let mut timer = RpcTimer::start(&gateway, &method);
    let (requests, pending) = match duplex::open(&gateway, &method, metadata, timeout, deadline).await {
        Ok(opened) => opened,
        Err(err) => {
            timer.failed(&err);
            let _ = sink.send(Message::Close(Some(close_frame(&err)))).await;
            return;
        }
    };
    let failure = Failure::default();
    let activity = Arc::new(Activity {
        started: Instant::now(),
        heard: AtomicU64::new(0),
        message: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let (client_done, mut client_gone) = watch::channel(false);
    let reader = Reader {
        requests,
        encoder,
        takes_stream: method.streams_requests(),
        failure: failure.clone(),
        activity: activity.clone(),
        client_done,
        limit: limits.max_body_bytes,
    };
    let reader = tokio::spawn(reader.run(stream, stopped));
    let held = Held::new(None, Some(permit));
    let replies = duplex::replies_after_head(
        pending,
        method.codec.clone(),
        printing,
        (deadline, timeout),
        failure,
        held,
    );
    let replies = timer.observe(replies);
    let writer = Writer {
        keepalive: (limits.http2_keepalive_interval, limits.http2_keepalive_timeout),
        idle: limits.idle_timeout,
        activity,
    };
    let close = writer
        .run(&mut sink, replies, &mut guard.closing, &mut client_gone)
        .await;
    // The reader cancels the upstream call unless it has ended (a no-op then), and reads on
    // only to see the client's close frame.
    let _ = stop.send(true);
    if let Some(frame) = close {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, signalled(&mut client_gone)).await;
    }
    reader.abort();
}

/// The close frame for a call that ended with `err`: 4000 + its gRPC code, its message as
/// the reason, cut on a character boundary to fit.
pub fn close_frame(err: &GatewayError) -> CloseFrame {
    let code = 4000 + u16::try_from(err.code() as i32).unwrap_or(2);
    CloseFrame {
        code: CloseCode::from(code),
        reason: cut(err.message(), MAX_REASON).into(),
    }
}

fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn going_away(reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::Away,
        reason: reason.into(),
    }
}

/// The reply side: replies out as text frames, pings, and the decision to close.
struct Writer {
    keepalive: (Duration, Duration),
    idle: Duration,
    activity: Arc<Activity>,
}

impl Writer {
    /// Writes replies until the call ends; the close frame to send, or `None` when the
    /// client has gone or closed first.
    async fn run(
        self,
        sink: &mut SplitSink<Socket, Message>,
        mut replies: BoxStream<'static, Result<Vec<u8>, GatewayError>>,
        closing: &mut watch::Receiver<bool>,
        client_gone: &mut watch::Receiver<bool>,
    ) -> Option<CloseFrame> {
        let (interval, patience) = self.keepalive;
        let mut pings = tokio::time::interval_at(Instant::now() + interval, interval);
        loop {
            tokio::select! {
                next = replies.next() => match next {
                    None => return Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }),
                    Some(Err(err)) => return Some(close_frame(&err)),
                    Some(Ok(json)) => {
                        let Ok(text) = String::from_utf8(json) else {
                            return Some(close_frame(&GatewayError::internal("a reply is not UTF-8")));
                        };
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return None;
                        }
                        self.activity.touch(&self.activity.message);
                    }
                },
                _ = pings.tick() => {
                    if self.activity.since(&self.activity.heard) > interval + patience {
                        return Some(going_away("the client stopped answering pings"));
                    }
                    if self.activity.since(&self.activity.message) >= self.idle {
                        return Some(going_away("idle timeout"));
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return None;
                    }
                }
                () = signalled(closing) => {
                    return Some(going_away("the gateway is shutting down"));
                }
                () = signalled(client_gone) => return None,
            }
        }
    }
}

/// The request side: the client's frames into request messages.
struct Reader {
    requests: Requests,
    encoder: Encoder,
    /// Whether the method takes a stream of requests (else one message, then half-close).
    takes_stream: bool,
    failure: Failure,
    activity: Arc<Activity>,
    client_done: watch::Sender<bool>,
    /// `server.max_body_bytes`, for the error of a message over it.
    limit: usize,
}

/// What one client frame means for the call.
enum Step {
    More,
    /// The request side is over (cancelled or failed); frames are still read for the close.
    Stop,
}

impl Reader {
    async fn run(mut self, mut stream: SplitStream<Socket>, mut stop: watch::Receiver<bool>) {
        let mut sent = 0usize;
        let mut half_closed = false;
        let mut active = true;
        loop {
            let frame = tokio::select! {
                frame = stream.next() => frame,
                () = signalled(&mut stop), if active => {
                    self.requests.cancel();
                    active = false;
                    continue;
                }
            };
            self.activity.touch(&self.activity.heard);
            let too_large = matches!(&frame, Some(Err(err)) if is_capacity(err));
            let step = match frame {
                // The rest of the oversized frame is still unread: nothing more can be read,
                // and the reply side closes with the error.
                Some(Err(_)) if too_large => {
                    let which = format!("message {}", sent + 1);
                    self.fail(GatewayError::body_too_large(self.limit).in_message(&which));
                    return;
                }
                // A dropped socket (or one that broke the protocol) cancels the call. After
                // a failure the reply side is already closing with it.
                None | Some(Err(_)) => {
                    self.requests.cancel();
                    if active {
                        let _ = self.client_done.send(true);
                    }
                    return;
                }
                Some(Ok(Message::Close(_))) => {
                    self.requests.cancel();
                    let _ = self.client_done.send(true);
                    return;
                }
                Some(Ok(_)) if !active => Step::Stop,
                Some(Ok(Message::Text(text))) if text.is_empty() => {
                    if !half_closed {
                        half_closed = true;
                        let _ = self.requests.finish();
                    }
                    Step::More
                }
                Some(Ok(Message::Text(_))) if half_closed => {
                    self.fail(GatewayError::bad_request(if self.takes_stream {
                        "a message after the half-close (the empty text frame)"
                    } else {
                        "this method takes one request message"
                    }))
                }
                Some(Ok(Message::Text(text))) => {
                    sent += 1;
                    match self.send(sent, text.as_bytes(), &mut stop).await {
                        Ok(()) if !self.takes_stream => {
                            half_closed = true;
                            let _ = self.requests.finish();
                            Step::More
                        }
                        Ok(()) => Step::More,
                        Err(err) => self.fail(err),
                    }
                }
                Some(Ok(Message::Binary(_))) => self.fail(GatewayError::bad_request(
                    "binary frames are not read: send each message as proto3 JSON in a text frame",
                )),
                // Pings are answered by the protocol layer; pongs only prove the client is there.
                Some(Ok(_)) => Step::More,
            };
            if let Step::Stop = step {
                active = false;
            }
        }
    }

    /// Encodes and sends message `n`; waits for the upstream's window, unless told to stop.
    async fn send(
        &mut self,
        n: usize,
        message: &[u8],
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), GatewayError> {
        let framed = self
            .encoder
            .encode(message)
            .map_err(|err| err.in_message(&format!("message {n}")))?;
        self.activity.touch(&self.activity.message);
        tokio::select! {
            // An upstream that no longer takes messages has ended the call: the reply says how.
            _ = self.requests.send(framed) => Ok(()),
            () = signalled(stop) => Ok(()),
        }
    }

    fn fail(&mut self, err: GatewayError) -> Step {
        self.failure.set(err);
        self.requests.cancel();
        Step::Stop
    }
}

/// Returns once `flag` is true; never, when its sender is gone without setting it (a
/// reader that stopped reading is not a client that left). The watch's borrow stays
/// inside, so the future is `Send`.
async fn signalled(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|set| *set).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn is_capacity(err: &tokio_tungstenite::tungstenite::Error) -> bool {
    matches!(err, tokio_tungstenite::tungstenite::Error::Capacity(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_4000_plus_the_grpc_code_with_the_reason_cut_to_123_bytes() {
        let frame = close_frame(&GatewayError::upstream_status(&tonic::Status::not_found(
            "no such",
        )));
        assert_eq!(u16::from(frame.code), 4005);
        assert_eq!(frame.reason.as_str(), "no such");
        let long = "é".repeat(100);
        let frame = close_frame(&GatewayError::bad_request(long));
        assert_eq!(u16::from(frame.code), 4003);
        assert_eq!(frame.reason.len(), 122);
        assert!(frame.reason.as_str().chars().all(|c| c == 'é'));
    }
}
