//! Header ↔ metadata mapping.

use super::*;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};

#[test]
fn allow_list_forwards_and_everything_else_stays() {
    let h = headers(&[
        ("authorization", "Bearer t"),
        ("x-request-id", "r1"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "k=v"),
        ("grpc-metadata-tenant", "acme"),
        ("x-custom", "yes"),
        ("x-other", "no"),
        ("cookie", "session=1"),
        ("host", "example"),
        ("content-type", "application/json"),
        ("grpc-timeout", "1S"),
        ("connection", "keep-alive, x-custom"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("grpc-metadata-grpc-status", "0"),
        ("grpc-metadata-cookie", "sneaky"),
    ]);
    let md = to_grpc(&h, &[HeaderName::from_static("x-custom")]).expect("maps");
    let mut keys: Vec<String> = md.keys().map(|k| format!("{k:?}")).collect();
    keys.sort();
    assert_eq!(
        md.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer t")
    );
    assert_eq!(md.get("tenant").and_then(|v| v.to_str().ok()), Some("acme"));
    // Credentials and per-request values are never HPACK-indexed on the upstream connection.
    for sensitive in ["authorization", "x-request-id", "traceparent", "tracestate"] {
        assert!(md.get(sensitive).is_some_and(|v| v.is_sensitive()), "{sensitive}");
    }
    assert!(md.get("tenant").is_some_and(|v| !v.is_sensitive()));
    for absent in [
        "x-custom",
        "x-other",
        "cookie",
        "host",
        "content-type",
        "grpc-timeout",
        "keep-alive",
        "te",
        "grpc-status",
    ] {
        assert!(
            md.get(absent).is_none(),
            "{absent} must not be forwarded; got {keys:?}"
        );
    }
    assert_eq!(md.len(), 5, "{keys:?}");
}

#[test]
fn binary_metadata_must_be_base64() {
    let md = to_grpc(&headers(&[("grpc-metadata-trace-bin", "AQID")]), &[]).expect("valid base64");
    assert_eq!(
        md.get_bin("trace-bin").and_then(|v| v.to_bytes().ok()).as_deref(),
        Some(&[1u8, 2, 3][..])
    );
    let err = to_grpc(&headers(&[("grpc-metadata-trace-bin", "!!!")]), &[]).expect_err("bad base64");
    assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
}

#[test]
fn upstream_metadata_becomes_grpc_metadata_headers() {
    let mut md = MetadataMap::new();
    md.insert("x-served-by", AsciiMetadataValue::from_static("host-1"));
    md.insert_bin("blob-bin", BinaryMetadataValue::from_bytes(&[1, 2, 3]));
    let mut out = HeaderMap::new();
    to_http(&md, &mut out);
    assert_eq!(out["grpc-metadata-x-served-by"], "host-1");
    assert_eq!(out["grpc-metadata-blob-bin"], "AQID");
}

#[test]
fn allow_listed_response_metadata_becomes_plain_headers() {
    let mut md = MetadataMap::new();
    md.insert(
        "content-disposition",
        AsciiMetadataValue::from_static("attachment; filename=\"a.csv\""),
    );
    md.insert("etag", AsciiMetadataValue::from_static("\"v1\""));
    md.insert("x-served-by", AsciiMetadataValue::from_static("host-1"));
    let mut out = HeaderMap::new();
    let plain = [
        HeaderName::from_static("content-disposition"),
        HeaderName::from_static("etag"),
    ];
    to_http_with(&md, &mut out, &plain);
    assert_eq!(out["content-disposition"], "attachment; filename=\"a.csv\"");
    assert_eq!(out["etag"], "\"v1\"");
    assert_eq!(out["grpc-metadata-x-served-by"], "host-1");
    assert!(out.get("grpc-metadata-etag").is_none());
    // Without the allow-list, content-* metadata is never answered.
    let mut out = HeaderMap::new();
    to_http(&md, &mut out);
    assert!(out.get("content-disposition").is_none());
    assert!(out.get("grpc-metadata-content-disposition").is_none());
    assert_eq!(out["grpc-metadata-etag"], "\"v1\"");
}

#[test]
fn malformed_traceparent_is_dropped_with_its_tracestate() {
    let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (traceparent, forwarded) in [
        (good, true),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", false),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            false,
        ),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            true,
        ),
        ("garbage", false),
    ] {
        let md = to_grpc(
            &headers(&[("traceparent", traceparent), ("tracestate", "k=v")]),
            &[],
        )
        .expect("never rejected");
        assert_eq!(md.get("traceparent").is_some(), forwarded, "{traceparent}");
        assert_eq!(
            md.get("tracestate").is_some(),
            forwarded,
            "tracestate follows {traceparent}"
        );
    }
}

#[test]
fn te_trailers_is_found_in_any_list_position() {
    let with = |value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::TE, HeaderValue::from_static(value));
        accepts_trailers(&headers)
    };
    assert!(with("trailers"));
    assert!(with("gzip, Trailers"));
    assert!(with("trailers;q=1"));
    assert!(!with("gzip"));
    assert!(!accepts_trailers(&HeaderMap::new()));
}
