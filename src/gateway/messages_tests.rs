//! The splitter against bodies cut at every byte: what comes out must not depend on how the
//! body arrived.

use super::*;

/// Every message of `body` pushed in pieces of `step` bytes, as text.
fn split(form: Form, body: &str, step: usize) -> Result<Vec<(usize, String)>, String> {
    let mut splitter = Splitter::new(form, 64);
    let mut out = Vec::new();
    let text = |b: Bytes| String::from_utf8(b.to_vec()).expect("utf-8").trim().to_string();
    for piece in body.as_bytes().chunks(step.max(1)) {
        splitter.push(piece);
        while let Some((n, message)) = splitter.next_message().map_err(|e| e.message().to_string())? {
            out.push((n, text(message)));
        }
    }
    if let Some((n, message)) = splitter.finish().map_err(|e| e.message().to_string())? {
        out.push((n, text(message)));
    }
    Ok(out)
}

fn every_step(form: Form, body: &str) -> Result<Vec<(usize, String)>, String> {
    let whole = split(form, body, body.len());
    for step in 1..body.len() {
        assert_eq!(split(form, body, step), whole, "step {step} of {body:?}");
    }
    whole
}

fn owned(items: &[(usize, &str)]) -> Vec<(usize, String)> {
    items.iter().map(|(n, s)| (*n, s.to_string())).collect()
}

#[test]
fn ndjson_lines_are_messages_and_blank_lines_count_but_are_skipped() {
    let got = every_step(Form::NdJson, "{\"a\":1}\n\n{\"b\":\"x\\ny\"}\n{\"c\":3}");
    assert_eq!(
        got,
        Ok(owned(&[
            (1, "{\"a\":1}"),
            (3, "{\"b\":\"x\\ny\"}"),
            (4, "{\"c\":3}")
        ]))
    );
    assert_eq!(every_step(Form::NdJson, "\n \n"), Ok(vec![]));
}

#[test]
fn a_json_array_gives_one_message_per_element() {
    let body = " [ {\"a\":\"],\\\"{\"}, {\"b\":[1,2,{\"c\":[]}]} ,{} ] ";
    let got = every_step(Form::Json, body);
    assert_eq!(
        got,
        Ok(owned(&[
            (1, "{\"a\":\"],\\\"{\"}"),
            (2, "{\"b\":[1,2,{\"c\":[]}]}"),
            (3, "{}")
        ]))
    );
    assert_eq!(every_step(Form::Json, "[]"), Ok(vec![]));
    assert_eq!(every_step(Form::Json, "  "), Ok(vec![]));
}

#[test]
fn a_single_object_is_the_only_message() {
    assert_eq!(
        every_step(Form::Json, " {\"a\":[1]} "),
        Ok(owned(&[(1, "{\"a\":[1]}")]))
    );
}

#[test]
fn broken_arrays_are_refused_naming_the_element() {
    assert_eq!(
        split(Form::Json, "[{}, {} {}]", 1),
        Err("element 2: expected `,` or `]` after it".to_string())
    );
    assert_eq!(
        split(Form::Json, "[{},]", 1),
        Err("element 2 is empty".to_string())
    );
    assert_eq!(
        split(Form::Json, "[{}] {}", 1),
        Err("the body goes on after its JSON array".to_string())
    );
    assert_eq!(
        split(Form::Json, "[{}, {\"a\":", 3),
        Err("the body ends inside its JSON array".to_string())
    );
}

#[test]
fn a_message_over_the_limit_is_refused_before_it_is_whole() {
    let long = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
    let mut splitter = Splitter::new(Form::NdJson, 64);
    splitter.push(b"{}\n");
    splitter.push(&long.as_bytes()[..70]);
    assert!(splitter.next_message().expect("first").is_some());
    let err = splitter.next_message().expect_err("too long");
    assert_eq!(err.http_status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    assert!(err.message().starts_with("line 2: "), "{}", err.message());
    let mut splitter = Splitter::new(Form::Json, 64);
    splitter.push(b"[{}, ");
    splitter.push(&long.as_bytes()[..70]);
    assert!(splitter.next_message().expect("first").is_some());
    let err = splitter.next_message().expect_err("too long");
    assert!(err.message().starts_with("element 2: "), "{}", err.message());
}

#[test]
fn content_types_pick_the_form() {
    assert_eq!(Form::of(None).ok(), Some(Form::Json));
    assert_eq!(
        Form::of(Some("application/json; charset=utf-8")).ok(),
        Some(Form::Json)
    );
    assert_eq!(Form::of(Some("application/x-ndjson")).ok(), Some(Form::NdJson));
    let err = Form::of(Some("text/plain")).expect_err("415");
    assert_eq!(err.http_status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
