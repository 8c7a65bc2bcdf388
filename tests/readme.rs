//! The README's commands, run as a newcomer would run them, so that a README that drifts
//! from the binary fails `scripts/test`. The shell blocks of two sections are extracted and
//! executed in order in a scratch directory:
//!
//! - "Quickstart: the demo", against the real Python users service. Its `scripts/run` line
//!   is not run as is (it builds the release binary and binds fixed ports): it is replaced by
//!   what `scripts/run` starts, the users service and this build's `protogate` with
//!   `config/protogate.toml`, on ports chosen by the system.
//! - "Front your own service", against a service that is not the demo: grpc's RouteGuide,
//!   served by grpcio with reflection (`tests/python/routeguide_server.py`). `protoc` is
//!   grpcio-tools' (`python -m grpc_tools.protoc`, the same flags), since the machine may
//!   have no system `protoc`; `protogate` is this build's binary.
//!
//! In `console` blocks, a `$ ` line is a command and the lines up to the next one are the
//! output it shows. A `protogate` command without a subcommand is a gateway: it is started in
//! the background with `--listen 127.0.0.1:0` added (replacing the one before), and the lines
//! it shows are JSON log records that must appear in its log with the same keys in the same
//! order and the same values (`…` matches anything). Any other command runs to completion and
//! must print exactly the lines shown. `sh` blocks run whole and must succeed. In commands and
//! outputs `localhost:8080` and `127.0.0.1:50051` become the real addresses; schema hashes
//! are compared as `…`. No block of these sections needs Docker; Docker's are in
//! docs/docker.md and are not run here.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::TempDir;
use support::process::{
    ChildGuard, GatewayLog, manifest_dir, python_venv, run_to_exit, shipped_config, spawn_gateway,
    spawn_python_users, spawn_routeguide,
};

const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway's env vars, which a developer's shell may set.
const GATEWAY_ENV: [&str; 7] = [
    "PROTOGATE_CONFIG",
    "PROTOGATE_LISTEN",
    "PROTOGATE_UPSTREAM",
    "PROTOGATE_SCHEMA",
    "PROTOGATE_LOG_FORMAT",
    "PROTOGATE_WORKER_THREADS",
    "RUST_LOG",
];

/// One fenced block of the README: its info string and its text.
struct Block {
    lang: String,
    text: String,
}

/// The fenced blocks under the `## heading` section (up to the next `## `).
fn section_blocks(readme: &str, heading: &str) -> Vec<Block> {
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has no section \"## {heading}\""));
    let rest = &readme[start + heading.len() + 4..];
    let section = rest.find("\n## ").map_or(rest, |end| &rest[..end]);
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            continue;
        };
        let mut text = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        blocks.push(Block {
            lang: lang.trim().to_string(),
            text,
        });
    }
    assert!(!blocks.is_empty(), "section {heading:?} has no command block");
    blocks
}

/// A scratch directory with `protogate` and `protoc` on its PATH, the upstream of the
/// section, and the gateway its commands started last.
struct Session {
    dir: TempDir,
    path: String,
    upstream: SocketAddr,
    /// The demo: `scripts/run` starts the users service itself.
    demo: bool,
    upstream_guard: Option<ChildGuard>,
    gateway: Option<(ChildGuard, SocketAddr, GatewayLog)>,
}

impl Session {
    fn new(name: &str, upstream: Option<(ChildGuard, SocketAddr)>) -> Session {
        let dir = TempDir::new(name);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        shim(
            &bin,
            "protogate",
            &format!("exec {:?} \"$@\"", env!("CARGO_BIN_EXE_protogate")),
        );
        shim(
            &bin,
            "protoc",
            &format!("exec {:?} -m grpc_tools.protoc \"$@\"", python_venv()),
        );
        // The user's own protos, where the README's protoc command looks for them.
        std::fs::create_dir_all(dir.join("protos")).expect("protos dir");
        std::fs::copy(
            manifest_dir().join("tests/routeguide/route_guide.proto"),
            dir.join("protos/route_guide.proto"),
        )
        .expect("copy route_guide.proto");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let (guard, addr, demo) = match upstream {
            Some((guard, addr)) => (Some(guard), addr, false),
            None => (None, "127.0.0.1:1".parse().expect("addr"), true),
        };
        Session {
            dir,
            path,
            upstream: addr,
            demo,
            upstream_guard: guard,
            gateway: None,
        }
    }

    /// The README's addresses replaced by the real ones.
    fn localize(&self, text: &str) -> String {
        let mut text = text.replace("127.0.0.1:50051", &self.upstream.to_string());
        if let Some((_, addr, _)) = &self.gateway {
            text = text.replace("localhost:8080", &addr.to_string());
        }
        text
    }

    /// `script` under bash, in the scratch directory, without the gateway's env vars of the
    /// developer's shell.
    fn bash(&self, script: &str) -> Command {
        let mut bash = Command::new("bash");
        bash.current_dir(&self.dir.0)
            .env("PATH", &self.path)
            .args(["-euo", "pipefail", "-c", script]);
        for name in GATEWAY_ENV {
            bash.env_remove(name);
        }
        bash
    }

    fn run_sh(&mut self, text: &str) {
        if text.trim() == "scripts/run" {
            self.start_demo();
            return;
        }
        let finished = run_to_exit(self.bash(&self.localize(text)), STEP_TIMEOUT);
        assert!(
            finished.status.success(),
            "README block failed ({}):\n{text}\nstdout: {:?}\nstderr: {:?}",
            finished.status,
            finished.stdout,
            finished.stderr
        );
    }

    /// What `scripts/run` starts: the users service and the gateway on the shipped config.
    fn start_demo(&mut self) {
        assert!(self.demo, "scripts/run belongs to the quickstart");
        self.gateway = None;
        let (users, addr) = spawn_python_users(&[]);
        self.upstream = addr;
        self.upstream_guard = Some(users);
        let config = shipped_config();
        let upstream = format!("http://{addr}");
        let config = config.to_str().expect("UTF-8");
        self.gateway = Some(spawn_gateway(
            &[
                "--config",
                config,
                "--upstream",
                &upstream,
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
        ));
    }

    fn run_console(&mut self, text: &str) {
        let mut steps: Vec<(String, Vec<String>)> = Vec::new();
        for line in text.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => steps.push((command.to_string(), Vec::new())),
                None => match steps.last_mut() {
                    Some((_, shown)) => shown.push(line.to_string()),
                    None => panic!("console block starts with output: {line}"),
                },
            }
        }
        for (command, shown) in steps {
            let is_gateway = command.starts_with("protogate ") && !command.contains(" check-config");
            if is_gateway {
                self.start_gateway(&command, &shown);
            } else {
                self.run_command(&command, &shown);
            }
        }
    }

    fn start_gateway(&mut self, command: &str, shown: &[String]) {
        self.gateway = None;
        let args: Vec<String> = self
            .localize(command)
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect();
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--listen", "127.0.0.1:0"]);
        // spawn_gateway runs in the crate root; the README's relative paths are the session's.
        let absolute: Vec<String> = args.iter().map(|a| relative_to(&self.dir.0, a)).collect();
        let absolute: Vec<&str> = absolute.iter().map(String::as_str).collect();
        let (guard, addr, log) = spawn_gateway(&absolute, &[]);
        for line in shown {
            let want: Value = serde_json::from_str(&self.localize(line))
                .unwrap_or_else(|e| panic!("README shows a gateway line that is not JSON ({e}): {line}"));
            let message = want["message"].as_str().expect("a shown log line has a message");
            let got = log.wait_for(message, STEP_TIMEOUT, |_| true);
            assert_log_line_matches(&want, &got, command);
        }
        self.gateway = Some((guard, addr, log));
    }

    fn run_command(&self, command: &str, shown: &[String]) {
        let finished = run_to_exit(self.bash(&self.localize(command)), STEP_TIMEOUT);
        assert!(
            finished.status.success(),
            "README command failed ({}): {command}\nstderr: {:?}",
            finished.status,
            finished.stderr
        );
        let got: Vec<String> = finished.stdout.iter().map(|l| normalize(l)).collect();
        let want: Vec<String> = shown.iter().map(|l| normalize(&self.localize(l))).collect();
        assert_eq!(got, want, "README command {command:?} printed something else");
    }
}

/// A README path argument (`my.toml`, `descriptors:api.binpb`) made absolute in `dir`.
fn relative_to(dir: &Path, arg: &str) -> String {
    let (prefix, path) = match arg.split_once(':') {
        Some((kind @ ("descriptors" | "protos"), path)) => (format!("{kind}:"), path),
        _ => (String::new(), arg),
    };
    if !prefix.is_empty() || dir.join(path).exists() {
        return format!("{prefix}{}", dir.join(path).display());
    }
    arg.to_string()
}

fn shim(bin: &Path, name: &str, body: &str) {
    let path: PathBuf = bin.join(name);
    std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).expect("write shim");
    let made = Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .expect("chmod");
    assert!(made.success());
}

/// Schema hashes differ with the build; the README shows them as they are once.
fn normalize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("\"hash\":\"") {
        let value = &rest[at + 8..];
        let end = value.find('"').unwrap_or(value.len());
        out.push_str(&rest[..at + 8]);
        out.push('…');
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// The shown record and the logged one have the same keys in the same order, and the same
/// values where the README shows one (`…` stands for any value).
fn assert_log_line_matches(want: &Value, got: &Value, command: &str) {
    let (Some(want_map), Some(got_map)) = (want.as_object(), got.as_object()) else {
        panic!("not JSON objects: {want} / {got}");
    };
    let want_keys: Vec<&String> = want_map.keys().collect();
    let got_keys: Vec<&String> = got_map.keys().collect();
    assert_eq!(got_keys, want_keys, "`{command}` logged other fields: {got}");
    for (key, value) in want_map {
        if value == "…" {
            continue;
        }
        assert_eq!(
            &got_map[key], value,
            "`{command}` logged {key} = {}: {got}",
            got_map[key]
        );
    }
}

fn readme() -> String {
    std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md")
}

fn run_section(session: &mut Session, heading: &str) {
    for block in section_blocks(&readme(), heading) {
        match block.lang.as_str() {
            "sh" => session.run_sh(&block.text),
            "console" => session.run_console(&block.text),
            other => panic!("section {heading:?} has a {other:?} block this test cannot run"),
        }
    }
}

#[test]
fn front_your_own_service_commands_work_against_routeguide() {
    let mut session = Session::new("readme-own", Some(spawn_routeguide()));
    run_section(&mut session, "Front your own service");
    // The section's own promise: it ended with a gateway serving the rules file's route.
    assert!(session.gateway.is_some(), "the section starts no gateway");
    drop(session.upstream_guard.take());
}

#[test]
fn quickstart_commands_work_against_the_demo() {
    let mut session = Session::new("readme-quickstart", None);
    run_section(&mut session, "Quickstart: the demo");
    assert!(session.gateway.is_some(), "the quickstart starts no gateway");
}

#[test]
fn readme_is_a_short_path_with_a_table_of_contents() {
    let text = readme();
    let lines = text.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; reference material goes to docs/"
    );
    let contents = text
        .lines()
        .position(|l| l.starts_with("**Contents:**"))
        .expect("a table of contents");
    let own = text
        .lines()
        .position(|l| l == "## Front your own service")
        .expect("a \"Front your own service\" section");
    assert!(
        contents < own && own < 100,
        "\"Front your own service\" is near the top (line {own})"
    );
    // Every relative link of the README and of docs/ leads to a file that exists.
    let mut pages = vec![manifest_dir().join("README.md")];
    for entry in std::fs::read_dir(manifest_dir().join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    for page in pages {
        let text = std::fs::read_to_string(&page).expect("page");
        let base = page.parent().expect("parent");
        for target in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            assert!(
                base.join(file).exists(),
                "{}: the link {target} leads nowhere",
                page.display()
            );
        }
    }
}
