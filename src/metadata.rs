//! HTTP headers ↔ gRPC metadata, and the call deadline.
//!
//! Request side: only allow-listed headers travel to the upstream: `authorization`,
//! `x-request-id`, `traceparent`, `tracestate`, configured names, and `Grpc-Metadata-*` with
//! the prefix stripped (all of them, none, or the names `transcoding.client_metadata` lists).
//! Hop-by-hop headers (and any header that `Connection` names), `host`,
//! `cookie`, `content-*` and `grpc-*` never do, whatever the configuration says. Values that
//! are not valid metadata are skipped, not fatal, except a bad `-bin` value, which is a 400.
//!
//! Response side: the reply head's metadata comes back as `Grpc-Metadata-*` headers. The
//! trailers' metadata comes back as `Grpc-Trailer-*` HTTP trailers when the client sent
//! `TE: trailers`, as grpc-gateway does, and otherwise as `Grpc-Metadata-*` headers too.

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::metadata::{KeyAndValueRef, MetadataMap};

use crate::config::ClientMetadata;
use crate::error::GatewayError;

const BUILT_IN: &[&str] = &["authorization", "x-request-id", "traceparent", "tracestate"];
const METADATA_PREFIX: &str = "grpc-metadata-";
const TRAILER_PREFIX: &str = "grpc-trailer-";

/// Headers that must never reach the upstream, even when configured.
fn is_forbidden(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "cookie"
            | "set-cookie"
    ) || name.starts_with("content-")
        || name.starts_with("grpc-")
        // Reserved by the Connect protocol (connect-protocol-version, connect-timeout-ms).
        || name.starts_with("connect-")
        || name.starts_with(':')
}

/// Builds the upstream metadata for a request's headers, every `Grpc-Metadata-*` included.
pub fn to_grpc(headers: &HeaderMap, extra: &[HeaderName]) -> Result<MetadataMap, GatewayError> {
    to_grpc_with(headers, extra, &ClientMetadata::All)
}

/// Like [`to_grpc`], forwarding only the `Grpc-Metadata-*` headers that `client` allows
/// (`transcoding.client_metadata`).
pub fn to_grpc_with(
    headers: &HeaderMap,
    extra: &[HeaderName],
    client: &ClientMetadata,
) -> Result<MetadataMap, GatewayError> {
    collect(headers, |name| {
        let text = name.as_str();
        if let Some(stripped) = text.strip_prefix(METADATA_PREFIX) {
            client.allows(stripped).then_some((stripped, false))
        } else if BUILT_IN.contains(&text) {
            Some((text, true))
        } else if extra.iter().any(|h| h == name) {
            Some((text, false))
        } else {
            None
        }
    })
}

/// The metadata of a gRPC client's own call (pass-through), whose headers are metadata
/// already: each name passes by the rule that a `Grpc-Metadata-{name}` header would
/// (`client`), or as a built-in or configured name; the forbidden names (`grpc-*`,
/// `content-*`, hop-by-hop, …) never do. A `Grpc-Metadata-*` header is read as for REST.
pub fn from_grpc_client(
    headers: &HeaderMap,
    extra: &[HeaderName],
    client: &ClientMetadata,
) -> Result<MetadataMap, GatewayError> {
    collect(headers, |name| {
        let text = name.as_str();
        if let Some(stripped) = text.strip_prefix(METADATA_PREFIX) {
            client.allows(stripped).then_some((stripped, false))
        } else if BUILT_IN.contains(&text) {
            Some((text, true))
        } else if client.allows(text) || extra.iter().any(|h| h == name) {
            Some((text, false))
        } else {
            None
        }
    })
}

/// The allowed headers as metadata: `select` gives a header's metadata key (and whether it
/// is a built-in name) or refuses it; forbidden and hop-by-hop names are dropped after it.
fn collect<'h>(
    headers: &'h HeaderMap,
    select: impl Fn(&'h HeaderName) -> Option<(&'h str, bool)>,
) -> Result<MetadataMap, GatewayError> {
    let hop_by_hop: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut trace_context = None;
    let mut metadata = HeaderMap::new();
    for (name, value) in headers {
        let text = name.as_str();
        let Some((key, built_in)) = select(name) else {
            continue;
        };
        if key.is_empty() || is_forbidden(key) || hop_by_hop.iter().any(|h| h == text || h == key) {
            continue;
        }
        // W3C Trace Context: a malformed traceparent is ignored (the trace restarts upstream),
        // never rejected; tracestate means nothing without a valid traceparent.
        if key == "traceparent" || key == "tracestate" {
            let valid = *trace_context.get_or_insert_with(|| valid_traceparent(headers.get("traceparent")));
            if !valid {
                continue;
            }
        }
        let key = if built_in || key.len() == text.len() {
            // The header's own name, shared rather than parsed again.
            name.clone()
        } else {
            match HeaderName::from_bytes(key.as_bytes()) {
                Ok(key) => key,
                Err(_) => continue,
            }
        };
        insert(&mut metadata, key, value, built_in)?;
    }
    Ok(MetadataMap::from_headers(metadata))
}

/// `version-traceid-parentid-flags` in lowercase hex, per W3C Trace Context: version `ff`
/// and all-zero ids are invalid.
pub(crate) fn valid_traceparent(value: Option<&HeaderValue>) -> bool {
    let Some(text) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let parts: Vec<&str> = text.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    match parts.as_slice() {
        [version, trace, parent, flags, rest @ ..] => {
            hex(version, 2)
                && *version != "ff"
                && (rest.is_empty() || *version != "00")
                && hex(trace, 32)
                && nonzero(trace)
                && hex(parent, 16)
                && nonzero(parent)
                && hex(flags, 2)
        }
        _ => false,
    }
}

/// Adds one value. The built-in headers are marked sensitive, so that HTTP/2 never puts
/// them in its HPACK dynamic table: credentials must not be (RFC 7541 §7.1.3), and request
/// ids and trace context are unique per request, so indexing them only churns the table.
fn insert(
    metadata: &mut HeaderMap,
    key: HeaderName,
    value: &HeaderValue,
    built_in: bool,
) -> Result<(), GatewayError> {
    if key.as_str().ends_with("-bin") {
        let text = value.as_bytes();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| {
                GatewayError::bad_field(
                    key.as_str(),
                    format!("header for binary metadata {} is not base64", key.as_str()),
                )
            })?;
        // On the gRPC wire a binary value travels base64-encoded without padding; this is
        // the canonical form of what the client sent.
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(decoded);
        if let Ok(value) = HeaderValue::try_from(encoded) {
            metadata.append(key, value);
        }
        return Ok(());
    }
    // Non-ASCII or otherwise invalid values are dropped, as grpc-gateway does: gRPC ASCII
    // metadata is printable ASCII only, where HTTP also allows obs-text.
    if !value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)) {
        return Ok(());
    }
    let mut value = value.clone();
    if built_in {
        value.set_sensitive(true);
    }
    metadata.append(key, value);
    Ok(())
}

/// Copies upstream metadata into `Grpc-Metadata-*` response headers. Binary values are
/// base64-encoded, as on the gRPC wire.
pub fn to_http(metadata: &MetadataMap, headers: &mut HeaderMap) {
    write(metadata, headers, METADATA_PREFIX, &[]);
}

/// Like [`to_http`], except that metadata named in `plain` (`transcoding.response_headers`,
/// such as `content-disposition` or `etag`) becomes the HTTP header of that very name. The
/// list is checked when the config is read: it never names a header that frames the
/// response.
pub fn to_http_with(metadata: &MetadataMap, headers: &mut HeaderMap, plain: &[HeaderName]) {
    write(metadata, headers, METADATA_PREFIX, plain);
}

/// Copies the upstream's trailer metadata into `Grpc-Trailer-*` HTTP trailers.
pub fn trailers_to_http(metadata: &MetadataMap, trailers: &mut HeaderMap) {
    write(metadata, trailers, TRAILER_PREFIX, &[]);
}

/// Copies upstream metadata into response headers named `{prefix}{key}`: `""` for Connect's
/// leading metadata, `"trailer-"` for its trailing metadata in a unary answer.
pub fn to_http_prefixed(metadata: &MetadataMap, headers: &mut HeaderMap, prefix: &str) {
    write(metadata, headers, prefix, &[]);
}

/// Whether the client takes HTTP trailers: `TE: trailers` (RFC 9110 §10.1.4).
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::TE).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers"))
            })
        })
    })
}

fn write(metadata: &MetadataMap, headers: &mut HeaderMap, prefix: &str, plain: &[HeaderName]) {
    for entry in metadata.iter() {
        let (name, value) = match entry {
            KeyAndValueRef::Ascii(key, value) => (
                key.as_str(),
                HeaderValue::from_bytes(value.as_encoded_bytes()).ok(),
            ),
            KeyAndValueRef::Binary(key, value) => (
                key.as_str(),
                HeaderValue::from_bytes(value.as_encoded_bytes()).ok(),
            ),
        };
        if let Some(header) = plain.iter().find(|h| h.as_str() == name) {
            if let Some(value) = value {
                headers.append(header.clone(), value);
            }
            continue;
        }
        if is_forbidden(name) {
            continue;
        }
        if let (Ok(header), Some(value)) = (
            HeaderName::from_bytes(format!("{prefix}{name}").as_bytes()),
            value,
        ) {
            headers.append(header, value);
        }
    }
}

/// A header map from name/value pairs, for the tests here and in `grpc::deadline`.
#[cfg(test)]
pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
