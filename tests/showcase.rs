//! The gapic-showcase compliance suite (`tests/showcase/`, vendored with its licence and
//! provenance; README.md there) through the real gateway binary, for every schema source:
//! `compiled` (compliance.proto is in the test protos), `reflection`, `descriptors:FILE`
//! and `protos:DIR`, in front of a real grpcio Compliance server
//! (`tests/python/compliance_server.py`) that checks each request against the suite by name
//! (proto equality) and echoes it.
//!
//! `tests/python/compliance_client.py` builds each case's HTTP request from the method's
//! `google.api.http` rule as GAPIC REST clients do, in three passes (lowerCamel names,
//! snake_case names, and GAPIC's own form with enums as numbers and
//! `$alt=json;enum-encoding=int`), and judges the replies with protobuf's `json_format`: the
//! echoed request must equal the suite's (proto equality), and the JSON must print as the
//! mapping says (float32 in its shortest form, enums in the form asked for). The enum round
//! trips (GetEnum, then VerifyEnum with what it answered) are run and judged here.
//!
//! Every (source, pass, method, case) is reported with what differed. Cases that fail for
//! a known reason fixed on another branch are in [`KNOWN_FAILURES`], one list; a known
//! failure that passes fails the test too, so the list shrinks with the fixes.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::TempDir;
use support::http::send;
use support::process::{
    ChildGuard, manifest_dir, python_venv, run_to_exit, spawn_gateway, spawn_python_script,
};

/// Failures that the JSON-edge fixes of issue 19 (src/codec, src/binding, src/wkt.rs, on
/// another branch) remove: the merge of those fixes empties this list. An entry covers the
/// results its patterns match (an empty list matches everything); a covered result must
/// fail with `shows` in its message (else it is an unexpected failure), and a covered result
/// that passes fails the test, so that the entry is removed.
const KNOWN_FAILURES: &[Known] = &[];

/// One known failure: which results it covers, what their failure says, and why.
struct Known {
    sources: &'static [&'static str],
    passes: &'static [&'static str],
    rpcs: &'static [&'static str],
    case: &'static str,
    shows: &'static str,
    why: &'static str,
}

impl Known {
    fn covers(&self, outcome: &Outcome) -> bool {
        let any = |patterns: &[&str], value: &str| patterns.is_empty() || patterns.contains(&value);
        any(self.sources, &outcome.source)
            && any(self.passes, &outcome.pass)
            && any(self.rpcs, &outcome.rpc)
            && (self.case == "*" || self.case == outcome.case)
    }
}

const SOURCES: [&str; 4] = ["compiled", "reflection", "descriptors", "protos"];
const PASSES: [&str; 3] = ["camel", "snake", "gapic"];

fn showcase_dir() -> PathBuf {
    manifest_dir().join("tests/showcase")
}

fn suite() -> PathBuf {
    showcase_dir().join("google/showcase/v1beta1/compliance_suite.json")
}

/// Every `.proto` of tests/showcase as a `FileDescriptorSet`, imports included, as
/// `protoc --include_imports --descriptor_set_out` writes it.
fn descriptor_set(path: &Path) {
    let mut compiler = protox::Compiler::new([showcase_dir()]).expect("compiler");
    compiler.include_imports(true);
    compiler
        .open_files([
            "google/api/annotations.proto",
            "google/api/client.proto",
            "google/api/http.proto",
            "google/api/launch_stage.proto",
            "google/showcase/v1beta1/compliance.proto",
        ])
        .expect("tests/showcase compiles");
    std::fs::write(path, compiler.encode_file_descriptor_set()).expect("write set");
}

/// The result of one (source, pass, method, case).
#[derive(Clone, Debug)]
struct Outcome {
    source: String,
    pass: String,
    rpc: String,
    case: String,
    ok: bool,
    why: String,
}

/// One gateway per schema source, all in front of `upstream`, with no config file (the
/// defaults: strict query parameters, unbound routes on).
fn gateways(upstream: SocketAddr, set: &Path) -> Vec<(&'static str, ChildGuard, SocketAddr)> {
    let upstream = format!("http://{upstream}");
    let descriptors = format!("descriptors:{}", set.display());
    let protos = format!("protos:{}", showcase_dir().display());
    SOURCES
        .iter()
        .map(|&source| {
            let schema = match source {
                "descriptors" => descriptors.as_str(),
                "protos" => protos.as_str(),
                other => other,
            };
            let (child, addr, _log) = spawn_gateway(
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    &upstream,
                    "--schema",
                    schema,
                ],
                &[],
            );
            (source, child, addr)
        })
        .collect()
}

/// Runs a `compliance_client.py` subcommand to completion; its stdout lines as JSON.
fn client(args: &[&str]) -> Vec<Value> {
    let mut command = Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/compliance_client.py"))
        .args(args);
    let finished = run_to_exit(command, Duration::from_secs(120));
    assert!(
        finished.status.success(),
        "compliance_client.py {args:?} failed\nstderr:\n{}",
        finished.stderr.join("\n")
    );
    finished
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

/// Sends one built request to `addr`; the result line for the checker, or the outcome
/// when the gateway's answer is already wrong in its headers.
async fn run_case(addr: SocketAddr, source: &str, request: &Value) -> Result<Value, String> {
    let method = http::Method::from_bytes(text(request, "method").as_bytes()).expect("method");
    let url = format!("http://{addr}{}", text(request, "target"));
    let reply = match request["body"].as_str() {
        Some(body) => {
            send(
                method,
                &url,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
        }
        None => send(method, &url, &[], "").await,
    };
    if reply.header("content-type") != Some("application/json") {
        return Err(format!(
            "HTTP {} with content-type {:?}",
            reply.status,
            reply.header("content-type")
        ));
    }
    Ok(json!({
        "case": request["case"],
        "rpc": request["rpc"],
        "pass": request["pass"],
        "source": source,
        "status": reply.status.as_u16(),
        "body": String::from_utf8_lossy(&reply.body),
    }))
}

/// The query of `value` flattened into dotted names, as GAPIC clients send the fields left
/// over; names turned to snake_case in the snake pass.
fn flatten(value: &Value, key: &str, snake: bool, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let name = if snake { to_snake(name) } else { name.clone() };
                let key = if key.is_empty() {
                    name
                } else {
                    format!("{key}.{name}")
                };
                flatten(field, &key, snake, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| flatten(item, key, snake, out)),
        Value::String(s) => out.push((key.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((key.to_string(), other.to_string())),
    }
}

fn to_snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn query(pairs: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

/// GetEnum, then VerifyEnum with what GetEnum answered: the reply must come back unchanged,
/// an unknown number printed as a number, a known one by name (by number with GAPIC's
/// `$alt=json;enum-encoding=int`).
async fn enum_round_trip(addr: SocketAddr, pass: &str, unknown: bool) -> Result<(), String> {
    let snake = pass == "snake";
    let mut pairs = Vec::new();
    if unknown {
        let name = if snake { "unknown_enum" } else { "unknownEnum" };
        pairs.push((name.to_string(), "true".to_string()));
    }
    if pass == "gapic" {
        pairs.push(("$alt".to_string(), "json;enum-encoding=int".to_string()));
    }
    let url = format!("http://{addr}/v1beta1/compliance/enum?{}", query(&pairs));
    let got = send(http::Method::GET, &url, &[], "").await;
    let body = String::from_utf8_lossy(&got.body).to_string();
    if got.status != 200 || got.header("content-type") != Some("application/json") {
        return Err(format!("GetEnum: HTTP {}: {body}", got.status));
    }
    let reply: Value = serde_json::from_str(&body).map_err(|e| format!("GetEnum: not JSON ({e}): {body}"))?;
    let want_continent = match (unknown, pass) {
        (true, _) => json!(-3852),
        (false, "gapic") => json!(5),
        (false, _) => json!("EUROPE"),
    };
    if reply["continent"] != want_continent || reply["request"]["unknownEnum"] != json!(unknown) {
        return Err(format!(
            "GetEnum answered {reply}; want continent {want_continent}"
        ));
    }
    let mut pairs = Vec::new();
    flatten(&reply, "", snake, &mut pairs);
    if pass == "gapic" {
        pairs.push(("$alt".to_string(), "json;enum-encoding=int".to_string()));
    }
    let url = format!("http://{addr}/v1beta1/compliance/enum?{}", query(&pairs));
    let verified = send(http::Method::POST, &url, &[], "").await;
    let body = String::from_utf8_lossy(&verified.body).to_string();
    if verified.status != 200 || verified.header("content-type") != Some("application/json") {
        return Err(format!(
            "VerifyEnum ?{}: HTTP {}: {body}",
            query(&pairs),
            verified.status
        ));
    }
    let echoed: Value =
        serde_json::from_str(&body).map_err(|e| format!("VerifyEnum: not JSON ({e}): {body}"))?;
    if echoed != reply {
        return Err(format!("VerifyEnum answered {echoed}, not {reply}"));
    }
    Ok(())
}

/// Every case through every source: the outcomes, judged.
async fn run_suite(dir: &TempDir) -> Vec<Outcome> {
    let set = dir.join("compliance.binpb");
    descriptor_set(&set);
    let set_arg = set.to_str().expect("UTF-8").to_string();
    let suite_arg = suite().to_str().expect("UTF-8").to_string();
    let (_server, upstream) = spawn_python_script(
        "compliance_server.py",
        &[&set_arg, &suite_arg],
        "compliance_server listening on ",
    );
    let gateways = gateways(upstream, &set);
    let requests = client(&["requests", &set_arg, &suite_arg]);
    assert_eq!(requests.len(), 53 * PASSES.len(), "53 cases, once per pass");

    let mut outcomes = Vec::new();
    let mut results = String::new();
    for (source, _child, addr) in &gateways {
        for request in &requests {
            let outcome = |ok: bool, why: String| Outcome {
                source: source.to_string(),
                pass: text(request, "pass"),
                rpc: text(request, "rpc"),
                case: text(request, "case"),
                ok,
                why,
            };
            if let Some(error) = request["error"].as_str() {
                outcomes.push(outcome(false, format!("the client could not build it: {error}")));
                continue;
            }
            match run_case(*addr, source, request).await {
                Ok(result) => {
                    results.push_str(&result.to_string());
                    results.push('\n');
                }
                Err(why) => outcomes.push(outcome(false, why)),
            }
        }
        for pass in PASSES {
            for unknown in [false, true] {
                let verdict = enum_round_trip(*addr, pass, unknown).await;
                outcomes.push(Outcome {
                    source: source.to_string(),
                    pass: pass.to_string(),
                    rpc: "GetEnum+VerifyEnum".to_string(),
                    case: if unknown {
                        "unknown enum value"
                    } else {
                        "known enum value"
                    }
                    .to_string(),
                    ok: verdict.is_ok(),
                    why: verdict.err().unwrap_or_default(),
                });
            }
        }
    }
    let results_file = dir.join("results.jsonl");
    std::fs::write(&results_file, results).expect("write results");
    let results_arg = results_file.to_str().expect("UTF-8").to_string();
    for verdict in client(&["check", &set_arg, &suite_arg, &results_arg]) {
        outcomes.push(Outcome {
            source: text(&verdict, "source"),
            pass: text(&verdict, "pass"),
            rpc: text(&verdict, "rpc"),
            case: text(&verdict, "case"),
            ok: verdict["ok"] == true,
            why: text(&verdict, "why"),
        });
    }
    outcomes
}

#[tokio::test]
async fn the_compliance_suite_passes_through_every_schema_source() {
    let dir = TempDir::new("showcase");
    let mut outcomes = run_suite(&dir).await;
    outcomes
        .sort_by(|a, b| (&a.source, &a.pass, &a.rpc, &a.case).cmp(&(&b.source, &b.pass, &b.rpc, &b.case)));
    // 53 cases and 2 enum round trips, in 3 passes, through 4 sources.
    assert_eq!(
        outcomes.len(),
        55 * PASSES.len() * SOURCES.len(),
        "one outcome per case"
    );

    // Every result, for `--nocapture`; the panic message repeats only the problems.
    let mut report = String::new();
    let mut problems = String::new();
    let mut unexpected = 0;
    let mut fixed = 0;
    let mut per_source: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for outcome in &outcomes {
        let covering: Vec<&Known> = KNOWN_FAILURES.iter().filter(|k| k.covers(outcome)).collect();
        let known = covering.iter().find(|k| outcome.why.contains(k.shows));
        let counts = per_source
            .entry(
                SOURCES
                    .iter()
                    .find(|s| **s == outcome.source)
                    .copied()
                    .unwrap_or("?"),
            )
            .or_default();
        let label = format!(
            "{} / {} / {} / {:?}",
            outcome.source, outcome.pass, outcome.rpc, outcome.case
        );
        match (outcome.ok, known) {
            (true, _) if covering.is_empty() => {
                counts.0 += 1;
                let _ = writeln!(report, "ok: {label}");
            }
            (true, _) => {
                fixed += 1;
                counts.0 += 1;
                let line = format!("NOW PASSES (remove it from KNOWN_FAILURES): {label}");
                let _ = writeln!(report, "{line}");
                let _ = writeln!(problems, "{line}");
            }
            (false, Some(known)) => {
                counts.1 += 1;
                let _ = writeln!(report, "known failure ({}): {label}: {}", known.why, outcome.why);
            }
            (false, _) => {
                unexpected += 1;
                counts.2 += 1;
                let line = format!("FAILED: {label}: {}", outcome.why);
                let _ = writeln!(report, "{line}");
                let _ = writeln!(problems, "{line}");
            }
        }
    }
    let mut summary = String::new();
    for (source, (passed, known, failed)) in &per_source {
        let _ = writeln!(
            summary,
            "{source}: {passed} passed, {known} known failures, {failed} unexpected failures (of {})",
            passed + known + failed
        );
    }
    println!("{report}\n{summary}");
    assert!(
        unexpected == 0 && fixed == 0,
        "gapic-showcase compliance suite: {unexpected} unexpected failures, {fixed} known \
         failures that now pass\n{problems}\n{summary}"
    );
}
