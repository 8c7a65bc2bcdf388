//! Client-streaming and bidirectional methods over plain HTTP: a POST whose body is the
//! stream of request messages (`messages.rs`: NDJSON lines, or a JSON array's elements, or
//! one JSON object). Each message goes upstream as soon as it is parsed, so the body is
//! never held whole. A client-streaming call answers with its one reply as JSON; a
//! bidirectional one answers in the server-streaming formats that `Accept` picks
//! (`stream.rs`), and its replies flow while the body is still arriving wherever the
//! client's connection lets them (HTTP/2, or an HTTP/1.1 client that reads while it writes).
//!
//! A bad message N is answered with 400 naming N, and the upstream call is reset with
//! CANCEL, so the upstream never takes the half-stream for a complete one. The call itself
//! (encoding, reply, metrics) is `duplex.rs`. A route whose body is a `google.api.HttpBody`
//! takes the body raw instead, cut into chunks (`raw_body.rs`), and an `HttpBody` reply is
//! answered raw.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http::{HeaderValue, header};
use http_body_util::BodyExt as _;

use super::Gateway;
use super::duplex::{self, Encoder, Failure, Head, Held, RpcTimer};
use super::messages::{Form, Splitter};
use super::raw_body::{self, Chunker};
use super::stream::{self, StreamFormat};
use crate::binding::form_stream::{FormEvent, FormReader};
use crate::binding::multipart;
use crate::codec::StreamReply;
use crate::error::GatewayError;
use crate::grpc::Requests;
use crate::routing::Route;
use crate::schema::Schema;
use crate::{grpc, metadata};

/// Runs one client-streaming or bidirectional call whose requests are `body`.
pub(super) async fn call(
    gateway: &Arc<Gateway>,
    schema: &Arc<Schema>,
    route: &Route,
    vars: Vec<String>,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response, GatewayError> {
    let config = &gateway.config;
    let raw = &config.transcoding.raw_bodies;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // A form to a route that takes one is streamed part by part (form_pump below).
    let form = match route.raw_body {
        None => content_type
            .and_then(multipart::boundary)
            .filter(|_| multipart::takes_forms(route)),
        Some(_) => None,
    };
    if form.is_some() && raw_body::declared_too_large(&parts.headers, raw.max_upload_bytes) {
        return Err(raw_body::too_large(raw.max_upload_bytes));
    }
    // A raw upload (an HttpBody body) takes any content type; JSON messages need theirs.
    let splitter = match route.raw_body {
        _ if form.is_some() => None,
        Some(_) if raw_body::declared_too_large(&parts.headers, raw.max_upload_bytes) => {
            return Err(raw_body::too_large(raw.max_upload_bytes));
        }
        Some(_) => None,
        None => Some(Splitter::new(
            Form::of(content_type)?,
            config.server.max_body_bytes,
        )),
    };
    let Head {
        encoder,
        printing,
        metadata,
    } = Head::of(gateway, schema, route, vars, &parts)?;
    let chunker = match &route.raw_body {
        Some(target) => Some(Chunker {
            target: target.clone(),
            bound: encoder.bound()?,
            content_type: raw_body::content_type(&parts.headers),
            chunk_bytes: raw.upload_chunk_bytes,
            max_bytes: raw.max_upload_bytes,
        }),
        None => None,
    };
    let timeout = grpc::deadline(
        &parts.headers,
        config.upstream.timeout,
        config.upstream.max_timeout,
    )?;
    // A stream is in flight from its first byte: it takes its place at once.
    let permit = gateway.admission.admit()?;
    let method = &route.method;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut timer = RpcTimer::start(gateway, method);
    let (requests, pending) = duplex::open(gateway, method, metadata, timeout, deadline)
        .await
        .inspect_err(|err| timer.failed(err))?;
    let failure = Failure::default();
    let idle = config.server.body_timeout;
    let task = match (splitter, chunker) {
        _ if let Some(boundary) = form => {
            let reader = FormReader::new(&boundary, raw.upload_chunk_bytes, config.server.max_body_bytes);
            let limit = raw.max_upload_bytes;
            tokio::spawn(form_pump(
                body,
                reader,
                requests,
                encoder,
                failure.clone(),
                (idle, limit),
            ))
        }
        (_, Some(chunker)) => tokio::spawn(raw_body::pump(body, chunker, requests, failure.clone(), idle)),
        (Some(splitter), None) => {
            tokio::spawn(pump(body, splitter, requests, encoder, failure.clone(), idle))
        }
        (None, None) => return Err(GatewayError::internal("a request stream without a form")),
    };
    let held = Held::new(Some(task), Some(permit));
    let reply = duplex::head(pending, deadline, timeout, &failure).await;
    let mut reply = match reply {
        Ok(reply) => reply,
        Err(err) => {
            timer.failed(&err);
            return Err(err);
        }
    };
    if method.streams_replies() {
        let metadata = reply.initial_metadata();
        let messages = duplex::replies(
            reply,
            method.codec.clone(),
            printing,
            (deadline, timeout),
            failure,
            held,
        );
        let reply = StreamReply {
            metadata,
            messages: timer.observe(messages),
        };
        let plain = &raw.response_headers;
        return stream::respond(reply, StreamFormat::from_headers(&parts.headers), plain).await;
    }
    let outcome = one_reply(&mut reply, (deadline, timeout), &failure).await;
    drop(held);
    let plain = &raw.response_headers;
    // An HttpBody reply is answered raw (raw_body.rs), any other as JSON.
    let response = outcome.and_then(|message| {
        let initial = reply.metadata();
        if method.raw_reply {
            return raw_body::unary_response(message, &initial, &reply.trailing_metadata(), plain);
        }
        let mut response = printing.decode(method.codec.as_ref(), message)?.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        metadata::to_http_with(&initial, headers, plain);
        Ok(response)
    });
    timer.finish(&response);
    response
}

/// A client-streaming call's one reply message, then status OK.
async fn one_reply(
    reply: &mut grpc::Reply,
    (deadline, timeout): (tokio::time::Instant, Duration),
    failure: &Failure,
) -> Result<bytes::Bytes, GatewayError> {
    let mut next = async || match tokio::time::timeout_at(deadline, reply.message()).await {
        Err(_) => Err(GatewayError::deadline_exceeded(timeout)),
        Ok(outcome) => outcome.map_err(|err| failure.or(err)),
    };
    let message = next()
        .await?
        .ok_or_else(|| GatewayError::bad_upstream_reply("status OK without a reply message"))?;
    if next().await?.is_some() {
        return Err(GatewayError::bad_upstream_reply(
            "more than one message for a client-streaming call",
        ));
    }
    Ok(message)
}

/// Request messages completed by one chunk of the body are sent in DATA frames of about
/// this size (a larger message goes in frames of its own size, as the window allows).
const BATCH_BYTES: usize = 16 * 1024;

/// The request side: reads the body, cuts it into messages and sends each upstream, then
/// half-closes; or, on a bad message or a body that broke off, leaves the failure for the
/// reply side and resets the upstream stream with CANCEL.
async fn pump(
    mut body: Body,
    mut splitter: Splitter,
    mut requests: Requests,
    encoder: Encoder,
    failure: Failure,
    idle: Duration,
) {
    let outcome = async {
        loop {
            // The messages this chunk completed leave together, in DATA frames of up to
            // BATCH_BYTES: one small frame per message would spend the upstream's budget of
            // small frames (h2 answers a flood of them with GOAWAY ENHANCE_YOUR_CALM
            // "too_many_data_frames").
            let mut batch = BytesMut::new();
            while let Some((n, message)) = splitter.next_message()? {
                let framed = encoder
                    .encode(&message)
                    .map_err(|err| err.in_message(&splitter.name(n)))?;
                batch.extend_from_slice(&framed);
                if batch.len() >= BATCH_BYTES && requests.send(batch.split().freeze()).await.is_err() {
                    return Ok(false);
                }
            }
            if !batch.is_empty() && requests.send(batch.freeze()).await.is_err() {
                return Ok(false);
            }
            // The body timeout bounds each wait for more of the body, not the whole
            // stream, which may last as long as the call's deadline.
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(GatewayError::body_timeout(idle)),
                Ok(None) => break,
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        splitter.push(&data);
                    }
                }
                Ok(Some(Err(err))) => {
                    return Err(GatewayError::bad_request(format!(
                        "the request body broke off: {err}"
                    )));
                }
            }
        }
        if let Some((n, message)) = splitter.finish()? {
            return send(&mut requests, &encoder, &splitter, n, &message).await;
        }
        Ok(true)
    }
    .await;
    failure.end(&mut requests, outcome);
}

/// The request side of a form to a client-streaming method: text parts set the fields of
/// the first message; each file part goes in pieces of `upload_chunk_bytes`, one message
/// per piece, the first piece in the first message; every message carries what the path
/// and query bound. A text part after the first message is a 400 (a browser sends the
/// parts in the form's order: put text inputs before file inputs). Failures are left for
/// the reply side and reset the upstream call with CANCEL, as in `pump`.
async fn form_pump(
    mut body: Body,
    mut reader: FormReader,
    mut requests: Requests,
    encoder: Encoder,
    failure: Failure,
    (idle, limit): (Duration, u64),
) {
    let outcome = async {
        let mut texts = Vec::new();
        let mut sent = false;
        let mut received: u64 = 0;
        loop {
            while let Some(event) = reader.next_event()? {
                let part = match event {
                    FormEvent::Text(part) if !sent => {
                        texts.push(part);
                        continue;
                    }
                    FormEvent::Text(part) => {
                        return Err(GatewayError::bad_field(
                            &part.name,
                            format!(
                                "form part {:?} is text after a file part: a streamed form takes its text parts first",
                                part.name
                            ),
                        ));
                    }
                    FormEvent::File(part) => part,
                    FormEvent::End => continue,
                };
                let mut message = std::mem::take(&mut texts);
                message.push(part);
                let framed = encoder.encode_form(message)?;
                sent = true;
                if requests.send(framed).await.is_err() {
                    return Ok(false);
                }
            }
            let data = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(GatewayError::body_timeout(idle)),
                Ok(None) => break,
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Ok(Some(Err(err))) => {
                    return Err(GatewayError::bad_request(format!(
                        "the request body broke off: {err}"
                    )));
                }
            };
            received += data.len() as u64;
            if received > limit {
                return Err(raw_body::too_large(limit));
            }
            reader.push(&data);
        }
        reader.finish()?;
        // A form of text parts only is one message.
        if !sent {
            let framed = encoder.encode_form(texts)?;
            if requests.send(framed).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
    .await;
    failure.end(&mut requests, outcome);
}

/// Encodes and sends message `n`; `false` when the upstream no longer takes messages.
async fn send(
    requests: &mut Requests,
    encoder: &Encoder,
    splitter: &Splitter,
    n: usize,
    message: &[u8],
) -> Result<bool, GatewayError> {
    let framed = encoder
        .encode(message)
        .map_err(|err| err.in_message(&splitter.name(n)))?;
    Ok(requests.send(framed).await.is_ok())
}
