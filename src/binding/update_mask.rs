//! PATCH with a field mask from the body (AIP-134), as grpc-gateway fills it: on a PATCH
//! route whose body is one message field (`body: "book"`) and whose request has a
//! `google.protobuf.FieldMask` field (`update_mask`), a request that sends no mask gets one
//! naming the fields present in the JSON body. A nested object gives dotted paths
//! (`author.address.city`); a map, a list, a well-known type or an empty object is one
//! whole field; an explicit `null` counts as present (it clears the field). A mask the
//! client sends (in the query) wins. Paths are relative to the body field (the resource),
//! in lowerCamel, the FieldMask's JSON form.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::routing::Route;

/// The request's FieldMask field that this route fills from the body, if it does.
pub(super) fn mask_field(route: &Route) -> Option<FieldDescriptor> {
    if route.http_method != http::Method::PATCH {
        return None;
    }
    route.input.fields().find(|f| {
        !f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
    })
}

/// The mask of the fields present in `body`, read as `message`, in the FieldMask's JSON
/// form (`title,author.displayName`); `None` when the body is not an object.
pub(super) fn paths_of(body: &Value, message: &MessageDescriptor) -> Option<String> {
    let Value::Object(object) = body else {
        return None;
    };
    let mut paths = Vec::new();
    collect(object, message, "", &mut paths);
    Some(paths.join(","))
}

fn collect(object: &Map<String, Value>, message: &MessageDescriptor, prefix: &str, paths: &mut Vec<String>) {
    for (key, value) in object {
        let Some(field) = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
        else {
            // Not a field: binding refuses it with its own 400.
            continue;
        };
        let path = format!("{prefix}{}", field.json_name());
        match (field.kind(), value) {
            (Kind::Message(inner), Value::Object(members))
                if !field.is_map()
                    && !field.is_list()
                    && !members.is_empty()
                    && !inner.full_name().starts_with("google.protobuf.") =>
            {
                collect(members, &inner, &format!("{path}."), paths);
            }
            _ => paths.push(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_give_dotted_paths_and_the_rest_whole_fields() {
        let pool = crate::descriptors::load().expect("pool");
        let reply = pool.get_message_by_name("UserReply").expect("UserReply");
        let body = json!({"message": null, "data": [{"name": "x"}], "nope": 1});
        assert_eq!(paths_of(&body, &reply).as_deref(), Some("message,data"));
        assert_eq!(paths_of(&json!([1]), &reply), None);
        assert_eq!(paths_of(&json!({}), &reply).as_deref(), Some(""));
    }
}
