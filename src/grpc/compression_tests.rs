//! gzip reply messages, the reply limit after inflating, and gzip request frames.

use std::io::Write;

use super::*;

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("write");
    Bytes::from(encoder.finish().expect("finish"))
}

fn encoding(value: Option<&'static str>) -> Encoding {
    let mut headers = HeaderMap::new();
    if let Some(value) = value {
        headers.insert("grpc-encoding", HeaderValue::from_static(value));
    }
    Encoding::of(&headers)
}

#[test]
fn the_reply_head_names_the_encoding() {
    assert_eq!(encoding(None), Encoding::Identity);
    assert_eq!(encoding(Some("identity")), Encoding::Identity);
    assert_eq!(encoding(Some("gzip")), Encoding::Gzip);
    assert_eq!(encoding(Some("snappy")), Encoding::Other("snappy".into()));
}

#[test]
fn gzip_messages_inflate_and_plain_ones_pass_through() {
    let plain = Bytes::from_static(b"\x0a\x07success");
    assert_eq!(
        decode(false, plain.clone(), &Encoding::Gzip, 100).expect("plain"),
        plain
    );
    assert_eq!(
        decode(true, gzip(&plain), &Encoding::Gzip, 100).expect("gzip"),
        plain
    );
    // Exactly at the limit is fine.
    assert_eq!(
        decode(true, gzip(&[7; 100]), &Encoding::Gzip, 100)
            .expect("at the limit")
            .len(),
        100
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of zeros deflate to about 64 KiB.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
    let err = decode(true, bomb, &Encoding::Gzip, 4 << 20).expect_err("too large");
    assert_eq!(err.http_status(), http::StatusCode::BAD_GATEWAY);
    assert_eq!(
        err.message(),
        "upstream reply too large: more than 4194304 bytes once inflated, the limit is 4194304 (upstream.max_reply_bytes)"
    );
}

#[test]
fn compressed_messages_the_call_did_not_offer_are_bad_gateway() {
    for (encoding, part) in [
        (Encoding::Identity, "without a grpc-encoding"),
        (Encoding::Other("deflate".into()), "compressed with \"deflate\""),
    ] {
        let err = decode(true, gzip(b"x"), &encoding, 100).expect_err("not offered");
        assert_eq!(err.http_status(), http::StatusCode::BAD_GATEWAY);
        assert!(err.message().contains(part), "{}", err.message());
    }
    let err = decode(true, Bytes::from_static(b"not gzip"), &Encoding::Gzip, 100).expect_err("broken");
    assert!(err.message().contains("does not inflate"), "{}", err.message());
}

#[test]
fn request_frames_gzip_with_the_flag_and_length() {
    let message = vec![b'a'; 1000];
    let mut framed = vec![0, 0, 0, 0x03, 0xe8];
    framed.extend_from_slice(&message);
    let gzipped = gzip_frame(&Bytes::from(framed)).expect("gzip");
    assert_eq!(gzipped[0], 1, "compressed flag");
    assert_eq!(super::super::wire::frame_len(&gzipped), gzipped.len() - 5);
    assert!(gzipped.len() < 100, "{}", gzipped.len());
    assert_eq!(
        decode(true, gzipped.slice(5..), &Encoding::Gzip, 1000).expect("round trip"),
        message
    );
}
