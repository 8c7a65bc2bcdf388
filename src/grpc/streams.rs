//! A call whose request is a stream (client-streaming and bidirectional methods): the head
//! goes at once, then each request message as the caller has it, then the half-close (an
//! empty DATA frame with END_STREAM), while the reply is read on its own. The two halves are
//! separate values, [`Requests`] and [`PendingReply`], so that a front-end can send and
//! receive at the same time (full duplex).
//!
//! Sending waits for HTTP/2 send capacity (the upstream's flow-control window) before each
//! piece leaves, so a slow upstream holds the sender back and nothing piles up in h2's
//! buffers. A request stream that goes wrong (a bad message from the client, the client
//! gone) is reset with `CANCEL`, so the upstream sees CANCELLED and never a half-close it
//! could take for a complete stream (PROTOCOL-HTTP2.md, "Errors").

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::SendStream;
use h2::client::ResponseFuture;
use http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;

use super::compression::Encoding;
use super::failure::{head_error, unsent};
use super::wire::check_head;
use super::{Reply, head, open};
use crate::error::GatewayError;
use crate::upstream::{Connection, InFlight, Live};

/// The request half of a streaming call.
pub struct Requests {
    stream: SendStream<Bytes>,
    connection: Arc<Connection>,
    live: Live,
    finished: bool,
}

/// The reply half of a streaming call, before its head has arrived.
pub struct PendingReply {
    response: ResponseFuture,
    connection: Arc<Connection>,
    live: Live,
    limit: usize,
    in_flight: InFlight,
}

/// Opens a call whose request messages follow: only the head leaves now.
pub async fn open_stream(
    connection: &Arc<Connection>,
    path: PathAndQuery,
    metadata: MetadataMap,
    timeout: Duration,
) -> Result<(Requests, PendingReply), GatewayError> {
    let started = Instant::now();
    let (live, mut sender) = open(connection).await?;
    let in_flight = live.in_flight();
    let request = head(
        connection,
        path,
        metadata,
        timeout.saturating_sub(started.elapsed()),
    )?;
    let (response, stream) = sender
        .send_request(request, false)
        .map_err(|e| unsent(connection, &live, e))?;
    let pending = PendingReply {
        response,
        connection: connection.clone(),
        live: live.clone(),
        limit: connection.settings().max_reply_bytes,
        in_flight,
    };
    let requests = Requests {
        stream,
        connection: connection.clone(),
        live,
        finished: false,
    };
    Ok((requests, pending))
}

impl Requests {
    /// Sends one framed message (`wire::frame` or `Codec::encode_request`), piece by piece
    /// as the upstream's window opens. An error means the stream is over (the upstream
    /// answered or reset it): the reply half says how.
    pub async fn send(&mut self, mut framed: Bytes) -> Result<(), GatewayError> {
        while !framed.is_empty() {
            self.stream.reserve_capacity(framed.len());
            let granted = match std::future::poll_fn(|cx| self.stream.poll_capacity(cx)).await {
                Some(Ok(granted)) => granted,
                Some(Err(err)) => return Err(self.broken(err)),
                None => return Err(GatewayError::internal("upstream request stream closed")),
            };
            if granted == 0 {
                continue;
            }
            let piece = framed.split_to(granted.min(framed.len()));
            self.stream
                .send_data(piece, false)
                .map_err(|err| self.broken(err))?;
        }
        Ok(())
    }

    /// Half-closes the request stream: the upstream has every message.
    pub fn finish(&mut self) -> Result<(), GatewayError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.stream
            .send_data(Bytes::new(), true)
            .map_err(|err| self.broken(err))
    }

    /// Ends the call with RST_STREAM(CANCEL): the upstream sees CANCELLED.
    pub fn cancel(&mut self) {
        self.finished = true;
        self.stream.send_reset(h2::Reason::CANCEL);
    }

    fn broken(&self, err: h2::Error) -> GatewayError {
        super::failure::sent(&self.connection, &self.live, err)
    }
}

impl PendingReply {
    /// Waits for the reply's head. Its messages and status are then read from the
    /// [`Reply`] as for any call.
    pub async fn head(self) -> Result<Reply, GatewayError> {
        let response = self
            .response
            .await
            .map_err(|err| head_error(&self.connection, &self.live, err))?;
        let (parts, body) = response.into_parts();
        check_head(parts.status, &parts.headers)?;
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
            limit: self.limit,
            _in_flight: self.in_flight,
        })
    }
}
