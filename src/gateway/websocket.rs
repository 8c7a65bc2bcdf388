//! The WebSocket front-end (RFC 6455): a `GET` with `Upgrade: websocket` on a method's
//! route (its unbound `POST /{Service}/{Method}` route, or any rule's), or on HTTP/2 an
//! extended `CONNECT` with `:protocol = websocket` (RFC 8441), becomes one call of that
//! method, carried by the socket. This file owns the upgrade: the `Origin` check
//! against `[cors] allowed_origins` (403 before the upgrade, so that no other site can open
//! a socket with the user's cookies: cross-site WebSocket hijacking), the handshake's
//! checks and its `101` answer, the call's metadata and deadline from the upgrade request's
//! headers, and its place in admission. The frames and the call are `websocket/session.rs`;
//! the sockets a drain must close are counted in [`Sockets`].
//!
//! The contract (docs/streaming.md): each text frame from the client is one request message
//! in proto3 JSON, an empty text frame half-closes the request stream; each reply is one
//! text frame; the call ends with a close frame, 1000 for OK, else 4000 + the gRPC code with
//! the status message as the reason (cut to 123 bytes).

mod session;
mod sockets;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::Gateway;
use super::duplex::Head;
use crate::error::GatewayError;
use crate::grpc;
use crate::routing::Route;
use crate::schema::Schema;

pub use sockets::Sockets;

/// How a request asks to become a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handshake {
    /// RFC 6455 over HTTP/1.1: `GET` with `Upgrade: websocket`, answered 101.
    Upgrade,
    /// RFC 8441 over HTTP/2: extended `CONNECT` with `:protocol = websocket`, answered 200;
    /// the stream becomes the socket (no key, no accept).
    Connect,
}

/// Whether the request is a WebSocket handshake, and which. Cheap: a method compare and,
/// for `GET` and `CONNECT` only, a header or extension lookup.
pub(super) fn handshake(parts: &http::request::Parts) -> Option<Handshake> {
    if parts.method == http::Method::GET {
        is_upgrade(&parts.headers).then_some(Handshake::Upgrade)
    } else if parts.method == http::Method::CONNECT {
        let protocol = parts.extensions.get::<hyper::ext::Protocol>()?;
        protocol
            .as_str()
            .eq_ignore_ascii_case("websocket")
            .then_some(Handshake::Connect)
    } else {
        None
    }
}

/// Whether a request asks to become a WebSocket: `Upgrade: websocket`, listed in
/// `Connection` as RFC 9110 §7.8 requires (an `Upgrade` header alone is a hop-by-hop header
/// like any other, dropped).
fn is_upgrade(headers: &HeaderMap) -> bool {
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    websocket
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Answers a handshake on `route`: 101 (HTTP/1.1) or 200 (HTTP/2) and a session task, or
/// the error.
pub(super) async fn upgrade(
    gateway: &Arc<Gateway>,
    schema: &Arc<Schema>,
    route: &Route,
    vars: Vec<String>,
    kind: Handshake,
    mut parts: http::request::Parts,
) -> Result<Response, GatewayError> {
    let config = &gateway.config;
    check_origin(&config.cors, &parts.headers)?;
    check_version(&parts.headers)?;
    let accept = match kind {
        Handshake::Upgrade => Some(handshake_key(&parts.headers)?),
        Handshake::Connect => None,
    };
    let on_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| GatewayError::bad_request("this connection cannot be upgraded to a WebSocket"))?;
    let Head {
        encoder,
        printing,
        metadata,
    } = Head::of(gateway, schema, route, vars, &parts)?;
    // A socket lives as long as its call: without `grpc-timeout`, the longest deadline
    // allowed, not the default one of a request.
    let timeout = grpc::deadline(
        &parts.headers,
        config.upstream.max_timeout,
        config.upstream.max_timeout,
    )?;
    // A socket is a call in flight: it takes its place among them for its whole life, and
    // one among the sockets, whose cap keeps long-lived sockets from taking every place.
    let socket = gateway.sockets.enter(config.server.max_websockets)?;
    let permit = gateway.admission.admit()?;
    let call = session::Call {
        gateway: gateway.clone(),
        method: route.method.clone(),
        encoder,
        metadata,
        timeout,
        printing,
        permit,
        socket,
    };
    tokio::spawn(session::run(call, on_upgrade));
    let mut response = Response::new(Body::empty());
    // HTTP/2 has no Upgrade or Connection headers (RFC 9113 §8.2.2): a 200 opens the socket.
    if let Some(accept) = accept {
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(response)
}

/// A page may open a socket only from an origin that `[cors] allowed_origins` allows. A
/// request with no `Origin` comes from no browser page (a browser always sends it on a
/// WebSocket handshake), so it has no cookies to abuse.
fn check_origin(cors: &crate::config::CorsConfig, headers: &HeaderMap) -> Result<(), GatewayError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if cors.any_origin || cors.allowed_origins.iter().any(|allowed| allowed == origin) {
        return Ok(());
    }
    let shown = origin.to_str().unwrap_or("(not text)");
    Err(GatewayError::cross_site(format!(
        "origin {shown} may not open a WebSocket here: it is not in [cors] allowed_origins"
    )))
}

/// RFC 6455 §4.2.1 (and RFC 8441 §5, which keeps it): only version 13 is spoken.
fn check_version(headers: &HeaderMap) -> Result<(), GatewayError> {
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes);
    if version == Some(b"13") {
        return Ok(());
    }
    Err(
        GatewayError::bad_request("only WebSocket version 13 is spoken").with_headers(HeaderMap::from_iter(
            [(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))],
        )),
    )
}

/// `Sec-WebSocket-Accept` for the handshake's key (RFC 6455 §4.2.1; HTTP/1.1 only).
fn handshake_key(headers: &HeaderMap) -> Result<HeaderValue, GatewayError> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| GatewayError::bad_request("a WebSocket handshake needs Sec-WebSocket-Key"))?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).map_err(|e| GatewayError::internal(format!("accept key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_header_alone_is_no_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&headers));
    }

    #[test]
    fn an_extended_connect_for_websocket_is_a_handshake() {
        let (mut parts, ()) = http::Request::connect("/routeguide.RouteGuide/RouteChat")
            .body(())
            .expect("request")
            .into_parts();
        assert_eq!(handshake(&parts), None);
        parts
            .extensions
            .insert(hyper::ext::Protocol::from_static("websocket"));
        assert_eq!(handshake(&parts), Some(Handshake::Connect));
        parts.method = http::Method::POST;
        assert_eq!(handshake(&parts), None);
    }

    #[test]
    fn the_handshake_key_is_rfc_6455s_example() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let accept = handshake_key(&headers).expect("accepted");
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(check_version(&headers).is_ok());
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(check_version(&headers).expect_err("old").http_status(), 400);
    }

    #[test]
    fn origins_not_allowed_are_refused() {
        let cors = crate::config::CorsConfig {
            allowed_origins: vec![HeaderValue::from_static("http://app.test")],
            ..Default::default()
        };
        let mut headers = HeaderMap::new();
        assert!(check_origin(&cors, &headers).is_ok());
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://app.test"));
        assert!(check_origin(&cors, &headers).is_ok());
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert_eq!(check_origin(&cors, &headers).expect_err("403").http_status(), 403);
    }
}
