//! Schema sources other than the compiled protos, with the real binary: `--schema
//! descriptors:PATH` and `--schema protos:DIR` serve the seed's routes through the dynamic
//! codec (prost-reflect) against the real Python service, and answer byte for byte what the
//! compiled (pbjson) path answers, errors included; a missing or malformed file stops
//! startup with exit 2 and one line naming it.

mod support;

use support::TempDir;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::http::get;
use support::process::{
    Finished, gateway_command, manifest_dir, run_to_exit, shipped_config, spawn_gateway_with_schema,
    spawn_python_users,
};

fn seed_proto() -> PathBuf {
    manifest_dir().join("proto/api.proto")
}

/// The seed's proto alone in a directory, as a team would hand it over.
fn proto_dir() -> TempDir {
    let dir = TempDir::new("schema");
    std::fs::copy(seed_proto(), dir.join("api.proto")).expect("copy api.proto");
    dir
}

/// The seed's proto as a `FileDescriptorSet` with its imports, as `protoc
/// --include_imports --descriptor_set_out` writes it.
fn descriptor_file(dir: &TempDir) -> PathBuf {
    let set = protox::compile([seed_proto()], [manifest_dir().join("proto")]).expect("api.proto compiles");
    let path = dir.join("api.binpb");
    std::fs::write(&path, prost::Message::encode_to_vec(&set)).expect("write descriptors");
    path
}

fn run(args: &[&str]) -> Finished {
    let mut command: Command = gateway_command();
    command.args(args);
    run_to_exit(command, Duration::from_secs(10))
}

fn assert_fails_naming(finished: &Finished, needles: &[&str]) {
    assert_eq!(finished.status.code(), Some(2), "stderr: {:?}", finished.stderr);
    let [line] = finished.stderr.as_slice() else {
        panic!("want exactly one stderr line, got {:?}", finished.stderr);
    };
    for needle in needles {
        assert!(
            line.contains(needle),
            "stderr line does not name {needle:?}: {line}"
        );
    }
}

fn start(schema: &str) -> Finished {
    let config = shipped_config();
    run(&[
        "--config",
        config.to_str().expect("UTF-8"),
        "--listen",
        "127.0.0.1:0",
        "--schema",
        schema,
    ])
}

#[test]
fn missing_or_malformed_schema_files_stop_startup_naming_them() {
    let finished = start("descriptors:/nonexistent/api.binpb");
    assert_fails_naming(&finished, &["descriptors:/nonexistent/api.binpb", "cannot read"]);

    let dir = TempDir::new("schema");
    let junk = dir.join("junk.binpb");
    std::fs::write(&junk, b"\xff\xff not a descriptor set").expect("write");
    let finished = start(&format!("descriptors:{}", junk.display()));
    assert_fails_naming(
        &finished,
        &["junk.binpb", "not a FileDescriptorSet", "--include_imports"],
    );

    let finished = start(&format!("protos:{}", dir.0.display()));
    assert_fails_naming(&finished, &["no .proto file under"]);

    std::fs::write(dir.join("broken.proto"), "syntax = \"proto3\";\nmessage {").expect("write");
    let finished = start(&format!("protos:{}", dir.0.display()));
    assert_fails_naming(&finished, &["broken.proto"]);

    let finished = start("nonsense");
    assert_fails_naming(
        &finished,
        &[
            "schema.source",
            "compiled, reflection, descriptors:PATH, protos:DIR",
        ],
    );
}

#[test]
fn a_rule_naming_a_method_the_source_lacks_stops_startup() {
    // The shipped config routes MyService.User and MyService.Health; a proto without them
    // leaves those rules pointing at nothing.
    let dir = TempDir::new("schema");
    std::fs::write(
        dir.join("other.proto"),
        "syntax = \"proto3\";\npackage other.v1;\nmessage Ping {}\nservice Pinger { rpc Ping(Ping) returns (Ping); }\n",
    )
    .expect("write");
    let finished = start(&format!("protos:{}", dir.0.display()));
    assert_fails_naming(&finished, &["config rule", "MyService", "other.v1.Pinger.Ping"]);
}

#[test]
fn check_config_prints_the_routes_each_source_yields() {
    let dir = proto_dir();
    let descriptors = descriptor_file(&dir);
    let config = shipped_config();
    for schema in [
        "compiled".to_string(),
        format!("protos:{}", dir.0.display()),
        format!("descriptors:{}", descriptors.display()),
    ] {
        let finished = run(&[
            "check-config",
            "--config",
            config.to_str().expect("UTF-8"),
            "--schema",
            &schema,
        ]);
        assert!(finished.status.success(), "{schema}: {:?}", finished.stderr);
        let out = &finished.stdout;
        assert!(
            out.first()
                .is_some_and(|l| l.starts_with(&format!("# schema {schema}: "))),
            "{out:?}"
        );
        for route in [
            "GET /users -> MyService.User",
            "GET /health -> MyService.Health",
            "POST /MyService/User -> MyService.User",
        ] {
            assert!(
                out.iter().any(|l| l.starts_with(route)),
                "{schema}: no {route:?} in {out:?}"
            );
        }
    }
}

/// What a client sees: status, content type and the exact body bytes.
async fn answer(addr: std::net::SocketAddr, path_and_query: &str) -> (u16, Option<String>, Vec<u8>) {
    let reply = get(&format!("http://{addr}{path_and_query}")).await;
    (
        reply.status.as_u16(),
        reply.header("content-type").map(str::to_string),
        reply.body.to_vec(),
    )
}

#[tokio::test]
async fn file_sources_answer_byte_for_byte_what_the_compiled_path_answers() {
    let (_python, upstream) = spawn_python_users(&[]);
    let upstream = format!("http://{upstream}");
    let dir = proto_dir();
    let descriptors = descriptor_file(&dir);
    let config = shipped_config();
    let config = config.to_str().expect("UTF-8");
    let start = |schema: String| spawn_gateway_with_schema(config, &upstream, &schema);
    let (_compiled, compiled, _) = start("compiled".to_string());
    let (_protos, protos, _) = start(format!("protos:{}", dir.0.display()));
    let (_files, files, _) = start(format!("descriptors:{}", descriptors.display()));

    for request in [
        "/users?ids=1,2",
        "/users?ids=1&ids=3",
        "/users?ids=999",
        "/users",
        "/health",
        // The client's mistakes: the same 400 bodies, naming the same field.
        "/users?ids=abc",
        "/users?ids=2147483648",
        "/users?color=red",
        "/nowhere",
    ] {
        let want = answer(compiled, request).await;
        assert_eq!(answer(protos, request).await, want, "protos: {request}");
        assert_eq!(answer(files, request).await, want, "descriptors: {request}");
        if request == "/users?ids=1,2" {
            assert_eq!(want.0, 200, "{:?}", String::from_utf8_lossy(&want.2));
        }
    }
    // The unbound path takes a JSON body through the codec (not only the query binder).
    for body in [r#"{"userIDs":[1,2]}"#, r#"{"userIDs":["x"]}"#, r#"{"nope":1}"#] {
        let mut got = Vec::new();
        for addr in [compiled, protos, files] {
            let reply = support::http::send(
                http::Method::POST,
                &format!("http://{addr}/MyService/User"),
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await;
            got.push((reply.status.as_u16(), reply.body.to_vec()));
        }
        assert_eq!(got[1], got[0], "protos: {body}");
        assert_eq!(got[2], got[0], "descriptors: {body}");
    }
}
