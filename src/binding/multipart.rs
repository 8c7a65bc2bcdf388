//! `multipart/form-data` bodies (RFC 7578) onto the request message: each part names a
//! field path of the request message. A text part (no `filename`) is read as a query value
//! is (`query.rs`: numbers, enums, repeated fields, dotted paths); a file part fills a
//! `bytes` field, or a `google.api.HttpBody` field with its data and content type. A part
//! whose name is no field is a 400 that names it. The body has arrived whole (bounded by
//! `transcoding.max_upload_bytes`); parts are slices of it, never copies. Which routes take
//! forms (those whose request has a `bytes` or `HttpBody` field) is decided here too
//! ([`takes_forms`]), for the gateway and the OpenAPI document alike.

use base64::Engine as _;
use bytes::Bytes;
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::query;
use crate::codec::http_body::is_http_body;
use crate::config::UnknownParams;
use crate::error::GatewayError;
use crate::routing::field_path::FieldPath;
use crate::routing::{BodyRule, Route};

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Set for a file part.
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// The boundary of a `multipart/form-data` content type, or `None` for any other type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        let value = value.trim().trim_matches('"');
        (key.trim().eq_ignore_ascii_case("boundary") && !value.is_empty()).then(|| value.to_string())
    })
}

/// Whether `route` takes forms: it has a body, not a raw one, and its request message has
/// a `bytes` or `HttpBody` field a file part can fill.
pub fn takes_forms(route: &Route) -> bool {
    !matches!(route.body, BodyRule::None) && route.raw_body.is_none() && has_file_field(&route.input, 0)
}

fn has_file_field(message: &MessageDescriptor, depth: usize) -> bool {
    depth < 3
        && message.fields().any(|f| match f.kind() {
            Kind::Bytes => true,
            Kind::Message(m) if is_http_body(&m) => true,
            Kind::Message(m) if !f.is_list() && !f.is_map() => has_file_field(&m, depth + 1),
            _ => false,
        })
}

pub(super) fn bad_form(why: impl Into<String>) -> GatewayError {
    GatewayError::bad_field(
        "body",
        format!("malformed multipart/form-data body: {}", why.into()),
    )
}

/// The parts of `body`, cut at `boundary`. A delimiter inside a part is only one that
/// starts a line (`CRLF--boundary`), as RFC 2046 §5.1.1 says; a preamble before the first
/// one and an epilogue after the last are ignored.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, GatewayError> {
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut at = match body.starts_with(first.as_bytes()) {
        true => first.len(),
        false => find(body, delimiter.as_bytes()).ok_or_else(|| bad_form("no boundary"))? + delimiter.len(),
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the CRLF that ends the delimiter line.
        let start = at + find(rest, b"\r\n").ok_or_else(|| bad_form("no closing boundary"))? + 2;
        let len =
            find(&body[start..], delimiter.as_bytes()).ok_or_else(|| bad_form("no closing boundary"))?;
        parts.push(read_part(body.slice(start..start + len))?);
        at = start + len + delimiter.len();
    }
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn read_part(part: Bytes) -> Result<Part, GatewayError> {
    let end = find(&part, b"\r\n\r\n").ok_or_else(|| bad_form("a part without headers"))?;
    let mut read = part_head(&part[..end])?;
    read.data = part.slice(end + 4..);
    Ok(read)
}

/// A part's name, filename and content type from its headers (without the blank line that
/// ends them); its data is left empty.
pub(super) fn part_head(head: &[u8]) -> Result<Part, GatewayError> {
    let head = std::str::from_utf8(head).map_err(|_| bad_form("part headers are not UTF-8"))?;
    let (mut name, mut filename, mut content_type) = (None, None, None);
    for line in head.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_string());
        } else if key.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_string();
                match k.trim() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        }
    }
    let name = name.ok_or_else(|| bad_form("a part without a name"))?;
    Ok(Part {
        name,
        filename,
        content_type,
        data: Bytes::new(),
    })
}

/// The request object of a form: path variables, then the form's text parts and the URL's
/// query (as query values, never overriding the path), then its file parts.
pub fn bind_form(
    route: &Route,
    vars: &[String],
    url_query: Option<&str>,
    parts: Vec<Part>,
    unknown: UnknownParams,
) -> Result<Value, GatewayError> {
    let mut object = match super::bind(route, vars, None, None, unknown)? {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    let bound = route.path_fields.clone();
    let mut text = form_urlencoded::Serializer::new(String::new());
    let mut files = Vec::new();
    for part in parts {
        let names: Vec<&str> = part.name.split('.').collect();
        let path = FieldPath::resolve(&route.input, &names).map_err(|why| {
            GatewayError::bad_field(&part.name, format!("unknown form part {:?}: {why}", part.name))
        })?;
        match part.filename {
            Some(_) => files.push((path, part)),
            None => {
                let value = std::str::from_utf8(&part.data).map_err(|_| {
                    GatewayError::bad_field(
                        &part.name,
                        format!("form part {:?} is not UTF-8 text", part.name),
                    )
                })?;
                text.append_pair(&part.name, value);
            }
        }
    }
    let mut query = text.finish();
    if let Some(url) = url_query.filter(|q| !q.is_empty()) {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(url);
    }
    if !query.is_empty() {
        query::bind_query(route, &query, &bound, unknown, &mut object)?;
    }
    for (path, part) in files {
        let value = file_value(&path, &part)?;
        super::set(&mut object, &path, value);
    }
    Ok(Value::Object(object))
}

/// A file part as the JSON of its field: base64 for `bytes`, `{contentType, data}` for an
/// `HttpBody`.
fn file_value(path: &FieldPath, part: &Part) -> Result<Value, GatewayError> {
    let leaf = path.leaf();
    let data = base64::engine::general_purpose::STANDARD.encode(&part.data);
    match leaf.kind() {
        Kind::Bytes if !leaf.is_list() => Ok(Value::String(data)),
        Kind::Message(m) if is_http_body(&m) && !leaf.is_list() => {
            let content_type = part.content_type.clone().unwrap_or_default();
            Ok(serde_json::json!({ "contentType": content_type, "data": data }))
        }
        _ => Err(GatewayError::bad_field(
            &part.name,
            format!(
                "form part {:?} is a file, but its field is neither bytes nor google.api.HttpBody",
                part.name
            ),
        )),
    }
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
