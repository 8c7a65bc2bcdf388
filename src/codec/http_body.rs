//! `google.api.HttpBody`: bytes with a content type, carried raw rather than as JSON. A reply
//! of that type is decoded here into its content type and data (no JSON, no copy of the
//! data); a request whose body field is one is framed here from the raw request bytes,
//! appended to the encoding of what the path and query bound (protobuf merges a field that
//! appears again, so the two parts make one message). Which routes and methods take this
//! path is decided when the schema is built (`method.rs`, `routing/rules.rs`); the HTTP side
//! is the gateway's (`gateway/raw_body.rs`).

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use prost_reflect::{Kind, MessageDescriptor};

use crate::error::GatewayError;

/// The message that carries raw bytes.
pub const HTTP_BODY: &str = "google.api.HttpBody";

/// The content type of a reply whose `content_type` is empty.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Whether `message` is `google.api.HttpBody`.
pub fn is_http_body(message: &MessageDescriptor) -> bool {
    message.full_name() == HTTP_BODY
}

/// The fields of `google.api.HttpBody` that the gateway reads (`extensions`, field 3, is
/// skipped as an unknown field).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpBody {
    #[prost(string, tag = "1")]
    pub content_type: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

impl HttpBody {
    /// The content type to answer with: the message's own, or `application/octet-stream`.
    pub fn content_type(&self) -> &str {
        if self.content_type.is_empty() {
            DEFAULT_CONTENT_TYPE
        } else {
            &self.content_type
        }
    }
}

/// One reply message (unframed) as an `HttpBody`. A reply that does not decode is the
/// upstream's fault (502).
pub fn decode(reply: Bytes) -> Result<HttpBody, GatewayError> {
    HttpBody::decode(reply)
        .map_err(|e| GatewayError::bad_upstream_reply(format!("reply is not a google.api.HttpBody: {e}")))
}

/// Where a route's raw request body goes: the field numbers from the request message down
/// to the `HttpBody` field, empty when the request message is the `HttpBody` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTarget {
    pub numbers: Vec<u32>,
}

impl RawTarget {
    /// The target of a route whose body is the whole `input` (`body: "*"`), when it is an
    /// `HttpBody`.
    pub fn whole(input: &MessageDescriptor) -> Option<RawTarget> {
        is_http_body(input).then(|| RawTarget { numbers: Vec::new() })
    }

    /// The target of a route whose body is the field at `path` (`body: "field"`), when that
    /// field is a singular `HttpBody`.
    pub fn field(path: &[prost_reflect::FieldDescriptor]) -> Option<RawTarget> {
        let last = path.last()?;
        let raw = matches!(last.kind(), Kind::Message(m) if is_http_body(&m)) && !last.is_list();
        raw.then(|| RawTarget {
            numbers: path.iter().map(|f| f.number()).collect(),
        })
    }

    /// One framed request message: `bound` (a framed message with what the path and query
    /// bound, or nothing) followed by an `HttpBody` of `content_type` and `data` at this
    /// target. The data is copied once, into the frame.
    pub fn frame(&self, bound: &[u8], content_type: &str, data: &[u8]) -> Result<Bytes, GatewayError> {
        let bound = bound.get(5..).unwrap_or_default();
        let body = HttpBodyRef { content_type, data };
        // The lengths from the innermost message out: each enclosing field's length is the
        // encoding of what it holds.
        let mut lens = Vec::with_capacity(self.numbers.len());
        let mut len = body.encoded_len();
        for &number in self.numbers.iter().rev() {
            lens.push(len);
            len += key_len(number) + encoded_len_varint(len as u64);
        }
        lens.reverse();
        let total = bound.len() + len;
        let total32 = u32::try_from(total)
            .map_err(|_| GatewayError::bad_request("the request body does not fit one gRPC message"))?;
        let mut out = BytesMut::with_capacity(5 + total);
        out.put_u8(0);
        out.put_u32(total32);
        out.put_slice(bound);
        for (&number, &len) in self.numbers.iter().zip(&lens) {
            encode_key(number, WireType::LengthDelimited, &mut out);
            encode_varint(len as u64, &mut out);
        }
        body.encode(&mut out);
        Ok(out.freeze())
    }
}

/// An `HttpBody` over borrowed data, encoded as prost encodes `HttpBody` (empty fields
/// left out).
struct HttpBodyRef<'a> {
    content_type: &'a str,
    data: &'a [u8],
}

impl HttpBodyRef<'_> {
    fn field_len(number: u32, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            key_len(number) + encoded_len_varint(len as u64) + len
        }
    }

    fn encoded_len(&self) -> usize {
        Self::field_len(1, self.content_type.len()) + Self::field_len(2, self.data.len())
    }

    fn encode(&self, out: &mut BytesMut) {
        for (number, bytes) in [(1, self.content_type.as_bytes()), (2, self.data)] {
            if !bytes.is_empty() {
                encode_key(number, WireType::LengthDelimited, out);
                encode_varint(bytes.len() as u64, out);
                out.put_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_body_is_an_http_body_message() {
        let target = RawTarget { numbers: vec![] };
        let framed = target.frame(&[], "text/csv", b"a,b\n").expect("frame");
        assert_eq!(framed[0], 0);
        assert_eq!(
            u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize,
            framed.len() - 5
        );
        let decoded = decode(framed.slice(5..)).expect("decodes");
        assert_eq!(decoded.content_type, "text/csv");
        assert_eq!(&decoded.data[..], b"a,b\n");
    }

    /// `message Upload { string name = 1; Outer outer = 4; }` with `Outer { HttpBody file = 7; }`:
    /// the bound part and the raw part decode as one message.
    #[test]
    fn a_nested_field_follows_what_the_path_bound() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Outer {
            #[prost(message, optional, tag = "7")]
            file: Option<HttpBody>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Upload {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(message, optional, tag = "4")]
            outer: Option<Outer>,
        }
        let bound = crate::grpc::frame(&Upload {
            name: "report".into(),
            outer: None,
        });
        let data = vec![7u8; 300];
        let target = RawTarget { numbers: vec![4, 7] };
        let framed = target.frame(&bound, "", &data).expect("frame");
        let upload = Upload::decode(framed.slice(5..)).expect("decodes");
        assert_eq!(upload.name, "report");
        let file = upload.outer.and_then(|o| o.file).expect("file");
        assert_eq!(file.content_type, "");
        assert_eq!(file.content_type(), DEFAULT_CONTENT_TYPE);
        assert_eq!(&file.data[..], &data[..]);
    }

    #[test]
    fn a_reply_that_is_not_an_http_body_is_the_upstreams_fault() {
        let err = decode(Bytes::from_static(&[0x0a, 0x05, b'a'])).expect_err("truncated");
        assert_eq!(err.code(), tonic::Code::Internal);
    }
}
