//! gRPC pass-through: a native gRPC client (`content-type: application/grpc`, `+proto`, …
//! over HTTP/2) calls the upstream through the gateway's port. The call is relayed at the
//! HTTP/2 level, every method shape alike: the client's DATA frames go upstream as they come,
//! the reply's DATA frames and trailers come back as they come (both in `relayed.rs`), and no
//! message is decoded. What a transcoded call gets, this one gets too: the method must be in
//! the schema (the upstream's `:path` comes from it), the same metadata allow-list
//! (`metadata::from_grpc_client`), the same deadline and cap (`grpc::deadline`, enforced here
//! as well as sent), admission, message limits (`server.max_body_bytes` per request message,
//! `upstream.max_reply_bytes` per reply message, counted as they pass), and the RPC metric.
//!
//! The gateway's own failures are gRPC answers too: HTTP 200 with `grpc-status` and
//! `grpc-message` in the head (trailers-only) before the reply started, in the trailers after.
//! The frame plumbing of the upstream side is `grpc/relay.rs`. gRPC-Web and Connect streams
//! with JSON messages (`+json`) are relayed the same way, with each message transcoded as
//! it passes (`json_envelopes.rs`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version, header};
use tonic::Code;

use super::Gateway;
use super::connect_stream;
use super::grpc_web::{self, InBandTrailers, TextDecoded};
use super::json_envelopes::JsonEnvelopes;
use super::relayed::{Outcome, Pump, Relayed, client_metadata, pump, status_headers, take};
use crate::error::GatewayError;
use crate::grpc;
use crate::grpc::relay::{self, FrameMeter, RelayHead};
use crate::method::Method;
use crate::schema::Schema;

static CONNECT_CONTENT_ENCODING: HeaderName = HeaderName::from_static("connect-content-encoding");
static CONNECT_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("connect-accept-encoding");

/// Whether a content type is gRPC's own (`application/grpc`, `application/grpc+proto`,
/// `application/grpc;…`), not gRPC-Web's.
pub(super) fn is_grpc(content_type: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    content_type.len() >= GRPC.len()
        && content_type[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(content_type.get(GRPC.len()), None | Some(b'+' | b';'))
}

/// Relays one gRPC call. `label` receives the access log's route: the method's gRPC path
/// once it is known to the schema.
pub(super) async fn pass(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
) -> Response {
    if request.version() != Version::HTTP_2 {
        // Not a gRPC client (they all speak HTTP/2): a JSON answer it can read.
        return GatewayError::unsupported_media_type("application/grpc over HTTP/1.1 (gRPC needs HTTP/2)")
            .into_response();
    }
    let started = Instant::now();
    match relay_call(gateway, schema, request, label, started, None).await {
        Ok(response) => response,
        Err(err) => refusal(err, HeaderValue::from_static("application/grpc")),
    }
}

/// A gRPC-Web call's wire form (`grpc_web.rs`).
pub(super) struct Web {
    /// `application/grpc-web-text`: both bodies base64.
    pub text: bool,
    /// `+json`: JSON messages, transcoded by the method's codec (`json_envelopes.rs`).
    pub json: bool,
    /// The request's content type, which the answer carries too.
    pub content_type: HeaderValue,
    /// Connect's streaming protocol (`connect_stream.rs`) rather than gRPC-Web.
    pub connect: bool,
}

/// Relays one gRPC-Web call (HTTP/1.1 or HTTP/2).
pub(super) async fn serve_web(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
    web: Web,
) -> Response {
    let started = Instant::now();
    let content_type = web.content_type.clone();
    let connect = web.connect;
    match relay_call(gateway, schema, request, label, started, Some(web)).await {
        Ok(response) => response,
        Err(err) if connect => super::connect_stream::refusal(err, content_type),
        Err(err) => refusal(err, content_type),
    }
}

async fn relay_call(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
    started: Instant,
    web: Option<Web>,
) -> Result<Response, GatewayError> {
    turned_on(&gateway.config().protocols, web.as_ref())?;
    let schema = schema.ok_or_else(|| super::no_schema(gateway))?;
    let (parts, body) = request.into_parts();
    if web.is_some() {
        // A browser's call, like a REST write: refused from a site CORS does not allow.
        crate::cross_site::check(&gateway.config().cors, &parts.method, &parts.headers)?;
    }
    let (path, full_name, streams_requests) = find_method(schema, parts.uri.path())?;
    label.push_str(path.as_str());
    // `+json`: the messages go through the method's codec, both ways.
    let json = match &web {
        Some(web) if web.json => Some(json_method(schema, &full_name)?),
        _ => None,
    };
    if parts.method != http::Method::POST {
        return Err(GatewayError::bad_request(format!(
            "a gRPC call is a POST, not {}",
            parts.method
        )));
    }
    let config = gateway.config();
    let metadata = client_metadata(&parts.headers, config)?;
    let connect = web.as_ref().is_some_and(|w| w.connect);
    let timeout = match connect {
        true => super::connect::connect_timeout(&parts.headers, config)?,
        false => grpc::deadline(
            &parts.headers,
            config.upstream.timeout,
            config.upstream.max_timeout,
        )?,
    };
    let deadline = tokio::time::Instant::from_std(started) + timeout;
    // Connect names the message compression in its own headers.
    let (encoding, accept_encoding) = match connect {
        true => (&CONNECT_CONTENT_ENCODING, &CONNECT_ACCEPT_ENCODING),
        false => (&grpc::GRPC_ENCODING, &grpc::GRPC_ACCEPT_ENCODING),
    };
    let permit = gateway.admission.admit()?;
    let connection = gateway.upstream.connection()?;
    let head = RelayHead {
        path,
        metadata,
        timeout,
        content_type: match &web {
            Some(_) => HeaderValue::from_static("application/grpc"),
            None => parts
                .headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/grpc")),
        },
        // JSON messages go upstream as protobuf, uncompressed, and the replies are decoded
        // here: identity asks the upstream not to compress them.
        encoding: parts.headers.get(encoding).cloned().filter(|_| json.is_none()),
        accept_encoding: match json {
            Some(_) => Some(HeaderValue::from_static("identity")),
            None => parts.headers.get(accept_encoding).cloned(),
        },
    };
    let late = || GatewayError::deadline_exceeded(timeout);
    let opened = tokio::time::timeout_at(deadline, relay::open_relay(&connection, head))
        .await
        .map_err(|_| late())??;
    // The client's messages flow while the reply's head is awaited: a bidirectional call's
    // server may answer only after the first message.
    let refused = Arc::new(Mutex::new(None));
    let body = match &web {
        Some(web) if web.text => Body::new(TextDecoded::new(body)),
        _ => body,
    };
    let requests = json.clone().map(|method| {
        let coding = parts.headers.get(encoding).cloned();
        JsonEnvelopes::requests(method, coding, config.server.max_body_bytes)
    });
    let pump = pump(
        body,
        opened.send,
        config.server.max_body_bytes,
        refused.clone(),
        requests,
    );
    // A gRPC client that sends one message: its pump runs in this task (relayed.rs, Pump).
    let mut pump = Pump::start(pump, web.is_some() || streams_requests);
    let reply = opened.reply.head(|| take(&refused));
    let (head, body, link) = tokio::time::timeout_at(deadline, pump.alongside(reply))
        .await
        .map_err(|_| late())??;
    let mut response = Response::new(Body::empty());
    *response.headers_mut() = reply_headers(head.headers);
    if let Some(web) = &web {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, web.content_type.clone());
    }
    let outcome = Outcome {
        gateway: gateway.clone(),
        method: full_name,
        started,
    };
    if body.is_end_stream() {
        // Trailers-only: the status is in the head, which the client gets as it is (Connect:
        // as the end-of-stream envelope).
        outcome.observe(relay::status_code(response.headers()).unwrap_or(Code::Unknown));
        if connect {
            let end = super::connect_stream::end_stream(response.headers());
            for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
                response.headers_mut().remove(name);
            }
            *response.body_mut() = Body::from(end);
        }
        return Ok(response);
    }
    let relayed = Body::new(Relayed {
        body: Some(body),
        body_done: false,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        timeout,
        meter: FrameMeter::new(config.upstream.max_reply_bytes),
        limit: config.upstream.max_reply_bytes,
        refused,
        link,
        outcome: Some(outcome),
        json: json.map(|method| JsonEnvelopes::replies(method, config.upstream.max_reply_bytes)),
        pump,
        _permit: permit,
    });
    *response.body_mut() = match &web {
        Some(web) if web.connect => {
            Body::new(InBandTrailers::new(relayed, connect_stream::end_stream, false))
        }
        Some(web) => Body::new(InBandTrailers::new(relayed, grpc_web::trailer_frame, web.text)),
        None => relayed,
    };
    Ok(response)
}

/// Whether the protocol of a call is turned on (`[protocols]`).
fn turned_on(protocols: &crate::config::ProtocolsConfig, web: Option<&Web>) -> Result<(), GatewayError> {
    let off = match web {
        None if !protocols.grpc => "gRPC pass-through is turned off (protocols.grpc = false)",
        Some(web) if web.connect && !protocols.connect => "Connect is turned off (protocols.connect = false)",
        Some(web) if !web.connect && !protocols.grpc_web => {
            "gRPC-Web is turned off (protocols.grpc_web = false)"
        }
        _ => return Ok(()),
    };
    Err(GatewayError::not_served(off))
}

/// The method-table entry of a method called with JSON messages: its codec transcodes them.
fn json_method(schema: &Schema, full_name: &str) -> Result<Arc<Method>, GatewayError> {
    schema.methods().find(full_name).cloned().ok_or_else(|| {
        GatewayError::not_served(format!(
            "{full_name} has no JSON codec in the gateway's schema: call it with protobuf messages"
        ))
    })
}

/// The method a gRPC path names, looked up in the schema's descriptors (every method shape;
/// the method table holds only the transcodable ones): its path, full name, and whether its
/// client streams requests.
fn find_method(schema: &Schema, path: &str) -> Result<(PathAndQuery, String, bool), GatewayError> {
    let unknown = || GatewayError::not_served(format!("unknown method {path} (not in the gateway's schema)"));
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .ok_or_else(unknown)?;
    let found = schema
        .pool()
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == method))
        .ok_or_else(unknown)?;
    // The names matched the descriptors' exactly: `path` is `/{service}/{method}` as the
    // schema spells it (copied as it is, without `format!`'s machinery on every call).
    let path = PathAndQuery::try_from(path).map_err(|_| unknown())?;
    Ok((path, found.full_name().to_string(), found.is_client_streaming()))
}

/// The reply head for the client: the upstream's, less what belongs to one connection.
pub(super) fn reply_headers(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    headers
}

/// The gateway's refusal of a call, as gRPC says it before any reply: HTTP 200 and the
/// status in the head (trailers-only). The access log gets the error's code and reason.
fn refusal(err: GatewayError, content_type: HeaderValue) -> Response {
    let status = status_headers(&err);
    let (mut parts, _) = err.into_response().into_parts();
    parts.status = StatusCode::OK;
    parts.headers = status;
    parts.headers.insert(header::CONTENT_TYPE, content_type);
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types_and_not_grpc_web() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC;charset=x",
        ] {
            assert!(is_grpc(yes.as_bytes()), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/grpc-web-text+proto",
            "application/grpcx",
            "application/json",
            "",
        ] {
            assert!(!is_grpc(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn status_message_is_percent_encoded() {
        let headers = status_headers(&GatewayError::bad_request("100% wrong\né"));
        assert_eq!(headers["grpc-status"], "3");
        assert_eq!(headers["grpc-message"], "100%25 wrong%0A%C3%A9");
    }
}
