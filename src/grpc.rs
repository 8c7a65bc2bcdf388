//! gRPC over one HTTP/2 stream of an upstream connection: the request head (`:path`,
//! `content-type: application/grpc`, `te: trailers`, `grpc-timeout`,
//! `grpc-accept-encoding`, metadata), the length-prefixed messages (gRPC's
//! PROTOCOL-HTTP2.md), and the reply: initial metadata, messages, and the status in the
//! trailers (or in the head, for a trailers-only reply). The byte-level format is in
//! `grpc/wire.rs`, gzip in `grpc/compression.rs`, and what a broken call means (status,
//! and whether it may be retried) in `grpc/failure.rs`.
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
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, header};
use tonic::metadata::MetadataMap;

use crate::error::GatewayError;
use crate::upstream::{Connection, InFlight, Live};

mod compression;
mod deadline;
mod failure;
pub mod relay;
mod streams;
mod wire;

use compression::Encoding;
use deadline::grpc_timeout;
pub use deadline::{deadline, is_the_deadline, parse_grpc_timeout, parse_request_timeout};
use failure::{head_error, missing_status, reply_error, sent, unsent};
pub use streams::{PendingReply, Requests, open_stream};
use wire::{
    check_head, compressed_flag, metadata_of, not_grpc, split_frame, status_from, upstream_error, whole_frame,
};
pub use wire::{envelope, envelope_prefix, frame, is_unimplemented_answer, take_envelope};

// The protocol's header names, made once: a `&str` name is parsed and checked again at each
// use (issue 24: about 5k instructions of a relayed seed call went to that).
pub static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
pub static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
pub static GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub static GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");

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
    /// How compressed messages are encoded (the head's `grpc-encoding`).
    encoding: Encoding,
    /// The largest message accepted, after decompression (`upstream.max_reply_bytes`).
    limit: usize,
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
        mut body,
    } = outgoing;
    let settings = connection.settings();
    let compressed = settings
        .compress_requests
        .filter(|threshold| body.len().saturating_sub(5) >= *threshold)
        .and_then(|_| compression::gzip_frame(&body));
    if let Some(gzipped) = &compressed {
        body = gzipped.clone();
    }
    // The upstream gets what is left of the deadline after waiting for a connection.
    let mut request = head(
        connection,
        path,
        metadata,
        timeout.saturating_sub(started.elapsed()),
    )?;
    if compressed.is_some() {
        request.headers_mut().insert(&GRPC_ENCODING, compression::GZIP);
    }
    let (response, mut stream) = sender
        .send_request(request, false)
        .map_err(|e| unsent(connection, &live, e))?;
    // Queued with the HEADERS frame, so both leave in one write. A server may answer a
    // stream at once and close it (grpcio's trailers-only UNIMPLEMENTED for an unknown
    // method), and on a multi-threaded runtime the connection task can see that before the
    // body is queued: then the server's answer, not the refused body, is the call's outcome.
    let unsent_body = stream.send_data(body, true).err();
    let response = match (response.await, unsent_body) {
        (Ok(response), _) => response,
        (Err(_), Some(err)) => return Err(sent(connection, &live, err)),
        (Err(err), None) => return Err(head_error(connection, &live, err)),
    };
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
        encoding: Encoding::of(&parts.headers),
        head: parts.headers,
        body,
        pending: BytesMut::new(),
        trailers,
        trailers_only,
        limit: settings.max_reply_bytes,
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

/// A unary exchange: exactly one message, then status OK.
pub async fn unary(connection: &Arc<Connection>, outgoing: Outgoing) -> Result<Unary, GatewayError> {
    let mut incoming = call(connection, outgoing).await?;
    let reply = incoming
        .message()
        .await?
        .ok_or_else(|| not_grpc("status OK without a reply message".to_string()))?;
    // The status comes after the message: wait for it.
    if incoming.message().await?.is_some() {
        return Err(not_grpc("more than one message for a unary call".to_string()));
    }
    Ok(Unary {
        initial: incoming.initial_metadata(),
        trailing: incoming.trailing_metadata(),
        message: reply,
    })
}

/// A unary call's successful reply: its message and the metadata of its head and trailers.
pub struct Unary {
    pub initial: MetadataMap,
    pub trailing: MetadataMap,
    pub message: Bytes,
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
    headers.insert(&GRPC_TIMEOUT, grpc_timeout(timeout));
    headers.insert(&GRPC_ACCEPT_ENCODING, compression::ACCEPT_ENCODING);
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
                    if self.pending.is_empty() && whole_frame(&chunk) && chunk.len() - 5 <= self.limit {
                        let compressed = compressed_flag(chunk[0])?;
                        return self.decode(compressed, chunk.slice(5..)).map(Some);
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

    /// The metadata of the trailers (none for a trailers-only reply, whose head holds it).
    pub fn trailing_metadata(&self) -> MetadataMap {
        match &self.trailers {
            Some(trailers) if !self.trailers_only => metadata_of(trailers.iter()),
            _ => MetadataMap::new(),
        }
    }

    fn take_frame(&mut self) -> Result<Option<Bytes>, GatewayError> {
        match split_frame(&mut self.pending, self.limit)? {
            Some((compressed, payload)) => self.decode(compressed, payload).map(Some),
            None => Ok(None),
        }
    }

    fn decode(&self, compressed: bool, payload: Bytes) -> Result<Bytes, GatewayError> {
        compression::decode(compressed, payload, &self.encoding, self.limit)
    }

    /// The end of the reply: OK, or the upstream's status as an error. An error keeps the
    /// metadata of the reply's head too (a server that sent its initial metadata and then
    /// failed, as grpcio does after `send_initial_metadata`), not only the trailers'.
    fn finish(&self) -> Result<Option<Bytes>, GatewayError> {
        let mut status = self
            .trailers
            .as_ref()
            .and_then(status_from)
            .ok_or_else(|| missing_status(self.missing_why()))?;
        if status.code() == tonic::Code::Ok {
            return Ok(None);
        }
        if !self.trailers_only && !self.head.is_empty() {
            *status.metadata_mut() = self.metadata();
        }
        Err(upstream_error(&status))
    }

    fn missing_why(&self) -> &'static str {
        match (&self.trailers, self.trailers_only) {
            (_, true) => "a reply head that ends the stream",
            (None, false) => "the stream ended without trailers",
            (Some(_), false) => "trailers without it",
        }
    }
}
