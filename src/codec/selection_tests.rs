//! Tests of field selection on the seed's reply type (`UserReply{message, data: [User]}`):
//! the paths it takes, and the printing that drops what is not selected (`print.rs`),
//! over a JSON tree and through both codecs.

use super::*;
use bytes::Bytes;

fn reply() -> MessageDescriptor {
    let pool = crate::descriptors::load().expect("pool");
    pool.get_message_by_name("UserReply").expect("UserReply")
}

/// `json` parsed (in order) and printed again under the selection `paths`.
fn pruned(paths: &str, json: &str) -> String {
    let selection = Selection::parse(paths, &reply(), ReplyForm::default(), "fields").expect(paths);
    printed(&selection, json)
}

fn printed(selection: &Selection, json: &str) -> String {
    let tree: serde_json::Value = serde_json::from_str(json).expect("JSON");
    String::from_utf8(to_json(&tree, Some(selection)).expect("print")).expect("UTF-8")
}

const USERS: &str = r#"{"message":"success","data":[{"name":"Alice","age":30,"email":"a@x"},{"name":"Bob","age":25,"email":"b@x"}]}"#;

#[test]
fn paths_keep_only_their_members_in_printed_order() {
    assert_eq!(pruned("message", USERS), r#"{"message":"success"}"#);
    // Inside a repeated message field: every element; order as printed, not as asked.
    assert_eq!(
        pruned("data.email,data.name", USERS),
        r#"{"data":[{"name":"Alice","email":"a@x"},{"name":"Bob","email":"b@x"}]}"#
    );
    // A field selected whole subsumes a longer path, in either order.
    assert_eq!(pruned("data.age,data", USERS), pruned("data", USERS));
    assert_eq!(pruned("data,data.age", USERS), pruned("data", USERS));
    assert_eq!(pruned("*", USERS), USERS);
    assert_eq!(
        pruned(" message , data.age ", USERS),
        r#"{"message":"success","data":[{"age":30},{"age":25}]}"#
    );
}

#[test]
fn unknown_or_impossible_paths_are_refused_by_name() {
    let refuse = |paths: &str| {
        let err = Selection::parse(paths, &reply(), ReplyForm::default(), "fields").expect_err(paths);
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(err.body()["details"][0]["fieldViolations"][0]["field"], "fields");
        err.message().to_string()
    };
    assert_eq!(
        refuse("message,nope"),
        "fields: unknown field path \"nope\": UserReply has no field \"nope\""
    );
    assert_eq!(
        refuse("data.name.first"),
        "fields: unknown field path \"data.name.first\": it goes inside a value that has no fields"
    );
    assert_eq!(refuse("data,"), "fields: unknown field path \"\": empty path");
    // Checked even under a field selected whole.
    assert!(refuse("data,data.nope").contains("User has no field \"nope\""));
}

#[test]
fn proto_names_select_the_printed_keys() {
    let form = ReplyForm {
        proto_names: true,
        ..ReplyForm::default()
    };
    let selection = Selection::parse("data.name", &reply(), form, "fields").expect("parse");
    assert_eq!(
        printed(&selection, USERS),
        r#"{"data":[{"name":"Alice"},{"name":"Bob"}]}"#
    );
}

#[test]
fn strings_nulls_and_empty_members_print_as_they_are() {
    let json = r#"{ "message" : "a\"b,}]{[" , "data" : [ {"name":"x\\","age":1,"email":null} , {} ] }"#;
    assert_eq!(pruned("data.name", json), r#"{"data":[{"name":"x\\"},{}]}"#);
    assert_eq!(pruned("message", json), r#"{"message":"a\"b,}]{["}"#);
    assert_eq!(
        pruned("data.email,data.age", json),
        r#"{"data":[{"age":1,"email":null},{}]}"#
    );
    // A selected message that is `null` (unset, under emit_unpopulated) stays `null`.
    assert_eq!(pruned("data.name", r#"{"data":null}"#), r#"{"data":null}"#);
    assert_eq!(pruned("data.name", r#"{"message":"m"}"#), "{}");
}

/// The seed's reply with `users` users, as the upstream sends it.
fn reply_bytes(users: usize) -> Bytes {
    use crate::pb::protogate_unpackaged::{User, UserReply};
    let reply = UserReply {
        message: "success".into(),
        data: (0..users)
            .map(|i| User {
                name: format!("user \"{i}\""),
                age: i32::try_from(i).expect("small"),
                email: format!("u{i}@example.com"),
            })
            .collect(),
    };
    Bytes::from(prost::Message::encode_to_vec(&reply))
}

#[test]
fn both_codecs_print_only_the_selection_byte_for_byte_alike() {
    let pool = crate::descriptors::load().expect("pool");
    let method = pool
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .find(|m| m.full_name() == "MyService.User")
        .expect("MyService.User");
    let compiled = crate::codec::compiled::find("MyService.User").expect("compiled")(&method);
    let dynamic = crate::codec::dynamic::codec(&method);
    let text = |json: Vec<u8>| String::from_utf8(json).expect("UTF-8");
    for paths in ["data.name", "message", "data.email,message", "data", "*"] {
        let selection = Selection::parse(paths, &reply(), ReplyForm::default(), "fields").expect(paths);
        let full = text(compiled.decode_reply(reply_bytes(3), None).expect("full"));
        let expected = printed(&selection, &full);
        for codec in [&compiled, &dynamic] {
            let json = codec
                .decode_reply(reply_bytes(3), Some(&selection))
                .expect("selected");
            assert_eq!(text(json), expected, "{paths}");
            // Printed through the descriptors (any output option on), the same cut.
            let shaped = ReplyForm {
                emit_unpopulated: true,
                ..ReplyForm::default()
            };
            let json = codec
                .decode_reply_shaped(reply_bytes(3), shaped, Some(&selection))
                .expect("shaped");
            assert_eq!(text(json), expected, "{paths}, shaped");
        }
    }
    let selection = Selection::parse("data.name", &reply(), ReplyForm::default(), "fields").expect("parse");
    let json = text(
        compiled
            .decode_reply(reply_bytes(2), Some(&selection))
            .expect("selected"),
    );
    assert_eq!(json, r#"{"data":[{"name":"user \"0\""},{"name":"user \"1\""}]}"#);
}
