//! Unit tests of the proto3 JSON type mapping (`schema.rs`): every scalar, enums, maps,
//! oneofs, well-known types, recursion and comments, on a proto compiled at test time.

use prost_reflect::DescriptorPool;
use serde_json::{Value, json};

use super::Schemas;
use crate::test_protos::compile;

/// Every scalar, enum, map, oneof, optional and well-known type, with comments.
const RICH: &str = r#"
syntax = "proto3";
package rich;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// A bit of everything.
message Everything {
  double d = 1;
  float f = 2;
  int32 i32 = 3;
  int64 i64 = 4;
  uint32 u32 = 5;
  uint64 u64 = 6;
  sint32 s32 = 7;
  sint64 s64 = 8;
  fixed32 fx32 = 9;
  fixed64 fx64 = 10;
  sfixed32 sfx32 = 11;
  sfixed64 sfx64 = 12;
  bool flag = 13;
  string text = 14;
  bytes blob = 15;
  // What colour it is.
  Color color = 16;
  repeated int32 many = 17;
  map<string, int64> counts = 18;
  map<int32, Node> by_id = 19;
  Node node = 20;
  google.protobuf.Timestamp at = 21;
  google.protobuf.Duration took = 22;
  google.protobuf.FieldMask mask = 23;
  google.protobuf.Struct meta = 24;
  google.protobuf.Value anything = 25;
  google.protobuf.ListValue list = 26;
  google.protobuf.Int32Value maybe = 27;
  google.protobuf.Int64Value big = 28;
  google.protobuf.Empty nothing = 29;
  google.protobuf.Any packed = 30;
  google.protobuf.DoubleValue ratio = 31;
  oneof choice {
    string left = 32;
    int32 right = 33;
  }
  optional int32 opt = 34;
  google.protobuf.NullValue null_value = 35;
  map<bool, string> by_flag = 36;
}

enum Color {
  COLOR_UNSPECIFIED = 0;
  // Like a fire truck.
  RED = 1;
}

// A node of a tree: recursive.
message Node {
  Node child = 1;
  int32 value = 2;
}
"#;

fn rich() -> DescriptorPool {
    compile(RICH)
}

/// The schemas registered for `message` of `pool`.
fn components_of(pool: &DescriptorPool, message: &str) -> serde_json::Map<String, Value> {
    let mut schemas = Schemas::default();
    schemas.message(&pool.get_message_by_name(message).expect("message"));
    schemas.into_components()
}

#[test]
fn scalars_follow_the_proto3_json_mapping() {
    let components = components_of(&rich(), "rich.Everything");
    let props = &components["rich.Everything"]["properties"];
    let int32 = json!({"type":"integer","format":"int32","minimum":-2147483648i64,"maximum":2147483647});
    let uint32 = json!({"type":"integer","format":"uint32","minimum":0,"maximum":4294967295u32});
    let int64 = json!({"type":"string","format":"int64","pattern":"^-?[0-9]+$",
        "description":"A 64-bit integer as a decimal string; a JSON number is accepted too."});
    let uint64 = json!({"type":"string","format":"uint64","pattern":"^[0-9]+$",
        "description":"An unsigned 64-bit integer as a decimal string; a JSON number is accepted too."});
    let specials = json!({"type":"string","enum":["NaN","Infinity","-Infinity"]});
    let cases = [
        (
            "d",
            json!({"oneOf":[{"type":"number","format":"double"}, specials]}),
        ),
        (
            "f",
            json!({"oneOf":[{"type":"number","format":"float",
                "minimum":-3.4028234663852886e38,"maximum":3.4028234663852886e38}, specials]}),
        ),
        ("i32", int32.clone()),
        ("s32", int32.clone()),
        ("sfx32", int32.clone()),
        ("u32", uint32.clone()),
        ("fx32", uint32),
        ("i64", int64.clone()),
        ("s64", int64.clone()),
        ("sfx64", int64.clone()),
        ("u64", uint64.clone()),
        ("fx64", uint64),
        ("flag", json!({"type":"boolean"})),
        ("text", json!({"type":"string"})),
        (
            "blob",
            json!({"type":"string","format":"byte","contentEncoding":"base64"}),
        ),
        ("many", json!({"type":"array","items":int32})),
        ("counts", json!({"type":"object","additionalProperties":int64})),
        (
            "byId",
            json!({"type":"object","additionalProperties":{"$ref":"#/components/schemas/rich.Node"},
                "propertyNames":{"pattern":"^-?[0-9]+$"}}),
        ),
        (
            "byFlag",
            json!({"type":"object","additionalProperties":{"type":"string"},
                "propertyNames":{"enum":["true","false"]}}),
        ),
        ("node", json!({"$ref":"#/components/schemas/rich.Node"})),
        ("left", json!({"type":"string"})),
        ("opt", int32_schema()),
        ("nullValue", json!({"type":"null"})),
        (
            "color",
            json!({"$ref":"#/components/schemas/rich.Color","description":"What colour it is."}),
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(props[name], expected, "field {name}");
    }
    // proto names never appear: json names only.
    assert!(props.get("by_id").is_none() && props.get("null_value").is_none());
    assert_eq!(
        components["rich.Everything"]["additionalProperties"],
        json!(false)
    );
    assert_eq!(
        components["rich.Everything"]["not"],
        json!({"anyOf": [{"required": ["left", "right"]}]}),
        "a oneof takes at most one of its fields"
    );
    assert_eq!(
        components["rich.Everything"]["description"],
        json!("A bit of everything.\n\nAt most one of `left`, `right` (oneof choice).")
    );
    assert_eq!(
        components["rich.Color"],
        json!({"type":"string","enum":["COLOR_UNSPECIFIED","RED"],"description":"- `RED`: Like a fire truck."})
    );
}

fn int32_schema() -> Value {
    json!({"type":"integer","format":"int32","minimum":-2147483648i64,"maximum":2147483647})
}

#[test]
fn well_known_types_use_their_json_forms() {
    let components = components_of(&rich(), "rich.Everything");
    let props = &components["rich.Everything"]["properties"];
    let wkt = |field: &str| {
        let reference = props[field]["$ref"].as_str().expect("a $ref");
        let name = reference.rsplit('/').next().expect("name");
        let mut schema = components[name].clone();
        if let Some(object) = schema.as_object_mut() {
            object.remove("description");
        }
        schema
    };
    let cases = [
        ("at", json!({"type":"string","format":"date-time"})),
        (
            "took",
            json!({"type":"string","pattern":r"^-?[0-9]+(\.[0-9]+)?s$"}),
        ),
        ("mask", json!({"type":"string"})),
        ("meta", json!({"type":"object","additionalProperties":true})),
        ("anything", json!({})),
        ("list", json!({"type":"array","items":{}})),
        (
            "maybe",
            json!({"type":["integer","null"],"format":"int32","minimum":-2147483648i64,"maximum":2147483647}),
        ),
        (
            "big",
            json!({"type":["string","null"],"format":"int64","pattern":"^-?[0-9]+$"}),
        ),
        ("nothing", json!({"type":"object","additionalProperties":false})),
        (
            "packed",
            json!({"type":"object","required":["@type"],"additionalProperties":true,
                "properties":{"@type":{"type":"string",
                    "description":"The type URL, such as type.googleapis.com/google.rpc.BadRequest."}}}),
        ),
        (
            "ratio",
            json!({"oneOf":[{"type":"number","format":"double"},
                {"type":"string","enum":["NaN","Infinity","-Infinity"]},{"type":"null"}]}),
        ),
    ];
    for (field, expected) in cases {
        assert_eq!(wkt(field), expected, "field {field}");
    }
}

#[test]
fn recursive_messages_terminate_with_a_self_reference() {
    let components = components_of(&rich(), "rich.Node");
    assert_eq!(
        components["rich.Node"],
        json!({
            "type": "object",
            "properties": {
                "child": {"$ref": "#/components/schemas/rich.Node"},
                "value": int32_schema()
            },
            "additionalProperties": false,
            "description": "A node of a tree: recursive."
        })
    );
}

#[test]
fn comments_are_cleaned_up() {
    assert_eq!(
        super::clean_comment("\n  first line\n   second  \n\n"),
        "first line\nsecond"
    );
    assert_eq!(super::clean_comment("  \n "), "");
}
