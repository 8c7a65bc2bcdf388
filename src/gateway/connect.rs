//! Connect's unary protocol (connectrpc.com/docs/protocol): `POST /{Service}/{Method}` with a
//! bare message, `application/proto` (the bytes go upstream as they are) or `application/json`
//! (through the method's codec), answered with the bare reply in the same encoding, or with
//! Connect's error JSON (`{"code":"not_found","message":…,"details":[{"type","value"}]}`) and
//! Connect's HTTP status for the code. Leading metadata comes back as plain headers, trailing
//! metadata as `trailer-*` headers; `connect-timeout-ms` is the deadline (capped like every
//! other); a `gzip` request body is inflated.
//!
//! A JSON POST is Connect only with `Connect-Protocol-Version`; without it, the REST unbound
//! route `POST /{Service}/{Method}` answers as it always did (`gateway/mod.rs` picks). The
//! call runs over `grpc/relay.rs`'s unary relay, which keeps the upstream's status details as
//! bytes, as Connect sends them. Streams are `connect_stream.rs`'s.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;
use tonic::Code;

use super::Gateway;
use super::connect_error::{error_response, upstream_error};
use super::relayed::client_metadata;
use crate::error::{Fault, GatewayError};
use crate::grpc::relay::{self, RelayHead};
use crate::method::Method;
use crate::schema::Schema;
use crate::{grpc, metadata};

/// The message codec of a unary Connect request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Proto,
}

impl Encoding {
    fn content_type(self) -> HeaderValue {
        match self {
            Encoding::Json => HeaderValue::from_static("application/json"),
            Encoding::Proto => HeaderValue::from_static("application/proto"),
        }
    }
}

/// Whether a request with this content type is a Connect unary POST: `application/proto`
/// (REST takes no such body), or `application/json` with `Connect-Protocol-Version`.
pub(super) fn is_connect(content_type: &[u8], headers: &HeaderMap) -> bool {
    match encoding_of(content_type) {
        Some(Encoding::Proto) => true,
        Some(Encoding::Json) => headers.contains_key("connect-protocol-version"),
        None => false,
    }
}

fn encoding_of(content_type: &[u8]) -> Option<Encoding> {
    let base = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if base.eq_ignore_ascii_case(b"application/json") {
        Some(Encoding::Json)
    } else if base.eq_ignore_ascii_case(b"application/proto") {
        Some(Encoding::Proto)
    } else {
        None
    }
}

/// Serves one Connect unary call; `label` receives the method's gRPC path for the access log.
pub(super) async fn serve(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
) -> Response {
    let started = Instant::now();
    match call(gateway, schema, request, label, started).await {
        Ok(response) => response,
        Err(err) => error_response(err),
    }
}

async fn call(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
    started: Instant,
) -> Result<Response, GatewayError> {
    let schema = schema.ok_or_else(|| super::no_schema(gateway))?;
    let (parts, body) = request.into_parts();
    if let Some(version) = parts.headers.get("connect-protocol-version")
        && version != "1"
    {
        return Err(GatewayError::bad_request(format!(
            "connect-protocol-version {version:?} is not supported (1 is)"
        )));
    }
    // A browser's write, as for REST: refused from a site CORS does not allow.
    crate::cross_site::check(&gateway.config().cors, &parts.method, &parts.headers)?;
    let method = find_method(schema, parts.uri.path())?;
    label.push_str(method.grpc_path.as_str());
    if method.is_streaming() {
        return Err(GatewayError::not_served(format!(
            "{} is a server-streaming method: call it with Connect's streaming protocol (application/connect+proto)",
            method.full_name
        )));
    }
    let config = gateway.config();
    let metadata = client_metadata(&parts.headers, config)?;
    let timeout = connect_timeout(&parts.headers, config)?;
    let limit = config.server.max_body_bytes;
    let (encoding, bytes, received) = match parts.method {
        http::Method::POST => {
            let encoding = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| encoding_of(v.as_bytes()))
                .ok_or_else(|| GatewayError::unsupported_media_type("a Connect request"))?;
            let received = gateway
                .bodies
                .receive(body, parts.headers.get(header::CONTENT_LENGTH))
                .await?;
            let coding = parts
                .headers
                .get(header::CONTENT_ENCODING)
                .map(HeaderValue::as_bytes);
            let bytes = inflate(coding, received.bytes.clone(), limit)?;
            (encoding, bytes, Some(received))
        }
        http::Method::GET if schema.connect_get(method) => {
            let (encoding, bytes) = from_query(parts.uri.query().unwrap_or_default(), limit)?;
            (encoding, bytes, None)
        }
        _ => {
            // GET only for reads: NO_SIDE_EFFECTS, a get: binding, or the config's
            // connect_get (schema/connect_get.rs).
            let allowed: &[http::Method] = match schema.connect_get(method) {
                true => &[http::Method::GET, http::Method::POST],
                false => &[http::Method::POST],
            };
            return Err(GatewayError::method_not_allowed(&parts.method, allowed));
        }
    };
    let _permit = gateway.admission.admit()?;
    let framed = match encoding {
        Encoding::Proto => grpc::envelope(0, &bytes),
        Encoding::Json => encode_json(method, &bytes)?,
    };
    drop(received);
    let head = RelayHead {
        path: method.grpc_path.clone(),
        metadata,
        timeout,
        content_type: HeaderValue::from_static("application/grpc"),
        encoding: None,
        // The reply is decoded here: identity asks the upstream not to compress it.
        accept_encoding: Some(HeaderValue::from_static("identity")),
    };
    let connection = gateway.upstream.connection()?;
    let limit = config.upstream.max_reply_bytes;
    let called = Instant::now();
    let raw = tokio::time::timeout(timeout, relay::unary_raw(&connection, head, framed, limit))
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))?
        .and_then(|raw| match &raw.result {
            Err(status) if grpc::is_the_deadline(status.code(), called.elapsed(), timeout) => {
                Err(GatewayError::deadline_exceeded(timeout))
            }
            _ => Ok(raw),
        });
    // A failure that is the client's fault never became an RPC: nothing to count.
    let code = match &raw {
        Ok(raw) => Some(raw.result.as_ref().map_or_else(tonic::Status::code, |_| Code::Ok)),
        Err(err) if err.fault() == Fault::Client => None,
        Err(err) => Some(err.code()),
    };
    if let Some(code) = code {
        let seconds = started.elapsed().as_secs_f64();
        gateway.metrics().observe_rpc(&method.full_name, code, seconds);
    }
    let raw = raw?;
    let mut headers = HeaderMap::new();
    metadata::to_http_prefixed(&raw.initial, &mut headers, "");
    let (message, trailing) = match raw.result {
        Ok(reply) => reply,
        Err(status) => return Ok(upstream_error(&status, headers)),
    };
    metadata::to_http_prefixed(&trailing, &mut headers, "trailer-");
    let body = match encoding {
        Encoding::Proto => message,
        Encoding::Json => Bytes::from(method.codec.decode_reply(message, None)?),
    };
    headers.insert(header::CONTENT_TYPE, encoding.content_type());
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    Ok(response)
}

/// The method `/{Service}/{Method}` names, from the schema's method table.
fn find_method<'s>(schema: &'s Schema, path: &str) -> Result<&'s Arc<Method>, GatewayError> {
    let full_name = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .map(|(service, method)| format!("{service}.{method}"));
    full_name
        .as_deref()
        .and_then(|name| schema.methods().find(name))
        .ok_or_else(|| {
            GatewayError::not_served(format!("unknown method {path} (not in the gateway's schema)"))
        })
}

/// `connect-timeout-ms` (at most 10 digits), else the usual default; capped by
/// `upstream.max_timeout` like every deadline.
pub(super) fn connect_timeout(
    headers: &HeaderMap,
    config: &crate::config::Config,
) -> Result<Duration, GatewayError> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return grpc::deadline(headers, config.upstream.timeout, config.upstream.max_timeout);
    };
    let text = value.to_str().unwrap_or_default();
    let valid = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
    let millis: u64 = text.parse().ok().filter(|_| valid).ok_or_else(|| {
        GatewayError::bad_request(format!(
            "connect-timeout-ms {text:?} is not a number of milliseconds"
        ))
    })?;
    Ok(Duration::from_millis(millis).min(config.upstream.max_timeout))
}

/// A request message inflated as `coding` says (`gzip`, into at most `limit` bytes);
/// `identity` (or none) as it is; any other coding is refused as the protocol asks.
pub(super) fn inflate(coding: Option<&[u8]>, bytes: Bytes, limit: usize) -> Result<Bytes, GatewayError> {
    match coding {
        None | Some(b"identity") => Ok(bytes),
        // The protocol: an empty message is never decompressed.
        Some(_) if bytes.is_empty() => Ok(bytes),
        Some(b"gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    GatewayError::bad_request(format!("gzip request message does not inflate: {e}"))
                })?;
            if out.len() > limit {
                return Err(GatewayError::body_too_large(limit));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(GatewayError::not_served(format!(
            "compression {:?} is not supported (gzip, identity)",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// Whether a GET is Connect's: its query carries `message=` and `encoding=`, and its path
/// names a method of the schema (any other GET stays REST's).
pub(super) fn is_connect_get(schema: Option<&Schema>, uri: &http::Uri) -> bool {
    let Some(query) = uri.query() else {
        return false;
    };
    query.contains("message=")
        && query.contains("encoding=")
        && schema.is_some_and(|s| find_method(s, uri.path()).is_ok())
}

/// A GET's message from its query: `encoding=json|proto`, `message=` (percent-encoded, or
/// URL-safe base64 with `base64=1`), `compression=`, `connect=v1`; other parameters are
/// allowed and ignored, as the protocol says.
fn from_query(query: &str, limit: usize) -> Result<(Encoding, Bytes), GatewayError> {
    let (mut encoding, mut message, mut base64, mut compression) = (None, None, false, None);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = value.replace('+', " ");
        let value: Vec<u8> = percent_encoding::percent_decode_str(&value).collect();
        match key {
            "encoding" => encoding = Some(value),
            "message" => message = Some(value),
            "base64" => base64 = value == b"1",
            "compression" => compression = Some(value),
            "connect" if value != b"v1" => {
                return Err(GatewayError::bad_request(format!(
                    "connect={:?} is not supported (v1 is)",
                    String::from_utf8_lossy(&value)
                )));
            }
            _ => {}
        }
    }
    let encoding = match encoding.as_deref() {
        Some(b"json") => Encoding::Json,
        Some(b"proto") => Encoding::Proto,
        other => {
            let named = String::from_utf8_lossy(other.unwrap_or_default()).into_owned();
            return Err(GatewayError::unsupported_media_type(&format!("encoding={named}")));
        }
    };
    let message = message.unwrap_or_default();
    let message = match base64 {
        true => {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::URL_SAFE,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            engine.decode(&message).map_err(|e| {
                GatewayError::bad_field("message", format!("message is not URL-safe base64: {e}"))
            })?
        }
        false => message,
    };
    let bytes = inflate(compression.as_deref(), Bytes::from(message), limit)?;
    Ok((encoding, bytes))
}

/// A JSON request message through the method's codec (an empty body is `{}`), framed; a
/// value that does not fit is refused naming its field.
pub(super) fn encode_json(method: &Method, bytes: &[u8]) -> Result<Bytes, GatewayError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        bytes
    };
    if let Some(framed) = method.codec.encode_body(bytes) {
        return Ok(framed);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::bad_field("body", format!("request body is not JSON: {e}")))?;
    // The fast path refused it: the binder's checks say which field is wrong.
    let value = crate::binding::whole_message(value, &method.input)?;
    method.codec.encode_request(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_connect_only_with_the_protocol_header() {
        let mut headers = HeaderMap::new();
        assert!(!is_connect(b"application/json", &headers));
        assert!(is_connect(b"application/proto", &headers));
        headers.insert("connect-protocol-version", HeaderValue::from_static("1"));
        assert!(is_connect(b"application/json; charset=utf-8", &headers));
        assert!(!is_connect(b"application/connect+json", &headers));
        assert!(!is_connect(b"text/plain", &headers));
    }

    #[test]
    fn timeout_header_is_milliseconds_capped() {
        let config = crate::config::Config::from_toml("", &Default::default()).expect("config");
        let mut headers = HeaderMap::new();
        headers.insert("connect-timeout-ms", HeaderValue::from_static("250"));
        assert_eq!(
            connect_timeout(&headers, &config).expect("ok"),
            Duration::from_millis(250)
        );
        headers.insert("connect-timeout-ms", HeaderValue::from_static("99999999999"));
        assert!(connect_timeout(&headers, &config).is_err());
        headers.insert("connect-timeout-ms", HeaderValue::from_static("9999999999"));
        assert_eq!(
            connect_timeout(&headers, &config).expect("ok"),
            config.upstream.max_timeout
        );
    }
}
