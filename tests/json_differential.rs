//! The differential test against the reference implementation of proto3 JSON, Python
//! protobuf's `json_format` (issue 19): `tests/python/json_differential.py` drives the real
//! `protogate` binary twice (`--schema compiled` and `--schema descriptors:` of the same
//! protos) in front of its own echo upstream (grpcio), with random messages of protobuf's
//! conformance type `TestAllTypesProto3` (vendored under `proto/testdata/conformance/`) made
//! from a fixed seed, through the body, the query and the path, and with the reference's own
//! refusals. This file runs it and asserts that it found no difference; the script says what
//! it compared and how.
//!
//! 10,000 messages by default; `PROTOGATE_DIFFERENTIAL_COUNT` runs more (or fewer), and
//! `PROTOGATE_DIFFERENTIAL_SEED` another seed.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::process::{ChildGuard, manifest_dir, python_venv};

#[test]
fn proto3_json_matches_the_reference_implementation() {
    let python = python_venv();
    assert!(
        python.exists(),
        "{} does not exist: run scripts/setup-python first",
        python.display()
    );
    let mut command = Command::new(&python);
    command
        .current_dir(manifest_dir())
        .arg("tests/python/json_differential.py")
        .arg(env!("CARGO_BIN_EXE_protogate"))
        .env("PYTHONUNBUFFERED", "1");
    if let Ok(seed) = std::env::var("PROTOGATE_DIFFERENTIAL_SEED") {
        command.args(["--seed", &seed]);
    }
    let mut child = ChildGuard::spawn("json_differential.py", command);
    let status = child.finish(Duration::from_secs(1800));
    let stdout = child.stdout().snapshot();
    let stderr = child.stderr().text();
    let summary: Value = stdout
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no summary line; stderr:\n{stderr}"));
    eprintln!("{summary}");
    assert!(
        status.success() && summary["differences"] == 0,
        "differences from the reference: {summary}\n{stderr}"
    );
    let counts = &summary["summary"];
    let wanted: u64 = std::env::var("PROTOGATE_DIFFERENTIAL_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    assert_eq!(counts["messages"], wanted, "{summary}");
    // Each message went through both codecs, as TestAllTypesProto3 and as Plain.
    assert_eq!(counts["body"], wanted * 4, "{summary}");
    assert!(counts["query"].as_u64().unwrap_or(0) >= wanted / 2, "{summary}");
    assert!(counts["path"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert!(counts["refusals"].as_u64().unwrap_or(0) >= 40, "{summary}");
}
