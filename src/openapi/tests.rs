//! Unit tests of the OpenAPI document: template conversion, operations, query parameters,
//! request bodies and responses, on protos compiled at test time. The type mapping has its
//! own tests in `schema_tests.rs`.

use prost_reflect::DescriptorPool;
use serde_json::json;

use super::path::{ParamKind, PathParam, openapi_path};
use super::schema::Schemas;
use super::{document, query};
use crate::routing::{RouteTable, Template, build_table};
use crate::test_protos::{ANNOTATED, compile};

/// The seed's method names with annotations covering body "*" with a path field,
/// response_body, a multi-segment variable and a method OpenAPI cannot express.
const ROUTED: &str = r#"
syntax = "proto3";
import "google/api/annotations.proto";
import "google/protobuf/empty.proto";

service MyService {
  rpc Health(google.protobuf.Empty) returns (google.protobuf.Empty) {
    option (google.api.http) = { custom: { kind: "PURGE" path: "/v1/cache" } };
  }
  // Finds users.
  rpc User(UserReq) returns (UserReply) {
    option (google.api.http) = {
      post: "/v1/teams/{team}/users"
      body: "*"
      response_body: "data"
      additional_bindings { get: "/v1/{name=shelves/*/books/*}" }
    };
  }
}
message UserReq { string team = 1; string name = 2; repeated int32 userIDs = 3; }
message UserReply { string message = 1; repeated User data = 2; }
message User { string name = 1; }
"#;

fn table(pool: &DescriptorPool) -> RouteTable {
    build_table(
        pool,
        &crate::method::MethodTable::compiled(pool).expect("methods"),
        &[],
        false,
    )
    .expect("routes build")
}

#[test]
fn templates_become_openapi_paths() {
    let field = |index, pattern: Option<&str>| ParamKind::Field {
        index,
        pattern: pattern.map(str::to_string),
    };
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, ParamKind)>);
    let cases: Vec<Case> = vec![
        ("/users", "/users", vec![]),
        (
            "/v1/teams/{team.name}/users",
            "/v1/teams/{team.name}/users",
            vec![("team.name", field(0, None))],
        ),
        ("/v1/users:search", "/v1/users:search", vec![]),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/{name}",
            vec![("name", field(0, Some("^shelves/[^/]+/books/[^/]+$")))],
        ),
        (
            "/v1/{name=shelves/*}:publish",
            "/v1/{name}:publish",
            vec![("name", field(0, Some("^shelves/[^/]+$")))],
        ),
        ("/v1/{name=*}", "/v1/{name}", vec![("name", field(0, None))]),
        (
            "/v1/{path=**}",
            "/v1/{path}",
            vec![("path", field(0, Some("^.*$")))],
        ),
        (
            "/v1/{name=a.b/**}",
            "/v1/{name}",
            vec![("name", field(0, Some(r"^a\.b(/.*)?$")))],
        ),
        (
            "/v1/{a}/x/{b.c}",
            "/v1/{a}/x/{b.c}",
            vec![("a", field(0, None)), ("b.c", field(1, None))],
        ),
        (
            "/v1/*/files/**",
            "/v1/{wildcard_1}/files/{wildcard_2}",
            vec![
                ("wildcard_1", ParamKind::Wildcard { multi: false }),
                ("wildcard_2", ParamKind::Wildcard { multi: true }),
            ],
        ),
    ];
    for (template, path, params) in cases {
        let parsed = Template::parse(template).expect("template parses");
        let names: Vec<String> = parsed.variables.iter().map(|v| v.field_path.join(".")).collect();
        let shape = openapi_path(&parsed, &names);
        assert_eq!(shape.path, path, "{template}");
        let expected: Vec<PathParam> = params
            .into_iter()
            .map(|(name, kind)| PathParam {
                name: name.to_string(),
                kind,
            })
            .collect();
        assert_eq!(shape.params, expected, "{template}");
    }
}

#[test]
fn wildcard_names_never_shadow_a_variable() {
    let parsed = Template::parse("/v1/{wildcard_1}/*").expect("parses");
    let shape = openapi_path(&parsed, &["wildcard_1".to_string()]);
    assert_eq!(shape.path, "/v1/{wildcard_1}/{wildcard_2}");
}

#[test]
fn query_parameters_list_unbound_fields_with_dotted_names() {
    let pool = compile(ANNOTATED);
    let routes = table(&pool);
    let names = |method: &str, template: &str| -> Vec<String> {
        let route = routes
            .routes()
            .iter()
            .find(|r| r.http_method.as_str() == method && r.template.as_str() == template)
            .expect("route");
        let mut schemas = Schemas::default();
        query::parameters(route, &mut schemas)
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_string())
            .collect()
    };
    // The path binds team.name, which leaves team.id free.
    assert_eq!(
        names("GET", "/v1/teams/{team.name}/users"),
        [
            "userIDs",
            "team.id",
            "filter.roles",
            "filter.activeOnly",
            "minScore"
        ]
    );
    // body: "filter" takes every filter.* field.
    assert_eq!(
        names("PUT", "/v1/users/{team.id}"),
        ["userIDs", "team.name", "minScore"]
    );
    // body: "*" leaves nothing for the query.
    assert!(names("POST", "/v1/users:search").is_empty());
}

#[test]
fn repeated_enum_parameters_explode_and_take_comma_lists() {
    let pool = compile(ANNOTATED);
    let doc = document(&table(&pool));
    let params = doc["paths"]["/v1/teams/{team.name}/users"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let roles = params
        .iter()
        .find(|p| p["name"] == "filter.roles")
        .expect("filter.roles");
    assert_eq!(
        roles,
        &json!({
            "name": "filter.roles",
            "in": "query",
            "required": false,
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Role"}},
            "style": "form",
            "explode": true,
            "description": "Repeat the parameter for several values \
                (`?filter.roles=ROLE_UNSPECIFIED&filter.roles=ADMIN`). A comma list works too \
                (`?filter.roles=ROLE_UNSPECIFIED,ADMIN`)."
        })
    );
    assert_eq!(
        params[0],
        json!({"name":"team.name","in":"path","required":true,"schema":{"type":"string"}})
    );
    assert_eq!(
        doc["components"]["schemas"]["Role"],
        json!({"type":"string","enum":["ROLE_UNSPECIFIED","ADMIN","MEMBER"]})
    );
}

#[test]
fn annotated_routes_become_operations() {
    let pool = compile(ANNOTATED);
    let doc = document(&table(&pool));
    let paths = doc["paths"].as_object().expect("paths");
    let listed: Vec<(String, Vec<String>)> = paths
        .iter()
        .map(|(path, item)| {
            let methods = item.as_object().expect("item").keys().cloned().collect();
            (path.clone(), methods)
        })
        .collect();
    let owned = |p: &str, m: &str| (p.to_string(), vec![m.to_string()]);
    assert_eq!(
        listed,
        // One service: the route table's order (lookup order), no longer alphabetical.
        vec![
            owned("/v1/teams/{team.name}/users", "get"),
            owned("/v1/users/{team.id}", "put"),
            owned("/v1/users:search", "post"),
            owned("/v1/health", "head"),
        ]
    );
    assert_eq!(
        doc["paths"]["/v1/health"]["head"]["operationId"],
        "MyService.Health"
    );
    assert_eq!(
        doc["paths"]["/v1/users:search"]["post"]["operationId"],
        "MyService.User_POST_v1_users_search"
    );
    assert_eq!(
        doc["paths"]["/v1/users:search"]["post"]["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/UserReq"})
    );
    assert_eq!(
        doc["paths"]["/v1/users/{team.id}"]["put"]["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/Filter"})
    );
    // int64 path variable: a decimal string.
    assert_eq!(
        doc["paths"]["/v1/users/{team.id}"]["put"]["parameters"][0]["schema"]["pattern"],
        "^-?[0-9]+$"
    );
}

#[test]
fn body_star_leaves_out_path_fields_and_response_body_selects_a_field() {
    let pool = compile(ROUTED);
    let doc = document(&table(&pool));
    let post = &doc["paths"]["/v1/teams/{team}/users"]["post"];
    assert_eq!(post["description"], "Finds users.");
    let body = &post["requestBody"]["content"]["application/json"]["schema"];
    let keys: Vec<&String> = body["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    assert_eq!(keys, ["name", "userIDs"]);
    assert_eq!(
        post["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/User"}})
    );
    let get = &doc["paths"]["/v1/{name}"]["get"];
    assert_eq!(
        get["parameters"][0]["schema"],
        json!({"type": "string", "pattern": "^shelves/[^/]+/books/[^/]+$"})
    );
    assert!(
        get["parameters"][0]["description"]
            .as_str()
            .expect("description")
            .contains("`shelves/*/books/*`")
    );
    // PURGE has no OpenAPI operation field: listed aside, not dropped silently.
    assert_eq!(
        doc["x-protogate-unlisted-routes"],
        json!([{"method":"PURGE","path":"/v1/cache","rpc":"MyService.Health",
            "reason":"OpenAPI 3.1 has no operation field for this HTTP method"}])
    );
}

#[test]
fn every_operation_lists_status_errors() {
    let pool = compile(ANNOTATED);
    let doc = document(&table(&pool));
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let codes: Vec<&String> = op["responses"].as_object().expect("responses").keys().collect();
            assert_eq!(
                codes,
                ["200", "400", "404", "405", "413", "415", "503", "504", "default"],
                "{method} {path}"
            );
        }
    }
    for response in doc["components"]["responses"]
        .as_object()
        .expect("responses")
        .values()
    {
        assert_eq!(
            response["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/google.rpc.Status"})
        );
    }
}

#[test]
fn server_streaming_replies_list_the_three_formats() {
    let pool = compile(
        r#"
syntax = "proto3";
import "google/api/annotations.proto";
service MyService {
  rpc User(UserReq) returns (stream UserReply) {
    option (google.api.http) = { get: "/v1/users:watch" };
  }
}
message UserReq { repeated int32 userIDs = 1; }
message UserReply { string message = 1; }
"#,
    );
    let doc = document(&table(&pool));
    let content = &doc["paths"]["/v1/users:watch"]["get"]["responses"]["200"]["content"];
    let formats: Vec<&String> = content.as_object().expect("content").keys().collect();
    assert_eq!(
        formats,
        ["application/x-ndjson", "text/event-stream", "application/json"]
    );
    assert_eq!(
        content["application/x-ndjson"]["schema"]["oneOf"][0]["properties"]["result"],
        json!({"$ref": "#/components/schemas/UserReply"})
    );
    assert_eq!(
        content["application/json"]["schema"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/UserReply"}})
    );
}

/// Maps and repeated messages in the query (`binding/query_paths.rs`), at the top and
/// inside a nested message: maps of scalars are `deepObject`; a map of messages and a list
/// of messages carry their schema and a description of the form, and no `style`.
const KEYED: &str = r#"
syntax = "proto3";
import "google/api/annotations.proto";
service Keyed {
  rpc List(ListReq) returns (Item) { option (google.api.http) = { get: "/v1/things" }; }
}
message Item { string name = 1; int32 size = 2; }
message Filter { map<string, int32> counts = 1; }
message ListReq {
  map<bool, string> flags = 1;
  map<string, Item> by_name = 2;
  repeated Item items = 3;
  Filter filter = 4;
}
"#;

#[test]
fn maps_are_deep_objects_and_repeated_messages_say_how_to_send_them() {
    let pool = compile(KEYED);
    let methods =
        crate::method::MethodTable::build(&pool, |m| Some(crate::codec::dynamic::codec(m))).expect("methods");
    let doc = document(&build_table(&pool, &methods, &[], false).expect("routes build"));
    let params = doc["paths"]["/v1/things"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["flags", "byName", "items", "filter.counts"]);
    let item = json!({"$ref": "#/components/schemas/Item"});
    assert_eq!(
        params[0],
        json!({
            "name": "flags", "in": "query", "required": false,
            "style": "deepObject", "explode": true,
            "schema": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "propertyNames": {"enum": ["true", "false"]}
            },
            "description": "One map entry per parameter (`?flags[true]=a&flags[false]=b`); \
                `?flags.true=a` works too."
        })
    );
    assert_eq!(
        params[1],
        json!({
            "name": "byName", "in": "query", "required": false,
            "schema": {"type": "object", "additionalProperties": item},
            "description": "OpenAPI's `deepObject` style has no form for a map of messages: \
                set one field of an entry per parameter (`?byName[a].name=a`)."
        })
    );
    assert_eq!(
        params[2],
        json!({
            "name": "items", "in": "query", "required": false,
            "schema": {"type": "array", "items": item},
            "description": "No OpenAPI style expresses a list of messages in a query: set one \
                field of one element per parameter (`?items[0].name=a`); indices are dense \
                from 0, in any order."
        })
    );
    assert_eq!(params[3]["style"], "deepObject");
    assert_eq!(
        params[3]["schema"],
        json!({
            "type": "object",
            "additionalProperties": {
                "type": "integer", "format": "int32",
                "minimum": -2147483648_i64, "maximum": 2147483647
            }
        })
    );
}
