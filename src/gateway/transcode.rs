//! One routed request, start to finish: the cross-site check (403), route lookup (404, 405),
//! metadata and deadline, the body (413, 408, 503 from `body_intake.rs`; 415, 400), admission
//! (503), binding, the codec's encoding, the call with at most one
//! retry, and the HTTP response (a JSON reply, a selected field, no body, or a stream).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::Gateway;
use super::client_stream;
use super::duplex::RpcTimer;
use super::raw_body;
use super::stream::{self, StreamFormat};
use super::websocket;
use crate::binding::{self, body, multipart};
use crate::codec::{self, Call, Printing, http_body};
use crate::error::{Fault, GatewayError};
use crate::routing::Lookup;
use crate::schema::Schema;
use crate::{grpc, metadata, retry};

/// Routes, binds and forwards one request. Returns the route template as the request's
/// label (or `(unmatched)` when no route was found) with the answer.
pub(super) async fn transcode<'s>(
    gateway: &Arc<Gateway>,
    schema: &'s Arc<Schema>,
    request: Request,
) -> (&'s str, Result<Response, GatewayError>) {
    let (parts, body) = request.into_parts();
    // Tests only (Cargo.toml): proves that a handler panic is answered and survived.
    #[cfg(feature = "test-panic-route")]
    if parts.uri.path() == "/__protogate/panic" {
        panic!("the test panic route was called");
    }
    if let Err(err) = crate::cross_site::check(&gateway.config.cors, &parts.method, &parts.headers) {
        return ("(rejected)", Err(err));
    }
    // A WebSocket handshake (a GET upgrade, or an HTTP/2 extended CONNECT) names the
    // method's route, which may be a GET route or a POST route.
    let upgrade = websocket::handshake(&parts);
    let mut lookup = match upgrade {
        Some(_) => schema.routes().lookup(&http::Method::GET, parts.uri.path()),
        None => schema.routes().lookup(&parts.method, parts.uri.path()),
    };
    if upgrade.is_some() && !matches!(lookup, Lookup::Found { .. }) {
        lookup = schema.routes().lookup(&http::Method::POST, parts.uri.path());
    }
    let (route, vars) = match lookup {
        Lookup::Found { route, vars } => (route, vars),
        Lookup::MethodNotAllowed(allow) => {
            return (
                "(unmatched)",
                Err(GatewayError::method_not_allowed(&parts.method, &allow)),
            );
        }
        Lookup::NotFound => {
            return (
                "(unmatched)",
                Err(GatewayError::route_not_found(parts.uri.path())),
            );
        }
    };
    let label = route.template.as_str();
    let format = route.error_format;
    let answer = if let Some(kind) = upgrade {
        websocket::upgrade(gateway, schema, route, vars, kind, parts).await
    } else if route.method.streams_requests() {
        client_stream::call(gateway, schema, route, vars, parts, body).await
    } else {
        call_route(gateway, route, &vars, parts, body).await
    };
    (label, answer.map_err(|err| err.in_format(format)))
}

async fn call_route(
    gateway: &Arc<Gateway>,
    route: &crate::routing::Route,
    vars: &[String],
    parts: http::request::Parts,
    body: Body,
) -> Result<Response, GatewayError> {
    let config = &gateway.config;
    // Made again for a retry rather than cloned for every call that might need one.
    let forwarded_metadata = || {
        let transcoding = &config.transcoding;
        #[allow(unused_mut)]
        let mut metadata = metadata::to_grpc_with(
            &parts.headers,
            &transcoding.forward_headers,
            &transcoding.client_metadata,
        )?;
        // With OTLP export on, the upstream's parent is the gateway's span, not the caller's.
        #[cfg(feature = "otlp")]
        crate::telemetry::inject(&mut metadata);
        Ok::<_, GatewayError>(metadata)
    };
    let metadata = forwarded_metadata()?;
    let timeout = grpc::deadline(
        &parts.headers,
        config.upstream.timeout,
        config.upstream.max_timeout,
    )?;
    let declared = parts.headers.get(header::CONTENT_LENGTH);
    let upload = route.raw_body.is_some() || form_boundary(route, &parts.headers).is_some();
    let mut received = match upload {
        // A raw upload or a form held whole: bounded by its own limit (raw_body.rs).
        true => {
            let limit = usize::try_from(config.transcoding.raw_bodies.max_upload_bytes).unwrap_or(usize::MAX);
            gateway.bodies.receive_up_to(body, declared, limit).await?
        }
        false => gateway.bodies.receive(body, declared).await?,
    };
    // Only a request whose body has arrived takes a place among those in flight
    // (body_intake.rs says why).
    let _permit = gateway.admission.admit()?;
    let method = &route.method;
    // Encoded once, before any I/O: a request that does not fit the message type never
    // reaches the upstream, and a retry sends the same bytes. The body's bytes go as soon
    // as it is encoded; its share of the in-flight budget stays with the request. A large
    // body waits for its turn to be decoded (body_intake.rs says why).
    // A raw upload is copied, not decoded: it needs no turn.
    let turn = match route.raw_body {
        Some(_) => None,
        None => gateway.bodies.decode_turn(received.bytes.len()).await,
    };
    let (request, printing) = encode(gateway, route, vars, &parts, std::mem::take(&mut received.bytes))?;
    drop(turn);

    let started = Instant::now();
    // Each attempt picks a connection anew, and a retry avoids the address that failed:
    // a refused connection is retried on another replica.
    let mut first_metadata = Some(metadata);
    let mut tried = None;
    let mut call = |timeout: Duration| -> Result<Call, GatewayError> {
        let metadata = match first_metadata.take() {
            Some(metadata) => metadata,
            None => forwarded_metadata()?,
        };
        let connection = gateway.upstream.connection_avoiding(tried)?;
        tried = Some(connection.addr());
        Ok(Call {
            connection,
            grpc_path: method.grpc_path.clone(),
            body: request.clone(),
            metadata,
            timeout,
            printing: printing.clone(),
        })
    };
    let plain = &config.transcoding.raw_bodies.response_headers;
    if method.raw_reply {
        return raw_reply(gateway, method, timeout, started, call, plain).await;
    }
    if method.is_streaming() {
        let mut timer = RpcTimer::start(gateway, method);
        // Only a stream that never left may go again: no message was sent yet.
        let reply = retry::once(timeout, started, GatewayError::never_sent, |timeout| {
            let call = call(timeout);
            let codec = method.codec.clone();
            async move { codec::server_streaming(codec, call?).await }
        })
        .await
        .inspect_err(|err| timer.failed(err))?;
        let reply = codec::StreamReply {
            metadata: reply.metadata,
            messages: timer.observe(reply.messages),
        };
        return stream::respond(reply, StreamFormat::from_headers(&parts.headers), plain).await;
    }
    let outcome = retry::once(
        timeout,
        started,
        |err| retry::retryable(err, &parts.method),
        |timeout| {
            let call = call(timeout);
            async move { codec::unary(&*method.codec, call?).await }
        },
    )
    .await;
    // A failure that is the client's fault never became an RPC: nothing to count.
    let rpc_code = match &outcome {
        Err(err) if err.fault() == Fault::Client => None,
        Ok(_) => Some(tonic::Code::Ok),
        Err(err) => Some(err.code()),
    };
    // The upstream no longer knows the method: its schema may have moved on.
    if rpc_code == Some(tonic::Code::Unimplemented) {
        gateway.schema.nudge();
    }
    if let Some(code) = rpc_code {
        let elapsed = started.elapsed().as_secs_f64();
        gateway.metrics.observe_rpc(&method.full_name, code, elapsed);
        #[cfg(feature = "otlp")]
        crate::telemetry::record_rpc(&method.full_name, code);
    }
    let reply = outcome?;

    let body = match (&route.response_body, route.success_status) {
        (_, StatusCode::NO_CONTENT) => Bytes::new(),
        (Some(field), _) => Bytes::from(select_field(&reply.json, field)?),
        (None, _) => Bytes::from(reply.json),
    };
    let trailers = metadata::accepts_trailers(&parts.headers) && !reply.trailers.is_empty();
    let mut response = match trailers {
        true => with_trailers(body, &reply.trailers),
        false => Response::new(Body::from(body)),
    };
    *response.status_mut() = route.success_status;
    let headers = response.headers_mut();
    if route.success_status != StatusCode::NO_CONTENT {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    metadata::to_http_with(&reply.metadata, headers, plain);
    if !trailers {
        metadata::to_http_with(&reply.trailers, headers, plain);
    }
    Ok(response)
}

/// A call whose reply is `google.api.HttpBody`: one raw body, or a raw stream
/// (`raw_body.rs`), with the same retry rule and metrics as a JSON reply.
async fn raw_reply(
    gateway: &Arc<Gateway>,
    method: &Arc<crate::method::Method>,
    timeout: Duration,
    started: Instant,
    mut call: impl FnMut(Duration) -> Result<Call, GatewayError>,
    plain: &[http::HeaderName],
) -> Result<Response, GatewayError> {
    let mut timer = RpcTimer::start(gateway, method);
    if method.is_streaming() {
        let reply = retry::once(timeout, started, GatewayError::never_sent, |timeout| {
            let call = call(timeout);
            async move { codec::server_streaming_with(call?, http_body::decode).await }
        })
        .await
        .inspect_err(|err| timer.failed(err))?;
        let reply = codec::StreamReply {
            metadata: reply.metadata,
            messages: timer.observe(reply.messages),
        };
        return raw_body::stream_response(reply, plain).await;
    }
    let outcome = retry::once(timeout, started, GatewayError::never_sent, |timeout| {
        let call = call(timeout);
        async move { codec::unary_message(call?).await }
    })
    .await;
    timer.finish(&outcome);
    let reply = outcome?;
    raw_body::unary_response(reply.message, &reply.initial, &reply.trailing, plain)
}

/// The request message for `route`, framed: straight from the body when the route takes
/// the whole body and nothing else (`Codec::encode_body`), else through the binder's JSON
/// object. With it, how the replies are printed (output options, system parameters and
/// field selection: `binding::system::printing`).
fn encode(
    gateway: &Gateway,
    route: &crate::routing::Route,
    vars: &[String],
    parts: &http::request::Parts,
    bytes: Bytes,
) -> Result<(Bytes, Printing), GatewayError> {
    let (query, printing) =
        binding::system::printing(route, parts.uri.query().unwrap_or(""), &parts.headers)?;
    let query = Some(query.as_ref()).filter(|q| !q.is_empty());
    let unknown = gateway.config.transcoding.unknown_query_parameters;
    if let Some(target) = &route.raw_body {
        // The raw bytes, whatever their type, after what the path and query bound.
        let bound = route
            .method
            .codec
            .encode_request(&binding::bind(route, vars, query, None, unknown)?)?;
        let content_type = raw_body::content_type(&parts.headers);
        return Ok((target.frame(&bound, &content_type, &bytes)?, printing));
    }
    if let Some(boundary) = form_boundary(route, &parts.headers) {
        let form = multipart::parse(&bytes, &boundary)?;
        let request = multipart::bind_form(route, vars, query, form, unknown)?;
        return Ok((route.method.codec.encode_request(&request)?, printing));
    }
    let body = if bytes.is_empty() {
        None
    } else {
        body::check_content_type(
            parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        )?;
        // Stripped enum names are read by the binder, not by the codecs' straight path.
        let whole_body_only = matches!(route.body, crate::routing::BodyRule::Whole)
            && route.path_fields.is_empty()
            && query.is_none()
            && !route.reply_form.strip_enum_prefix;
        if whole_body_only && let Some(framed) = route.method.codec.encode_body(&bytes) {
            return Ok((framed, printing));
        }
        body::parse(&bytes)?
    };
    drop(bytes);
    let request = binding::bind(
        route,
        vars,
        query,
        body,
        gateway.config.transcoding.unknown_query_parameters,
    )?;
    Ok((route.method.codec.encode_request(&request)?, printing))
}

/// The boundary of a `multipart/form-data` request on a route that takes forms (its
/// request has a `bytes` or `HttpBody` field: `binding/multipart.rs`).
fn form_boundary(route: &crate::routing::Route, headers: &http::HeaderMap) -> Option<String> {
    // A route without a body (the seed call's) never looks at the header.
    if matches!(route.body, crate::routing::BodyRule::None) || route.raw_body.is_some() {
        return None;
    }
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = multipart::boundary(content_type)?;
    multipart::takes_forms(route).then_some(boundary)
}

/// `body` followed by the trailer metadata as `Grpc-Trailer-*` HTTP trailers, announced in
/// a `Trailer` header, as grpc-gateway sends them to a client that sent `TE: trailers`.
fn with_trailers(body: Bytes, metadata: &tonic::metadata::MetadataMap) -> Response {
    let mut trailers = http::HeaderMap::new();
    metadata::trailers_to_http(metadata, &mut trailers);
    let announced: Vec<&str> = trailers.keys().map(http::HeaderName::as_str).collect();
    let announced = HeaderValue::from_str(&announced.join(", ")).ok();
    let frames = [
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(body)),
        Ok(hyper::body::Frame::trailers(trailers)),
    ];
    let mut response = Response::new(Body::new(http_body_util::StreamBody::new(
        futures_util::stream::iter(frames),
    )));
    if let Some(announced) = announced {
        response.headers_mut().insert(header::TRAILER, announced);
    }
    response
}

/// `response_body`: the one reply field the route answers with. pbjson emits every field,
/// so it is always present.
fn select_field(json: &[u8], field: &str) -> Result<Vec<u8>, GatewayError> {
    let mut reply: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)
        .map_err(|e| GatewayError::internal(format!("reply JSON does not parse back: {e}")))?;
    let value = reply.remove(field).unwrap_or(serde_json::Value::Null);
    serde_json::to_vec(&value)
        .map_err(|e| GatewayError::internal(format!("reply field does not serialize: {e}")))
}
