//! gRPC-Web (grpc/grpc's PROTOCOL-WEB.md): `application/grpc-web`, `application/grpc-web+proto`
//! and `application/grpc-web-text` (base64) over HTTP/1.1 or HTTP/2, relayed like gRPC
//! (`passthrough.rs`, which does the call) with two changes of wire form: the status and
//! trailing metadata come back as the body's last frame (flag `0x80`, then `name: value\r\n`
//! lines) instead of HTTP trailers, which browsers cannot read; and for `-text`, both bodies
//! are base64 (a request may be several padded base64 chunks, one after another).
//! `+json` (`application/grpc-web+json`) carries proto3 JSON messages, transcoded one by
//! one through the method's codec as they pass (`json_envelopes.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use hyper::body::Frame;

use super::Gateway;
use super::passthrough::{self, Web};
use crate::schema::Schema;

/// `Some(text)` for a gRPC-Web content type (`text`: the `-text` base64 form), `None` for
/// anything else. `+json` counts as gRPC-Web (its messages are JSON).
pub(super) fn is_grpc_web(content_type: &[u8]) -> Option<bool> {
    const WEB: &[u8] = b"application/grpc-web";
    if content_type.len() < WEB.len() || !content_type[..WEB.len()].eq_ignore_ascii_case(WEB) {
        return None;
    }
    let rest = &content_type[WEB.len()..];
    if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"-text") {
        return matches!(rest.get(5), None | Some(b'+' | b';')).then_some(true);
    }
    matches!(rest.first(), None | Some(b'+' | b';')).then_some(false)
}

/// Serves one gRPC-Web call; `label` receives the method's gRPC path.
pub(super) async fn serve(
    gateway: &Arc<Gateway>,
    schema: Option<&Schema>,
    request: Request,
    label: &mut String,
) -> Response {
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(http::HeaderValue::from_static("application/grpc-web"));
    let text = is_grpc_web(content_type.as_bytes()).unwrap_or(false);
    let json = content_type
        .to_str()
        .is_ok_and(|v| v.to_ascii_lowercase().contains("+json"));
    let web = Web {
        text,
        json,
        content_type,
        connect: false,
    };
    passthrough::serve_web(gateway, schema, request, label, web).await
}

/// The request body of a `-text` call, base64-decoded as it arrives: whole 4-character groups
/// are decoded, the rest waits for the next chunk. Padding may end any group (a client may
/// send several padded chunks).
pub(super) struct TextDecoded {
    inner: Body,
    pending: BytesMut,
}

impl TextDecoded {
    pub(super) fn new(inner: Body) -> TextDecoded {
        TextDecoded {
            inner,
            pending: BytesMut::new(),
        }
    }
}

impl hyper::body::Body for TextDecoded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        loop {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) if this.pending.iter().all(u8::is_ascii_whitespace) => {
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Some(Err(axum::Error::new(
                        "gRPC-Web text body ends inside a base64 group",
                    ))));
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            this.pending
                .extend(data.iter().filter(|b| !b.is_ascii_whitespace()));
            let whole = this.pending.len() / 4 * 4;
            if whole == 0 {
                continue;
            }
            let groups = this.pending.split_to(whole);
            return Poll::Ready(Some(decode_groups(&groups).map(Frame::data)));
        }
    }
}

/// Decodes base64 made of whole 4-character groups, any of which may end in padding.
fn decode_groups(groups: &[u8]) -> Result<Bytes, axum::Error> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out = BytesMut::with_capacity(groups.len() / 4 * 3);
    let mut start = 0;
    // Split after each group that ends in padding: each run is standard padded base64.
    for (i, group) in groups.chunks(4).enumerate() {
        if group.ends_with(b"=") {
            let end = (i + 1) * 4;
            let decoded = engine.decode(&groups[start..end]).map_err(axum::Error::new)?;
            out.extend_from_slice(&decoded);
            start = end;
        }
    }
    if start < groups.len() {
        let decoded = engine.decode(&groups[start..]).map_err(axum::Error::new)?;
        out.extend_from_slice(&decoded);
    }
    Ok(out.freeze())
}

/// The answer body of a gRPC-Web call or a Connect stream: the relayed body's DATA as it
/// is, and its trailers as a last frame made by `ending` (gRPC-Web's trailer frame, or
/// Connect's end-of-stream envelope); all of it base64 for gRPC-Web's `-text`.
pub(super) struct InBandTrailers {
    inner: Body,
    ending: fn(&HeaderMap) -> Bytes,
    text: bool,
}

impl InBandTrailers {
    pub(super) fn new(inner: Body, ending: fn(&HeaderMap) -> Bytes, text: bool) -> InBandTrailers {
        InBandTrailers { inner, ending, text }
    }
}

impl hyper::body::Body for InBandTrailers {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let bytes = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => (this.ending)(&trailers),
                Err(_) => Bytes::new(),
            },
        };
        let bytes = match this.text {
            true => Bytes::from(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            false => bytes,
        };
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// Trailers as gRPC-Web's trailer frame: flag `0x80`, the length, then one `name: value\r\n`
/// line per entry (names lowercase, as HTTP/2 has them).
pub(super) fn trailer_frame(trailers: &HeaderMap) -> Bytes {
    let mut block = BytesMut::new();
    for (name, value) in trailers {
        block.put_slice(name.as_str().as_bytes());
        block.put_slice(b": ");
        block.put_slice(value.as_bytes());
        block.put_slice(b"\r\n");
    }
    crate::grpc::envelope(0x80, &block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_web_content_types() {
        assert_eq!(is_grpc_web(b"application/grpc-web"), Some(false));
        assert_eq!(is_grpc_web(b"application/grpc-web+proto"), Some(false));
        assert_eq!(is_grpc_web(b"application/grpc-web-text"), Some(true));
        assert_eq!(is_grpc_web(b"application/grpc-web-text+proto"), Some(true));
        assert_eq!(is_grpc_web(b"application/grpc"), None);
        assert_eq!(is_grpc_web(b"application/grpc-webx"), None);
    }

    #[test]
    fn text_bodies_may_be_padded_chunks_one_after_another() {
        let a = base64::engine::general_purpose::STANDARD.encode(b"ab");
        let b = base64::engine::general_purpose::STANDARD.encode(b"cde");
        let joined = format!("{a}{b}");
        assert_eq!(
            decode_groups(joined.as_bytes()).expect("decodes"),
            Bytes::from_static(b"abcde")
        );
    }

    #[test]
    fn trailers_become_the_last_frame() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frame = trailer_frame(&trailers);
        assert_eq!(&frame[..], b"\x80\x00\x00\x00\x10grpc-status: 0\r\n");
    }
}
