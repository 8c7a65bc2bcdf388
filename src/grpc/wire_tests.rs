//! gRPC framing, `grpc-timeout` and reply-head checks.

use super::*;

const LIMIT: usize = 4 * 1024 * 1024;

#[test]
fn frame_is_flag_length_message() {
    let framed = frame(&tonic_health::pb::HealthCheckRequest {
        service: "MyService".into(),
    });
    assert_eq!(&framed[..5], &[0, 0, 0, 0, 11]);
    assert_eq!(&framed[5..], b"\x0a\x09MyService");
    assert!(whole_frame(&framed));
    assert_eq!(
        frame(&()).as_ref(),
        &[0, 0, 0, 0, 0],
        "an empty message is five bytes"
    );
}

#[test]
fn frames_split_across_chunks_and_several_per_chunk() {
    let one = frame(&tonic_health::pb::HealthCheckRequest { service: "a".into() });
    let two = frame(&tonic_health::pb::HealthCheckRequest { service: "bb".into() });
    let mut pending = BytesMut::new();
    pending.extend_from_slice(&one[..3]);
    assert!(
        split_frame(&mut pending, LIMIT).expect("ok").is_none(),
        "partial header"
    );
    pending.extend_from_slice(&one[3..]);
    pending.extend_from_slice(&two[..6]);
    assert_eq!(
        split_frame(&mut pending, LIMIT).expect("ok"),
        Some((false, one.slice(5..)))
    );
    assert!(
        split_frame(&mut pending, LIMIT).expect("ok").is_none(),
        "partial message"
    );
    pending.extend_from_slice(&two[6..]);
    assert_eq!(
        split_frame(&mut pending, LIMIT).expect("ok"),
        Some((false, two.slice(5..)))
    );
    assert!(pending.is_empty());
}

#[test]
fn oversized_frames_and_unknown_flags_are_bad_gateway() {
    let mut huge = BytesMut::new();
    huge.put_u8(0);
    huge.put_u32(u32::try_from(LIMIT + 1).expect("fits"));
    let err = split_frame(&mut huge, LIMIT).expect_err("too large");
    assert_eq!(err.http_status(), StatusCode::BAD_GATEWAY);
    assert!(
        err.message().starts_with("upstream reply too large"),
        "{}",
        err.message()
    );

    let mut compressed = BytesMut::from(&[1u8, 0, 0, 0, 1, 7][..]);
    assert_eq!(
        split_frame(&mut compressed, LIMIT).expect("compressed is a flag, not an error"),
        Some((true, Bytes::from_static(&[7])))
    );
    let mut flag_two = BytesMut::from(&[2u8, 0, 0, 0, 0][..]);
    let err = split_frame(&mut flag_two, LIMIT).expect_err("flag 2");
    assert_eq!(err.http_status(), StatusCode::BAD_GATEWAY);
    assert!(err.message().contains("message flag 2"), "{}", err.message());
}

#[test]
fn reply_head_must_be_http_200_grpc() {
    let grpc = {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        headers
    };
    assert!(check_head(StatusCode::OK, &grpc).is_ok());
    let err = check_head(StatusCode::OK, &HeaderMap::new()).expect_err("no content type");
    assert_eq!(err.http_status(), StatusCode::BAD_GATEWAY);
    // gRPC's HTTP-to-gRPC status mapping for replies without a gRPC status.
    for (http, code) in [
        (StatusCode::BAD_REQUEST, tonic::Code::Internal),
        (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated),
        (StatusCode::FORBIDDEN, tonic::Code::PermissionDenied),
        (StatusCode::NOT_FOUND, tonic::Code::Unimplemented),
        (StatusCode::TOO_MANY_REQUESTS, tonic::Code::Unavailable),
        (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
    ] {
        let err = check_head(http, &grpc).expect_err("not 200");
        assert_eq!(err.code(), code, "{http}");
    }
    let err = check_head(StatusCode::INTERNAL_SERVER_ERROR, &grpc).expect_err("500");
    assert_eq!(err.http_status(), StatusCode::BAD_GATEWAY);
}
