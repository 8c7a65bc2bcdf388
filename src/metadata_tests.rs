//! Header ↔ metadata mapping and `grpc-timeout` parsing.

use super::*;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

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
fn grpc_timeout_grammar() {
    assert_eq!(parse_grpc_timeout("1S"), Some(Duration::from_secs(1)));
    assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
    assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
    assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
    assert_eq!(
        parse_grpc_timeout("99999999n"),
        Some(Duration::from_nanos(99_999_999))
    );
    for bad in ["", "S", "1", "1s", "123456789S", "-1S", "1.5S", " 1S"] {
        assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
    }
}

#[test]
fn deadline_is_capped_and_bad_values_are_400() {
    let (def, max) = (Duration::from_secs(10), Duration::from_secs(60));
    assert_eq!(deadline(&HeaderMap::new(), def, max).expect("default"), def);
    assert_eq!(
        deadline(&headers(&[("grpc-timeout", "2S")]), def, max).expect("ok"),
        Duration::from_secs(2)
    );
    assert_eq!(
        deadline(&headers(&[("grpc-timeout", "5H")]), def, max).expect("capped"),
        max
    );
    let err = deadline(&headers(&[("grpc-timeout", "soon")]), def, max).expect_err("malformed");
    assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
    assert!(err.message().contains("grpc-timeout"));
}

#[test]
fn x_request_timeout_is_seconds_or_a_duration_and_the_tighter_deadline_wins() {
    let (def, max) = (Duration::from_secs(10), Duration::from_secs(60));
    for (text, want) in [
        ("2", Duration::from_secs(2)),
        ("1.5", Duration::from_millis(1500)),
        ("250ms", Duration::from_millis(250)),
        ("2s", Duration::from_secs(2)),
        ("1m", Duration::from_secs(60)),
        ("90m", max),
    ] {
        let got = deadline(&headers(&[("x-request-timeout", text)]), def, max).expect(text);
        assert_eq!(got, want, "{text:?}");
    }
    for bad in ["", "0", "0.0", "-1", "soon", "1e3", "NaN", "inf", "2 s", "1.2.3"] {
        let err = deadline(&headers(&[("x-request-timeout", bad)]), def, max).expect_err(bad);
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(err.message().contains("x-request-timeout"), "{bad:?}");
    }
    let both = headers(&[("grpc-timeout", "3S"), ("x-request-timeout", "2")]);
    assert_eq!(deadline(&both, def, max).expect("both"), Duration::from_secs(2));
    let both = headers(&[("grpc-timeout", "1S"), ("x-request-timeout", "2")]);
    assert_eq!(deadline(&both, def, max).expect("both"), Duration::from_secs(1));
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
