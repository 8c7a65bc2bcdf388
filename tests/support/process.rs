//! Real child processes for the end-to-end and CLI tests: the `protogate` binary and the
//! Python users service (`services/users`). It owns spawning them with a clean environment,
//! waiting for their readiness lines on stdout, collecting their output for assertions, and
//! killing and reaping them on drop. It does not own HTTP (`http.rs`) or the in-process
//! gateway (`gateway.rs`).
//!
//! Readiness is read from stdout, never guessed with a sleep: the Python service prints
//! `users_service listening on HOST:PORT`, the gateway logs a JSON line whose message is
//! `listening` with the bound `addr`. Both bind port 0, so no test uses a fixed port.
//!
//! Waits here block the calling thread (with a deadline). That is fine in a `#[tokio::test]`
//! as long as nothing in-process must make progress meanwhile; the children run on their own.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a child gets to print its readiness line. Generous, because a cold Python start
/// on a loaded CI machine can take seconds; a healthy start takes well under one.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Env vars the gateway reads; removed from every spawned gateway so that the developer's
/// shell cannot change what a test sees.
const GATEWAY_ENV: &[&str] = &[
    "PROTOGATE_CONFIG",
    "PROTOGATE_LISTEN",
    "PROTOGATE_UPSTREAM",
    "PROTOGATE_LOG_FORMAT",
    "PROTOGATE_WORKER_THREADS",
    "RUST_LOG",
];

/// The crate root, where `config/` and `services/` live.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped example config, `config/protogate.toml`.
pub fn shipped_config() -> PathBuf {
    manifest_dir().join("config/protogate.toml")
}

/// A `Command` for the `protogate` binary with the gateway's env vars cleared.
pub fn gateway_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protogate"));
    command.current_dir(manifest_dir());
    clear_gateway_env(&mut command);
    command
}

/// Removes the gateway's env vars from `command`, so that the developer's shell cannot
/// change what a test sees.
pub fn clear_gateway_env(command: &mut Command) {
    for name in GATEWAY_ENV {
        command.env_remove(name);
    }
}

/// A port that was free a moment ago: bind `127.0.0.1:0`, read the port, close. Only for
/// tests that must know a port before anything listens on it (the upstream that starts
/// after the gateway, or a port that must refuse connections).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Lines of one output stream of a child, collected by a reader thread as they arrive.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<LinesState>, Condvar)>);

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    /// The stream hit EOF (the child closed it or exited).
    closed: bool,
}

impl Lines {
    /// Starts a thread that reads `stream` line by line until EOF.
    fn collect(stream: impl Read + Send + 'static) -> (Lines, JoinHandle<()>) {
        let lines = Lines::default();
        let sink = lines.clone();
        let thread = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let (state, changed) = &*sink.0;
                state.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            let (state, changed) = &*sink.0;
            state.lock().unwrap().closed = true;
            changed.notify_all();
        });
        (lines, thread)
    }

    /// Every line so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.0.lock().unwrap().lines.clone()
    }

    /// Every line so far, joined, for failure messages.
    pub fn text(&self) -> String {
        self.snapshot().join("\n")
    }

    /// Blocks until a line satisfies `pred` (searching from the first line), the stream
    /// closes, or `timeout` passes. `None` in the last two cases.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.0;
        let mut guard = state.lock().unwrap();
        loop {
            if let Some(line) = guard.lines.iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if guard.closed || left.is_zero() {
                return None;
            }
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// A running child process; killed (SIGKILL) and reaped on drop unless it already exited.
pub struct ChildGuard {
    name: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stdout and stderr collected.
    pub fn spawn(name: &str, mut command: Command) -> ChildGuard {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({command:?}): {e}"));
        let (stdout, out_thread) = Lines::collect(child.stdout.take().expect("piped stdout"));
        let (stderr, err_thread) = Lines::collect(child.stderr.take().expect("piped stderr"));
        ChildGuard {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            readers: vec![out_thread, err_thread],
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> &Lines {
        &self.stdout
    }

    pub fn stderr(&self) -> &Lines {
        &self.stderr
    }

    /// Sends SIGTERM through the `kill` command (the tests have no libc binding).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -TERM {} ({}) failed: {status}",
            self.pid(),
            self.name
        );
    }

    /// Waits (polling with a deadline) for the child to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for exit, then for both output streams to reach EOF, so that everything the
    /// child wrote is in `stdout()` and `stderr()`. Kills the child and panics after `timeout`.
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        let Some(status) = self.wait_exit(timeout) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{} did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.name,
                self.stdout.text(),
                self.stderr.text()
            );
        };
        // A grandchild holding the pipes open would block this; none of ours fork.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    /// Kills the child and panics with everything it printed; for failed startups.
    pub fn fail(mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        panic!(
            "{} {why}\nstdout:\n{}\nstderr:\n{}",
            self.name,
            self.stdout.text(),
            self.stderr.text()
        );
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The Python interpreter of the users service's venv.
pub fn python_venv() -> PathBuf {
    manifest_dir().join("services/users/.venv/bin/python")
}

/// Starts the Python users service on `127.0.0.1:port` (0 = any free port) with `extra_env`,
/// and returns it with its address once it has printed its readiness line. A missing venv is
/// a test failure, never a skip: the end-to-end suite is only meaningful against it.
pub fn spawn_python_users_on(port: u16, extra_env: &[(&str, &str)]) -> (ChildGuard, SocketAddr) {
    spawn_python_users_with(port, extra_env, &[])
}

/// Like [`spawn_python_users_on`], with extra command-line arguments for the service (for
/// example `--grpc-option NAME=VALUE`).
pub fn spawn_python_users_with(
    port: u16,
    extra_env: &[(&str, &str)],
    extra_args: &[&str],
) -> (ChildGuard, SocketAddr) {
    let python = python_venv();
    assert!(
        python.exists(),
        "{} does not exist: run scripts/setup-python first (it creates the venv the \
         end-to-end tests need)",
        python.display()
    );
    let mut command = Command::new(&python);
    command
        .current_dir(manifest_dir().join("services/users"))
        .args([
            "-m",
            "users_service",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(extra_args)
        .env_remove("USERS_SERVICE_TEST_HOOKS")
        // Unbuffered, so the readiness line is not stuck in a pipe buffer.
        .env("PYTHONUNBUFFERED", "1");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    spawn_listening("users_service", command, "users_service listening on ")
}

/// Spawns `command` and returns it with the address of its readiness line, `PREFIX ADDR`,
/// once it printed one.
pub fn spawn_listening(name: &str, command: Command, prefix: &str) -> (ChildGuard, SocketAddr) {
    let child = ChildGuard::spawn(name, command);
    let Some(line) = child.stdout().wait_for(READY_TIMEOUT, |l| l.starts_with(prefix)) else {
        child.fail(&format!("printed no readiness line within {READY_TIMEOUT:?}"));
    };
    let addr = line[prefix.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad readiness line {line:?}: {e}"));
    (child, addr)
}

/// Runs a script of `tests/python/` with the venv's interpreter and `args`, and returns it
/// once it printed `PREFIX ADDR` (the scripts there bind `127.0.0.1:0`).
pub fn spawn_python_script(script: &str, args: &[&str], prefix: &str) -> (ChildGuard, SocketAddr) {
    let python = python_venv();
    assert!(
        python.exists(),
        "{} does not exist: run scripts/setup-python first",
        python.display()
    );
    let mut command = Command::new(&python);
    command
        .arg(manifest_dir().join("tests/python").join(script))
        .args(args)
        .env("PYTHONUNBUFFERED", "1");
    spawn_listening(script, command, prefix)
}

/// Starts the Python users service on a free port; see [`spawn_python_users_on`].
pub fn spawn_python_users(extra_env: &[(&str, &str)]) -> (ChildGuard, SocketAddr) {
    spawn_python_users_on(0, extra_env)
}

/// The gateway's JSON log (stdout), one parsed object per line.
#[derive(Clone)]
pub struct GatewayLog(Lines);

impl GatewayLog {
    /// Every raw line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.snapshot()
    }

    /// Every line so far that parses as JSON.
    pub fn records(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Blocks until a record with this `message` satisfies `pred`; panics after `timeout`.
    pub fn wait_for(&self, message: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let line = self.0.wait_for(timeout, |line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| v["message"] == message && pred(&v))
        });
        match line {
            Some(line) => serde_json::from_str(&line).expect("matched line is JSON"),
            None => panic!(
                "no {message:?} log record matched within {timeout:?}; log:\n{}",
                self.0.text()
            ),
        }
    }

    /// The access log record of the request with this `x-request-id`.
    pub fn request(&self, request_id: &str) -> Value {
        self.wait_for("request", Duration::from_secs(5), |v| {
            v["request_id"] == request_id
        })
    }
}

/// Starts the `protogate` binary with `args` and `env` (the gateway's own env vars are
/// cleared first) and returns it once it logs `listening`, with the bound address and its
/// log, which keeps collecting so that tests can assert on access log records.
pub fn spawn_gateway(args: &[&str], env: &[(&str, &str)]) -> (ChildGuard, SocketAddr, GatewayLog) {
    let mut command = gateway_command();
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    spawn_gateway_command(command, READY_TIMEOUT)
}

/// Starts a gateway `command` (another build of the binary, or the binary under a tool such
/// as valgrind) and returns it once it logs `listening`, like [`spawn_gateway`].
pub fn spawn_gateway_command(command: Command, within: Duration) -> (ChildGuard, SocketAddr, GatewayLog) {
    let child = ChildGuard::spawn("protogate", command);
    let log = GatewayLog(child.stdout().clone());
    let listening = child.stdout().wait_for(within, |line| {
        serde_json::from_str::<Value>(line).is_ok_and(|v| v["message"] == "listening")
    });
    let Some(line) = listening else {
        child.fail(&format!("logged no \"listening\" line within {within:?}"));
    };
    let record: Value = serde_json::from_str(&line).expect("JSON");
    let addr = record["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("\"listening\" line has no addr: {line}"));
    (child, addr, log)
}

/// The usual end-to-end gateway: the shipped config, port 0, and `upstream`, on the
/// single-threaded runtime that a sidecar with one CPU runs (the other spawns use the
/// default, multi-threaded on a machine with more CPUs, so both runtimes are covered).
pub fn spawn_gateway_for(upstream: &str) -> (ChildGuard, SocketAddr, GatewayLog) {
    let config = shipped_config();
    let config = config.to_str().expect("UTF-8 path");
    spawn_gateway(
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
        ],
        &[("PROTOGATE_WORKER_THREADS", "1")],
    )
}

/// The gateway binary on `config`, in front of `upstream`, with `--schema schema`, on
/// `127.0.0.1:0`: how the runtime-schema tests start it.
pub fn spawn_gateway_with_schema(
    config: &str,
    upstream: &str,
    schema: &str,
) -> (ChildGuard, SocketAddr, GatewayLog) {
    spawn_gateway_with_schema_env(config, upstream, schema, &[])
}

/// `spawn_gateway_with_schema` with `env` (e.g. `PROTOGATE_WORKER_THREADS`).
pub fn spawn_gateway_with_schema_env(
    config: &str,
    upstream: &str,
    schema: &str,
    env: &[(&str, &str)],
) -> (ChildGuard, SocketAddr, GatewayLog) {
    spawn_gateway(
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--schema",
            schema,
        ],
        env,
    )
}

/// What a command that is expected to exit printed, and how it exited.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

/// Runs `command` to completion with collected output; kills it and panics if it is still
/// running after `timeout` (so a gateway that wrongly starts cannot hang the suite).
pub fn run_to_exit(command: Command, timeout: Duration) -> Finished {
    let mut child = ChildGuard::spawn("command", command);
    let status = child.finish(timeout);
    Finished {
        status,
        stdout: child.stdout().snapshot(),
        stderr: child.stderr().snapshot(),
    }
}

/// Starts grpc's RouteGuide (`tests/python/routeguide_server.py`: grpcio, all four methods,
/// reflection and grpc.health.v1) on a free port; returns it once it says where it listens.
/// The service that is not the demo: `readme.rs` fronts it as a newcomer would.
pub fn spawn_routeguide() -> (ChildGuard, SocketAddr) {
    let mut command = Command::new(python_venv());
    command
        .arg(manifest_dir().join("tests/python/routeguide_server.py"))
        .arg("0")
        .env("PYTHONUNBUFFERED", "1");
    spawn_listening("routeguide_server", command, "routeguide listening on ")
}

/// `VmHWM` (peak RSS) or `VmRSS` of `pid`, in KiB, from `/proc/<pid>/status`.
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The descriptor set of `proto`, a file under `tests/protos` (imports included, from there
/// and `proto/`; no source info), written to `dir/<name>`.
pub fn test_descriptor_set(dir: &super::TempDir, proto: &str, name: &str) -> std::path::PathBuf {
    let includes = [manifest_dir().join("tests/protos"), manifest_dir().join("proto")];
    let mut compiler = protox::Compiler::new(includes).expect("compiler");
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files([proto])
        .unwrap_or_else(|e| panic!("{proto} compiles: {e}"));
    let path = dir.join(name);
    std::fs::write(&path, compiler.encode_file_descriptor_set()).expect("write descriptors");
    path
}
