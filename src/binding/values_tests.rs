//! The body's value checks: the reference implementations' edges, and field paths in errors.

use super::*;
use serde_json::json;

const PROTO: &str = r#"
syntax = "proto3";
import "google/protobuf/wrappers.proto";
import "google/protobuf/timestamp.proto";
enum Continent { CONTINENT_UNSPECIFIED = 0; EUROPE = 1; }
message Point { int32 latitude = 1; int32 longitude = 2; }
message Route {
  Point location = 1;
  repeated Point points = 2;
  map<string, int32> labels = 3;
  map<int64, Point> by_id = 4;
  float ratio = 5;
  double distance = 6;
  repeated float ratios = 7;
  Continent continent = 8;
  repeated Continent continents = 9;
  uint64 big = 10;
  bool done = 11;
  bytes blob = 12;
  google.protobuf.FloatValue maybe_ratio = 13;
  google.protobuf.Timestamp at = 14;
  string name = 15;
}
"#;

fn route() -> MessageDescriptor {
    crate::test_protos::compile(PROTO)
        .get_message_by_name("Route")
        .expect("Route")
}

/// The body after the checks, or the refusal's field path and message.
fn check(body: Value) -> Result<Value, (String, String)> {
    let Value::Object(mut object) = body else {
        panic!("an object")
    };
    match check_message(&mut object, &route(), &mut Path::default()) {
        Ok(()) => Ok(Value::Object(object)),
        Err(err) => {
            assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
            let body = err.body();
            let violation = &body["details"][0]["fieldViolations"][0];
            assert_eq!(violation["description"], body["message"]);
            Err((
                violation["field"].as_str().expect("field").to_string(),
                err.message().to_string(),
            ))
        }
    }
}

fn refused(body: Value, field: &str, message: &str) {
    assert_eq!(check(body), Err((field.to_string(), message.to_string())));
}

#[test]
fn type_and_range_errors_name_the_field_by_its_json_path() {
    refused(
        json!({"location": {"latitude": "north"}}),
        "location.latitude",
        "invalid value \"north\" for field latitude: not an int32",
    );
    refused(
        json!({"points": [{}, {}, {}, {"latitude": 2147483648u64}]}),
        "points[3].latitude",
        "invalid value 2147483648 for field latitude: out of range for int32",
    );
    refused(
        json!({"labels": {"k": "v"}}),
        "labels[\"k\"]",
        "invalid value \"v\" for field labels: not an int32",
    );
    refused(
        json!({"byId": {"x": {}}}),
        "byId[\"x\"]",
        "invalid value \"x\" for field byId: not a map key of type int64",
    );
    refused(
        json!({"byId": {"7": {"longitude": 1.5}}}),
        "byId[\"7\"].longitude",
        "invalid value 1.5 for field longitude: not an int32",
    );
    refused(
        json!({"location": 3}),
        "location",
        "invalid value 3 for field location: not a JSON object (Point)",
    );
    refused(
        json!({"points": {"latitude": 1}}),
        "points",
        "invalid value {\"latitude\":1} for field points: not a JSON array (a repeated field)",
    );
    refused(
        json!({"done": "yes"}),
        "done",
        "invalid value \"yes\" for field done: not a bool (true or false)",
    );
    refused(
        json!({"name": 7}),
        "name",
        "invalid value 7 for field name: not a string",
    );
    refused(
        json!({"blob": "!!"}),
        "blob",
        "invalid value \"!!\" for field blob: not base64",
    );
    refused(
        json!({"big": -1}),
        "big",
        "invalid value -1 for field big: out of range for uint64",
    );
    refused(
        json!({"at": 5}),
        "at",
        "invalid value 5 for field at: not a string (google.protobuf.Timestamp)",
    );
}

#[test]
fn floats_round_to_float32_then_check_the_range() {
    let max = f64::from(f32::MAX);
    assert_eq!(check(json!({"ratio": 3.4028235e38})), Ok(json!({"ratio": max})));
    assert_eq!(
        check(json!({"ratio": "3.4028235e+38"})),
        Ok(json!({"ratio": max}))
    );
    assert_eq!(
        check(json!({"maybeRatio": -3.4028235e38})),
        Ok(json!({"maybeRatio": -max}))
    );
    assert_eq!(
        check(json!({"ratios": [0.1]})),
        Ok(json!({"ratios": [f64::from(0.1f32)]}))
    );
    refused(
        json!({"ratio": 3.5e38}),
        "ratio",
        "invalid value 3.5e+38 for field ratio: out of range for float",
    );
    refused(
        json!({"ratios": [1, "3.5e38"]}),
        "ratios[1]",
        "invalid value \"3.5e38\" for field ratios: out of range for float",
    );
    refused(
        json!({"distance": "1e400"}),
        "distance",
        "invalid value \"1e400\" for field distance: out of range for double",
    );
    refused(
        json!({"distance": "inf"}),
        "distance",
        "invalid value \"inf\" for field distance: not a double",
    );
    refused(
        json!({"distance": true}),
        "distance",
        "invalid value true for field distance: not a double",
    );
    // The specials are strings, and stay strings.
    assert_eq!(
        check(json!({"ratio": "NaN", "distance": "-Infinity"})),
        Ok(json!({"ratio": "NaN", "distance": "-Infinity"}))
    );
}

#[test]
fn integral_numbers_are_integers_and_enums_are_open() {
    assert_eq!(
        check(json!({"location": {"latitude": 1.0, "longitude": "1e2"}})),
        Ok(json!({"location": {"latitude": 1, "longitude": 100}}))
    );
    assert_eq!(
        check(json!({"big": "18446744073709551615"})),
        Ok(json!({"big": "18446744073709551615"}))
    );
    assert_eq!(
        check(json!({"continent": 99, "continents": ["EUROPE", -3852]})),
        Ok(json!({"continent": 99, "continents": ["EUROPE", -3852]}))
    );
    refused(
        json!({"continent": "ASIA"}),
        "continent",
        "invalid value \"ASIA\" for field continent: not a value of Continent (one of CONTINENT_UNSPECIFIED, EUROPE, or an int32)",
    );
    refused(
        json!({"continents": [2147483648u64]}),
        "continents[0]",
        "invalid value 2147483648 for field continents: not a value of Continent (one of CONTINENT_UNSPECIFIED, EUROPE, or an int32)",
    );
}

#[test]
fn a_body_field_rule_starts_the_path_at_its_field() {
    let message = route();
    let field = message.get_field_by_name("location").expect("location");
    let mut value = json!({"latitude": "north"});
    let err = check_field(&mut value, &field, &mut Path::at("route.location")).expect_err("refused");
    assert_eq!(
        err.body()["details"][0]["fieldViolations"][0]["field"],
        "route.location.latitude"
    );
}
