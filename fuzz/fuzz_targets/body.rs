//! Fuzz target `body`: request-body parsing (`binding::body::parse`) and body binding
//! through the unbound `POST /MyService/User` route (body `"*"`), then the pbjson decode
//! into `UserReq`. Input: raw body bytes. Checks that nothing panics, and that the strict
//! parser agrees with plain serde_json: whatever it accepts, serde_json parses to the same
//! value, and whatever serde_json rejects, it rejects too (it differs only by also refusing
//! duplicate keys). A body that binds but does not decode is fine here: the client sent a
//! wrong type, and the gateway answers 400.

#![no_main]

use std::sync::LazyLock;

use http::Method;
use libfuzzer_sys::fuzz_target;
use protogate::GatewayError;
use protogate::binding::{self, body};
use protogate::config::UnknownParams;
use protogate::routing::Route;
use protogate_fuzz::{decode_request, seed_route};
use serde_json::Value;

static USER_POST: LazyLock<&'static Route> = LazyLock::new(|| seed_route(&Method::POST, "/MyService/User"));

fuzz_target!(|data: &[u8]| {
    let parsed = body::parse(data);
    check_agrees_with_serde_json(data, &parsed);
    let Ok(value) = parsed else {
        return;
    };
    for unknown in [UnknownParams::Reject, UnknownParams::Ignore] {
        if let Ok(json) = binding::bind(&USER_POST, &[], None, value.clone(), unknown) {
            // Ok or Err are both fine; a panic inside pbjson is not.
            let _ = decode_request(&USER_POST, json);
        }
    }
});

fn check_agrees_with_serde_json(data: &[u8], strict: &Result<Option<Value>, GatewayError>) {
    if data.iter().all(u8::is_ascii_whitespace) {
        assert!(matches!(strict, Ok(None)), "a blank body is no body");
        return;
    }
    let plain = serde_json::from_slice::<Value>(data);
    match (strict, plain) {
        (Ok(Some(strict)), Ok(plain)) => assert_eq!(*strict, plain, "parsers disagree"),
        (Ok(Some(_)), Err(e)) => panic!("strict parser accepts what serde_json rejects ({e})"),
        (Ok(None), _) => panic!("a non-blank body parsed as no body"),
        (Err(e), Ok(_)) => assert!(
            e.message().contains("duplicate key"),
            "strict parser rejects valid JSON without a duplicate key: {}",
            e.message()
        ),
        (Err(_), Err(_)) => {}
    }
}
