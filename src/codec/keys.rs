//! The key-level rules of a JSON request object, checked the way pbjson's generated code
//! checks them, so that the dynamic codec refuses the same inputs with the same words: an
//! unknown field (`unknown field `x`, expected one of …`, listing proto then json names as
//! pbjson does), a field given twice under its two names, and a second member of a oneof.
//! prost-reflect alone would accept the last two. Values are not checked here: the
//! deserializer does that. `accepts` applies the same rules to a body's bytes as they are
//! read, with no JSON tree (the dynamic codec's straight path). It also knows pbjson's field
//! order, which the dynamic codec prints in.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The first key-level problem of `object` read as a `message`, in pbjson's words.
pub fn check(message: &MessageDescriptor, object: &Map<String, Value>) -> Option<String> {
    let mut seen: HashSet<u32> = HashSet::new();
    let mut oneofs_set: HashSet<String> = HashSet::new();
    for (key, value) in object {
        let Some(field) = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
        else {
            return Some(unknown_field(key, message));
        };
        if !seen.insert(field.number()) {
            return Some(duplicate_field(&field));
        }
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic())
            && !value.is_null()
            && !oneofs_set.insert(oneof.full_name().to_string())
        {
            return Some(duplicate_field(&field));
        }
        if let Some(problem) = check_value(&field, value) {
            return Some(problem);
        }
    }
    None
}

/// Descends into the messages a field holds (not the well-known types, whose JSON forms are
/// not objects of fields).
fn check_value(field: &FieldDescriptor, value: &Value) -> Option<String> {
    let Kind::Message(message) = field.kind() else {
        return None;
    };
    if field.is_map() {
        let value_field = message.map_entry_value_field();
        let Kind::Message(inner) = value_field.kind() else {
            return None;
        };
        return value.as_object()?.values().find_map(|v| nested(&inner, v));
    }
    if field.is_list() {
        return value.as_array()?.iter().find_map(|v| nested(&message, v));
    }
    nested(&message, value)
}

fn nested(message: &MessageDescriptor, value: &Value) -> Option<String> {
    if message.full_name().starts_with("google.protobuf.") {
        return None;
    }
    check(message, value.as_object()?)
}

/// serde's `unknown_field` message over pbjson's field list: the fields outside real
/// oneofs in declaration order, then each oneof's, each as its proto name and then its json
/// name when that differs.
fn unknown_field(key: &str, message: &MessageDescriptor) -> String {
    let mut names: Vec<String> = Vec::new();
    for field in pbjson_order(message) {
        names.push(field.name().to_string());
        if field.json_name() != field.name() {
            names.push(field.json_name().to_string());
        }
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{key}`, there are no fields"),
        [one] => format!("unknown field `{key}`, expected {one}"),
        [a, b] => format!("unknown field `{key}`, expected {a} or {b}"),
        all => format!("unknown field `{key}`, expected one of {}", all.join(", ")),
    }
}

/// The order in which pbjson lists and prints a message's fields: those outside real oneofs
/// in declaration order, then the members of each real oneof. (prost-reflect uses field
/// number order.)
pub fn pbjson_order(message: &MessageDescriptor) -> Vec<FieldDescriptor> {
    let in_oneof = |f: &FieldDescriptor| f.containing_oneof().is_some_and(|o| !o.is_synthetic());
    let declared = message
        .descriptor_proto()
        .field
        .iter()
        .filter_map(|f| message.get_field_by_name(f.name()));
    let mut order: Vec<FieldDescriptor> = declared.filter(|f| !in_oneof(f)).collect();
    for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
        order.extend(oneof.fields());
    }
    order
}

fn duplicate_field(field: &FieldDescriptor) -> String {
    format!("duplicate field `{}`", field.json_name())
}

/// Whether `body`, a JSON object read as `message`, passes `check` at every depth and holds
/// no key twice in one object (the binder's rule), read without building a tree. False for
/// anything else too, including what this walk does not follow: an object with members
/// where no message is (a map's), and any `null`, which the binder drops before decoding
/// where it means the default (`binding/nulls.rs`). The caller then takes the tree path,
/// which answers as usual. So `true` promises that the tree path would find no key problem
/// and hand the deserializer the same JSON.
pub fn accepts(message: &MessageDescriptor, body: &[u8]) -> bool {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let walk = Walk {
        message: Some(message.clone()),
        list: false,
    };
    walk.deserialize(&mut reader).is_ok() && reader.end().is_ok()
}

/// Where the walk is: at a message's object (`message`), at a list of them (`list`), or at
/// a value it only reads past (`message: None`).
#[derive(Clone)]
struct Walk {
    message: Option<MessageDescriptor>,
    list: bool,
}

impl Walk {
    /// The walk for the value of `field`; well-known types and maps are read past.
    fn of(field: &FieldDescriptor) -> Walk {
        let message = match field.kind() {
            Kind::Message(inner) if !field.is_map() && !inner.full_name().starts_with("google.protobuf.") => {
                Some(inner)
            }
            _ => None,
        };
        Walk {
            message,
            list: field.is_list(),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom("a null, left to the tree path"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let element = Walk {
            message: self.message.filter(|_| self.list),
            list: false,
        };
        while seq.next_element_seed(element.clone())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(message) = self.message.filter(|_| !self.list) else {
            // `{}` (google.protobuf.Empty) is fine; members here are not followed.
            return match map.next_key::<IgnoredAny>()? {
                None => Ok(()),
                Some(_) => Err(de::Error::custom("an object where no message is")),
            };
        };
        let mut seen: HashSet<u32> = HashSet::new();
        let mut oneofs_set: HashSet<String> = HashSet::new();
        while let Some(Key(key)) = map.next_key()? {
            let field = message
                .get_field_by_json_name(&key)
                .or_else(|| message.get_field_by_name(&key))
                .ok_or_else(|| de::Error::custom(unknown_field(&key, &message)))?;
            if !seen.insert(field.number()) {
                return Err(de::Error::custom(duplicate_field(&field)));
            }
            map.next_value_seed(Walk::of(&field))?;
            if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic())
                && !oneofs_set.insert(oneof.full_name().to_string())
            {
                return Err(de::Error::custom(duplicate_field(&field)));
            }
        }
        Ok(())
    }
}

/// An object key, borrowed from the body where it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"
syntax = "proto3";
import "google/protobuf/timestamp.proto";
import "google/protobuf/empty.proto";
message Team { string name = 1; int64 team_id = 2; }
message Req {
  repeated int32 userIDs = 1;
  Team team = 2;
  repeated Team teams = 3;
  oneof pick { string by_name = 4; int64 by_id = 5; }
  google.protobuf.Timestamp at = 6;
  google.protobuf.Empty nothing = 7;
  map<string, Team> by_key = 8;
}
"#;

    fn req() -> MessageDescriptor {
        crate::test_protos::compile(PROTO)
            .get_message_by_name("Req")
            .expect("Req")
    }

    /// `accepts` and `check` (on the binder's tree) agree on every body, and `accepts`
    /// says `expected`.
    fn agrees(body: &str, expected: bool) {
        let message = req();
        assert_eq!(accepts(&message, body.as_bytes()), expected, "{body}");
        if expected {
            let tree: Value = serde_json::from_str(body).expect("JSON");
            assert_eq!(check(&message, tree.as_object().expect("object")), None, "{body}");
        }
    }

    #[test]
    fn bodies_the_tree_path_finds_no_key_problem_in_are_accepted() {
        agrees(r#"{"userIDs":[1,2,3]}"#, true);
        agrees(
            r#" {"team":{"name":"a","teamId":"7"},"teams":[{"team_id":1},{}]} "#,
            true,
        );
        agrees(r#"{"byId":"12"}"#, true);
        agrees(r#"{"at":"2024-01-01T00:00:00Z","nothing":{}}"#, true);
        agrees(r#"{"te\u0061m":{"n\u0061me":"escaped keys"}}"#, true);
        agrees("{}", true);
    }

    #[test]
    fn key_problems_and_shapes_it_does_not_follow_are_refused() {
        // Each of these is refused by the tree path too, or (the map, the nulls) left to it.
        for body in [
            r#"{"userIDs":[1],"userIDs":[2]}"#,
            r#"{"team":{"teamId":1,"team_id":2}}"#,
            r#"{"teams":[{"name":"a","name":"b"}]}"#,
            r#"{"byName":"x","byId":1}"#,
            r#"{"byName":"x","byId":null}"#,
            r#"{"userIDs":null}"#,
            r#"{"userIDs":[1,null]}"#,
            r#"{"nope":1}"#,
            r#"{"team":{"nope":1}}"#,
            r#"{"nothing":{"a":1}}"#,
            r#"{"byKey":{"k":{"name":"a"}}}"#,
            r#"[{"userIDs":[1]}]"#,
            "null",
            r#"{"userIDs":[1]} trailing"#,
            r#"{"userIDs":[1]"#,
            "",
        ] {
            agrees(body, false);
        }
    }
}
