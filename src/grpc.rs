//! gRPC over one HTTP/2 stream of an upstream connection (the byte-level format is in
//! `grpc/wire.rs`): the request head (`:path`,
//! `content-type: application/grpc`, `te: trailers`, `grpc-timeout`, metadata), the
//! length-prefixed message framing (gRPC's PROTOCOL-HTTP2.md), and the reply: initial
//! metadata, messages, and the status in the trailers (or in the head, for a trailers-only
//! reply). Every transport failure becomes a `GatewayError` here, sorted by what it proves:
//! a call that never got a stream is safe to retry; a `REFUSED_STREAM` was not processed
//! (RFC 9113 §8.7); anything else after the stream opened may have been acted on.
//!
//! It knows bytes and statuses, not message types (the codec decodes). The deadline of a
//! call is chosen in `grpc/deadline.rs` and sent as `grpc-timeout`; the callers bound
//! every await by it.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::RecvStream;
use h2::client::SendRequest;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Request, Uri, header};
use tonic::metadata::MetadataMap;

use crate::error::GatewayError;
use crate::upstream::{Connection, InFlight, Live};

mod deadline;
mod wire;

use deadline::grpc_timeout;
pub use deadline::{deadline, parse_grpc_timeout, parse_request_timeout};
pub use wire::{MAX_REPLY_BYTES, frame};
use wire::{
    check_flag, check_head, metadata_of, not_grpc, split_frame, status_from, upstream_error, whole_frame,
};

const GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
const TRAILERS: HeaderValue = HeaderValue::from_static("trailers");
const USER_AGENT: HeaderValue = HeaderValue::from_static(concat!("protogate/", env!("CARGO_PKG_VERSION")));

/// A call as it goes on the wire.
pub struct Outgoing {
    /// `/package.Service/Method`, from the method table.
    pub path: PathAndQuery,
    pub metadata: MetadataMap,
    /// Sent as `grpc-timeout`, so that the upstream can give up too.
    pub timeout: Duration,
    /// One framed message (`frame`).
    pub body: Bytes,
}

/// The reply as it arrives: initial metadata now, messages and the status as they come.
pub struct Reply {
    head: HeaderMap,
    body: Option<RecvStream>,
    /// A partial frame carried over between DATA frames.
    pending: BytesMut,
    /// The status: from the head of a trailers-only reply, or the trailers.
    trailers: Option<HeaderMap>,
    trailers_only: bool,
    _in_flight: InFlight,
}

/// Opens the call on `connection` and waits for the reply's head.
pub async fn call(connection: &Arc<Connection>, outgoing: Outgoing) -> Result<Reply, GatewayError> {
    let started = std::time::Instant::now();
    let (live, mut sender) = open(connection).await?;
    let in_flight = live.in_flight();
    let Outgoing {
        path,
        metadata,
        timeout,
        body,
    } = outgoing;
    // The upstream gets what is left of the deadline after waiting for a connection.
    let request = head(
        connection,
        path,
        metadata,
        timeout.saturating_sub(started.elapsed()),
    )?;
    let (response, mut stream) = sender
        .send_request(request, false)
        .map_err(|e| unsent(connection, &live, e))?;
    // Queued with the HEADERS frame, so both leave in one write.
    stream
        .send_data(body, true)
        .map_err(|e| sent(connection, &live, e))?;
    let response = response.await.map_err(|e| head_error(connection, &live, e))?;
    let (parts, body) = response.into_parts();
    check_head(parts.status, &parts.headers)?;
    // A reply that ends with its HEADERS frame carries its status there (trailers-only).
    let trailers_only = body.is_end_stream();
    let (trailers, body) = if trailers_only {
        (Some(parts.headers.clone()), None)
    } else {
        (None, Some(body))
    };
    Ok(Reply {
        head: parts.headers,
        body,
        pending: BytesMut::new(),
        trailers,
        trailers_only,
        _in_flight: in_flight,
    })
}

/// A connection ready for one more stream. A connection that turns out closed (a GOAWAY
/// arrived, the socket died) is forgotten and dialled again once, at once: nothing was sent.
async fn open(connection: &Arc<Connection>) -> Result<(Live, SendRequest<Bytes>), GatewayError> {
    let mut redialled = false;
    loop {
        let live = connection
            .live()
            .await
            .map_err(|e| GatewayError::connect_failed(e.stage))?;
        match live.sender.clone().ready().await {
            Ok(sender) => return Ok((live, sender)),
            Err(err) if !redialled => {
                connection.forget(live.generation, &err);
                redialled = true;
            }
            Err(err) => return Err(unsent(connection, &live, err)),
        }
    }
}

/// The stream could not be opened: the connection is gone and nothing was sent.
fn unsent(connection: &Connection, live: &Live, err: h2::Error) -> GatewayError {
    if err.is_go_away() || err.is_io() || err.is_remote() {
        connection.forget(live.generation, &err);
        GatewayError::connect_failed(format!("upstream connection closed: {err}"))
    } else {
        GatewayError::internal(format!("upstream request rejected by HTTP/2: {err}"))
    }
}

/// A unary exchange: exactly one message, then status OK; returns the reply's metadata
/// (head and trailers) and the message.
pub async fn unary(
    connection: &Arc<Connection>,
    outgoing: Outgoing,
) -> Result<(MetadataMap, Bytes), GatewayError> {
    let mut incoming = call(connection, outgoing).await?;
    let reply = incoming
        .message()
        .await?
        .ok_or_else(|| not_grpc("status OK without a reply message".to_string()))?;
    // The status comes after the message: wait for it.
    if incoming.message().await?.is_some() {
        return Err(not_grpc("more than one message for a unary call".to_string()));
    }
    Ok((incoming.metadata(), reply))
}

/// The request head: pseudo-headers, gRPC headers, then the forwarded metadata.
fn head(
    connection: &Connection,
    path: PathAndQuery,
    metadata: MetadataMap,
    timeout: Duration,
) -> Result<Request<()>, GatewayError> {
    let settings = connection.settings();
    let uri = Uri::builder()
        .scheme(settings.scheme.clone())
        .authority(settings.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| GatewayError::internal(format!("upstream request URI: {e}")))?;
    let mut headers = metadata.into_headers();
    headers.insert(header::CONTENT_TYPE, GRPC);
    headers.insert(header::TE, TRAILERS);
    headers.insert(header::USER_AGENT, USER_AGENT);
    headers.insert("grpc-timeout", grpc_timeout(timeout));
    let mut request = Request::new(());
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

impl Reply {
    /// The reply's initial metadata (without the gRPC status of a trailers-only reply).
    pub fn initial_metadata(&self) -> MetadataMap {
        metadata_of(self.head.iter())
    }

    /// Whether the reply ended with its head (trailers-only: no message follows).
    pub fn is_trailers_only(&self) -> bool {
        self.trailers_only
    }

    /// The next message, or `None` once the reply ended with status OK; an error status
    /// or a broken reply is an error.
    pub async fn message(&mut self) -> Result<Option<Bytes>, GatewayError> {
        loop {
            if let Some(message) = self.take_frame()? {
                return Ok(Some(message));
            }
            let Some(body) = self.body.as_mut() else {
                return self.finish();
            };
            match body.data().await {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    // The usual case, one frame in one DATA frame: no copy.
                    if self.pending.is_empty() && whole_frame(&chunk) && chunk.len() - 5 <= MAX_REPLY_BYTES {
                        check_flag(chunk[0])?;
                        return Ok(Some(chunk.slice(5..)));
                    }
                    self.pending.extend_from_slice(&chunk);
                }
                Some(Err(err)) => return Err(reply_error(err)),
                None => {
                    self.trailers = body.trailers().await.map_err(reply_error)?;
                    self.body = None;
                    if !self.pending.is_empty() {
                        return Err(not_grpc("the reply ends inside a message".to_string()));
                    }
                    return self.finish();
                }
            }
        }
    }

    /// The metadata to return to the client: the head's and the trailers'.
    pub fn metadata(&self) -> MetadataMap {
        let trailers = self.trailers.as_ref().filter(|_| !self.trailers_only);
        metadata_of(self.head.iter().chain(trailers.into_iter().flatten()))
    }

    fn take_frame(&mut self) -> Result<Option<Bytes>, GatewayError> {
        split_frame(&mut self.pending)
    }

    /// The end of the reply: OK, or the upstream's status as an error. An error keeps the
    /// metadata of the reply's head too (a server that sent its initial metadata and then
    /// failed, as grpcio does after `send_initial_metadata`), not only the trailers'.
    fn finish(&self) -> Result<Option<Bytes>, GatewayError> {
        let mut status = self
            .trailers
            .as_ref()
            .and_then(status_from)
            .ok_or_else(|| not_grpc("the reply has no grpc-status".to_string()))?;
        if status.code() == tonic::Code::Ok {
            return Ok(None);
        }
        if !self.trailers_only && !self.head.is_empty() {
            *status.metadata_mut() = self.metadata();
        }
        Err(upstream_error(&status))
    }
}

/// A failure after the stream was sent: the connection is dropped when it is the
/// connection's fault, and the call is classified by `reply_error`.
fn sent(connection: &Connection, live: &Live, err: h2::Error) -> GatewayError {
    if err.is_io() || err.is_go_away() {
        connection.forget(live.generation, &err);
    }
    reply_error(err)
}

/// A failure while waiting for the reply's head. Two of them prove that the upstream did
/// not process the call, so it may go again: a GOAWAY whose last stream id is below ours
/// (h2 fails exactly those streams with a remote GOAWAY error; RFC 9113 §6.8), and a
/// `REFUSED_STREAM` reset (§8.7).
fn head_error(connection: &Connection, live: &Live, err: h2::Error) -> GatewayError {
    if err.is_remote() && err.is_go_away() {
        connection.forget(live.generation, &err);
        return GatewayError::refused_by_upstream(&err);
    }
    if err.is_remote() && err.is_reset() && err.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return GatewayError::refused_by_upstream(&err);
    }
    if err.is_io() {
        // Lost before any reply: a peer that is not an HTTP/2 server ends up here too.
        connection.forget(live.generation, &err);
        return not_grpc(format!("the connection was lost before a reply ({err})"));
    }
    sent(connection, live, err)
}

/// Sorts an HTTP/2 failure of a call the upstream may have acted on.
fn reply_error(err: h2::Error) -> GatewayError {
    if let (Some(reason), true) = (err.reason(), err.is_remote()) {
        let frame = if err.is_go_away() { "GOAWAY" } else { "RST_STREAM" };
        tracing::warn!(error = %err, frame, "upstream ended the call");
        return GatewayError::bad_upstream_reply(format!("upstream reset the call ({reason:?})"));
    }
    if err.is_io() {
        tracing::warn!(error = %crate::error::chain(&err), "upstream connection lost during a call");
        return GatewayError::bad_upstream_reply("upstream connection lost during the call");
    }
    not_grpc(err.to_string())
}
