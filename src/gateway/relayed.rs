//! The two directions of a relayed gRPC call (`passthrough.rs`): `pump` sends the client's
//! request body upstream within the stream's flow control, metering its messages; `Relayed`
//! is the answer's body, the upstream's DATA frames as they come and then its trailers, or
//! the gateway's status when the deadline passes, a message is too large or the stream
//! breaks. Dropping it (the client left) cancels the upstream stream and counts CANCELLED.
//! For `+json` calls, both directions transcode each message as it passes
//! (`json_envelopes.rs`); a message that does not transcode ends the call with its error.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tokio::time::Sleep;
use tonic::Code;

use super::Gateway;
use super::json_envelopes::JsonEnvelopes;
use super::passthrough::reply_headers;
use crate::error::GatewayError;
use crate::grpc::relay::{self, FrameMeter, Link};

/// The call metadata of a gRPC, gRPC-Web or Connect client's request: its metadata through
/// the allow-list (`metadata::from_grpc_client`), and the trace context when tracing is on.
pub(super) fn client_metadata(
    headers: &HeaderMap,
    config: &crate::config::Config,
) -> Result<tonic::metadata::MetadataMap, GatewayError> {
    #[allow(unused_mut)]
    let mut metadata = crate::metadata::from_grpc_client(
        headers,
        &config.transcoding.forward_headers,
        &config.transcoding.client_metadata,
    )?;
    #[cfg(feature = "otlp")]
    crate::telemetry::inject(&mut metadata);
    Ok(metadata)
}

/// Sends the client's request body upstream as it arrives, within the upstream stream's
/// flow control. A message over `limit` or a broken client stream cancels the upstream
/// stream; the first also says why in `refused`, for the client's answer.
/// With `json`, the client's messages are JSON and each is transcoded on its way
/// (`json_envelopes.rs`); a message that does not transcode is refused like one too large.
pub(super) async fn pump(
    mut body: Body,
    mut send: SendStream<Bytes>,
    limit: usize,
    refused: Arc<Mutex<Option<GatewayError>>>,
    mut json: Option<JsonEnvelopes>,
) {
    let mut meter = FrameMeter::new(limit);
    let refuse = |send: &mut SendStream<Bytes>, err: GatewayError| {
        if let Ok(mut slot) = refused.lock() {
            *slot = Some(err);
        }
        send.send_reset(h2::Reason::CANCEL);
    };
    loop {
        match body.frame().await {
            None => {
                if let Some(Err(err)) = json.as_ref().map(JsonEnvelopes::finish) {
                    return refuse(&mut send, err);
                }
                let _ = send.send_data(Bytes::new(), true);
                return;
            }
            Some(Ok(frame)) => {
                // A request's trailers mean nothing to gRPC: only DATA goes on.
                let Ok(data) = frame.into_data() else { continue };
                if let Err(len) = meter.feed(&data) {
                    tracing::debug!(len, limit, "gRPC request message over server.max_body_bytes");
                    return refuse(&mut send, GatewayError::body_too_large(limit));
                }
                let data = match json.as_mut().map(|json| json.feed(&data)) {
                    None => data,
                    Some(Ok(data)) => data,
                    Some(Err(err)) => return refuse(&mut send, err),
                };
                if send_all(&mut send, data).await.is_err() {
                    // The upstream stream ended or broke: the reply side reports it.
                    return;
                }
            }
            Some(Err(_)) => {
                send.send_reset(h2::Reason::CANCEL);
                return;
            }
        }
    }
}

/// Sends `data` as the upstream stream's window allows.
async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(0)) => continue,
            Some(Ok(n)) => send.send_data(data.split_to(n.min(data.len())), false)?,
            Some(Err(err)) => return Err(err),
            None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
        }
    }
    Ok(())
}

pub(super) fn take(refused: &Mutex<Option<GatewayError>>) -> Option<GatewayError> {
    refused.lock().ok().and_then(|mut slot| slot.take())
}

/// Aborts the request pump when the call's answer is dropped (finished, or the client left).
pub(super) struct AbortOnDrop(pub(super) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The request pump of a call, in a task of its own or driven by the call's own task.
///
/// A gRPC call whose client sends one message (unary, server streaming) has its pump polled
/// beside the reply: while the reply's head is awaited, then at each poll of the reply body.
/// Its one message has gone by the time the reply comes, as a rule, so nothing waits on the
/// client's reading; and the call saves a task spawn and the cross-task wake-ups of each of
/// its request frames (issue 24: pass-through's cost per seed call). A client that streams
/// requests keeps a task of its own: its messages must flow while the answer waits for the
/// client's window, which only a task of its own guarantees.
pub(super) enum Pump {
    Task(AbortOnDrop),
    /// `None` once it finished or was stopped.
    Inline(Option<Pin<Box<dyn Future<Output = ()> + Send>>>),
}

impl Pump {
    /// Starts `pump`: spawned when `own_task`, else left for [`Pump::poll`] to drive.
    pub(super) fn start(pump: impl Future<Output = ()> + Send + 'static, own_task: bool) -> Pump {
        match own_task {
            true => Pump::Task(AbortOnDrop(tokio::spawn(pump).abort_handle())),
            false => Pump::Inline(Some(Box::pin(pump))),
        }
    }

    /// Drives an inline pump as far as it goes now (its wake-ups come back to `cx`).
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) {
        if let Pump::Inline(slot @ Some(_)) = self
            && slot
                .as_mut()
                .is_some_and(|pump| pump.as_mut().poll(cx).is_ready())
        {
            *slot = None;
        }
    }

    /// Awaits `work`, driving an inline pump meanwhile.
    pub(super) async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            self.poll(cx);
            work.as_mut().poll(cx)
        })
        .await
    }

    /// Stops the pump (dropping an inline one, which resets its upstream stream if it had
    /// not finished, as aborting the task does).
    fn stop(&mut self) {
        match self {
            Pump::Task(task) => task.0.abort(),
            Pump::Inline(slot) => *slot = None,
        }
    }
}

/// Observes the RPC metric once, when the call's outcome is known.
pub(super) struct Outcome {
    pub(super) gateway: Arc<Gateway>,
    pub(super) method: String,
    pub(super) started: Instant,
}

impl Outcome {
    pub(super) fn observe(self, code: Code) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.gateway.metrics().observe_rpc(&self.method, code, seconds);
        #[cfg(feature = "otlp")]
        crate::telemetry::record_rpc(&self.method, code);
        if code == Code::Unimplemented {
            // The upstream no longer knows the method: its schema may have moved on.
            self.gateway.schema.nudge();
        }
    }
}

/// The reply body: the upstream's DATA frames as they come, then its trailers (or the
/// gateway's status, when the deadline passes, a message is too large or the stream breaks).
pub(super) struct Relayed {
    /// `None` once the call ended: dropping it (with the pump) cancels the upstream stream.
    pub(super) body: Option<RecvStream>,
    pub(super) body_done: bool,
    pub(super) deadline: Pin<Box<Sleep>>,
    pub(super) timeout: Duration,
    pub(super) meter: FrameMeter,
    pub(super) limit: usize,
    pub(super) refused: Arc<Mutex<Option<GatewayError>>>,
    pub(super) link: Link,
    pub(super) outcome: Option<Outcome>,
    /// `+json`: each reply message transcoded into JSON (`json_envelopes.rs`).
    pub(super) json: Option<JsonEnvelopes>,
    pub(super) pump: Pump,
    pub(super) _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Relayed {
    /// The last frame: the upstream's trailers, or the status of `err`.
    fn end(
        &mut self,
        trailers: Result<HeaderMap, GatewayError>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.body = None;
        self.pump.stop();
        let trailers = match trailers {
            Ok(trailers) => trailers,
            Err(err) => status_headers(&err),
        };
        if let Some(outcome) = self.outcome.take() {
            outcome.observe(relay::status_code(&trailers).unwrap_or(Code::Unknown));
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl Relayed {
    /// What a failed upstream stream means: the gateway's own refusal when it reset the
    /// stream itself (a request message over the limit), else the upstream's failure.
    fn broken(&self, err: h2::Error) -> GatewayError {
        take(&self.refused).unwrap_or_else(|| self.link.broken(err))
    }
}

impl hyper::body::Body for Relayed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.outcome.is_none() {
            return Poll::Ready(None);
        }
        this.pump.poll(cx);
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.end(Err(GatewayError::deadline_exceeded(this.timeout)));
        }
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        while !this.body_done {
            match body.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    if let Err(len) = this.meter.feed(&chunk) {
                        let err = GatewayError::bad_upstream_reply(format!(
                            "upstream reply too large: {len} bytes, the limit is {} (upstream.max_reply_bytes)",
                            this.limit
                        ));
                        return this.end(Err(err));
                    }
                    let chunk = match this.json.as_mut().map(|json| json.feed(&chunk)) {
                        None => chunk,
                        // A JSON message still arriving: nothing to send yet.
                        Some(Ok(chunk)) if chunk.is_empty() => continue,
                        Some(Ok(chunk)) => chunk,
                        Some(Err(err)) => return this.end(Err(err)),
                    };
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(Some(Err(err))) => {
                    let err = this.broken(err);
                    return this.end(Err(err));
                }
                Poll::Ready(None) => {
                    if let Some(Err(err)) = this.json.as_ref().map(JsonEnvelopes::finish) {
                        return this.end(Err(err));
                    }
                    this.body_done = true;
                }
            }
        }
        match body.poll_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(trailers))) => this.end(Ok(reply_headers(trailers))),
            Poll::Ready(Ok(None)) => {
                let err = this.link.missing_status();
                this.end(Err(err))
            }
            Poll::Ready(Err(err)) => {
                let err = this.broken(err);
                this.end(Err(err))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.outcome.is_none()
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        // Dropped before its end: the client went away, and the upstream call is cancelled.
        if let Some(outcome) = self.outcome.take() {
            outcome.observe(Code::Cancelled);
        }
    }
}

/// What gRPC's `grpc-message` percent-encodes: controls, non-ASCII (always) and `%`.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// `grpc-status` and `grpc-message` for an error.
pub(super) fn status_headers(err: &GatewayError) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(&crate::grpc::GRPC_STATUS, HeaderValue::from(err.code() as i32));
    let message = utf8_percent_encode(err.message(), GRPC_MESSAGE).to_string();
    if let Ok(message) = HeaderValue::try_from(message) {
        headers.insert(&crate::grpc::GRPC_MESSAGE, message);
    }
    headers
}
