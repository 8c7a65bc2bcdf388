//! Fuzz target `body`: request-body parsing (`binding::body::parse`) and body binding
//! through the unbound `POST /MyService/User` route (body `"*"`), then the pbjson decode
//! into `UserReq`. Input: raw body bytes. Checks that nothing panics, and that the strict
//! parser agrees with plain serde_json: whatever it accepts, serde_json parses to the same
//! value, and whatever serde_json rejects, it rejects too (it differs only by also refusing
//! duplicate keys). A body that binds but does not decode is fine here: the client sent a
//! wrong type, and the gateway answers 400. And for both codecs (the compiled one and the
//! dynamic one on the same descriptors), a body decoded straight from its bytes
//! (`Codec::encode_body`) gives exactly the message the tree path gives (parse, bind,
//! `encode_request`): the straight path may decline a body, never answer it differently.

#![no_main]

use std::sync::{Arc, LazyLock};

use http::Method;
use libfuzzer_sys::fuzz_target;
use protogate::GatewayError;
use protogate::binding::{self, body};
use protogate::codec::{Codec, dynamic};
use protogate::config::UnknownParams;
use protogate::routing::Route;
use protogate_fuzz::{decode_request, seed_route};
use serde_json::Value;

static USER_POST: LazyLock<&'static Route> = LazyLock::new(|| seed_route(&Method::POST, "/MyService/User"));

/// The dynamic codec of the same method, as a runtime schema would serve it.
static DYNAMIC: LazyLock<Arc<dyn Codec>> = LazyLock::new(|| dynamic::codec(&USER_POST.method.descriptor));

fuzz_target!(|data: &[u8]| {
    let parsed = body::parse(data);
    check_agrees_with_serde_json(data, &parsed);
    for codec in [&*USER_POST.method.codec, &**DYNAMIC] {
        check_straight_agrees_with_the_tree(codec, data, &parsed);
    }
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

fn check_straight_agrees_with_the_tree(
    codec: &dyn Codec,
    data: &[u8],
    parsed: &Result<Option<Value>, GatewayError>,
) {
    let Some(straight) = codec.encode_body(data) else {
        return;
    };
    let Ok(Some(value)) = parsed else {
        panic!("decoded straight, but the body does not parse: {parsed:?}");
    };
    let bound = binding::bind(&USER_POST, &[], None, Some(value.clone()), UnknownParams::Reject)
        .unwrap_or_else(|e| panic!("decoded straight, but does not bind: {}", e.message()));
    match codec.encode_request(&bound) {
        Ok(tree) => assert_eq!(straight, tree, "the straight path and the tree path differ"),
        Err(e) => panic!("decoded straight, but the tree path refuses it: {}", e.message()),
    }
}

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
