//! The schema learnt by server reflection equals the descriptor set of the same protos:
//! every `google.api.http` rule (additional bindings, `response_body`, custom verbs) and every
//! other option and extension is kept, so the gateway prints the same route table and serves
//! the same OpenAPI document whether it reads the set from a file (`--schema descriptors:`)
//! or asks the upstream (`--schema reflection`).
//!
//! Each fixture is every `.proto` under one root: `proto/testdata`, `tests/showcase` (the
//! gapic-showcase Compliance service) and `tests/protos` (a service whose imports span
//! several files and packages, with custom options). A test checks that no `.proto` under
//! `tests/` is left out. The set is compiled by protox as `protoc --include_imports` writes
//! it (no source info: reflection answers carry none either). The upstreams are real servers
//! built at run time from that set: grpcio with reflection v1alpha and with v1 alone
//! (`tests/python/set_server.py`), and grpc-go 1.33 with v1alpha (the only version it has)
//! and with its servicer under the v1 name alone (`clients/go/reflection`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::TempDir;
use support::http::get;
use support::process::{
    Finished, gateway_command, manifest_dir, run_to_exit, spawn_gateway, spawn_python_script,
};

/// Every `.proto` under one directory, compiled with its include paths.
struct Fixture {
    root: &'static str,
    includes: &'static [&'static str],
    /// The protos carry `google.api.http` annotations (what reflection used to lose).
    annotated: bool,
}

const FIXTURES: [Fixture; 4] = [
    Fixture {
        root: "proto/testdata",
        includes: &["proto"],
        annotated: true,
    },
    Fixture {
        root: "tests/showcase",
        includes: &["tests/showcase"],
        annotated: true,
    },
    Fixture {
        root: "tests/protos",
        includes: &["tests/protos", "proto"],
        annotated: true,
    },
    // grpc's RouteGuide, the newcomer's service of tests/readme.rs: every method shape, and
    // no annotation (its routes are the unbound ones).
    Fixture {
        root: "tests/routeguide",
        includes: &["tests/routeguide"],
        annotated: false,
    },
];

fn protos_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            protos_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

impl Fixture {
    /// The fixture's files, relative to the include path that holds them.
    fn files(&self) -> Vec<String> {
        let mut found = Vec::new();
        protos_under(&manifest_dir().join(self.root), &mut found);
        let mut names: Vec<String> = found
            .iter()
            .map(|path| {
                let include = self
                    .includes
                    .iter()
                    .map(|i| manifest_dir().join(i))
                    .find(|i| path.starts_with(i))
                    .expect("a fixture's file lies under one of its include paths");
                path.strip_prefix(include)
                    .expect("prefix")
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        names.sort();
        names
    }

    /// The encoded `FileDescriptorSet` of the fixture, imports included, no source info.
    fn descriptor_set(&self) -> Vec<u8> {
        let includes: Vec<PathBuf> = self.includes.iter().map(|i| manifest_dir().join(i)).collect();
        let mut compiler = protox::Compiler::new(includes).expect("compiler");
        compiler.include_imports(true).include_source_info(false);
        compiler
            .open_files(self.files())
            .unwrap_or_else(|e| panic!("{} does not compile: {e}", self.root));
        compiler.encode_file_descriptor_set()
    }
}

#[test]
fn every_proto_under_tests_is_in_a_fixture() {
    let mut found = Vec::new();
    protos_under(&manifest_dir().join("tests"), &mut found);
    assert!(!found.is_empty());
    for path in found {
        assert!(
            FIXTURES
                .iter()
                .any(|f| path.starts_with(manifest_dir().join(f.root))),
            "{} is in no fixture of tests/reflection_schema.rs: add its directory there",
            path.display()
        );
    }
}

/// `protogate [args] check-config`, with no config file (the defaults: unbound routes on).
fn check_config(args: &[&str]) -> Finished {
    let mut command: Command = gateway_command();
    command.args(args).arg("check-config");
    let finished = run_to_exit(command, Duration::from_secs(20));
    assert!(
        finished.status.success(),
        "check-config {args:?}: {:?}",
        finished.stderr
    );
    finished
}

/// The route table as check-config prints it, without the first line's source name (and
/// without the JSON log records that a reflection source adds to stdout).
fn route_table(finished: &Finished) -> Vec<String> {
    let mut lines: Vec<String> = finished
        .stdout
        .iter()
        .filter(|l| !l.starts_with('{'))
        .cloned()
        .collect();
    if let Some(first) = lines.first_mut() {
        *first = first
            .split_once(": ")
            .map(|(_, counts)| counts.to_string())
            .unwrap_or_default();
    }
    lines
}

/// What a gateway on `schema` in front of `upstream` serves at /openapi.json and /readyz.
async fn documents(upstream: &str, schema: &str) -> (Vec<u8>, serde_json::Value) {
    let (_gateway, addr, _log) = spawn_gateway(
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--schema",
            schema,
        ],
        &[],
    );
    let ready = support::eventually("the schema to load", Duration::from_secs(10), || async {
        let reply = get(&format!("http://{addr}/readyz")).await;
        let body = reply.json();
        body["schema"]["hash"].is_string().then_some(body)
    })
    .await;
    let openapi = get(&format!("http://{addr}/openapi.json")).await;
    assert_eq!(openapi.status, 200);
    assert_eq!(openapi.header("content-type"), Some("application/json"));
    (openapi.body.to_vec(), ready["schema"].clone())
}

/// One upstream kind: a name for messages and how to start it on a set.
type Upstream = (
    &'static str,
    fn(&Path) -> (support::process::ChildGuard, std::net::SocketAddr),
);

fn python_v1alpha(set: &Path) -> (support::process::ChildGuard, std::net::SocketAddr) {
    let set = set.to_str().expect("UTF-8");
    spawn_python_script("set_server.py", &[set], "set_server listening on ")
}

fn python_v1(set: &Path) -> (support::process::ChildGuard, std::net::SocketAddr) {
    let set = set.to_str().expect("UTF-8");
    spawn_python_script("set_server.py", &[set, "--v1-only"], "set_server listening on ")
}

fn go_v1alpha(set: &Path) -> (support::process::ChildGuard, std::net::SocketAddr) {
    support::go::spawn_go_reflection(set, false)
}

fn go_v1(set: &Path) -> (support::process::ChildGuard, std::net::SocketAddr) {
    support::go::spawn_go_reflection(set, true)
}

const UPSTREAMS: [Upstream; 4] = [
    ("grpcio, reflection v1alpha", python_v1alpha),
    ("grpcio, reflection v1 only", python_v1),
    ("grpc-go 1.33, reflection v1alpha", go_v1alpha),
    ("grpc-go 1.33, reflection v1 only", go_v1),
];

#[tokio::test]
async fn reflection_learns_what_the_descriptor_set_holds() {
    let dir = TempDir::new("reflection-schema");
    for (i, fixture) in FIXTURES.iter().enumerate() {
        let set = dir.join(&format!("fixture-{i}.binpb"));
        std::fs::write(&set, fixture.descriptor_set()).expect("write set");
        let from_file = format!("descriptors:{}", set.display());
        let want = route_table(&check_config(&["--schema", &from_file]));
        assert!(
            !fixture.annotated || want.iter().any(|l| l.contains("(annotation on ")),
            "{}: the set has no annotated route: {want:?}",
            fixture.root
        );
        for (name, spawn) in UPSTREAMS {
            let (_server, addr) = spawn(&set);
            let upstream = format!("http://{addr}");
            // /readyz names the schema once the upstream answers (UNIMPLEMENTED to health).
            let (want_openapi, want_schema) = documents(&upstream, &from_file).await;
            let got = route_table(&check_config(&[
                "--upstream",
                &upstream,
                "--schema",
                "reflection",
            ]));
            assert_eq!(
                got, want,
                "{} through {name}: reflection's route table differs from the set's",
                fixture.root
            );
            let (openapi, schema) = documents(&upstream, "reflection").await;
            assert!(
                openapi == want_openapi,
                "{} through {name}: /openapi.json differs from the set's:\n{}\n---\n{}",
                fixture.root,
                String::from_utf8_lossy(&openapi),
                String::from_utf8_lossy(&want_openapi)
            );
            assert_eq!(schema["source"], "reflection", "{schema}");
            assert_eq!(
                schema["hash"], want_schema["hash"],
                "{} through {name}: the reflected descriptors differ from the set's",
                fixture.root
            );
        }
    }
}
