//! The multipart parser and the form binder.

use super::*;

const FORM: &[u8] = b"preamble\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"title\"\r\n\r\n\
Dune\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
\x00\x01--XyZ not a delimiter\r\n\r\n--XyZ--\r\nepilogue";

#[test]
fn the_boundary_comes_from_the_content_type() {
    assert_eq!(
        boundary("multipart/form-data; boundary=XyZ").as_deref(),
        Some("XyZ")
    );
    assert_eq!(
        boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
        Some("a b")
    );
    assert_eq!(boundary("multipart/form-data"), None);
    assert_eq!(boundary("application/json; boundary=x"), None);
}

#[test]
fn parts_are_cut_at_delimiters_that_start_a_line() {
    let parts = parse(&Bytes::from_static(FORM), "XyZ").expect("parses");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].name, "title");
    assert_eq!(parts[0].filename, None);
    assert_eq!(&parts[0].data[..], b"Dune");
    assert_eq!(parts[1].name, "file");
    assert_eq!(parts[1].filename.as_deref(), Some("a.bin"));
    assert_eq!(parts[1].content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(&parts[1].data[..], b"\x00\x01--XyZ not a delimiter\r\n");
}

#[test]
fn a_form_without_its_closing_boundary_is_a_400() {
    let cut = Bytes::from_static(&FORM[..40]);
    let err = parse(&cut, "XyZ").expect_err("truncated");
    assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
    assert!(
        err.message().starts_with("malformed multipart/form-data body"),
        "{}",
        err.message()
    );
    assert!(parse(&Bytes::from_static(b"nothing here"), "XyZ").is_err());
}
