//! The call core for methods that take a stream of requests (client-streaming and
//! bidirectional), shared by the front-ends that carry them (HTTP bodies in
//! `client_stream.rs`, WebSocket frames in `websocket.rs`): opening the call, encoding each
//! request message on the route's terms, the reply's messages as proto3 JSON bounded by the
//! deadline, the failure of the request side (a bad message N) reported in place of the
//! CANCELLED that its reset causes, and the per-call metric ([`RpcTimer`], which every
//! streaming shape records when its call ends, however it ends).
//!
//! The request side runs as its own task, so replies flow while requests are still being
//! sent; [`Held`] ends that task (and with it the upstream stream, which h2 then resets
//! with CANCEL) when the response is dropped, and holds the call's admission permit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Code;

use super::Gateway;
use crate::binding::{self, body};
use crate::codec::{Codec, Printing};
use crate::config::UnknownParams;
use crate::error::{Fault, GatewayError};
use crate::grpc::{self, PendingReply, Reply, Requests};
use crate::method::Method;
use crate::routing::{BodyRule, Route};
use crate::schema::Schema;

/// How each request message of one call is encoded: the route's path variables and query
/// are bound into every message, as into a unary call's one.
pub struct Encoder {
    schema: Arc<Schema>,
    index: usize,
    vars: Vec<String>,
    query: Option<String>,
    unknown: UnknownParams,
}

/// What a request-stream call (over HTTP or a WebSocket) takes from its request head: the
/// encoder of its messages, how its replies print (`?fields=`, `$alt`, the route's output
/// options), and its metadata.
pub struct Head {
    pub encoder: Encoder,
    pub printing: Printing,
    pub metadata: tonic::metadata::MetadataMap,
}

impl Head {
    pub fn of(
        gateway: &Gateway,
        schema: &Arc<Schema>,
        route: &Route,
        vars: Vec<String>,
        parts: &http::request::Parts,
    ) -> Result<Head, GatewayError> {
        let config = &gateway.config;
        let (query, printing) =
            binding::system::printing(route, parts.uri.query().unwrap_or(""), &parts.headers)?;
        let encoder = Encoder::new(
            schema,
            route,
            vars,
            Some(query.as_ref()),
            config.transcoding.unknown_query_parameters,
        )?;
        let metadata = crate::metadata::to_grpc_with(
            &parts.headers,
            &config.transcoding.forward_headers,
            &config.transcoding.client_metadata,
        )?;
        Ok(Head {
            encoder,
            printing,
            metadata,
        })
    }
}

impl Encoder {
    /// The encoder for `route` of `schema` (the schema is kept for the call's life, as a
    /// request keeps the schema it started with).
    pub fn new(
        schema: &Arc<Schema>,
        route: &Route,
        vars: Vec<String>,
        query: Option<&str>,
        unknown: UnknownParams,
    ) -> Result<Encoder, GatewayError> {
        let index = schema
            .routes()
            .routes()
            .iter()
            .position(|r| std::ptr::eq(r, route))
            .ok_or_else(|| GatewayError::internal("the route is not in its schema"))?;
        Ok(Encoder {
            schema: schema.clone(),
            index,
            vars,
            query: query.filter(|q| !q.is_empty()).map(str::to_string),
            unknown,
        })
    }

    fn route(&self) -> &Route {
        &self.schema.routes().routes()[self.index]
    }

    /// What the path and query bind, as one framed message with no body: the part of every
    /// message of a raw upload (`raw_body.rs`) that is not the upload's bytes.
    pub fn bound(&self) -> Result<Bytes, GatewayError> {
        let route = self.route();
        let request = binding::bind(route, &self.vars, self.query.as_deref(), None, self.unknown)?;
        route.method.codec.encode_request(&request)
    }

    /// One message of a streamed form (`binding/form_stream.rs`) as one framed protobuf
    /// message: the path and query bound as in every message, and `parts` (text parts and
    /// a piece of a file part) as a whole form's would be (`binding/multipart.rs`).
    pub fn encode_form(&self, parts: Vec<binding::multipart::Part>) -> Result<Bytes, GatewayError> {
        let route = self.route();
        let request =
            binding::multipart::bind_form(route, &self.vars, self.query.as_deref(), parts, self.unknown)?;
        route.method.codec.encode_request(&request)
    }

    /// One request message (JSON) as one framed protobuf message. A message that does not
    /// fit the type is the client's fault (400), worded as for a unary body.
    pub fn encode(&self, message: &[u8]) -> Result<Bytes, GatewayError> {
        let route = self.route();
        // Stripped enum names are read by the binder, not by the codecs' straight path.
        let straight = self.vars.is_empty()
            && self.query.is_none()
            && matches!(route.body, BodyRule::Whole)
            && !route.reply_form.strip_enum_prefix;
        if straight && let Some(framed) = route.method.codec.encode_body(message) {
            return Ok(framed);
        }
        let parsed = body::parse(message)?;
        let request = binding::bind(route, &self.vars, self.query.as_deref(), parsed, self.unknown)?;
        route.method.codec.encode_request(&request)
    }
}

/// Where the request side leaves the client's failure (a bad message, a body that broke
/// off), so that the reply side reports it rather than the CANCELLED its reset causes.
#[derive(Clone, Default)]
pub struct Failure(Arc<Mutex<Option<GatewayError>>>);

impl Failure {
    pub fn set(&self, err: GatewayError) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(err);
        }
    }

    /// The client's failure if there was one, else `err`.
    pub fn or(&self, err: GatewayError) -> GatewayError {
        self.0.lock().ok().and_then(|mut slot| slot.take()).unwrap_or(err)
    }

    /// Ends the request side of a call by how its pump ended: `Ok(true)`, every message
    /// sent, half-closes the stream; `Ok(false)`, the upstream ended it, leaves it (the
    /// reply says how); an error is kept for the reply side and resets the stream, so that
    /// the upstream never takes a broken upload for a complete one.
    pub fn end(&self, requests: &mut Requests, outcome: Result<bool, GatewayError>) {
        match outcome {
            Ok(true) => {
                let _ = requests.finish();
            }
            Ok(false) => {}
            Err(err) => {
                self.set(err);
                requests.cancel();
            }
        }
    }
}

/// What a call holds until its response is done: the request side's task (aborted on
/// drop) and the call's place among those in flight.
pub struct Held {
    task: Option<JoinHandle<()>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    pub fn new(task: Option<JoinHandle<()>>, permit: Option<OwnedSemaphorePermit>) -> Held {
        Held {
            task,
            _permit: permit,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Opens the call: the head goes upstream at once, within the deadline.
pub async fn open(
    gateway: &Gateway,
    method: &Method,
    metadata: tonic::metadata::MetadataMap,
    timeout: Duration,
    deadline: Instant,
) -> Result<(Requests, PendingReply), GatewayError> {
    let connection = gateway.upstream.connection()?;
    let opening = grpc::open_stream(&connection, method.grpc_path.clone(), metadata, timeout);
    tokio::time::timeout_at(deadline, opening)
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))?
}

/// The reply's head, within the deadline; a failure is the client's when the request side
/// failed first.
pub async fn head(
    pending: PendingReply,
    deadline: Instant,
    timeout: Duration,
    failure: &Failure,
) -> Result<Reply, GatewayError> {
    match tokio::time::timeout_at(deadline, pending.head()).await {
        Err(_) => Err(GatewayError::deadline_exceeded(timeout)),
        Ok(Err(err)) => Err(failure.or(err)),
        Ok(Ok(reply)) => Ok(reply),
    }
}

/// The reply messages as proto3 JSON, ending after the first error. `held` lives as long
/// as the stream.
pub fn replies(
    reply: Reply,
    codec: Arc<dyn Codec>,
    printing: Printing,
    (deadline, timeout): (Instant, Duration),
    failure: Failure,
    held: Held,
) -> BoxStream<'static, Result<Vec<u8>, GatewayError>> {
    futures_util::stream::unfold(Some((reply, held)), move |state| {
        let codec = codec.clone();
        let failure = failure.clone();
        let printing = printing.clone();
        async move {
            let (mut reply, held) = state?;
            let next = match tokio::time::timeout_at(deadline, reply.message()).await {
                Err(_) => Err(GatewayError::deadline_exceeded(timeout)),
                Ok(Ok(Some(bytes))) => printing.decode(&*codec, bytes),
                Ok(Ok(None)) => return None,
                Ok(Err(err)) => Err(failure.or(err)),
            };
            let state = next.is_ok().then_some((reply, held));
            Some((next, state))
        }
    })
    .boxed()
}

/// Like [`replies`], from before the reply's head: the head is awaited as the stream is
/// first polled (a front-end that has already answered its client, as a WebSocket has,
/// reports a failed head as the stream's one error).
pub fn replies_after_head(
    pending: PendingReply,
    codec: Arc<dyn Codec>,
    printing: Printing,
    (deadline, timeout): (Instant, Duration),
    failure: Failure,
    held: Held,
) -> BoxStream<'static, Result<Vec<u8>, GatewayError>> {
    let opened = async move {
        match head(pending, deadline, timeout, &failure).await {
            Ok(reply) => replies(reply, codec, printing, (deadline, timeout), failure, held),
            Err(err) => futures_util::stream::once(async move { Err(err) }).boxed(),
        }
    };
    futures_util::stream::once(opened).flatten().boxed()
}

/// Records a call in `rpc_client_call_duration_seconds` once, when it ends: with its
/// status, or CANCELLED when it is dropped before its end (the client went away).
pub struct RpcTimer {
    gateway: Arc<Gateway>,
    method: Arc<Method>,
    started: std::time::Instant,
    done: bool,
}

impl RpcTimer {
    pub fn start(gateway: &Arc<Gateway>, method: &Arc<Method>) -> RpcTimer {
        RpcTimer {
            gateway: gateway.clone(),
            method: method.clone(),
            started: std::time::Instant::now(),
            done: false,
        }
    }

    /// The call ended with `outcome`. A failure that is the client's fault was no RPC
    /// outcome of the upstream's, but the call did leave, so it counts as what the
    /// upstream saw: CANCELLED.
    pub fn finish<T>(&mut self, outcome: &Result<T, GatewayError>) {
        self.record(outcome.as_ref().map_or_else(code_of, |_| Code::Ok));
    }

    /// The call failed with `err`.
    pub fn failed(&mut self, err: &GatewayError) {
        self.record(code_of(err));
    }

    fn record(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if code == Code::Unimplemented {
            self.gateway.schema.nudge();
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        self.gateway
            .metrics
            .observe_rpc(&self.method.full_name, code, elapsed);
        #[cfg(feature = "otlp")]
        crate::telemetry::record_rpc(&self.method.full_name, code);
    }

    /// `messages`, with the call recorded when the stream ends or is dropped.
    pub fn observe<T: Send + 'static>(
        mut self,
        messages: BoxStream<'static, Result<T, GatewayError>>,
    ) -> BoxStream<'static, Result<T, GatewayError>> {
        futures_util::stream::unfold(Some((messages, self.take())), |state| async move {
            let (mut messages, mut timer) = state?;
            match messages.next().await {
                None => {
                    timer.record(Code::Ok);
                    None
                }
                Some(Err(err)) => {
                    timer.record(code_of(&err));
                    Some((Err(err), None))
                }
                Some(Ok(message)) => Some((Ok(message), Some((messages, timer)))),
            }
        })
        .boxed()
    }

    fn take(&mut self) -> RpcTimer {
        let timer = RpcTimer {
            gateway: self.gateway.clone(),
            method: self.method.clone(),
            started: self.started,
            done: false,
        };
        self.done = true;
        timer
    }
}

fn code_of(err: &GatewayError) -> Code {
    if err.fault() == Fault::Client {
        Code::Cancelled
    } else {
        err.code()
    }
}

impl Drop for RpcTimer {
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}
